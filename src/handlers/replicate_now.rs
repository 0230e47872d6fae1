//! `ReplicateNow` (HTTP `POST api/replicate`, body `{pair?, dryRun?, prune?}`): one replicate
//! pass on demand — the same pass as the `ReplicateConfig` timer ([`run_pass`]).
//!
//! Request: every key optional, no other key accepted (a misspelt `dry_run` must not turn a
//! dry run into an apply): `pair` (one configured pair; omitted = every pair), `dryRun` (plan
//! only, write nothing), `prune` (also delete extra secondary items, like the CLI's `--prune`;
//! a pair with `prune = "delete"` prunes anyway). An empty or absent body means `{}`; `null`
//! values mean "omitted".
//!
//! Answers (documented in docs/openapi.yaml):
//! - 200 with the plan for `dryRun` — the `datashare-dr plan --json` document
//!   (`summary: {create, update, delete, findings}`, `changes`, `findings`, `pairs`) — or with
//!   the apply result — the `datashare-dr replicate --json` document (`summary` with outcome
//!   counts, `complete`, `results`, `changes`, `findings`, `pairs`). Both gain `dryRun`,
//!   `status` (`succeeded` | `partial` | `failed`, see [`PassStatus`]) and, when a pair could
//!   not be observed, `errors: [{pair, error}]`. A partly failed pass is still 200: the body
//!   says what was done and what was not;
//! - 400 naming the field (`body.dryRun`, `body.pair`, an unknown `body.<key>`), 413 too large;
//! - 404 for a `pair` that is not configured;
//! - 503 when no selected pair could be observed and the cause is transient (ARM throttling,
//!   5xx, a regional outage): nothing was done, retrying may help;
//! - **202** `{jobId, statusUrl, status, pairs}` (and `Location`) when the pass could not finish
//!   within its budget (`startup::ReplicateBudgets::http`, at most 180 s, so the call answers
//!   well within the front end's ~230 s): the pairs done so far are recorded on the job
//!   `replicate-jobs/{jobId}.json`, every other pair goes on in the background through queue
//!   `replicate-pairs` (`ReplicatePair`), see [`crate::reconcile::job`].
//!
//! `GET api/replicate/{jobId}` answers the job record (200, `ReplicateJob` in the OpenAPI
//! document; `status` `running` until every pair has an outcome), 404 for an unknown job, 400
//! for a malformed id. `GET api/replicate` (no id) and `POST api/replicate/{jobId}` are 400.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::config::dr::Pair;
use crate::host::{HttpOutput, HttpRequest, InvocationResponse, PayloadError};
use crate::reconcile::guard::check_prune;
use crate::reconcile::job::{self, JobStatus, PAIRS_QUEUE, PairMessage, ReplicateJob};
use crate::reconcile::render::{PairPlan, PlanOutput};
use crate::reconcile::report::ReplicateReport;
use crate::startup::AppState;

use super::HandlerError;
use super::replicate_config::{Pass, PassStatus, job_pair, run_pass, status_of};

/// Function (folder) name.
pub const NAME: &str = "ReplicateNow";

/// The request body (JSON keys exactly `pair`, `dryRun`, `prune`; all optional).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicateRequest {
    #[serde(default)]
    pub pair: Option<String>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(default)]
    pub prune: Option<bool>,
    /// Any other key (refused with 400 naming it).
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

impl ReplicateRequest {
    pub fn dry_run(&self) -> bool {
        self.dry_run.unwrap_or(false)
    }
    pub fn prune(&self) -> bool {
        self.prune.unwrap_or(false)
    }
}

/// Decodes and checks the body: known keys only, a non-empty `pair` when given.
pub fn decode(req: &HttpRequest) -> Result<ReplicateRequest, HandlerError> {
    let body: ReplicateRequest = req.json_body_or_default()?;
    if let Some(key) = body.unknown.keys().next() {
        return Err(PayloadError::invalid(
            format!("body.{key}"),
            "unknown key (the body accepts only `pair`, `dryRun` and `prune`)",
        )
        .into());
    }
    if let Some(pair) = &body.pair
        && pair.trim().is_empty()
    {
        return Err(PayloadError::invalid(
            "body.pair",
            "must not be empty (omit it to replicate every pair)",
        )
        .into());
    }
    Ok(body)
}

/// A pair that could not be observed.
#[derive(Debug, Serialize)]
struct PairError<'a> {
    pair: &'a str,
    error: &'a str,
}

