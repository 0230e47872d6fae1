//! Starting, approving and cancelling runs — the domain calls behind `StartFailover`,
//! `AlertWebhook`, `FailoverRun` and the CLI.
//!
//! Guarantees:
//! - A start writes the lock, then the run record, then the `preflight` message; if the
//!   message cannot be sent the run is marked failed and the lock released, and the caller
//!   gets a transient error (HTTP 503) so it may retry.
//! - Alerts are deduplicated twice: by every dedup key of the decision (alert id, event id,
//!   `(pair, incident tracking id)`) through create-if-absent blobs `alerts/{digest}.json`, and
//!   by the pair's lock: of any number of concurrent identical alerts exactly one starts a run;
//!   the others are answered with that run's id.
//! - Resolved / Available alerts are recorded on the active run; they never start a failback.
//! - Nothing here does a stage's work: starting answers within the time of a few blob writes.
//!
//! Must not import: handlers, host.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::dr::{DrConfig, FailoverPolicy, Role as ConfigRole};
use crate::store::{self, BlobStore, Precondition, Queue, StoreError};

use super::alert::{self, Alert, AlertParseError, Approval as AlertApproval, Decision, DedupKey};
use super::exec::enqueue_stage;
use super::run::{
    Cancellation, ResolvedAlert, RunRecord, RunStatus, StartError, Trigger, active_run, create_run,
    new_run_id, release_lock, require_run, update_run,
};
use super::stages::{Mode, Policy, Role, Stage, plan};
use super::{FailoverError, error_text};

/// A runbook start (`StartFailover`, CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    pub pair: String,
    pub mode: Mode,
    pub force: bool,
    pub reason: String,
    /// Who asked (CLI user, `function key`, …).
    pub caller: String,
}

/// One stage of a dry-run plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedStage {
    pub stage: Stage,
    pub description: String,
}

/// The answer of a dry run: the stages a run would go through; nothing written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagePlan {
    pub pair: String,
    pub mode: Mode,
    pub dry_run: bool,
    pub stages: Vec<PlannedStage>,
    /// What the run would do (failback: the reverse ARM change plan and preflight findings;
    /// failover: preflight readiness and whom it would invite), when ARM was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<super::preview::Preview>,
}

/// The role of the deployment.
pub fn role_of(cfg: &DrConfig) -> Role {
    match cfg.role {
        ConfigRole::Provider => Role::Provider,
        ConfigRole::Consumer => Role::Consumer,
    }
}

/// The configured pair (provider) or subscription (consumer) name, or an error listing them.
pub fn check_pair(cfg: &DrConfig, pair: &str) -> Result<(), FailoverError> {
    let known = match role_of(cfg) {
        Role::Provider => cfg.pair(pair).is_some(),
        Role::Consumer => cfg.subscription(pair).is_some(),
    };
    if known {
        return Ok(());
    }
    let names: Vec<&str> = cfg
        .pairs
        .iter()
        .map(|p| p.name.as_str())
        .chain(cfg.subscriptions.iter().map(|s| s.name.as_str()))
        .collect();
    Err(FailoverError::UnknownPair {
        pair: pair.to_owned(),
        known: if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        },
    })
}

/// The stage plan of a runbook start (no side effects).
pub fn dry_run_plan(cfg: &DrConfig, pair: &str, mode: Mode) -> Result<StagePlan, FailoverError> {
    check_pair(cfg, pair)?;
    let policy = runbook_policy(cfg, mode)?;
    Ok(StagePlan {
        pair: pair.to_owned(),
        mode,
        dry_run: true,
        stages: plan(mode, policy)
            .into_iter()
            .map(|s| PlannedStage {
                stage: s,
                description: s.describe(mode).to_owned(),
            })
            .collect(),
        preview: None,
    })
}

