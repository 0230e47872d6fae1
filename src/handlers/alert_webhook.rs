//! `AlertWebhook` (HTTP `POST api/alerts`): Azure Monitor common-alert-schema webhook; decides and enqueues, never works inline.
//!
//! Decodes the [`HttpRequest`]; the domain call is not wired yet, so it answers the tracked
//! placeholder error [`HandlerError::NotImplemented`] (the caller gets 503).

use crate::host::{HttpRequest, InvocationResponse};
use crate::startup::AppState;

use super::HandlerError;

/// Function (folder) name.
pub const NAME: &str = "AlertWebhook";

pub async fn handle(
    state: &AppState,
    req: HttpRequest,
) -> Result<InvocationResponse, HandlerError> {
    let _ = (state, req);
    Err(HandlerError::NotImplemented { function: NAME })
}
