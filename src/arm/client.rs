//! The ARM HTTP client: auth, rate limiting, retries, long-running operations, paging.
//!
//! Job: send one logical ARM call and return its decoded answer or one [`ArmError`]. Every
//! request carries `api-version` (set by the caller's URL), a fresh `x-ms-client-request-id`,
//! the client's `x-ms-correlation-request-id` when one is set, and a bearer token.
//!
//! Invariants:
//! - Cheap to clone (an `Arc` inside); clones share the token cache, rate limiter,
//!   concurrency limit and counters.
//! - Retries only what [`ArmError::is_transient`] says, at most `retry.max_attempts` per call
//!   and never past the call's deadline; `Retry-After` wins over backoff. A connection that
//!   cannot be made (refused, DNS, TLS) is tried [`CONNECT_FAILURE_ATTEMPTS`] times, then
//!   returned as is (a configuration fault; see `arm::fault`).
//! - Bearer tokens are only ever sent to the configured endpoint's origin: poll URLs and
//!   `nextLink`s on other origins are refused.
//! - Nothing here sleeps while holding a concurrency permit.
//!
//! Must not import reconcile, readiness, failover, handlers or host.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderMap;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use super::auth::{self, AuthMode, TokenSource};
use super::error::{ApiError, ArmError, OperationFailure};
use super::limiter::{OpKind, RateLimiter, RateLimits, RetryPolicy, retry_after};
use super::models::{ErrorResponse, OperationResponse, OperationStatus, Page, ProvisioningState};

/// The Data Share api-version this client speaks.
pub const API_VERSION: &str = "2021-08-01";

/// Everything the client needs; build with [`ArmSettings::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct ArmSettings {
    /// ARM endpoint, e.g. `https://management.azure.com` or the simulator's loopback URL.
    pub endpoint: Url,
    /// How to authenticate.
    pub auth: AuthMode,
    /// Token scope; default `{endpoint origin}/.default`.
    pub token_scope: Option<String>,
    /// In-flight requests at most.
    pub max_concurrency: usize,
    /// Overall deadline of one call, including retries and the throttling waits between them.
    /// It starts when the first attempt may be sent: waiting for this client's own token
    /// bucket before that is pacing, not ARM being slow, and does not count (so a short probe
    /// deadline still detects an outage, not a busy bucket).
    pub deadline: Duration,
    /// Timeout of one HTTP attempt (ARM itself gives providers 60 s).
    pub attempt_timeout: Duration,
    /// Retry limits and backoff.
    pub retry: RetryPolicy,
    /// Client-side token buckets.
    pub rate_limits: RateLimits,
    /// Default deadline of `wait` on a long-running operation.
    pub lro_deadline: Duration,
    /// Poll interval when the service sends no `Retry-After`.
    pub lro_poll_interval: Duration,
    /// Upper bound on pages followed through `nextLink` in one list call.
    pub max_pages: usize,
}

impl ArmSettings {
    /// Settings with defaults: 16 concurrent calls, 120 s per call, 6 attempts, ARM's
    /// buckets, 10 min LRO deadline, 2 s default poll interval, 1000 pages.
    pub fn new(endpoint: Url, auth: AuthMode) -> Self {
        Self {
            endpoint,
            auth,
            token_scope: None,
            max_concurrency: 16,
            deadline: Duration::from_secs(120),
            attempt_timeout: Duration::from_secs(65),
            retry: RetryPolicy::default(),
            rate_limits: RateLimits::default(),
            lro_deadline: Duration::from_secs(600),
            lro_poll_interval: Duration::from_secs(2),
            max_pages: 1000,
        }
    }
}

/// Request counters (since the client was built; shared by clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmStats {
    /// GET requests sent (including LRO polls and nextLink pages).
    pub reads: u64,
    /// PUT/PATCH/POST requests sent.
    pub writes: u64,
    /// DELETE requests sent.
    pub deletes: u64,
    /// Attempts beyond the first.
    pub retries: u64,
    /// 429 answers received.
    pub throttled: u64,
    /// LRO status polls sent (also counted in `reads`).
    pub lro_polls: u64,
}

#[derive(Debug, Default)]
struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
    deletes: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    lro_polls: AtomicU64,
}

/// One HTTP exchange, for the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Spec operation name (`Shares_Create`, `Shares_Delete/poll`, ...).
    pub operation: String,
    /// HTTP method.
    pub method: String,
    /// Resource id or URL path acted on.
    pub resource: String,
    /// Final HTTP status (after retries), if any answer arrived.
    pub status: Option<u16>,
    /// Attempts made.
    pub attempts: u32,
    /// `x-ms-correlation-request-id` of the last answer (or the one we sent).
    pub correlation_id: Option<String>,
    /// `x-ms-request-id` of the last answer.
    pub request_id: Option<String>,
    /// Our `x-ms-client-request-id` of the last attempt.
    pub client_request_id: String,
    /// Time spent, including retries and waits.
    pub elapsed_ms: u64,
}

