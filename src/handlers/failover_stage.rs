//! `FailoverStage` (queue `failover-stages`): run one stage of a failover / drill / failback
//! run and enqueue the next.
//!
//! Decode the typed [`StageMessage`] → `failover::runner::process_message` (claim, run, record,
//! enqueue the next stage — directly on the queue, because a wait needs a visibility delay an
//! output binding cannot set) → answer. Classification (STYLE #8, one error policy in
//! `failover::stages::error_policy`): a transient error answers 500 so the host retries, and
//! after `maxDequeueCount` moves the message to `failover-stages-poison`; a permanent error
//! marks the run failed (and notifies) and answers 200.

use std::sync::Arc;

use crate::failover::events::EventSettings;
use crate::failover::runner::process_message;
use crate::failover::{FailoverError, Outcome, StageContext, error_text};
use crate::host::{InvocationResponse, QueueTrigger};
use crate::startup::AppState;

use super::HandlerError;

pub use crate::failover::StageMessage;

/// Function (folder) name.
pub const NAME: &str = "FailoverStage";

/// host.json `extensions.queues.maxDequeueCount` (a test holds the two equal).
pub const MAX_DEQUEUE_COUNT: u32 = 5;

/// The failover domain's context from the app state (shared ARM client and storage).
pub async fn stage_context(state: &AppState) -> Result<StageContext, HandlerError> {
    let dr = match &state.dr {
        Some(d) => Arc::clone(d),
        None => {
            state.dr()?; // the error naming DR_CONFIG_PATH
            return Err(HandlerError::NotFound {
                what: "DR config".into(),
            });
        }
    };
    let arm = state.arm().await?.clone();
    let storage = state.storage().await?;
    let mut ctx = StageContext::new(dr, arm, storage.blobs.clone(), Arc::clone(&storage.queue));
    ctx.events = event_settings(state)?;
    Ok(ctx)
}

/// Where run events go: the channels of `NOTIFY_WEBHOOK_URL` / `NOTIFY_TEAMS_WEBHOOK_URL`,
/// links under `WEBSITE_HOSTNAME`, CLI commands naming the DR config's file name.
pub fn event_settings(state: &AppState) -> Result<EventSettings, HandlerError> {
    let channels = crate::notify::Channels::from_config(&state.config).map_err(|reason| {
        HandlerError::permanent(
            "read the notification channels",
            std::io::Error::other(reason),
        )
    })?;
    Ok(EventSettings {
        channels,
        public_base_url: state
            .config
            .website_hostname
            .as_deref()
            .map(EventSettings::base_url_for_host),
        config_name: state
            .config
            .dr_config_path
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned()),
    })
}

/// Maps a failover error to the handler's classification.
pub fn failover_error(operation: &str, err: FailoverError) -> HandlerError {
    match err {
        FailoverError::RunNotFound { run_id } => HandlerError::NotFound {
            what: format!("run {run_id}"),
        },
        FailoverError::UnknownPair { pair, known } => HandlerError::NotFound {
            what: format!("pair {pair:?} (configured: {known})"),
        },
        FailoverError::InvalidState { .. } => HandlerError::Conflict {
            detail: error_text(&err),
        },
        e if e.is_transient() => HandlerError::transient(operation.to_owned(), e),
        e => HandlerError::permanent(operation.to_owned(), e),
    }
}

pub async fn handle(
    state: &AppState,
    trigger: QueueTrigger<StageMessage>,
) -> Result<InvocationResponse, HandlerError> {
    let span = tracing::Span::current();
    span.record("run_id", trigger.body.run_id.as_str());
    span.record("stage", trigger.body.stage.as_str());
    let mut ctx = stage_context(state).await?;
    ctx.delivery = trigger
        .id
        .clone()
        .map(|message_id| crate::failover::exec::Delivery {
            message_id,
            dequeue_count: trigger.dequeue_count,
        });
    let msg = &trigger.body;
    match process_message(&ctx, msg, trigger.dequeue_count, MAX_DEQUEUE_COUNT, false).await {
        Ok(Some(outcome)) => {
            let line = match &outcome {
                Outcome::Advance(n) => format!("{}: done; next {n}", msg.stage),
                Outcome::Wait(d) => format!("{}: waiting {} s", msg.stage, d.as_secs()),
                Outcome::Done => format!("{}: done", msg.stage),
                Outcome::Abort(r) => format!("{}: run stopped: {r}", msg.stage),
            };
            Ok(InvocationResponse::new().log(line))
        }
        Ok(None) => Ok(InvocationResponse::new().log(format!(
            "{}: failed permanently; run {} marked failed",
            msg.stage, msg.run_id
        ))),
        // The one classification: transient → 500 (retry, then the host poisons the message);
        // a run that does not exist → acknowledged with the reason logged (retrying cannot
        // help); a state conflict → retried.
        Err(e) => Err(failover_error(
            &format!("stage {} of run {}", msg.stage, msg.run_id),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_limit_equals_host_json() {
        let host: serde_json::Value =
            serde_json::from_str(include_str!("../../host.json")).unwrap_or_default();
        assert_eq!(
            host.pointer("/extensions/queues/maxDequeueCount")
                .and_then(serde_json::Value::as_u64),
            Some(u64::from(MAX_DEQUEUE_COUNT))
        );
    }
}
