//! Security checks (issue 8) on the HTTP surface.
//!
//! - Every HTTP-triggered function's `functions/<Name>/function.json` declares
//!   `authLevel: "function"` (callers need a function key; the host enforces it before our code
//!   runs), and the folders with an HTTP trigger are exactly the HTTP functions of
//!   `handlers::FUNCTIONS`. (That the host emulator enforces keys is tested in
//!   tests/emulator_host.rs.)
//! - Bodies over the size limit are refused with 413 through the router, for every function:
//!   an invocation envelope over `startup::ENVELOPE_LIMIT` is refused before decoding, whatever
//!   the function (tests/host_router.rs covers one queue function and the per-request HTTP body
//!   limit of StartFailover).
//!
//! Alert sources outside the allow-list: tests/security_alerts.rs (through the AlertWebhook
//! route) and tests/alerts_decide.rs (the decision table).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use datashare_dr::config::Config;
use datashare_dr::handlers::FUNCTIONS;
use datashare_dr::host::TriggerKind;
use datashare_dr::startup::{AppState, ENVELOPE_LIMIT, router};
use serde_json::Value;
use tower::ServiceExt as _;

fn functions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("functions")
}

/// `(folder name, trigger binding)` for every function.json in the app.
fn triggers() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(functions_dir()).expect("functions/ exists") {
        let dir = entry.expect("an entry").path();
        let file = dir.join("function.json");
        if !file.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable function.json");
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.display()));
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bindings = json["bindings"].as_array().cloned().unwrap_or_default();
        let trigger = bindings
            .into_iter()
            .find(|b| {
                b["direction"] == "in" && b["type"].as_str().is_some_and(|t| t.ends_with("Trigger"))
            })
            .unwrap_or_else(|| panic!("{}: no trigger binding", file.display()));
        out.push((name, trigger));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_http_function_requires_a_function_key() {
    let all = triggers();
    assert_eq!(all.len(), FUNCTIONS.len(), "one function.json per function");
    let mut http: Vec<&str> = Vec::new();
    for (name, trigger) in &all {
        if trigger["type"] != "httpTrigger" {
            assert!(
                trigger.get("authLevel").is_none(),
                "{name}: authLevel on a {} trigger",
                trigger["type"]
            );
            continue;
        }
        http.push(name);
        assert_eq!(
            trigger["authLevel"].as_str(),
            Some("function"),
            "{name}/function.json must use authLevel \"function\" (found {})",
            trigger["authLevel"]
        );
    }
    let mut expected: Vec<&str> = FUNCTIONS
        .iter()
        .filter(|f| f.trigger == TriggerKind::Http)
        .map(|f| f.name)
        .collect();
    expected.sort_unstable();
    http.sort_unstable();
    assert_eq!(
        http, expected,
        "HTTP-triggered folders vs handlers::FUNCTIONS"
    );
    assert!(!http.is_empty());
}

#[test]
fn host_json_does_not_open_an_anonymous_route_prefix_or_forward_requests() {
    // `enableForwardingHttpRequest` would hand raw requests (headers with the key) to the
    // handler instead of payload mode; an empty routePrefix is fine, anonymous is per function.
    let text = std::fs::read_to_string(functions_dir().join("../host.json")).expect("host.json");
    let host: Value = serde_json::from_str(&text).expect("host.json is JSON");
    let forwarding = &host["customHandler"]["enableForwardingHttpRequest"];
    assert!(
        forwarding.is_null() || forwarding == false,
        "enableForwardingHttpRequest must stay off: {forwarding}"
    );
}

async fn post_raw(function: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let app = router(Arc::new(AppState::new(Config::for_port(0), None)));
    let req = Request::post(format!("/{function}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a request");
    let resp = app.oneshot(req).await.expect("an answer");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1024 * 1024)
        .await
        .expect("a small answer body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn an_envelope_over_the_limit_is_refused_with_413_by_every_function() {
    // valid-looking JSON, so only the size can be the reason
    let mut body = br#"{"Data":{"x":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', ENVELOPE_LIMIT));
    body.extend_from_slice(br#""},"Metadata":{}}"#);
    for f in FUNCTIONS {
        let (status, problem) = post_raw(f.name, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}: {problem}",
            f.name
        );
        assert_eq!(problem["status"], 413, "{}: {problem}", f.name);
        assert_eq!(problem["function"], f.name, "{problem}");
    }
    // just under the limit is not refused for its size
    let (status, problem) = post_raw(FUNCTIONS[0].name, body[..ENVELOPE_LIMIT - 64].to_vec()).await;
    assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
}
