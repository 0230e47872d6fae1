//! `ReplicatePair` (queue `replicate-pairs`, message `{jobId, pair, round}`): one pair's
//! replicate pass for a `ReplicateNow` job that ran out of its budget
//! ([`crate::reconcile::job`]).
//!
//! Runs the same guarded pass as the timer ([`run_pass`]: pair state checked, lease taken,
//! observe → plan → apply, the job's `dryRun` / `prune`) within the pass budget
//! (`startup::ReplicateBudgets::pass`, below host.json's `functionTimeout`), then records the
//! pair's outcome on `replicate-jobs/{jobId}.json`. Cut off again by the budget (or the pair
//! held by another pass's lease), it re-enqueues itself with `round + 1` — after
//! [`job::MAX_ROUNDS`] rounds the pair is recorded `failed` — so no invocation outlives its
//! timeout and every pair ends with an outcome.
//!
//! Classification: a job or pair that does not exist, or a pair already recorded, answers 200
//! with the reason in `Logs` (nothing to do; a redelivered message is harmless); storage
//! failures answer 500 so the host retries. Pair failures (not observed, changes refused) are
//! the pair's outcome on the job, not a retry.

use std::time::Duration;

use crate::host::{InvocationResponse, QueueTrigger};
use crate::reconcile::job::{self, JobPair, PAIRS_QUEUE, PairMessage, PairStatus};
use crate::startup::AppState;

use super::HandlerError;
use super::replicate_config::{job_pair, record_rosters, run_pass};

/// Function (folder) name.
pub const NAME: &str = "ReplicatePair";

/// Delay before a pair held by another pass's lease is tried again.
const HELD_RETRY: Duration = Duration::from_secs(30);

pub async fn handle(
    state: &AppState,
    trigger: QueueTrigger<PairMessage>,
) -> Result<InvocationResponse, HandlerError> {
    let msg = trigger.body;
    let dr = state.dr()?;
    let storage = state.storage().await?;
    let blobs = storage.blobs.as_ref();
    let Some(record) = job::load(blobs, &msg.job_id)
        .await
        .map_err(|e| HandlerError::transient(format!("read replicate job {}", msg.job_id), e))?
    else {
        return Ok(InvocationResponse::new().log(format!(
            "{NAME}: replicate job {} does not exist; message dropped",
            msg.job_id
        )));
    };
    match record.pair(&msg.pair) {
        None => {
            return Ok(InvocationResponse::new().log(format!(
                "{NAME}: job {} has no pair {}; message dropped",
                msg.job_id, msg.pair
            )));
        }
        Some(p) if p.status.is_final() => {
            return Ok(InvocationResponse::new().log(format!(
                "{NAME}: pair {} of job {} is already {:?}; nothing to do",
                msg.pair, msg.job_id, p.status
            )));
        }
        Some(_) => {}
    }
    let now = time::OffsetDateTime::now_utc();
    let update = match dr.pair(&msg.pair) {
        None => JobPair {
            pair: msg.pair.clone(),
            status: PairStatus::Failed,
            rounds: msg.round,
            counts: None,
            error: Some(format!(
                "pair {} is no longer in the DR config ({})",
                msg.pair, dr.source
            )),
            reason: None,
            updated_at: now,
        },
        Some(pair) => {
            let client = state.arm().await?;
            let deadline = tokio::time::Instant::now() + state.budgets.pass;
            let pass = run_pass(
                client,
                Some(blobs),
                &[pair],
                record.dry_run,
                record.prune,
                dr.arm.max_concurrency,
                NAME,
                Some(deadline),
            )
            .await;
            // Best effort, as after every pass (the roster is for failovers with the primary down).
            let _ = record_rosters(state, &pass).await;
            let Some(report) = pass.report.pairs.first() else {
                return Err(HandlerError::permanent(
                    "run the pair's pass",
                    std::io::Error::other("the pass returned no report"),
                ));
            };
            let held = report
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("another replicate pass holds"));
            let again = !pass.unfinished.is_empty() || held;
            if again && msg.round + 1 < job::MAX_ROUNDS {
                let next = PairMessage {
                    round: msg.round + 1,
                    ..msg.clone()
                };
                let text = serde_json::to_string(&next).map_err(|e| {
                    HandlerError::permanent("encode the replicate-pairs message", e)
                })?;
                storage
                    .queue
                    .send(PAIRS_QUEUE, &text, held.then_some(HELD_RETRY))
                    .await
                    .map_err(|e| {
                        HandlerError::transient(format!("re-queue pair {}", msg.pair), e)
                    })?;
                let mut p = job_pair(report, true, next.round);
                p.reason = report.reason.clone();
                p
            } else if again {
                let mut p = job_pair(report, false, msg.round + 1);
                p.status = PairStatus::Failed;
                p.error = Some(format!(
                    "not finished after {} rounds of the pass budget ({} s each): {}",
                    msg.round + 1,
                    state.budgets.pass.as_secs(),
                    report.error.as_deref().unwrap_or("cut off")
                ));
                p
            } else {
                job_pair(report, false, msg.round)
            }
        }
    };
    let status = update.status;
    let written = job::record_pair(blobs, &msg.job_id, &update)
        .await
        .map_err(|e| {
            HandlerError::transient(format!("record pair {} on job {}", msg.pair, msg.job_id), e)
        })?;
    tracing::info!(
        event = "replicate.job-pair",
        job_id = %msg.job_id,
        pair = %msg.pair,
        round = msg.round,
        pair_status = ?status,
        job_status = ?written.status,
        "replicate job pair recorded"
    );
    Ok(InvocationResponse::new().log(format!(
        "{NAME}: job {} pair {}: {:?} (job {:?})",
        msg.job_id, msg.pair, status, written.status
    )))
}
