//! A test stand-in for the Azure Functions host (which cannot run here), driven by the app's real
//! `host.json` and `function.json` files and talking to the handler in payload mode exactly as
//! `docs/reference/functions-custom-handler.md` describes:
//!
//! - requests: `POST /<FunctionName>`, `Content-Type: application/json; charset=utf-8`,
//!   `X-Azure-Functions-InvocationId`, `X-Azure-Functions-HostVersion`, a host `User-Agent`, and a
//!   **chunked** body (no Content-Length), envelope `{"Data":…,"Metadata":…}` with the host's
//!   value encoding (strings/numbers double-encoded, top-level dates without fractions, objects
//!   inline, `sys` metadata) — §5;
//! - timers fired on demand (§5.5), HTTP calls routed by `route`/`methods` with `Headers` as
//!   arrays, `Query`, `Params`, `Identities`, `Body` only when non-empty, base64 for binary
//!   content types (§5.6), optional function-key enforcement (401 before the handler, §10);
//! - responses: non-2xx, non-JSON content type, unparsable or non-object JSON fail the invocation
//!   (§6.1/6.2); `Outputs` of queue bindings become queue messages with base64 sniffing, array
//!   fan-out and indented JSON objects (§6.3) written to Azurite with host.json's
//!   `messageEncoding`; `res` becomes the HTTP answer (§6.4), a failed HTTP invocation is a 500;
//! - the queue trigger loop (§8): receive, deliver with the message's dequeue count, delete on
//!   success, reset visibility to `visibilityTimeout` on failure, copy to `<queue>-poison` and
//!   delete once `DequeueCount >= maxDequeueCount`, undecodable messages straight to poison;
//!   bounded by invocation count and wall time.
//!
//! Imports only the store from the crate (for Azurite access).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use datashare_dr::store::{AzureQueue, MessageEncoding, Queue, ReceivedMessage, StorageSettings};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Host version announced in headers (the reference baseline).
pub const HOST_VERSION: &str = "4.1037.0";
/// How long the host keeps a message it is processing invisible (the "peek lock", §8).
const PEEK_LOCK: Duration = Duration::from_secs(600);
/// Upper bound on any response body read from the handler.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

type Error = Box<dyn std::error::Error + Send + Sync>;
/// A matched HTTP function and its route parameters (`None` = empty optional parameter).
type Routed = (FunctionDef, Vec<(String, Option<String>)>);
/// A raw HTTP answer: status, lower-cased headers, body.
type RawAnswer = (u16, HashMap<String, String>, Vec<u8>);

fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}

// ----------------------------------------------------------------------------------------------
// host.json / function.json

/// The host.json settings the emulator honours.
#[derive(Clone, Debug)]
pub struct HostSettings {
    pub max_dequeue_count: u32,
    pub visibility_timeout: Duration,
    pub batch_size: u32,
    pub message_encoding: MessageEncoding,
    pub function_timeout: Duration,
    pub route_prefix: String,
}

impl HostSettings {
    /// Reads host.json with the host's defaults for missing keys (§8 table).
    pub fn parse(host_json: &str) -> Result<Self, Error> {
        let doc: Value =
            serde_json::from_str(host_json).map_err(|e| err(format!("host.json: {e}")))?;
        if doc.get("version").and_then(Value::as_str) != Some("2.0") {
            return Err(err("host.json: \"version\" must be \"2.0\""));
        }
        let queues = doc
            .pointer("/extensions/queues")
            .cloned()
            .unwrap_or(Value::Null);
        let max_dequeue_count = match queues.get("maxDequeueCount") {
            None => 5,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    err("host.json: extensions.queues.maxDequeueCount must be a positive integer")
                })?,
        };
        let visibility_timeout = match queues.get("visibilityTimeout").and_then(Value::as_str) {
            None => Duration::ZERO,
            Some(s) => parse_timespan(s)?,
        };
        let batch_size = queues
            .get("batchSize")
            .and_then(Value::as_u64)
            .map(|n| n.clamp(1, 32) as u32)
            .unwrap_or(16);
        let message_encoding = MessageEncoding::from_host_json(host_json)
            .map_err(|e| err(format!("host.json: {e}")))?;
        let function_timeout = match doc.get("functionTimeout").and_then(Value::as_str) {
            None | Some("-1") => Duration::from_secs(30 * 60),
            Some(s) => parse_timespan(s)?,
        };
        let route_prefix = doc
            .pointer("/extensions/http/routePrefix")
            .and_then(Value::as_str)
            .unwrap_or("api")
            .trim_matches('/')
            .to_owned();
        Ok(Self {
            max_dequeue_count,
            visibility_timeout,
            batch_size,
            message_encoding,
            function_timeout,
            route_prefix,
        })
    }
}

