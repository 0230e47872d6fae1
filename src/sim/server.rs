//! HTTP side of the simulator: one axum fallback handler that plays ARM in front of the state.
//!
//! Per request, in this order: control API (`/_sim/...`, no auth) → injected latency (async
//! sleep) → bearer auth (401 `AuthenticationFailed` / `InvalidAuthenticationToken`) →
//! api-version (400 `MissingApiVersionParameter` / `NoRegisteredProviderFound`) → subscription
//! ownership (403 `AuthorizationFailed`) → token-bucket throttling (429 `TooManyRequests` +
//! `Retry-After`) → injected faults (429 / 500 `InternalServerError` / 503 `ServiceUnavailable`) →
//! regional outage (503 `ServiceUnavailable`) → body parse + spec validation (400
//! `InvalidRequestContent`, `target` = property path) → the operation.
//! Every answer carries `x-ms-request-id`, `x-ms-correlation-request-id` (echoed or generated),
//! `x-ms-client-request-id` (echoed only with `x-ms-return-client-request-id: true`) and the
//! `x-ms-ratelimit-remaining-{subscription|tenant}-{reads|writes|deletes}` header of its
//! operation type.
//!
//! Control API (loopback only, no token):
//! - `POST /_sim/regions/{region}/down`, `POST /_sim/regions/{region}/up`, `GET /_sim/regions`
//! - `GET /_sim/stats`; `POST /_sim/reset` (counters, request log, buckets);
//!   `POST /_sim/reset?state=true` (also every resource)
//! - `GET /_sim/requests?since=SEQ&limit=N` (ring buffer, oldest first)
//! - `GET /_sim/faults`, `POST /_sim/faults` with a partial [`FaultSettings`] JSON (latency,
//!   429/5xx probabilities, spikes, LRO delay, page size, throttling, and `fail_operations`:
//!   operationIds that fail every time with a given status, e.g. `{"Accounts_Get": 503}`; and
//!   `drop_after_apply`: operationIds whose next N successful calls are applied and then
//!   answered by closing the connection without a response, e.g. `{"Invitations_Create": 1}`
//!   — the lost-response case: the write happened, the client sees a transport error. Such a
//!   call is logged with outcome `dropped` and counted as served plus `dropped`; and what the
//!   recordings cannot show, all off by default: `store_data_roles` (a data set PUT needs the
//!   account's managed identity to hold a data role on the store, else 403
//!   `AuthorizationFailed`), `share_kind_rules` (`CopyBased` shares take Blob/ADLS/SQL/Synapse
//!   data sets, `InPlace` shares only Kusto ones, else 400 `InvalidDataSetKind`) and
//!   `role_propagation_ms` (a role assignment younger than this does not count yet: 403))
//! - `POST /_sim/triggers/fire` (one snapshot per active trigger), `POST /_sim/history/age?hours=H`
//! - `POST /_sim/populate` with a [`PopulateSpec`] JSON → the [`Estate`]; `GET /_sim/estate`;
//!   `GET /_sim/config` (DR config TOML for the last estate); `GET /_sim/health`

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::populate::{Estate, PopulateSpec};
use super::spec::{self, API_VERSIONS, Mode, Spec, Violation};
use super::state::{ApiError, Ctx, Principal, Reply, State, StoreChecks, norm_region, ts};
use super::throttle::{Admit, OpType, Throttle};
use super::{SimError, SimOptions};

const MAX_BODY: usize = 8 * 1024 * 1024;

/// Current runtime-adjustable behaviour.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Faults {
    pub latency_ms: u64,
    pub fault_429: f64,
    pub fault_5xx: f64,
    pub throttle: bool,
    pub page_size: usize,
    pub lro_delay_ms: u64,
    /// Probability of a latency spike on a request, and its extra milliseconds.
    pub spike_p: f64,
    pub spike_ms: u64,
    /// `Retry-After` seconds on injected 429s.
    pub fault_retry_after_secs: u64,
    /// Operations (spec `operationId`, case-insensitive) that always fail with the given status
    /// (408, 429 or 5xx: an injected transient fault; other 4xx: `AuthorizationFailed`-style
    /// refusal), e.g. `{"ProviderShareSubscriptions_ListByShare": 503}`. A key
    /// `Operation@account` fails the operation only on the Data Share account of that name
    /// (e.g. the primary's reads, not the secondary's).
    #[serde(default)]
    pub fail_operations: BTreeMap<String, u16>,
    /// Operations (spec `operationId`, case-insensitive) whose next N calls that the operation
    /// answers with a 2xx are applied (state changed, counted as served) and then answered by
    /// closing the connection without sending a response: a write whose response is lost. Each
    /// such call uses up one of N; at 0 the entry is removed. A call the operation refuses
    /// (4xx/5xx, nothing applied) and an injected fault use up nothing.
    #[serde(default)]
    pub drop_after_apply: BTreeMap<String, u32>,
    /// See [`SimOptions::store_data_roles`].
    #[serde(default)]
    pub store_data_roles: bool,
    /// See [`SimOptions::share_kind_rules`].
    #[serde(default)]
    pub share_kind_rules: bool,
    /// See [`SimOptions::role_propagation_ms`].
    #[serde(default)]
    pub role_propagation_ms: u64,
    /// `SynchronizationSettings_Create` answers 201 with `Azure-AsyncOperation` / `Location`
    /// and the setting `Creating` until `lro_delay_ms` has passed (the spec has it synchronous;
    /// the client waits for an LRO-style answer), so callers' handling of a long-running
    /// schedule creation can be tested.
    #[serde(default)]
    pub long_running_settings: bool,
}

