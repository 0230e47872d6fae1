//! The readiness report: status, score and findings of one pair at one moment.
//!
//! Serialised as JSON for Blob storage (`reports/{pair}/latest.json`), the `api/readiness` API and
//! `check --json`; field names are camelCase and are an operator interface (add, never rename).
//! Finding codes are stable strings (see [`codes`]); dashboards and runbooks key on them.
//!
//! Must not import: handlers, host, store, arm, sim (the pair state's view type comes from
//! `pair_state`, plain data).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::model::DrillRecord;
use crate::pair_state::PhaseView;

/// Overall verdict: would a failover work right now?
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Only informational findings.
    Ready,
    /// At least one warning: a failover would work but something needs attention.
    Degraded,
    /// At least one critical finding: a failover would fail or lose consumers/data.
    NotReady,
    /// The pair could not be assessed: a tool fault (credential, endpoint, throttling) or
    /// neither region answered. Says nothing about the regions; never a reason to fail over.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ready => "Ready",
            Status::Degraded => "Degraded",
            Status::NotReady => "NotReady",
            Status::Unknown => "Unknown",
        }
    }

    /// Process exit code of `datashare-dr check`: 0 Ready, 1 Degraded, 2 NotReady,
    /// 3 Unknown (cannot assess).
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ready => 0,
            Status::Degraded => 1,
            Status::NotReady => 2,
            Status::Unknown => 3,
        }
    }

    /// Ordering by precedence of the overall verdict (Ready < Degraded < Unknown < NotReady):
    /// a pair known to be NotReady outranks one that cannot be assessed, which outranks a
    /// Degraded one (the `check` exit code over all pairs follows it).
    pub fn rank(self) -> u8 {
        match self {
            Status::Ready => 0,
            Status::Degraded => 1,
            Status::Unknown => 2,
            Status::NotReady => 3,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "Info",
            Severity::Warning => "Warning",
            Severity::Critical => "Critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub severity: Severity,
    /// Stable code from [`codes`].
    pub code: String,
    /// The ARM id (or pair-relative name) the finding is about.
    pub resource_id: String,
    pub message: String,
    pub remedy: String,
}

/// Findings per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
}

/// Recovery point estimate for one primary share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareRpo {
    pub share: String,
    /// `Hour` / `Day` of the shortest schedule; `None` = no schedule on the share.
    pub recurrence_interval: Option<String>,
    /// End of the last successful snapshot run.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success: Option<OffsetDateTime>,
    /// Age of that snapshot at check time (the RPO if the primary died now), seconds.
    pub age_secs: Option<i64>,
    /// Allowed age: `rpo_factor` × schedule interval, seconds.
    pub limit_secs: Option<i64>,
    pub exceeded: bool,
}

/// The readiness report of one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub pair: String,
    pub status: Status,
    /// 0..=100, see the scoring rules in `readiness` module docs.
    pub score: u8,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    pub primary_region: String,
    pub secondary_region: String,
    pub counts: SeverityCounts,
    /// Most severe first, then by code and resource id (deterministic).
    pub findings: Vec<Finding>,
    pub rpo: Vec<ShareRpo>,
    pub last_drill: Option<DrillRecord>,
    /// The pair state the check answered for (`pairs/{pair}.json`: `{serving, phase, since,
    /// runId}`); `null` when unknown (`check` without storage settings), and absent in reports
    /// stored before it existed. In any phase but `normal` the findings are the failback
    /// readiness (see [`super::failback`]) and the status describes the serving side.
    #[serde(default)]
    pub pair_state: Option<PhaseView>,
    /// Runs of the pair not yet ended (pending, awaiting approval, running), with their stage.
    #[serde(default)]
    pub active_runs: Vec<ActiveRun>,
    /// Set by `ReadinessStatus` when the pair state read at request time differs from the one
    /// the stored check answered for (the findings then wait for the next check).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub state_changed_since_check: bool,
}

/// A run of the pair that has not ended, as readiness shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveRun {
    pub run_id: String,
    /// `failover` | `failback` | `drill`.
    pub mode: String,
    /// `pending` | `awaiting-approval` | `running`.
    pub status: String,
    /// The stage that runs next or now (kebab-case), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Report {
    /// The `n` most severe findings (for notifications).
    pub fn top_findings(&self, n: usize) -> &[Finding] {
        &self.findings[..self.findings.len().min(n)]
    }

    /// True when some finding has this code.
    pub fn has(&self, code: &str) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }
}