/// Parses a .NET TimeSpan `[d.]hh:mm:ss[.fff]`.
pub fn parse_timespan(s: &str) -> Result<Duration, Error> {
    let bad = || err(format!("not a hh:mm:ss timespan: {s:?}"));
    let (days, rest) = match s.split_once('.') {
        Some((d, r)) if r.contains(':') && !d.contains(':') => {
            (d.parse::<u64>().map_err(|_| bad())?, r)
        }
        _ => (0, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let h: u64 = parts[0].parse().map_err(|_| bad())?;
    let m: u64 = parts[1].parse().map_err(|_| bad())?;
    let secs: f64 = parts[2].parse().map_err(|_| bad())?;
    if m >= 60 || !(0.0..60.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs((days * 24 + h) * 3600 + m * 60) + Duration::from_secs_f64(secs))
}

/// One binding of a function.json.
#[derive(Clone, Debug)]
pub struct Binding {
    pub name: String,
    pub kind: String,
    pub direction: String,
    pub raw: Value,
}

impl Binding {
    fn str(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(Value::as_str)
    }
}

/// A function: its folder name and bindings.
#[derive(Clone, Debug)]
pub struct FunctionDef {
    pub name: String,
    pub bindings: Vec<Binding>,
}

impl FunctionDef {
    /// Parses a function.json text for the function named by its folder.
    pub fn parse(name: &str, text: &str) -> Result<Self, Error> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| err(format!("{name}/function.json: {e}")))?;
        let list = doc
            .get("bindings")
            .and_then(Value::as_array)
            .ok_or_else(|| err(format!("{name}/function.json: no \"bindings\" array")))?;
        let mut bindings = Vec::new();
        for b in list {
            let field = |k: &str| {
                b.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| err(format!("{name}/function.json: a binding has no \"{k}\"")))
            };
            bindings.push(Binding {
                name: field("name")?,
                kind: field("type")?,
                direction: field("direction")?,
                raw: b.clone(),
            });
        }
        let triggers = bindings
            .iter()
            .filter(|b| b.kind.ends_with("Trigger"))
            .count();
        if triggers != 1 {
            return Err(err(format!(
                "{name}/function.json: expected exactly one trigger, found {triggers}"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            bindings,
        })
    }

    /// The trigger binding.
    pub fn trigger(&self) -> &Binding {
        // `parse` guarantees exactly one.
        self.bindings
            .iter()
            .find(|b| b.kind.ends_with("Trigger"))
            .unwrap_or(&self.bindings[0])
    }
}

// ----------------------------------------------------------------------------------------------
// results

/// What an HTTP caller receives.
#[derive(Clone, Debug)]
pub struct HttpResult {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl HttpResult {
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One invocation of the handler and what the host made of it.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub function: String,
    pub invocation_id: String,
    /// The request envelope sent (for assertions on the wire format).
    pub request: Value,
    /// HTTP status the handler answered (`None`: no answer — connection failure or timeout).
    pub handler_status: Option<u16>,
    /// Whether the host counts the invocation as successful (2xx + valid JSON object body + valid
    /// outputs, and the outputs were written).
    pub succeeded: bool,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// The parsed response body.
    pub response: Option<Value>,
    /// `Logs` of a successful response.
    pub logs: Vec<String>,
    /// Queue messages written from `Outputs`: (queue, text).
    pub enqueued: Vec<(String, String)>,
    /// For HTTP functions: what the caller got.
    pub http: Option<HttpResult>,
}

/// What happened to one queue message in [`HostEmulator::pump_queue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Handler succeeded; outputs written; message deleted.
    Completed,
    /// Handler failed; message will reappear after `visibilityTimeout`.
    Retrying,
    /// Moved to `<queue>-poison` (after `maxDequeueCount` failed attempts, or undecodable).
    Poisoned,
    /// Failed on a queue without a poison queue: left invisible until the peek lock lapses.
    Abandoned,
}

/// One delivery of a queue message.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub message_id: String,
    pub dequeue_count: u32,
    pub text: String,
    pub disposition: Disposition,
    /// `None` when the message was poisoned without an invocation.
    pub invocation: Option<Invocation>,
}

/// The record of a [`HostEmulator::pump_queue`] run.
#[derive(Clone, Debug, Default)]
pub struct PumpReport {
    pub deliveries: Vec<Delivery>,
    /// The pump stopped because the time budget ran out (not because `until` held).
    pub timed_out: bool,
    /// The pump stopped because the invocation limit was reached.
    pub hit_limit: bool,
}

impl PumpReport {
    pub fn count(&self, d: Disposition) -> usize {
        self.deliveries
            .iter()
            .filter(|x| x.disposition == d)
            .count()
    }
    pub fn invocations(&self) -> usize {
        self.deliveries
            .iter()
            .filter(|x| x.invocation.is_some())
            .count()
    }
}

/// When [`HostEmulator::pump_queue`] stops (besides `max_invocations` and `timeout`).
pub enum Until {
    /// After `n` messages completed successfully.
    Completed(usize),
    /// After the queue has had no visible message for this long.
    Idle(Duration),
    /// When the predicate holds (checked after every batch and every empty poll).
    Predicate(Box<dyn FnMut(&PumpReport) -> bool + Send>),
}

/// Options of a pump run.
pub struct Pump {
    pub until: Until,
    pub max_invocations: usize,
    pub timeout: Duration,
    /// Pause between empty polls.
    pub poll_interval: Duration,
}

