//! `ResetPairState` (HTTP `POST api/failover/pairs/{pair}/reset`, body `{"reason": "..."}`):
//! the operator clears a pair's state (`pairs/{pair}.json`) back to `normal`, primary serving —
//! after a failover or failback run failed part-way and the operator has put things right. The
//! reset is audited on the pair state (who: the caller; why: `reason`).
//!
//! Answers: 200 with the pair state; 400 without a `reason` (or with any other key); 404 for a
//! pair that is not configured; 409 while a run of the pair is active.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::failover::start;
use crate::host::{HttpOutput, HttpRequest, InvocationResponse, PayloadError};
use crate::startup::AppState;

use super::HandlerError;
use super::failover_stage::failover_error;
use super::start_failover::caller_of;

/// Function (folder) name.
pub const NAME: &str = "ResetPairState";

/// The request body: `{"reason": "..."}`.
#[derive(Debug, Default, Deserialize)]
struct ResetBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// The pair (route) and the reason (body).
pub fn decode(req: &HttpRequest) -> Result<(String, String), HandlerError> {
    let pair = req
        .param("pair")
        .ok_or_else(|| PayloadError::missing("params.pair"))?
        .trim()
        .to_owned();
    if pair.is_empty() {
        return Err(PayloadError::missing("params.pair").into());
    }
    let body: ResetBody = req.json_body_or_default()?;
    if let Some(key) = body.unknown.keys().next() {
        return Err(PayloadError::invalid(
            format!("body.{key}"),
            "unknown key (the body accepts only `reason`)",
        )
        .into());
    }
    let reason = body.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(PayloadError::invalid(
            "body.reason",
            "say why the pair state is cleared (it is recorded on the pair state)",
        )
        .into());
    }
    Ok((pair, reason))
}

pub async fn handle(
    state: &AppState,
    req: HttpRequest,
) -> Result<InvocationResponse, HandlerError> {
    let (pair, reason) = decode(&req)?;
    let dr = state.dr()?;
    if dr.pair(&pair).is_none() {
        return Err(HandlerError::NotFound {
            what: format!("pair `{pair}`"),
        });
    }
    let storage = state.storage().await?;
    let now = time::OffsetDateTime::now_utc();
    let who = caller_of(&req);
    let s = start::reset_pair_state(storage.blobs.as_ref(), &pair, &who, &reason, now)
        .await
        .map_err(|e| failover_error("reset the pair state", e))?;
    tracing::info!(event = "pair.reset", pair = %pair, by = %who, reason = %reason, "pair state reset to normal");
    Ok(InvocationResponse::http(HttpOutput::json(200, &s)?))
}
