//! Run records (`runs/{runId}.json`) and the per-pair lock (`locks/{pair}.json`) in the
//! `datashare-dr` container.
//!
//! Guarantees:
//! - A run record is only ever changed by read-modify-write under its ETag
//!   ([`update_run`]); concurrent writers re-read and re-apply their (pure) change.
//! - At most one active run per pair: [`create_run`] takes the lock with create-if-absent
//!   before it writes the run; of two concurrent starts exactly one wins, the other gets
//!   [`StartError::Active`] with the winner's run id. The lock is released with `If-Match` when
//!   the run ends ([`release_lock`]), so a lock taken by a newer run is never removed.
//! - A lock whose run ended (a crash between the end of the run and the release) or whose run
//!   record never appeared (a crash between lock and record, after [`LOCK_ORPHAN_GRACE`]) is
//!   stale and is broken by the next start.
//!
//! Assumptions: clocks of instances agree to within seconds (timestamps are for people and the
//! RTO; correctness rests on ETags, not on time).
//!
//! Must not import: handlers, host.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store::{self, BlobStore, ETag, Precondition, StoreError};

use super::FailoverError;
use super::stages::{Mode, Policy, Role, Stage, plan};

/// A lock whose run record is missing is considered orphaned after this long.
pub const LOCK_ORPHAN_GRACE: Duration = Duration::from_secs(60);

/// `runs/{runId}.json`.
pub fn run_path(run_id: &str) -> String {
    format!("runs/{run_id}.json")
}

/// `locks/{pair}.json`.
pub fn lock_path(pair: &str) -> String {
    format!("locks/{pair}.json")
}

/// Lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Pending,
    Running,
    AwaitingApproval,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::AwaitingApproval => "awaiting-approval",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// What started the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// `alert` or `runbook`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dedup_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_id: Option<String>,
    /// Runbook caller (CLI user, function key name, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    pub reason: String,
    /// The first signal of the incident (alert fire time, or the start request): RTO starts here.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Default for Trigger {
    fn default() -> Trigger {
        Trigger {
            kind: String::new(),
            alert_id: None,
            rule: None,
            dedup_keys: Vec::new(),
            tracking_id: None,
            caller: None,
            reason: String::new(),
            at: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// Approval state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub required: bool,
    /// `not-required`, `pending`, `approved`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub at: Option<OffsetDateTime>,
    /// Why the approver approved (`failover approve --reason`, the HTTP body's `reason`).
    /// Absent in records written before it existed and when no reason was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why the run waits for approval ([`approval_route`]): `policy` (the pair's
    /// `failover = "approve"`), `alert-rule`, `plausibility`, `tool-fault` or
    /// `primary-account-missing` (preflight found the primary account gone). Only a `policy`
    /// run may proceed on `on_approval_timeout = "proceed"`. Absent in records written before
    /// it existed (such a run never proceeds on timeout) and when no approval is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Approved because `approval_timeout_minutes` passed under `on_approval_timeout =
    /// "proceed"` (then `by` is `approval-timeout`), not by a person.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_timeout: bool,
}

/// Why a run was routed to approval (`approval.route` on the run record).
pub mod approval_route {
    /// The pair's (or subscription's) `failover = "approve"` policy.
    pub const POLICY: &str = "policy";
    /// An `[alerts]` rule (`on_degraded`, `on_both_regions`, `on_user_initiated`).
    pub const ALERT_RULE: &str = "alert-rule";
    /// An alert plausibility check.
    pub const PLAUSIBILITY: &str = "plausibility";
    /// A tool fault (auth, config, throttling) seen while deciding.
    pub const TOOL_FAULT: &str = "tool-fault";
    /// Preflight found the primary account missing (ARM 404 naming it) on a run nobody had
    /// approved. Neither a tool fault nor a plausibility check, and, like every route but
    /// [`POLICY`], it never proceeds on timeout: a missing account is no outage a machine may
    /// fail over for on its own.
    pub const PRIMARY_ACCOUNT_MISSING: &str = "primary-account-missing";
}

/// Who cancelled a run, when and why (the audit trail of `failover cancel`). Absent in records
/// written before it existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The stage the run stopped before (or after, when it was running), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

impl Approval {
    pub fn is_approved(&self) -> bool {
        !self.required || self.state == "approved"
    }
}

/// Status of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageStatus {
    Pending,
    Running,
    Waiting,
    Succeeded,
    Skipped,
    Failed,
    Cancelled,
}