impl Pump {
    /// Stop when the queue has been idle for `idle`, at most `max_invocations`, within `timeout`.
    pub fn until_idle(idle: Duration, max_invocations: usize, timeout: Duration) -> Self {
        Self {
            until: Until::Idle(idle),
            max_invocations,
            timeout,
            poll_interval: Duration::from_millis(100),
        }
    }
    /// Stop after `n` completions.
    pub fn until_completed(n: usize, max_invocations: usize, timeout: Duration) -> Self {
        Self {
            until: Until::Completed(n),
            max_invocations,
            timeout,
            poll_interval: Duration::from_millis(100),
        }
    }
    /// Stop when `pred` holds.
    pub fn until(
        pred: impl FnMut(&PumpReport) -> bool + Send + 'static,
        max_invocations: usize,
        timeout: Duration,
    ) -> Self {
        Self {
            until: Until::Predicate(Box::new(pred)),
            max_invocations,
            timeout,
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// Options of a timer firing.
#[derive(Clone, Debug, Default)]
pub struct TimerFire {
    pub is_past_due: bool,
    /// Force `ScheduleStatus: null` even when `useMonitor` is on.
    pub no_schedule_status: bool,
}

// ----------------------------------------------------------------------------------------------
// emulator

/// The emulated Functions host. Cheap to clone (shared state).
#[derive(Clone)]
pub struct HostEmulator {
    inner: Arc<Inner>,
}

struct Inner {
    handler: String,
    host: HostSettings,
    functions: BTreeMap<String, FunctionDef>,
    queue: AzureQueue,
    settings: HashMap<String, String>,
    /// `(name, value)` of every function key the host accepts; empty = keys not enforced.
    function_keys: Vec<(String, String)>,
    alert_token: bool,
    queue_alias: HashMap<String, String>,
    last_timer_fire: Mutex<HashMap<String, OffsetDateTime>>,
}

/// Builder for [`HostEmulator`].
pub struct HostEmulatorBuilder {
    app_root: PathBuf,
    handler: String,
    storage: StorageSettings,
    settings: HashMap<String, String>,
    function_keys: Vec<(String, String)>,
    alert_token: bool,
    queue_alias: HashMap<String, String>,
    visibility_timeout: Option<Duration>,
    max_dequeue_count: Option<u32>,
    function_timeout: Option<Duration>,
}

impl HostEmulatorBuilder {
    /// An app setting for `%NAME%` expansion (falls back to the process environment).
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.insert(name.to_owned(), value.to_owned());
        self
    }
    /// Enforce function keys: HTTP functions with `authLevel` function/admin answer 401 without
    /// calling the handler unless `x-functions-key` or `?code=` carries this key.
    /// The key is the host's `default` function key (its name in `Identities`).
    pub fn function_key(self, key: &str) -> Self {
        self.named_function_key("default", key)
    }
    /// Enforce function keys and accept one more, named `name`: a call that presents it
    /// carries the host's `WebJobsAuthLevel` identity with `…/claims/keyid` = `name` in
    /// `Identities` (reference §5.6; `AuthenticationLevelHandler` in the host source).
    pub fn named_function_key(mut self, name: &str, key: &str) -> Self {
        self.function_keys.push((name.to_owned(), key.to_owned()));
        self
    }
    /// Whether requests to `AlertWebhook` without an `Authorization` header get a valid
    /// secure-webhook token from the test issuer (`support::alert_token`; default true, as
    /// Azure Monitor's secure webhook does). `false` for rejection tests.
    pub fn alert_token(mut self, on: bool) -> Self {
        self.alert_token = on;
        self
    }
    /// Use `actual` wherever a function.json names queue `declared` (isolates parallel tests).
    pub fn queue_alias(mut self, declared: &str, actual: &str) -> Self {
        self.queue_alias
            .insert(declared.to_owned(), actual.to_owned());
        self
    }
    /// Override host.json `visibilityTimeout` (tests should not wait 30 s per retry).
    pub fn visibility_timeout(mut self, d: Duration) -> Self {
        self.visibility_timeout = Some(d);
        self
    }
    /// Override host.json `maxDequeueCount`.
    pub fn max_dequeue_count(mut self, n: u32) -> Self {
        self.max_dequeue_count = Some(n);
        self
    }
    /// Override host.json `functionTimeout` (per-invocation wait for the handler).
    pub fn function_timeout(mut self, d: Duration) -> Self {
        self.function_timeout = Some(d);
        self
    }

    /// Reads host.json and every `function.json` (under `functions/<Name>/` or, packaged,
    /// `<Name>/` next to host.json).
    pub fn build(self) -> Result<HostEmulator, Error> {
        let host_text = std::fs::read_to_string(self.app_root.join("host.json"))
            .map_err(|e| err(format!("{}/host.json: {e}", self.app_root.display())))?;
        let mut host = HostSettings::parse(&host_text)?;
        if let Some(v) = self.visibility_timeout {
            host.visibility_timeout = v;
        }
        if let Some(n) = self.max_dequeue_count {
            host.max_dequeue_count = n;
        }
        if let Some(d) = self.function_timeout {
            host.function_timeout = d;
        }
        let functions = load_functions(&self.app_root)?;
        let queue = AzureQueue::new(&self.storage, host.message_encoding)
            .map_err(|e| err(format!("queue client: {e}")))?;
        Ok(HostEmulator {
            inner: Arc::new(Inner {
                handler: self.handler.trim_end_matches('/').to_owned(),
                host,
                functions,
                queue,
                settings: self.settings,
                function_keys: self.function_keys,
                alert_token: self.alert_token,
                queue_alias: self.queue_alias,
                last_timer_fire: Mutex::new(HashMap::new()),
            }),
        })
    }
}

fn load_functions(root: &Path) -> Result<BTreeMap<String, FunctionDef>, Error> {
    let dir = if root.join("functions").is_dir() {
        root.join("functions")
    } else {
        root.to_path_buf()
    };
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| err(format!("{}: {e}", dir.display())))?;
        let path = entry.path().join("function.json");
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let text =
            std::fs::read_to_string(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        out.insert(name.clone(), FunctionDef::parse(&name, &text)?);
    }
    Ok(out)
}

impl HostEmulator {
    /// Starts building an emulator for the app at `app_root` (repo root or packaged app),
    /// calling the handler at `handler_base_url` (`http://127.0.0.1:PORT`) and using the storage
    /// account of `storage` (Azurite) for queue triggers and outputs.
    pub fn builder(
        app_root: impl Into<PathBuf>,
        handler_base_url: &str,
        storage: &StorageSettings,
    ) -> HostEmulatorBuilder {
        HostEmulatorBuilder {
            app_root: app_root.into(),
            handler: handler_base_url.to_owned(),
            storage: storage.clone(),
            settings: HashMap::new(),
            function_keys: Vec::new(),
            alert_token: true,
            queue_alias: HashMap::new(),
            visibility_timeout: None,
            max_dequeue_count: None,
            function_timeout: None,
        }
    }

    /// Builder for the repository's own host.json and functions/.
    pub fn for_repo(handler_base_url: &str, storage: &StorageSettings) -> HostEmulatorBuilder {
        Self::builder(env!("CARGO_MANIFEST_DIR"), handler_base_url, storage)
    }

    pub fn host_settings(&self) -> &HostSettings {
        &self.inner.host
    }
    pub fn functions(&self) -> &BTreeMap<String, FunctionDef> {
        &self.inner.functions
    }
    /// The queue client the emulator uses (host.json's encoding), e.g. to seed or inspect queues.
    pub fn queue(&self) -> &AzureQueue {
        &self.inner.queue
    }

    fn function(&self, name: &str) -> Result<&FunctionDef, Error> {
        self.inner.functions.get(name).ok_or_else(|| {
            err(format!(
                "no function {name:?} (have: {:?})",
                self.inner.functions.keys().collect::<Vec<_>>()
            ))
        })
    }

