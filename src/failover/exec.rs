//! `run_one_stage`: execute one stage of one run, as the `FailoverStage` handler and the
//! in-process runner both call it.
//!
//! Guarantees:
//! - Level-triggered: each stage observes the accounts before it writes; PUTs are upserts with
//!   deterministic names (an invitation's name derives from its target), so a re-delivered
//!   message does no second write.
//! - A message for a stage the run already passed is acknowledged and dropped
//!   ([`Outcome::Done`]); the one exception is the stage right before the current one while
//!   the current stage has never been claimed — then the next message is emitted again
//!   (covers a crash between recording a stage and enqueueing its successor).
//! - A stage is claimed with an ETag-guarded update before it runs; a second delivery that
//!   finds a live claim waits ([`Outcome::Wait`]) instead of running it again. A claim older
//!   than its lease ([`StageContext::claim_lease`], default [`CLAIM_LEASE`]) is taken over (the
//!   claimant died).
//! - Claims cannot lapse while their stage runs: a heartbeat renews `claimedAt` (ETag-guarded,
//!   only while the claim is still ours) every quarter of the lease, however long the stage
//!   takes (a whole replicate pass, the client's own pacing). When a renewal finds the claim
//!   taken, or renewals fail until the lease is about to end, the stage body is dropped at its
//!   next await — before its next write — and the delivery ends with
//!   [`FailoverError::ClaimLost`] handled as "the new claimant owns the result". So is a claim made by an earlier
//!   delivery of the very same queue message ([`Delivery`]): the host hands a message out again
//!   only after the invocation that held it failed (e.g. the process was killed) or timed out,
//!   so that claimant is gone and waiting out the lease would only delay the run.
//! - On an error the claim is released (best effort) and the error returned: the caller maps
//!   it through [`error_policy`](super::stages::error_policy).
//! - Waiting is a value (`Wait(d)`): the caller re-enqueues with a visibility delay; nothing
//!   here sleeps.
//!
//! Must not import: handlers, host.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::arm::client::{ArmClient, LroHandle, LroStatus};
use crate::arm::error::ArmError;
use crate::arm::fault::{Failure, classify};
use crate::arm::id::{AccountId, ShareId};
use crate::config::dr::{self, ConsumerTarget, DrConfig, Pair};
use crate::pair_state::{self, PairPhase};
use crate::readiness::arm_reader::ArmReader;
use crate::readiness::{self, Status, codes};
use crate::reconcile::apply::ReplicateOptions;
use crate::reconcile::convert::{invitation_body, schedule_body};
use crate::reconcile::diff::invitation_name;
use crate::reconcile::guard::{record_inventory, replicate_limited};
use crate::reconcile::invite::put_invitation_observed;
use crate::reconcile::model::{
    AccountModel, InvitationStatus, ShareKind, SubscriptionStatus, Target,
};
use crate::reconcile::observe::{ObserveOptions, observe_account};
use crate::reconcile::plan::NewInvitation;
use crate::store::{self, BlobStore, NOTIFICATIONS_QUEUE, Precondition, Queue};

use super::FailoverError;
use super::run::{
    Artefact, RosterEntry, RunFinding, RunRecord, RunStatus, StageRecord, StageStatus,
    release_lock, require_run, save_run, update_run,
};
use super::stages::{Mode, Outcome, Role, Stage, next, position};

/// A claim older than this is considered abandoned (its process died) and is taken over.
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);
/// How long a second delivery waits when another one holds the stage.
pub const CLAIMED_RETRY: Duration = Duration::from_secs(15);

/// A stage message: `{"runId": "...", "stage": "preflight", "attempt": 0, "notBefore": "RFC3339"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageMessage {
    pub run_id: String,
    pub stage: String,
    #[serde(default)]
    pub attempt: u32,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
}

impl StageMessage {
    pub fn new(run_id: &str, stage: Stage, attempt: u32) -> StageMessage {
        StageMessage {
            run_id: run_id.to_owned(),
            stage: stage.as_str().to_owned(),
            attempt,
            not_before: None,
        }
    }
}

/// Wall-clock time plus an offset the in-process runner advances instead of sleeping
/// (virtual time). Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }
    /// Moves virtual time forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 2);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Everything a stage needs. One per process (handlers) or per in-process run.
#[derive(Clone)]
pub struct StageContext {
    pub config: Arc<DrConfig>,
    pub arm: ArmClient,
    pub store: Arc<dyn BlobStore>,
    pub queue: Arc<dyn Queue>,
    pub clock: Clock,
    /// Re-check interval of `await-approval`.
    pub approval_poll: Duration,
    /// Deadline of reads that may hit a region that is down (the primary): an outage should
    /// turn into a finding quickly, not into minutes of retries.
    pub probe_deadline: Duration,
    /// The queue delivery being processed, when the caller knows it (the `FailoverStage`
    /// handler): lets a redelivery take over the claim its own dead predecessor left behind.
    pub delivery: Option<Delivery>,
    /// How long a stage polls a long-running ARM operation itself before handing it to the
    /// queue: the handle goes on the run record and the stage re-enqueues with a visibility
    /// delay (never a sleep for the operation's whole life).
    pub lro_handoff: Duration,
    /// Where run events go (`notifications` channels) and how their links read.
    pub events: super::events::EventSettings,
    /// How long a stage claim lives without renewal; the running stage renews it every quarter
    /// of this (the heartbeat). Default [`CLAIM_LEASE`].
    pub claim_lease: Duration,
}

/// One delivery of a queue message: the message id (stable across redeliveries) and the
/// host's dequeue count (1 on the first delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: String,
    pub dequeue_count: u32,
}

impl Delivery {
    /// The claim token of this delivery: `{messageId}#{dequeueCount}#{uuid}`.
    fn token(&self) -> String {
        format!(
            "{}#{}#{}",
            self.message_id,
            self.dequeue_count,
            uuid::Uuid::new_v4()
        )
    }

    /// Whether `claim` was made by an earlier delivery of this same message (whose invocation
    /// the host has given up on before handing the message out again).
    pub fn supersedes(&self, claim: &str) -> bool {
        let mut parts = claim.splitn(3, '#');
        let (Some(id), Some(count), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        id == self.message_id && count.parse::<u32>().is_ok_and(|c| c < self.dequeue_count)
    }
}

impl std::fmt::Debug for StageContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageContext")
            .field("config", &self.config.source)
            .finish_non_exhaustive()
    }
}

impl StageContext {
    pub fn new(
        config: Arc<DrConfig>,
        arm: ArmClient,
        store: Arc<dyn BlobStore>,
        queue: Arc<dyn Queue>,
    ) -> StageContext {
        StageContext {
            config,
            arm,
            store,
            queue,
            clock: Clock::default(),
            approval_poll: Duration::from_secs(30),
            probe_deadline: Duration::from_secs(20),
            delivery: None,
            lro_handoff: Duration::from_secs(10),
            events: super::events::EventSettings::default(),
            claim_lease: CLAIM_LEASE,
        }
    }
}

/// What a stage body reports (provider stages here, consumer stages in `consumer`).
#[derive(Debug, Default)]
pub(super) struct StageResult {
    pub(super) kind: ResultKind,
    pub(super) summary: String,
    pub(super) counts: BTreeMap<String, u64>,
    /// `x-ms-correlation-request-id`s of the ARM calls the stage made.
    pub(super) correlation_ids: Vec<String>,
    pub(super) findings: Vec<RunFinding>,
    artefacts: Vec<Artefact>,
    removed_artefacts: Vec<String>,
    roster: Option<Vec<RosterEntry>>,
    primary_reachable: Option<bool>,
    /// Preflight found the primary account missing on a run nobody approved: the run now
    /// waits in `await-approval` (a missing account is not an outage a machine may act on).
    require_approval: bool,
    /// `Some` replaces the run's long-running operations to poll on the next delivery.
    pending_operations: Option<Vec<LroHandle>>,
}

/// How a stage ended.
#[derive(Debug, Default, PartialEq)]
pub(super) enum ResultKind {
    #[default]
    Done,
    /// Nothing to do (by configuration, or the primary is down): recorded as `skipped`.
    Skipped,
    /// Run again after this delay (a re-enqueue, never a sleep).
    Wait(Duration),
    Abort(String),
}

impl StageResult {
    pub(super) fn done(summary: impl Into<String>) -> StageResult {
        StageResult {
            summary: summary.into(),
            ..StageResult::default()
        }
    }
    pub(super) fn count(&mut self, key: &str, n: u64) {
        *self.counts.entry(key.to_owned()).or_default() += n;
    }
    /// A finding of the stage that reports it ([`commit`] records which stage that is).
    pub(super) fn finding(&mut self, severity: &str, code: &str, message: impl Into<String>) {
        self.findings.push(RunFinding {
            severity: severity.into(),
            code: code.into(),
            message: message.into(),
            stage: None,
        });
    }
}