/// The answer: the CLI's JSON document plus `dryRun`, `status` and `errors`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a, T: Serialize> {
    dry_run: bool,
    status: PassStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<PairError<'a>>,
    #[serde(flatten)]
    document: T,
}

fn errors_of(report: &ReplicateReport) -> Vec<PairError<'_>> {
    report
        .pairs
        .iter()
        .filter_map(|p| {
            p.error.as_deref().map(|error| PairError {
                pair: &p.pair,
                error,
            })
        })
        .collect()
}

/// The `plan --json` pairs of a dry run (observed pairs only; the others are in `errors`).
fn plans_of(report: &ReplicateReport) -> Vec<PairPlan> {
    report
        .pairs
        .iter()
        .filter(|p| p.error.is_none())
        .map(|p| PairPlan {
            pair: p.pair.clone(),
            primary: p.primary.clone(),
            secondary: p.secondary.clone(),
            secondary_exists: p.secondary_exists,
            plan: p.plan.clone(),
            paused: p.paused,
            state: p.state.clone(),
            reason: p.reason.clone(),
        })
        .collect()
}

/// Renders the 200 body for `report`.
pub fn render(report: &ReplicateReport, dry_run: bool) -> Result<HttpOutput, HandlerError> {
    let status = status_of(report);
    let errors = errors_of(report);
    let res = if dry_run {
        let plans = plans_of(report);
        HttpOutput::json(
            200,
            &Answer {
                dry_run,
                status,
                errors,
                document: PlanOutput { pairs: &plans },
            },
        )?
    } else {
        HttpOutput::json(
            200,
            &Answer {
                dry_run,
                status,
                errors,
                document: report,
            },
        )?
    };
    Ok(res.with_header("Cache-Control", "no-store"))
}

/// `{origin}/api/replicate/{jobId}` from the request URL.
pub fn status_url(req: &HttpRequest, job_id: &str) -> String {
    let base = req.url.split('?').next().unwrap_or_default();
    let origin = match base.find("/api/") {
        Some(i) => &base[..i],
        None => base.trim_end_matches('/'),
    };
    format!("{origin}/api/replicate/{job_id}")
}

/// What the method and route ask for: `Some(jobId)` = read a job, `None` = run a pass.
pub fn decode_route(req: &HttpRequest) -> Result<Option<String>, HandlerError> {
    match (req.method.to_ascii_uppercase().as_str(), req.param("jobId")) {
        ("POST", None) => Ok(None),
        ("GET", Some(id)) if job::is_job_id(id) => Ok(Some(id.to_owned())),
        ("GET", Some(_)) => Err(PayloadError::invalid(
            "params.jobId",
            "expected a job id (the `jobId` a 202 answer of POST api/replicate gave)",
        )
        .into()),
        ("GET", None) => Err(PayloadError::missing("params.jobId").into()),
        ("POST", Some(_)) => Err(PayloadError::invalid(
            "params.jobId",
            "POST api/replicate starts a pass and takes no job id; read a job with GET api/replicate/{jobId}",
        )
        .into()),
        (m, _) => Err(PayloadError::invalid(
            "method",
            format!("`{m}` is not supported (POST to run a pass, GET for a job)"),
        )
        .into()),
    }
}

/// `GET api/replicate/{jobId}`: the job record.
async fn job_status(state: &AppState, job_id: &str) -> Result<InvocationResponse, HandlerError> {
    let storage = state.storage().await?;
    let job = job::load(storage.blobs.as_ref(), job_id)
        .await
        .map_err(|e| HandlerError::transient(format!("read replicate job {job_id}"), e))?
        .ok_or_else(|| HandlerError::NotFound {
            what: format!("replicate job {job_id}"),
        })?;
    Ok(InvocationResponse::http(
        HttpOutput::json(200, &job)?.with_header("Cache-Control", "no-store"),
    ))
}