    /// Expands `%NAME%` from the emulator's settings or the environment.
    fn expand(&self, value: &str) -> Result<String, Error> {
        let mut out = String::new();
        let mut rest = value;
        while let Some(start) = rest.find('%') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('%') else { break };
            let key = &after[..end];
            let v = self
                .inner
                .settings
                .get(key)
                .cloned()
                .or_else(|| std::env::var(key).ok())
                .ok_or_else(|| err(format!("app setting {key} (used as %{key}%) is not set")))?;
            out.push_str(&rest[..start]);
            out.push_str(&v);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The actual queue name for a binding's `queueName`.
    pub fn queue_name_of(&self, binding: &Binding) -> Result<String, Error> {
        let declared = binding
            .str("queueName")
            .ok_or_else(|| err(format!("binding {} has no queueName", binding.name)))?;
        let name = self.expand(declared)?.to_ascii_lowercase();
        Ok(self.inner.queue_alias.get(&name).cloned().unwrap_or(name))
    }

    /// The queue a queue-triggered function listens on.
    pub fn trigger_queue(&self, function: &str) -> Result<String, Error> {
        let f = self.function(function)?;
        let t = f.trigger();
        if t.kind != "queueTrigger" {
            return Err(err(format!(
                "{function} is not queue-triggered ({})",
                t.kind
            )));
        }
        self.queue_name_of(t)
    }

    // ------------------------------------------------------------------------------------------
    // timer

    /// Fires a timer-triggered function once, as the host does on schedule (§5.5): timers are
    /// not retried, so the result is just reported.
    pub async fn fire_timer(&self, function: &str) -> Result<Invocation, Error> {
        self.fire_timer_with(function, TimerFire::default()).await
    }

    pub async fn fire_timer_with(
        &self,
        function: &str,
        opts: TimerFire,
    ) -> Result<Invocation, Error> {
        let f = self.function(function)?.clone();
        let t = f.trigger();
        if t.kind != "timerTrigger" {
            return Err(err(format!(
                "{function} is not timer-triggered ({})",
                t.kind
            )));
        }
        if let Some(schedule) = t.str("schedule") {
            self.expand(schedule)?; // an unset %SETTING% schedule fails host start-up
        }
        let now = OffsetDateTime::now_utc();
        let use_monitor = t
            .raw
            .get("useMonitor")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let status = if use_monitor && !opts.no_schedule_status {
            let last = self
                .inner
                .last_timer_fire
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(function.to_owned(), now);
            json!({
                "Last": last.map(nested_time).unwrap_or_else(|| "0001-01-01T00:00:00".to_owned()),
                "Next": nested_time(now + time::Duration::minutes(5)),
                "LastUpdated": nested_time(now),
            })
        } else {
            Value::Null
        };
        let mut data = Map::new();
        data.insert(
            t.name.clone(),
            json!({
                "Schedule": { "AdjustForDST": true },
                "ScheduleStatus": status,
                "IsPastDue": opts.is_past_due,
            }),
        );
        let mut metadata = Map::new();
        metadata.insert("sys".into(), sys(function, now));
        let envelope = json!({ "Data": data, "Metadata": metadata });
        Ok(self.invoke(&f, envelope).await)
    }

    // ------------------------------------------------------------------------------------------
    // http

    /// Calls an HTTP function by name on its route with no route parameters (optional ones
    /// empty). Use [`Self::request`] for routes with parameters or a query.
    pub async fn http(
        &self,
        method: &str,
        function: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResult, Error> {
        let f = self.function(function)?;
        let route = f
            .trigger()
            .str("route")
            .map(str::to_owned)
            .unwrap_or_else(|| function.to_owned());
        let mut path = Vec::new();
        for seg in route.split('/').filter(|s| !s.is_empty()) {
            if seg.starts_with('{') {
                if !seg.ends_with("?}") {
                    return Err(err(format!(
                        "route {route} of {function} needs parameter {seg}; use request()"
                    )));
                }
            } else {
                path.push(seg);
            }
        }
        let prefix = &self.inner.host.route_prefix;
        let url = if prefix.is_empty() {
            format!("/{}", path.join("/"))
        } else {
            format!("/{prefix}/{}", path.join("/"))
        };
        self.request(method, &url, headers, body).await
    }

    /// Sends an HTTP request to the function app the way a client would (`/api/...?...`): the
    /// host routes it by the HTTP functions' `route`s and `methods`, checks the function key when
    /// enforcement is on, and invokes the handler in payload mode. Unknown routes answer 404.
    pub async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResult, Error> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let mut query_map: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                match query_map
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&k))
                {
                    Some((_, existing)) => {
                        existing.push(',');
                        existing.push_str(&v);
                    }
                    None => query_map.push((k.into_owned(), v.into_owned())),
                }
            }
        }
        let Some((f, params)) = self.route(method, path)? else {
            return Ok(HttpResult {
                status: 404,
                headers: BTreeMap::new(),
                body: String::new(),
            });
        };
        let trigger = f.trigger().clone();

        // Function keys (§10): checked by the host; the handler never sees a rejected call.
        let auth_level = trigger
            .str("authLevel")
            .unwrap_or("function")
            .to_ascii_lowercase();
        let presented = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-functions-key"))
            .map(|(_, v)| v.to_string())
            .or_else(|| {
                query_map
                    .iter()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.clone())
            });
        let key_name = presented.as_deref().and_then(|p| {
            self.inner
                .function_keys
                .iter()
                .find(|(_, value)| value == p)
                .map(|(name, _)| name.clone())
        });
        if !self.inner.function_keys.is_empty() && auth_level != "anonymous" && key_name.is_none() {
            return Ok(HttpResult {
                status: 401,
                headers: BTreeMap::new(),
                body: String::new(),
            });
        }

        let now = OffsetDateTime::now_utc();
        let mut header_arrays = Map::new();
        let mut header_flat = Map::new();
        let mut all_headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if self.inner.alert_token
            && f.name == "AlertWebhook"
            && !all_headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            all_headers.push(("Authorization".into(), super::alert_token::bearer()));
        }
        if !all_headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("host"))
        {
            all_headers.push(("Host".into(), "localhost:7071".into()));
        }
        if !body.is_empty()
            && !all_headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            all_headers.push(("Content-Length".into(), body.len().to_string()));
        }
        for (k, v) in &all_headers {
            let key = header_arrays
                .keys()
                .find(|existing| existing.eq_ignore_ascii_case(k))
                .cloned()
                .unwrap_or_else(|| k.clone());
            let entry = header_arrays
                .entry(key.clone())
                .or_insert_with(|| Value::Array(vec![]));
            if let Value::Array(a) = entry {
                a.push(Value::String(v.clone()));
            }
            let flat = header_flat
                .entry(key)
                .or_insert_with(|| Value::String(String::new()));
            if let Value::String(s) = flat {
                if !s.is_empty() {
                    s.push_str(", ");
                }
                s.push_str(v);
            }
        }
        let content_type = all_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_default();
        let query_obj: Map<String, Value> = query_map
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let params_obj: Map<String, Value> = params
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.clone().map(Value::String).unwrap_or(Value::Null),
                )
            })
            .collect();
        // The host's identities (AuthenticationLevelHandler): a validated key adds a
        // `WebJobsAuthLevel` identity naming the key; anything else is anonymous.
        let identity = if let Some(key_name) = &key_name {
            json!({
                "AuthenticationType": "WebJobsAuthLevel",
                "IsAuthenticated": true,
                "Actor": null, "BootstrapContext": null, "Label": null, "Name": null,
                "Claims": [
                    {"Type": "http://schemas.microsoft.com/2017/07/functions/claims/authlevel", "Value": "Function"},
                    {"Type": "http://schemas.microsoft.com/2017/07/functions/claims/keyid", "Value": key_name}
                ],
                "NameClaimType": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                "RoleClaimType": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
            })
        } else {
            json!({
                "AuthenticationType": null, "IsAuthenticated": false, "Actor": null,
                "BootstrapContext": null, "Claims": [], "Label": null, "Name": null,
                "NameClaimType": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                "RoleClaimType": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
            })
        };
        let mut req = Map::new();
        req.insert(
            "Url".into(),
            Value::String(format!("http://localhost:7071{path_and_query}")),
        );
        req.insert("Method".into(), Value::String(method.to_ascii_uppercase()));
        req.insert("Query".into(), Value::Object(query_obj.clone()));
        req.insert("Headers".into(), Value::Object(header_arrays));
        req.insert("Params".into(), Value::Object(params_obj));
        req.insert("Identities".into(), json!([identity]));
        if !body.is_empty() {
            let binary = content_type.starts_with("application/octet-stream")
                || content_type.starts_with("multipart/");
            let text = if binary {
                base64::engine::general_purpose::STANDARD.encode(body)
            } else {
                String::from_utf8_lossy(body).into_owned()
            };
            req.insert("Body".into(), Value::String(text));
        }
        let mut data = Map::new();
        data.insert(trigger.name.clone(), Value::Object(req));
        // Metadata: Query, flattened Headers, each query and route parameter, top-level JSON body
        // fields (string-encoded), sys (§5.6).
        let mut metadata = Map::new();
        if content_type.contains("json")
            && let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body)
        {
            for (k, v) in fields {
                if let Some(encoded) = binding_data_value(&v) {
                    insert_ci(&mut metadata, &k, encoded);
                }
            }
        }
        for (k, v) in &query_map {
            insert_ci(&mut metadata, k, Value::String(json_string(v)));
        }
        for (k, v) in &params {
            if let Some(v) = v {
                insert_ci(&mut metadata, k, Value::String(json_string(v)));
            }
        }
        metadata.insert("Query".into(), Value::Object(query_obj));
        metadata.insert("Headers".into(), Value::Object(header_flat));
        metadata.insert("sys".into(), sys(&f.name, now));
        let envelope = json!({ "Data": data, "Metadata": metadata });
        let inv = self.invoke(&f, envelope).await;
        Ok(inv.http.clone().unwrap_or(HttpResult {
            status: 500,
            headers: BTreeMap::new(),
            body: String::new(),
        }))
    }

    /// Finds the HTTP function whose route and methods match (the host's routing).
    fn route(&self, method: &str, path: &str) -> Result<Option<Routed>, Error> {
        let prefix = &self.inner.host.route_prefix;
        let path = path.trim_start_matches('/');
        let rest = if prefix.is_empty() {
            path
        } else {
            match path.strip_prefix(prefix.as_str()) {
                Some(r) if r.is_empty() || r.starts_with('/') => r.trim_start_matches('/'),
                _ => return Ok(None),
            }
        };
        let segments: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        for f in self.inner.functions.values() {
            let t = f.trigger();
            if t.kind != "httpTrigger" {
                continue;
            }
            let methods: Vec<String> = t
                .raw
                .get("methods")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default();
            if !methods.is_empty() && !methods.contains(&method.to_ascii_lowercase()) {
                continue;
            }
            let route = t
                .str("route")
                .map(str::to_owned)
                .unwrap_or_else(|| f.name.clone());
            if let Some(params) = match_route(&route, &segments) {
                return Ok(Some((f.clone(), params)));
            }
        }
        Ok(None)
    }

    // ------------------------------------------------------------------------------------------
    // queue trigger loop

    /// Runs the queue trigger of `function` (§8) until `pump.until` holds, `max_invocations`
    /// invocations happened, or `timeout` passed. Batches of `batchSize` are processed
    /// concurrently, like the host.
    pub async fn pump_queue(&self, function: &str, mut pump: Pump) -> Result<PumpReport, Error> {
        let f = self.function(function)?.clone();
        let queue = self.trigger_queue(function)?;
        let started = Instant::now();
        let mut report = PumpReport::default();
        let mut idle_since = Instant::now();
        loop {
            if let Until::Completed(n) = pump.until
                && report.count(Disposition::Completed) >= n
            {
                return Ok(report);
            }
            if let Until::Predicate(p) = &mut pump.until
                && p(&report)
            {
                return Ok(report);
            }
            if report.invocations() >= pump.max_invocations {
                report.hit_limit = true;
                return Ok(report);
            }
            if started.elapsed() >= pump.timeout {
                report.timed_out = true;
                return Ok(report);
            }
            let room = pump.max_invocations - report.invocations();
            let batch = self
                .inner
                .host
                .batch_size
                .min(u32::try_from(room).unwrap_or(u32::MAX))
                .max(1);
            let messages = match self.inner.queue.receive(&queue, batch, PEEK_LOCK).await {
                Ok(m) => m,
                Err(datashare_dr::store::StoreError::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(err(format!("receive from {queue}: {e:?}"))),
            };
            if messages.is_empty() {
                if let Until::Idle(idle) = pump.until
                    && idle_since.elapsed() >= idle
                {
                    return Ok(report);
                }
                tokio::time::sleep(pump.poll_interval).await;
                continue;
            }
            idle_since = Instant::now();
            let deliveries = futures::future::join_all(
                messages.into_iter().map(|m| self.deliver(&f, &queue, m)),
            )
            .await;
            for d in deliveries {
                report.deliveries.push(d?);
            }
        }
    }

    /// Processes one received message: invoke, then delete / retry later / poison.
    async fn deliver(
        &self,
        f: &FunctionDef,
        queue: &str,
        m: ReceivedMessage,
    ) -> Result<Delivery, Error> {
        let host = &self.inner.host;
        let q = &self.inner.queue;
        let poison_queue = format!("{queue}-poison");
        let has_poison = !queue.ends_with("-poison") && poison_queue.len() <= 63;
        let poison = |text: String| async move {
            if has_poison {
                q.send(&poison_queue, &text, None)
                    .await
                    .map_err(|e| err(format!("send to {poison_queue}: {e:?}")))?;
            }
            Ok::<(), Error>(())
        };
        // Undecodable (bad base64) or already past the limit: poison without invoking.
        if m.decoding_failed || m.dequeue_count > host.max_dequeue_count {
            let disposition = if has_poison {
                // Copy the stored text as-is (the host copies the raw message).
                let raw = m.text.clone();
                poison(raw).await?;
                q.delete(queue, &m.id, &m.pop_receipt)
                    .await
                    .map_err(|e| err(format!("{e:?}")))?;
                Disposition::Poisoned
            } else {
                Disposition::Abandoned
            };
            return Ok(Delivery {
                message_id: m.id,
                dequeue_count: m.dequeue_count,
                text: m.text,
                disposition,
                invocation: None,
            });
        }
        let envelope = queue_envelope(f, &m);
        let inv = self.invoke(f, envelope).await;
        let disposition = if inv.succeeded {
            q.delete(queue, &m.id, &m.pop_receipt)
                .await
                .map_err(|e| err(format!("delete {}: {e:?}", m.id)))?;
            Disposition::Completed
        } else if m.dequeue_count >= host.max_dequeue_count {
            if has_poison {
                poison(m.text.clone()).await?;
                q.delete(queue, &m.id, &m.pop_receipt)
                    .await
                    .map_err(|e| err(format!("delete {}: {e:?}", m.id)))?;
                Disposition::Poisoned
            } else {
                Disposition::Abandoned
            }
        } else {
            q.update_visibility(queue, &m.id, &m.pop_receipt, host.visibility_timeout)
                .await
                .map_err(|e| err(format!("update visibility {}: {e:?}", m.id)))?;
            Disposition::Retrying
        };
        Ok(Delivery {
            message_id: m.id,
            dequeue_count: m.dequeue_count,
            text: m.text,
            disposition,
            invocation: Some(inv),
        })
    }

    /// Enqueues a message on the queue of a queue-triggered function, as another producer would
    /// (encoded per host.json).
    pub async fn enqueue(
        &self,
        function: &str,
        text: &str,
        delay: Option<Duration>,
    ) -> Result<String, Error> {
        let queue = self.trigger_queue(function)?;
        self.inner
            .queue
            .send(&queue, text, delay)
            .await
            .map_err(|e| err(format!("send to {queue}: {e:?}")))
    }

    // ------------------------------------------------------------------------------------------
    // invocation

    /// POSTs an envelope to `/<FunctionName>` and applies the response as the host would.
    pub async fn invoke(&self, f: &FunctionDef, envelope: Value) -> Invocation {
        let invocation_id = uuid::Uuid::new_v4().to_string();
        let mut inv = Invocation {
            function: f.name.clone(),
            invocation_id: invocation_id.clone(),
            request: envelope.clone(),
            handler_status: None,
            succeeded: false,
            failure: None,
            response: None,
            logs: Vec::new(),
            enqueued: Vec::new(),
            http: None,
        };
        let is_http = f.trigger().kind == "httpTrigger";
        let body = match serde_json::to_vec(&envelope) {
            Ok(b) => b,
            Err(e) => {
                inv.failure = Some(format!("cannot serialise envelope: {e}"));
                return inv;
            }
        };
        let url = format!("{}/{}", self.inner.handler, f.name);
        let answer = tokio::time::timeout(
            self.inner.host.function_timeout,
            post_chunked(&url, &invocation_id, &body),
        )
        .await;
        let fail_http = |inv: &mut Invocation, why: String| {
            inv.failure = Some(why);
            if is_http {
                inv.http = Some(HttpResult {
                    status: 500,
                    headers: BTreeMap::new(),
                    body: String::new(),
                });
            }
        };
        let (status, headers, resp_body) = match answer {
            Err(_) => {
                fail_http(
                    &mut inv,
                    format!(
                        "timed out after {:?} (functionTimeout)",
                        self.inner.host.function_timeout
                    ),
                );
                return inv;
            }
            Ok(Err(e)) => {
                fail_http(&mut inv, format!("handler unreachable: {e}"));
                return inv;
            }
            Ok(Ok(r)) => r,
        };
        inv.handler_status = Some(status);
        if !(200..300).contains(&status) {
            fail_http(&mut inv, format!("handler answered {status}"));
            return inv;
        }
        let ct = headers
            .get("content-type")
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default();
        let media = ct.split(';').next().unwrap_or("").trim().to_owned();
        if media != "application/json" && media != "text/json" {
            fail_http(
                &mut inv,
                format!("response content type {ct:?} is not JSON (UnsupportedMediaType)"),
            );
            return inv;
        }
        let parsed: Value = match serde_json::from_slice(&resp_body) {
            Ok(v) => v,
            Err(e) => {
                fail_http(&mut inv, format!("response body is not JSON: {e}"));
                return inv;
            }
        };
        inv.response = Some(parsed.clone());
        let Value::Object(resp) = parsed else {
            fail_http(
                &mut inv,
                "response body is not a JSON object (a real host would hang until functionTimeout)"
                    .into(),
            );
            return inv;
        };
        let get_ci = |obj: &Map<String, Value>, key: &str| -> Option<Value> {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        let outputs = match get_ci(&resp, "Outputs") {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(other) => {
                fail_http(&mut inv, format!("Outputs is not an object: {other}"));
                return inv;
            }
        };
        let return_value = get_ci(&resp, "ReturnValue").filter(|v| !v.is_null());
        let logs: Vec<String> = match get_ci(&resp, "Logs") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect(),
            _ => Vec::new(),
        };

        // Convert every output binding first; write only if all are valid (no half-written outputs).
        let mut messages: Vec<(String, String)> = Vec::new();
        let mut http: Option<HttpResult> = None;
        for b in f.bindings.iter().filter(|b| b.direction == "out") {
            let value = if b.name == "$return" {
                return_value.clone()
            } else {
                outputs
                    .as_ref()
                    .and_then(|o| o.get(&b.name).cloned())
                    .filter(|v| !v.is_null())
            };
            match b.kind.as_str() {
                "http" => match value {
                    Some(v) => match http_output(&v) {
                        Ok(h) => http = Some(h),
                        Err(why) => {
                            fail_http(&mut inv, format!("output {}: {why}", b.name));
                            return inv;
                        }
                    },
                    None => {
                        http = Some(HttpResult {
                            status: 200,
                            headers: BTreeMap::new(),
                            body: if outputs.is_some() {
                                "{}".into()
                            } else {
                                String::new()
                            },
                        })
                    }
                },
                "queue" => {
                    let Some(v) = value else { continue };
                    let queue = match self.queue_name_of(b) {
                        Ok(q) => q,
                        Err(e) => {
                            fail_http(&mut inv, e.to_string());
                            return inv;
                        }
                    };
                    let binary = b.str("dataType") == Some("binary");
                    for text in queue_messages(&v, binary) {
                        messages.push((queue.clone(), text));
                    }
                }
                _ => {}
            }
        }
        for (queue, text) in &messages {
            if let Err(e) = self.inner.queue.send(queue, text, None).await {
                fail_http(&mut inv, format!("writing output to queue {queue}: {e:?}"));
                return inv;
            }
        }
        if is_http && http.is_none() {
            http = Some(HttpResult {
                status: 200,
                headers: BTreeMap::new(),
                body: if outputs.is_some() {
                    "{}".into()
                } else {
                    String::new()
                },
            });
        }
        inv.enqueued = messages;
        inv.logs = logs;
        inv.http = http;
        inv.succeeded = true;
        inv
    }
}