/// Runbook starts are made by a person, who is the approval.
fn runbook_policy(cfg: &DrConfig, mode: Mode) -> Result<Policy, FailoverError> {
    let role = role_of(cfg);
    if role == Role::Consumer && mode == Mode::Failback {
        return Err(FailoverError::InvalidState {
            run_id: String::new(),
            reason:
                "failback is a provider-side run; a consumer re-subscribes with its own runbook"
                    .into(),
        });
    }
    Ok(Policy {
        role,
        approval_required: false,
    })
}

/// Starts a run from a runbook: lock + record + `preflight` message.
pub async fn start_run(
    store: &dyn BlobStore,
    queue: &dyn Queue,
    cfg: &DrConfig,
    req: &StartRequest,
    now: OffsetDateTime,
) -> Result<RunRecord, StartError> {
    check_pair(cfg, &req.pair)?;
    let policy = runbook_policy(cfg, req.mode)?;
    let mut run = RunRecord::new(
        new_run_id(now),
        req.pair.clone(),
        req.mode,
        policy,
        req.force,
        Trigger {
            kind: "runbook".into(),
            caller: Some(req.caller.clone()),
            reason: req.reason.clone(),
            at: now,
            ..Trigger::default()
        },
        now,
    );
    run.approval.by = Some(req.caller.clone());
    run.approval.at = Some(now);
    launch(store, queue, &run, now).await?;
    Ok(run)
}

/// Creates the run (lock first) and enqueues its first stage; undoes the start if the
/// message cannot be sent.
async fn launch(
    store: &dyn BlobStore,
    queue: &dyn Queue,
    run: &RunRecord,
    now: OffsetDateTime,
) -> Result<(), StartError> {
    create_run(store, run, now).await?;
    if let Err(e) = enqueue_stage(queue, &run.run_id, Stage::Preflight, 0, None, now).await {
        let reason = format!("could not enqueue preflight: {}", error_text(&e));
        let _ = update_run(store, &run.run_id, |r| {
            r.finish(RunStatus::Failed, now, Some(reason.clone()));
            Ok(())
        })
        .await;
        let _ = release_lock(store, &run.pair, &run.run_id).await;
        return Err(StartError::Failed(e));
    }
    tracing::info!(
        event = "failover.started",
        run_id = %run.run_id,
        pair = %run.pair,
        mode = %run.mode,
        trigger = %run.trigger.kind,
        "failover.started"
    );
    Ok(())
}

/// Approves a run waiting in `await-approval` and enqueues that stage at once (the waiting
/// message is then stale and dropped). 409-worthy [`FailoverError::InvalidState`] if the run
/// does not wait for approval.
pub async fn approve(
    store: &dyn BlobStore,
    queue: &dyn Queue,
    run_id: &str,
    by: &str,
    now: OffsetDateTime,
) -> Result<RunRecord, FailoverError> {
    approve_because(store, queue, run_id, by, None, now).await
}

