//! ArmClient against a tiny scripted in-test ARM fake (axum on 127.0.0.1:0): retries and
//! `Retry-After`, no retry of 4xx, error details, long-running operations in both forms,
//! paging, the loopback rule, rate-limit adaptation, concurrency and deadlines.
//!
//! Real sockets and a paused tokio clock do not mix (the paused clock jumps to the next timer
//! while a request is in flight), so these tests use real time with short delays; the
//! limiter's timing is covered with paused time in `arm::limiter`'s unit tests.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use datashare_dr::arm::id::{AccountId, ResourceId, ShareId};
use datashare_dr::arm::models::*;
use datashare_dr::arm::{
    ArmClient, ArmError, ArmSettings, AuthMode, CallLog, LroHandle, LroStart, LroStatus,
    RetryPolicy, Secret,
};
use serde_json::{Value, json};

#[derive(Clone)]
struct Scripted {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: Value) -> Scripted {
    Scripted {
        status,
        headers: vec![],
        body: if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
        delay: Duration::ZERO,
    }
}

impl Scripted {
    fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: String,
}

#[derive(Default)]
struct FakeState {
    base: Mutex<String>,
    script: Mutex<HashMap<(String, String), VecDeque<Scripted>>>,
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[derive(Clone)]
struct Fake(Arc<FakeState>);

impl Fake {
    async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        *state.base.lock().unwrap() = format!("http://{addr}");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake(state)
    }
    fn base(&self) -> String {
        self.0.base.lock().unwrap().clone()
    }
    /// Queue answers for `method path`; the last one repeats.
    fn on(&self, method: &str, path: &str, answers: Vec<Scripted>) {
        self.0.script.lock().unwrap().insert(
            (method.to_owned(), path.to_ascii_lowercase()),
            answers.into(),
        );
    }
    fn seen(&self) -> Vec<Seen> {
        self.0.seen.lock().unwrap().clone()
    }
    fn client(&self) -> ArmClient {
        self.client_with(|_| {})
    }
    fn client_with(&self, f: impl FnOnce(&mut ArmSettings)) -> ArmClient {
        let mut s = ArmSettings::new(
            url::Url::parse(&self.base()).unwrap(),
            AuthMode::StaticToken(Secret::new("test-token-123")),
        );
        s.retry = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
        };
        s.deadline = Duration::from_secs(10);
        s.lro_poll_interval = Duration::from_millis(20);
        s.lro_deadline = Duration::from_secs(5);
        f(&mut s);
        ArmClient::new(s).expect("client")
    }
}

async fn handle(
    State(st): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_in_flight.fetch_max(now, Ordering::SeqCst);
    st.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers: headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let key = (method.to_string(), uri.path().to_ascii_lowercase());
    let next = {
        let mut script = st.script.lock().unwrap();
        match script.get_mut(&key) {
            Some(q) if q.len() > 1 => q.pop_front(),
            Some(q) => q.front().cloned(),
            None => None,
        }
    };
    let base = st.base.lock().unwrap().clone();
    let resp = match next {
        None => (
            StatusCode::NOT_FOUND,
            [("x-ms-correlation-request-id", "corr-404")],
            json!({"error": {"code": "ResourceNotFound", "message": format!("no script for {} {}", key.0, key.1)}}).to_string(),
        )
            .into_response(),
        Some(s) => {
            if !s.delay.is_zero() {
                tokio::time::sleep(s.delay).await;
            }
            let mut r = Response::builder().status(s.status);
            for (k, v) in &s.headers {
                r = r.header(k.as_str(), v.replace("{base}", &base));
            }
            if !s.body.is_empty() {
                r = r.header("content-type", "application/json");
            }
            r.body(axum::body::Body::from(s.body.replace("{base}", &base)))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    };
    st.in_flight.fetch_sub(1, Ordering::SeqCst);
    resp
}

const ACCT: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-weu/providers/Microsoft.DataShare/accounts/sales-weu";

fn share_id() -> ShareId {
    AccountId::parse(ACCT).unwrap().share("orders").unwrap()
}

fn share_body(name: &str) -> Value {
    json!({"id": format!("{ACCT}/shares/{name}"), "name": name, "type": "Microsoft.DataShare/accounts/shares",
           "properties": {"shareKind": "CopyBased", "description": "d", "provisioningState": "Succeeded"}})
}

#[tokio::test]
async fn retries_a_429_after_retry_after_then_succeeds() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "GET",
        id.as_str(),
        vec![
            reply(
                429,
                json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
            )
            .header("Retry-After", "1"),
            reply(200, share_body("orders")),
        ],
    );
    let client = fake.client();
    let t = Instant::now();
    let share = client.get_share(&id).await.expect("share");
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "Retry-After not honoured: {:?}",
        t.elapsed()
    );
    assert_eq!(share.properties.share_kind, Some(ShareKind::CopyBased));
    let st = client.stats();
    assert_eq!((st.reads, st.retries, st.throttled), (2, 1, 1));
}

