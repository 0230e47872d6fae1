//! `RunWatchdog`: finds runs that stopped making progress and gets them going again or ends
//! them; breaks locks whose run is finished or missing. Also the rule `FailoverPoison` uses to
//! tell a poisoned current stage from a stale duplicate ([`poison_applies`]).
//!
//! The watchdog cannot see queue contents cheaply, so it reasons from the run record:
//! - **progress** is the later of the run's `updatedAt` (every claim, result and wait writes it)
//!   and the current stage's `claimedAt` (the running stage's heartbeat renews it);
//! - a stage is **stalled** when no progress was made for longer than it can take
//!   ([`stage_budget`]) plus the claim lease plus the host's retry window ([`RETRY_WINDOW`]):
//!   by then any message of it would have been delivered, retried or poisoned;
//! - a stalled stage is **re-enqueued** (its message is presumed gone). That is safe because a
//!   duplicate stage message is harmless: `run_one_stage` claims the stage under the run's
//!   ETag (a second delivery waits on a live claim, a message for a passed stage is dropped) and
//!   every stage observes before it writes (deterministic invitation names) — see `exec`;
//! - a stage still stalled after [`MAX_RESUMES`] resumes is beyond its retry window: the run is
//!   marked failed (lock released, `failed` notified through `fail_run`);
//! - runs waiting for approval are resumed when their poll message is gone but never failed
//!   here: the approval deadline is its own rule (see the hook in [`sweep`]).
//!
//! Active runs are found through the pair locks (`locks/*.json`): every unfinished run holds its
//! pair's lock (taken before the run record is written, released after it ends), so the sweep
//! costs one read per pair, not one per historical run.
//!
//! Must not import: handlers, host.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::FailoverError;
use super::exec::{StageContext, enqueue_stage, fail_run};
use super::run::{
    RunRecord, RunStatus, StageStatus, WatchdogMark, break_lock, list_locks, load_run,
    lock_is_stale, update_run,
};
use super::stages::Stage;

/// How long the host may take to deliver, retry and poison a stage message: `maxDequeueCount`
/// (5) deliveries `visibilityTimeout` (10 s) apart, plus the longest wait a stage re-enqueues
/// itself with (60 s), with room for scale-out and a cold start.
pub const RETRY_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Resumes of one stage before the watchdog gives up on the run.
pub const MAX_RESUMES: u32 = 2;

/// The longest one delivery of `stage` can legitimately take. Capped by the host's
/// `functionTimeout` (10 min): a stage that needs longer hands work to the queue and waits.
pub fn stage_budget(stage: Stage) -> Duration {
    match stage {
        // A whole replicate pass (with the client's own pacing), or many invitations.
        Stage::FinalSync | Stage::InviteConsumers => Duration::from_secs(10 * 60),
        Stage::Preflight
        | Stage::EnableSchedules
        | Stage::AcceptInvitations
        | Stage::MapDatasets
        | Stage::CreateTriggers
        | Stage::Cleanup => Duration::from_secs(5 * 60),
        // Re-polled every 30 s while it waits.
        Stage::AwaitApproval | Stage::Notify | Stage::Complete => Duration::from_secs(2 * 60),
    }
}

/// The watchdog's knobs (tests shorten them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogPolicy {
    /// The stage claim lease ([`StageContext::claim_lease`]).
    pub claim_lease: Duration,
    pub retry_window: Duration,
    pub max_resumes: u32,
}

impl WatchdogPolicy {
    pub fn for_context(ctx: &StageContext) -> WatchdogPolicy {
        WatchdogPolicy {
            claim_lease: ctx.claim_lease,
            retry_window: RETRY_WINDOW,
            max_resumes: MAX_RESUMES,
        }
    }

    /// No progress for this long means the stage's message is gone.
    pub fn stall_after(&self, stage: Stage) -> Duration {
        stage_budget(stage) + self.claim_lease + self.retry_window
    }
}

/// What the watchdog does with one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ended, or progressing (recently touched, or its stage holds a live claim).
    Healthy,
    /// Re-enqueue the current stage (its message is presumed gone); `resumes` counts this one.
    Resume { stage: Stage, resumes: u32 },
    /// The stage stayed stalled through every resume: end the run failed.
    Fail { stage: Stage, reason: String },
}

fn std_to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// The last sign of life of a run: `updatedAt`, or the current stage's (heartbeat-renewed)
/// `claimedAt` when later.
pub fn last_progress(run: &RunRecord) -> OffsetDateTime {
    let claimed = run
        .current_stage
        .and_then(|s| run.stage(s))
        .and_then(|rec| rec.claimed_at);
    match claimed {
        Some(c) if c > run.updated_at => c,
        _ => run.updated_at,
    }
}