/// [`approve`], recording why on the run's approval (the audit trail: who, when, why).
pub async fn approve_because(
    store: &dyn BlobStore,
    queue: &dyn Queue,
    run_id: &str,
    by: &str,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> Result<RunRecord, FailoverError> {
    let reason = clean_reason(reason);
    let run = update_run(store, run_id, |r| {
        if r.status.is_terminal() {
            return Err(FailoverError::InvalidState {
                run_id: r.run_id.clone(),
                reason: format!("the run has ended ({})", r.status.as_str()),
            });
        }
        if !r.approval.required {
            return Err(FailoverError::InvalidState {
                run_id: r.run_id.clone(),
                reason: "the run does not need approval".into(),
            });
        }
        if r.approval.state == "approved" {
            return Ok(()); // idempotent
        }
        r.approval.state = "approved".into();
        r.approval.by = Some(by.to_owned());
        r.approval.at = Some(now);
        r.approval.reason = reason.clone();
        r.updated_at = now;
        Ok(())
    })
    .await?;
    if run.current_stage == Some(Stage::AwaitApproval) {
        enqueue_stage(queue, run_id, Stage::AwaitApproval, 0, None, now).await?;
    }
    Ok(run)
}

/// Cancels a run before its next stage. A run between stages (or waiting) ends at once; a
/// running stage finishes and the run stops after it. Ended runs are refused.
pub async fn cancel(
    store: &dyn BlobStore,
    run_id: &str,
    by: &str,
    now: OffsetDateTime,
) -> Result<RunRecord, FailoverError> {
    cancel_because(store, run_id, by, None, now).await
}

/// [`cancel`], recording who, when and why on the run ([`Cancellation`]).
pub async fn cancel_because(
    store: &dyn BlobStore,
    run_id: &str,
    by: &str,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> Result<RunRecord, FailoverError> {
    let reason = clean_reason(reason);
    let run = update_run(store, run_id, |r| {
        if r.status.is_terminal() {
            return Err(FailoverError::InvalidState {
                run_id: r.run_id.clone(),
                reason: format!("the run has ended ({})", r.status.as_str()),
            });
        }
        r.cancel_requested = true;
        r.updated_at = now;
        let running = r
            .stages
            .iter()
            .any(|s| s.status == super::run::StageStatus::Running);
        r.cancellation = Some(Cancellation {
            by: by.to_owned(),
            at: now,
            reason: reason.clone(),
            stage: r.current_stage,
        });
        if !running {
            let before = r
                .current_stage
                .map_or_else(|| "the end".to_owned(), |s| s.to_string());
            r.finish(
                RunStatus::Cancelled,
                now,
                Some(format!("cancelled by {by} before {before}")),
            );
        }
        Ok(())
    })
    .await?;
    if run.status.is_terminal() {
        release_lock(store, &run.pair, &run.run_id).await?;
    }
    Ok(run)
}

/// Reads a run (for status answers).
pub async fn status(store: &dyn BlobStore, run_id: &str) -> Result<RunRecord, FailoverError> {
    require_run(store, run_id).await.map(|(r, _)| r)
}

/// A reason as recorded: trimmed, at most 500 characters; empty is none.
fn clean_reason(reason: Option<&str>) -> Option<String> {
    reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(500).collect())
}

/// Every run in the run store (`runs/*.json`), newest first (creation time, then run id), only
/// `pair`'s when given. A record that cannot be read is returned as an error naming it.
pub async fn list_runs(
    store: &dyn BlobStore,
    pair: Option<&str>,
) -> Result<Vec<RunRecord>, FailoverError> {
    let entries = store
        .list("runs/")
        .await
        .map_err(|source| FailoverError::ListRuns {
            source: Box::new(source),
        })?;
    let mut runs = Vec::with_capacity(entries.len());
    for e in entries {
        let Some(run_id) = e
            .path
            .strip_prefix("runs/")
            .and_then(|p| p.strip_suffix(".json"))
        else {
            continue;
        };
        // Gone between the listing and the read: skip it.
        let Some((run, _)) = super::run::load_run(store, run_id).await? else {
            continue;
        };
        if pair.is_none_or(|p| run.pair == p) {
            runs.push(run);
        }
    }
    runs.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.run_id.cmp(&a.run_id))
    });
    Ok(runs)
}

// ---------------------------------------------------------------------------------------------
// Alerts

/// `alerts/{digest}.json`: one per (pair, dedup key) — an alert that covers several pairs
/// starts (and deduplicates) a run for each of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRecord {
    pub key: String,
    pub alert_id: String,
    pub pair: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// `started`, `joined` (an active run existed), `resolved`.
    pub action: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

pub fn alert_path(pair: &str, key: &DedupKey) -> String {
    format!("alerts/{}.json", key.digest_for_pair(pair))
}

/// What happened to one pair of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairAnswer {
    pub pair: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// `started`, `duplicate`, `joined-active-run`, `recorded`, `no-active-run`.
    pub action: String,
    /// For a started run: `required` (it waits for a person) or `automatic`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// For a started run: the decision that started it, with why it waits when it does
    /// (e.g. a multi-region or Global incident never fails over automatically).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