#[tokio::test]
async fn honours_x_ms_retry_after_ms_on_a_503() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "GET",
        id.as_str(),
        vec![
            reply(
                503,
                json!({"error": {"code": "ServiceUnavailable", "message": "busy"}}),
            )
            .header("x-ms-retry-after-ms", "300"),
            reply(200, share_body("orders")),
        ],
    );
    let t = Instant::now();
    fake.client().get_share(&id).await.expect("share");
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn does_not_retry_a_400_and_the_error_carries_code_message_and_correlation_id() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on("PUT", id.as_str(), vec![reply(
        400,
        json!({"error": {"code": "InvalidPayload", "message": "shareKind is invalid", "target": "properties.shareKind"}}),
    )
    .header("x-ms-correlation-request-id", "corr-1")
    .header("x-ms-request-id", "req-1")]);
    let client = fake.client();
    let err = client
        .put_share(&id, &Share::new(None, None, ShareKind::InPlace))
        .await
        .unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("InvalidPayload"));
    assert_eq!(err.correlation_id(), Some("corr-1"));
    let api = err.api().expect("api error");
    assert_eq!(api.message, "shareKind is invalid");
    assert_eq!(api.request_id.as_deref(), Some("req-1"));
    assert_eq!(api.operation, "Shares_Create");
    assert!(err.to_string().contains(id.as_str()), "{err}");
    assert_eq!(client.stats().writes, 1, "a 400 is not retried");
    assert_eq!(client.stats().retries, 0);
}

#[tokio::test]
async fn gives_up_on_a_persistent_500_after_the_attempt_limit() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "GET",
        id.as_str(),
        vec![reply(
            500,
            json!({"error": {"code": "InternalServerError", "message": "boom"}}),
        )],
    );
    let client = fake.client();
    let err = client.get_share(&id).await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.status(), Some(500));
    assert_eq!(client.stats().reads, 4);
    assert_eq!(client.stats().retries, 3);
}

#[tokio::test]
async fn a_deadline_stops_retrying_and_is_reported_as_transient() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "GET",
        id.as_str(),
        vec![
            reply(503, json!({"error": {"code": "Busy", "message": "busy"}}))
                .header("Retry-After", "2"),
        ],
    );
    let client = fake.client().with_deadline(Duration::from_millis(800));
    let t = Instant::now();
    let err = client.get_share(&id).await.unwrap_err();
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "did not give up early: {:?}",
        t.elapsed()
    );
    assert!(matches!(err, ArmError::Deadline { .. }), "{err}");
    assert!(err.is_transient());
    assert_eq!(err.status(), Some(503), "the last answer is kept");
}

