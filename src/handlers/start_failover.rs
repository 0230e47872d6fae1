//! `StartFailover` (HTTP `POST api/failover`, body `{pair, mode, dryRun?, force?, reason}`):
//! start a failover / drill / failback run (202 `{runId, statusUrl}`, 409 when one is active).
//!
//! Decodes and validates the typed body (400 naming the field, 413 over the size limit); the
//! run itself is not wired yet, so a valid request answers the tracked placeholder error
//! [`HandlerError::NotImplemented`] (503).

use serde::Deserialize;

use crate::host::{HttpRequest, InvocationResponse};
use crate::startup::AppState;

use super::HandlerError;

/// Function (folder) name.
pub const NAME: &str = "StartFailover";

/// Run mode (`mode` in the request body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    Failover,
    Drill,
    Failback,
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartFailoverRequest {
    pub pair: String,
    pub mode: RunMode,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub force: bool,
    pub reason: String,
}

/// Decodes and checks the body (non-empty `pair` and `reason`).
pub fn decode(req: &HttpRequest) -> Result<StartFailoverRequest, HandlerError> {
    let body: StartFailoverRequest = req.json_body()?;
    if body.pair.trim().is_empty() {
        return Err(crate::host::PayloadError::invalid("body.pair", "must not be empty").into());
    }
    if body.reason.trim().is_empty() {
        return Err(crate::host::PayloadError::invalid(
            "body.reason",
            "must not be empty (it is recorded in the audit trail)",
        )
        .into());
    }
    Ok(body)
}

pub async fn handle(
    state: &AppState,
    req: HttpRequest,
) -> Result<InvocationResponse, HandlerError> {
    let body = decode(&req)?;
    let _ = (state, body);
    Err(HandlerError::NotImplemented { function: NAME })
}