/// Decides (pure) what to do with `run` at `now`.
pub fn decide(run: &RunRecord, policy: &WatchdogPolicy, now: OffsetDateTime) -> Verdict {
    if run.status.is_terminal() {
        return Verdict::Healthy;
    }
    let Some(stage) = run.current_stage else {
        return Verdict::Healthy;
    };
    // A live claim is progress: its stage is running and its heartbeat renews the claim.
    if let Some(rec) = run.stage(stage)
        && rec.status == StageStatus::Running
        && rec.claim.is_some()
        && rec
            .claimed_at
            .is_some_and(|t| now - t < std_to_time(policy.claim_lease))
    {
        return Verdict::Healthy;
    }
    let idle = now - last_progress(run);
    if idle < std_to_time(policy.stall_after(stage)) {
        return Verdict::Healthy;
    }
    let resumed = run
        .watchdog
        .as_ref()
        .filter(|m| m.stage == stage)
        .map_or(0, |m| m.resumes);
    let waiting_for_approval =
        run.status == RunStatus::AwaitingApproval || stage == Stage::AwaitApproval;
    if resumed >= policy.max_resumes && !waiting_for_approval {
        return Verdict::Fail {
            stage,
            reason: format!(
                "stage {stage} made no progress for {} min after {resumed} watchdog resume(s): beyond its retry window",
                idle.whole_minutes()
            ),
        };
    }
    Verdict::Resume {
        stage,
        resumes: resumed + 1,
    }
}

/// Whether a run waiting for approval has a deadline milestone (reminder, expiry, proceed) that
/// its own await-approval poll should have applied more than two polls ago — the sign that the
/// stage's message is gone. Pure; [`events::approval_deadline_decision`] decides the milestone.
pub fn approval_overdue(
    run: &RunRecord,
    deadline: &crate::config::dr::ApprovalDeadline,
    approval_poll: Duration,
    now: OffsetDateTime,
) -> bool {
    use super::events::{
        DeadlineDecision, approval_deadline, approval_deadline_decision, waiting_since,
    };
    let grace = std_to_time(approval_poll * 2);
    let due = match approval_deadline_decision(run, deadline, now) {
        DeadlineDecision::NotWaiting | DeadlineDecision::Wait(_) => return false,
        DeadlineDecision::Expire | DeadlineDecision::Proceed => approval_deadline(run, deadline),
        DeadlineDecision::Remind(_) => {
            let since = waiting_since(run);
            since + (approval_deadline(run, deadline) - since) / 2
        }
    };
    now - due > grace && now - last_progress(run) > grace
}

/// What one sweep did (logged by the handler, asserted by tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Runs looked at (one per held lock).
    pub checked: u32,
    /// `runId stage` of every re-enqueued stage.
    pub resumed: Vec<String>,
    /// Runs marked failed.
    pub failed: Vec<String>,
    /// Pairs whose lock was broken (run finished or missing).
    pub locks_broken: Vec<String>,
    /// Runs waiting for approval (handed to the approval-deadline rule).
    pub awaiting_approval: Vec<String>,
}

/// One watchdog pass over every held lock (see the module docs).
pub async fn sweep(
    ctx: &StageContext,
    policy: &WatchdogPolicy,
) -> Result<SweepReport, FailoverError> {
    let store = ctx.store.as_ref();
    let mut report = SweepReport::default();
    for (lock, etag) in list_locks(store).await? {
        report.checked += 1;
        let now = ctx.clock.now();
        let holder = load_run(store, &lock.run_id).await?.map(|(r, _)| r);
        if lock_is_stale(&lock, holder.as_ref(), now) {
            if break_lock(store, &lock.pair, &etag).await? {
                tracing::info!(event = "watchdog.lock-broken", pair = %lock.pair, run_id = %lock.run_id, "lock of a finished or missing run broken");
                report.locks_broken.push(lock.pair.clone());
            }
            continue;
        }
        let Some(run) = holder else { continue };
        let mut verdict = decide(&run, policy, now);
        if run.status == RunStatus::AwaitingApproval {
            report.awaiting_approval.push(run.run_id.clone());
            // The approval deadline: the await-approval stage applies it (reminder, `expired`,
            // proceed as approved) each time its message comes back. When a milestone is
            // overdue by more than two of its polls, its message is gone: re-enqueue the stage
            // now rather than after the general stall window, so no approval waits past its
            // deadline.
            let deadline = ctx.config.approval_deadline(&run.pair);
            if verdict == Verdict::Healthy
                && approval_overdue(&run, &deadline, ctx.approval_poll, now)
            {
                verdict = Verdict::Resume {
                    stage: Stage::AwaitApproval,
                    resumes: run
                        .watchdog
                        .as_ref()
                        .filter(|m| m.stage == Stage::AwaitApproval)
                        .map_or(0, |m| m.resumes)
                        + 1,
                };
            }
        }
        match verdict {
            Verdict::Healthy => {}
            Verdict::Resume { stage, resumes } => {
                // Mark first (ETag-guarded, only if the run is still stalled on this stage), so
                // two overlapping sweeps do not both enqueue.
                let marked = update_run(store, &run.run_id, |r| {
                    if r.current_stage != Some(stage)
                        || r.status.is_terminal()
                        || last_progress(r) != last_progress(&run)
                    {
                        return Err(FailoverError::InvalidState {
                            run_id: r.run_id.clone(),
                            reason: "the run moved on meanwhile".into(),
                        });
                    }
                    r.watchdog = Some(WatchdogMark {
                        stage,
                        resumes,
                        at: now,
                    });
                    r.updated_at = now;
                    Ok(())
                })
                .await;
                match marked {
                    Ok(_) => {}
                    Err(FailoverError::InvalidState { .. }) => continue,
                    Err(e) => return Err(e),
                }
                enqueue_stage(ctx.queue.as_ref(), &run.run_id, stage, resumes, None, now).await?;
                tracing::warn!(event = "watchdog.resumed", run_id = %run.run_id, pair = %run.pair, stage = %stage, resumes, "run made no progress; its stage message was presumed lost and enqueued again");
                report.resumed.push(format!("{} {stage}", run.run_id));
            }
            Verdict::Fail { stage, reason } => {
                fail_run(ctx, &run.run_id, Some(stage), &reason).await?;
                tracing::error!(event = "watchdog.failed", run_id = %run.run_id, pair = %run.pair, stage = %stage, reason = %reason, "run marked failed by the watchdog");
                report.failed.push(run.run_id.clone());
            }
        }
    }
    Ok(report)
}

