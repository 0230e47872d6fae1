//! `FailoverRun` (HTTP `GET api/failover/{runId}` status; `POST api/failover/{runId}/approve`
//! and `.../cancel`).
//!
//! Decodes and validates the route (400/404 naming what is wrong); the run store is not wired
//! yet, so a valid request answers the tracked placeholder error
//! [`HandlerError::NotImplemented`] (503).

use crate::host::{HttpRequest, InvocationResponse, PayloadError};
use crate::startup::AppState;

use super::HandlerError;

/// Function (folder) name.
pub const NAME: &str = "FailoverRun";

/// What the caller asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAction {
    Status { run_id: String },
    Approve { run_id: String },
    Cancel { run_id: String },
}

/// Decodes method + route parameters into a [`RunAction`].
pub fn decode(req: &HttpRequest) -> Result<RunAction, HandlerError> {
    let run_id = req
        .param("runId")
        .ok_or_else(|| PayloadError::missing("params.runId"))?
        .to_owned();
    if run_id.len() > 128
        || !run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(PayloadError::invalid(
            "params.runId",
            "expected a run id (letters, digits, `-`, `_`)",
        )
        .into());
    }
    match (req.method.as_str(), req.param("action")) {
        ("GET", None) => Ok(RunAction::Status { run_id }),
        ("POST", Some(a)) if a.eq_ignore_ascii_case("approve") => Ok(RunAction::Approve { run_id }),
        ("POST", Some(a)) if a.eq_ignore_ascii_case("cancel") => Ok(RunAction::Cancel { run_id }),
        ("POST", None) => Err(PayloadError::missing("params.action").into()),
        (_, Some(a)) => Err(HandlerError::NotFound {
            what: format!(
                "action `{}` (use approve or cancel)",
                a.chars().take(40).collect::<String>()
            ),
        }),
        (m, None) => Err(PayloadError::invalid(
            "method",
            format!("`{m}` is not supported (GET or POST)"),
        )
        .into()),
    }
}

pub async fn handle(
    state: &AppState,
    req: HttpRequest,
) -> Result<InvocationResponse, HandlerError> {
    let action = decode(&req)?;
    let _ = (state, action);
    Err(HandlerError::NotImplemented { function: NAME })
}
