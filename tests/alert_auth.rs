//! Authenticated alerts (issue 15): `AlertWebhook` accepts an alert only with a valid Azure
//! Monitor secure-webhook token — RS256-signed by a key of the configured JWKS (the test issuer
//! in tests/support/alert_token.rs serves one on loopback), issued by the tenant, for the
//! configured audience, not expired, from an allowed caller. Everything else is 401, enqueues
//! nothing, writes no run, and logs exactly one WARN naming why (never the token).
//!
//! Goes through the router as the host calls it (payload mode), with in-memory storage.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use datashare_dr::config::Config;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::host::InvocationResponse;
use datashare_dr::startup::{AppState, AppStorage, router};
use datashare_dr::store::STAGE_QUEUE;
use serde_json::{Value, json};
use support::alert_token::{self, KID, Key};
use support::logs::Captured;
use tower::ServiceExt as _;

/// On `[alerts].allowed_sources` of examples/dr.toml (pair `sales`, failover = "auto"? see below).
const ALLOWED_SUB: &str = "11111111-2222-3333-4444-555555555555";

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/dr.toml"))
        .expect("examples/dr.toml")
}

fn trusted_config() -> DrConfig {
    DrConfig::from_toml_str(&alert_token::trust(&example()), "dr.toml").expect("config loads")
}

/// A fresh Resource Health "Unavailable" alert on the example's primary account.
fn alert() -> String {
    let target = format!(
        "/subscriptions/{ALLOWED_SUB}/resourceGroups/rg-weu/providers/Microsoft.DataShare/accounts/sales-weu"
    );
    let body = datashare_dr::failover::drill::resource_health_alert(
        &target,
        ALLOWED_SUB,
        time::OffsetDateTime::now_utc(),
    )
    .expect("the alert");
    String::from_utf8(body).expect("UTF-8")
}

struct Outcome {
    status: u16,
    body: Value,
    messages: usize,
    runs: usize,
    log: String,
}

async fn post(c: DrConfig, authorization: Option<String>, query: Value) -> Outcome {
    let mut headers = json!({"Content-Type": ["application/json"], "x-functions-key": ["fk"]});
    if let Some(a) = authorization {
        headers["Authorization"] = json!([a]);
    }
    let envelope = json!({
        "Data": {"req": {
            "Url": "https://app.example.invalid/api/alerts",
            "Method": "POST",
            "Query": query,
            "Headers": headers,
            "Params": {},
            "Body": alert(),
        }},
        "Metadata": {"sys": {"MethodName": "AlertWebhook", "UtcNow": "2026-01-01T00:00:00Z"}},
    });
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
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
    let res = answer.http_res().expect("an HTTP answer");
    storage
        .queue
        .ensure_queue(STAGE_QUEUE)
        .await
        .expect("queue");
    let messages = storage
        .queue
        .receive(STAGE_QUEUE, 32, Duration::from_secs(1))
        .await
        .expect("receive")
        .len();
    let runs = storage.blobs.list("runs/").await.expect("runs").len();
    Outcome {
        status: res.status(),
        body: serde_json::from_str(&res.body_text().unwrap_or_default()).unwrap_or(Value::Null),
        messages,
        runs,
        log: captured.text(),
    }
}

fn bearer(claims: &Value, key: Key) -> Option<String> {
    Some(format!("Bearer {}", alert_token::sign(claims, key, KID)))
}

#[tokio::test]
async fn a_valid_secure_webhook_token_is_accepted_and_starts_the_run() {
    let o = post(trusted_config(), Some(alert_token::bearer()), json!({})).await;
    assert_eq!(o.status, 202, "{}\n{}", o.body, o.log);
    assert!(
        o.messages >= 1 && o.runs >= 1,
        "nothing started: {}",
        o.body
    );
    assert!(
        !o.log.contains("\"level\":\"WARN\""),
        "an accepted alert logged a warning:\n{}",
        o.log
    );
}

/// Each rejection: 401, nothing enqueued or written, exactly one WARN naming the reason code,
/// and the token never in the log.
async fn assert_rejected(c: DrConfig, authorization: Option<String>, code: &str) {
    let o = post(c, authorization.clone(), json!({"code": "function-key"})).await;
    assert_eq!(o.status, 401, "{code}: {}\n{}", o.body, o.log);
    assert_eq!(o.body["code"], json!(code), "{}", o.body);
    assert_eq!(
        (o.messages, o.runs),
        (0, 0),
        "{code}: a rejected alert started something"
    );
    let warns: Vec<&str> = o
        .log
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\""))
        .collect();
    assert_eq!(warns.len(), 1, "{code}: expected one WARN line:\n{}", o.log);
    assert!(
        warns[0].contains(&format!("\"reason\":\"{code}\"")),
        "{code}: the WARN does not name why: {}",
        warns[0]
    );
    if let Some(token) = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
    {
        let signature = token.rsplit('.').next().unwrap_or(token);
        assert!(
            !o.log.contains(signature),
            "{code}: the token reached the log"
        );
    }
}

#[tokio::test]
async fn no_token_is_401_even_with_the_function_key() {
    // A forged body with the function key but no identity cannot start a run.
    assert_rejected(trusted_config(), None, "missing_token").await;
}

#[tokio::test]
async fn a_wrong_audience_is_401() {
    let mut c = alert_token::valid_claims();
    c["aud"] = json!("api://some-other-app");
    assert_rejected(trusted_config(), bearer(&c, Key::Trusted), "wrong_audience").await;
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let mut c = alert_token::valid_claims();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    c["exp"] = json!(now - 3600); // an hour ago: beyond the 5-minute skew
    assert_rejected(trusted_config(), bearer(&c, Key::Trusted), "expired").await;
}

#[tokio::test]
async fn a_wrong_signature_is_401() {
    let c = alert_token::valid_claims();
    assert_rejected(
        trusted_config(),
        bearer(&c, Key::Untrusted),
        "bad_signature",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_caller_is_401() {
    let mut c = alert_token::valid_claims();
    c["appid"] = json!("00000000-1111-2222-3333-444444444444");
    assert_rejected(trusted_config(), bearer(&c, Key::Trusted), "wrong_caller").await;
}

#[tokio::test]
async fn a_wrong_issuer_is_401() {
    let mut c = alert_token::valid_claims();
    c["iss"] = json!("https://sts.windows.net/00000000-0000-0000-0000-000000000000/");
    assert_rejected(trusted_config(), bearer(&c, Key::Trusted), "wrong_issuer").await;
}

#[tokio::test]
async fn without_trust_settings_every_alert_is_401_naming_what_to_set() {
    // require_authenticated is the default; examples/dr.toml has no tenant/audience.
    let c = DrConfig::from_toml_str(&example(), "dr.toml").expect("config loads");
    assert!(c.alerts.require_authenticated);
    assert_rejected(c, Some(alert_token::bearer()), "not_configured").await;
}

#[tokio::test]
async fn require_authenticated_false_accepts_the_function_key_alone() {
    let text = alert_token::trust(&example())
        .replace("[alerts]\n", "[alerts]\nrequire_authenticated = false\n");
    let c = DrConfig::from_toml_str(&text, "dr.toml").expect("config loads");
    let o = post(c, None, json!({})).await;
    assert_eq!(o.status, 202, "{}\n{}", o.body, o.log);
}
