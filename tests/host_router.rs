//! Router-level tests (axum `oneshot`, no socket): the readiness probe, one route per function,
//! and malformed payloads — each gets a 4xx whose JSON problem names the field, never a 5xx.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use datashare_dr::config::Config;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::handlers::FUNCTIONS;
use datashare_dr::host::{InvocationResponse, TriggerKind};
use datashare_dr::startup::{AppState, AppStorage, router};
use serde_json::{Value, json};
use tower::ServiceExt as _;

mod support;
use support::app::payload;

fn app() -> axum::Router {
    router(Arc::new(AppState::new(Config::for_port(0), None)))
}

async fn post(function: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let req = Request::post(format!("/{function}"))
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "x-azure-functions-invocationid",
            "11111111-2222-3333-4444-555555555555",
        )
        .body(body.into())
        .unwrap();
    let resp = app().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_readiness_probe_answers_at_once() {
    let resp = app()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_function_is_a_404_naming_it() {
    let (status, body) = post("NoSuchFunction", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["function"], json!("NoSuchFunction"));
}

/// A DR config with pair `sales` whose ARM endpoint is a closed loopback port: the requests
/// below are well-formed but name nothing that exists, so no handler gets as far as ARM.
fn configured_app() -> axum::Router {
    let toml = r#"
role = "provider"

[arm]
endpoint = "http://127.0.0.1:9"
auth = "static-token"
token = "sim"
deadline_secs = 2

[alerts]
allowed_sources = ["/subscriptions/11111111-2222-3333-4444-555555555555"]
# Routing and decoding only; alert authentication has its own tests (tests/alert_auth.rs).
require_authenticated = false

[[pairs]]
name = "sales"
primary = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-weu/providers/Microsoft.DataShare/accounts/sales-weu"
secondary = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-neu/providers/Microsoft.DataShare/accounts/sales-neu"
primary_region = "westeurope"
secondary_region = "northeurope"
"#;
    let dr = DrConfig::from_toml_str(toml, "router.toml").expect("the test config loads");
    router(Arc::new(
        AppState::new(Config::for_port(0), Some(dr)).with_storage(AppStorage::memory()),
    ))
}

async fn post_to(app: axum::Router, function: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let req = Request::post(format!("/{function}"))
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "x-azure-functions-invocationid",
            "11111111-2222-3333-4444-555555555555",
        )
        .body(body.into())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn valid_payload(name: &str, kind: TriggerKind) -> Value {
    match (name, kind) {
        ("FailoverStage", _) => {
            payload::queue(name, r#"{"runId":"r1","stage":"preflight","attempt":0}"#, 1)
        }
        ("ReplicatePair", _) => payload::queue(
            name,
            r#"{"jobId":"00000000-0000-0000-0000-0000000000aa","pair":"sales","round":0}"#,
            1,
        ),
        (_, TriggerKind::Queue) => payload::queue(name, "anything", 5),
        (_, TriggerKind::Timer) => payload::timer(name, false),
        ("StartFailover", _) => payload::http(
            name,
            "POST",
            "failover",
            json!({}),
            Some(r#"{"pair":"nosuch","mode":"drill","reason":"test"}"#),
        ),
        ("FailoverRun", _) => payload::http(
            name,
            "GET",
            "failover/r1",
            json!({"runId": "r1", "action": null}),
            None,
        ),
        ("ResetPairState", _) => payload::http(
            name,
            "POST",
            "failover/pairs/nosuch/reset",
            json!({"pair": "nosuch"}),
            Some(r#"{"reason":"test"}"#),
        ),
        ("ReplicateNow", _) => payload::http(
            name,
            "POST",
            "replicate",
            json!({}),
            Some(r#"{"pair":"nosuch"}"#),
        ),
        ("ReadinessStatus", _) => payload::http(
            name,
            "GET",
            "readiness/nosuch",
            json!({"pair": "nosuch"}),
            None,
        ),
        (_, TriggerKind::Http) => payload::http(name, "POST", "x", json!({}), Some("{}")),
    }
}

/// The caller's status and body text of an HTTP function's answer (host status must be 200).
fn http_answer(function: &str, status: StatusCode, body: &Value) -> (u16, String) {
    assert_eq!(status, StatusCode::OK, "{function}: {body}");
    let r = InvocationResponse::parse(body.to_string().as_bytes(), &["res"]).unwrap();
    let res = r
        .http_res()
        .unwrap_or_else(|| panic!("{function}: no res"))
        .clone();
    (res.status(), res.body_text().unwrap_or_default())
}

/// Every function decodes its well-formed trigger and reaches its domain call, which answers
/// for a request naming nothing that exists: HTTP functions a 404 naming the unknown pair/run
/// (or the alert's "ignored" decision), a stage message for an unknown run is acknowledged with
/// the reason logged (no retries, no poison), a poison message that is no stage message is
/// logged and acknowledged; the timers run against an ARM that does not answer.
#[tokio::test]
async fn every_function_has_a_route_that_decodes_its_trigger() {
    for f in FUNCTIONS {
        let (status, body) = post_to(
            configured_app(),
            f.name,
            valid_payload(f.name, f.trigger).to_string(),
        )
        .await;
        let logs = || -> Vec<String> {
            InvocationResponse::parse(body.to_string().as_bytes(), &[])
                .unwrap_or_else(|e| panic!("{}: {e}: {body}", f.name))
                .logs()
                .to_vec()
        };
        match f.name {
            "StartFailover" | "ReplicateNow" | "ReadinessStatus" | "ResetPairState" => {
                let (code, text) = http_answer(f.name, status, &body);
                assert_eq!(code, 404, "{}: {text}", f.name);
                assert!(text.contains("nosuch"), "{}: {text}", f.name);
            }
            "FailoverRun" => {
                let (code, text) = http_answer(f.name, status, &body);
                assert_eq!(code, 404, "{text}");
                assert!(text.contains("run r1 not found"), "{text}");
            }
            "AlertWebhook" => {
                let (code, text) = http_answer(f.name, status, &body);
                assert_eq!(code, 200, "{text}");
                let answer: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(answer["decision"], "ignored", "{text}");
                assert_eq!(answer["code"], "unsupported_schema", "{text}");
            }
            "FailoverStage" => {
                assert_eq!(status, StatusCode::OK, "{body}");
                let logs = logs();
                assert!(
                    logs.iter().any(|l| l.contains("run r1 not found")),
                    "{logs:?}"
                );
            }
            "ReplicatePair" => {
                // A message for a job that does not exist is acknowledged with the reason.
                assert_eq!(status, StatusCode::OK, "{body}");
                let logs = logs();
                assert!(
                    logs.iter()
                        .any(|l| l.contains("does not exist; message dropped")),
                    "{logs:?}"
                );
            }
            "FailoverPoison" => {
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(logs(), ["poison message is not a stage message"]);
            }
            "ReplicateConfig" => {
                // Nothing observed: a transient failure naming the pair (timers are not retried).
                assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
                let detail = body["detail"].as_str().unwrap_or_default();
                assert!(detail.contains("replicate pair sales"), "{detail}");
                assert_eq!(
                    body["invocationId"],
                    json!("11111111-2222-3333-4444-555555555555")
                );
            }
            "CheckReadiness" => {
                assert_eq!(status, StatusCode::OK, "{body}");
                let logs = logs();
                assert!(
                    // Neither account answers here (nothing listens at the ARM endpoint): the
                    // pair cannot be assessed, which is not an outage.
                    logs.iter().any(|l| l.starts_with("pair sales: Unknown")),
                    "{logs:?}"
                );
            }
            "Notify" => {
                // Not a notification (and no channel configured): acknowledged, dropped with
                // the reason, never retried.
                assert_eq!(status, StatusCode::OK, "{body}");
                let logs = logs();
                assert!(logs.iter().any(|l| l.starts_with("dropped: ")), "{logs:?}");
            }
            "RunWatchdog" => {
                // No locks held in a fresh store: a pass that checks nothing and changes nothing.
                assert_eq!(status, StatusCode::OK, "{body}");
                let logs = logs();
                assert!(
                    logs.iter()
                        .any(|l| l.starts_with("watchdog: 0 lock(s) checked; resumed []")),
                    "{logs:?}"
                );
            }
            other => panic!("{other}: a new function needs its case here"),
        }
    }
}

/// (function, raw body, expected status, field the problem must name)
fn malformed() -> Vec<(&'static str, String, u16, &'static str)> {
    let stage = |text: &str| payload::queue("FailoverStage", text, 1).to_string();
    let with_meta = |key: &str, value: Value| {
        let mut p = payload::queue("FailoverStage", r#"{"runId":"r1","stage":"preflight"}"#, 1);
        p["Metadata"][key] = value;
        p.to_string()
    };
    let timer = |timer: Value| json!({"Data": {"timer": timer}, "Metadata": {}}).to_string();
    let http = |req: Value| json!({"Data": {"req": req}, "Metadata": {}}).to_string();
    let start = |body: &str| {
        payload::http("StartFailover", "POST", "failover", json!({}), Some(body)).to_string()
    };
    vec![
        ("FailoverStage", String::new(), 400, "$"),
        ("FailoverStage", "{\"Data\":".into(), 400, "$"),
        ("FailoverStage", "[1,2]".into(), 400, "$"),
        ("FailoverStage", r#"{"Metadata":{}}"#.into(), 400, "Data"),
        ("FailoverStage", r#"{"Data":"x"}"#.into(), 400, "Data"),
        (
            "FailoverStage",
            r#"{"Data":{},"Metadata":{"DequeueCount":"1"}}"#.into(),
            400,
            "Data.msg",
        ),
        (
            "FailoverStage",
            r#"{"Data":{"msg":17},"Metadata":{"DequeueCount":"1"}}"#.into(),
            400,
            "Data.msg",
        ),
        ("FailoverStage", stage("not json"), 400, "Data.msg"),
        ("FailoverStage", stage(r#"{"runId":"r1"}"#), 400, "Data.msg"),
        (
            "FailoverStage",
            stage(r#"{"runId":5,"stage":"preflight"}"#),
            400,
            "Data.msg.runId",
        ),
        (
            "FailoverStage",
            stage(r#"{"runId":"r","stage":"s","attempt":-1}"#),
            400,
            "Data.msg.attempt",
        ),
        (
            "FailoverStage",
            stage(r#"{"runId":"r","stage":"s","notBefore":"tomorrow"}"#),
            400,
            "Data.msg.notBefore",
        ),
        (
            "FailoverStage",
            with_meta("DequeueCount", json!("many")),
            400,
            "Metadata.DequeueCount",
        ),
        (
            "FailoverStage",
            with_meta("DequeueCount", json!("0")),
            400,
            "Metadata.DequeueCount",
        ),
        (
            "FailoverStage",
            with_meta("DequeueCount", json!(null)),
            400,
            "Metadata.DequeueCount",
        ),
        (
            "FailoverStage",
            with_meta("InsertionTime", json!("last tuesday")),
            400,
            "Metadata.InsertionTime",
        ),
        (
            "FailoverStage",
            with_meta("Id", json!({"a": 1})),
            400,
            "Metadata.Id",
        ),
        (
            "FailoverPoison",
            r#"{"Data":{"msg":"\"x\""},"Metadata":{}}"#.into(),
            400,
            "Metadata.DequeueCount",
        ),
        ("ReplicateConfig", timer(json!("tick")), 400, "Data.timer"),
        (
            "ReplicateConfig",
            timer(json!({"IsPastDue": "perhaps"})),
            400,
            "Data.timer.IsPastDue",
        ),
        (
            "CheckReadiness",
            timer(json!({"ScheduleStatus": {"Next": "soon"}})),
            400,
            "Data.timer.ScheduleStatus.Next",
        ),
        (
            "CheckReadiness",
            timer(json!({"ScheduleStatus": 3})),
            400,
            "Data.timer.ScheduleStatus",
        ),
        (
            "CheckReadiness",
            json!({"Data": {}}).to_string(),
            400,
            "Data.timer",
        ),
        (
            "ReadinessStatus",
            http(json!({"Url": "x"})),
            400,
            "Data.req.Method",
        ),
        (
            "ReadinessStatus",
            http(json!({"Method": "GET", "Headers": {"Accept": [1]}})),
            400,
            "Data.req.Headers.Accept[0]",
        ),
        (
            "ReadinessStatus",
            http(json!({"Method": "GET", "Query": [1]})),
            400,
            "Data.req.Query",
        ),
        (
            "ReadinessStatus",
            http(json!({"Method": "GET", "Params": {"pair": {"x": 1}}})),
            400,
            "Data.req.Params.pair",
        ),
        (
            "AlertWebhook",
            http(json!({"Method": "POST", "Body": {"not": "text"}})),
            400,
            "Data.req.Body",
        ),
        // HTTP body problems reach the caller through `res` (status in res, 200 to the host).
        ("StartFailover", start("{"), 400, "body"),
        (
            "StartFailover",
            start(r#"{"mode":"drill","reason":"r"}"#),
            400,
            "body",
        ),
        (
            "StartFailover",
            start(r#"{"pair":"p","mode":"sideways","reason":"r"}"#),
            400,
            "body.mode",
        ),
        (
            "StartFailover",
            start(r#"{"pair":"p","mode":"drill","reason":"r","force":"yes"}"#),
            400,
            "body.force",
        ),
        (
            "StartFailover",
            start(r#"{"pair":" ","mode":"drill","reason":"r"}"#),
            400,
            "body.pair",
        ),
        (
            "StartFailover",
            payload::http("StartFailover", "POST", "failover", json!({}), None).to_string(),
            400,
            "body",
        ),
        (
            "FailoverRun",
            payload::http(
                "FailoverRun",
                "POST",
                "failover/r1",
                json!({"runId": "r1"}),
                None,
            )
            .to_string(),
            400,
            "params.action",
        ),
        (
            "FailoverRun",
            payload::http("FailoverRun", "GET", "failover", json!({}), None).to_string(),
            400,
            "params.runId",
        ),
    ]
}

#[tokio::test]
async fn malformed_payloads_get_a_4xx_naming_the_field() {
    let cases = malformed();
    assert!(cases.len() >= 20);
    for (function, body, expected, field) in cases {
        let (status, answer) = post(function, body.clone()).await;
        let kind = FUNCTIONS
            .iter()
            .find(|f| f.name == function)
            .unwrap()
            .trigger;
        // Envelope problems are answered to the host; body problems of HTTP functions go to the
        // caller inside `res`.
        let problem = if kind == TriggerKind::Http && status == StatusCode::OK {
            let r = InvocationResponse::parse(answer.to_string().as_bytes(), &["res"]).unwrap();
            let res = r.http_res().unwrap().clone();
            assert_eq!(res.status(), expected, "{function} {body}");
            serde_json::from_str::<Value>(&res.body_text().unwrap()).unwrap()
        } else {
            assert_eq!(status.as_u16(), expected, "{function} {body}: {answer}");
            answer
        };
        assert!(!status.is_server_error(), "{function} {body}");
        assert_eq!(
            problem["field"],
            json!(field),
            "{function} {body}: {problem}"
        );
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(field.trim_start_matches('$')) || field == "$",
            "{detail}"
        );
    }
}

#[tokio::test]
async fn an_oversized_http_body_is_413_and_an_oversized_envelope_too() {
    let big = format!(
        r#"{{"pair":"{}","mode":"drill","reason":"r"}}"#,
        "p".repeat(300 * 1024)
    );
    let (status, answer) = post(
        "StartFailover",
        payload::http("StartFailover", "POST", "failover", json!({}), Some(&big)).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r = InvocationResponse::parse(answer.to_string().as_bytes(), &["res"]).unwrap();
    assert_eq!(r.http_res().unwrap().status(), 413);

    let huge = payload::queue("FailoverPoison", &"x".repeat(5 * 1024 * 1024), 1).to_string();
    let (status, answer) = post("FailoverPoison", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["field"], json!("$"));
}

#[tokio::test]
async fn a_queue_message_with_unknown_fields_and_metadata_echoes_is_accepted() {
    let mut p = payload::queue(
        "FailoverStage",
        r#"{"runId":"r1","stage":"notify","future":{"x":1}}"#,
        2,
    );
    p["Metadata"]["runId"] = json!("\"r1\"");
    p["Metadata"]["stage"] = json!("\"notify\"");
    p["Metadata"]["SomethingNew"] = json!(42);
    let (status, body) = post_to(configured_app(), "FailoverStage", p.to_string()).await;
    // Decoded (no 400) and handled: the run does not exist, which is acknowledged and logged.
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = InvocationResponse::parse(body.to_string().as_bytes(), &[]).unwrap();
    assert!(
        r.logs().iter().any(|l| l.contains("run r1 not found")),
        "{:?}",
        r.logs()
    );
}
