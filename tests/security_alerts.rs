//! Security checks (issue 8): alerts from sources outside `[alerts].allowed_sources` are refused
//! with a 4xx through the `AlertWebhook` function, logged, and start nothing; alert bodies over
//! the HTTP body limit are refused with 413.
//!
//! The decision itself (`Decision::Refuse`) is tested in tests/alerts_decide.rs; this goes through
//! the router as the host calls it, with a capturing tracing subscriber.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use datashare_dr::config::Config;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::failover::alert::{Decision, decide, parse_alert};
use datashare_dr::host::InvocationResponse;
use datashare_dr::startup::{AppState, AppStorage, router};
use datashare_dr::store::STAGE_QUEUE;
use serde_json::{Value, json};
use std::time::Duration;
use support::logs::Captured;
use tower::ServiceExt as _;

const OTHER_SUB: &str = "99999999-9999-9999-9999-999999999999";
/// On `[alerts].allowed_sources` of examples/dr.toml, with the pair `sales`.
const ALLOWED_SUB: &str = "11111111-2222-3333-4444-555555555555";

fn config() -> DrConfig {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/dr.toml"))
        .expect("examples/dr.toml");
    // The example config with the test issuer trusted (issue 15): these posts are authenticated.
    DrConfig::from_toml_str(&support::alert_token::trust(&text), "dr.toml")
        .expect("the example config loads")
}

/// The Resource Health sample, moved onto the example's primary account but in a subscription
/// that is not on the allow-list.
fn foreign_alert() -> String {
    alert_from(OTHER_SUB)
}

/// A fresh Resource Health "Unavailable" (platform-initiated) alert on the example's primary
/// account, seen from subscription `sub` (the drill's alert builder).
fn alert_from(sub: &str) -> String {
    let target = format!(
        "/subscriptions/{sub}/resourceGroups/rg-weu/providers/Microsoft.DataShare/accounts/sales-weu"
    );
    let body = datashare_dr::failover::drill::resource_health_alert(
        &target,
        sub,
        time::OffsetDateTime::now_utc(),
    )
    .expect("the alert");
    String::from_utf8(body).expect("UTF-8")
}

/// Posts the alert to `AlertWebhook` with in-memory storage; returns the answer and that
/// storage (to see what the call wrote or enqueued).
/// The tests of this file run one at a time: one of them captures the log through a scoped
/// subscriber, and tracing's per-callsite interest cache is process-wide — a test without a
/// subscriber that reaches the same callsites at the same moment could leave them disabled for
/// the capture (seen as a flake under load in the full suite).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn post_alert(c: DrConfig, body: String) -> (InvocationResponse, AppStorage) {
    let envelope = json!({
        "Data": {"req": {
            "Url": "https://app.example.invalid/api/alerts",
            "Method": "POST",
            "Query": {},
            "Headers": {
                "Content-Type": ["application/json"],
                "Authorization": [support::alert_token::bearer()],
            },
            "Params": {},
            "Body": body,
        }},
        "Metadata": {"sys": {"MethodName": "AlertWebhook", "UtcNow": "2026-01-01T00:00:00Z"}},
    });
    let storage = AppStorage::memory();
    let state = AppState::new(Config::for_port(0), Some(c)).with_storage(storage.clone());
    let req = Request::post("/AlertWebhook")
        .header("content-type", "application/json")
        .body(Body::from(envelope.to_string()))
        .expect("a request");
    let resp = router(Arc::new(state))
        .oneshot(req)
        .await
        .expect("an answer");
    let bytes = axum::body::to_bytes(resp.into_body(), 1024 * 1024)
        .await
        .expect("a body");
    let answer = InvocationResponse::parse(&bytes, &["res"]).expect("a payload-mode answer");
    (answer, storage)
}

/// Stage messages waiting on `failover-stages` and run records written.
async fn started(storage: &AppStorage) -> (usize, usize) {
    storage
        .queue
        .ensure_queue(STAGE_QUEUE)
        .await
        .expect("queue");
    let messages = storage
        .queue
        .receive(STAGE_QUEUE, 32, Duration::from_secs(1))
        .await
        .expect("receive");
    let runs = storage.blobs.list("runs/").await.expect("list runs");
    (messages.len(), runs.len())
}

#[tokio::test]
async fn an_alert_from_a_source_off_the_allow_list_is_refused_with_a_4xx_and_logged() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let c = config();
    let body = foreign_alert();
    // precondition: the decision refuses it
    let alert = parse_alert(body.as_bytes()).expect("the alert parses");
    let decision = decide(&alert, &c);
    assert!(matches!(decision, Decision::Refuse { .. }), "{decision}");

    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (answer, storage) = post_alert(c, body).await;
    let res = answer.http_res().expect("an HTTP answer for the caller");
    assert!(
        (400..500).contains(&res.status()),
        "status {} {:?}",
        res.status(),
        res.body_text()
    );
    assert_eq!(
        started(&storage).await,
        (0, 0),
        "a refused alert enqueued a stage or wrote a run"
    );
    let log = captured.text();
    assert!(
        log.lines().any(|l| l.contains("\"level\":\"WARN\"")
            && l.contains("AlertWebhook")
            && l.contains(OTHER_SUB)),
        "the refusal was not logged as a warning naming the source:\n{log}"
    );
}

#[tokio::test]
async fn the_same_alert_from_the_allowed_subscription_is_not_refused() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (answer, storage) = post_alert(config(), alert_from(ALLOWED_SUB)).await;
    let res = answer.http_res().expect("an HTTP answer for the caller");
    let body: Value = serde_json::from_str(&res.body_text().unwrap_or_default()).expect("JSON");
    assert_eq!(res.status(), 202, "{body}");
    assert_eq!(body["decision"], "accepted", "{body}");
    assert_eq!(
        started(&storage).await,
        (1, 1),
        "one run and its preflight message"
    );
}

#[tokio::test]
async fn an_alert_body_over_the_size_limit_is_refused_with_413() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let big = format!(
        r#"{{"schemaId":"azureMonitorCommonAlertSchema","data":{{"essentials":{{"description":"{}"}}}}}}"#,
        "x".repeat(datashare_dr::host::HTTP_BODY_LIMIT + 1)
    );
    let (answer, storage) = post_alert(config(), big).await;
    let res = answer.http_res().expect("an HTTP answer for the caller");
    assert_eq!(res.status(), 413, "{:?}", res.body_text());
    assert_eq!(started(&storage).await, (0, 0));
}
