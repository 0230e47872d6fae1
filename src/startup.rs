//! Process start-up for `serve`: [`App::build`] binds `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT`
//! (port 0 in tests), [`App::run_until_stopped`] serves until SIGTERM / Ctrl-C and drains
//! in-flight invocations (graceful shutdown).
//!
//! Invariants:
//! - Nothing slow happens before the port is bound: no network, no credential fetch; the runtime
//!   `Config` is parsed once from env and the DR config TOML (when `DR_CONFIG_PATH` is set) is read
//!   and validated once — both are microseconds-to-milliseconds of CPU. Clients (ARM, storage) live
//!   in [`AppState`] as lazily initialised slots, built on first use.
//! - `GET /` (the host's readiness probe and health ping) answers at once with 200.
//! - Every function is served at `POST /<FunctionName>` from [`handlers::FUNCTIONS`]; each
//!   invocation runs inside one tracing span (`function`, `invocation_id`, `dequeue_count`,
//!   `run_id`, `stage`); errors are logged once, with their cause chain, inside that span.
//! - A payload that does not decode is answered with a 4xx whose JSON problem body names the
//!   field; no input panics.
//!
//! Only this module imports `handlers`; axum stays here and in no domain module.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tracing::{Instrument, Span, field};

use crate::config::dr::{DrConfig, DrConfigError};
use crate::config::{Config, ConfigError};
use crate::handlers::{self, FUNCTIONS, HandlerError, HostAnswer, error_chain};
use crate::host::{INVOCATION_ID_HEADER, InvocationRequest, PayloadError, Problem, Trigger};

/// Largest invocation envelope accepted from the host (the HTTP body limit for callers is
/// [`crate::host::HTTP_BODY_LIMIT`]; the envelope repeats body fields in `Metadata`).
pub const ENVELOPE_LIMIT: usize = 4 * 1024 * 1024;

/// Shared state of the running handler: configuration plus lazily initialised clients.
///
/// Other modules add their slots here as `tokio::sync::OnceCell<…>` (or `std::sync::OnceLock`)
/// fields initialised on first use, so start-up stays cheap.
#[derive(Debug)]
pub struct AppState {
    /// Runtime settings from env.
    pub config: Config,
    /// The DR topology, loaded at start-up when `DR_CONFIG_PATH` is set (always set for `serve`).
    pub dr: Option<Arc<DrConfig>>,
    /// The ARM client, built on first use by [`AppState::arm`] (no IO until the first call).
    arm: tokio::sync::OnceCell<crate::arm::client::ArmClient>,
    /// The app's blob container and queues, connected on first use by [`AppState::storage`].
    storage: tokio::sync::OnceCell<AppStorage>,
    /// Plain HTTP client for outbound webhooks, built on first use.
    http: std::sync::OnceLock<reqwest::Client>,
    /// Time budgets of the replicate passes (from `REPLICATE_BUDGET_SECONDS` or host.json).
    pub budgets: ReplicateBudgets,
    /// Signing keys that authenticate `AlertWebhook` callers (fetched on first use, cached).
    pub alert_keys: crate::failover::alert_auth::JwksCache,
}

/// Time budgets of the replicate passes, fixed at start-up (docs/CONTRACTS.md "Time budgets").
///
/// - `pass`: a timer tick of `ReplicateConfig` and one `ReplicatePair` invocation stop starting
///   or continuing pairs after it. `REPLICATE_BUDGET_SECONDS` when set, else 80% of host.json's
///   `functionTimeout` (read from the working directory — the app root the host starts the
///   handler in — at start-up; 5 minutes, the Consumption default, when there is none), and
///   never more than that timeout less 30 s.
/// - `http`: `ReplicateNow`'s in-call budget: `pass`, at most [`HTTP_BUDGET_CAP`] — the front
///   end gives an HTTP call ~230 s, and the call answers within 200 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicateBudgets {
    pub pass: Duration,
    pub http: Duration,
    /// host.json's `functionTimeout` as read (or assumed).
    pub function_timeout: Duration,
}