#[tokio::test]
async fn every_call_carries_api_version_a_fresh_client_request_id_and_the_token() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "GET",
        id.as_str(),
        vec![
            reply(500, json!({"error": {"code": "E", "message": "m"}})),
            reply(200, share_body("orders")),
        ],
    );
    let log = CallLog::new();
    let client = fake.client().with_correlation_id("run-42").recording(&log);
    client.get_share(&id).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let mut ids = Vec::new();
    for s in &seen {
        assert!(s.query.contains("api-version=2021-08-01"), "{}", s.query);
        assert_eq!(s.headers["authorization"], "Bearer test-token-123");
        assert_eq!(s.headers["x-ms-correlation-request-id"], "run-42");
        let rid = s.headers["x-ms-client-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(uuid::Uuid::parse_str(&rid).is_ok(), "{rid}");
        ids.push(rid);
    }
    assert_ne!(
        ids[0], ids[1],
        "each attempt gets its own client request id"
    );
    let recs = log.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].attempts, 2);
    assert_eq!(recs[0].status, Some(200));
    assert_eq!(log.correlation_ids(), vec!["run-42".to_owned()]);
}

#[tokio::test]
async fn delete_share_waits_for_the_async_operation() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "DELETE",
        id.as_str(),
        vec![reply(202, Value::Null).header(
            "Azure-AsyncOperation",
            "{base}/ops/del1?api-version=2021-08-01",
        )],
    );
    fake.on(
        "GET",
        "/ops/del1",
        vec![
            reply(200, json!({"status": "InProgress"})).header("Retry-After", "0"),
            reply(200, json!({"status": "TransientFailure"})),
            reply(200, json!({"status": "Succeeded"})),
        ],
    );
    let client = fake.client();
    client.delete_share(&id).await.expect("deleted");
    let st = client.stats();
    assert_eq!(st.deletes, 1);
    assert_eq!(st.lro_polls, 3);
}

#[tokio::test]
async fn an_lro_handle_can_be_stored_and_polled_later() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "DELETE",
        id.as_str(),
        vec![
            reply(202, Value::Null)
                .header("Azure-AsyncOperation", "{base}/ops/d2")
                .header("Retry-After", "7"),
        ],
    );
    fake.on(
        "GET",
        "/ops/d2",
        vec![
            reply(200, json!({"status": "InProgress"})).header("Retry-After", "3"),
            reply(200, json!({"status": "Succeeded"})),
        ],
    );
    let client = fake.client();
    let LroStart::Pending(handle) = client.start_delete_share(&id).await.unwrap() else {
        panic!("expected a pending operation")
    };
    assert_eq!(handle.retry_after(), Some(Duration::from_secs(7)));
    // a queue stage stores the handle and comes back later, possibly in another process
    let stored = serde_json::to_string(&handle).unwrap();
    let handle: LroHandle = serde_json::from_str(&stored).unwrap();
    match client.poll(&handle).await.unwrap() {
        LroStatus::Running { retry_after, .. } => assert_eq!(retry_after, Duration::from_secs(3)),
        other => panic!("expected running, got {other:?}"),
    }
    assert_eq!(client.poll(&handle).await.unwrap(), LroStatus::Done(None));
}

#[tokio::test]
async fn a_failed_lro_surfaces_the_error_code() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "DELETE",
        id.as_str(),
        vec![reply(202, Value::Null).header("Azure-AsyncOperation", "{base}/ops/f")],
    );
    fake.on("GET", "/ops/f", vec![reply(200, json!({"status": "Failed", "error": {"code": "ShareInUse", "message": "active subscriptions"}}))]);
    let err = fake.client().delete_share(&id).await.unwrap_err();
    let ArmError::OperationFailed(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(f.code, "ShareInUse");
    assert_eq!(f.status, OperationStatus::Failed);
    assert!(!err.is_transient());
}