/// Partial update of [`Faults`] (`POST /_sim/faults`); absent fields are unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    pub latency_ms: Option<u64>,
    pub fault_429: Option<f64>,
    pub fault_5xx: Option<f64>,
    pub throttle: Option<bool>,
    pub page_size: Option<usize>,
    pub lro_delay_ms: Option<u64>,
    pub spike_p: Option<f64>,
    pub spike_ms: Option<u64>,
    pub fault_retry_after_secs: Option<u64>,
    /// Replaces [`Faults::fail_operations`] (an empty map clears it).
    pub fail_operations: Option<BTreeMap<String, u16>>,
    /// Replaces [`Faults::drop_after_apply`] (an empty map clears it; a count of 0 is ignored).
    pub drop_after_apply: Option<BTreeMap<String, u32>>,
    pub store_data_roles: Option<bool>,
    pub share_kind_rules: Option<bool>,
    pub role_propagation_ms: Option<u64>,
    pub long_running_settings: Option<bool>,
    /// Re-seed the fault generator.
    pub seed: Option<u64>,
}

/// Per-operation counters (key = spec operationId, or e.g. `StorageAccounts_Get`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OpStats {
    /// Requests that reached the operation (any status).
    pub calls: u64,
    /// Of those, answered with a 4xx/5xx by the operation itself.
    pub errors: u64,
    pub throttled: u64,
    pub faulted: u64,
    pub region_down: u64,
}

/// Counters since the last reset. `reads`/`writes`/`deletes` count requests that reached an
/// operation (not throttled, faulted, refused by auth/api-version or failed by an outage).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SimStats {
    pub total: u64,
    pub reads: u64,
    pub writes: u64,
    pub deletes: u64,
    /// Requests that reached an operation able to change state, any status: every PUT, PATCH
    /// and DELETE, and every POST action except the read-only `list…` ones (which ARM
    /// throttles, and `writes` counts, as writes). "Wrote nothing" means this did not move.
    #[serde(default)]
    pub mutations: u64,
    pub throttled: u64,
    pub faults_429: u64,
    pub faults_5xx: u64,
    pub region_down: u64,
    pub rejected: u64,
    /// Calls applied whose response was then dropped ([`Faults::drop_after_apply`]); also
    /// counted in `reads`/`writes`/`deletes` and the operation's `calls`.
    #[serde(default)]
    pub dropped: u64,
    pub operations: BTreeMap<String, OpStats>,
}

/// One entry of the request log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestLogEntry {
    pub seq: u64,
    pub at: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub operation: String,
    pub status: u16,
    /// served | dropped (served, then the connection closed without a response) | throttled |
    /// fault_429 | fault_5xx | fault_4xx | region_down | rejected
    pub outcome: String,
    pub principal: String,
    pub correlation_id: String,
    pub client_request_id: Option<String>,
    pub request_id: String,
    pub elapsed_ms: f64,
}

struct Runtime {
    faults: Faults,
    stats: SimStats,
    log: VecDeque<RequestLogEntry>,
    log_cap: usize,
    throttle: Throttle,
    rng: StdRng,
    seed: u64,
    estate: Option<Estate>,
}

pub(crate) struct Shared {
    spec: &'static Spec,
    state: Mutex<State>,
    rt: Mutex<Runtime>,
    seq: AtomicU64,
    base_url: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running simulator. Dropping it stops the server (like [`SimHandle::shutdown`], without
/// waiting).
pub struct SimHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base_url: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Start a simulator on `opts.listen` (loopback only).
pub async fn spawn(opts: SimOptions) -> Result<SimHandle, SimError> {
    if !opts.listen.ip().is_loopback() {
        return Err(SimError::RefuseNonLoopback { addr: opts.listen });
    }
    let spec = spec::spec().map_err(SimError::LoadSpec)?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| SimError::BindListener {
            addr: opts.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SimError::BindListener {
            addr: opts.listen,
            source,
        })?;
    let base_url = format!("http://{addr}");
    let shared = Arc::new(Shared {
        spec,
        state: Mutex::new(State::new(opts.seed)),
        rt: Mutex::new(Runtime {
            faults: Faults {
                latency_ms: opts.latency_ms,
                fault_429: opts.fault_429,
                fault_5xx: opts.fault_5xx,
                throttle: opts.throttle,
                page_size: opts.page_size.max(1),
                lro_delay_ms: opts.lro_delay_ms,
                spike_p: 0.0,
                spike_ms: 0,
                fault_retry_after_secs: 1,
                fail_operations: BTreeMap::new(),
                drop_after_apply: BTreeMap::new(),
                store_data_roles: opts.store_data_roles,
                share_kind_rules: opts.share_kind_rules,
                role_propagation_ms: opts.role_propagation_ms,
                long_running_settings: false,
            },
            stats: SimStats::default(),
            log: VecDeque::new(),
            log_cap: opts.log_capacity.max(1),
            throttle: Throttle::default(),
            rng: StdRng::seed_from_u64(opts.seed ^ 0x5eed_fa17),
            seed: opts.seed,
            estate: None,
        }),
        seq: AtomicU64::new(0),
        base_url: base_url.clone(),
    });
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(SimHandle {
        base_url,
        addr,
        shared,
        stop: Some(tx),
        task: Some(task),
    })
}

impl SimHandle {
    /// Stop serving and wait for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    /// The admin bearer token (`sim`).
    pub fn admin_token(&self) -> &'static str {
        "sim"
    }

    /// Take a region down: every call for resources in it fails with 503 `ServiceUnavailable`.
    pub fn region_down(&self, region: &str) {
        lock(&self.shared.state).down.insert(norm_region(region));
    }

    pub fn region_up(&self, region: &str) {
        lock(&self.shared.state).down.remove(&norm_region(region));
    }

    pub fn down_regions(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.shared.state).down.iter().cloned().collect();
        v.sort();
        v
    }