/// The most `ReplicateNow` spends on the pass itself before answering 202.
pub const HTTP_BUDGET_CAP: Duration = Duration::from_secs(180);
/// `functionTimeout` assumed when host.json cannot be read (the Consumption plan's default).
pub const DEFAULT_FUNCTION_TIMEOUT: Duration = Duration::from_secs(5 * 60);

impl ReplicateBudgets {
    /// From the setting and host.json's text (`None` when it cannot be read).
    pub fn new(setting: Option<Duration>, host_json: Option<&str>) -> ReplicateBudgets {
        let function_timeout = host_json
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|v| {
                v.get("functionTimeout")
                    .and_then(|t| t.as_str())
                    .and_then(parse_timespan)
            })
            .unwrap_or(DEFAULT_FUNCTION_TIMEOUT);
        let ceiling = function_timeout
            .saturating_sub(Duration::from_secs(30))
            .max(Duration::from_secs(1));
        let pass = setting
            .unwrap_or_else(|| function_timeout.mul_f64(0.8))
            .min(ceiling);
        ReplicateBudgets {
            pass,
            http: pass.min(HTTP_BUDGET_CAP),
            function_timeout,
        }
    }

    /// From `config` and `./host.json`.
    pub fn load(config: &Config) -> ReplicateBudgets {
        let host_json = std::fs::read_to_string("host.json").ok();
        ReplicateBudgets::new(config.replicate_budget, host_json.as_deref())
    }
}

/// A host.json timespan `[d.]hh:mm:ss` (`-1`, unlimited, is `None`).
fn parse_timespan(s: &str) -> Option<Duration> {
    let (days, rest) = match s.split_once('.') {
        Some((d, r)) if !d.contains(':') => (d.parse::<u64>().ok()?, r),
        _ => (0, s),
    };
    let parts: Vec<u64> = rest
        .split(':')
        .map(|p| p.split('.').next().unwrap_or(p).parse::<u64>().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = parts.as_slice() else {
        return None;
    };
    Some(Duration::from_secs(days * 86_400 + h * 3600 + m * 60 + sec))
}

/// The app's storage as the handlers use it: the `datashare-dr` blob container and the queue
/// service (`failover-stages`, `notifications`, …).
///
/// Decision (documented in docs/CONTRACTS.md terms): in Azure, and for `serve` in general,
/// storage is always configured (`Config::require_serve` insists), so this is Azure Storage
/// (`store::azure`, Azurite locally). An `AppState` built in-process without storage settings
/// (tests, the offline drill) gets the in-memory twins (`store::memory`) instead, which keep the
/// same semantics for the life of the process.
#[derive(Clone)]
pub struct AppStorage {
    pub blobs: Arc<dyn crate::store::BlobStore>,
    pub queue: Arc<dyn crate::store::Queue>,
    /// `"azure"` or `"memory"`.
    pub kind: &'static str,
}

impl std::fmt::Debug for AppStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppStorage")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl AppStorage {
    /// In-process stores (no persistence beyond the process).
    pub fn memory() -> AppStorage {
        AppStorage {
            blobs: Arc::new(crate::store::MemoryBlobStore::new()),
            queue: Arc::new(crate::store::MemoryQueue::new()),
            kind: "memory",
        }
    }
}

/// The storage settings the `store` layer takes, from the runtime [`Config`]'s parsed form.
pub fn store_settings(
    settings: &crate::config::StorageSettings,
) -> Result<crate::store::StorageSettings, crate::store::StoreError> {
    use crate::config::StorageSettings as S;
    match settings {
        S::Identity(i) => crate::store::StorageSettings::identity(
            i.blob_service_uri.as_str(),
            i.queue_service_uri.as_str(),
            i.client_id.as_deref(),
        ),
        S::ConnectionString(c) => {
            let mut conn = format!(
                "BlobEndpoint={};QueueEndpoint={};AccountName={}",
                c.blob_endpoint, c.queue_endpoint, c.account_name
            );
            if let Some(key) = &c.account_key {
                conn.push_str(";AccountKey=");
                conn.push_str(key.expose());
            }
            if let Some(sas) = &c.sas {
                conn.push_str(";SharedAccessSignature=");
                conn.push_str(sas.expose());
            }
            crate::store::StorageSettings::from_connection_string(&conn)
        }
    }
}