/// The queue-trigger envelope for a received message (§5.3, §5.4).
pub fn queue_envelope(f: &FunctionDef, m: &ReceivedMessage) -> Value {
    let t = f.trigger();
    let binary = t.str("dataType") == Some("binary");
    let now = OffsetDateTime::now_utc();
    let mut data = Map::new();
    let value = if binary {
        Value::String(base64::engine::general_purpose::STANDARD.encode(m.text.as_bytes()))
    } else {
        Value::String(json_string(&m.text))
    };
    data.insert(t.name.clone(), value);
    let mut metadata = Map::new();
    metadata.insert(
        "DequeueCount".into(),
        Value::String(m.dequeue_count.to_string()),
    );
    metadata.insert(
        "ExpirationTime".into(),
        Value::String(top_level_time(m.expiration_time)),
    );
    metadata.insert("Id".into(), Value::String(json_string(&m.id)));
    metadata.insert(
        "InsertionTime".into(),
        Value::String(top_level_time(m.insertion_time)),
    );
    metadata.insert(
        "NextVisibleTime".into(),
        Value::String(top_level_time(m.next_visible_time)),
    );
    metadata.insert(
        "PopReceipt".into(),
        Value::String(json_string(&m.pop_receipt)),
    );
    // A JSON-object message contributes its top-level non-array fields (case-insensitive keys).
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&m.text) {
        for (k, v) in fields {
            if let Some(encoded) = binding_data_value(&v) {
                insert_ci(&mut metadata, &k, encoded);
            }
        }
    }
    metadata.insert("sys".into(), sys(&f.name, now));
    json!({ "Data": data, "Metadata": metadata })
}

