//! Client replay (issue 16): a loopback fake that serves a recording's answers verbatim, by
//! position, to the ARM client, and the table that maps each recorded request to the client
//! operation that issues it. Rules (also in docs/recording.md "Replaying"):
//!
//! 1. **By position**: request k of the client must be entry k of the recording (markers such as
//!    `skipped_non_datashare` are not requests). The fake compares the **method** and the **path**
//!    (case-insensitively, as ARM does), **not the query** (so not the `api-version`: the client
//!    speaks 2021-08-01, a recording may be at 2019-11-01) and not the request body's content;
//!    but a request recorded **without** a body must be sent without one (reinstate). A
//!    mismatch fails naming the expected and the actual request.
//! 2. **Verbatim answers**: status, headers and body as recorded; the recorded origin
//!    (`https://management.azure.com`) in `Location` / `Azure-AsyncOperation` and in `nextLink`
//!    is replaced by the fake's loopback origin; `Content-Length` is recomputed.
//! 3. **Mapping** (`drive`): method + path shape → one `ArmClient` operation; LROs the recording
//!    starts use the `start_*` form and later recorded GETs of the poll target are `poll` calls,
//!    each checked against the recorded provisioningState (polled to completion); Location-only
//!    202 deletes use the waiting form and, as no recording polls an operation URL, the fake
//!    answers those polls synthetically (202, then 204 — the ARM RPC's Location protocol).
//! 4. Requests outside `Microsoft.DataShare`: GETs are `get_resource` /
//!    `list_role_assignments` (what readiness reads); other methods are environment setup the
//!    tool never issues (resource groups, role assignments) and are skipped by the harness.
//! 5. Outcome: a recorded 2xx must come back as success, a recorded ≥ 400 as `ArmError::Api`
//!    with that status and the recorded error code.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use datashare_dr::arm::id::*;
use datashare_dr::arm::models::*;
use datashare_dr::arm::{
    ArmClient, ArmError, ArmSettings, AuthMode, LroHandle, LroStart, LroStatus, RetryPolicy, Secret,
};
use serde_json::Value;

/// One recorded exchange.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in the file's entry list (markers included), for messages.
    pub index: usize,
    pub method: String,
    pub uri: url::Url,
    pub request_body: Option<Value>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub note: String,
}

impl Entry {
    pub fn path(&self) -> String {
        self.uri.path().trim_end_matches('/').to_owned()
    }
    pub fn label(&self) -> String {
        let note = if self.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.note)
        };
        format!(
            "entry #{} `{} {}`{note}",
            self.index,
            self.method,
            self.path()
        )
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

