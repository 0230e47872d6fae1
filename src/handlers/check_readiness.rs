//! `CheckReadiness` (timer, `%READINESS_SCHEDULE%`): evaluate readiness of every pair, store the report, notify on a status change.
//!
//! Decodes the [`TimerTrigger`]; the domain call is not wired yet, so it answers the tracked
//! placeholder error [`HandlerError::NotImplemented`] (503).

use crate::host::{InvocationResponse, TimerTrigger};
use crate::startup::AppState;

use super::HandlerError;

/// Function (folder) name.
pub const NAME: &str = "CheckReadiness";

pub async fn handle(
    state: &AppState,
    trigger: TimerTrigger,
) -> Result<InvocationResponse, HandlerError> {
    let _ = (state, trigger);
    Err(HandlerError::NotImplemented { function: NAME })
}