/// Collects [`CallRecord`]s of the clients it is attached to (see [`ArmClient::recording`]).
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<CallRecord>>>);

impl CallLog {
    /// A new, empty log.
    pub fn new() -> Self {
        Self::default()
    }
    fn push(&self, r: CallRecord) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(r);
    }
    /// A copy of the records so far.
    pub fn records(&self) -> Vec<CallRecord> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Takes the records, leaving the log empty.
    pub fn take(&self) -> Vec<CallRecord> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
    /// Distinct correlation ids seen, in first-seen order.
    pub fn correlation_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.records() {
            if let Some(c) = r.correlation_id
                && !out.contains(&c)
            {
                out.push(c);
            }
        }
        out
    }
}

struct Inner {
    settings: ArmSettings,
    base: String,
    origin: url::Origin,
    scope: String,
    http: reqwest::Client,
    tokens: TokenSource,
    limiter: RateLimiter,
    permits: Semaphore,
    counters: Counters,
}

/// The ARM client. Clone freely.
#[derive(Clone)]
pub struct ArmClient {
    inner: Arc<Inner>,
    correlation_id: Option<String>,
    log: Option<CallLog>,
    deadline: Option<Duration>,
    /// See [`ArmClient::with_lro_handoff`].
    lro_handoff: Option<Duration>,
    /// See [`ArmClient::with_max_attempts`].
    max_attempts: Option<u32>,
    /// See [`ArmClient::non_idempotent`].
    non_idempotent: bool,
    /// See [`ArmClient::with_recorder`] (issue 16: `--record DIR` / `RECORD_DIR`).
    recorder: Option<super::record::Recorder>,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.inner.base)
            .field("auth", &self.inner.settings.auth.name())
            .field("correlation_id", &self.correlation_id)
            .finish_non_exhaustive()
    }
}

/// Attempts a call makes when the connection to the endpoint cannot be made (refused, DNS,
/// TLS) before it gives up, whatever `retry.max_attempts` and the deadline allow.
pub const CONNECT_FAILURE_ATTEMPTS: u32 = 2;

/// A transport failure before anything was sent: the connection could not be made (refused,
/// DNS, TLS), not a connect timeout (a timeout stays retryable).
pub fn is_connect_failure(err: &ArmError) -> bool {
    match err {
        ArmError::Transport { source, .. } => source.is_connect() && !source.is_timeout(),
        _ => false,
    }
}

/// Whether a failed non-idempotent POST may be sent again blindly: only a 429 (throttled before
/// the resource provider saw it) or a transport failure before the request was sent (the
/// connection could not be made). A timeout after sending, a reset or closed connection with
/// no answer, a 5xx or 408 may each hide an applied request.
pub fn post_retry_is_safe(err: &ArmError) -> bool {
    match err {
        ArmError::Api(a) => a.status == 429,
        ArmError::Transport { source, .. } => source.is_connect(),
        _ => false,
    }
}

/// Whether a failed request may nonetheless have been applied by the service: the request was
/// sent and no definite answer came back (timeout after sending, connection reset or closed
/// without an answer, 408, 5xx), directly or as the last failure before the call's deadline.
/// A caller of a non-idempotent POST observes before posting again when this holds.
pub fn may_have_been_applied(err: &ArmError) -> bool {
    match err {
        ArmError::Api(a) => a.status == 408 || a.status >= 500,
        ArmError::Transport { source, .. } => {
            !source.is_connect() && !source.is_builder() && !source.is_redirect()
        }
        ArmError::Deadline { last, .. } => last.as_deref().is_some_and(may_have_been_applied),
        _ => false,
    }
}

/// A decoded-enough HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    fn json(&self, op: &str, resource: &str) -> Result<Option<Value>, ArmError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&self.body)
            .map(Some)
            .map_err(|source| ArmError::Decode {
                operation: op.to_owned(),
                resource: resource.to_owned(),
                status: self.status,
                correlation_id: self.header("x-ms-correlation-request-id"),
                source,
            })
    }
}

/// The first answer of a long-running operation.
#[derive(Debug, Clone, PartialEq)]
pub enum LroStart {
    /// Finished at once (200/204, or a terminal `provisioningState`); the body, if any.
    Done(Option<Value>),
    /// Still running: poll the handle.
    Pending(LroHandle),
}

/// Where and how to poll a running operation. Serialisable so a queue stage can store it,
/// re-enqueue itself, and poll later with [`ArmClient::poll`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LroHandle {
    /// Spec operation name.
    pub operation: String,
    /// Resource id acted on.
    pub resource: String,
    /// Original method (`PUT`, `PATCH`, `DELETE`, `POST`).
    pub method: String,
    /// URL of the resource (final GET for PUT/PATCH; `provisioningState` polling).
    pub resource_url: String,
    /// `Azure-AsyncOperation` URL, followed verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_operation_url: Option<String>,
    /// `Location` URL, followed verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_url: Option<String>,
    /// `Retry-After` of the first answer, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Correlation id of the first answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl LroHandle {
    /// Suggested wait before the first poll.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_ms.map(Duration::from_millis)
    }
}