/// Rounds (executions) of `final-sync` (or `enable-schedules`) that wait for handed-over operations before the run
/// goes on without them (with a Warning finding); ~1–60 s each.
const FINAL_SYNC_MAX_ROUNDS: u32 = 30;

/// Deliveries of a `preflight` message that retry a failed read of the primary's consumers
/// before the run goes on without them (with a Critical finding).
const ROSTER_READ_DELIVERIES: u32 = 3;

/// Deliveries of an `enable-schedules` message that retry a failed (transient) read of the
/// source's snapshot schedules before the stage goes on without them (with a Warning finding).
const SCHEDULE_READ_DELIVERIES: u32 = 3;

pub(super) fn stage_err(
    run: &RunRecord,
    stage: Stage,
    reason: impl Into<String>,
    transient: bool,
) -> FailoverError {
    FailoverError::Stage {
        run_id: run.run_id.clone(),
        stage: stage.as_str().into(),
        reason: reason.into(),
        transient,
    }
}

pub(super) fn arm_err(
    run: &RunRecord,
    stage: Stage,
    operation: &str,
    resource: &str,
    e: ArmError,
) -> FailoverError {
    FailoverError::Arm {
        run_id: run.run_id.clone(),
        stage: stage.as_str().into(),
        operation: operation.into(),
        resource: resource.into(),
        source: Box::new(e),
    }
}

