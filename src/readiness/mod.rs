//! Readiness: would a failover of a pair work right now, and if not, what should a person do?
//!
//! Layers (pure core, IO at the rim):
//! - [`model`]: `Observations`, plain owned data about one pair (built by observe or by tests).
//! - [`evaluate()`]: pure `Observations + Policy + now → Report`.
//! - [`report`]: `Report`, `Finding`, `Status`, `Severity` and the stable finding codes.
//!
//! # Checks, codes and severities
//!
//! | code | severity | when |
//! |---|---|---|
//! | `secondary-account-missing` | Critical | the secondary account answers 404 |
//! | `secondary-unreachable` | Critical | the secondary account's region is down / reads fail |
//! | `secondary-account-not-succeeded` | Critical | provisioning state is not `Succeeded` |
//! | `secondary-account-wrong-region` | Critical | the account is not in `secondary_region` |
//! | `identity-missing` | Critical | the secondary account has no managed identity |
//! | `primary-unreachable` | Warning | the primary region is down (failover would still work) |
//! | `primary-account-missing` | Warning | the primary account answers 404 |
//! | `drift-unverified` | Info | primary unreadable, so drift and coverage were not compared |
//! | `share-missing` | Critical | a selected primary share has no secondary copy |
//! | `share-mismatch` | Warning (kind) / Info (description, terms) | share properties differ |
//! | `dataset-missing` | Critical | a primary dataset has no secondary copy |
//! | `dataset-mismatch` | Warning | kind, locator or (mapped) store differ |
//! | `dataset-kind-retired` | Warning | ADLS Gen1 dataset (retired service, not replicable) |
//! | `sync-setting-missing` / `sync-setting-mismatch` | Warning | snapshot schedule absent / different |
//! | `drift-extra` | Info | a secondary share/dataset/schedule has no primary counterpart |
//! | `store-unmapped` | Critical | no mapping rule for a primary dataset's store |
//! | `store-missing` | Critical | a mapped secondary store does not exist |
//! | `store-wrong-region` | Critical | a mapped secondary store is outside `secondary_region` |
//! | `store-unreachable` | Warning | a mapped store could not be read |
//! | `identity-role-missing` | Critical | the secondary identity lacks the reader role on a store |
//! | `identity-role-unverifiable` | Info | SQL/Synapse store: access is a database user |
//! | `consumer-not-covered` | Warning | active primary consumer, policy `now`, not invited on the secondary |
//! | `consumer-invite-at-failover` | Info | same, but the policy is `at-failover` |
//! | `invitation-expiring` / `invitation-expired` | Warning | pending secondary invitation expires within the horizon / has expired |
//! | `subscription-expiring` | Warning | active share subscription (either side) expires within the horizon |
//! | `rpo-exceeded` | Warning | last successful snapshot older than `rpo_factor` × schedule |
//! | `rpo-unknown` | Info | scheduled share without a successful snapshot yet |
//! | `drill-stale` | Warning | last successful drill older than `drill_max_age_days` |
//! | `drill-never` | Info | no drill recorded |
//! | `tool-fault` | Warning (status `Unknown`) | an account could not be read because of the tool's own fault (401/403, endpoint, throttling); names the fault and its fix |
//! | `no-region-answers` | Warning (status `Unknown`) | neither account answers (timeouts / 5xx on both) |
//!
//! # A pair that is not `normal` (failback readiness, [`failback`])
//!
//! When the pair state (`pairs/{pair}.json`) says `failed-over`, `failing-over` or
//! `failing-back`, the checks above are replaced by these (the status then describes the
//! serving side; `pairState` and `activeRuns` in the report say which):
//!
//! | code | severity | when |
//! |---|---|---|
//! | `secondary-account-missing` / `secondary-unreachable` / `secondary-account-not-succeeded` | Critical | the serving secondary is missing / down / not provisioned |
//! | `pair-failed-over` | Info | the pair is failed over (serving side, since, run) |
//! | `pair-run-active` | Info | a run is moving the pair (its status and stage) |
//! | `pair-state-stuck` | Warning | failing over/back, but that run is no longer active (reset-state) |
//! | `failback-primary-unreachable` / `-missing` / `-not-succeeded` | Warning | the original primary cannot take back yet |
//! | `failback-primary-ready` | Info | the primary answers and is provisioned |
//! | `failback-share-missing` | Warning | a share serving on the secondary has no primary copy |
//! | `failback-carries` | Info | a change made on the secondary during the outage a failback would write to the primary |
//!
//! # Status and score
//!
//! A `tool-fault` or `no-region-answers` finding → `Unknown` (score 0, no other findings: nothing
//! was assessed; never a failover remedy). Otherwise any Critical → `NotReady`; else any Warning →
//! `Degraded`; else `Ready`. A primary that does not answer is `primary-unreachable` only while
//! the secondary answers (`arm::fault::judge_accounts`).
//! Score = 100 − 25 × critical − 10 × warning (Info costs nothing), clamped to 0..=100, then
//! capped at 49 for NotReady and 89 for Degraded, so a higher score never means a worse status.
//!
//! Must not import: handlers, host (the surfaces are called by handlers, not the other way round).

pub mod api;
pub mod arm_reader;
pub mod check;
pub mod cli;
pub mod convert;
pub mod error;
pub mod evaluate;
pub mod failback;
pub mod history;
pub mod model;
pub mod notify;
pub mod page;
pub mod report;

pub use error::ReadinessError;
pub use evaluate::{InvitationPolicy, Policy, evaluate, reader_roles, status_and_score};
pub use history::{
    PairState, Transition, last_drill, load_all_latest, load_latest, record_drill, store_report,
};
pub use model::{
    AccountObservation, AccountSnapshot, ConsumerTarget, DatasetObservation, DrillRecord,
    InvitationObservation, Observations, ShareObservation, StoreExistence, StoreKind,
    StoreObservation, SubscriptionObservation, SyncSettingObservation, SynchronizationObservation,
};
pub use notify::{Notification, NotifyTargets, WebhookUrl, record_and_notify};
pub use page::render_status_page;
pub use report::{ActiveRun, Finding, Report, Severity, SeverityCounts, ShareRpo, Status, codes};

#[cfg(test)]
mod tests;
