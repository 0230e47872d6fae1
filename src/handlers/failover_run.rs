//! `FailoverRun` (HTTP `GET api/failover/{runId}` status; `POST api/failover/{runId}/approve`
//! and `.../cancel`).
//!
//! Decodes and validates the route (400/404 naming what is wrong), then one domain call:
//! `failover::start::{status, approve_because, cancel_because}`. Approve and cancel take an
//! optional JSON body `{"reason": "…"}`, recorded on the run (400 naming the field when it is
//! not that shape). Answers the run record (200); 404 for an
//! unknown run; 409 when the action does not fit the run's state (approving a run that does
//! not wait, cancelling an ended run). Cancel answers the run with the stages already done.

use crate::failover::start;
use crate::host::{HttpOutput, HttpRequest, InvocationResponse, PayloadError};
use crate::startup::AppState;

use super::HandlerError;
use super::failover_stage::failover_error;
use super::start_failover::caller_of;

/// Function (folder) name.
pub const NAME: &str = "FailoverRun";

/// What the caller asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAction {
    Status { run_id: String },
    Approve { run_id: String },
    Cancel { run_id: String },
}

/// The optional body of approve / cancel: `{"reason": "…"}` (recorded on the run;
/// `RunActionRequest` in docs/openapi.yaml, no other fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    pub reason: Option<String>,
}

/// The approve / cancel body (absent or empty: no reason); status reads no body.
pub fn decode_decision(req: &HttpRequest, action: &RunAction) -> Result<Decision, HandlerError> {
    Ok(match action {
        RunAction::Status { .. } => Decision::default(),
        _ => req.json_body_or_default()?,
    })
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
    let storage = state.storage().await?;
    let blobs = storage.blobs.as_ref();
    let now = time::OffsetDateTime::now_utc();
    let who = caller_of(&req);
    let decision = decode_decision(&req, &action)?;
    let reason = decision.reason.as_deref();
    let run = match &action {
        RunAction::Status { run_id } => start::status(blobs, run_id).await,
        RunAction::Approve { run_id } => {
            start::approve_because(blobs, storage.queue.as_ref(), run_id, &who, reason, now).await
        }
        RunAction::Cancel { run_id } => {
            start::cancel_because(blobs, run_id, &who, reason, now).await
        }
    }
    .map_err(|e| failover_error("answer the run request", e))?;
    if matches!(action, RunAction::Cancel { .. }) && run.status.is_terminal() {
        // Ended here (between stages): no stage will announce it.
        let settings = super::failover_stage::event_settings(state)?;
        crate::failover::events::send_end(storage.queue.as_ref(), &settings, &run, now).await;
    }
    Ok(InvocationResponse::http(HttpOutput::json(200, &run)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approve(body: &str) -> Result<Decision, HandlerError> {
        let req =
            HttpRequest::new("POST", "http://localhost/api/failover/r1/approve").with_body(body);
        decode_decision(
            &req,
            &RunAction::Approve {
                run_id: "r1".into(),
            },
        )
    }

    #[test]
    fn an_approve_or_cancel_body_carries_the_reason_and_may_be_empty() {
        assert_eq!(
            approve(r#"{"reason":"bridge call agreed"}"#)
                .expect("decodes")
                .reason
                .as_deref(),
            Some("bridge call agreed")
        );
        assert_eq!(approve("").expect("empty body").reason, None);
        assert_eq!(approve("{}").expect("no reason").reason, None);
    }

    #[test]
    fn an_approve_body_with_another_field_is_refused_naming_it() {
        let err = approve(r#"{"why":"x"}"#).expect_err("unknown field");
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        assert!(text.contains("why"), "{text}");
    }
}