/// The state of a polled long-running operation.
#[derive(Debug, Clone, PartialEq)]
pub enum LroStatus {
    /// Not finished; poll again after `retry_after`.
    Running {
        status: OperationStatus,
        retry_after: Duration,
    },
    /// Finished successfully; the final body, if any.
    Done(Option<Value>),
}

fn subscription_key(path: &str) -> String {
    let mut parts = path.split('/').filter(|s| !s.is_empty());
    match (parts.next(), parts.next()) {
        (Some(k), Some(v)) if k.eq_ignore_ascii_case("subscriptions") => v.to_ascii_lowercase(),
        _ => "tenant".to_owned(),
    }
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl ArmClient {
    /// Builds the client. Refuses `http://`, static-token and no-auth unless the endpoint is
    /// loopback. Builds no connection and fetches no token (both happen on first use).
    pub fn new(settings: ArmSettings) -> Result<Self, ArmError> {
        auth::check_endpoint(&settings.endpoint, &settings.auth).map_err(|source| {
            ArmError::Settings {
                source: Box::new(source),
            }
        })?;
        if settings.max_concurrency == 0 {
            return Err(ArmError::BadSettings {
                reason: "max_concurrency must be at least 1".into(),
            });
        }
        if settings.retry.max_attempts == 0 {
            return Err(ArmError::BadSettings {
                reason: "retry.max_attempts must be at least 1".into(),
            });
        }
        let tokens = TokenSource::build(&settings.auth).map_err(|source| ArmError::Settings {
            source: Box::new(source),
        })?;
        // reqwest is built without a default TLS provider; install ring once (no-op if some
        // provider is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(settings.attempt_timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("datashare-dr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ArmError::BadSettings {
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        let base = settings.endpoint.as_str().trim_end_matches('/').to_owned();
        let scope = settings
            .token_scope
            .clone()
            .unwrap_or_else(|| auth::default_scope(&settings.endpoint));
        let origin = settings.endpoint.origin();
        let permits = Semaphore::new(settings.max_concurrency);
        let limiter = RateLimiter::new(settings.rate_limits);
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                base,
                origin,
                scope,
                http,
                tokens,
                limiter,
                permits,
                counters: Counters::default(),
            }),
            correlation_id: None,
            log: None,
            deadline: None,
            lro_handoff: None,
            max_attempts: None,
            non_idempotent: false,
            recorder: None,
        })
    }

    /// A clone that writes every HTTP exchange (each attempt, LRO poll and page) to
    /// `recorder` as SessionRecords JSON, sanitised (see [`super::record`]).
    pub fn with_recorder(&self, recorder: &super::record::Recorder) -> Self {
        Self {
            recorder: Some(recorder.clone()),
            ..self.clone()
        }
    }

    /// The recorder attached with [`Self::with_recorder`], if any.
    pub fn recorder(&self) -> Option<&super::record::Recorder> {
        self.recorder.as_ref()
    }

    /// A clone that sends `x-ms-correlation-request-id: id` on every call (one id per
    /// logical operation, e.g. one failover run).
    pub fn with_correlation_id(&self, id: impl Into<String>) -> Self {
        Self {
            correlation_id: Some(id.into()),
            ..self.clone()
        }
    }

    /// A clone whose calls use `deadline` (including retries) instead of the settings' one,
    /// e.g. to fit inside a Functions invocation's remaining time.
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// A clone whose long-running operations (the waiting forms: `create_account`,
    /// `delete_*`, …) are polled for at most `budget`; one still running then ends the call
    /// with [`ArmError::LroPending`] carrying its handle, so the caller can poll it later
    /// ([`Self::poll`]) instead of sleeping — a failover stage re-enqueues itself.
    pub fn with_lro_handoff(&self, budget: Duration) -> Self {
        Self {
            lro_handoff: Some(budget),
            ..self.clone()
        }
    }

    /// A clone whose calls make at most `attempts` attempts (at least 1) instead of the retry
    /// policy's `max_attempts`. With 1, a transient failure is returned to the caller at once:
    /// for a write whose repetition has an effect of its own (an invitation PUT sends an e-mail
    /// each time), the caller observes before writing again instead of the client re-sending
    /// a request that may already have been applied (a lost response).
    pub fn with_max_attempts(&self, attempts: u32) -> Self {
        Self {
            max_attempts: Some(attempts.max(1)),
            ..self.clone()
        }
    }

    /// A clone for POST actions whose repetition has an effect of its own (`synchronize`,
    /// `cancelSynchronization`, revoke / reinstate / adjust of a provider share subscription):
    /// its POSTs are retried only when the request was certainly not applied — a 429 (ARM
    /// refused it before the resource provider saw it) or a failure before the request was
    /// sent (connecting failed) — see [`post_retry_is_safe`]. Any other failure is returned at
    /// once; when [`may_have_been_applied`] says so, the caller observes (e.g. lists
    /// synchronizations) before deciding to post again. Reads (LRO polls) retry as usual.
    pub fn non_idempotent(&self) -> Self {
        Self {
            non_idempotent: true,
            ..self.clone()
        }
    }

    /// A clone that appends a [`CallRecord`] per call to `log`.
    pub fn recording(&self, log: &CallLog) -> Self {
        Self {
            log: Some(log.clone()),
            ..self.clone()
        }
    }

    /// The settings the client was built with.
    pub fn settings(&self) -> &ArmSettings {
        &self.inner.settings
    }

    /// The shared rate limiter (diagnostics).
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// Counters so far.
    pub fn stats(&self) -> ArmStats {
        let c = &self.inner.counters;
        ArmStats {
            reads: c.reads.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            deletes: c.deletes.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            lro_polls: c.lro_polls.load(Ordering::Relaxed),
        }
    }

    /// `{endpoint}{path}?api-version={api_version}&{query}`.
    pub fn url(
        &self,
        path: &str,
        api_version: &str,
        query: &[(&str, &str)],
    ) -> Result<Url, ArmError> {
        let mut url = Url::parse(&format!("{}{}", self.inner.base, path)).map_err(|e| {
            ArmError::BadSettings {
                reason: format!("cannot build a URL for `{path}`: {e}"),
            }
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", api_version);
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Parses a URL the service handed us (poll URL, nextLink) and refuses foreign origins.
    fn follow_url(&self, op: &str, resource: &str, raw: &str) -> Result<Url, ArmError> {
        let url = Url::parse(raw)
            .or_else(|_| Url::parse(&format!("{}{}", self.inner.base, raw)))
            .map_err(|e| ArmError::Protocol {
                operation: op.to_owned(),
                resource: resource.to_owned(),
                reason: format!("unusable URL `{raw}` from the service: {e}"),
            })?;
        if url.origin() != self.inner.origin {
            return Err(ArmError::Protocol {
                operation: op.to_owned(),
                resource: resource.to_owned(),
                reason: format!(
                    "refusing to follow `{}`: not on the ARM endpoint's origin (credentials would leak)",
                    url.origin().ascii_serialization()
                ),
            });
        }
        Ok(url)
    }

    /// Sends one logical request with rate limiting, retries and the deadline; returns the
    /// first success (2xx) answer.
    pub(crate) async fn send(
        &self,
        op: &str,
        resource: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Answer, ArmError> {
        let inner = &*self.inner;
        let started = Instant::now();
        let call_deadline = self.deadline.unwrap_or(inner.settings.deadline);
        // Re-based after the first reservation (see `ArmSettings::deadline`).
        let mut deadline = started + call_deadline;
        let kind = OpKind::of(&method);
        let sub = subscription_key(url.path());
        let mut attempts: u32 = 0;
        let mut last_err: Option<ArmError> = None;
        let mut record = CallRecord {
            operation: op.to_owned(),
            method: method.to_string(),
            resource: resource.to_owned(),
            status: None,
            attempts: 0,
            correlation_id: self.correlation_id.clone(),
            request_id: None,
            client_request_id: String::new(),
            elapsed_ms: 0,
        };
        let deadline_err = |attempts: u32, last: Option<ArmError>| ArmError::Deadline {
            operation: op.to_owned(),
            resource: resource.to_owned(),
            deadline: call_deadline,
            attempts,
            last: last.map(Box::new),
        };
        let result = loop {
            // throttle before taking a concurrency permit
            let first = attempts == 0;
            match inner
                .limiter
                .reserve(&sub, kind, (!first).then_some(deadline))
            {
                Ok(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
                Ok(_) => {}
                Err(_) => break Err(deadline_err(attempts, last_err.take())),
            }
            if first {
                deadline = Instant::now() + call_deadline;
            }
            let token = match inner.tokens.token(&inner.scope).await {
                Ok(t) => t,
                Err(source) => {
                    break Err(ArmError::Auth {
                        operation: op.to_owned(),
                        resource: resource.to_owned(),
                        source: Box::new(source),
                    });
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break Err(deadline_err(attempts, last_err.take()));
            }
            attempts += 1;
            if attempts > 1 {
                inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            match kind {
                OpKind::Read => &inner.counters.reads,
                OpKind::Write => &inner.counters.writes,
                OpKind::Delete => &inner.counters.deletes,
            }
            .fetch_add(1, Ordering::Relaxed);
            let client_request_id = new_request_id();
            record.client_request_id = client_request_id.clone();
            let mut rb = inner
                .http
                .request(method.clone(), url.clone())
                .timeout(remaining.min(inner.settings.attempt_timeout))
                .header("x-ms-client-request-id", &client_request_id)
                .header("accept", "application/json");
            if let Some(c) = &self.correlation_id {
                rb = rb.header("x-ms-correlation-request-id", c);
            }
            if let Some(t) = &token {
                rb = rb.bearer_auth(t.expose());
            }
            if let Some(b) = body {
                rb = rb.json(b);
            } else if method == Method::POST || method == Method::PUT || method == Method::PATCH {
                rb = rb.header("content-length", "0");
            }
            let outcome = {
                let _permit = inner
                    .permits
                    .acquire()
                    .await
                    .map_err(|_| ArmError::BadSettings {
                        reason: "client concurrency limiter closed".into(),
                    });
                match _permit {
                    Err(e) => Err(e),
                    Ok(_p) => match rb.send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let headers = resp.headers().clone();
                            match resp.bytes().await {
                                Ok(body) => Ok(Answer {
                                    status,
                                    headers,
                                    body: body.to_vec(),
                                }),
                                Err(source) => Err(ArmError::Transport {
                                    operation: op.to_owned(),
                                    resource: resource.to_owned(),
                                    source,
                                }),
                            }
                        }
                        Err(source) => Err(ArmError::Transport {
                            operation: op.to_owned(),
                            resource: resource.to_owned(),
                            source,
                        }),
                    },
                }
            };
            let err = match outcome {
                Ok(ans) => {
                    // Issue 16: the one place every exchange passes (all operations, retries,
                    // polls, pages), so a recording misses nothing.
                    if let Some(rec) = &self.recorder {
                        rec.exchange(
                            method.as_str(),
                            &url,
                            &client_request_id,
                            self.correlation_id.as_deref(),
                            token.is_some(),
                            body,
                            ans.status,
                            &ans.headers,
                            &ans.body,
                        );
                    }
                    inner.limiter.observe_headers(&sub, &ans.headers);
                    record.status = Some(ans.status);
                    record.request_id = ans.header("x-ms-request-id");
                    if let Some(c) = ans.header("x-ms-correlation-request-id") {
                        record.correlation_id = Some(c);
                    }
                    if (200..300).contains(&ans.status) {
                        break Ok(ans);
                    }
                    let e = self.api_error(op, resource, &ans);
                    if ans.status == 429 {
                        inner.counters.throttled.fetch_add(1, Ordering::Relaxed);
                        let ra = retry_after(&ans.headers).unwrap_or(Duration::from_secs(1));
                        inner.limiter.observe_throttled(&sub, kind, ra);
                    }
                    e
                }
                Err(e) => e,
            };
            let max_attempts = self
                .max_attempts
                .unwrap_or(inner.settings.retry.max_attempts);
            let retryable = if self.non_idempotent && method == Method::POST {
                post_retry_is_safe(&err)
            } else {
                err.is_transient()
            };
            if !retryable || attempts >= max_attempts {
                break Err(err);
            }
            // A refused (or unresolvable) connection to the configured endpoint is a
            // configuration fault, not an outage (ARM's endpoint is global): one more try covers
            // a blip, then it is returned as is (a tool fault) instead of retried until the
            // deadline.
            if attempts >= CONNECT_FAILURE_ATTEMPTS && is_connect_failure(&err) {
                break Err(err);
            }
            let server_delay = match &err {
                ArmError::Api(a) => a.retry_after,
                _ => None,
            };
            let delay = match server_delay {
                Some(d) => d.min(inner.settings.retry.max_retry_after),
                None => inner.settings.retry.backoff(attempts - 1),
            };
            tracing::debug!(
                operation = op,
                resource,
                attempt = attempts,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying ARM call"
            );
            if Instant::now() + delay >= deadline {
                break Err(deadline_err(attempts, Some(err)));
            }
            last_err = Some(err);
            tokio::time::sleep(delay).await;
        };
        record.attempts = attempts;
        record.elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(
            operation = op,
            resource,
            method = %record.method,
            status = record.status,
            attempts,
            elapsed_ms = record.elapsed_ms,
            correlation_id = record.correlation_id.as_deref(),
            request_id = record.request_id.as_deref(),
            "ARM call"
        );
        if let Some(log) = &self.log {
            log.push(record);
        }
        result
    }

    fn api_error(&self, op: &str, resource: &str, ans: &Answer) -> ArmError {
        let parsed: Option<ErrorResponse> = serde_json::from_slice(&ans.body).ok();
        let (code, message, details) = match parsed {
            Some(e) if !e.error.code.is_empty() || !e.error.message.is_empty() => {
                (e.error.code, e.error.message, e.error.details)
            }
            _ => {
                let text = String::from_utf8_lossy(&ans.body);
                let text: String = text.chars().take(300).collect();
                (
                    http::StatusCode::from_u16(ans.status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("Error")
                        .replace(' ', ""),
                    text,
                    Vec::new(),
                )
            }
        };
        ArmError::Api(Box::new(ApiError {
            operation: op.to_owned(),
            resource: resource.to_owned(),
            status: ans.status,
            code,
            message,
            details,
            correlation_id: ans.header("x-ms-correlation-request-id"),
            request_id: ans.header("x-ms-request-id"),
            retry_after: retry_after(&ans.headers),
        }))
    }

    fn decode<T: DeserializeOwned>(
        &self,
        op: &str,
        resource: &str,
        ans: &Answer,
    ) -> Result<T, ArmError> {
        let body: &[u8] = if ans.body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &ans.body
        };
        serde_json::from_slice(body).map_err(|source| ArmError::Decode {
            operation: op.to_owned(),
            resource: resource.to_owned(),
            status: ans.status,
            correlation_id: ans.header("x-ms-correlation-request-id"),
            source,
        })
    }

    fn encode<B: Serialize>(&self, op: &str, resource: &str, body: &B) -> Result<Value, ArmError> {
        serde_json::to_value(body).map_err(|source| ArmError::Encode {
            operation: op.to_owned(),
            resource: resource.to_owned(),
            source,
        })
    }

    /// GET and decode.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        op: &str,
        resource: &str,
        url: Url,
    ) -> Result<T, ArmError> {
        let ans = self.send(op, resource, Method::GET, url, None).await?;
        self.decode(op, resource, &ans)
    }

    /// Sends `method` with an optional JSON body and decodes the answer (not for LROs).
    pub async fn call_json<T: DeserializeOwned, B: Serialize>(
        &self,
        op: &str,
        resource: &str,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<T, ArmError> {
        let body = body.map(|b| self.encode(op, resource, b)).transpose()?;
        let ans = self.send(op, resource, method, url, body.as_ref()).await?;
        self.decode(op, resource, &ans)
    }

    /// Sends `method` and ignores the body (DELETE of a non-LRO resource, ...).
    pub async fn call_empty(
        &self,
        op: &str,
        resource: &str,
        method: Method,
        url: Url,
    ) -> Result<u16, ArmError> {
        let ans = self.send(op, resource, method, url, None).await?;
        Ok(ans.status)
    }

    /// A list operation: the first page with `method` (GET, or POST for the
    /// `list…Synchronizations` actions), then `nextLink` pages with GET, at most
    /// `max_pages` pages.
    pub async fn list<T: DeserializeOwned>(
        &self,
        op: &str,
        resource: &str,
        method: Method,
        url: Url,
    ) -> Result<Vec<T>, ArmError> {
        self.list_with_body(op, resource, method, url, None).await
    }

    /// Like [`ArmClient::list`], with a JSON body on the first request (the
    /// `listSynchronizationDetails` actions); `nextLink` pages are plain GETs.
    pub async fn list_with_body<T: DeserializeOwned>(
        &self,
        op: &str,
        resource: &str,
        method: Method,
        url: Url,
        first_body: Option<&Value>,
    ) -> Result<Vec<T>, ArmError> {
        let mut body = first_body;
        let mut out = Vec::new();
        let mut next = Some(url);
        let mut method = method;
        let mut seen: Vec<String> = Vec::new();
        let mut pages = 0usize;
        while let Some(u) = next.take() {
            pages += 1;
            if pages > self.inner.settings.max_pages {
                return Err(ArmError::Protocol {
                    operation: op.to_owned(),
                    resource: resource.to_owned(),
                    reason: format!(
                        "more than {} pages; stopped following nextLink",
                        self.inner.settings.max_pages
                    ),
                });
            }
            seen.push(u.to_string());
            let ans = self
                .send(op, resource, method.clone(), u, body.take())
                .await?;
            let page: Page<T> = self.decode(op, resource, &ans)?;
            out.extend(page.value);
            if let Some(link) = page.next_link.filter(|l| !l.trim().is_empty()) {
                let nu = self.follow_url(op, resource, &link)?;
                if seen.iter().any(|s| *s == nu.as_str()) {
                    return Err(ArmError::Protocol {
                        operation: op.to_owned(),
                        resource: resource.to_owned(),
                        reason: format!("nextLink `{nu}` repeats an earlier page"),
                    });
                }
                next = Some(nu);
                method = Method::GET;
            }
        }
        Ok(out)
    }

    /// Starts a long-running operation and returns either its result (finished at once) or
    /// a handle to poll.
    pub async fn start(
        &self,
        op: &str,
        resource: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<LroStart, ArmError> {
        let ans = self
            .send(op, resource, method.clone(), url.clone(), body)
            .await?;
        let json = ans.json(op, resource)?;
        let async_url = ans.header("azure-asyncoperation");
        // Data Share sends `Location` on 201 answers as information only (the resource URL, or
        // a malformed relative one at 2019-11-01): only a 202's Location is a status URL.
        let location = ans.header("location").filter(|_| ans.status == 202);
        let polling_headers = async_url.is_some() || location.is_some();
        let is_put = method == Method::PUT || method == Method::PATCH;
        let state_running = is_put
            && json
                .as_ref()
                .and_then(|b| b.pointer("/properties/provisioningState"))
                .and_then(Value::as_str)
                .is_some_and(|s| !ProvisioningState::parse(s).is_terminal());
        let pending = match ans.status {
            202 => true,
            201 => polling_headers || state_running,
            200 => state_running,
            _ => false,
        };
        if !pending {
            return Ok(LroStart::Done(json));
        }
        if !polling_headers && !is_put {
            return Err(ArmError::Protocol {
                operation: op.to_owned(),
                resource: resource.to_owned(),
                reason: format!(
                    "HTTP {} without Azure-AsyncOperation or Location header",
                    ans.status
                ),
            });
        }
        let async_operation_url = async_url
            .map(|u| self.follow_url(op, resource, &u).map(String::from))
            .transpose()?;
        let location_url = location
            .map(|u| self.follow_url(op, resource, &u).map(String::from))
            .transpose()?;
        Ok(LroStart::Pending(LroHandle {
            operation: op.to_owned(),
            resource: resource.to_owned(),
            method: method.to_string(),
            resource_url: url.to_string(),
            async_operation_url,
            location_url,
            retry_after_ms: retry_after(&ans.headers).map(|d| d.as_millis() as u64),
            correlation_id: ans.header("x-ms-correlation-request-id"),
        }))
    }

    fn poll_interval(&self, headers: &HeaderMap) -> Duration {
        retry_after(headers)
            .map(|d| d.min(self.inner.settings.retry.max_retry_after))
            .unwrap_or(self.inner.settings.lro_poll_interval)
    }

    async fn poll_get(&self, h: &LroHandle, url: &str) -> Result<Answer, ArmError> {
        let op = format!("{}/poll", h.operation);
        let u = self.follow_url(&op, &h.resource, url)?;
        self.inner
            .counters
            .lro_polls
            .fetch_add(1, Ordering::Relaxed);
        self.send(&op, &h.resource, Method::GET, u, None).await
    }

    /// Polls a long-running operation once (one status GET, plus the final GET when it has
    /// just succeeded). `Failed`/`Canceled` come back as [`ArmError::OperationFailed`].
    pub async fn poll(&self, h: &LroHandle) -> Result<LroStatus, ArmError> {
        let failed =
            |status: OperationStatus, code: String, message: String, corr: Option<String>| {
                ArmError::OperationFailed(Box::new(OperationFailure {
                    operation: h.operation.clone(),
                    resource: h.resource.clone(),
                    status,
                    code,
                    message,
                    correlation_id: corr.or_else(|| h.correlation_id.clone()),
                }))
            };
        if let Some(aurl) = &h.async_operation_url {
            let ans = self.poll_get(h, aurl).await?;
            let op_resp: OperationResponse = self.decode(&h.operation, &h.resource, &ans)?;
            if !op_resp.status.is_terminal() {
                return Ok(LroStatus::Running {
                    status: op_resp.status,
                    retry_after: self.poll_interval(&ans.headers),
                });
            }
            if op_resp.status != OperationStatus::Succeeded {
                let (code, message) = op_resp
                    .error
                    .map(|e| (e.code, e.message))
                    .unwrap_or_else(|| (op_resp.status.to_string(), "no error details".into()));
                return Err(failed(
                    op_resp.status,
                    code,
                    message,
                    ans.header("x-ms-correlation-request-id"),
                ));
            }
            if let Some(loc) = &h.location_url {
                let fin = self.poll_get(h, loc).await?;
                if fin.status == 202 {
                    return Ok(LroStatus::Running {
                        status: OperationStatus::InProgress,
                        retry_after: self.poll_interval(&fin.headers),
                    });
                }
                return Ok(LroStatus::Done(fin.json(&h.operation, &h.resource)?));
            }
            return match h.method.as_str() {
                "PUT" | "PATCH" => {
                    let fin = self.poll_get(h, &h.resource_url).await?;
                    Ok(LroStatus::Done(fin.json(&h.operation, &h.resource)?))
                }
                "POST" => Ok(LroStatus::Done(ans.json(&h.operation, &h.resource)?)),
                _ => Ok(LroStatus::Done(None)),
            };
        }
        if let Some(loc) = &h.location_url {
            let ans = self.poll_get(h, loc).await?;
            if ans.status == 202 {
                return Ok(LroStatus::Running {
                    status: OperationStatus::InProgress,
                    retry_after: self.poll_interval(&ans.headers),
                });
            }
            let body = ans.json(&h.operation, &h.resource)?;
            // Issue 16 (recordings): Azure's account create answers 201 `Creating` with
            // `Location` = the resource URL itself, so a 200 from it is the resource, done only
            // when its provisioningState is terminal.
            if matches!(h.method.as_str(), "PUT" | "PATCH") {
                return self.provisioning_status(h, body, &ans);
            }
            return Ok(LroStatus::Done(body));
        }
        // PUT whose body reported a non-terminal provisioningState: poll the resource.
        let ans = self.poll_get(h, &h.resource_url).await?;
        let body = ans.json(&h.operation, &h.resource)?;
        self.provisioning_status(h, body, &ans)
    }

    /// A polled resource body of a PUT/PATCH: done when its provisioningState is `Succeeded`
    /// (or absent), failed when terminal otherwise, else still running.
    fn provisioning_status(
        &self,
        h: &LroHandle,
        body: Option<Value>,
        ans: &Answer,
    ) -> Result<LroStatus, ArmError> {
        let failed =
            |status: OperationStatus, code: String, message: String, corr: Option<String>| {
                ArmError::OperationFailed(Box::new(OperationFailure {
                    operation: h.operation.clone(),
                    resource: h.resource.clone(),
                    status,
                    code,
                    message,
                    correlation_id: corr.or_else(|| h.correlation_id.clone()),
                }))
            };
        let state = body
            .as_ref()
            .and_then(|b| b.pointer("/properties/provisioningState"))
            .and_then(Value::as_str)
            .map(ProvisioningState::parse);
        match state {
            None | Some(ProvisioningState::Succeeded) => Ok(LroStatus::Done(body)),
            Some(s) if s.is_terminal() => Err(failed(
                OperationStatus::Failed,
                s.to_string(),
                "provisioningState is terminal but not Succeeded".into(),
                ans.header("x-ms-correlation-request-id"),
            )),
            Some(_) => Ok(LroStatus::Running {
                status: OperationStatus::InProgress,
                retry_after: self.poll_interval(&ans.headers),
            }),
        }
    }

    /// Polls until the operation finishes or `deadline` passes (then
    /// [`ArmError::Deadline`]).
    pub async fn wait(&self, h: &LroHandle, deadline: Duration) -> Result<Option<Value>, ArmError> {
        let until = Instant::now() + deadline;
        let mut polls: u32 = 0;
        if let Some(first) = h.retry_after() {
            let first = first.min(self.inner.settings.retry.max_retry_after);
            if Instant::now() + first >= until {
                return Err(self.lro_deadline(h, deadline, polls));
            }
            tokio::time::sleep(first).await;
        }
        loop {
            polls += 1;
            match self.poll(h).await? {
                LroStatus::Done(v) => return Ok(v),
                LroStatus::Running { retry_after, .. } => {
                    if Instant::now() + retry_after >= until {
                        return Err(self.lro_deadline(h, deadline, polls));
                    }
                    tokio::time::sleep(retry_after).await;
                }
            }
        }
    }

    fn lro_deadline(&self, h: &LroHandle, deadline: Duration, polls: u32) -> ArmError {
        ArmError::Deadline {
            operation: h.operation.clone(),
            resource: h.resource.clone(),
            deadline,
            attempts: polls,
            last: None,
        }
    }

    /// Starts an LRO and waits for it with the settings' LRO deadline.
    pub async fn run_lro(
        &self,
        op: &str,
        resource: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ArmError> {
        match self.start(op, resource, method, url, body).await? {
            LroStart::Done(v) => Ok(v),
            LroStart::Pending(h) => match self.lro_handoff {
                None => self.wait(&h, self.inner.settings.lro_deadline).await,
                Some(budget) => self.wait_or_hand_off(h, budget).await,
            },
        }
    }

    /// Polls for at most `budget`; still running then → [`ArmError::LroPending`].
    async fn wait_or_hand_off(
        &self,
        h: LroHandle,
        budget: Duration,
    ) -> Result<Option<Value>, ArmError> {
        let until = Instant::now() + budget;
        let cap = self.inner.settings.retry.max_retry_after;
        let mut delay = h.retry_after().map(|d| d.min(cap));
        loop {
            if let Some(d) = delay {
                if Instant::now() + d >= until {
                    return Err(ArmError::LroPending {
                        handle: Box::new(h),
                    });
                }
                tokio::time::sleep(d).await;
            }
            match self.poll(&h).await? {
                LroStatus::Done(v) => return Ok(v),
                LroStatus::Running { retry_after, .. } => delay = Some(retry_after.min(cap)),
            }
        }
    }

    /// Decodes an LRO result body into `T`.
    pub fn decode_value<T: DeserializeOwned>(
        &self,
        op: &str,
        resource: &str,
        v: Value,
    ) -> Result<T, ArmError> {
        serde_json::from_value(v).map_err(|source| ArmError::Decode {
            operation: op.to_owned(),
            resource: resource.to_owned(),
            status: 200,
            correlation_id: None,
            source,
        })
    }

    /// Encodes a request body.
    pub fn encode_value<B: Serialize>(
        &self,
        op: &str,
        resource: &str,
        body: &B,
    ) -> Result<Value, ArmError> {
        self.encode(op, resource, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_key_comes_from_the_path() {
        assert_eq!(
            subscription_key("/subscriptions/ABC/resourceGroups/x"),
            "abc"
        );
        assert_eq!(
            subscription_key("/providers/Microsoft.DataShare/listInvitations"),
            "tenant"
        );
    }

    #[test]
    fn lro_handles_serialise_for_queue_messages() {
        let h = LroHandle {
            operation: "Shares_Delete".into(),
            resource: "/subscriptions/s/x".into(),
            method: "DELETE".into(),
            resource_url: "http://127.0.0.1:1/x?api-version=2021-08-01".into(),
            async_operation_url: Some("http://127.0.0.1:1/op/1".into()),
            location_url: None,
            retry_after_ms: Some(1500),
            correlation_id: None,
        };
        let j = serde_json::to_string(&h).unwrap();
        assert!(j.contains("asyncOperationUrl"));
        let back: LroHandle = serde_json::from_str(&j).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.retry_after(), Some(Duration::from_millis(1500)));
    }
}
