//! `FailoverPoison` (queue `failover-stages-poison`): a stage message that exhausted its
//! retries; marks the run failed with the reason and notifies (output `notify`).
//!
//! Takes the message as raw [`MessageText`], so even a message that never decoded is recorded
//! (a decode failure here would loop: a poison queue has no poison queue). The run store is
//! not wired yet, so it answers the tracked placeholder error [`HandlerError::NotImplemented`].

use crate::host::{InvocationResponse, MessageText, QueueTrigger};
use crate::startup::AppState;

use super::HandlerError;

/// Function (folder) name.
pub const NAME: &str = "FailoverPoison";

pub async fn handle(
    state: &AppState,
    trigger: QueueTrigger<MessageText>,
) -> Result<InvocationResponse, HandlerError> {
    let _ = (state, trigger);
    Err(HandlerError::NotImplemented { function: NAME })
}