fn body_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Reads a SessionRecords file (`Entries`) or the CLI extract form (`interactions`).
pub fn load(path: &Path) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let list = doc
        .get("Entries")
        .or_else(|| doc.get("interactions"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            format!(
                "{}: no `Entries` (SessionRecords) or `interactions` array: add one of these forms \
                 (docs/recording.md) or teach tests/support/replay.rs::load the new one",
                path.display()
            )
        })?;
    let mut out = Vec::new();
    for (index, e) in list.iter().enumerate() {
        let Some(method) = e.get("RequestMethod").and_then(Value::as_str) else {
            continue; // a marker (e.g. `skipped_non_datashare`), not a request
        };
        let uri = e
            .get("RequestUri")
            .and_then(Value::as_str)
            .and_then(|u| url::Url::parse(u).ok())
            .ok_or_else(|| {
                format!(
                    "{}: entry #{index} has no absolute RequestUri",
                    path.display()
                )
            })?;
        let status = e
            .get("StatusCode")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("{}: entry #{index} has no StatusCode", path.display()))?
            as u16;
        let headers = e
            .get("ResponseHeaders")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::Array(a) => a
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(", "),
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let request_body = match e.get("RequestBody") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => serde_json::from_str(s).ok(),
            Some(v) => Some(v.clone()),
        };
        out.push(Entry {
            index,
            method: method.to_ascii_uppercase(),
            uri,
            request_body,
            status,
            headers,
            body: body_text(e.get("ResponseBody")),
            note: e
                .get("note")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    Ok(out)
}

#[derive(Default)]
struct FakeState {
    base: String,
    entries: Vec<Entry>,
    cursor: usize,
    failures: Vec<String>,
    synthetic: HashMap<String, VecDeque<u16>>,
    synthetic_served: usize,
}

/// The positional fake. Stops with the test's runtime.
#[derive(Clone)]
pub struct Fake(Arc<Mutex<FakeState>>);

impl Fake {
    pub async fn start(entries: Vec<Entry>) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(FakeState {
            base: format!("http://{addr}"),
            entries,
            ..Default::default()
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake(state)
    }
    pub fn base(&self) -> String {
        self.0.lock().unwrap().base.clone()
    }
    pub fn cursor(&self) -> usize {
        self.0.lock().unwrap().cursor
    }
    pub fn skip(&self) {
        self.0.lock().unwrap().cursor += 1;
    }
    pub fn failures(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap().failures)
    }
    /// Answers GETs of `path` with these statuses (empty bodies) before positional matching.
    pub fn synthetic(&self, path: &str, statuses: &[u16]) {
        self.0.lock().unwrap().synthetic.insert(
            path.to_ascii_lowercase(),
            statuses.iter().copied().collect(),
        );
    }
    pub fn synthetic_left(&self, path: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .synthetic
            .get(&path.to_ascii_lowercase())
            .map_or(0, VecDeque::len)
    }
    pub fn synthetic_served(&self) -> usize {
        self.0.lock().unwrap().synthetic_served
    }
    /// The client this harness drives: concurrency 1, one attempt per call, fast LRO polls.
    pub fn client(&self) -> ArmClient {
        let mut s = ArmSettings::new(
            url::Url::parse(&self.base()).unwrap(),
            AuthMode::StaticToken(Secret::new("replay-token")),
        );
        s.max_concurrency = 1;
        s.retry = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        s.lro_poll_interval = Duration::from_millis(5);
        s.lro_deadline = Duration::from_secs(20);
        s.deadline = Duration::from_secs(20);
        ArmClient::new(s).expect("replay client")
    }
}

fn rewrite(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        text.to_owned()
    } else {
        text.replace(from, to)
    }
}