/// Runs the stage a message names (see the module docs for the guarantees).
pub async fn run_one_stage(
    ctx: &StageContext,
    msg: &StageMessage,
) -> Result<Outcome, FailoverError> {
    let Some(stage) = Stage::parse(&msg.stage) else {
        return Err(FailoverError::InvalidState {
            run_id: msg.run_id.clone(),
            reason: format!("unknown stage {:?}", msg.stage),
        });
    };
    let store = ctx.store.as_ref();
    let token = match &ctx.delivery {
        Some(d) => d.token(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    // Claim (a few rounds: a concurrent writer changes the ETag).
    let mut claimed: Option<RunRecord> = None;
    for _ in 0..5 {
        let (mut run, etag) = require_run(store, &msg.run_id).await?;
        if run.status.is_terminal() {
            tracing::info!(run_id = %run.run_id, stage = %stage, "run already ended; message dropped");
            return Ok(Outcome::Done);
        }
        let Some(current) = run.current_stage else {
            return Ok(Outcome::Done);
        };
        let policy = run.policy();
        let (Some(at), Some(cur)) = (
            position(run.mode, policy, stage),
            position(run.mode, policy, current),
        ) else {
            return Err(FailoverError::InvalidState {
                run_id: run.run_id.clone(),
                reason: format!("stage {stage} is not part of a {} run", run.mode),
            });
        };
        if at != cur {
            let current_untouched = run
                .stage(current)
                .is_some_and(|s| s.status == StageStatus::Pending && s.attempts == 0);
            if at + 1 == cur && current_untouched {
                tracing::info!(run_id = %run.run_id, stage = %stage, next = %current, "stage already recorded; emitting the next message again");
                return Ok(Outcome::Advance(current));
            }
            tracing::info!(run_id = %run.run_id, stage = %stage, current = %current, "message for another stage; dropped");
            return Ok(Outcome::Done);
        }
        let now = ctx.clock.now();
        if run.cancel_requested {
            return cancel_now(ctx, &run.run_id, now).await;
        }
        let Some(rec) = run.stage_mut(stage) else {
            return Ok(Outcome::Done);
        };
        let predecessor_died = ctx
            .delivery
            .as_ref()
            .zip(rec.claim.as_deref())
            .is_some_and(|(d, claim)| d.supersedes(claim));
        if rec.status == StageStatus::Running
            && rec.claim.is_some()
            && !predecessor_died
            && rec.claimed_at.is_some_and(|t| {
                now - t < time::Duration::try_from(ctx.claim_lease).unwrap_or_default()
            })
        {
            tracing::info!(run_id = %msg.run_id, stage = %stage, "stage is claimed by another delivery; waiting");
            return Ok(Outcome::Wait(CLAIMED_RETRY));
        }
        rec.status = StageStatus::Running;
        rec.claim = Some(token.clone());
        rec.claimed_at = Some(now);
        rec.attempts += 1;
        rec.started_at.get_or_insert(now);
        rec.error = None;
        run.status = if stage == Stage::AwaitApproval && !run.approval.is_approved() {
            RunStatus::AwaitingApproval
        } else {
            RunStatus::Running
        };
        run.updated_at = now;
        match save_run(store, &run, Some(&etag)).await {
            Ok(_) => {
                claimed = Some(run);
                break;
            }
            Err(FailoverError::WriteRun { source, .. })
                if matches!(*source, store::StoreError::PreconditionFailed { .. }) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    let Some(run) = claimed else {
        return Ok(Outcome::Wait(CLAIMED_RETRY));
    };
    if stage == Stage::Preflight {
        announce_start(ctx, &run).await;
    }

    // The stage body runs while the heartbeat keeps the claim alive; whichever ends first
    // wins. A lost claim drops the body at its current await, before any further write.
    let body = execute(ctx, &run, stage);
    let heartbeat = heartbeat(ctx, &run.run_id, stage, &token);
    let executed = tokio::select! {
        r = body => r,
        lost = heartbeat => Err(lost),
    };
    let result = match executed {
        Ok(r) => r,
        Err(FailoverError::ClaimLost { .. }) => {
            tracing::warn!(run_id = %run.run_id, stage = %stage, "stage claim lost; stopped before the next write, result left to the new claimant");
            return Ok(Outcome::Done);
        }
        Err(e) => {
            let text = super::error_text(&e);
            let release = update_run(store, &run.run_id, |r| {
                if let Some(rec) = r.stage_mut(stage)
                    && rec.claim.as_deref() == Some(token.as_str())
                {
                    rec.status = StageStatus::Pending;
                    rec.claim = None;
                    rec.error = Some(text.clone());
                }
                Ok(())
            })
            .await;
            if let Err(re) = release {
                tracing::warn!(run_id = %run.run_id, error = %re, "could not release the stage claim");
            }
            announce_stage_failed(ctx, &run, stage, &text).await;
            return Err(e);
        }
    };
    commit(ctx, &run, stage, &token, result).await
}

/// Records a stage's result under the claim and decides the outcome.
async fn commit(
    ctx: &StageContext,
    run: &RunRecord,
    stage: Stage,
    token: &str,
    result: StageResult,
) -> Result<Outcome, FailoverError> {
    let now = ctx.clock.now();
    let mut outcome = Outcome::Done;
    let updated = update_run(ctx.store.as_ref(), &run.run_id, |r| {
        let Some(rec) = r.stage_mut(stage) else {
            return Err(FailoverError::InvalidState {
                run_id: run.run_id.clone(),
                reason: format!("stage {stage} vanished from the record"),
            });
        };
        if rec.claim.as_deref() != Some(token) {
            // Someone took the stage over (our lease ran out); their result counts.
            outcome = Outcome::Done;
            return Err(FailoverError::ClaimLost {
                run_id: run.run_id.clone(),
                stage: stage.as_str().into(),
            });
        }
        rec.claim = None;
        rec.summary = Some(result.summary.clone());
        for (k, v) in &result.counts {
            rec.counts.insert(k.clone(), *v);
        }
        for c in &result.correlation_ids {
            if !rec.correlation_ids.contains(c) {
                rec.correlation_ids.push(c.clone());
            }
        }
        match &result.kind {
            ResultKind::Done | ResultKind::Skipped => {
                rec.status = if result.kind == ResultKind::Skipped {
                    StageStatus::Skipped
                } else {
                    StageStatus::Succeeded
                };
                rec.outcome = Some(
                    if result.kind == ResultKind::Skipped {
                        "skipped"
                    } else if stage == Stage::Complete {
                        "done"
                    } else {
                        "advance"
                    }
                    .into(),
                );
                rec.ended_at = Some(now);
            }
            ResultKind::Wait(_) => {
                rec.status = StageStatus::Waiting;
                rec.outcome = Some("wait".into());
            }
            ResultKind::Abort(reason) => {
                rec.status = StageStatus::Failed;
                rec.outcome = Some("abort".into());
                rec.error = Some(reason.clone());
                rec.ended_at = Some(now);
            }
        }
        for f in &result.findings {
            let f = RunFinding {
                stage: Some(stage),
                ..f.clone()
            };
            if !r.findings.contains(&f) {
                r.findings.push(f);
            }
        }
        for a in &result.artefacts {
            if !r.drill_artefacts.iter().any(|x| x.id == a.id) {
                r.drill_artefacts.push(a.clone());
            }
        }
        for id in &result.removed_artefacts {
            if let Some(a) = r.drill_artefacts.iter_mut().find(|a| &a.id == id) {
                a.removed = true;
            }
        }
        if let Some(roster) = &result.roster {
            r.roster = roster.clone();
        }
        if result.primary_reachable.is_some() {
            r.primary_reachable = result.primary_reachable;
        }
        if result.require_approval && !r.approval.required {
            r.approval.required = true;
            r.approval.state = "pending".into();
            r.approval.route = Some(super::run::approval_route::PRIMARY_ACCOUNT_MISSING.into());
            if r.stage(Stage::AwaitApproval).is_none() {
                let at = r
                    .stages
                    .iter()
                    .position(|s| s.stage == Stage::Preflight)
                    .map_or(0, |i| i + 1);
                r.stages.insert(at, StageRecord::new(Stage::AwaitApproval));
            }
        }
        if let Some(ops) = &result.pending_operations {
            r.pending_operations = ops.clone();
        }
        r.updated_at = now;
        outcome = match &result.kind {
            ResultKind::Wait(d) => {
                if stage == Stage::AwaitApproval {
                    r.status = RunStatus::AwaitingApproval;
                }
                Outcome::Wait(*d)
            }
            ResultKind::Abort(reason) => {
                r.finish(RunStatus::Failed, now, Some(reason.clone()));
                Outcome::Abort(reason.clone())
            }
            ResultKind::Done | ResultKind::Skipped => match next(r.mode, r.policy(), stage) {
                None => {
                    r.finish(RunStatus::Succeeded, now, None);
                    Outcome::Done
                }
                Some(n) if r.cancel_requested => {
                    r.finish(
                        RunStatus::Cancelled,
                        now,
                        Some(format!("cancelled before {n}")),
                    );
                    Outcome::Abort(format!("cancelled before {n}"))
                }
                Some(n) => {
                    r.current_stage = Some(n);
                    r.status = RunStatus::Running;
                    Outcome::Advance(n)
                }
            },
        };
        Ok(())
    })
    .await;
    let run_after = match updated {
        Ok(r) => r,
        Err(FailoverError::ClaimLost { .. }) => {
            tracing::warn!(run_id = %run.run_id, stage = %stage, "claim lost; result left to the new claimant");
            return Ok(Outcome::Done);
        }
        Err(e) => return Err(e),
    };
    // An expired approval says so in its own `expired` event.
    if let ResultKind::Abort(reason) = &result.kind
        && stage != Stage::AwaitApproval
    {
        announce_stage_failed(ctx, &run_after, stage, reason).await;
    }
    if run_after.status.is_terminal() {
        after_end(ctx, &run_after).await;
    }
    Ok(outcome)
}

/// Queues `started` once per run (at the first claim of `preflight`).
async fn announce_start(ctx: &StageContext, run: &RunRecord) {
    let now = ctx.clock.now();
    let mut ev = super::events::event(&ctx.events, run, "started", now);
    ev.summary = format!(
        "{} of pair {} started ({}): {}",
        run.mode, run.pair, run.trigger.kind, run.trigger.reason
    );
    ev.reason = Some(run.trigger.reason.clone());
    if run.approval.required {
        ev.decision = Some(super::events::decision_of(run));
    }
    super::events::send_once(
        ctx.store.as_ref(),
        ctx.queue.as_ref(),
        &ctx.events,
        run,
        "started",
        &ev,
        now,
    )
    .await;
}

/// Queues `stage-failed` (stage, finding, attempt) once per stage attempt.
async fn announce_stage_failed(ctx: &StageContext, run: &RunRecord, stage: Stage, finding: &str) {
    let now = ctx.clock.now();
    let attempt = run.stage(stage).map_or(0, |s| s.attempts);
    let mut ev = super::events::event(&ctx.events, run, "stage-failed", now);
    ev.summary = format!(
        "{} of pair {}: stage {stage} failed (attempt {attempt}): {finding}",
        run.mode, run.pair
    );
    ev.stage = Some(stage);
    ev.finding = Some(finding.to_owned());
    ev.attempt = Some(attempt);
    super::events::send_once(
        ctx.store.as_ref(),
        ctx.queue.as_ref(),
        &ctx.events,
        run,
        &format!("stage-failed:{stage}:{attempt}"),
        &ev,
        now,
    )
    .await;
}

/// Keeps the claim `token` on `stage` alive while the stage body runs: renews `claimedAt`
/// every quarter of the lease. Returns (ending the stage) only when the claim is lost: the
/// record names another claimant, the run ended, or renewals kept failing until less than a
/// quarter of the lease is left (the claim may lapse; better to stop than to run twice).
async fn heartbeat(ctx: &StageContext, run_id: &str, stage: Stage, token: &str) -> FailoverError {
    let lease = ctx.claim_lease.max(Duration::from_millis(40));
    let every = lease / 4;
    let lost = || FailoverError::ClaimLost {
        run_id: run_id.to_owned(),
        stage: stage.as_str().into(),
    };
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let now = ctx.clock.now();
        let renewal = update_run(ctx.store.as_ref(), run_id, |r| {
            let ours = !r.status.is_terminal()
                && r.stage(stage)
                    .is_some_and(|rec| rec.claim.as_deref() == Some(token));
            if !ours {
                return Err(lost());
            }
            if let Some(rec) = r.stage_mut(stage) {
                rec.claimed_at = Some(now);
            }
            Ok(())
        })
        .await;
        match renewal {
            Ok(_) => renewed = tokio::time::Instant::now(),
            Err(e @ FailoverError::ClaimLost { .. }) => return e,
            Err(e) if renewed.elapsed() + every >= lease.saturating_sub(every) => {
                tracing::warn!(run_id, stage = %stage, error = %super::error_text(&e), "stage claim could not be renewed before its lease ends; stopping the stage");
                return lost();
            }
            Err(e) => {
                tracing::warn!(run_id, stage = %stage, error = %super::error_text(&e), "stage claim renewal failed; retrying");
            }
        }
    }
}

/// Side effects of a run's end: release the lock; notify about failures and cancellations.
async fn after_end(ctx: &StageContext, run: &RunRecord) {
    if let Err(e) = release_lock(ctx.store.as_ref(), &run.pair, &run.run_id).await {
        tracing::warn!(run_id = %run.run_id, error = %e, "could not release the pair lock (the next start breaks it)");
    }
    // `completed` goes out only now, after `complete` is recorded (with the RTO).
    super::events::send_end(ctx.queue.as_ref(), &ctx.events, run, ctx.clock.now()).await;
    tracing::info!(
        event = "failover.ended",
        run_id = %run.run_id,
        pair = %run.pair,
        mode = %run.mode,
        status = run.status.as_str(),
        rto_secs = run.rto_secs,
        "failover.ended"
    );
}

/// Marks a run cancelled now (between stages) and releases its lock.
async fn cancel_now(
    ctx: &StageContext,
    run_id: &str,
    now: OffsetDateTime,
) -> Result<Outcome, FailoverError> {
    let run = update_run(ctx.store.as_ref(), run_id, |r| {
        if !r.status.is_terminal() {
            let before = r
                .current_stage
                .map_or_else(|| "the end".to_owned(), |s| s.to_string());
            r.finish(
                RunStatus::Cancelled,
                now,
                Some(format!("cancelled before {before}")),
            );
        }
        Ok(())
    })
    .await?;
    after_end(ctx, &run).await;
    Ok(Outcome::Abort(
        run.error.unwrap_or_else(|| "cancelled".into()),
    ))
}

/// Marks a run failed with `reason` (permanent stage error, or poisoned message), releases the
/// lock and notifies. Idempotent: an ended run is left as it is.
pub async fn fail_run(
    ctx: &StageContext,
    run_id: &str,
    stage: Option<Stage>,
    reason: &str,
) -> Result<RunRecord, FailoverError> {
    fail_run_if(ctx, run_id, stage, reason, |_, _| Ok(()))
        .await
        .map(|(run, _)| run)
}

/// [`fail_run`] only when `guard(run, now)` agrees, decided on the very version it writes
/// (ETag-guarded: a run that moves on meanwhile is judged again). `Ok((run, Err(why)))` when the
/// guard refused and nothing was written.
pub async fn fail_run_if<G>(
    ctx: &StageContext,
    run_id: &str,
    stage: Option<Stage>,
    reason: &str,
    guard: G,
) -> Result<(RunRecord, Result<(), String>), FailoverError>
where
    G: Fn(&RunRecord, OffsetDateTime) -> Result<(), String>,
{
    let now = ctx.clock.now();
    let mut changed = false;
    let mut verdict = Ok(());
    let run = update_run(ctx.store.as_ref(), run_id, |r| {
        changed = false;
        verdict = guard(r, now);
        if r.status.is_terminal() || verdict.is_err() {
            return Ok(());
        }
        changed = true;
        let failed_stage = stage.or(r.current_stage);
        if let Some(s) = failed_stage
            && let Some(rec) = r.stage_mut(s)
        {
            rec.status = StageStatus::Failed;
            rec.outcome = Some("failed".into());
            rec.error = Some(reason.to_owned());
            rec.claim = None;
            rec.ended_at = Some(now);
        }
        r.finish(RunStatus::Failed, now, Some(reason.to_owned()));
        Ok(())
    })
    .await?;
    if changed {
        after_end(ctx, &run).await;
    }
    Ok((run, verdict))
}

/// Enqueues the message for `stage` (with a visibility delay for waits).
pub async fn enqueue_stage(
    queue: &dyn Queue,
    run_id: &str,
    stage: Stage,
    attempt: u32,
    delay: Option<Duration>,
    now: OffsetDateTime,
) -> Result<(), FailoverError> {
    let mut msg = StageMessage::new(run_id, stage, attempt);
    if let Some(d) = delay {
        msg.not_before = Some(now + time::Duration::try_from(d).unwrap_or_default());
    }
    let text = serde_json::to_string(&msg).map_err(|e| FailoverError::InvalidState {
        run_id: run_id.to_owned(),
        reason: format!("cannot encode the stage message: {e}"),
    })?;
    queue
        .send(store::STAGE_QUEUE, &text, delay)
        .await
        .map(|_| ())
        .map_err(|source| FailoverError::Enqueue {
            run_id: run_id.to_owned(),
            stage: stage.as_str().into(),
            source: Box::new(source),
        })
}

// ---------------------------------------------------------------------------------------------
// Stage bodies

async fn execute(
    ctx: &StageContext,
    run: &RunRecord,
    stage: Stage,
) -> Result<StageResult, FailoverError> {
    let arm = ctx
        .arm
        .with_correlation_id(format!("{}-{}", run.run_id, stage.as_str()));
    // A provider failover / failback moves the pair state when its first writing stage
    // starts (idempotent per run); drills never touch it.
    let state = match (run.role, run_kind(run), stage) {
        (
            Role::Provider,
            Some(kind),
            Stage::FinalSync | Stage::InviteConsumers | Stage::EnableSchedules,
        ) => Some(
            pair_state::enter_run_phase(
                ctx.store.as_ref(),
                &run.pair,
                &run.run_id,
                kind,
                ctx.clock.now(),
            )
            .await
            .map_err(|e| stage_err(run, stage, super::error_text(&e), e.is_transient()))?,
        ),
        _ => None,
    };
    match (run.role, stage) {
        (_, Stage::AwaitApproval) => Ok(await_approval(ctx, run).await),
        (_, Stage::Notify) => notify_stage(ctx, run).await,
        (_, Stage::Complete) => complete(ctx, run).await,
        (Role::Provider, Stage::Preflight) => preflight(ctx, &arm, run).await,
        (Role::Provider, Stage::FinalSync) => final_sync(ctx, &arm, run, state.as_ref()).await,
        (Role::Provider, Stage::InviteConsumers) => invite_consumers(ctx, &arm, run).await,
        (Role::Provider, Stage::EnableSchedules) => enable_schedules(ctx, &arm, run).await,
        (_, Stage::Cleanup) => cleanup(&arm, run).await,
        (Role::Consumer, s) => super::consumer::execute(ctx, &arm, run, s).await,
        (Role::Provider, s) => Err(stage_err(run, s, "not a provider stage", false)),
    }
}

/// How a run moves the pair state (`None`: a drill, which never does).
fn run_kind(run: &RunRecord) -> Option<pair_state::RunKind> {
    match run.mode {
        Mode::Failover => Some(pair_state::RunKind::Failover),
        Mode::Failback => Some(pair_state::RunKind::Failback),
        Mode::Drill => None,
    }
}

/// The configured pair of a provider run.
fn pair_of<'c>(ctx: &'c StageContext, run: &RunRecord) -> Result<&'c Pair, FailoverError> {
    ctx.config
        .pair(&run.pair)
        .ok_or_else(|| FailoverError::UnknownPair {
            pair: run.pair.clone(),
            known: ctx
                .config
                .pairs
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The pair with primary and secondary swapped (failback: replicate secondary → primary),
/// store rules inverted, every consumer invited now.
pub fn swapped(pair: &Pair) -> Pair {
    let mut p = pair.clone();
    std::mem::swap(&mut p.primary, &mut p.secondary);
    std::mem::swap(&mut p.primary_region, &mut p.secondary_region);
    for rules in p.stores.replace.values_mut() {
        for (from, to) in rules.iter_mut() {
            std::mem::swap(from, to);
        }
    }
    for o in &mut p.stores.overrides {
        std::mem::swap(&mut o.primary, &mut o.secondary);
    }
    p.invitations = dr::InvitationPolicy::Now;
    p.consumers.clear();
    p.create_secondary = None;
    p
}

async fn preflight(
    ctx: &StageContext,
    arm: &ArmClient,
    run: &RunRecord,
) -> Result<StageResult, FailoverError> {
    let pair = pair_of(ctx, run)?;
    let now = ctx.clock.now();
    let mut out = StageResult::default();
    if run.mode == Mode::Failback {
        // The primary must be back before anything is replicated to it.
        let probe = arm.with_deadline(ctx.probe_deadline);
        return match probe.get_account(&pair.primary).await {
            Ok(_) => {
                out.primary_reachable = Some(true);
                out.summary = format!("primary {} answers again", pair.primary.name());
                Ok(out)
            }
            Err(e) if e.is_transient() => {
                out.kind = ResultKind::Abort(format!(
                    "the primary account {} does not answer yet ({}); fail back once it has recovered",
                    pair.primary.name(),
                    super::error_text(&e)
                ));
                out.summary = "primary still unreachable".into();
                Ok(out)
            }
            Err(e) => Err(arm_err(
                run,
                Stage::Preflight,
                "read",
                pair.primary.as_str(),
                e,
            )),
        };
    }
    let last_drill = readiness::last_drill(ctx.store.as_ref(), &pair.name)
        .await
        .unwrap_or(None);
    let probe = arm.with_deadline(ctx.probe_deadline);
    let reader = ArmReader {
        client: &probe,
        concurrency: ctx.config.arm.max_concurrency.max(1),
    };
    let report = readiness::check::check_pair(&reader, &ctx.config, pair, now, last_drill).await;
    if report.status == Status::Unknown {
        // A tool fault (credential, endpoint, throttling) or neither side answering: nothing
        // is known about the primary, so it is not treated as down. The run fails with the
        // fault and its fix; force does not override (the tool cannot act on either side).
        for f in &report.findings {
            out.finding(
                "Critical",
                &f.code,
                format!("{} — fix: {}", f.message, f.remedy),
            );
        }
        out.summary = "readiness Unknown: the pair cannot be assessed".into();
        out.kind = ResultKind::Abort(format!(
            "preflight: the pair cannot be assessed ({}): {}",
            report
                .findings
                .iter()
                .map(|f| f.code.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", "),
            report.findings.first().map_or("", |f| f.remedy.as_str())
        ));
        return Ok(out);
    }
    // A primary account ARM says does not exist is no outage a machine may fail over for on its
    // own: an alert-started run nobody approved waits for a person.
    if run.mode == Mode::Failover
        && report.has(codes::PRIMARY_ACCOUNT_MISSING)
        && !run.approval.required
        && run.approval.by.is_none()
    {
        out.require_approval = true;
        out.finding(
            "Warning",
            "approval-required",
            "the primary account does not exist (ARM 404 naming it): the run waits for approval",
        );
    }
    let primary_up =
        !report.has(codes::PRIMARY_UNREACHABLE) && !report.has(codes::PRIMARY_ACCOUNT_MISSING);
    out.primary_reachable = Some(primary_up);
    out.count("critical", report.counts.critical as u64);
    out.count("warning", report.counts.warning as u64);
    out.count("score", u64::from(report.score));
    for f in report
        .findings
        .iter()
        .filter(|f| !matches!(f.severity, readiness::Severity::Info))
    {
        out.finding(f.severity.as_str(), &f.code, f.message.clone());
    }
    // Consumers to invite: observed now when the primary answers, else the last roster.
    if run.mode == Mode::Failover {
        if primary_up {
            // The readiness check just reached the primary, so this read gets the client's
            // normal deadline, not the short outage probe: under throttling, a few hundred
            // list reads may have to queue for the read bucket.
            if let Err(e) = observe_roster(ctx, pair, arm, now, &mut out).await {
                out.primary_reachable = Some(false);
                tracing::info!(pair = %pair.name, error = %super::error_text(&e), "primary not readable; using the stored roster");
                roster_from_store(ctx, run, pair, Some(read_failure(&e)), &mut out).await?;
            }
        } else if !roster_from_store(ctx, run, pair, None, &mut out).await? {
            // Unreachable per readiness and nothing recorded. Readiness says "unreachable" for
            // any failed read, so one flaky list looks like an outage: give the primary one
            // more (short) chance before deciding that nobody can be invited.
            if let Err(e) = observe_roster(ctx, pair, &probe, now, &mut out).await {
                roster_unknown(ctx, run, read_failure(&e), &mut out)?;
            }
        }
    }
    out.summary = format!(
        "readiness {} (score {}): {} critical, {} warning; primary {}",
        report.status.as_str(),
        report.score,
        report.counts.critical,
        report.counts.warning,
        if primary_up {
            "reachable"
        } else {
            "unreachable"
        }
    );
    if report.status == Status::NotReady {
        if run.force {
            out.finding(
                "Warning",
                "forced",
                "preflight said NotReady; the run continues because it was forced",
            );
        } else {
            out.kind = ResultKind::Abort(format!(
                "preflight: the secondary is NotReady ({}); start with force to override",
                report
                    .findings
                    .iter()
                    .filter(|f| matches!(f.severity, readiness::Severity::Critical))
                    .map(|f| f.code.as_str())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(out)
}

/// A stage (`final-sync`, `enable-schedules`) that waits for long-running operations: stores
/// their handles on the run and re-enqueues after their `Retry-After` (clamped to 1–60 s).
fn wait_for_operations(
    run: &RunRecord,
    out: StageResult,
    ops: Vec<LroHandle>,
    delay: Option<Duration>,
) -> StageResult {
    wait_for_operations_in(run, Stage::FinalSync, out, ops, delay)
}

fn wait_for_operations_in(
    run: &RunRecord,
    stage: Stage,
    mut out: StageResult,
    ops: Vec<LroHandle>,
    delay: Option<Duration>,
) -> StageResult {
    let names = ops
        .iter()
        .map(|h| format!("{} {}", h.operation, h.resource))
        .collect::<Vec<_>>()
        .join(", ");
    let rounds = run.stage(stage).map_or(0, |s| s.attempts);
    if rounds >= FINAL_SYNC_MAX_ROUNDS {
        // The failover must not hang on the secondary's housekeeping: go on, say what is open.
        let (code, then) = if stage == Stage::EnableSchedules {
            (
                "schedules-incomplete",
                "check the schedules of the serving account once they have finished",
            )
        } else {
            (
                "final-sync-incomplete",
                "the next replicate pass finishes the final sync",
            )
        };
        out.finding(
            "Warning",
            code,
            format!(
                "after {rounds} rounds, {} long-running operation(s) still run ({names}); {then}",
                ops.len(),
            ),
        );
        out.pending_operations = Some(Vec::new());
        return out;
    }
    let prefix = if out.summary.is_empty() {
        String::new()
    } else {
        format!("{}; ", out.summary)
    };
    out.summary = format!(
        "{prefix}waiting for {} long-running operation(s): {}",
        ops.len(),
        names
    );
    out.count("operationsRunning", ops.len() as u64);
    out.kind = ResultKind::Wait(super::consumer::poll_delay(delay));
    out.pending_operations = Some(ops);
    out
}

/// Polls, once each, the long-running operations an earlier delivery of `stage` handed over
/// (`pendingOperations`). `Some((running, delay))` when some still run (the stage waits again);
/// `None` when there were none or all finished (then cleared on the run; a failed one is a
/// Warning `failed_code`).
async fn poll_pending(
    arm: &ArmClient,
    run: &RunRecord,
    stage: Stage,
    failed_code: &str,
    out: &mut StageResult,
) -> Result<Option<(Vec<LroHandle>, Option<Duration>)>, FailoverError> {
    if run.pending_operations.is_empty() {
        return Ok(None);
    }
    let mut running = Vec::new();
    let mut delay: Option<Duration> = None;
    for h in &run.pending_operations {
        match arm.poll(h).await {
            Ok(LroStatus::Running { retry_after, .. }) => {
                delay = Some(delay.map_or(retry_after, |d| d.min(retry_after)));
                running.push(h.clone());
            }
            Ok(LroStatus::Done(_)) => {}
            Err(ArmError::OperationFailed(f)) => out.finding(
                "Warning",
                failed_code,
                format!(
                    "{} on {} ended {:?}: {} {}",
                    f.operation, f.resource, f.status, f.code, f.message
                ),
            ),
            Err(e) => {
                return Err(arm_err(
                    run,
                    stage,
                    "poll a long-running operation",
                    &h.resource,
                    e,
                ));
            }
        }
    }
    if !running.is_empty() {
        return Ok(Some((running, delay)));
    }
    out.pending_operations = Some(Vec::new());
    out.count("operationsRunning", 0);
    Ok(None)
}

/// Observes the primary and takes its consumers as the run's roster (also stored for later
/// runs). `Ok` with no roster when the primary account does not exist.
async fn observe_roster(
    ctx: &StageContext,
    pair: &Pair,
    arm: &ArmClient,
    now: OffsetDateTime,
    out: &mut StageResult,
) -> Result<(), crate::reconcile::observe::ObserveError> {
    let Some(model) = observe_model(arm, pair, &pair.primary).await? else {
        return Ok(());
    };
    let roster = roster_of(&model);
    if let Err(e) = save_roster(ctx.store.as_ref(), &pair.name, &roster, now).await {
        tracing::warn!(pair = %pair.name, error = %e, "could not store the consumer roster");
    }
    out.count("consumers", roster.len() as u64);
    out.roster = Some(roster);
    Ok(())
}

/// A failed read of the primary, as [`roster_unknown`] weighs it: (error text, transient).
fn read_failure(e: &crate::reconcile::observe::ObserveError) -> (String, bool) {
    (
        super::error_text(e),
        e.arm().is_some_and(ArmError::is_transient),
    )
}

/// Takes the last stored roster (`rosters/{pair}.json`) when there is one (→ `true`). Without
/// one: when the primary's consumers could not be read (`failed`: error text, transient) see
/// [`roster_unknown`]; when nothing was tried, `false` (the caller decides).
async fn roster_from_store(
    ctx: &StageContext,
    run: &RunRecord,
    pair: &Pair,
    failed: Option<(String, bool)>,
    out: &mut StageResult,
) -> Result<bool, FailoverError> {
    match load_roster(ctx.store.as_ref(), &pair.name).await? {
        Some(r) => {
            out.count("consumers", r.entries.len() as u64);
            out.finding(
                "Info",
                "roster-from-store",
                format!(
                    "the primary does not answer: consumers to invite come from the roster recorded at {}",
                    r.recorded_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                )
);
            out.roster = Some(r.entries);
            Ok(true)
        }
        None => match failed {
            Some(failed) => roster_unknown(ctx, run, failed, out).map(|()| true),
            None => Ok(false),
        },
    }
}

/// Nobody knows whom to invite: the primary's consumers could not be read and no roster was
/// recorded. Going on now would invite nobody, so a transient failure retries the stage (the
/// host redelivers) for the first [`ROSTER_READ_DELIVERIES`] deliveries; after that, or when the
/// failure is permanent, the run goes on — the secondary must still be made usable — with a
/// Critical finding naming the error, so the operator invites the missing consumers by hand.
fn roster_unknown(
    ctx: &StageContext,
    run: &RunRecord,
    (reason, transient): (String, bool),
    out: &mut StageResult,
) -> Result<(), FailoverError> {
    let retry = transient
        && ctx
            .delivery
            .as_ref()
            .is_some_and(|d| d.dequeue_count < ROSTER_READ_DELIVERIES);
    if retry {
        return Err(stage_err(
            run,
            Stage::Preflight,
            format!(
                "the primary's consumers could not be read ({reason}) and no consumer roster was recorded; retrying"
            ),
            true,
        ));
    }
    out.finding(
        "Critical",
        "roster-unknown",
        format!(
            "the primary's consumers could not be read ({reason}) and no consumer roster was recorded: only consumers already invited on the secondary keep access; invite the others by hand"
        )
);
    Ok(())
}

/// Waits for approval: announces `awaiting-approval` once, `approval-reminder` at half-time,
/// and at the deadline (`approval_timeout_minutes`) either expires the run (`expired`, run
/// `failed` with `approval-expired`) or, under `on_approval_timeout = "proceed"` for a run the
/// pair's policy sent here, approves it by timeout. Waiting is a re-enqueue (`Wait`), checked
/// again at the next milestone or after `approval_poll`, whichever comes first.
async fn await_approval(ctx: &StageContext, run: &RunRecord) -> StageResult {
    use super::events::{self, DeadlineDecision};
    if run.approval.is_approved() {
        return StageResult::done(format!(
            "approved by {}",
            run.approval.by.as_deref().unwrap_or("policy")
        ));
    }
    let now = ctx.clock.now();
    let policy = ctx.config.approval_deadline(&run.pair);
    let deadline = events::approval_deadline(run, &policy);
    let deadline_text = deadline
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let waiting_event = |name: &'static str, summary: String| {
        let mut ev = events::event(&ctx.events, run, name, now);
        ev.decision = Some(events::decision_of(run));
        ev.deadline = Some(deadline);
        ev.summary = summary;
        ev.reason = Some(run.trigger.reason.clone());
        ev
    };
    let (store, queue) = (ctx.store.as_ref(), ctx.queue.as_ref());
    let ev = waiting_event(
        "awaiting-approval",
        format!(
            "{} of pair {} awaits approval until {deadline_text}: {}",
            run.mode, run.pair, run.trigger.reason
        ),
    );
    events::send_once(
        store,
        queue,
        &ctx.events,
        run,
        "awaiting-approval",
        &ev,
        now,
    )
    .await;
    let wait = |d: Duration| StageResult {
        kind: ResultKind::Wait(d.min(ctx.approval_poll).max(Duration::from_secs(1))),
        summary: format!("waiting for approval (deadline {deadline_text})"),
        ..StageResult::default()
    };
    match events::approval_deadline_decision(run, &policy, now) {
        DeadlineDecision::NotWaiting => wait(ctx.approval_poll),
        DeadlineDecision::Wait(d) => wait(d),
        DeadlineDecision::Remind(d) => {
            let ev = waiting_event(
                "approval-reminder",
                format!(
                    "reminder: {} of pair {} still awaits approval; deadline {deadline_text}",
                    run.mode, run.pair
                ),
            );
            events::send_once(
                store,
                queue,
                &ctx.events,
                run,
                "approval-reminder",
                &ev,
                now,
            )
            .await;
            wait(d)
        }
        DeadlineDecision::Expire => {
            let reason = events::expired_reason(&policy, deadline);
            let mut ev = waiting_event(
                "expired",
                format!(
                    "{} of pair {} expired: nobody approved it by {deadline_text}; the run ends failed",
                    run.mode, run.pair
                ),
            );
            ev.reason = Some(reason.clone());
            ev.links.approve_url = None;
            ev.links.approve_command = None;
            ev.links.cancel_url = None;
            ev.links.cancel_command = None;
            events::send_once(store, queue, &ctx.events, run, "expired", &ev, now).await;
            StageResult {
                kind: ResultKind::Abort(reason),
                summary: "approval deadline passed".into(),
                ..StageResult::default()
            }
        }
        DeadlineDecision::Proceed => {
            let approved = update_run(store, &run.run_id, |r| {
                if !r.approval.is_approved() && !r.status.is_terminal() {
                    events::approve_by_timeout(r, &policy, now);
                }
                Ok(())
            })
            .await;
            match approved {
                Ok(r) => {
                    let mut out = StageResult::done(format!(
                        "approved by {}",
                        r.approval.by.as_deref().unwrap_or("approval-timeout")
                    ));
                    if r.approval.by_timeout {
                        out.finding(
                            "Warning",
                            "approved-by-timeout",
                            format!(
                                "nobody decided by {deadline_text}; the run continues as approved (on_approval_timeout = \"proceed\")"
                            ),
                        );
                    }
                    out
                }
                Err(e) => {
                    tracing::warn!(run_id = %run.run_id, error = %super::error_text(&e), "could not record the approval by timeout; checking again");
                    wait(Duration::from_secs(5))
                }
            }
        }
    }
}

async fn final_sync(
    ctx: &StageContext,
    arm: &ArmClient,
    run: &RunRecord,
    state: Option<&PairPhase>,
) -> Result<StageResult, FailoverError> {
    let pair = pair_of(ctx, run)?;
    let mut out = StageResult::default();
    // Replication primary → secondary only from `normal`: a pair that had already failed over
    // (or whose earlier run stopped mid-way) has a secondary that serves and must not be
    // overwritten by the stale primary.
    if run.mode == Mode::Failover
        && let Some(s) = state
        && s.previous.is_some_and(|p| p != pair_state::Phase::Normal)
    {
        out.kind = ResultKind::Skipped;
        out.summary = "skipped: the pair was not normal when this run started".into();
        out.finding(
            "Warning",
            "final-sync-paused",
            format!(
                "pair {} was {} before this run: the secondary may already serve consumers, so \
                 the final sync does not overwrite it from the primary",
                pair.name,
                s.previous.map_or("unknown", |p| p.words())
            ),
        );
        return Ok(out);
    }
    if run.mode != Mode::Failback && run.primary_reachable == Some(false) {
        out.kind = ResultKind::Skipped;
        out.summary = "skipped: the primary does not answer".into();
        out.finding(
            "Warning",
            "final-sync-skipped",
            format!(
                "the primary {} did not answer: changes made since the last replicate pass are not on the secondary",
                pair.primary.name()
            )
);
        return Ok(out);
    }
    // Operations an earlier delivery handed over: poll each once; any still running → wait
    // again (re-enqueue), all finished → replicate again (the pass observes what they did).
    if let Some((running, delay)) = poll_pending(
        arm,
        run,
        Stage::FinalSync,
        "final-sync-operation-failed",
        &mut out,
    )
    .await?
    {
        return Ok(wait_for_operations(run, out, running, delay));
    }
    let target = if run.mode == Mode::Failback {
        swapped(pair)
    } else {
        pair.clone()
    };
    // Deletes follow the pair's prune ceiling in both directions (only what this tool created
    // on the written account, only under `delete`).
    let report = replicate_limited(
        &arm.with_deadline(ctx.probe_deadline.max(Duration::from_secs(30)))
            .with_lro_handoff(ctx.lro_handoff),
        &target,
        state,
        &ReplicateOptions {
            dry_run: false,
            prune: false,
            concurrency: ctx.config.arm.max_concurrency.max(1),
            now: ctx.clock.now(),
        },
        &|_, _| {},
    )
    .await;
    record_inventory(
        ctx.store.as_ref(),
        &run.pair,
        target.secondary.as_str(),
        &report,
        ctx.clock.now(),
    )
    .await;
    if let Some(err) = &report.error {
        if run.mode == Mode::Failback {
            return Err(stage_err(
                run,
                Stage::FinalSync,
                format!("replicate back: {err}"),
                true,
            ));
        }
        // Skipping is right only when the primary is down or gone; a tool fault (credential,
        // endpoint, throttling) says nothing about it, so the run stops with the fault instead.
        if let Err(e) = arm
            .with_deadline(ctx.probe_deadline)
            .get_account(&pair.primary)
            .await
            && let Failure::ToolFault(fault) = classify(&e)
        {
            out.finding(
                "Critical",
                codes::TOOL_FAULT,
                format!(
                    "the primary could not be read because of a {fault} fault of this tool ({}) — fix: {}",
                    super::error_text(&e),
                    fault.fix()
                ),
            );
            out.kind = ResultKind::Abort(format!(
                "final-sync: the primary could not be read because of a {fault} fault of this tool; {}",
                fault.fix()
            ));
            return Ok(out);
        }
        out.kind = ResultKind::Skipped;
        out.summary = "skipped: the primary could not be observed".into();
        out.finding(
            "Warning",
            "final-sync-skipped",
            format!("the final replicate pass could not observe the pair: {err}"),
        );
        return Ok(out);
    }
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut handed_over = Vec::new();
    for r in &report.results {
        match r.outcome {
            crate::reconcile::report::Outcome::Ok => ok += 1,
            crate::reconcile::report::Outcome::Failed if r.pending.is_some() => {
                handed_over.extend(r.pending.clone());
            }
            crate::reconcile::report::Outcome::Failed => {
                failed += 1;
                out.finding(
                    "Warning",
                    "final-sync-change-failed",
                    format!(
                        "{}: {}",
                        r.change.address(),
                        r.error.as_deref().unwrap_or("failed")
                    ),
                );
            }
            crate::reconcile::report::Outcome::Skipped => {}
        }
        if let Some(c) = &r.correlation_id {
            out.correlation_ids.push(c.clone());
        }
    }
    for f in &report.plan.findings {
        out.finding("Info", "replicate-finding", f.message.clone());
    }
    out.count("changes", report.plan.changes.len() as u64);
    out.count("applied", ok);
    out.count("failed", failed);
    if !handed_over.is_empty() {
        // Changes that depend on these were skipped; the pass after they finish does them.
        let delay = handed_over.iter().filter_map(LroHandle::retry_after).min();
        out.summary = format!("{ok} change(s) applied so far");
        return Ok(wait_for_operations(run, out, handed_over, delay));
    }
    if let Some(calls) = report.arm_calls {
        out.count("armReads", calls.reads);
        out.count("armWrites", calls.writes);
    }
    out.summary = format!(
        "{} {} change(s) applied, {} failed",
        if run.mode == Mode::Failback {
            "replicated back to the primary:"
        } else {
            "replicated to the secondary:"
        },
        ok,
        failed
    );
    Ok(out)
}

/// Observes an account's selected shares as the reconcile model (`None` when it is missing).
async fn observe_model(
    arm: &ArmClient,
    pair: &Pair,
    account: &AccountId,
) -> Result<Option<AccountModel>, crate::reconcile::observe::ObserveError> {
    let selects = |n: &str| pair.selects(n);
    let obs = observe_account(
        arm,
        account,
        &selects,
        &ObserveOptions {
            concurrency: 8,
            read_account: false,
        },
    )
    .await?;
    Ok(obs.model().0)
}

/// [`observe_model`] for the dry-run preview.
pub async fn observe_account_model(
    arm: &ArmClient,
    pair: &Pair,
    account: &AccountId,
) -> Result<Option<AccountModel>, crate::reconcile::observe::ObserveError> {
    observe_model(arm, pair, account).await
}

/// Whether `target` (roster text) already holds a live invitation or an active subscription on
/// `share` of `model` — then `invite-consumers` does not invite it again.
pub fn is_covered(model: &AccountModel, share: &str, target: &str, now: OffsetDateTime) -> bool {
    let Some(target) = Target::parse(target) else {
        return false;
    };
    let Some(share) = model
        .shares
        .iter()
        .find(|(n, _)| n.as_str().eq_ignore_ascii_case(share))
        .map(|(_, s)| s)
    else {
        return false;
    };
    share_covers(share, &target, now)
}

fn share_covers(
    share: &crate::reconcile::model::ShareModel,
    target: &Target,
    now: OffsetDateTime,
) -> bool {
    share.invitations.iter().any(|i| {
        i.target == *target
            && match i.status {
                InvitationStatus::Accepted => true,
                InvitationStatus::Pending => live(i.expiration, now),
                _ => false,
            }
    }) || share.consumers.iter().any(|c| {
        c.target.as_ref() == Some(target)
            && c.status == SubscriptionStatus::Active
            && live(c.expiration, now)
    })
}

fn live(expiration: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    expiration.is_none_or(|e| e > now)
}

/// Active consumers (subscriptions) and pending invitations of every share of `model`.
pub fn roster_of(model: &AccountModel) -> Vec<RosterEntry> {
    let now = OffsetDateTime::now_utc();
    let mut out = BTreeSet::new();
    for (name, share) in &model.shares {
        for c in &share.consumers {
            if c.status == SubscriptionStatus::Active
                && live(c.expiration, now)
                && let Some(t) = &c.target
            {
                out.insert(RosterEntry {
                    share: name.to_string(),
                    target: t.to_string(),
                    expiration: c.expiration,
                });
            }
        }
        for i in &share.invitations {
            if i.status == InvitationStatus::Pending && live(i.expiration, now) {
                out.insert(RosterEntry {
                    share: name.to_string(),
                    target: i.target.to_string(),
                    expiration: i.expiration,
                });
            }
        }
    }
    // One entry per (share, target).
    let mut seen = BTreeSet::new();
    out.into_iter()
        .filter(|e| seen.insert((e.share.clone(), e.target.to_ascii_lowercase())))
        .collect()
}

/// `rosters/{pair}.json`: the consumers last observed on the primary, so a failover with the
/// primary down still knows whom to invite.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Roster {
    pub pair: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    pub entries: Vec<RosterEntry>,
}

pub fn roster_path(pair: &str) -> String {
    format!("rosters/{pair}.json")
}

pub async fn save_roster(
    store: &dyn BlobStore,
    pair: &str,
    entries: &[RosterEntry],
    now: OffsetDateTime,
) -> Result<(), FailoverError> {
    let roster = Roster {
        pair: pair.to_owned(),
        recorded_at: now,
        entries: entries.to_vec(),
    };
    store::put_json(store, &roster_path(pair), &roster, Precondition::None)
        .await
        .map(|_| ())
        .map_err(|source| FailoverError::RecordAlert {
            key: roster_path(pair),
            source: Box::new(source),
        })
}

pub async fn load_roster(
    store: &dyn BlobStore,
    pair: &str,
) -> Result<Option<Roster>, FailoverError> {
    store::get_json::<Roster>(store, &roster_path(pair))
        .await
        .map(|o| o.map(|(r, _)| r))
        .map_err(|source| FailoverError::RecordAlert {
            key: roster_path(pair),
            source: Box::new(source),
        })
}

/// Records the primary's consumers now (the drill and `replicate` callers use it so a later
/// failover with the primary down knows whom to invite).
pub async fn capture_roster(
    arm: &ArmClient,
    store: &dyn BlobStore,
    pair: &Pair,
    now: OffsetDateTime,
) -> Result<usize, FailoverError> {
    let model = observe_model(arm, pair, &pair.primary)
        .await
        .map_err(|e| FailoverError::Stage {
            run_id: String::new(),
            stage: "roster".into(),
            reason: super::error_text(&e),
            transient: true,
        })?
        .unwrap_or_default();
    let roster = roster_of(&model);
    save_roster(store, &pair.name, &roster, now).await?;
    Ok(roster.len())
}

fn target_text(t: &ConsumerTarget) -> String {
    match t {
        ConsumerTarget::Email(e) => e.clone(),
        ConsumerTarget::Aad {
            tenant_id,
            object_id,
        } => format!("tenant:{tenant_id}/object:{object_id}"),
    }
}

async fn invite_consumers(
    ctx: &StageContext,
    arm: &ArmClient,
    run: &RunRecord,
) -> Result<StageResult, FailoverError> {
    let pair = pair_of(ctx, run)?;
    let now = ctx.clock.now();
    let mut out = StageResult::default();
    // Where invitations go, and who is wanted on which share.
    let (account, wanted): (AccountId, Vec<RosterEntry>) = match run.mode {
        Mode::Failover => (pair.secondary.clone(), run.roster.clone()),
        Mode::Drill => {
            let model = observe_model(arm, pair, &pair.secondary)
                .await
                .map_err(|e| stage_err(run, Stage::InviteConsumers, super::error_text(&e), true))?
                .unwrap_or_default();
            let mut w = Vec::new();
            for share in model.shares.keys() {
                for r in &pair.drill_recipients {
                    w.push(RosterEntry {
                        share: share.to_string(),
                        target: target_text(r),
                        expiration: Some(now + time::Duration::days(1)),
                    });
                }
            }
            if pair.drill_recipients.is_empty() {
                out.finding(
                    "Warning",
                    "drill-no-recipients",
                    "the pair has no drill_recipients: the drill sent no invitation",
                );
            }
            (pair.secondary.clone(), w)
        }
        Mode::Failback => {
            let model = observe_model(arm, pair, &pair.secondary)
                .await
                .map_err(|e| stage_err(run, Stage::InviteConsumers, super::error_text(&e), true))?
                .unwrap_or_default();
            (pair.primary.clone(), roster_of(&model))
        }
    };
    let target_model = observe_model(arm, pair, &account)
        .await
        .map_err(|e| stage_err(run, Stage::InviteConsumers, super::error_text(&e), true))?
        .unwrap_or_default();
    let (mut invited, mut covered, mut missing_share) = (0u64, 0u64, 0u64);
    for entry in &wanted {
        let Some(target) = Target::parse(&entry.target) else {
            out.finding(
                "Warning",
                "consumer-unresolved",
                format!(
                    "consumer {:?} of share {} is neither an email nor tenant:/object:",
                    entry.target, entry.share
                ),
            );
            continue;
        };
        let Some(share) = target_model
            .shares
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(&entry.share))
            .map(|(_, s)| s)
        else {
            missing_share += 1;
            out.finding(
                "Critical",
                "share-missing",
                format!(
                    "share {} has no copy on {}: {} cannot be invited",
                    entry.share,
                    account.name(),
                    entry.target
                ),
            );
            continue;
        };
        if share_covers(share, &target, now) {
            covered += 1;
            continue;
        }
        let expiration = entry.expiration.filter(|e| *e > now);
        let name = invitation_name(&target, expiration);
        let share_id = account
            .share(&entry.share)
            .map_err(|e| stage_err(run, Stage::InviteConsumers, e.to_string(), false))?;
        let inv_id = share_id
            .invitation(name.as_str())
            .map_err(|e| stage_err(run, Stage::InviteConsumers, e.to_string(), false))?;
        let body = invitation_body(&NewInvitation {
            target: target.clone(),
            expiration,
            reason: format!("{} run {}", run.mode, run.run_id),
        });
        put_invitation_observed(arm, &share_id, &inv_id, &body, &target, now)
            .await
            .map_err(|e| {
                arm_err(
                    run,
                    Stage::InviteConsumers,
                    "create invitation",
                    inv_id.as_str(),
                    e,
                )
            })?;
        invited += 1;
        if run.mode == Mode::Drill {
            out.artefacts.push(Artefact {
                kind: "invitation".into(),
                id: inv_id.to_string(),
                removed: false,
            });
        }
    }
    out.count("invited", invited);
    out.count("alreadyCovered", covered);
    if missing_share > 0 {
        out.count("missingShares", missing_share);
    }
    out.summary = format!(
        "{invited} invitation(s) sent on {}, {covered} consumer(s) already invited or subscribed",
        account.name()
    );
    Ok(out)
}

async fn enable_schedules(
    ctx: &StageContext,
    arm: &ArmClient,
    run: &RunRecord,
) -> Result<StageResult, FailoverError> {
    let pair = pair_of(ctx, run)?;
    let mut out = StageResult::default();
    let (source, target) = match run.mode {
        Mode::Failback => (&pair.secondary, &pair.primary),
        _ => (&pair.primary, &pair.secondary),
    };
    // Schedule creations an earlier delivery handed over: poll each once; still running →
    // wait again (re-enqueue, no invocation holds the wait); finished → observe and go on.
    if let Some((running, delay)) = poll_pending(
        arm,
        run,
        Stage::EnableSchedules,
        "schedule-operation-failed",
        &mut out,
    )
    .await?
    {
        return Ok(wait_for_operations_in(
            run,
            Stage::EnableSchedules,
            out,
            running,
            delay,
        ));
    }
    // Creations that outlast `lro_handoff` are handed to the queue, not waited for here.
    let writer = arm.with_lro_handoff(ctx.lro_handoff);
    let mut handed_over: Vec<LroHandle> = Vec::new();
    let source_up = run.mode == Mode::Failback || run.primary_reachable != Some(false);
    // A source that answered before but whose schedules cannot be read now is not "no
    // schedule": retry a transient failure (first deliveries), else go on and say so.
    let mut source_unread = false;
    let source_model = if source_up {
        match observe_model(&arm.with_deadline(ctx.probe_deadline), pair, source).await {
            Ok(model) => model,
            Err(e) => {
                let (reason, transient) = read_failure(&e);
                let retry = transient
                    && ctx
                        .delivery
                        .as_ref()
                        .is_some_and(|d| d.dequeue_count < SCHEDULE_READ_DELIVERIES);
                if retry {
                    return Err(stage_err(
                        run,
                        Stage::EnableSchedules,
                        format!(
                            "the snapshot schedules of {} could not be read ({reason}); retrying",
                            source.name()
                        ),
                        true,
                    ));
                }
                out.finding(
                    "Warning",
                    "schedules-unread",
                    format!(
                        "the snapshot schedules of {} could not be read ({reason}): shares of {} without a schedule were left without one; compare the two accounts and create the missing schedules by hand",
                        source.name(),
                        target.name()
                    ),
                );
                source_unread = true;
                None
            }
        }
    } else {
        None
    };
    let target_model = observe_model(arm, pair, target)
        .await
        .map_err(|e| stage_err(run, Stage::EnableSchedules, super::error_text(&e), true))?
        .unwrap_or_default();
    let (mut present, mut created, mut unknown) = (0u64, 0u64, 0u64);
    for (name, share) in &target_model.shares {
        let wanted = source_model
            .as_ref()
            .and_then(|m| m.shares.get(name))
            .map(|s| s.sync_settings.clone());
        match wanted {
            Some(want) => {
                for (setting, spec) in &want {
                    if share.sync_settings.get(setting) == Some(spec) {
                        present += 1;
                        continue;
                    }
                    if share.sync_settings.values().any(|s| s == spec) {
                        present += 1;
                        continue;
                    }
                    let id = target
                        .share(name.as_str())
                        .and_then(|s: ShareId| s.synchronization_setting(setting.as_str()))
                        .map_err(|e| {
                            stage_err(run, Stage::EnableSchedules, e.to_string(), false)
                        })?;
                    match writer
                        .put_synchronization_setting(&id, &schedule_body(spec))
                        .await
                    {
                        Ok(_) => created += 1,
                        Err(ArmError::LroPending { handle }) => {
                            created += 1;
                            handed_over.push(*handle);
                        }
                        // The secondary's setting is still changing (e.g. a replacement's DELETE
                        // that final-sync stopped waiting for): the failover goes on; say what
                        // is missing.
                        Err(e) if e.is_conflict() => out.finding(
                            "Warning",
                            "schedule-not-enabled",
                            format!(
                                "snapshot schedule {setting} of share {name} could not be created on {} ({}): create it by hand once the setting's pending change has finished",
                                target.name(),
                                super::error_text(&e)
                            ),
                        ),
                        Err(e) => {
                            return Err(arm_err(
                                run,
                                Stage::EnableSchedules,
                                "create synchronization setting",
                                id.as_str(),
                                e,
                            ));
                        }
                    }
                }
            }
            None if !share.sync_settings.is_empty() => present += share.sync_settings.len() as u64,
            // In-place shares have no snapshots, so there is no schedule to enable.
            None if share.props.kind == ShareKind::InPlace => {}
            None => {
                unknown += 1;
                if source_unread {
                    // Said once, in the `schedules-unread` finding.
                } else if source_up {
                    // The source has no schedule for it either: nothing to enable.
                } else {
                    out.finding(
                        "Warning",
                        "schedule-unknown",
                        format!(
                            "share {name} has no snapshot schedule on {} and the primary's is unknown (it does not answer)",
                            target.name()
                        )
);
                }
            }
        }
    }
    out.count("present", present);
    out.count("created", created);
    out.count("withoutSchedule", unknown);
    out.summary = format!(
        "{} share(s) on {}: {present} schedule(s) in place, {created} created",
        target_model.shares.len(),
        target.name()
    );
    if !handed_over.is_empty() {
        // The next delivery polls them, then observes again (a finished one counts as present).
        let delay = handed_over.iter().filter_map(LroHandle::retry_after).min();
        return Ok(wait_for_operations_in(
            run,
            Stage::EnableSchedules,
            out,
            handed_over,
            delay,
        ));
    }
    Ok(out)
}

/// The `notify` stage: the run's summary is the `completed` event, queued once `complete` is
/// recorded (with the RTO) — sending it here would announce a run that is still `running`.
async fn notify_stage(ctx: &StageContext, run: &RunRecord) -> Result<StageResult, FailoverError> {
    let channels = ctx.events.channels.configured();
    let out = StageResult::done(format!(
        "the completion notice follows `complete` on {NOTIFICATIONS_QUEUE} ({} channel(s): {}); run {}",
        channels.len(),
        if channels.is_empty() {
            "none configured".to_owned()
        } else {
            channels
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
        run.run_id
    ));
    Ok(out)
}

async fn cleanup(arm: &ArmClient, run: &RunRecord) -> Result<StageResult, FailoverError> {
    let mut out = StageResult::default();
    let mut removed = 0u64;
    for a in run.drill_artefacts.iter().filter(|a| !a.removed) {
        if a.kind == "invitation" {
            let id = crate::arm::id::InvitationId::parse(&a.id)
                .map_err(|e| stage_err(run, Stage::Cleanup, e.to_string(), false))?;
            match arm.delete_invitation(&id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(arm_err(run, Stage::Cleanup, "delete invitation", &a.id, e)),
            }
            removed += 1;
            out.removed_artefacts.push(a.id.clone());
        }
    }
    out.count("removed", removed);
    out.summary = format!("{removed} drill artefact(s) removed");
    Ok(out)
}

async fn complete(ctx: &StageContext, run: &RunRecord) -> Result<StageResult, FailoverError> {
    let now = ctx.clock.now();
    let rto = (now - run.trigger.at).as_seconds_f64().max(0.0);
    let mut out = StageResult::done(format!("run complete; RTO {rto:.1} s"));
    match run.mode {
        Mode::Drill => {
            readiness::record_drill(
                ctx.store.as_ref(),
                &run.pair,
                readiness::DrillRecord {
                    completed_at: now,
                    run_id: Some(run.run_id.clone()),
                    rto_secs: Some(rto),
                },
            )
            .await
            .map_err(|e| stage_err(run, Stage::Complete, e.to_string(), e.is_transient()))?;
            out.summary = format!("drill recorded for readiness (last drill); RTO {rto:.1} s");
        }
        Mode::Failback => {
            if let Ok(pair) = pair_of(ctx, run) {
                out.finding(
                    "Info",
                    "direction-restored",
                    format!(
                        "normal direction restored: {} (primary) → {} (secondary)",
                        pair.primary.name(),
                        pair.secondary.name()
                    ),
                );
            }
        }
        Mode::Failover => {}
    }
    if run.role == Role::Provider
        && let Some(kind) = run_kind(run)
    {
        let s = pair_state::finish_run_phase(ctx.store.as_ref(), &run.pair, &run.run_id, kind, now)
            .await
            .map_err(|e| {
                stage_err(
                    run,
                    Stage::Complete,
                    super::error_text(&e),
                    e.is_transient(),
                )
            })?;
        out.count(
            "pairStateChanged",
            u64::from(s.run_id.as_deref() == Some(&run.run_id)),
        );
        out.summary = format!(
            "{}; pair {} is {} ({} serving)",
            out.summary,
            run.pair,
            s.phase.as_str(),
            s.serving.as_str()
        );
    }
    Ok(out)
}
