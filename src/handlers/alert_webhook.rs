//! `AlertWebhook` (HTTP `POST api/alerts`): Azure Monitor common-alert-schema webhook; decides
//! and enqueues, never works inline.
//!
//! One domain call, `failover::start::ingest_alert` (parse → decide → dedup → start or record),
//! then the answer: 202 with the run ids for a start (also for a duplicate: the action group's
//! retry must not see an error), 200 for an ignored alert with the reason, 200 for a recorded
//! recovery, 403 for a source outside `[alerts].allowed_sources` (logged), 400 for a body that
//! is not an alert, and 503 when storage fails — action groups retry 408/429/503/504, not 500.
//!
//! Before anything is read from the body, the caller is authenticated (issue 15): with
//! `[alerts].require_authenticated` (the default) the secure-webhook bearer token in the
//! `Authorization` header must verify (`failover::alert_auth`); otherwise the answer is 401,
//! nothing is ingested, and ONE warning names why with the token's unverified iss/aud/appid
//! (never the token). The function key checked by the host stays a second factor. The offline
//! `drill` ingests its alert directly and is not affected.

use serde_json::json;

use crate::failover::alert_auth;
use crate::failover::start::{AlertAnswer, AlertError, ingest_alert};
use crate::host::{HttpOutput, HttpRequest, InvocationResponse, PayloadError};
use crate::startup::AppState;

use super::HandlerError;
use super::failover_stage::failover_error;

/// Function (folder) name.
pub const NAME: &str = "AlertWebhook";

pub async fn handle(
    state: &AppState,
    req: HttpRequest,
) -> Result<InvocationResponse, HandlerError> {
    let dr = state.dr()?;
    let now = time::OffsetDateTime::now_utc();
    if dr.alerts.require_authenticated {
        let verified = alert_auth::verify(
            &dr.alerts.auth,
            &state.alert_keys,
            state.http(),
            req.headers.get("authorization"),
            now,
        )
        .await;
        match verified {
            Ok(caller) => {
                tracing::debug!(caller = %caller.app_id, issuer = %caller.issuer, "alert sender authenticated");
            }
            Err((failure, seen)) => {
                tracing::warn!(
                    event = "alert.unauthenticated",
                    reason = failure.code(),
                    detail = %failure.message(),
                    iss = seen.iss.as_deref().unwrap_or("-"),
                    aud = seen.aud.as_deref().unwrap_or("-"),
                    appid = seen.appid.as_deref().unwrap_or("-"),
                    "alert rejected: {}",
                    failure.code()
                );
                let value = json!({
                    "error": failure.message(),
                    "code": failure.code(),
                    "decision": "unauthenticated",
                });
                return Ok(InvocationResponse::http(HttpOutput::json(401, &value)?));
            }
        }
    }
    let body = req.body_bytes()?.unwrap_or_default();
    if body.is_empty() {
        return Err(PayloadError::missing("body").into());
    }
    let storage = state.storage().await?;
    let answer = match ingest_alert(
        storage.blobs.as_ref(),
        storage.queue.as_ref(),
        dr,
        &body,
        now,
    )
    .await
    {
        Ok(a) => a,
        Err(AlertError::Parse(e)) => {
            let field = if e.field().is_empty() {
                "body".to_owned()
            } else {
                format!("body.{}", e.field())
            };
            return Err(PayloadError::invalid(field, e.to_string()).into());
        }
        Err(AlertError::Failover(e)) => {
            // Storage trouble: 503 so the action group retries (never 500).
            return Err(match failover_error("handle the alert", e) {
                HandlerError::Permanent { operation, source } => {
                    HandlerError::Transient { operation, source }
                }
                other => other,
            });
        }
    };
    let (status, value) = match &answer {
        AlertAnswer::Refused { reason } => (403, json!({"error": reason, "decision": "refused"})),
        AlertAnswer::Ignored { .. } | AlertAnswer::Recorded { .. } => {
            (200, serde_json::to_value(&answer).unwrap_or_default())
        }
        AlertAnswer::Accepted { .. } => (202, serde_json::to_value(&answer).unwrap_or_default()),
    };
    Ok(InvocationResponse::http(HttpOutput::json(status, &value)?))
}
