//! `StartFailover` (HTTP `POST api/failover`, body `{pair, mode, dryRun?, force?, reason}`):
//! start a failover / drill / failback run (202 `{runId, statusUrl}`, 409 with the active run's
//! id when one is active; `dryRun` answers 200 with the stage plan and writes nothing).
//!
//! Decodes and validates the typed body (400 naming the field, 413 over the size limit), then
//! one domain call: `failover::start::start_run` (lock, run record, `preflight` message) or
//! `failover::start::dry_run_plan`.

use serde::Deserialize;
use serde_json::json;

use crate::failover::Mode;
use crate::failover::run::StartError;
use crate::failover::start::{StartRequest, dry_run_plan, start_run};
use crate::host::{HttpOutput, HttpRequest, InvocationResponse};
use crate::startup::AppState;

use super::HandlerError;
use super::failover_stage::failover_error;

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

impl From<RunMode> for Mode {
    fn from(m: RunMode) -> Mode {
        match m {
            RunMode::Failover => Mode::Failover,
            RunMode::Drill => Mode::Drill,
            RunMode::Failback => Mode::Failback,
        }
    }
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

/// `{origin}/api/failover/{runId}` from the request URL.
pub fn status_url(req: &HttpRequest, run_id: &str) -> String {
    let base = req.url.split('?').next().unwrap_or_default();
    let origin = match base.find("/api/") {
        Some(i) => &base[..i],
        None => base.trim_end_matches('/'),
    };
    format!("{origin}/api/failover/{run_id}")
}

/// Who called, for the audit trail: the identity the host authenticated (`Identities`: the
/// Easy Auth principal, else the function key's name), never a header the client sets.
pub fn caller_of(req: &HttpRequest) -> String {
    req.caller().audit_name()
}

pub async fn handle(
    state: &AppState,
    req: HttpRequest,
) -> Result<InvocationResponse, HandlerError> {
    let body = decode(&req)?;
    let dr = state.dr()?;
    let mode = Mode::from(body.mode);
    if body.dry_run {
        let mut plan = dry_run_plan(dr, &body.pair, mode).map_err(|e| failover_error("plan", e))?;
        // Read-only: the reverse change plan (failback) or readiness and invitees (failover).
        let client = state.arm().await?;
        let storage = state.storage().await?;
        plan.preview = Some(
            crate::failover::preview::preview(
                client,
                Some(storage.blobs.as_ref()),
                dr,
                &body.pair,
                mode,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .map_err(|e| failover_error("preview the run", e))?,
        );
        return Ok(InvocationResponse::http(HttpOutput::json(200, &plan)?));
    }
    let storage = state.storage().await?;
    let request = StartRequest {
        pair: body.pair.clone(),
        mode,
        force: body.force,
        reason: body.reason.clone(),
        caller: caller_of(&req),
    };
    let now = time::OffsetDateTime::now_utc();
    match start_run(
        storage.blobs.as_ref(),
        storage.queue.as_ref(),
        dr,
        &request,
        now,
    )
    .await
    {
        Ok(run) => {
            let url = status_url(&req, &run.run_id);
            let res = HttpOutput::json(202, &json!({"runId": run.run_id, "statusUrl": url}))?
                .with_header("Location", url);
            Ok(InvocationResponse::http(res))
        }
        Err(StartError::Active { pair, run_id }) => {
            let url = status_url(&req, &run_id);
            let res = HttpOutput::json(
                409,
                &json!({
                    "error": format!("run {run_id} is already active for pair {pair}"),
                    "activeRunId": run_id,
                    "statusUrl": url,
                }),
            )?;
            Ok(InvocationResponse::http(res))
        }
        Err(StartError::Failed(e)) => Err(failover_error("start the run", e)),
    }
}
