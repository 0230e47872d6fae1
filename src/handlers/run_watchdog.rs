//! `RunWatchdog` (timer, `%WATCHDOG_SCHEDULE%`, every 5 minutes by default): one
//! `failover::watchdog::sweep` — resume runs whose stage message is gone, fail runs whose stage
//! is beyond its retry window, break locks whose run is finished or missing.
//!
//! Decode the timer → sweep → one log line. A failed sweep answers 500 (logged); the next tick
//! sweeps again (the sweep is idempotent: every change is ETag-guarded).

use crate::failover::watchdog::{WatchdogPolicy, sweep};
use crate::host::{InvocationResponse, TimerTrigger};
use crate::startup::AppState;

use super::HandlerError;
use super::failover_stage::{failover_error, stage_context};

/// Function (folder) name.
pub const NAME: &str = "RunWatchdog";

pub async fn handle(
    state: &AppState,
    trigger: TimerTrigger,
) -> Result<InvocationResponse, HandlerError> {
    if trigger.is_past_due {
        tracing::info!(
            event = "watchdog.past-due",
            "RunWatchdog runs late (past due)"
        );
    }
    let ctx = stage_context(state).await?;
    let policy = WatchdogPolicy::for_context(&ctx);
    let report = sweep(&ctx, &policy)
        .await
        .map_err(|e| failover_error("sweep the runs", e))?;
    tracing::info!(
        event = "watchdog.swept",
        checked = report.checked,
        resumed = report.resumed.len(),
        failed = report.failed.len(),
        locks_broken = report.locks_broken.len(),
        awaiting_approval = report.awaiting_approval.len(),
        "watchdog pass"
    );
    Ok(InvocationResponse::new().log(format!(
        "watchdog: {} lock(s) checked; resumed [{}]; failed [{}]; locks broken [{}]; awaiting approval [{}]",
        report.checked,
        report.resumed.join(", "),
        report.failed.join(", "),
        report.locks_broken.join(", "),
        report.awaiting_approval.join(", ")
    )))
}