/// How a JSON field becomes binding data in Metadata: objects inline, arrays and nulls skipped,
/// everything else as its text, string-encoded again.
fn binding_data_value(v: &Value) -> Option<Value> {
    match v {
        Value::Null | Value::Array(_) => None,
        Value::Object(_) => Some(v.clone()),
        Value::String(s) => Some(Value::String(json_string(s))),
        other => Some(Value::String(json_string(&other.to_string()))),
    }
}

fn insert_ci(map: &mut Map<String, Value>, key: &str, value: Value) {
    if let Some(existing) = map.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned() {
        map.remove(&existing);
    }
    map.insert(key.to_owned(), value);
}

/// `JsonConvert.SerializeObject(string)`: the JSON string literal as text.
fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// `sys` binding data.
fn sys(function: &str, now: OffsetDateTime) -> Value {
    json!({
        "MethodName": function,
        "UtcNow": nested_time(now),
        "RandGuid": uuid::Uuid::new_v4().to_string(),
    })
}

/// A top-level DateTimeOffset value: whole seconds, `+00:00` offset.
fn top_level_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A nested date (inside an object): fractional seconds (7 digits) and `Z`.
fn nested_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

/// Whether .NET `Convert.FromBase64String` accepts `s` (whitespace ignored).
fn dotnet_base64(s: &str) -> Option<Vec<u8>> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() || !compact.len().is_multiple_of(4) {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
}