/// Where an alert-started run's RTO clock starts ([`rto_start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RtoStart {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `event-time` (`alertContext.eventTimestamp`), `fire-time` (`essentials.firedDateTime`)
    /// or `receipt` (neither usable: the webhook's own clock).
    pub source: &'static str,
}

impl RtoStart {
    /// "the alert's event time 2025-06-01T12:00:00Z (alertContext.eventTimestamp)" and so on,
    /// for reports.
    pub fn describe(&self) -> String {
        let at = self
            .at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        match self.source {
            "event-time" => format!("the alert's event time {at} (alertContext.eventTimestamp)"),
            "fire-time" => format!("the alert's fire time {at} (essentials.firedDateTime)"),
            _ => format!("the alert's receipt {at} (it carried no usable event or fire time)"),
        }
    }
}

/// The first signal of the incident, where the RTO of a run the alert starts is measured from:
/// the alert's event time, else its fire time; a time in the future (clock skew) or none at
/// all counts from `now`, the receipt.
pub fn rto_start(alert: &Alert, now: OffsetDateTime) -> RtoStart {
    let usable = |t: Option<OffsetDateTime>| t.filter(|t| *t <= now);
    match (usable(alert.event_time), usable(alert.fired_at)) {
        (Some(at), _) => RtoStart {
            at,
            source: "event-time",
        },
        (None, Some(at)) => RtoStart {
            at,
            source: "fire-time",
        },
        (None, None) => RtoStart {
            at: now,
            source: "receipt",
        },
    }
}

/// The webhook's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "decision")]
pub enum AlertAnswer {
    /// Outside the allow-list (403, logged).
    Refused { reason: String },
    /// Nothing to do (200).
    Ignored { code: String, reason: String },
    /// Runs started or joined (202).
    Accepted { pairs: Vec<PairAnswer> },
    /// A recovery recorded (200).
    Recorded { pairs: Vec<PairAnswer> },
}