#[tokio::test]
async fn lro_wait_has_a_deadline() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "DELETE",
        id.as_str(),
        vec![reply(202, Value::Null).header("Azure-AsyncOperation", "{base}/ops/slow")],
    );
    fake.on(
        "GET",
        "/ops/slow",
        vec![reply(200, json!({"status": "InProgress"}))],
    );
    let client = fake.client();
    let LroStart::Pending(h) = client.start_delete_share(&id).await.unwrap() else {
        panic!("pending")
    };
    let err = client
        .wait(&h, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, ArmError::Deadline { .. }), "{err}");
}

#[tokio::test]
async fn create_account_polls_then_reads_the_resource() {
    let fake = Fake::start().await;
    let id = AccountId::parse(ACCT).unwrap();
    fake.on("PUT", id.as_str(), vec![reply(201, json!({"location": "westeurope", "identity": {"type": "SystemAssigned"}, "properties": {"provisioningState": "Creating"}}))
        .header("Azure-AsyncOperation", "{base}/ops/acct")]);
    fake.on(
        "GET",
        "/ops/acct",
        vec![reply(200, json!({"status": "Succeeded"}))],
    );
    fake.on("GET", id.as_str(), vec![reply(200, json!({"id": ACCT, "name": "sales-weu", "type": "Microsoft.DataShare/accounts", "location": "westeurope",
        "identity": {"type": "SystemAssigned", "principalId": "11111111-1111-1111-1111-111111111111", "tenantId": "t"},
        "properties": {"provisioningState": "Succeeded"}}))]);
    let acct = fake
        .client()
        .create_account(&id, &Account::new("westeurope", None))
        .await
        .unwrap();
    assert_eq!(
        acct.principal_id(),
        Some("11111111-1111-1111-1111-111111111111")
    );
    let put = fake.seen().into_iter().find(|s| s.method == "PUT").unwrap();
    let sent: Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(
        sent,
        json!({"location": "westeurope", "identity": {"type": "SystemAssigned"}})
    );
}

#[tokio::test]
async fn a_location_only_lro_is_polled_until_it_stops_answering_202() {
    let fake = Fake::start().await;
    let sub = AccountId::parse(ACCT)
        .unwrap()
        .share_subscription("s1")
        .unwrap();
    fake.on(
        "POST",
        &format!("{sub}/synchronize"),
        vec![reply(202, Value::Null).header("Location", "{base}/loc/1")],
    );
    fake.on("GET", "/loc/1", vec![
        reply(202, Value::Null).header("Retry-After", "0"),
        reply(200, json!({"synchronizationId": "sync-1", "status": "Succeeded", "synchronizationMode": "FullSync"})),
    ]);
    let s = fake
        .client()
        .synchronize(&sub, SynchronizationMode::FullSync)
        .await
        .unwrap();
    assert_eq!(s.synchronization_id, "sync-1");
    let post = fake
        .seen()
        .into_iter()
        .find(|s| s.method == "POST")
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&post.body).unwrap(),
        json!({"synchronizationMode": "FullSync"})
    );
}

#[tokio::test]
async fn poll_urls_on_another_origin_are_refused() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "DELETE",
        id.as_str(),
        vec![
            reply(202, Value::Null)
                .header("Azure-AsyncOperation", "https://evil.example.com/ops/1"),
        ],
    );
    let err = fake.client().start_delete_share(&id).await.unwrap_err();
    assert!(
        err.to_string().contains("not on the ARM endpoint's origin"),
        "{err}"
    );
}

