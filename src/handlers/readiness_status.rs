//! `ReadinessStatus` (HTTP `GET api/readiness/{pair?}`): latest readiness report(s) as JSON, or the HTML status page for text/html.
//!
//! Decodes the [`HttpRequest`]; the domain call is not wired yet, so it answers the tracked
//! placeholder error [`HandlerError::NotImplemented`] (the caller gets 503).

use crate::host::{HttpRequest, InvocationResponse};
use crate::startup::AppState;

use super::HandlerError;

/// Function (folder) name.
pub const NAME: &str = "ReadinessStatus";

pub async fn handle(
    state: &AppState,
    req: HttpRequest,
) -> Result<InvocationResponse, HandlerError> {
    let _ = (state, req);
    Err(HandlerError::NotImplemented { function: NAME })
}