/// Why an alert could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The body is not an alert we can read (400).
    #[error("cannot read the alert")]
    Parse(#[from] AlertParseError),
    /// Storage failed (503 so the action group retries).
    #[error(transparent)]
    Failover(#[from] FailoverError),
}

/// Parses, decides, deduplicates and starts (or records) — the `AlertWebhook` domain call.
pub async fn ingest_alert(
    store: &dyn BlobStore,
    queue: &dyn Queue,
    cfg: &DrConfig,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<AlertAnswer, AlertError> {
    let alert = alert::parse_alert(body)?;
    let decision = alert::decide_at(&alert, cfg, now);
    let decision = match &decision {
        Decision::StartRun(runs) => {
            let mut answered = std::collections::BTreeMap::new();
            for r in runs {
                if let Some(at) = primary_answered_at(store, &r.pair).await {
                    answered.insert(r.pair.clone(), at);
                }
            }
            alert::route_if_primary_answered(decision, &alert, &|p| answered.get(p).copied())
        }
        _ => decision,
    };
    tracing::info!(
        event = "alert.received",
        alert_id = %alert.alert_id,
        decision = %decision.summary(),
        "alert.received"
    );
    match decision {
        Decision::Refuse { reason } => {
            tracing::warn!(alert_id = %alert.alert_id, %reason, "alert refused: source not allowed");
            Ok(AlertAnswer::Refused { reason })
        }
        Decision::Ignore(i) => Ok(AlertAnswer::Ignored {
            code: i.code.as_str().to_owned(),
            reason: i.reason,
        }),
        Decision::StartRun(starts) => {
            let mut pairs = Vec::new();
            for s in starts {
                pairs.push(start_from_alert(store, queue, cfg, &alert, &s, now).await?);
            }
            Ok(AlertAnswer::Accepted { pairs })
        }
        Decision::RecordResolved(rs) => {
            let mut pairs = Vec::new();
            for r in rs {
                pairs.push(record_resolved(store, &alert, &r, now).await?);
            }
            Ok(AlertAnswer::Recorded { pairs })
        }
    }
}

/// When the pair's primary last answered a read: the time of the latest stored readiness
/// check, if that check reached the primary (no `primary-unreachable` / `primary-account-missing`
/// finding). Unreadable storage counts as "unknown" (the alert is not blocked by it).
async fn primary_answered_at(store: &dyn BlobStore, pair: &str) -> Option<OffsetDateTime> {
    use crate::readiness::report::{Report, codes};
    let path = crate::readiness::history::latest_path(pair);
    let (report, _) = store::get_json::<Report>(store, &path).await.ok()??;
    let reached =
        !report.has(codes::PRIMARY_UNREACHABLE) && !report.has(codes::PRIMARY_ACCOUNT_MISSING);
    reached.then_some(report.checked_at)
}

async fn existing_dedup(
    store: &dyn BlobStore,
    pair: &str,
    keys: &[DedupKey],
) -> Result<Option<AlertRecord>, FailoverError> {
    for k in keys {
        let found = store::get_json::<AlertRecord>(store, &alert_path(pair, k))
            .await
            .map_err(|source| FailoverError::RecordAlert {
                key: k.as_key(),
                source: Box::new(source),
            })?;
        if let Some((rec, _)) = found {
            return Ok(Some(rec));
        }
    }
    Ok(None)
}

async fn write_dedup(
    store: &dyn BlobStore,
    keys: &[DedupKey],
    alert: &Alert,
    pair: &str,
    run_id: Option<&str>,
    action: &str,
    now: OffsetDateTime,
) -> Result<(), FailoverError> {
    for k in keys {
        let rec = AlertRecord {
            key: k.as_key(),
            alert_id: alert.alert_id.clone(),
            pair: pair.to_owned(),
            run_id: run_id.map(str::to_owned),
            action: action.to_owned(),
            received_at: now,
        };
        match store::put_json(
            store,
            &alert_path(pair, k),
            &rec,
            Precondition::IfNoneMatchAny,
        )
        .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(source) => {
                return Err(FailoverError::RecordAlert {
                    key: k.as_key(),
                    source: Box::new(source),
                });
            }
        }
    }
    Ok(())
}

async fn start_from_alert(
    store: &dyn BlobStore,
    queue: &dyn Queue,
    cfg: &DrConfig,
    alert: &Alert,
    s: &alert::StartRun,
    now: OffsetDateTime,
) -> Result<PairAnswer, FailoverError> {
    if let Some(rec) = existing_dedup(store, &s.pair, &s.dedup_keys).await?
        && rec.run_id.is_some()
    {
        return Ok(PairAnswer {
            pair: s.pair.clone(),
            run_id: rec.run_id,
            action: "duplicate".into(),
            approval: None,
            decision: None,
        });
    }
    let role = role_of(cfg);
    let approval_required = match s.approval {
        AlertApproval::AwaitApproval => true,
        AlertApproval::Auto => false,
    };
    let policy = Policy {
        role,
        approval_required,
    };
    let mut run = RunRecord::new(
        new_run_id(now),
        s.pair.clone(),
        Mode::Failover,
        policy,
        false,
        Trigger {
            kind: "alert".into(),
            alert_id: Some(alert.alert_id.clone()),
            rule: alert.rule.clone(),
            dedup_keys: s.dedup_keys.iter().map(DedupKey::as_key).collect(),
            tracking_id: s.tracking_id.clone(),
            caller: None,
            reason: s.reason.clone(),
            at: rto_start(alert, now).at,
        },
        now,
    );
    if approval_required {
        run.approval.route = Some(approval_route_of(cfg, s).to_owned());
    }
    match launch(store, queue, &run, now).await {
        Ok(()) => {
            if let Err(e) = write_dedup(
                store,
                &s.dedup_keys,
                alert,
                &s.pair,
                Some(&run.run_id),
                "started",
                now,
            )
            .await
            {
                // The run is started and holds the lock: a retry joins it. Log only.
                tracing::warn!(run_id = %run.run_id, error = %error_text(&e), "could not record alert dedup keys");
            }
            Ok(PairAnswer {
                pair: s.pair.clone(),
                run_id: Some(run.run_id),
                action: "started".into(),
                approval: Some(
                    if approval_required {
                        "required"
                    } else {
                        "automatic"
                    }
                    .into(),
                ),
                decision: Some(s.reason.clone()),
            })
        }
        Err(StartError::Active { run_id, .. }) => {
            write_dedup(
                store,
                &s.dedup_keys,
                alert,
                &s.pair,
                Some(&run_id),
                "joined",
                now,
            )
            .await?;
            Ok(PairAnswer {
                pair: s.pair.clone(),
                run_id: Some(run_id),
                action: "joined-active-run".into(),
                approval: None,
                decision: None,
            })
        }
        Err(StartError::Failed(e)) => Err(e),
    }
}

/// Why an alert-started run waits for approval (`approval.route`): `policy` only when the
/// pair's own `failover = "approve"` is the reason; an `[alerts]` rule's escalation — or any
/// approval the pair's `auto` policy did not ask for (plausibility, tool fault) — is never
/// `policy`, so such a run never proceeds on approval timeout.
fn approval_route_of(cfg: &DrConfig, s: &alert::StartRun) -> &'static str {
    use super::run::approval_route;
    if s.approval_by_rule {
        return approval_route::ALERT_RULE;
    }
    match approval_policy(cfg, &s.pair) {
        Some(FailoverPolicy::Approve) => approval_route::POLICY,
        _ => approval_route::ALERT_RULE,
    }
}