#[tokio::test]
async fn lists_follow_next_link_across_pages() {
    let fake = Fake::start().await;
    let acct = AccountId::parse(ACCT).unwrap();
    let path = format!("{acct}/shares");
    fake.on("GET", &path, vec![reply(200, json!({"value": [share_body("a"), share_body("b")], "nextLink": "{base}/page/2?api-version=2021-08-01&$skipToken=2"}))]);
    fake.on(
        "GET",
        "/page/2",
        vec![reply(
            200,
            json!({"value": [share_body("c")], "nextLink": "{base}/page/3?$skipToken=3"}),
        )],
    );
    fake.on(
        "GET",
        "/page/3",
        vec![reply(200, json!({"value": [share_body("d")]}))],
    );
    let client = fake.client();
    let shares = client.list_shares(&acct).await.unwrap();
    let names: Vec<_> = shares.iter().filter_map(|s| s.meta.name.clone()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert_eq!(client.stats().reads, 3);
    let seen = fake.seen();
    assert!(
        seen[1].query.contains("skipToken=2"),
        "nextLink followed verbatim: {}",
        seen[1].query
    );
}

#[tokio::test]
async fn list_synchronizations_posts_the_first_page_and_gets_the_rest() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on("POST", &format!("{id}/listSynchronizations"), vec![reply(200, json!({"value": [{"synchronizationId": "1", "status": "Succeeded"}], "nextLink": "{base}/p2"}))]);
    fake.on(
        "GET",
        "/p2",
        vec![reply(
            200,
            json!({"value": [{"synchronizationId": "2", "status": "Failed"}]}),
        )],
    );
    let q = datashare_dr::arm::ListQuery {
        filter: Some("status eq 'Succeeded'".into()),
        orderby: None,
    };
    let runs = fake
        .client()
        .list_share_synchronizations(&id, &q)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    let first = &fake.seen()[0];
    assert_eq!(first.method, "POST");
    assert!(
        first.query.contains("%24filter=status+eq+%27Succeeded%27"),
        "{}",
        first.query
    );
}

#[tokio::test]
async fn paging_is_bounded_and_loops_are_detected() {
    let fake = Fake::start().await;
    let acct = AccountId::parse(ACCT).unwrap();
    fake.on(
        "GET",
        &format!("{acct}/shares"),
        vec![reply(200, json!({"value": [], "nextLink": "{base}/loop"}))],
    );
    fake.on(
        "GET",
        "/loop",
        vec![reply(200, json!({"value": [], "nextLink": "{base}/loop"}))],
    );
    let err = fake.client().list_shares(&acct).await.unwrap_err();
    assert!(err.to_string().contains("repeats an earlier page"), "{err}");

    fake.on(
        "GET",
        &format!("{acct}/shareSubscriptions"),
        vec![reply(
            200,
            json!({"value": [], "nextLink": "{base}/more?n=1"}),
        )],
    );
    fake.on(
        "GET",
        "/more",
        vec![
            reply(200, json!({"value": [], "nextLink": "{base}/more?n=2"})),
            reply(200, json!({"value": [], "nextLink": "{base}/more?n=3"})),
            reply(200, json!({"value": [], "nextLink": "{base}/more?n=4"})),
        ],
    );
    let err = fake
        .client_with(|s| s.max_pages = 3)
        .list_share_subscriptions(&acct)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("more than 3 pages"), "{err}");
}

#[tokio::test]
async fn refuses_static_tokens_no_auth_and_plain_http_off_loopback() {
    let remote_http = url::Url::parse("http://management.azure.com").unwrap();
    let remote_https = url::Url::parse("https://management.azure.com").unwrap();
    let cases = [
        (
            remote_http.clone(),
            AuthMode::AzureCli { tenant_id: None },
            "plain http://",
        ),
        (
            remote_https.clone(),
            AuthMode::StaticToken(Secret::new("t")),
            "static-token",
        ),
        (remote_https.clone(), AuthMode::None, "`none`"),
    ];
    for (url, auth, expect) in cases {
        let err = ArmClient::new(ArmSettings::new(url, auth)).unwrap_err();
        let msg = format!(
            "{err}: {}",
            std::error::Error::source(&err)
                .map(|s| s.to_string())
                .unwrap_or_default()
        );
        assert!(msg.contains(expect), "{msg}");
    }
    for u in ["http://127.0.0.1:9", "http://[::1]:9", "http://localhost:9"] {
        assert!(
            ArmClient::new(ArmSettings::new(
                url::Url::parse(u).unwrap(),
                AuthMode::None
            ))
            .is_ok(),
            "{u}"
        );
    }
    // a production endpoint with a real credential mode builds without any network traffic
    assert!(
        ArmClient::new(ArmSettings::new(
            remote_https,
            AuthMode::AzureCli { tenant_id: None }
        ))
        .is_ok()
    );
}

