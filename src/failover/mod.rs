//! Failover, drill and failback: runs as resumable, queue-chained stages.
//!
//! Layers:
//! - [`alert`]: parse Azure Monitor webhooks and decide (pure).
//! - [`stages`]: the stage graph, [`Outcome`] and the error policy (pure, table-tested).
//! - [`run`]: run records (`runs/{runId}.json`, ETag-guarded) and the per-pair lock
//!   (`locks/{pair}.json`, create-if-absent).
//! - [`events`]: run events for the `notifications` queue, the approval deadline (pure).
//! - [`exec`]: [`run_one_stage`] — claim, observe, write, record, decide; the stage bodies.
//! - [`start`]: starting runs from runbooks and from alerts (dedup under `alerts/`), approve,
//!   cancel.
//! - [`runner`]: the in-process queue and loop the CLI and `drill` use (same `run_one_stage`).
//! - [`watchdog`] — `RunWatchdog` (resume stalled runs, fail hopeless ones, break stale locks)
//!   and the poison rule (act only on the current stage).
//! - [`drill`], [`cli`]: the `datashare-dr drill` and `failover …` commands.
//!
//! Must not import: handlers, host (handlers call in here, not the other way round).

pub mod alert;
pub mod alert_auth;
pub mod cli;
pub mod consumer;
pub mod drill;
pub mod error;
pub mod events;
pub mod exec;
pub mod preview;
pub mod run;
pub mod runner;
pub mod stages;
pub mod start;
pub mod watchdog;

pub use error::FailoverError;
pub use exec::{Clock, StageContext, StageMessage, fail_run, run_one_stage};
pub use run::{RunRecord, RunStatus};
pub use stages::{ErrorDecision, Mode, Outcome, Policy, Role, Stage, error_policy, next, plan};

/// An error with its cause chain (`a: b: c`), secret-free, for records and logs.
pub fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