async fn record_resolved(
    store: &dyn BlobStore,
    alert: &Alert,
    r: &alert::RecordResolved,
    now: OffsetDateTime,
) -> Result<PairAnswer, FailoverError> {
    let Some(run) = active_run(store, &r.pair).await? else {
        write_dedup(store, &r.dedup_keys, alert, &r.pair, None, "resolved", now).await?;
        return Ok(PairAnswer {
            pair: r.pair.clone(),
            run_id: None,
            action: "no-active-run".into(),
            approval: None,
            decision: None,
        });
    };
    let entry = ResolvedAlert {
        alert_id: alert.alert_id.clone(),
        reason: r.reason.clone(),
        at: now,
    };
    update_run(store, &run.run_id, |rec| {
        if !rec
            .resolved_alerts
            .iter()
            .any(|a| a.alert_id == entry.alert_id)
        {
            rec.resolved_alerts.push(entry.clone());
        }
        Ok(())
    })
    .await?;
    write_dedup(
        store,
        &r.dedup_keys,
        alert,
        &r.pair,
        Some(&run.run_id),
        "resolved",
        now,
    )
    .await?;
    Ok(PairAnswer {
        pair: r.pair.clone(),
        run_id: Some(run.run_id),
        action: "recorded".into(),
        approval: None,
        decision: None,
    })
}

/// Whether the pair's policy asks for approval of alert-started runs (for reports).
pub fn approval_policy(cfg: &DrConfig, pair: &str) -> Option<FailoverPolicy> {
    cfg.pair(pair)
        .map(|p| p.failover)
        .or_else(|| cfg.subscription(pair).map(|s| s.failover))
}