/// The pass ran out of its budget: record what was done on a new job, queue every other pair
/// on `replicate-pairs`, answer 202 with the status URL.
async fn continue_as_job(
    state: &AppState,
    req: &HttpRequest,
    body: &ReplicateRequest,
    pass: &Pass,
) -> Result<InvocationResponse, HandlerError> {
    let storage = state.storage().await?;
    let now = time::OffsetDateTime::now_utc();
    let mut record = ReplicateJob {
        job_id: job::new_job_id(),
        status: JobStatus::Running,
        dry_run: body.dry_run(),
        prune: body.prune(),
        trigger: NAME.to_owned(),
        created_at: now,
        updated_at: now,
        pairs: pass
            .report
            .pairs
            .iter()
            .map(|p| job_pair(p, pass.unfinished.contains(&p.pair), 0))
            .collect(),
    };
    record.settle();
    job::create(storage.blobs.as_ref(), &record)
        .await
        .map_err(|e| HandlerError::transient("record the replicate job", e))?;
    for pair in &pass.unfinished {
        let msg = PairMessage {
            job_id: record.job_id.clone(),
            pair: pair.clone(),
            round: 0,
        };
        let text = serde_json::to_string(&msg)
            .map_err(|e| HandlerError::permanent("encode the replicate-pairs message", e))?;
        storage
            .queue
            .send(PAIRS_QUEUE, &text, None)
            .await
            .map_err(|e| {
                HandlerError::transient(format!("queue pair {pair} on {PAIRS_QUEUE}"), e)
            })?;
    }
    tracing::info!(
        event = "replicate.job-started",
        job_id = %record.job_id,
        queued = pass.unfinished.len(),
        budget_secs = state.budgets.http.as_secs(),
        "the pass did not finish within its budget; it goes on in the background"
    );
    let url = status_url(req, &record.job_id);
    let res = HttpOutput::json(
        202,
        &serde_json::json!({
            "jobId": record.job_id,
            "statusUrl": url,
            "status": record.status,
            "pairs": record.pairs,
        }),
    )?
    .with_header("Location", url)
    .with_header("Cache-Control", "no-store");
    Ok(InvocationResponse::http(res).log(format!(
        "{NAME}: budget of {} s reached; job {} continues {} pair(s) through {PAIRS_QUEUE}",
        state.budgets.http.as_secs(),
        record.job_id,
        pass.unfinished.len()
    )))
}