    pub fn stats(&self) -> SimStats {
        lock(&self.shared.rt).stats.clone()
    }

    /// Reset counters, the request log and the throttling buckets.
    pub fn reset_counters(&self) {
        reset(&self.shared, false);
    }

    /// Reset counters and drop every resource (a fresh, empty world).
    pub fn reset_state(&self) {
        reset(&self.shared, true);
    }

    pub fn faults(&self) -> Faults {
        lock(&self.shared.rt).faults.clone()
    }

    pub fn set_faults(&self, f: &FaultSettings) {
        apply_faults(&mut lock(&self.shared.rt), f);
    }

    pub fn requests(&self) -> Vec<RequestLogEntry> {
        lock(&self.shared.rt).log.iter().cloned().collect()
    }

    /// Generate a provider estate (see [`PopulateSpec`]); deterministic for the spec's seed.
    pub fn populate(&self, spec: &PopulateSpec) -> Result<Estate, SimError> {
        let estate = {
            let mut st = lock(&self.shared.state);
            super::populate::generate(&mut st, self.shared.spec, spec, &self.base_url)?
        };
        lock(&self.shared.rt).estate = Some(estate.clone());
        Ok(estate)
    }

    /// Run every active trigger once (one successful snapshot each); returns how many ran.
    pub fn fire_triggers(&self) -> usize {
        lock(&self.shared.state).fire_triggers(OffsetDateTime::now_utc())
    }

    /// Move all synchronization history into the past by `by`.
    pub fn age_history(&self, by: Duration) {
        lock(&self.shared.state).age_history(by);
    }

    /// Number of stored resources (all kinds).
    pub fn resource_count(&self) -> usize {
        lock(&self.shared.state).resource_count()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn reset(sh: &Shared, state: bool) {
    let mut rt = lock(&sh.rt);
    rt.stats = SimStats::default();
    rt.log.clear();
    rt.throttle.clear();
    if state {
        let seed = rt.seed;
        rt.estate = None;
        *lock(&sh.state) = State::new(seed);
    }
}

fn apply_faults(rt: &mut Runtime, f: &FaultSettings) {
    let x = &mut rt.faults;
    if let Some(v) = f.latency_ms {
        x.latency_ms = v;
    }
    if let Some(v) = f.fault_429 {
        x.fault_429 = v.clamp(0.0, 1.0);
    }
    if let Some(v) = f.fault_5xx {
        x.fault_5xx = v.clamp(0.0, 1.0);
    }
    if let Some(v) = f.throttle {
        x.throttle = v;
    }
    if let Some(v) = f.page_size {
        x.page_size = v.max(1);
    }
    if let Some(v) = f.lro_delay_ms {
        x.lro_delay_ms = v;
    }
    if let Some(v) = f.spike_p {
        x.spike_p = v.clamp(0.0, 1.0);
    }
    if let Some(v) = f.spike_ms {
        x.spike_ms = v;
    }
    if let Some(v) = f.fault_retry_after_secs {
        x.fault_retry_after_secs = v;
    }
    if let Some(ops) = &f.fail_operations {
        x.fail_operations = ops
            .iter()
            .filter(|(_, s)| (400..=599).contains(*s))
            .map(|(k, s)| (k.to_ascii_lowercase(), *s))
            .collect();
    }
    if let Some(ops) = &f.drop_after_apply {
        x.drop_after_apply = ops
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.to_ascii_lowercase(), *n))
            .collect();
    }
    if let Some(v) = f.store_data_roles {
        x.store_data_roles = v;
    }
    if let Some(v) = f.share_kind_rules {
        x.share_kind_rules = v;
    }
    if let Some(v) = f.role_propagation_ms {
        x.role_propagation_ms = v;
    }
    if let Some(v) = f.long_running_settings {
        x.long_running_settings = v;
    }
    if let Some(s) = f.seed {
        rt.seed = s;
        rt.rng = StdRng::seed_from_u64(s ^ 0x5eed_fa17);
    }
}