/// Clears the pair state back to `normal` (the operator's `failover reset-state` and
/// `POST api/failover/pairs/{pair}/reset`), recording who and why on the state. Refused while a
/// run of the pair is active (it would move the state again).
pub async fn reset_pair_state(
    store: &dyn BlobStore,
    pair: &str,
    by: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<crate::pair_state::PairPhase, FailoverError> {
    if let Some(active) = super::run::active_run(store, pair).await? {
        return Err(FailoverError::InvalidState {
            run_id: active.run_id.clone(),
            reason: format!(
                "run {} of pair {pair} is still active ({}); cancel it before resetting the pair state",
                active.run_id,
                active.status.as_str()
            ),
        });
    }
    crate::pair_state::reset(store, pair, by, reason, now)
        .await
        .map_err(|e| FailoverError::Stage {
            run_id: String::new(),
            stage: "reset-state".into(),
            transient: e.is_transient(),
            reason: super::error_text(&e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::run::{create_run, run_path};
    use crate::store::{MemoryBlobStore, MemoryQueue};
    use time::macros::datetime;

    fn run(id: &str, pair: &str, approval_required: bool, at: OffsetDateTime) -> RunRecord {
        RunRecord::new(
            id.into(),
            pair.into(),
            Mode::Failover,
            Policy {
                role: Role::Provider,
                approval_required,
            },
            false,
            Trigger {
                kind: "alert".into(),
                reason: "region down".into(),
                at,
                ..Trigger::default()
            },
            at,
        )
    }

    #[tokio::test]
    async fn approve_with_a_reason_records_who_when_and_why_on_the_approval() {
        let store = MemoryBlobStore::new();
        let queue = MemoryQueue::new();
        let t = datetime!(2026-03-01 10:00 UTC);
        assert!(
            create_run(&store, &run("r1", "p", true, t), t)
                .await
                .is_ok()
        );
        let later = datetime!(2026-03-01 10:05 UTC);
        let approved = approve_because(
            &store,
            &queue,
            "r1",
            "cli:ann",
            Some("  bridge call ok "),
            later,
        )
        .await
        .expect("approve");
        assert_eq!(approved.approval.state, "approved");
        assert_eq!(approved.approval.by.as_deref(), Some("cli:ann"));
        assert_eq!(approved.approval.at, Some(later));
        assert_eq!(approved.approval.reason.as_deref(), Some("bridge call ok"));
        // Stored, not only answered.
        let stored = status(&store, "r1").await.expect("status");
        assert_eq!(stored.approval.reason.as_deref(), Some("bridge call ok"));
    }

    #[tokio::test]
    async fn cancel_with_a_reason_records_the_cancellation_and_the_stage_it_stopped_before() {
        let store = MemoryBlobStore::new();
        let t = datetime!(2026-03-01 10:00 UTC);
        assert!(
            create_run(&store, &run("r2", "p", false, t), t)
                .await
                .is_ok()
        );
        let cancelled = cancel_because(&store, "r2", "cli:bob", Some("false alarm"), t)
            .await
            .expect("cancel");
        assert_eq!(cancelled.status, RunStatus::Cancelled);
        let c = cancelled.cancellation.expect("a cancellation record");
        assert_eq!(c.by, "cli:bob");
        assert_eq!(c.reason.as_deref(), Some("false alarm"));
        assert_eq!(c.stage, Some(Stage::Preflight));
        assert_eq!(
            status(&store, "r2").await.expect("status").cancellation,
            Some(c)
        );
    }

    #[tokio::test]
    async fn list_runs_is_newest_first_and_filters_by_pair() {
        let store = MemoryBlobStore::new();
        let t1 = datetime!(2026-03-01 10:00 UTC);
        let t2 = datetime!(2026-03-02 10:00 UTC);
        let t3 = datetime!(2026-03-03 10:00 UTC);
        // Different pairs (one lock each); written out of order.
        for (id, pair, at) in [("b", "p2", t2), ("a", "p1", t1), ("c", "p3", t3)] {
            assert!(
                create_run(&store, &run(id, pair, false, at), at)
                    .await
                    .is_ok()
            );
        }
        // Something else under runs/ that is no run record is not listed.
        store
            .put("runs/notes.txt", b"x".to_vec(), Precondition::None)
            .await
            .expect("put");
        let all: Vec<String> = list_runs(&store, None)
            .await
            .expect("list")
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(all, ["c", "b", "a"]);
        let one = list_runs(&store, Some("p2")).await.expect("list");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].run_id, "b");
        assert!(store.get(&run_path("b")).await.expect("get").is_some());
    }
}