/// The queue messages an output value turns into (§6.3).
pub fn queue_messages(v: &Value, binary: bool) -> Vec<String> {
    fn element_text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Object(_) => serde_json::to_string_pretty(v).unwrap_or_default(),
            other => other.to_string(),
        }
    }
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(element_text).collect(),
        Value::Object(_) => vec![element_text(v)],
        Value::String(s) => {
            if !binary && let Some(bytes) = dotnet_base64(s) {
                return vec![String::from_utf8_lossy(&bytes).into_owned()];
            }
            let trimmed = s.trim();
            if (trimmed.starts_with('{') && trimmed.ends_with('}'))
                || (trimmed.starts_with('[') && trimmed.ends_with(']'))
            {
                match serde_json::from_str::<Value>(trimmed) {
                    Ok(Value::Array(items)) => return items.iter().map(element_text).collect(),
                    Ok(obj @ Value::Object(_)) => return vec![element_text(&obj)],
                    _ => {}
                }
            }
            vec![s.clone()]
        }
        other => vec![other.to_string()],
    }
}

/// The HTTP answer from an `http` output value (§6.4).
fn http_output(v: &Value) -> Result<HttpResult, String> {
    let obj = match v {
        Value::Object(o) => o.clone(),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => o,
            _ => return Err("must be an object with statusCode, body, headers".into()),
        },
        _ => return Err("must be an object with statusCode, body, headers".into()),
    };
    let get = |k: &str| {
        obj.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let status = match get("statusCode") {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(200),
        Some(Value::String(s)) => s.trim().parse::<u16>().unwrap_or(200),
        _ => 200,
    };
    let mut headers = BTreeMap::new();
    match get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                match v {
                    Value::Null if k.eq_ignore_ascii_case("content-type") => {
                        return Err("Content-Type header is null".into());
                    }
                    Value::Null => {}
                    Value::String(s) => {
                        headers.insert(k.to_ascii_lowercase(), s);
                    }
                    other => {
                        headers.insert(k.to_ascii_lowercase(), other.to_string());
                    }
                }
            }
        }
        Some(_) => return Err("headers must be an object".into()),
    }
    let body = match get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => {
            headers
                .entry("content-type".into())
                .or_insert_with(|| "text/plain; charset=utf-8".into());
            s
        }
        Some(other) => {
            headers
                .entry("content-type".into())
                .or_insert_with(|| "application/json; charset=utf-8".into());
            serde_json::to_string_pretty(&other).unwrap_or_default()
        }
    };
    Ok(HttpResult {
        status,
        headers,
        body,
    })
}