impl AppState {
    pub fn new(config: Config, dr: Option<DrConfig>) -> AppState {
        AppState {
            budgets: ReplicateBudgets::load(&config),
            config,
            dr: dr.map(Arc::new),
            arm: tokio::sync::OnceCell::new(),
            storage: tokio::sync::OnceCell::new(),
            http: std::sync::OnceLock::new(),
            alert_keys: Default::default(),
        }
    }

    /// Uses `storage` instead of what the config names (tests inject isolated stores).
    pub fn with_storage(self, storage: AppStorage) -> AppState {
        AppState {
            storage: tokio::sync::OnceCell::new_with(Some(storage)),
            ..self
        }
    }

    /// The shared ARM client (built once from `[arm]`, `ARM_ENDPOINT`/`ARM_AUTH` and the
    /// `AZURE_*` settings through `config::arm`). A configuration that cannot give a client is
    /// a permanent error (retrying does not fix it).
    pub async fn arm(&self) -> Result<&crate::arm::client::ArmClient, HandlerError> {
        let dr = self.dr()?;
        self.arm
            .get_or_try_init(|| async {
                crate::config::arm::arm_client(dr, &self.config)
                    .map_err(|e| HandlerError::permanent("build the ARM client", e))
            })
            .await
    }

    /// The app's storage, connected (and the container created) on first use; the in-memory
    /// twins when no storage is configured (see [`AppStorage`]). Failing to reach storage is
    /// transient (the next call tries again).
    pub async fn storage(&self) -> Result<&AppStorage, HandlerError> {
        self.storage
            .get_or_try_init(|| async {
                let Some(settings) = &self.config.storage else {
                    return Ok(AppStorage::memory());
                };
                let settings = store_settings(settings)
                    .map_err(|e| HandlerError::permanent("read the storage settings", e))?;
                let (blobs, queue) = crate::store::azure::connect(
                    &settings,
                    crate::store::CONTAINER,
                    crate::store::MessageEncoding::None,
                )
                .map_err(|e| HandlerError::permanent("connect to storage", e))?;
                crate::store::BlobStore::ensure_container(&blobs)
                    .await
                    .map_err(|e| HandlerError::transient("create the blob container", e))?;
                Ok(AppStorage {
                    blobs: Arc::new(blobs),
                    queue: Arc::new(queue),
                    kind: "azure",
                })
            })
            .await
    }

    /// A plain HTTP client for outbound webhooks (no proxy from env, 10 s timeout).
    pub fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            install_crypto_provider();
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default()
        })
    }

    /// The DR topology, or a transient error naming `DR_CONFIG_PATH` when it was not loaded.
    pub fn dr(&self) -> Result<&DrConfig, HandlerError> {
        self.dr.as_deref().ok_or_else(|| {
            HandlerError::transient(
                "load the DR config",
                ConfigError::Missing {
                    key: crate::config::KEY_DR_CONFIG_PATH,
                    hint: "path of the DR topology TOML (see docs/config.md)",
                },
            )
        })
    }
}