fn json_response(status: u16, body: Option<&Value>, headers: &[(String, String)]) -> Response {
    let mut r = match body {
        Some(b) => Response::new(Body::from(serde_json::to_vec(b).unwrap_or_default())),
        None => Response::new(Body::empty()),
    };
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    if body.is_some() {
        h.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    for (k, v) in headers {
        if let (Ok(name), Ok(val)) = (
            axum::http::HeaderName::try_from(k.as_str()),
            HeaderValue::from_str(v),
        ) {
            h.insert(name, val);
        }
    }
    r
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn decode_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// What a request is aimed at, decided before any check that needs the operation's name.
enum Target<'a> {
    DataShare(spec::Matched<'a>),
    Operation {
        sub: String,
        id: String,
        status: bool,
    },
    Arm(String),
    MethodNotAllowed,
    Unknown,
}

fn classify<'a>(sp: &'a Spec, method: &str, segs: &[&str]) -> Target<'a> {
    if let Some(m) = sp.find(method, segs) {
        return Target::DataShare(m);
    }
    // /subscriptions/{s}/providers/Microsoft.DataShare/locations/{loc}/operation{Statuses|Results}/{id}
    if segs.len() == 8
        && segs[0].eq_ignore_ascii_case("subscriptions")
        && segs[2].eq_ignore_ascii_case("providers")
        && segs[3].eq_ignore_ascii_case("Microsoft.DataShare")
        && segs[4].eq_ignore_ascii_case("locations")
        && (segs[6].eq_ignore_ascii_case("operationStatuses")
            || segs[6].eq_ignore_ascii_case("operationResults"))
    {
        if method != "GET" {
            return Target::MethodNotAllowed;
        }
        return Target::Operation {
            sub: segs[1].to_string(),
            id: segs[7].to_string(),
            status: segs[6].eq_ignore_ascii_case("operationStatuses"),
        };
    }
    // Status URLs Azure hands out under the resource (recordings):
    // `.../shareSubscriptions/{n}/synchronizationOperationResults/{id}` (status),
    // `.../shareSubscriptions/{n}/shareSubscriptionSynchronizations/{id}` (result),
    // `.../shares/{n}/operationResults/{id}` (revoke status).
    if segs.len() == 12
        && segs[0].eq_ignore_ascii_case("subscriptions")
        && segs[5].eq_ignore_ascii_case("Microsoft.DataShare")
        && segs[6].eq_ignore_ascii_case("accounts")
    {
        let (coll, what) = (segs[8], segs[10]);
        let status = if coll.eq_ignore_ascii_case("shareSubscriptions")
            && what.eq_ignore_ascii_case("synchronizationOperationResults")
            || coll.eq_ignore_ascii_case("shares") && what.eq_ignore_ascii_case("operationResults")
        {
            Some(true)
        } else if coll.eq_ignore_ascii_case("shareSubscriptions")
            && what.eq_ignore_ascii_case("shareSubscriptionSynchronizations")
        {
            Some(false)
        } else {
            None
        };
        if let Some(status) = status {
            if method != "GET" {
                return Target::MethodNotAllowed;
            }
            return Target::Operation {
                sub: segs[1].to_string(),
                id: segs[11].to_string(),
                status,
            };
        }
    }
    if let Some(name) = super::state::arm_op_name(segs, method) {
        return Target::Arm(name);
    }
    if sp.path_known(segs) {
        return Target::MethodNotAllowed;
    }
    Target::Unknown
}

struct Outcome {
    status: u16,
    body: Option<Value>,
    headers: Vec<(String, String)>,
    operation: String,
    outcome: &'static str,
    principal: String,
}

impl Outcome {
    fn err(e: ApiError, operation: &str, outcome: &'static str, principal: &str) -> Outcome {
        let mut headers = Vec::new();
        if let Some(s) = e.retry_after {
            headers.push(("Retry-After".to_string(), s.to_string()));
        }
        if e.status == 401 {
            headers.push((
                "WWW-Authenticate".into(),
                "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\"".into(),
            ));
        }
        Outcome {
            status: e.status,
            body: Some(e.body()),
            headers,
            operation: operation.into(),
            outcome,
            principal: principal.into(),
        }
    }
}

