//! `FailoverPoison` (queue `failover-stages-poison`): a stage message that exhausted its
//! retries; marks the run failed with the reason and notifies (through the run's notification
//! on the `notifications` queue).
//!
//! Acts only when the poisoned message is the run's **current** stage and no other delivery
//! holds a live claim on it (`failover::watchdog::poison_applies`): a stale duplicate — a
//! message for a stage the run already passed, or a second copy of a stage another delivery is
//! running — is logged and dropped, so it never fails a healthy run.
//!
//! Takes the message as raw [`MessageText`], so even a message that never decoded is recorded
//! (a decode failure here would loop: a poison queue has no poison queue). A message that names
//! no run is logged and acknowledged.

use crate::failover::exec::fail_run_if;
use crate::failover::watchdog::poison_applies;
use crate::failover::{Stage, StageMessage};
use crate::host::{InvocationResponse, MessageText, QueueTrigger};
use crate::startup::AppState;

use super::HandlerError;
use super::failover_stage::{failover_error, stage_context};

/// Function (folder) name.
pub const NAME: &str = "FailoverPoison";

pub async fn handle(
    state: &AppState,
    trigger: QueueTrigger<MessageText>,
) -> Result<InvocationResponse, HandlerError> {
    let Ok(msg) = serde_json::from_str::<StageMessage>(&trigger.body.0) else {
        tracing::error!(
            len = trigger.body.0.len(),
            "poison message is not a stage message; nothing to mark"
        );
        return Ok(InvocationResponse::new().log("poison message is not a stage message"));
    };
    let span = tracing::Span::current();
    span.record("run_id", msg.run_id.as_str());
    span.record("stage", msg.stage.as_str());
    let ctx = stage_context(state).await?;
    let stage = Stage::parse(&msg.stage);
    let reason = format!(
        "stage {} exhausted its retries (moved to the poison queue after {} deliveries)",
        msg.stage,
        super::failover_stage::MAX_DEQUEUE_COUNT
    );
    let lease = ctx.claim_lease;
    let applies = |run: &crate::failover::RunRecord, now| poison_applies(run, stage, lease, now);
    match fail_run_if(&ctx, &msg.run_id, stage, &reason, applies).await {
        Ok((_, Err(why))) => {
            tracing::warn!(event = "failover.poison-dropped", run_id = %msg.run_id, stage = %msg.stage, why = %why, "poisoned stage message is not the run's current stage; dropped");
            Ok(InvocationResponse::new().log(format!(
                "poisoned {} message of run {} dropped: {why}",
                msg.stage, msg.run_id
            )))
        }
        Ok((run, Ok(()))) => Ok(InvocationResponse::new().log(format!(
            "run {} is {} ({reason})",
            run.run_id,
            run.status.as_str()
        ))),
        Err(crate::failover::FailoverError::RunNotFound { run_id }) => {
            tracing::error!(%run_id, "poisoned stage message for a run that does not exist");
            Ok(InvocationResponse::new().log(format!("run {run_id} does not exist")))
        }
        Err(e) => Err(failover_error("mark the run failed", e)),
    }
}