/// Stable finding codes.
pub mod codes {
    pub const SECONDARY_ACCOUNT_MISSING: &str = "secondary-account-missing";
    pub const SECONDARY_ACCOUNT_NOT_SUCCEEDED: &str = "secondary-account-not-succeeded";
    pub const SECONDARY_ACCOUNT_WRONG_REGION: &str = "secondary-account-wrong-region";
    pub const SECONDARY_UNREACHABLE: &str = "secondary-unreachable";
    pub const PRIMARY_UNREACHABLE: &str = "primary-unreachable";
    pub const PRIMARY_ACCOUNT_MISSING: &str = "primary-account-missing";
    pub const DRIFT_UNVERIFIED: &str = "drift-unverified";
    pub const SHARE_MISSING: &str = "share-missing";
    pub const SHARE_MISMATCH: &str = "share-mismatch";
    pub const DATASET_MISSING: &str = "dataset-missing";
    pub const DATASET_MISMATCH: &str = "dataset-mismatch";
    pub const DATASET_KIND_RETIRED: &str = "dataset-kind-retired";
    pub const SYNC_SETTING_MISSING: &str = "sync-setting-missing";
    pub const SYNC_SETTING_MISMATCH: &str = "sync-setting-mismatch";
    pub const DRIFT_EXTRA: &str = "drift-extra";
    pub const STORE_UNMAPPED: &str = "store-unmapped";
    pub const STORE_MISSING: &str = "store-missing";
    pub const STORE_WRONG_REGION: &str = "store-wrong-region";
    pub const STORE_UNREACHABLE: &str = "store-unreachable";
    pub const IDENTITY_MISSING: &str = "identity-missing";
    pub const IDENTITY_ROLE_MISSING: &str = "identity-role-missing";
    pub const IDENTITY_ROLE_UNVERIFIABLE: &str = "identity-role-unverifiable";
    pub const CONSUMER_NOT_COVERED: &str = "consumer-not-covered";
    pub const CONSUMER_INVITE_AT_FAILOVER: &str = "consumer-invite-at-failover";
    pub const INVITATION_EXPIRING: &str = "invitation-expiring";
    pub const INVITATION_EXPIRED: &str = "invitation-expired";
    pub const SUBSCRIPTION_EXPIRING: &str = "subscription-expiring";
    pub const RPO_EXCEEDED: &str = "rpo-exceeded";
    pub const RPO_UNKNOWN: &str = "rpo-unknown";
    pub const DRILL_STALE: &str = "drill-stale";
    pub const DRILL_NEVER: &str = "drill-never";
    // A pair that is not `normal` (failed over, or a run moving it): failback readiness.
    pub const PAIR_FAILED_OVER: &str = "pair-failed-over";
    pub const PAIR_RUN_ACTIVE: &str = "pair-run-active";
    pub const PAIR_STATE_STUCK: &str = "pair-state-stuck";
    pub const FAILBACK_PRIMARY_READY: &str = "failback-primary-ready";
    pub const FAILBACK_PRIMARY_UNREACHABLE: &str = "failback-primary-unreachable";
    pub const FAILBACK_PRIMARY_MISSING: &str = "failback-primary-missing";
    pub const FAILBACK_PRIMARY_NOT_SUCCEEDED: &str = "failback-primary-not-succeeded";
    pub const FAILBACK_SHARE_MISSING: &str = "failback-share-missing";
    pub const FAILBACK_CARRIES: &str = "failback-carries";
    /// An account could not be read because of the tool's own fault (the message names the
    /// fault, the remedy its fix); the report is `Unknown`.
    pub const TOOL_FAULT: &str = "tool-fault";
    /// Neither account answered (timeouts / 5xx on both sides); the report is `Unknown`.
    pub const NO_REGION_ANSWERS: &str = "no-region-answers";

    /// Findings that make a report `Unknown` (the pair could not be assessed).
    pub fn is_cannot_assess(code: &str) -> bool {
        code == TOOL_FAULT || code == NO_REGION_ANSWERS
    }
}