async fn handle(AxState(sh): AxState<Arc<Shared>>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_ascii_uppercase();
    let raw_path = parts.uri.path().to_string();
    let query_str = parts.uri.query().unwrap_or("").to_string();
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query_str.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let base_url = header(&parts.headers, "host")
        .map(|h| format!("http://{h}"))
        .unwrap_or_else(|| sh.base_url.clone());
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let e = ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("The request body exceeds {MAX_BODY} bytes."),
            );
            return json_response(413, Some(&e.body()), &[]);
        }
    };
    if raw_path == "/_sim" || raw_path.starts_with("/_sim/") {
        return control(&sh, &method, &raw_path, &query, &bytes, &base_url);
    }
    let segs_owned = decode_segments(&raw_path);
    let path = format!("/{}", segs_owned.join("/"));
    let corr = header(&parts.headers, "x-ms-correlation-request-id")
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let client_req = header(&parts.headers, "x-ms-client-request-id");
    let return_client = header(&parts.headers, "x-ms-return-client-request-id")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let request_id = uuid::Uuid::new_v4().to_string();

    // Injected latency (async; never blocks a worker).
    let delay = {
        let mut rt = lock(&sh.rt);
        let f = rt.faults.clone();
        let spike = f.spike_p > 0.0 && rt.rng.random::<f64>() < f.spike_p;
        f.latency_ms + if spike { f.spike_ms } else { 0 }
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }

    let op_type = OpType::from_method(&method);
    let auth = header(&parts.headers, "authorization");
    let (mut out, remaining_header) = process(
        &sh,
        &method,
        &path,
        &query,
        &bytes,
        &base_url,
        auth.as_deref(),
        op_type,
    );

    out.headers
        .push(("x-ms-request-id".into(), request_id.clone()));
    out.headers
        .push(("x-ms-correlation-request-id".into(), corr.clone()));
    if return_client && let Some(c) = &client_req {
        out.headers
            .push(("x-ms-client-request-id".into(), c.clone()));
    }
    if let Some(h) = remaining_header {
        out.headers.push(h);
    }
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    {
        let mut rt = lock(&sh.rt);
        if out.outcome == "served"
            && (200..300).contains(&out.status)
            && take_drop(&mut rt.faults, &out.operation)
        {
            out.outcome = "dropped";
        }
        let stats = &mut rt.stats;
        stats.total += 1;
        let op = stats.operations.entry(out.operation.clone()).or_default();
        match out.outcome {
            "served" | "dropped" => {
                if out.outcome == "dropped" {
                    stats.dropped += 1;
                }
                op.calls += 1;
                if out.status >= 400 {
                    op.errors += 1;
                }
                match op_type {
                    OpType::Read => stats.reads += 1,
                    OpType::Write => stats.writes += 1,
                    OpType::Delete => stats.deletes += 1,
                }
                if is_mutation(&method, &path) {
                    stats.mutations += 1;
                }
            }
            "throttled" => {
                op.throttled += 1;
                stats.throttled += 1;
            }
            "fault_429" => {
                op.faulted += 1;
                stats.faults_429 += 1;
            }
            "fault_5xx" => {
                op.faulted += 1;
                stats.faults_5xx += 1;
            }
            // An injected refusal (403, …): counted like the simulator's own refusals.
            "fault_4xx" => {
                op.faulted += 1;
                stats.rejected += 1;
            }
            "region_down" => {
                op.region_down += 1;
                stats.region_down += 1;
            }
            _ => stats.rejected += 1,
        }
        let seq = sh.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let entry = RequestLogEntry {
            seq,
            at: ts(OffsetDateTime::now_utc()),
            method: method.clone(),
            path: path.clone(),
            query: query_str,
            operation: out.operation.clone(),
            status: out.status,
            outcome: out.outcome.to_string(),
            principal: out.principal.clone(),
            correlation_id: corr,
            client_request_id: client_req,
            request_id,
            elapsed_ms: elapsed,
        };
        if rt.log.len() >= rt.log_cap {
            rt.log.pop_front();
        }
        rt.log.push_back(entry);
    }
    if out.outcome == "dropped" {
        return lost_response();
    }
    json_response(out.status, out.body.as_ref(), &out.headers)
}

/// Whether a request can change state: anything but GET/HEAD and the POST `list…` actions
/// (`listSynchronizations`, `listSourceShareSynchronizationSettings`, …).
fn is_mutation(method: &str, path: &str) -> bool {
    match method {
        "GET" | "HEAD" => false,
        "POST" => !path.rsplit('/').next().is_some_and(|last| {
            last.get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("list"))
        }),
        _ => true,
    }
}

/// Uses up one planned drop of `operation` ([`Faults::drop_after_apply`]); true if one was left.
fn take_drop(f: &mut Faults, operation: &str) -> bool {
    if f.drop_after_apply.is_empty() {
        return false;
    }
    let key = operation.to_ascii_lowercase();
    let Some(n) = f.drop_after_apply.get_mut(&key) else {
        return false;
    };
    *n = n.saturating_sub(1);
    if *n == 0 {
        f.drop_after_apply.remove(&key);
    }
    true
}

/// A response whose body fails before its first byte: hyper then closes the connection without
/// flushing the status line, so the client sees the connection end with no answer (the write
/// already happened).
fn lost_response() -> Response {
    let fail = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "simulator: response dropped after the write was applied (drop_after_apply)",
        ))
    });
    let mut r = Response::new(Body::from_stream(fail));
    r.headers_mut()
        .insert("connection", HeaderValue::from_static("close"));
    r
}

