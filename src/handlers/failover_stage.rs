//! `FailoverStage` (queue `failover-stages`): run one stage of a failover / drill / failback
//! run and enqueue the next (output `stages`), notifications on `notify`.
//!
//! Decodes the typed [`StageMessage`] (docs/CONTRACTS.md) and records run id and stage on the
//! invocation span; the stage runner is not wired yet, so it answers the tracked placeholder
//! error [`HandlerError::NotImplemented`] (503 → the host retries, then poisons).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::host::{InvocationResponse, QueueTrigger};
use crate::startup::AppState;

use super::HandlerError;

/// Function (folder) name.
pub const NAME: &str = "FailoverStage";

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

pub async fn handle(
    state: &AppState,
    trigger: QueueTrigger<StageMessage>,
) -> Result<InvocationResponse, HandlerError> {
    let span = tracing::Span::current();
    span.record("run_id", trigger.body.run_id.as_str());
    span.record("stage", trigger.body.stage.as_str());
    let _ = state;
    Err(HandlerError::NotImplemented { function: NAME })
}