/// Errors that stop `serve` before it serves.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A runtime setting is missing or invalid (names the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The DR config file does not load (names the key path and line).
    #[error("DR_CONFIG_PATH {path}: {source}")]
    LoadDrConfig {
        path: String,
        #[source]
        source: DrConfigError,
    },
    /// The port could not be bound.
    #[error("cannot listen on {addr} (FUNCTIONS_CUSTOMHANDLER_PORT): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an IO error.
    #[error("serving on port {port} failed: {source}")]
    Serve {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Installs rustls' ring crypto provider as the process default (idempotent; "already
/// installed" is fine). reqwest is built with `rustls-no-provider`, so this must run before the
/// first TLS client is built.
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// The bound, not yet serving, custom handler.
pub struct App {
    listener: TcpListener,
    port: u16,
    state: Arc<AppState>,
}

impl App {
    /// Loads the DR config (when `DR_CONFIG_PATH` is set) and binds `127.0.0.1:<config.port>`.
    /// Fails with an error naming `FUNCTIONS_CUSTOMHANDLER_PORT` when the port is unset.
    pub async fn build(config: Config) -> Result<App, StartupError> {
        install_crypto_provider();
        let port = config.port.ok_or(ConfigError::Missing {
            key: crate::config::KEY_PORT,
            hint: "the Functions host sets it when it starts the custom handler",
        })?;
        let dr = match &config.dr_config_path {
            None => None,
            Some(path) => {
                Some(
                    DrConfig::load(path).map_err(|source| StartupError::LoadDrConfig {
                        path: path.display().to_string(),
                        source,
                    })?,
                )
            }
        };
        Self::build_with_state(AppState::new(config, dr), port).await
    }

    /// Binds with a prepared state (tests that inject a DR config built in memory).
    pub async fn build_with_state(state: AppState, port: u16) -> Result<App, StartupError> {
        install_crypto_provider();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?
            .port();
        Ok(App {
            listener,
            port,
            state: Arc::new(state),
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM or Ctrl-C, then drains in-flight invocations.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then drains in-flight invocations.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let port = self.port;
        tracing::info!(port, "custom handler listening on 127.0.0.1");
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| StartupError::Serve { port, source })?;
        tracing::info!(port, "custom handler stopped");
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight invocations");
}

/// Routes one function to its handler: decode the typed trigger, call
/// `handlers::<module>::handle(&state, trigger)`, encode.
macro_rules! function_route {
    ($router:expr, $module:ident, $trigger:ty) => {
        $router.route(
            &format!("/{}", handlers::$module::NAME),
            post(
                |State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body| async move {
                    let name = handlers::$module::NAME;
                    let (span, trigger, invocation_id) =
                        match prepare::<$trigger>(name, &headers, body).await {
                            Ok(prepared) => prepared,
                            Err(answer) => return answer,
                        };
                    async move {
                        let started = Instant::now();
                        let result = handlers::$module::handle(&state, trigger).await;
                        finish(
                            <$trigger as Trigger>::KIND,
                            name,
                            invocation_id.as_deref(),
                            started,
                            result,
                        )
                    }
                    .instrument(span)
                    .await
                },
            ),
        )
    };
}

/// The router: `GET /` readiness, `POST /<FunctionName>` per function, JSON 404 otherwise.
pub fn router(state: Arc<AppState>) -> Router {
    use crate::handlers::failover_stage::StageMessage;
    use crate::host::{HttpRequest, MessageText, QueueTrigger, TimerTrigger};

    let r = Router::new().route("/", get(ready));
    let r = function_route!(r, replicate_config, TimerTrigger);
    let r = function_route!(r, replicate_now, HttpRequest);
    let r = function_route!(
        r,
        replicate_pair,
        QueueTrigger<crate::reconcile::job::PairMessage>
    );
    let r = function_route!(r, check_readiness, TimerTrigger);
    let r = function_route!(r, readiness_status, HttpRequest);
    let r = function_route!(r, alert_webhook, HttpRequest);
    let r = function_route!(r, start_failover, HttpRequest);
    let r = function_route!(r, failover_run, HttpRequest);
    let r = function_route!(r, reset_pair_state, HttpRequest);
    let r = function_route!(r, failover_stage, QueueTrigger<StageMessage>);
    let r = function_route!(r, failover_poison, QueueTrigger<MessageText>);
    let r = function_route!(r, notify, QueueTrigger<MessageText>);
    let r = function_route!(r, run_watchdog, TimerTrigger);
    r.fallback(unknown_function).with_state(state)
}

async fn ready() -> StatusCode {
    StatusCode::OK
}

async fn unknown_function(uri: axum::http::Uri) -> Response {
    let name: String = uri
        .path()
        .trim_start_matches('/')
        .chars()
        .take(128)
        .collect();
    let mut p = Problem::new(
        404,
        "not found",
        format!("no function named `{name}` (functions are served at POST /<FunctionName>)"),
    );
    p.function = Some(name);
    json_response(HostAnswer::problem(&p))
}

fn json_response(answer: HostAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if answer.status < 300 {
        "application/json; charset=utf-8"
    } else {
        "application/problem+json"
    };
    let mut response = (status, answer.body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Reads and decodes one invocation; on failure returns the 4xx answer (logged once).
async fn prepare<T: Trigger>(
    name: &'static str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Span, T, Option<String>), Response> {
    let invocation_id = headers
        .get(INVOCATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(64).collect::<String>());
    let span = tracing::info_span!(
        "invocation",
        function = name,
        invocation_id = invocation_id.as_deref().unwrap_or(""),
        dequeue_count = field::Empty,
        run_id = field::Empty,
        stage = field::Empty,
    );
    let refuse = |err: PayloadError| {
        let _entered = span.enter();
        tracing::warn!(field = err.path(), error = %err, "invocation payload refused");
        let mut p = Problem::new(err.status(), "invalid invocation payload", err.to_string());
        p.field = Some(err.path().to_owned());
        p.function = Some(name.to_owned());
        p.invocation_id = invocation_id.clone();
        json_response(HostAnswer::problem(&p))
    };
    let bytes = match axum::body::to_bytes(body, ENVELOPE_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return Err(refuse(PayloadError::TooLarge {
                path: "$".into(),
                size: ENVELOPE_LIMIT + 1,
                limit: ENVELOPE_LIMIT,
            }));
        }
    };
    let binding = FUNCTIONS
        .iter()
        .find(|f| f.name == name)
        .map_or("", |f| f.binding);
    let decoded = InvocationRequest::from_slice(&bytes, invocation_id.clone())
        .and_then(|req| T::decode(&req, binding));
    match decoded {
        Ok(trigger) => {
            if let Some(n) = trigger.dequeue_count() {
                span.record("dequeue_count", n);
            }
            Ok((span, trigger, invocation_id))
        }
        Err(err) => Err(refuse(err)),
    }
}

/// Encodes the handler's result and logs the outcome once (inside the invocation span).
fn finish(
    kind: crate::host::TriggerKind,
    name: &str,
    invocation_id: Option<&str>,
    started: Instant,
    result: Result<crate::host::InvocationResponse, HandlerError>,
) -> Response {
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let answer = match result {
        Ok(response) => {
            tracing::info!(status = 200, elapsed_ms, "invocation succeeded");
            HostAnswer::ok(&response)
        }
        Err(err) => {
            let chain = error_chain(&err);
            let transient = err.is_transient();
            let answer = err.into_host_answer(kind, name, invocation_id);
            if transient {
                tracing::warn!(status = answer.status, elapsed_ms, error = %chain, "invocation failed (transient)");
            } else {
                tracing::error!(status = answer.status, elapsed_ms, error = %chain, "invocation failed");
            }
            answer
        }
    };
    json_response(answer)
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn the_pass_budget_is_80_percent_of_the_function_timeout_and_the_http_one_is_capped() {
        let b = ReplicateBudgets::new(None, Some(r#"{"functionTimeout": "00:10:00"}"#));
        assert_eq!(b.function_timeout, Duration::from_secs(600));
        assert_eq!(b.pass, Duration::from_secs(480));
        assert_eq!(b.http, HTTP_BUDGET_CAP);
        let b = ReplicateBudgets::new(None, None);
        assert_eq!(b.function_timeout, DEFAULT_FUNCTION_TIMEOUT);
        assert_eq!(b.pass, Duration::from_secs(240));
    }

    #[test]
    fn the_setting_wins_but_never_reaches_the_function_timeout() {
        let host = Some(r#"{"functionTimeout": "00:05:00"}"#);
        let b = ReplicateBudgets::new(Some(Duration::from_secs(3)), host);
        assert_eq!(
            (b.pass, b.http),
            (Duration::from_secs(3), Duration::from_secs(3))
        );
        let b = ReplicateBudgets::new(Some(Duration::from_secs(9999)), host);
        assert_eq!(b.pass, Duration::from_secs(270));
        assert_eq!(
            parse_timespan("1.00:00:30"),
            Some(Duration::from_secs(86_430))
        );
        assert_eq!(parse_timespan("-1"), None);
    }
}