#[allow(clippy::too_many_arguments)]
fn process(
    sh: &Shared,
    method: &str,
    path: &str,
    query: &[(String, String)],
    bytes: &[u8],
    base_url: &str,
    auth: Option<&str>,
    op_type: OpType,
) -> (Outcome, Option<(String, String)>) {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let target = classify(sh.spec, method, &segs);
    let op_name = match &target {
        Target::DataShare(m) => m.route.operation_id.clone(),
        Target::Operation { status: true, .. } => "OperationStatuses_Get".into(),
        Target::Operation { status: false, .. } => "OperationResults_Get".into(),
        Target::Arm(n) => n.clone(),
        Target::MethodNotAllowed | Target::Unknown => "Unknown".into(),
    };
    // 1. Authentication.
    let principal = match auth {
        None => {
            let e = ApiError::new(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            );
            return (Outcome::err(e, &op_name, "rejected", ""), None);
        }
        Some(h) => {
            let token = h
                .strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
                .map(str::trim);
            match token.and_then(Principal::from_token) {
                Some(p) => p,
                None => {
                    let e = ApiError::new(
                        401,
                        "InvalidAuthenticationToken",
                        "The access token is invalid.",
                    );
                    return (Outcome::err(e, &op_name, "rejected", ""), None);
                }
            }
        }
    };
    let who = principal.email.clone();
    // 2. api-version.
    let api_version = query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("api-version"))
        .map(|(_, v)| v.clone());
    let Some(api_version) = api_version.filter(|v| !v.is_empty()) else {
        let e = ApiError::new(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
        return (Outcome::err(e, &op_name, "rejected", &who), None);
    };
    let is_datashare = matches!(target, Target::DataShare(_) | Target::Operation { .. });
    if is_datashare && !API_VERSIONS.contains(&api_version.as_str()) {
        let e = ApiError::new(
            400,
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for API version '{api_version}' of namespace 'Microsoft.DataShare'. The supported api-versions are '{}'.",
                API_VERSIONS.join(", ")
            ),
        );
        return (Outcome::err(e, &op_name, "rejected", &who), None);
    }
    match target {
        Target::Unknown => {
            let e = ApiError::new(
                404,
                "InvalidResourceType",
                format!("The simulator does not serve the resource path '{path}'."),
            );
            return (Outcome::err(e, &op_name, "rejected", &who), None);
        }
        Target::MethodNotAllowed => {
            let e = ApiError::new(
                405,
                "MethodNotAllowed",
                format!("The method '{method}' is not allowed on '{path}'."),
            );
            return (Outcome::err(e, &op_name, "rejected", &who), None);
        }
        _ => {}
    }
    // 3. Subscription ownership.
    if let Err(e) = lock(&sh.state).authorize(&principal, path, method) {
        return (Outcome::err(e, &op_name, "rejected", &who), None);
    }
    // 4. Throttling and injected faults.
    let (scope, scope_kind) = if segs.len() >= 2 && segs[0].eq_ignore_ascii_case("subscriptions") {
        (segs[1].to_string(), "subscription")
    } else {
        (format!("tenant:{}", principal.tenant_id), "tenant")
    };
    let (faults, admit, fault) = {
        let mut rt = lock(&sh.rt);
        let f = rt.faults.clone();
        let admit = rt.throttle.admit(
            &principal.object_id,
            &scope,
            op_type,
            f.throttle,
            Instant::now(),
        );
        let roll: f64 = rt.rng.random();
        // (Empty but in tests that set it: no per-request allocation then.)
        let forced = if f.fail_operations.is_empty() {
            None
        } else {
            let op = op_name.to_ascii_lowercase();
            let account = segs
                .windows(2)
                .find(|w| w[0].eq_ignore_ascii_case("accounts"))
                .map(|w| w[1].to_ascii_lowercase());
            f.fail_operations
                .get(&op)
                .or_else(|| account.and_then(|a| f.fail_operations.get(&format!("{op}@{a}"))))
                .copied()
        };
        let fault = if forced.is_some() {
            forced
        } else if roll < f.fault_429 {
            Some(429)
        } else if roll < f.fault_429 + f.fault_5xx {
            Some(if rt.rng.random::<bool>() { 500 } else { 503 })
        } else {
            None
        };
        (f, admit, fault)
    };
    let header_name = format!(
        "x-ms-ratelimit-remaining-{scope_kind}-{}",
        op_type.header_suffix()
    );
    match admit {
        Admit::Throttled { retry_after_secs } => {
            let mut e = ApiError::new(
                429,
                "TooManyRequests",
                format!(
                    "Number of '{}' requests for {scope_kind} '{scope}' actor '{}' exceeded. Please try again after '{retry_after_secs}' seconds.",
                    op_type.header_suffix(),
                    principal.object_id
                ),
            );
            e.retry_after = Some(retry_after_secs);
            (
                Outcome::err(e, &op_name, "throttled", &who),
                Some((header_name, "0".into())),
            )
        }
        Admit::Ok { remaining } => {
            let rem = Some((header_name, remaining.to_string()));
            match fault {
                Some(429) => {
                    let mut e = ApiError::new(
                        429,
                        "TooManyRequests",
                        "The request was throttled (injected fault). Please retry after the interval in Retry-After.",
                    );
                    e.retry_after = Some(faults.fault_retry_after_secs);
                    (Outcome::err(e, &op_name, "fault_429", &who), rem)
                }
                Some(500) => {
                    let e = ApiError::new(
                        500,
                        "InternalServerError",
                        "Encountered internal server error (injected fault).",
                    );
                    (Outcome::err(e, &op_name, "fault_5xx", &who), rem)
                }
                Some(status @ 400..=499) if status != 408 => {
                    let e = ApiError::new(
                        status,
                        "AuthorizationFailed",
                        format!(
                            "The client does not have authorization to perform {op_name} (injected fault)."
                        ),
                    );
                    (Outcome::err(e, &op_name, "fault_4xx", &who), rem)
                }
                // 408 or 5xx (`apply_faults` admits only 400..=599).
                Some(status) => {
                    let e = ApiError::new(
                        status,
                        "ServiceUnavailable",
                        "The service is temporarily unavailable (injected fault).",
                    );
                    (Outcome::err(e, &op_name, "fault_5xx", &who), rem)
                }
                None => {
                    let out = serve(
                        sh,
                        method,
                        path,
                        query,
                        bytes,
                        base_url,
                        &principal,
                        &api_version,
                        &faults,
                        target,
                        &op_name,
                    );
                    (out, rem)
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn serve(
    sh: &Shared,
    method: &str,
    path: &str,
    query: &[(String, String)],
    bytes: &[u8],
    base_url: &str,
    principal: &Principal,
    api_version: &str,
    faults: &Faults,
    target: Target<'_>,
    op_name: &str,
) -> Outcome {
    let who = principal.email.as_str();
    let body: Option<Value> = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        None
    } else {
        match serde_json::from_slice(bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                let e = ApiError::new(
                    400,
                    "InvalidRequestContent",
                    format!("The request content is not valid JSON: {e}."),
                );
                return Outcome::err(e, op_name, "served", who);
            }
        }
    };
    let now = OffsetDateTime::now_utc();
    let instant = Instant::now();
    let mut st = lock(&sh.state);
    st.advance(instant, now);
    // Regional outage.
    if let Some(region) = st.region_of(path, body.as_ref())
        && st.down.contains(&region)
    {
        let e = ApiError::new(
            503,
            "ServiceUnavailable",
            format!(
                "The Data Share service in region '{region}' is unavailable (regional outage). The request could not be served."
            ),
        );
        return Outcome::err(e, op_name, "region_down", who);
    }
    let ctx = Ctx {
        principal,
        base_url,
        api_version,
        now,
        instant,
        page_size: faults.page_size,
        lro_delay: Duration::from_millis(faults.lro_delay_ms),
        long_running_settings: faults.long_running_settings,
        checks: StoreChecks {
            store_data_roles: faults.store_data_roles,
            share_kind_rules: faults.share_kind_rules,
            role_propagation: Duration::from_millis(faults.role_propagation_ms),
        },
        query,
        path,
    };
    let result = match target {
        Target::DataShare(m) => {
            let mut cleaned = None;
            // A GET matched to a pageable POST is a nextLink page: a plain GET without the
            // body (datashare-api.md §5); the first page put the body's key into the link.
            let next_page = method == "GET" && m.route.method == "POST";
            // Azure's reinstate takes no request body (recordings), whatever the spec says.
            let bodiless = m.route.operation_id == "ProviderShareSubscriptions_Reinstate";
            if let Some((pname, schema, required)) = &m.route.body {
                match &body {
                    None if *required && !next_page && !bodiless => {
                        let e = ApiError::new(
                            400,
                            "InvalidRequestContent",
                            format!(
                                "The request content is invalid: the '{pname}' body is required."
                            ),
                        )
                        .target(pname.clone());
                        return Outcome::err(e, op_name, "served", who);
                    }
                    None => {}
                    Some(b) => {
                        let mut v: Vec<Violation> = Vec::new();
                        let c = sh.spec.validate(schema, b, "", Mode::Request, &mut v);
                        if let Some(first) = v.first() {
                            let mut e = ApiError::new(
                                400,
                                "InvalidRequestContent",
                                format!(
                                    "The request content is invalid: property '{}' {}.",
                                    first.path, first.message
                                ),
                            )
                            .target(first.path.clone());
                            e.details = v
                                .iter()
                                .map(|x| {
                                    (
                                        "InvalidRequestContent".to_string(),
                                        format!("'{}' {}", x.path, x.message),
                                        x.path.clone(),
                                    )
                                })
                                .collect();
                            return Outcome::err(e, op_name, "served", who);
                        }
                        cleaned = Some(c);
                    }
                }
            }
            st.datashare(&ctx, &m, cleaned)
        }
        Target::Operation { sub, id, status } => st.operation(&ctx, &sub, &id, status),
        Target::Arm(_) => match st.arm(&ctx, method, body.as_ref()) {
            Some((_, r)) => r,
            None => Err(ApiError::new(
                404,
                "InvalidResourceType",
                format!("The simulator does not serve '{path}'."),
            )),
        },
        Target::MethodNotAllowed | Target::Unknown => Err(ApiError::new(
            404,
            "InvalidResourceType",
            format!("The simulator does not serve '{path}'."),
        )),
    };
    match result {
        Ok(Reply {
            status,
            body,
            headers,
        }) => Outcome {
            status,
            body,
            headers,
            operation: op_name.into(),
            outcome: "served",
            principal: who.into(),
        },
        Err(e) => Outcome::err(e, op_name, "served", who),
    }
}

fn control(
    sh: &Arc<Shared>,
    method: &str,
    path: &str,
    query: &[(String, String)],
    bytes: &[u8],
    base_url: &str,
) -> Response {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let q = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let ok = |v: Value| json_response(200, Some(&v), &[]);
    let bad = |status: u16, code: &str, msg: String| {
        json_response(status, Some(&ApiError::new(status, code, msg).body()), &[])
    };
    match (method, &segs[1..]) {
        ("GET", ["health"]) => {
            ok(json!({"ok": true, "resources": lock(&sh.state).resource_count()}))
        }
        ("POST", ["regions", region, dir @ ("down" | "up")]) => {
            let mut st = lock(&sh.state);
            if *dir == "down" {
                st.down.insert(norm_region(region));
            } else {
                st.down.remove(&norm_region(region));
            }
            let mut d: Vec<String> = st.down.iter().cloned().collect();
            d.sort();
            ok(json!({ "down": d }))
        }
        ("GET", ["regions"]) => {
            let mut d: Vec<String> = lock(&sh.state).down.iter().cloned().collect();
            d.sort();
            ok(json!({ "down": d }))
        }
        ("GET", ["stats"]) => {
            ok(serde_json::to_value(lock(&sh.rt).stats.clone()).unwrap_or_default())
        }
        ("POST", ["reset"]) => {
            let state = q("state").is_some_and(|v| v == "true" || v == "1");
            reset(sh, state);
            ok(json!({"reset": true, "state": state}))
        }
        ("GET", ["requests"]) => {
            let since: u64 = q("since").and_then(|v| v.parse().ok()).unwrap_or(0);
            let limit: usize = q("limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(usize::MAX);
            let rt = lock(&sh.rt);
            let items: Vec<&RequestLogEntry> = rt
                .log
                .iter()
                .filter(|e| e.seq > since)
                .take(limit)
                .collect();
            ok(json!({ "requests": items }))
        }
        ("GET", ["faults"]) => {
            ok(serde_json::to_value(lock(&sh.rt).faults.clone()).unwrap_or_default())
        }
        ("POST", ["faults"]) => match serde_json::from_slice::<FaultSettings>(bytes) {
            Ok(f) => {
                let mut rt = lock(&sh.rt);
                apply_faults(&mut rt, &f);
                ok(serde_json::to_value(rt.faults.clone()).unwrap_or_default())
            }
            Err(e) => bad(
                400,
                "InvalidRequestContent",
                format!("invalid fault settings: {e}"),
            ),
        },
        ("POST", ["triggers", "fire"]) => {
            ok(json!({"fired": lock(&sh.state).fire_triggers(OffsetDateTime::now_utc())}))
        }
        ("POST", ["history", "age"]) => match q("hours").and_then(|h| h.parse::<u64>().ok()) {
            Some(h) => {
                lock(&sh.state).age_history(Duration::from_secs(h * 3600));
                ok(json!({"aged_hours": h}))
            }
            None => bad(
                400,
                "InvalidRequestContent",
                "query parameter 'hours' (integer) is required".into(),
            ),
        },
        ("POST", ["populate"]) => {
            let spec: PopulateSpec = if bytes.is_empty() {
                PopulateSpec::default()
            } else {
                match serde_json::from_slice(bytes) {
                    Ok(s) => s,
                    Err(e) => {
                        return bad(
                            400,
                            "InvalidRequestContent",
                            format!("invalid populate spec: {e}"),
                        );
                    }
                }
            };
            let r = {
                let mut st = lock(&sh.state);
                super::populate::generate(&mut st, sh.spec, &spec, base_url)
            };
            match r {
                Ok(est) => {
                    lock(&sh.rt).estate = Some(est.clone());
                    ok(serde_json::to_value(est).unwrap_or_default())
                }
                Err(e) => bad(400, "PopulateFailed", e.to_string()),
            }
        }
        ("GET", ["estate"]) => match lock(&sh.rt).estate.clone() {
            Some(e) => ok(serde_json::to_value(e).unwrap_or_default()),
            None => bad(404, "NotFound", "no estate has been generated".into()),
        },
        ("GET", ["config"]) => match lock(&sh.rt).estate.clone() {
            Some(e) => {
                let text = super::populate::write_config(&e, base_url);
                let mut r = Response::new(Body::from(text));
                r.headers_mut().insert(
                    "content-type",
                    HeaderValue::from_static("application/toml; charset=utf-8"),
                );
                r
            }
            None => bad(404, "NotFound", "no estate has been generated".into()),
        },
        _ => bad(
            404,
            "NotFound",
            format!("unknown control endpoint {method} {path}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::is_mutation;

    #[test]
    fn only_requests_that_can_change_state_count_as_mutations() {
        let a = "/subscriptions/s/resourceGroups/g/providers/Microsoft.DataShare/accounts/a";
        assert!(!is_mutation("GET", a));
        assert!(!is_mutation("HEAD", a));
        assert!(is_mutation("PUT", a));
        assert!(is_mutation("PATCH", a));
        assert!(is_mutation("DELETE", a));
        assert!(!is_mutation(
            "POST",
            &format!("{a}/shares/x/listSynchronizations")
        ));
        assert!(!is_mutation(
            "POST",
            &format!("{a}/shareSubscriptions/x/listSourceShareSynchronizationSettings")
        ));
        assert!(is_mutation(
            "POST",
            &format!("{a}/shareSubscriptions/x/synchronize")
        ));
        assert!(is_mutation(
            "POST",
            &format!("{a}/shares/x/providerShareSubscriptions/p/revoke")
        ));
    }
}