/// Matches a route template (`failover/{runId}/{action?}`, constraints `{x:int}` ignored) against
/// decoded path segments; returns the parameters.
pub fn match_route(route: &str, segments: &[String]) -> Option<Vec<(String, Option<String>)>> {
    let template: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
    let mut params = Vec::new();
    let mut i = 0;
    for t in &template {
        if let Some(inner) = t.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            let optional = inner.ends_with('?');
            let name = inner
                .trim_end_matches('?')
                .split(':')
                .next()
                .unwrap_or("")
                .trim_start_matches('*');
            match segments.get(i) {
                Some(v) => {
                    params.push((name.to_owned(), Some(v.clone())));
                    i += 1;
                }
                None if optional => params.push((name.to_owned(), None)),
                None => return None,
            }
        } else {
            match segments.get(i) {
                Some(s) if s.eq_ignore_ascii_case(t) => i += 1,
                _ => return None,
            }
        }
    }
    (i == segments.len()).then_some(params)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// POSTs `body` with chunked transfer encoding over a fresh HTTP/1.1 connection and returns
/// (status, lower-cased headers, body).
async fn post_chunked(url: &str, invocation_id: &str, body: &[u8]) -> Result<RawAnswer, Error> {
    let parsed = url::Url::parse(url).map_err(|e| err(format!("{url}: {e}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| err(format!("{url}: no host")))?
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json; charset=utf-8\r\nX-Azure-Functions-InvocationId: {invocation_id}\r\nX-Azure-Functions-HostVersion: {HOST_VERSION}\r\nUser-Agent: Azure-Functions-Host/{HOST_VERSION}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        parsed.path()
    );
    stream.write_all(head.as_bytes()).await?;
    for chunk in body.chunks(8192) {
        stream
            .write_all(format!("{:X}\r\n", chunk.len()).as_bytes())
            .await?;
        stream.write_all(chunk).await?;
        stream.write_all(b"\r\n").await?;
    }
    stream.write_all(b"0\r\n\r\n").await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_RESPONSE_BYTES {
            return Err(err("response too large"));
        }
        if let Some(done) = complete_response(&raw, false)? {
            return Ok(done);
        }
    }
    complete_response(&raw, true)?
        .ok_or_else(|| err("connection closed before a complete response"))
}

/// Parses a complete HTTP/1.1 response from `raw`, or `None` if more bytes are needed (`eof`:
/// the peer closed the connection, so a body without length ends here).
fn complete_response(raw: &[u8], eof: bool) -> Result<Option<RawAnswer>, Error> {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| err("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(format!("bad status line {status_line:?}")))?;
    let mut headers = HashMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let rest = &raw[split + 4..];
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let Some(eol) = rest[pos..].windows(2).position(|w| w == b"\r\n") else {
                return Ok(None);
            };
            let size_text =
                std::str::from_utf8(&rest[pos..pos + eol]).map_err(|_| err("bad chunk size"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| err(format!("bad chunk size {size_text:?}")))?;
            pos += eol + 2;
            if size == 0 {
                return Ok(Some((status, headers, out)));
            }
            if rest.len() < pos + size + 2 {
                return Ok(None);
            }
            out.extend_from_slice(&rest[pos..pos + size]);
            pos += size + 2;
        }
    }
    match headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(len) if rest.len() >= len => Ok(Some((status, headers, rest[..len].to_vec()))),
        Some(_) => Ok(None),
        // No length: the body runs to the end of the connection (`Connection: close`).
        None if eof => Ok(Some((status, headers, rest.to_vec()))),
        None => Ok(None),
    }
}

/// Test helper: parse an RFC 3339 time (panics on bad input; tests only).
pub fn rfc3339(s: &str) -> OffsetDateTime {
    match OffsetDateTime::parse(s, &Rfc3339) {
        Ok(t) => t,
        Err(e) => panic!("{s:?}: {e}"),
    }
}
