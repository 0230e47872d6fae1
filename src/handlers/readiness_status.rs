//! `ReadinessStatus` (HTTP `GET api/readiness/{pair?}`): latest readiness report(s) as JSON, or
//! the HTML status page for `Accept: text/html`.
//!
//! Loads the latest stored reports (`history::load_latest` / `load_all_latest`) from the app's
//! storage and answers through the pure `readiness::api::respond`: all pairs
//! (`{generatedAt, overall, pairs, unchecked}`), one pair's report, or a 404 problem for a pair
//! that is not configured or was never checked. Each report carries the pair state and active
//! runs read at request time (`pairState`, `activeRuns`; `stateChangedSinceCheck` when the phase
//! is not the one the stored check answered for). Storage failures are the host-level error
//! mapping's business (503 for transient ones).

use time::OffsetDateTime;

use crate::host::{HttpOutput, HttpRequest, InvocationResponse};
use crate::readiness::{api, history};
use crate::startup::AppState;

use super::HandlerError;
use super::check_readiness::{readiness_context, readiness_error};
use crate::pair_state::Phase;

/// Function (folder) name.
pub const NAME: &str = "ReadinessStatus";

pub async fn handle(
    state: &AppState,
    req: HttpRequest,
) -> Result<InvocationResponse, HandlerError> {
    let dr = state.dr()?;
    let configured: Vec<String> = dr.pairs.iter().map(|p| p.name.clone()).collect();
    let pair = req.param("pair").filter(|p| !p.is_empty());
    let storage = state.storage().await?;
    let blobs = storage.blobs.as_ref();
    let reports = match pair {
        // Only configured pairs reach storage (any other name is a 404 from `respond`).
        Some(name) if configured.iter().any(|c| c == name) => history::load_latest(blobs, name)
            .await
            .map_err(|e| readiness_error(format!("load the report of pair {name}"), e))?
            .into_iter()
            .collect(),
        Some(_) => Vec::new(),
        None => history::load_all_latest(blobs, &configured)
            .await
            .map_err(|e| readiness_error("load the readiness reports".to_owned(), e))?,
    };
    // The state and active runs are read now (a run may have started since the check); a state
    // that differs from the one the check answered for is flagged on the report.
    let mut reports = reports;
    for r in &mut reports {
        let (state, runs) = readiness_context(blobs, &r.pair).await?;
        let checked_phase = r.pair_state.as_ref().map(|s| s.phase);
        r.state_changed_since_check = checked_phase.unwrap_or(Phase::Normal) != state.phase;
        r.pair_state = Some(state);
        r.active_runs = runs;
    }
    let answer = api::respond(
        &configured,
        &reports,
        pair,
        req.headers.get("accept"),
        OffsetDateTime::now_utc(),
    );
    let res = HttpOutput::new(answer.status)
        .with_body_text(answer.body)
        .with_header("Content-Type", answer.content_type)
        .with_header("Cache-Control", "no-store")
        .with_header("Vary", "Accept");
    Ok(InvocationResponse::http(res))
}