/// A finding recorded on the run (something a person should know).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFinding {
    /// `Info`, `Warning`, `Critical`.
    pub severity: String,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// One stage of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRecord {
    pub stage: Stage,
    pub status: StageStatus,
    /// Who executes it now (set with an ETag update; see `exec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub claimed_at: Option<OffsetDateTime>,
    /// Executions started (a re-delivery or a wait counts again).
    #[serde(default)]
    pub attempts: u32,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub started_at: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub ended_at: Option<OffsetDateTime>,
    /// `advance`, `wait`, `done`, `abort`, `skipped`, `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// One line: what the stage did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub correlation_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StageRecord {
    pub fn new(stage: Stage) -> StageRecord {
        StageRecord {
            stage,
            status: StageStatus::Pending,
            claim: None,
            claimed_at: None,
            attempts: 0,
            started_at: None,
            ended_at: None,
            outcome: None,
            summary: None,
            correlation_ids: Vec::new(),
            counts: BTreeMap::new(),
            error: None,
        }
    }
}

/// A resource a drill created, removed by its `cleanup` stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artefact {
    /// `invitation`.
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub removed: bool,
}

/// A Resolved / Available alert received while the run was active (never a failback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedAlert {
    pub alert_id: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A consumer of a share, as recorded for invitations (email or `tenant:<t>/object:<o>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RosterEntry {
    pub share: String,
    pub target: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expiration: Option<OffsetDateTime>,
}

/// The run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    pub pair: String,
    pub mode: Mode,
    pub role: Role,
    pub status: RunStatus,
    /// Continue past a NotReady preflight.
    #[serde(default)]
    pub force: bool,
    pub trigger: Trigger,
    pub approval: Approval,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub completed_at: Option<OffsetDateTime>,
    /// The stage that runs next (or runs now); `None` once the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_stage: Option<Stage>,
    pub stages: Vec<StageRecord>,
    #[serde(default)]
    pub findings: Vec<RunFinding>,
    /// Trigger → complete, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_alerts: Vec<ResolvedAlert>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drill_artefacts: Vec<Artefact>,
    /// Consumers to invite (observed on the primary, or from the last stored roster).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roster: Vec<RosterEntry>,
    /// Whether preflight found the primary reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_reachable: Option<bool>,
    #[serde(default)]
    pub cancel_requested: bool,
    /// Who asked to cancel, when and why (set with `cancel_requested`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Consumer-role runs: what the consumer stages observed and started (primary snapshot,
    /// the secondary share subscription, running operations to poll on the next delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<super::consumer::ConsumerState>,
    /// Provider runs: long-running ARM operations a stage started and handed over (e.g. a
    /// `final-sync` data set replacement); the next delivery polls them before going on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_operations: Vec<crate::arm::client::LroHandle>,
    /// Run events already queued for delivery (`started`, `awaiting-approval`,
    /// `approval-reminder`, …; `stage-failed:{stage}:{attempt}`), so a redelivered stage does
    /// not announce them twice. Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified: Vec<String>,
    /// What `RunWatchdog` did to this run (absent until it first resumed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<WatchdogMark>,
}

/// `RunWatchdog`'s note on a run: how often it re-enqueued which stage, and when last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchdogMark {
    pub stage: Stage,
    pub resumes: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl RunRecord {
    /// A new pending run with every stage of its plan pending.
    pub fn new(
        run_id: String,
        pair: String,
        mode: Mode,
        policy: Policy,
        force: bool,
        trigger: Trigger,
        now: OffsetDateTime,
    ) -> RunRecord {
        RunRecord {
            run_id,
            pair,
            mode,
            role: policy.role,
            status: RunStatus::Pending,
            force,
            trigger,
            approval: Approval {
                required: policy.approval_required,
                state: if policy.approval_required {
                    "pending".into()
                } else {
                    "not-required".into()
                },
                by: None,
                at: None,
                reason: None,
                route: None,
                by_timeout: false,
            },
            created_at: now,
            updated_at: now,
            completed_at: None,
            current_stage: Some(Stage::Preflight),
            stages: plan(mode, policy)
                .into_iter()
                .map(StageRecord::new)
                .collect(),
            findings: Vec::new(),
            rto_secs: None,
            resolved_alerts: Vec::new(),
            drill_artefacts: Vec::new(),
            roster: Vec::new(),
            primary_reachable: None,
            cancel_requested: false,
            cancellation: None,
            error: None,
            consumer: None,
            pending_operations: Vec::new(),
            notified: Vec::new(),
            watchdog: None,
        }
    }

    /// The stage graph's policy of this run.
    pub fn policy(&self) -> Policy {
        Policy {
            role: self.role,
            approval_required: self.approval.required,
        }
    }

    pub fn stage(&self, stage: Stage) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.stage == stage)
    }

    pub fn stage_mut(&mut self, stage: Stage) -> Option<&mut StageRecord> {
        self.stages.iter_mut().find(|s| s.stage == stage)
    }

    /// Stages that finished (succeeded or skipped), for cancel answers and reports.
    pub fn done_stages(&self) -> Vec<Stage> {
        self.stages
            .iter()
            .filter(|s| matches!(s.status, StageStatus::Succeeded | StageStatus::Skipped))
            .map(|s| s.stage)
            .collect()
    }

    /// Ends the run (terminal status, completion time, RTO for a success).
    pub fn finish(&mut self, status: RunStatus, now: OffsetDateTime, error: Option<String>) {
        self.status = status;
        self.completed_at = Some(now);
        self.updated_at = now;
        self.current_stage = None;
        if status == RunStatus::Succeeded {
            self.rto_secs = Some((now - self.trigger.at).as_seconds_f64().max(0.0));
        }
        if error.is_some() {
            self.error = error;
        }
        for s in &mut self.stages {
            if matches!(
                s.status,
                StageStatus::Pending | StageStatus::Waiting | StageStatus::Running
            ) && status != RunStatus::Succeeded
            {
                s.status = StageStatus::Cancelled;
                s.claim = None;
            }
        }
    }
}

/// Contents of `locks/{pair}.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockRecord {
    pub run_id: String,
    pub pair: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another run of the pair is active (HTTP 409 with its id).
    #[error("run {run_id} is already active for pair {pair}")]
    Active { pair: String, run_id: String },
    #[error(transparent)]
    Failed(#[from] FailoverError),
}

/// Reads a run.
pub async fn load_run(
    store: &dyn BlobStore,
    run_id: &str,
) -> Result<Option<(RunRecord, ETag)>, FailoverError> {
    store::get_json(store, &run_path(run_id))
        .await
        .map_err(|source| FailoverError::ReadRun {
            run_id: run_id.to_owned(),
            source: Box::new(source),
        })
}

/// Reads a run that must exist.
pub async fn require_run(
    store: &dyn BlobStore,
    run_id: &str,
) -> Result<(RunRecord, ETag), FailoverError> {
    load_run(store, run_id)
        .await?
        .ok_or_else(|| FailoverError::RunNotFound {
            run_id: run_id.to_owned(),
        })
}

/// Writes a run under `If-Match` (`None` = create only if absent).
pub async fn save_run(
    store: &dyn BlobStore,
    run: &RunRecord,
    etag: Option<&ETag>,
) -> Result<ETag, FailoverError> {
    let pre = match etag {
        Some(e) => Precondition::IfMatch(e.clone()),
        None => Precondition::IfNoneMatchAny,
    };
    store::put_json(store, &run_path(&run.run_id), run, pre)
        .await
        .map_err(|source| FailoverError::WriteRun {
            run_id: run.run_id.clone(),
            source: Box::new(source),
        })
}

/// Read-modify-write of a run under its ETag; `change` may run several times (keep it pure)
/// and may refuse with an error (nothing written).
pub async fn update_run<F>(
    store: &dyn BlobStore,
    run_id: &str,
    mut change: F,
) -> Result<RunRecord, FailoverError>
where
    F: FnMut(&mut RunRecord) -> Result<(), FailoverError>,
{
    let path = run_path(run_id);
    let result = store::update_with_retry::<RunRecord, UpdateErr, _>(store, &path, |cur| {
        let Some(mut run) = cur else {
            return Err(UpdateErr::Domain(FailoverError::RunNotFound {
                run_id: run_id.to_owned(),
            }));
        };
        change(&mut run).map_err(UpdateErr::Domain)?;
        Ok(run)
    })
    .await;
    match result {
        Ok((run, _)) => Ok(run),
        Err(UpdateErr::Domain(e)) => Err(e),
        Err(UpdateErr::Store(source)) => Err(FailoverError::WriteRun {
            run_id: run_id.to_owned(),
            source: Box::new(source),
        }),
    }
}

enum UpdateErr {
    Domain(FailoverError),
    Store(StoreError),
}

impl From<StoreError> for UpdateErr {
    fn from(e: StoreError) -> Self {
        UpdateErr::Store(e)
    }
}

/// The pair's lock, if held.
pub async fn read_lock(
    store: &dyn BlobStore,
    pair: &str,
) -> Result<Option<(LockRecord, ETag)>, FailoverError> {
    store::get_json(store, &lock_path(pair))
        .await
        .map_err(|source| FailoverError::Lock {
            pair: pair.to_owned(),
            source: Box::new(source),
        })
}

/// The run holding the pair's lock, when that run is still active.
pub async fn active_run(
    store: &dyn BlobStore,
    pair: &str,
) -> Result<Option<RunRecord>, FailoverError> {
    let Some((lock, _)) = read_lock(store, pair).await? else {
        return Ok(None);
    };
    Ok(load_run(store, &lock.run_id)
        .await?
        .map(|(r, _)| r)
        .filter(|r| !r.status.is_terminal()))
}

/// A run not yet ended as readiness shows it on the pair's card (`activeRuns`).
pub fn active_run_view(run: &RunRecord) -> crate::readiness::ActiveRun {
    crate::readiness::ActiveRun {
        run_id: run.run_id.clone(),
        mode: run.mode.as_str().to_owned(),
        status: run.status.as_str().to_owned(),
        stage: run.current_stage.map(|s| s.as_str().to_owned()),
        created_at: run.created_at,
    }
}

/// The pair's runs not yet ended (the one holding the pair's lock), for readiness.
pub async fn active_runs(
    store: &dyn BlobStore,
    pair: &str,
) -> Result<Vec<crate::readiness::ActiveRun>, FailoverError> {
    Ok(active_run(store, pair)
        .await?
        .iter()
        .map(active_run_view)
        .collect())
}

/// Takes the pair's lock for `run` and writes the run record (in that order). Exactly one of
/// several concurrent callers succeeds; the others get [`StartError::Active`].
pub async fn create_run(
    store: &dyn BlobStore,
    run: &RunRecord,
    now: OffsetDateTime,
) -> Result<ETag, StartError> {
    let lock = LockRecord {
        run_id: run.run_id.clone(),
        pair: run.pair.clone(),
        at: now,
    };
    let path = lock_path(&run.pair);
    let lock_err = |source| FailoverError::Lock {
        pair: run.pair.clone(),
        source: Box::new(source),
    };
    // Two rounds: the second one after breaking a stale lock.
    for _ in 0..2 {
        match store::put_json(store, &path, &lock, Precondition::IfNoneMatchAny).await {
            Ok(_) => {
                return save_run(store, run, None).await.map_err(|e| {
                    // Leave the lock: a crash here is what LOCK_ORPHAN_GRACE covers; an error
                    // is reported and the next start breaks the orphaned lock.
                    StartError::Failed(e)
                });
            }
            Err(StoreError::AlreadyExists { .. }) => {
                let Some((held, etag)) = read_lock(store, &run.pair).await? else {
                    continue; // released meanwhile
                };
                let holder = load_run(store, &held.run_id).await?;
                let stale = lock_is_stale(&held, holder.as_ref().map(|(r, _)| r), now);
                if !stale {
                    return Err(StartError::Active {
                        pair: run.pair.clone(),
                        run_id: held.run_id,
                    });
                }
                match store.delete(&path, Some(&etag)).await {
                    Ok(_) | Err(StoreError::PreconditionFailed { .. }) => continue,
                    Err(e) => return Err(lock_err(e).into()),
                }
            }
            Err(e) => return Err(lock_err(e).into()),
        }
    }
    let held = read_lock(store, &run.pair)
        .await?
        .map(|(l, _)| l.run_id)
        .unwrap_or_default();
    Err(StartError::Active {
        pair: run.pair.clone(),
        run_id: held,
    })
}

/// Whether a lock may be broken: its run ended, or its run record never appeared within
/// [`LOCK_ORPHAN_GRACE`] (a crash between taking the lock and writing the run).
pub fn lock_is_stale(lock: &LockRecord, holder: Option<&RunRecord>, now: OffsetDateTime) -> bool {
    match holder {
        Some(r) => r.status.is_terminal(),
        None => now - lock.at > LOCK_ORPHAN_GRACE,
    }
}

/// Every lock held (`locks/*.json`), with its ETag.
pub async fn list_locks(store: &dyn BlobStore) -> Result<Vec<(LockRecord, ETag)>, FailoverError> {
    let entries = store
        .list("locks/")
        .await
        .map_err(|source| FailoverError::ListRuns {
            source: Box::new(source),
        })?;
    let mut out = Vec::new();
    for e in entries {
        let Some(pair) = e
            .path
            .strip_prefix("locks/")
            .and_then(|p| p.strip_suffix(".json"))
        else {
            continue;
        };
        if let Some(held) = read_lock(store, pair).await? {
            out.push(held);
        }
    }
    Ok(out)
}

/// Breaks the pair's lock when it is the version `etag` names (a lock taken meanwhile by a new
/// run is left alone). Returns whether it was removed.
pub async fn break_lock(
    store: &dyn BlobStore,
    pair: &str,
    etag: &ETag,
) -> Result<bool, FailoverError> {
    match store.delete(&lock_path(pair), Some(etag)).await {
        Ok(removed) => Ok(removed),
        Err(StoreError::PreconditionFailed { .. }) => Ok(false),
        Err(source) => Err(FailoverError::Lock {
            pair: pair.to_owned(),
            source: Box::new(source),
        }),
    }
}

/// Releases the pair's lock if `run_id` still holds it (If-Match, so a newer holder is safe).
pub async fn release_lock(
    store: &dyn BlobStore,
    pair: &str,
    run_id: &str,
) -> Result<(), FailoverError> {
    let Some((lock, etag)) = read_lock(store, pair).await? else {
        return Ok(());
    };
    if lock.run_id != run_id {
        return Ok(());
    }
    match store.delete(&lock_path(pair), Some(&etag)).await {
        Ok(_) | Err(StoreError::PreconditionFailed { .. }) => Ok(()),
        Err(source) => Err(FailoverError::Lock {
            pair: pair.to_owned(),
            source: Box::new(source),
        }),
    }
}

/// A fresh run id: UTC timestamp + random suffix (sortable, URL- and blob-safe).
pub fn new_run_id(now: OffsetDateTime) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{:04}{:02}{:02}t{:02}{:02}{:02}-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        &suffix[..12]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryBlobStore;

    fn run(id: &str, pair: &str) -> RunRecord {
        let now = OffsetDateTime::now_utc();
        RunRecord::new(
            id.into(),
            pair.into(),
            Mode::Failover,
            Policy {
                role: Role::Provider,
                approval_required: false,
            },
            false,
            Trigger {
                kind: "runbook".into(),
                reason: "test".into(),
                at: now,
                ..Trigger::default()
            },
            now,
        )
    }

    #[test]
    fn a_run_record_written_before_approval_reasons_and_cancellations_still_loads() {
        // As the previous version wrote it: approval without `reason`, no `cancellation`.
        let old = r#"{"runId":"r-old","pair":"p","mode":"failover","role":"provider",
            "status":"cancelled","trigger":{"kind":"runbook","caller":"cli:ann",
            "reason":"test","at":"2026-01-01T00:00:00Z"},
            "approval":{"required":true,"state":"approved","by":"cli:ann",
            "at":"2026-01-01T00:01:00Z"},
            "createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:02:00Z",
            "stages":[],"cancelRequested":true,"error":"cancelled by cli:ann before final-sync"}"#;
        let run: RunRecord = serde_json::from_str(old).expect("an older record loads");
        assert_eq!(run.approval.by.as_deref(), Some("cli:ann"));
        assert_eq!(run.approval.reason, None);
        assert_eq!(run.cancellation, None);
        // And a record without them is written as before (no new keys).
        let text = serde_json::to_string(&run).expect("encode");
        assert!(!text.contains("reason\":null"), "{text}");
        assert!(!text.contains("cancellation"), "{text}");
    }

    #[tokio::test]
    async fn a_second_start_for_the_same_pair_gets_the_active_run_id() {
        let store = MemoryBlobStore::new();
        let now = OffsetDateTime::now_utc();
        assert!(create_run(&store, &run("r1", "p"), now).await.is_ok());
        match create_run(&store, &run("r2", "p"), now).await {
            Err(StartError::Active { run_id, .. }) => assert_eq!(run_id, "r1"),
            other => panic!("expected Active, got {other:?}"),
        }
        // Another pair is independent.
        assert!(create_run(&store, &run("r3", "q"), now).await.is_ok());
    }

    #[tokio::test]
    async fn a_lock_held_by_a_finished_run_is_broken_by_the_next_start() {
        let store = MemoryBlobStore::new();
        let now = OffsetDateTime::now_utc();
        assert!(create_run(&store, &run("r1", "p"), now).await.is_ok());
        let done = update_run(&store, "r1", |r| {
            r.finish(RunStatus::Succeeded, now, None);
            Ok(())
        })
        .await;
        assert!(done.is_ok());
        assert!(create_run(&store, &run("r2", "p"), now).await.is_ok());
        let lock = read_lock(&store, "p")
            .await
            .ok()
            .flatten()
            .map(|l| l.0.run_id);
        assert_eq!(lock.as_deref(), Some("r2"));
    }

    /// A crash between taking the lock and writing the run record leaves a lock whose run
    /// never appears: it holds the pair for [`LOCK_ORPHAN_GRACE`], then the next start breaks it.
    #[tokio::test]
    async fn a_lock_whose_run_never_appeared_is_broken_after_the_grace() {
        let store = MemoryBlobStore::new();
        let locked_at = OffsetDateTime::now_utc();
        let orphan = LockRecord {
            run_id: "r-lost".into(),
            pair: "p".into(),
            at: locked_at,
        };
        let put = store::put_json(
            &store,
            &lock_path("p"),
            &orphan,
            Precondition::IfNoneMatchAny,
        )
        .await;
        assert!(put.is_ok(), "{put:?}");
        let grace = time::Duration::try_from(LOCK_ORPHAN_GRACE).unwrap_or_default();
        // Within the grace the record may still be on its way: the pair stays taken.
        let early = locked_at + grace - time::Duration::seconds(5);
        match create_run(&store, &run("r2", "p"), early).await {
            Err(StartError::Active { run_id, .. }) => assert_eq!(run_id, "r-lost"),
            other => panic!("expected Active within the grace, got {other:?}"),
        }
        // After it, the lock is orphaned and the next start takes the pair.
        let late = locked_at + grace + time::Duration::seconds(1);
        let started = create_run(&store, &run("r3", "p"), late).await;
        assert!(started.is_ok(), "{started:?}");
        let lock = read_lock(&store, "p")
            .await
            .ok()
            .flatten()
            .map(|l| l.0.run_id);
        assert_eq!(lock.as_deref(), Some("r3"));
        assert!(matches!(load_run(&store, "r3").await, Ok(Some(_))));
    }

    #[tokio::test]
    async fn releasing_only_removes_the_lock_of_the_same_run() {
        let store = MemoryBlobStore::new();
        let now = OffsetDateTime::now_utc();
        assert!(create_run(&store, &run("r1", "p"), now).await.is_ok());
        assert!(release_lock(&store, "p", "someone-else").await.is_ok());
        assert!(read_lock(&store, "p").await.ok().flatten().is_some());
        assert!(release_lock(&store, "p", "r1").await.is_ok());
        assert!(read_lock(&store, "p").await.ok().flatten().is_none());
    }

    #[tokio::test]
    async fn concurrent_starts_yield_exactly_one_run() {
        let store = MemoryBlobStore::new();
        let now = OffsetDateTime::now_utc();
        let runs: Vec<RunRecord> = (0..50).map(|i| run(&format!("r{i}"), "p")).collect();
        let results =
            futures::future::join_all(runs.iter().map(|r| create_run(&store, r, now))).await;
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1);
        let listed = store.list("runs/").await.map(|l| l.len()).unwrap_or(0);
        assert_eq!(listed, 1);
    }

    #[test]
    fn the_rto_runs_from_the_trigger_to_the_end() {
        let mut r = run("r1", "p");
        let end = r.trigger.at + time::Duration::seconds(42);
        r.finish(RunStatus::Succeeded, end, None);
        assert_eq!(r.rto_secs, Some(42.0));
        assert_eq!(r.current_stage, None);
    }
}
