//! `FailoverPoison` (queue `failover-stages-poison`): a stage message that exhausted its
//! retries; marks the run failed with the reason and notifies (through the run's notification
//! on the `notifications` queue).
//!
//! Takes the message as raw [`MessageText`], so even a message that never decoded is recorded
//! (a decode failure here would loop: a poison queue has no poison queue). A message that names
//! no run is logged and acknowledged.

use crate::failover::{Stage, StageMessage, fail_run};
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
    let reason = format!(
        "stage {} exhausted its retries (moved to the poison queue after {} deliveries)",
        msg.stage,
        super::failover_stage::MAX_DEQUEUE_COUNT
    );
    match fail_run(&ctx, &msg.run_id, Stage::parse(&msg.stage), &reason).await {
        Ok(run) => Ok(InvocationResponse::new().log(format!(
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