/// Whether a poisoned message for `stage` may fail `run`: only when it is the run's current
/// stage and no other delivery holds a live claim on it. A message for a stage the run has
/// passed (or not reached), or for an ended run, is a stale duplicate: logged and dropped.
pub fn poison_applies(
    run: &RunRecord,
    stage: Option<Stage>,
    claim_lease: Duration,
    now: OffsetDateTime,
) -> Result<(), String> {
    if run.status.is_terminal() {
        return Err(format!("run already {}", run.status.as_str()));
    }
    let Some(stage) = stage else {
        return Err("the message names no known stage".into());
    };
    if run.current_stage != Some(stage) {
        return Err(format!(
            "stale duplicate: the run is at {}",
            run.current_stage
                .map_or_else(|| "no stage".to_owned(), |s| s.to_string())
        ));
    }
    if let Some(rec) = run.stage(stage)
        && rec.status == StageStatus::Running
        && rec.claim.is_some()
        && rec
            .claimed_at
            .is_some_and(|t| now - t < std_to_time(claim_lease))
    {
        return Err(format!(
            "stale duplicate: another delivery is running {stage}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::run::Trigger;
    use crate::failover::stages::{Mode, Policy, Role};

    const POLICY: WatchdogPolicy = WatchdogPolicy {
        claim_lease: Duration::from_secs(120),
        retry_window: RETRY_WINDOW,
        max_resumes: MAX_RESUMES,
    };

    fn run_at(stage: Stage, updated: OffsetDateTime) -> RunRecord {
        let mut r = RunRecord::new(
            "r1".into(),
            "p".into(),
            Mode::Failover,
            Policy {
                role: Role::Provider,
                approval_required: true,
            },
            false,
            Trigger::default(),
            updated,
        );
        r.status = RunStatus::Running;
        r.current_stage = Some(stage);
        r
    }

    fn mins(m: i64) -> time::Duration {
        time::Duration::minutes(m)
    }

    #[test]
    fn the_watchdog_resumes_a_stalled_stage_then_fails_it_beyond_its_retry_window() {
        let t0 = OffsetDateTime::UNIX_EPOCH + mins(60 * 24);
        let stall = std_to_time(POLICY.stall_after(Stage::FinalSync));
        let mut run = run_at(Stage::FinalSync, t0);
        // Within the stage's budget + lease + retry window: healthy.
        assert_eq!(
            decide(&run, &POLICY, t0 + stall - mins(1)),
            Verdict::Healthy
        );
        // Past it: resume (first time).
        assert_eq!(
            decide(&run, &POLICY, t0 + stall + mins(1)),
            Verdict::Resume {
                stage: Stage::FinalSync,
                resumes: 1
            }
        );
        // Resumed MAX_RESUMES times on this stage and still stalled: fail.
        run.watchdog = Some(WatchdogMark {
            stage: Stage::FinalSync,
            resumes: MAX_RESUMES,
            at: t0,
        });
        assert!(matches!(
            decide(&run, &POLICY, t0 + stall + mins(1)),
            Verdict::Fail {
                stage: Stage::FinalSync,
                ..
            }
        ));
        // Resumes of an earlier stage do not count against this one.
        run.watchdog = Some(WatchdogMark {
            stage: Stage::Preflight,
            resumes: MAX_RESUMES,
            at: t0,
        });
        assert!(matches!(
            decide(&run, &POLICY, t0 + stall + mins(1)),
            Verdict::Resume { resumes: 1, .. }
        ));
    }

    #[test]
    fn a_live_claim_renewed_by_the_heartbeat_is_progress() {
        let t0 = OffsetDateTime::UNIX_EPOCH + mins(60 * 24);
        let mut run = run_at(Stage::FinalSync, t0);
        let late = t0 + mins(120);
        if let Some(rec) = run.stage_mut(Stage::FinalSync) {
            rec.status = StageStatus::Running;
            rec.claim = Some("c".into());
            rec.claimed_at = Some(late - time::Duration::seconds(30));
        }
        assert_eq!(decide(&run, &POLICY, late), Verdict::Healthy);
        // The same claim long expired (its process died): the stage is stalled.
        assert!(matches!(
            decide(&run, &POLICY, late + mins(60)),
            Verdict::Resume { .. }
        ));
    }

    #[test]
    fn an_approval_whose_deadline_passed_unseen_is_overdue_for_the_watchdog() {
        use crate::config::dr::{ApprovalDeadline, ApprovalTimeoutAction};
        let t0 = OffsetDateTime::UNIX_EPOCH + mins(60 * 24);
        let mut run = run_at(Stage::AwaitApproval, t0);
        run.status = RunStatus::AwaitingApproval;
        let deadline = ApprovalDeadline {
            timeout: Duration::from_secs(60 * 60),
            on_timeout: ApprovalTimeoutAction::Fail,
        };
        let poll = Duration::from_secs(30);
        // Before half-time: nothing is due.
        assert!(!approval_overdue(&run, &deadline, poll, t0 + mins(10)));
        // The reminder is due at half-time; within two polls the stage's own message does it.
        assert!(!approval_overdue(
            &run,
            &deadline,
            poll,
            t0 + mins(30) + time::Duration::seconds(50)
        ));
        // Long past half-time with no sign of the stage: its message is gone.
        assert!(approval_overdue(&run, &deadline, poll, t0 + mins(35)));
        // Past the deadline: overdue too (expiry must not wait for the general stall window).
        assert!(approval_overdue(&run, &deadline, poll, t0 + mins(62)));
        // The stage touched the run recently (its poll is alive): not overdue.
        run.updated_at = t0 + mins(62);
        assert!(!approval_overdue(
            &run,
            &deadline,
            poll,
            t0 + mins(62) + time::Duration::seconds(30)
        ));
        // Approved meanwhile: nothing waits.
        run.approval.state = "approved".into();
        assert!(!approval_overdue(&run, &deadline, poll, t0 + mins(120)));
    }

    #[test]
    fn a_run_waiting_for_approval_is_resumed_but_never_failed_here() {
        let t0 = OffsetDateTime::UNIX_EPOCH + mins(60 * 24);
        let mut run = run_at(Stage::AwaitApproval, t0);
        run.status = RunStatus::AwaitingApproval;
        run.watchdog = Some(WatchdogMark {
            stage: Stage::AwaitApproval,
            resumes: 10,
            at: t0,
        });
        assert!(matches!(
            decide(&run, &POLICY, t0 + mins(600)),
            Verdict::Resume { .. }
        ));
        let mut ended = run_at(Stage::FinalSync, t0);
        ended.finish(RunStatus::Failed, t0, None);
        assert_eq!(decide(&ended, &POLICY, t0 + mins(600)), Verdict::Healthy);
    }

    #[test]
    fn a_poisoned_message_fails_the_run_only_for_its_current_unclaimed_stage() {
        let t0 = OffsetDateTime::UNIX_EPOCH + mins(60 * 24);
        let lease = Duration::from_secs(120);
        let mut run = run_at(Stage::InviteConsumers, t0);
        assert!(poison_applies(&run, Some(Stage::InviteConsumers), lease, t0).is_ok());
        // A duplicate of a passed stage: dropped.
        assert!(poison_applies(&run, Some(Stage::Preflight), lease, t0).is_err());
        assert!(poison_applies(&run, None, lease, t0).is_err());
        // Another delivery runs the current stage right now: dropped.
        if let Some(rec) = run.stage_mut(Stage::InviteConsumers) {
            rec.status = StageStatus::Running;
            rec.claim = Some("live".into());
            rec.claimed_at = Some(t0);
        }
        assert!(poison_applies(&run, Some(Stage::InviteConsumers), lease, t0).is_err());
        run.finish(RunStatus::Succeeded, t0, None);
        assert!(poison_applies(&run, Some(Stage::InviteConsumers), lease, t0).is_err());
    }
}