async fn handle(
    State(st): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    sent: axum::body::Bytes,
) -> Response {
    let mut st = st.lock().unwrap();
    let path = uri.path().trim_end_matches('/').to_owned();
    let key = path.to_ascii_lowercase();
    if method == Method::GET {
        let statuses = st.synthetic.get_mut(&key).and_then(VecDeque::pop_front);
        if let Some(status) = statuses {
            st.synthetic_served += 1;
            return StatusCode::from_u16(status).unwrap().into_response();
        }
    }
    let Some(e) = st.entries.get(st.cursor).cloned() else {
        let msg = format!("the client sent `{method} {path}` after the recording's last entry");
        st.failures.push(msg.clone());
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": {"code": "ReplayMismatch", "message": msg}})),
        )
            .into_response();
    };
    if !e.method.eq_ignore_ascii_case(method.as_str()) || !e.path().eq_ignore_ascii_case(&path) {
        let msg = format!(
            "{}: expected `{} {}`, the client sent `{method} {path}`",
            e.label(),
            e.method,
            e.path()
        );
        st.failures.push(msg.clone());
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": {"code": "ReplayMismatch", "message": msg}})),
        )
            .into_response();
    }
    if e.request_body.is_none() && !sent.iter().all(u8::is_ascii_whitespace) {
        let msg = format!(
            "{}: `{} {}` was recorded without a request body, the client sent `{}`",
            e.label(),
            e.method,
            e.path(),
            String::from_utf8_lossy(&sent)
        );
        st.failures.push(msg.clone());
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": {"code": "ReplayMismatch", "message": msg}})),
        )
            .into_response();
    }
    st.cursor += 1;
    let origin = e.uri.origin().ascii_serialization();
    let mut headers = HeaderMap::new();
    for (k, v) in &e.headers {
        let lk = k.to_ascii_lowercase();
        if matches!(
            lk.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        let v = if matches!(lk.as_str(), "location" | "azure-asyncoperation") {
            rewrite(v, &origin, &st.base)
        } else {
            v.clone()
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(lk.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            headers.append(n, v);
        }
    }
    let mut body = e.body.clone();
    if let Ok(mut v) = serde_json::from_str::<Value>(&body)
        && let Some(Value::String(link)) = v.get_mut("nextLink")
    {
        *link = rewrite(link, &origin, &st.base);
        body = v.to_string();
    }
    (StatusCode::from_u16(e.status).unwrap(), headers, body).into_response()
}

/// Drives the whole recording through the client; returns the operations used, in order.
pub async fn replay(name: &str, entries: Vec<Entry>) -> Result<Vec<String>, String> {
    let n = entries.len();
    let fake = Fake::start(entries.clone()).await;
    let client = fake.client();
    let mut pending: Vec<(String, LroHandle)> = Vec::new();
    let mut ops = Vec::new();
    while fake.cursor() < n {
        let at = fake.cursor();
        let e = &entries[at];
        let res = drive(&client, &fake, e, &entries[at + 1..], &mut pending).await;
        let failures = fake.failures();
        if !failures.is_empty() {
            return Err(format!("{name}: {}", failures.join("\n")));
        }
        let op = res.map_err(|m| format!("{name}: {}: {m}", e.label()))?;
        if fake.cursor() == at {
            return Err(format!("{name}: {}: `{op}` sent no request", e.label()));
        }
        ops.push(op);
    }
    Ok(ops)
}

fn model<T: serde::de::DeserializeOwned>(e: &Entry) -> Result<T, String> {
    serde_json::from_str::<T>(&e.body)
        .ok()
        .or_else(|| {
            e.request_body
                .clone()
                .and_then(|b| serde_json::from_value(b).ok())
        })
        .ok_or_else(|| {
            format!(
                "neither the response nor the request body decodes as {}",
                std::any::type_name::<T>()
            )
        })
}

/// Recorded outcome vs the client's.
fn outcome<T>(e: &Entry, r: Result<T, ArmError>) -> Result<Option<T>, String> {
    match (e.status < 400, r) {
        (true, Ok(v)) => Ok(Some(v)),
        (true, Err(err)) => Err(format!(
            "recorded {} but the client failed: {err}",
            e.status
        )),
        (false, Ok(_)) => Err(format!(
            "recorded {} but the client reported success",
            e.status
        )),
        (false, Err(err)) => {
            if err.status() != Some(e.status) {
                return Err(format!(
                    "recorded {} but the client's error is {err}",
                    e.status
                ));
            }
            let code = e.json().and_then(|v| {
                v.pointer("/error/code")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            if let Some(code) = code
                && err.code() != Some(code.as_str())
            {
                return Err(format!(
                    "recorded error code {code}, the client parsed {:?}",
                    err.code()
                ));
            }
            Ok(None)
        }
    }
}

fn recorded_state(e: &Entry) -> Option<String> {
    e.json()?
        .pointer("/properties/provisioningState")?
        .as_str()
        .map(str::to_owned)
}

/// What a start form must have returned for this recorded answer.
fn check_start(fake: &Fake, e: &Entry, s: &LroStart) -> Result<(), String> {
    let state = recorded_state(e);
    let running = state
        .as_deref()
        .is_some_and(|s| !matches!(s, "Succeeded" | "Failed" | "Canceled"));
    let expect_pending = e.status == 202
        || (e.status == 201 && running)
        || e.header("azure-asyncoperation").is_some();
    match s {
        LroStart::Pending(h) if expect_pending => {
            for (hdr, got) in [
                ("location", &h.location_url),
                ("azure-asyncoperation", &h.async_operation_url),
            ] {
                // A `Location` on a 201 is information only (Data Share's account create sends
                // the resource URL itself there, and at 2019-11-01 a malformed relative one):
                // the client then polls the resource URL, which must be the fake's. Only a
                // 202's `Location` is a status URL the handle must keep.
                if hdr == "location" && e.status != 202 {
                    if got.is_some() || !h.resource_url.starts_with(&fake.base()) {
                        return Err(format!(
                            "a {}'s Location is not a status URL: the handle must poll the \
                             resource ({}), not {got:?}",
                            e.status, h.resource_url
                        ));
                    }
                    continue;
                }
                if e.header(hdr).is_some_and(|v| v.starts_with("http")) {
                    let got = got
                        .as_deref()
                        .ok_or(format!("the handle lost the recorded {hdr}"))?;
                    if !got.starts_with(&fake.base()) {
                        return Err(format!("the handle's {hdr} `{got}` is not the fake's"));
                    }
                }
            }
            Ok(())
        }
        LroStart::Done(_) if !expect_pending => Ok(()),
        other => Err(format!(
            "recorded {} (provisioningState {state:?}) but the client started {other:?}",
            e.status
        )),
    }
}

fn poll_target(h: &LroHandle) -> String {
    let u = h.location_url.as_deref().unwrap_or(&h.resource_url);
    url::Url::parse(u)
        .map(|u| u.path().trim_end_matches('/').to_ascii_lowercase())
        .unwrap_or_default()
}

/// One recorded request → the client operation that issues it (see the module rules).
async fn drive(
    c: &ArmClient,
    fake: &Fake,
    e: &Entry,
    later: &[Entry],
    pending: &mut Vec<(String, LroHandle)>,
) -> Result<String, String> {
    let path = e.path();
    let lower = path.to_ascii_lowercase();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let m = e.method.as_str();
    // A GET of a poll target of an LRO this recording started: the client's poll.
    if m == "GET"
        && let Some(i) = pending.iter().position(|(_, h)| poll_target(h) == lower)
    {
        let (op, h) = pending[i].clone();
        let st = c
            .poll(&h)
            .await
            .map_err(|err| format!("poll of {op}: {err}"))?;
        let finished = matches!(recorded_state(e).as_deref(), None | Some("Succeeded"));
        match (&st, finished) {
            (LroStatus::Done(_), true) => {
                pending.remove(i);
            }
            (LroStatus::Running { .. }, false) => {}
            _ => {
                return Err(format!(
                    "recorded provisioningState {:?} but the poll said {st:?}",
                    recorded_state(e)
                ));
            }
        }
        return Ok(format!("poll({op})"));
    }
    let Some(p) = segs
        .iter()
        .position(|s| s.eq_ignore_ascii_case("microsoft.datashare"))
    else {
        // Rule 4: outside Data Share.
        if m == "GET" {
            let api = e
                .uri
                .query_pairs()
                .find(|(k, _)| k == "api-version")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if let Some(scope) = lower.find("/providers/microsoft.authorization/roleassignments") {
                let filter = e
                    .uri
                    .query_pairs()
                    .find(|(k, _)| k == "$filter")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let principal = filter.split('\'').nth(1).unwrap_or_default().to_owned();
                let scope = ResourceId::parse(&path[..scope]).map_err(|x| x.to_string())?;
                outcome(e, c.list_role_assignments(&scope, &principal).await)?;
                return Ok("list_role_assignments".into());
            }
            let id = ResourceId::parse(&path).map_err(|x| x.to_string())?;
            let r = c.get_resource(&id, &api).await;
            if e.status == 404 {
                return match r {
                    Ok(None) => Ok("get_resource".into()),
                    other => Err(format!("recorded 404, client: {other:?}")),
                };
            }
            outcome(e, r)?;
            return Ok("get_resource".into());
        }
        fake.skip();
        return Ok(format!("(environment setup, not issued by the tool: {m})"));
    };
    let rest: Vec<String> = segs[p + 1..]
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let shape: Vec<&str> = rest
        .iter()
        .enumerate()
        .map(|(i, s)| if i % 2 == 0 { s.as_str() } else { "*" })
        .collect();
    let shape = shape.join("/");
    let prefix = segs[..p - 1].join("/");
    let rid = |upto: usize| -> String {
        format!(
            "/{prefix}/providers/Microsoft.DataShare/{}",
            segs[p + 1..p + 1 + upto].join("/")
        )
    };
    macro_rules! id {
        ($t:ty, $n:expr) => {
            <$t>::parse(&rid($n)).map_err(|x| x.to_string())?
        };
    }
    macro_rules! check {
        ($name:expr, $call:expr) => {{
            outcome(e, $call.await)?;
            return Ok($name.to_string());
        }};
    }
    // Location-only 202 delete that the recording never polls: synthetic polls (rule 3).
    let synth = |fake: &Fake| -> Option<String> {
        let loc = e
            .header("location")
            .filter(|_| e.status == 202 && e.header("azure-asyncoperation").is_none())?;
        let lp = url::Url::parse(loc)
            .ok()?
            .path()
            .trim_end_matches('/')
            .to_ascii_lowercase();
        if later.iter().any(|l| l.path().eq_ignore_ascii_case(&lp)) {
            return None;
        }
        fake.synthetic(&lp, &[202, 204]);
        Some(lp)
    };
    macro_rules! delete {
        ($name:expr, $call:expr) => {{
            let lp = synth(fake);
            outcome(e, $call.await)?;
            if let Some(lp) = lp
                && fake.synthetic_left(&lp) != 0
            {
                return Err(format!(
                    "{}: the Location-only 202 was not polled to completion",
                    $name
                ));
            }
            return Ok($name.to_string());
        }};
    }
    macro_rules! start {
        ($name:expr, $call:expr) => {{
            if let Some(s) = outcome(e, $call.await)? {
                check_start(fake, e, &s)?;
                if let LroStart::Pending(h) = s {
                    pending.push(($name.to_string(), h));
                }
            }
            return Ok($name.to_string());
        }};
    }
    match (m, shape.as_str()) {
        ("GET", "listinvitations") => {
            check!("list_consumer_invitations", c.list_consumer_invitations())
        }
        ("GET", "locations/*/consumerinvitations/*") => check!(
            "get_consumer_invitation",
            c.get_consumer_invitation(segs[p + 2], segs[p + 4])
        ),
        ("GET", "accounts") => {
            let sub = segs.get(1).copied().unwrap_or_default();
            if let Some(rg) = segs.get(3).filter(|_| p > 3) {
                check!(
                    "list_accounts_in_resource_group",
                    c.list_accounts_in_resource_group(sub, rg)
                )
            }
            check!(
                "list_accounts_in_subscription",
                c.list_accounts_in_subscription(sub)
            )
        }
        ("PUT", "accounts/*") => start!(
            "start_create_account",
            c.start_create_account(&id!(AccountId, 2), &model::<Account>(e)?)
        ),
        ("GET", "accounts/*") => check!("get_account", c.get_account(&id!(AccountId, 2))),
        ("PATCH", "accounts/*") => {
            let upd: AccountUpdate = e
                .request_body
                .clone()
                .and_then(|b| serde_json::from_value(b).ok())
                .unwrap_or_default();
            check!("update_account", c.update_account(&id!(AccountId, 2), &upd))
        }
        ("DELETE", "accounts/*") => delete!("delete_account", c.delete_account(&id!(AccountId, 2))),
        ("GET", "accounts/*/shares") => check!("list_shares", c.list_shares(&id!(AccountId, 2))),
        ("PUT", "accounts/*/shares/*") => check!(
            "put_share",
            c.put_share(&id!(ShareId, 4), &model::<Share>(e)?)
        ),
        ("GET", "accounts/*/shares/*") => check!("get_share", c.get_share(&id!(ShareId, 4))),
        ("DELETE", "accounts/*/shares/*") => {
            delete!("delete_share", c.delete_share(&id!(ShareId, 4)))
        }
        ("POST", "accounts/*/shares/*/listsynchronizations") => check!(
            "list_share_synchronizations",
            c.list_share_synchronizations(&id!(ShareId, 4), &Default::default())
        ),
        ("POST", "accounts/*/shares/*/listsynchronizationdetails") => {
            let run: ShareSynchronization = e
                .request_body
                .clone()
                .and_then(|b| serde_json::from_value(b).ok())
                .unwrap_or_default();
            check!(
                "list_share_synchronization_details",
                c.list_share_synchronization_details(&id!(ShareId, 4), &run)
            )
        }
        ("GET", "accounts/*/shares/*/datasets") => {
            check!("list_datasets", c.list_datasets(&id!(ShareId, 4)))
        }
        ("PUT", "accounts/*/shares/*/datasets/*") => check!(
            "put_dataset",
            c.put_dataset(&id!(DataSetId, 6), &model::<DataSet>(e)?)
        ),
        ("GET", "accounts/*/shares/*/datasets/*") => {
            check!("get_dataset", c.get_dataset(&id!(DataSetId, 6)))
        }
        ("DELETE", "accounts/*/shares/*/datasets/*") => {
            delete!("delete_dataset", c.delete_dataset(&id!(DataSetId, 6)))
        }
        ("GET", "accounts/*/shares/*/invitations") => {
            check!("list_invitations", c.list_invitations(&id!(ShareId, 4)))
        }
        ("PUT", "accounts/*/shares/*/invitations/*") => check!(
            "put_invitation",
            c.put_invitation(&id!(InvitationId, 6), &model::<Invitation>(e)?)
        ),
        ("GET", "accounts/*/shares/*/invitations/*") => {
            check!("get_invitation", c.get_invitation(&id!(InvitationId, 6)))
        }
        ("DELETE", "accounts/*/shares/*/invitations/*") => delete!(
            "delete_invitation",
            c.delete_invitation(&id!(InvitationId, 6))
        ),
        ("GET", "accounts/*/shares/*/synchronizationsettings") => check!(
            "list_synchronization_settings",
            c.list_synchronization_settings(&id!(ShareId, 4))
        ),
        ("PUT", "accounts/*/shares/*/synchronizationsettings/*") => check!(
            "put_synchronization_setting",
            c.put_synchronization_setting(
                &id!(SynchronizationSettingId, 6),
                &model::<SynchronizationSetting>(e)?
            )
        ),
        ("GET", "accounts/*/shares/*/synchronizationsettings/*") => check!(
            "get_synchronization_setting",
            c.get_synchronization_setting(&id!(SynchronizationSettingId, 6))
        ),
        ("DELETE", "accounts/*/shares/*/synchronizationsettings/*") => delete!(
            "delete_synchronization_setting",
            c.delete_synchronization_setting(&id!(SynchronizationSettingId, 6))
        ),
        ("GET", "accounts/*/shares/*/providersharesubscriptions") => check!(
            "list_provider_share_subscriptions",
            c.list_provider_share_subscriptions(&id!(ShareId, 4))
        ),
        ("GET", "accounts/*/shares/*/providersharesubscriptions/*") => check!(
            "get_provider_share_subscription",
            c.get_provider_share_subscription(&id!(ProviderShareSubscriptionId, 6))
        ),
        ("POST", "accounts/*/shares/*/providersharesubscriptions/*/revoke") => start!(
            "start_revoke_provider_share_subscription",
            c.start_revoke_provider_share_subscription(&id!(ProviderShareSubscriptionId, 6))
        ),
        ("POST", "accounts/*/shares/*/providersharesubscriptions/*/reinstate") => check!(
            "reinstate_provider_share_subscription",
            c.reinstate_provider_share_subscription(&id!(ProviderShareSubscriptionId, 6), None)
        ),
        ("POST", "accounts/*/shares/*/providersharesubscriptions/*/adjust") => check!(
            "adjust_provider_share_subscription",
            c.adjust_provider_share_subscription(&id!(ProviderShareSubscriptionId, 6), None)
        ),
        ("GET", "accounts/*/sharesubscriptions") => check!(
            "list_share_subscriptions",
            c.list_share_subscriptions(&id!(AccountId, 2))
        ),
        ("PUT", "accounts/*/sharesubscriptions/*") => {
            let v = e.json().or(e.request_body.clone()).unwrap_or_default();
            let inv = v
                .pointer("/properties/invitationId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let loc = v
                .pointer("/properties/sourceShareLocation")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            check!(
                "create_share_subscription",
                c.create_share_subscription(&id!(ShareSubscriptionId, 4), &inv, &loc, None)
            )
        }
        ("GET", "accounts/*/sharesubscriptions/*") => check!(
            "get_share_subscription",
            c.get_share_subscription(&id!(ShareSubscriptionId, 4))
        ),
        ("DELETE", "accounts/*/sharesubscriptions/*") => delete!(
            "delete_share_subscription",
            c.delete_share_subscription(&id!(ShareSubscriptionId, 4))
        ),
        ("GET", "accounts/*/sharesubscriptions/*/consumersourcedatasets") => check!(
            "list_consumer_source_datasets",
            c.list_consumer_source_datasets(&id!(ShareSubscriptionId, 4))
        ),
        ("POST", "accounts/*/sharesubscriptions/*/synchronize") => start!(
            "start_synchronize",
            c.start_synchronize(
                &id!(ShareSubscriptionId, 4),
                SynchronizationMode::Incremental
            )
        ),
        ("POST", "accounts/*/sharesubscriptions/*/listsynchronizations") => check!(
            "list_share_subscription_synchronizations",
            c.list_share_subscription_synchronizations(
                &id!(ShareSubscriptionId, 4),
                &Default::default()
            )
        ),
        ("POST", "accounts/*/sharesubscriptions/*/listsourcesharesynchronizationsettings") => {
            check!(
                "list_source_share_synchronization_settings",
                c.list_source_share_synchronization_settings(&id!(ShareSubscriptionId, 4))
            )
        }
        ("GET", "accounts/*/sharesubscriptions/*/datasetmappings") => check!(
            "list_dataset_mappings",
            c.list_dataset_mappings(&id!(ShareSubscriptionId, 4))
        ),
        ("PUT", "accounts/*/sharesubscriptions/*/datasetmappings/*") => check!(
            "put_dataset_mapping",
            c.put_dataset_mapping(&id!(DataSetMappingId, 6), &model::<DataSetMapping>(e)?)
        ),
        ("GET", "accounts/*/sharesubscriptions/*/datasetmappings/*") => check!(
            "get_dataset_mapping",
            c.get_dataset_mapping(&id!(DataSetMappingId, 6))
        ),
        ("DELETE", "accounts/*/sharesubscriptions/*/datasetmappings/*") => delete!(
            "delete_dataset_mapping",
            c.delete_dataset_mapping(&id!(DataSetMappingId, 6))
        ),
        ("GET", "accounts/*/sharesubscriptions/*/triggers") => check!(
            "list_triggers",
            c.list_triggers(&id!(ShareSubscriptionId, 4))
        ),
        ("PUT", "accounts/*/sharesubscriptions/*/triggers/*") => start!(
            "start_put_trigger",
            c.start_put_trigger(&id!(TriggerId, 6), &model::<Trigger>(e)?)
        ),
        ("GET", "accounts/*/sharesubscriptions/*/triggers/*") => {
            check!("get_trigger", c.get_trigger(&id!(TriggerId, 6)))
        }
        ("DELETE", "accounts/*/sharesubscriptions/*/triggers/*") => {
            delete!("delete_trigger", c.delete_trigger(&id!(TriggerId, 6)))
        }
        _ => Err(format!(
            "no client operation maps `{m} {shape}` (Microsoft.DataShare path shape): add a row to \
             the table in tests/support/replay.rs::drive naming the ArmClient operation that issues \
             this request (or a new ops.rs operation if the client lacks one)"
        )),
    }
}