pub async fn handle(
    state: &AppState,
    req: HttpRequest,
) -> Result<InvocationResponse, HandlerError> {
    if let Some(job_id) = decode_route(&req)? {
        return job_status(state, &job_id).await;
    }
    let body = decode(&req)?;
    let dr = state.dr()?;
    let pairs: Vec<&Pair> = match body.pair.as_deref() {
        Some(name) => match dr.pair(name) {
            Some(p) => vec![p],
            None => {
                let known: Vec<&str> = dr.pairs.iter().map(|p| p.name.as_str()).collect();
                return Err(HandlerError::NotFound {
                    what: format!(
                        "pair `{name}` (configured pairs: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
            }
        },
        None => dr.pairs.iter().collect(),
    };
    // The pair's prune policy is a ceiling: a prune request that would write on a `report`
    // pair is refused before anything is read or written.
    if !body.dry_run() && body.prune() {
        let refused: Vec<String> = pairs
            .iter()
            .filter_map(|p| check_prune(p, true).err())
            .map(|e| e.to_string())
            .collect();
        if !refused.is_empty() {
            return Err(HandlerError::Conflict {
                detail: refused.join("; "),
            });
        }
    }
    let client = state.arm().await?;
    let storage = state.storage().await?;
    let pass = run_pass(
        client,
        Some(storage.blobs.as_ref()),
        &pairs,
        body.dry_run(),
        body.prune(),
        dr.arm.max_concurrency,
        NAME,
        Some(tokio::time::Instant::now() + state.budgets.http),
    )
    .await;
    if !pass.unfinished.is_empty() {
        let roster_lines = super::replicate_config::record_rosters(state, &pass).await;
        let mut response = continue_as_job(state, &req, &body, &pass).await?;
        for line in roster_lines {
            response = response.log(line);
        }
        return Ok(response);
    }
    // The one pair named is paused (not `normal`): 409 naming its state.
    if body.pair.is_some()
        && let [p] = pass.report.pairs.as_slice()
        && p.paused
    {
        return Err(HandlerError::Conflict {
            detail: p
                .reason
                .clone()
                .unwrap_or_else(|| format!("pair {}: replication paused", p.pair)),
        });
    }
    // Consumer rosters for failovers with the primary down (dry runs record nothing).
    let roster_lines = super::replicate_config::record_rosters(state, &pass).await;
    let nothing_observed = pass.report.pairs.iter().all(|p| p.error.is_some());
    if nothing_observed && let Some((pair, error)) = pass.transient.into_iter().next() {
        return Err(HandlerError::transient(
            format!("observe pair {pair}"),
            error,
        ));
    }
    let mut response = InvocationResponse::http(render(&pass.report, body.dry_run())?);
    for line in roster_lines {
        response = response.log(line);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::report::PairReport;

    fn req(body: &str) -> HttpRequest {
        HttpRequest::new("POST", "http://localhost/api/replicate").with_body(body.to_owned())
    }

    fn bad(body: &str) -> (u16, String, String) {
        match decode(&req(body)) {
            Err(HandlerError::BadRequest { source }) => (
                source.status(),
                source.path().to_owned(),
                source.to_string(),
            ),
            other => panic!("expected a bad request for {body}, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_or_absent_body_means_every_pair_applied_without_pruning() {
        for body in ["", "  ", "{}"] {
            let r = decode(&req(body)).expect("decodes");
            assert_eq!(r.pair, None);
            assert!(!r.dry_run() && !r.prune());
        }
        let none = HttpRequest::new("POST", "http://localhost/api/replicate");
        assert_eq!(decode(&none).expect("decodes"), ReplicateRequest::default());
    }

    #[test]
    fn the_three_keys_decode_and_null_means_omitted() {
        let r = decode(&req(r#"{"pair":"p1","dryRun":true,"prune":true}"#)).expect("decodes");
        assert_eq!(r.pair.as_deref(), Some("p1"));
        assert!(r.dry_run() && r.prune());
        let r = decode(&req(r#"{"pair":null,"dryRun":null}"#)).expect("decodes");
        assert_eq!(r.pair, None);
        assert!(!r.dry_run());
    }

    #[test]
    fn a_wrong_type_is_refused_naming_the_field() {
        let (status, path, text) = bad(r#"{"dryRun":"yes"}"#);
        assert_eq!((status, path.as_str()), (400, "body.dryRun"), "{text}");
        let (_, path, _) = bad(r#"{"prune":1}"#);
        assert_eq!(path, "body.prune");
        let (_, path, _) = bad(r#"{"pair":42}"#);
        assert_eq!(path, "body.pair");
    }

    #[test]
    fn a_misspelt_key_is_refused_rather_than_ignored() {
        let (status, path, text) = bad(r#"{"dry_run":true}"#);
        assert_eq!((status, path.as_str()), (400, "body.dry_run"));
        assert!(text.contains("dryRun"), "{text}");
    }

    #[test]
    fn an_empty_pair_bad_json_and_a_non_object_are_refused() {
        assert_eq!(bad(r#"{"pair":"  "}"#).1, "body.pair");
        assert_eq!(bad("{").1, "body");
        assert_eq!(bad("[]").1, "body");
    }

    fn pair_report(name: &str, error: Option<&str>) -> PairReport {
        PairReport {
            pair: name.to_owned(),
            primary: "/subscriptions/s/resourceGroups/r/providers/Microsoft.DataShare/accounts/p"
                .into(),
            secondary: "/subscriptions/s/resourceGroups/r/providers/Microsoft.DataShare/accounts/q"
                .into(),
            dry_run: true,
            secondary_exists: true,
            error: error.map(str::to_owned),
            plan: Default::default(),
            results: Vec::new(),
            arm_calls: None,
            paused: false,
            state: None,
            reason: None,
            deletes_held: 0,
        }
    }

    fn json_of(res: &HttpOutput) -> serde_json::Value {
        serde_json::from_str(&res.body_text().expect("a body")).expect("JSON")
    }

    #[test]
    fn a_dry_run_answers_the_plan_document_with_status() {
        let report = ReplicateReport {
            pairs: vec![pair_report("a", None)],
        };
        let res = render(&report, true).expect("renders");
        assert_eq!(res.status(), 200);
        let v = json_of(&res);
        assert_eq!(v["dryRun"], true);
        assert_eq!(v["status"], "succeeded");
        for key in ["create", "update", "delete", "findings"] {
            assert_eq!(v["summary"][key], 0, "{key}: {v}");
        }
        assert_eq!(v["changes"], serde_json::json!([]));
        assert_eq!(v["pairs"][0]["pair"], "a");
        assert!(v.get("errors").is_none());
    }

    #[test]
    fn an_unobserved_pair_is_listed_in_errors_and_marks_the_pass_partial() {
        let report = ReplicateReport {
            pairs: vec![
                pair_report("a", None),
                pair_report("b", Some("primary down")),
            ],
        };
        let v = json_of(&render(&report, false).expect("renders"));
        assert_eq!(v["dryRun"], false);
        assert_eq!(v["status"], "partial");
        assert_eq!(v["complete"], false);
        assert_eq!(v["errors"][0]["pair"], "b");
        assert_eq!(v["errors"][0]["error"], "primary down");
        assert_eq!(v["summary"]["pairsFailed"], 1);
    }
}