#[tokio::test]
async fn the_token_never_appears_in_errors_or_debug_output() {
    let fake = Fake::start().await;
    let client = fake.client();
    let err = client.get_share(&share_id()).await.unwrap_err();
    let text = format!("{err} {err:?} {client:?} {:?}", client.settings());
    assert!(!text.contains("test-token-123"), "{text}");
}

#[tokio::test]
async fn malformed_ids_are_rejected_with_a_reason() {
    let e = AccountId::parse(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataShare/accounts",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("missing the name after `accounts`"),
        "{e}"
    );
    let e = ShareId::parse(ACCT).unwrap_err();
    assert!(
        e.to_string()
            .contains("expected a `Microsoft.DataShare/accounts/shares`"),
        "{e}"
    );
    let fake = Fake::start().await;
    let err = fake
        .client()
        .get_consumer_invitation("west europe", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, ArmError::BadId { .. }), "{err}");
}

#[tokio::test]
async fn lowers_the_client_bucket_when_the_server_reports_few_remaining_reads() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "GET",
        id.as_str(),
        vec![
            reply(200, share_body("orders"))
                .header("x-ms-ratelimit-remaining-subscription-reads", "0"),
        ],
    );
    let client = fake.client();
    client.get_share(&id).await.unwrap();
    assert!(
        client.limiter().level(
            "00000000-0000-0000-0000-000000000001",
            datashare_dr::arm::OpKind::Read
        ) < 1.0
    );
    let t = Instant::now();
    client.get_share(&id).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(30),
        "the next read waits for a token: {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn never_exceeds_the_concurrency_limit() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "GET",
        id.as_str(),
        vec![reply(200, share_body("orders")).delay(Duration::from_millis(60))],
    );
    let client = fake.client_with(|s| s.max_concurrency = 2);
    let calls = (0..8).map(|_| {
        let c = client.clone();
        let id = id.clone();
        async move { c.get_share(&id).await }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(fake.0.max_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn readiness_reads_generic_resources_and_role_assignments() {
    let fake = Fake::start().await;
    let st = ResourceId::parse(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1",
    )
    .unwrap();
    fake.on("GET", st.as_str(), vec![reply(200, json!({"id": st.as_str(), "name": "st1", "type": "Microsoft.Storage/storageAccounts", "location": "northeurope", "kind": "StorageV2", "properties": {"provisioningState": "Succeeded", "isHnsEnabled": true}}))]);
    fake.on("GET", &format!("{st}/providers/Microsoft.Authorization/roleAssignments"), vec![reply(200, json!({"value": [
        {"id": "/x/ra1", "name": "ra1", "type": "Microsoft.Authorization/roleAssignments",
         "properties": {"roleDefinitionId": "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1", "principalId": "11111111-1111-1111-1111-111111111111", "scope": "/subscriptions/s/resourceGroups/rg"}}]}))]);
    let client = fake.client();
    let r = client
        .get_resource(&st, "2023-05-01")
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(r.location.as_deref(), Some("northeurope"));
    let missing = ResourceId::parse(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/gone",
    )
    .unwrap();
    assert!(
        client
            .get_resource(&missing, "2023-05-01")
            .await
            .unwrap()
            .is_none()
    );
    let ras = client
        .list_role_assignments(&st, "11111111-1111-1111-1111-111111111111")
        .await
        .unwrap();
    assert!(ras[0].grants(roles::STORAGE_BLOB_DATA_READER, &st));
    let q = fake
        .seen()
        .into_iter()
        .find(|s| s.path.ends_with("roleAssignments"))
        .unwrap()
        .query;
    assert!(q.contains("api-version=2022-04-01"), "{q}");
    assert!(
        q.contains("principalId+eq+%2711111111-1111-1111-1111-111111111111%27"),
        "{q}"
    );
    assert!(
        client
            .list_role_assignments(&st, "x' or 1 eq 1")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn put_dataset_sends_only_writable_fields() {
    let fake = Fake::start().await;
    let ds_id = share_id().data_set("ds1").unwrap();
    let body = json!({"kind": "Blob", "properties": {"containerName": "c", "filePath": "f", "subscriptionId": "s", "resourceGroup": "rg", "storageAccountName": "st", "dataSetId": "d-1"}, "id": ds_id.as_str(), "name": "ds1", "type": "Microsoft.DataShare/accounts/shares/dataSets"});
    fake.on("PUT", ds_id.as_str(), vec![reply(201, body.clone())]);
    let ds: DataSet = serde_json::from_value(body).unwrap();
    let back = fake.client().put_dataset(&ds_id, &ds).await.unwrap();
    assert_eq!(back.data_set_id(), Some("d-1"));
    let sent: Value = serde_json::from_str(&fake.seen()[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"kind": "Blob", "properties": {"containerName": "c", "filePath": "f", "subscriptionId": "s", "resourceGroup": "rg", "storageAccountName": "st"}})
    );
}

#[tokio::test]
async fn transport_errors_are_retried_then_reported_as_transient() {
    // a port that was just free: nothing listens there
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut s = ArmSettings::new(
        url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        AuthMode::None,
    );
    // Room for many retries and a long deadline: a refused connection still stops after
    // `CONNECT_FAILURE_ATTEMPTS` (a configuration fault, not an outage to wait out).
    s.retry = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(1),
    };
    s.deadline = Duration::from_secs(300);
    let client = ArmClient::new(s).unwrap();
    let err = client.get_share(&share_id()).await.unwrap_err();
    assert!(matches!(err, ArmError::Transport { .. }), "{err}");
    assert!(err.is_transient());
    assert!(datashare_dr::arm::client::is_connect_failure(&err), "{err}");
    assert_eq!(
        datashare_dr::arm::fault::classify(&err),
        datashare_dr::arm::fault::Failure::ToolFault(
            datashare_dr::arm::fault::ToolFault::Configuration
        )
    );
    let attempts = datashare_dr::arm::client::CONNECT_FAILURE_ATTEMPTS;
    assert_eq!(attempts, 2);
    assert_eq!(client.stats().reads, u64::from(attempts));
    assert_eq!(client.stats().retries, u64::from(attempts - 1));
}

/// The deadline starts when the first attempt may go out: a short (probe) deadline is not used
/// up waiting for this client's own token bucket, so pacing is never mistaken for an outage.
/// Here the read bucket holds 2 tokens and refills 4/s; a third call must wait ~250 ms for its
/// token, longer than its 150 ms deadline, and still succeeds.
#[tokio::test]
async fn waiting_for_the_own_token_bucket_does_not_use_up_the_deadline() {
    let fake = Fake::start().await;
    let id = share_id();
    fake.on(
        "GET",
        id.as_str(),
        vec![
            reply(200, share_body("orders")),
            reply(200, share_body("orders")),
            reply(200, share_body("orders")),
        ],
    );
    let client = fake
        .client_with(|s| {
            s.rate_limits.reads = datashare_dr::arm::limiter::BucketSpec {
                capacity: 2.0,
                refill_per_sec: 4.0,
            };
            s.rate_limits.headroom = 0.0;
        })
        .with_deadline(Duration::from_millis(150));
    client.get_share(&id).await.expect("first");
    client.get_share(&id).await.expect("second");
    let t = Instant::now();
    client
        .get_share(&id)
        .await
        .expect("the third waits for a token, then is sent with its full deadline");
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "it did wait for the bucket: {:?}",
        t.elapsed()
    );
}
