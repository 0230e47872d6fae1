//! Tests of the host emulator itself (tests/support/host_emulator.rs), against real Azurite and a
//! small fake custom handler (an axum app in this test): payload shapes, HTTP routing and keys,
//! output bindings moved into queues, retries on failure with increasing dequeue count, poison
//! after maxDequeueCount, undecodable messages poisoned without an invocation.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use datashare_dr::store::{MessageEncoding, Queue};
use serde_json::{Value, json};
use support::host_emulator::{
    Disposition, HostEmulator, Pump, match_route, parse_timespan, queue_messages,
};

// ---------------------------------------------------------------------------------------------
// the fake app: host.json + function.json files in a temp dir, and a handler

const HOST_JSON: &str = r#"{
  "version": "2.0",
  "extensionBundle": { "id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)" },
  "customHandler": { "description": { "defaultExecutablePath": "handler", "arguments": ["serve"] }, "enableForwardingHttpRequest": false },
  "functionTimeout": "00:00:20",
  "extensions": { "queues": { "maxDequeueCount": 3, "visibilityTimeout": "00:00:01", "batchSize": 4, "messageEncoding": "base64" } }
}"#;

fn write_app(dir: &std::path::Path) {
    std::fs::write(dir.join("host.json"), HOST_JSON).unwrap();
    let functions = [
        (
            "Tick",
            json!({"bindings": [
                {"name": "myTimer", "type": "timerTrigger", "direction": "in", "schedule": "%TICK_SCHEDULE%", "useMonitor": true},
                {"name": "out", "type": "queue", "direction": "out", "queueName": "emu-work", "connection": "AzureWebJobsStorage"}
            ]}),
        ),
        (
            "Work",
            json!({"bindings": [
                {"name": "item", "type": "queueTrigger", "direction": "in", "queueName": "emu-work", "connection": "AzureWebJobsStorage"},
                {"name": "next", "type": "queue", "direction": "out", "queueName": "emu-next", "connection": "AzureWebJobsStorage"}
            ]}),
        ),
        (
            "Submit",
            json!({"bindings": [
                {"name": "req", "type": "httpTrigger", "direction": "in", "authLevel": "function", "methods": ["post"], "route": "jobs/{kind}/{id?}"},
                {"name": "res", "type": "http", "direction": "out"},
                {"name": "job", "type": "queue", "direction": "out", "queueName": "emu-work", "connection": "AzureWebJobsStorage"}
            ]}),
        ),
    ];
    for (name, def) in functions {
        let d = dir.join("functions").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("function.json"),
            serde_json::to_vec_pretty(&def).unwrap(),
        )
        .unwrap();
    }
}

#[derive(Clone, Debug)]
struct Seen {
    function: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn seen(&self, function: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.function == function)
            .cloned()
            .collect()
    }
}

fn json_response(v: Value) -> Response {
    ([("content-type", "application/json")], v.to_string()).into_response()
}

/// The fake handler. `Work` obeys its message: `{"fail": n}` answers 500 while
/// DequeueCount <= n, `{"mode": "text"}` answers 200 text/plain (an invalid answer),
/// `{"mode": "null"}` answers JSON null; otherwise 200 with two `next` messages.
async fn invoke(
    State(fake): State<Fake>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad envelope: {e}")).into_response(),
    };
    fake.seen.lock().unwrap().push(Seen {
        function: function.clone(),
        headers,
        body: body.clone(),
    });
    match function.as_str() {
        "Tick" => json_response(json!({
            "Outputs": { "out": { "runId": "from-timer", "stage": "preflight" } },
            "Logs": ["ticked"],
            "ReturnValue": null
        })),
        "Work" => {
            // Unwrap the double-encoded message (§5.3) and read the dequeue count.
            let raw = body["Data"]["item"].as_str().unwrap_or_default();
            let text: String = serde_json::from_str(raw).unwrap_or_default();
            let msg: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let dequeue: u64 = body["Metadata"]["DequeueCount"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if let Some(n) = msg["fail"].as_u64()
                && dequeue <= n
            {
                return (StatusCode::INTERNAL_SERVER_ERROR, "transient").into_response();
            }
            match msg["mode"].as_str() {
                Some("text") => return (StatusCode::OK, "ok").into_response(),
                Some("null") => return json_response(Value::Null),
                _ => {}
            }
            json_response(json!({
                "Outputs": { "next": [ { "from": text, "part": 1 }, { "from": text, "part": 2 } ] },
                "Logs": [format!("dequeue {dequeue}")]
            }))
        }
        "Submit" => {
            let req = &body["Data"]["req"];
            json_response(json!({
                "Outputs": {
                    "res": {
                        "statusCode": "202",
                        "headers": { "Content-Type": "application/json", "X-Run": "r-42" },
                        "body": { "kind": req["Params"]["kind"], "id": req["Params"]["id"], "query": req["Query"], "body": req["Body"] }
                    },
                    "job": { "runId": "r-42", "stage": "preflight" }
                }
            }))
        }
        _ => (StatusCode::NOT_FOUND, "no such function").into_response(),
    }
}

struct App {
    fake: Fake,
    base: String,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    write_app(dir.path());
    let fake = Fake::default();
    let router = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ready" }))
        .route("/{function}", axum::routing::post(invoke))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    App {
        fake,
        base,
        server,
        dir: dir.path().to_path_buf(),
        _dir: dir,
    }
}

/// The emulator for this test, with this test's own queue names.
fn emulator(
    app: &App,
    az: &support::azurite::TestAzurite,
    key: Option<&str>,
) -> (HostEmulator, String, String) {
    let work = support::azurite::unique_name("emu-work");
    let next = support::azurite::unique_name("emu-next");
    let mut b = HostEmulator::builder(&app.dir, &app.base, &az.settings)
        .setting("TICK_SCHEDULE", "0 */5 * * * *")
        .queue_alias("emu-work", &work)
        .queue_alias("emu-next", &next);
    if let Some(k) = key {
        b = b.function_key(k);
    }
    (b.build().unwrap(), work, next)
}

async fn drain(q: &dyn Queue, queue: &str) -> Vec<String> {
    match q.receive(queue, 32, Duration::from_secs(60)).await {
        Ok(ms) => ms.into_iter().map(|m| m.text).collect(),
        Err(datashare_dr::store::StoreError::NotFound { .. }) => Vec::new(),
        Err(e) => panic!("{e:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// tests

#[tokio::test]
async fn reads_the_queue_settings_from_host_json() {
    let app = start_app().await;
    let Some(az) = support::azurite::azurite("reads_the_queue_settings_from_host_json") else {
        return;
    };
    let (emu, _, _) = emulator(&app, &az, None);
    let h = emu.host_settings();
    assert_eq!(h.max_dequeue_count, 3);
    assert_eq!(h.visibility_timeout, Duration::from_secs(1));
    assert_eq!(h.message_encoding, MessageEncoding::Base64);
    assert_eq!(h.batch_size, 4);
    assert_eq!(
        emu.functions().keys().collect::<Vec<_>>(),
        ["Submit", "Tick", "Work"]
    );
}

#[tokio::test]
async fn a_timer_gets_the_hosts_payload_and_its_output_reaches_the_queue() {
    let app = start_app().await;
    let Some(az) = support::azurite::azurite("a_timer_gets_the_hosts_payload") else {
        return;
    };
    let (emu, work, _) = emulator(&app, &az, None);
    let inv = emu.fire_timer("Tick").await.unwrap();
    assert!(inv.succeeded, "{:?}", inv.failure);
    assert_eq!(inv.logs, ["ticked"]);

    let seen = app.fake.seen("Tick");
    assert_eq!(seen.len(), 1);
    let h = &seen[0].headers;
    assert_eq!(h["content-type"], "application/json; charset=utf-8");
    assert!(h.contains_key("x-azure-functions-invocationid"));
    assert!(
        h["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("Azure-Functions-Host/")
    );
    assert_eq!(
        h.get("transfer-encoding").map(|v| v.to_str().unwrap()),
        Some("chunked")
    );
    assert!(h.get("content-length").is_none());
    let timer = &seen[0].body["Data"]["myTimer"];
    assert_eq!(timer["Schedule"]["AdjustForDST"], json!(true));
    assert_eq!(timer["IsPastDue"], json!(false));
    assert_eq!(
        timer["ScheduleStatus"]["Last"],
        json!("0001-01-01T00:00:00")
    );
    let sys = &seen[0].body["Metadata"]["sys"];
    assert_eq!(sys["MethodName"], json!("Tick"));
    let utc = sys["UtcNow"].as_str().unwrap();
    assert!(
        utc.ends_with('Z') && utc.len() == "2022-06-13T06:00:18.1974545Z".len(),
        "{utc}"
    );
    assert_eq!(
        seen[0].body["Metadata"].as_object().unwrap().len(),
        1,
        "timer Metadata has only sys"
    );

    // The object output became one (indented JSON) message on the work queue.
    let msgs = drain(emu.queue(), &work).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&msgs[0]).unwrap(),
        json!({"runId": "from-timer", "stage": "preflight"})
    );

    // Second firing: Last is the previous firing; a past-due firing says so.
    emu.fire_timer_with(
        "Tick",
        support::host_emulator::TimerFire {
            is_past_due: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let seen = app.fake.seen("Tick");
    assert_ne!(
        seen[1].body["Data"]["myTimer"]["ScheduleStatus"]["Last"],
        json!("0001-01-01T00:00:00")
    );
    assert_eq!(seen[1].body["Data"]["myTimer"]["IsPastDue"], json!(true));
}

#[tokio::test]
async fn a_queue_message_arrives_double_encoded_with_queue_metadata_and_fans_out() {
    let app = start_app().await;
    let Some(az) = support::azurite::azurite("a_queue_message_arrives_double_encoded") else {
        return;
    };
    let (emu, _work, next) = emulator(&app, &az, None);
    let text = r#"{"runId":"r1","stage":"final-sync","attempt":0}"#;
    let id = emu.enqueue("Work", text, None).await.unwrap();
    let report = emu
        .pump_queue("Work", Pump::until_completed(1, 5, Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(report.count(Disposition::Completed), 1, "{report:?}");

    let seen = app.fake.seen("Work");
    let body = &seen[0].body;
    assert_eq!(
        body["Data"]["item"],
        json!(serde_json::to_string(text).unwrap())
    );
    let md = &body["Metadata"];
    assert_eq!(md["DequeueCount"], json!("1"));
    assert_eq!(md["Id"], json!(format!("\"{id}\"")));
    assert!(md["PopReceipt"].as_str().unwrap().starts_with('"'));
    let ins = md["InsertionTime"].as_str().unwrap();
    assert!(ins.ends_with("+00:00") && !ins.contains('.'), "{ins}");
    assert!(md["ExpirationTime"].is_string() && md["NextVisibleTime"].is_string());
    // Top-level fields of a JSON message are binding data, string-encoded again.
    assert_eq!(md["stage"], json!("\"final-sync\""));
    assert_eq!(md["attempt"], json!("\"0\""));
    assert!(md.get("QueueTrigger").is_none());

    // The array output became one message per element.
    let out = drain(emu.queue(), &next).await;
    assert_eq!(out.len(), 2, "{out:?}");
    let parts: Vec<Value> = out
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    assert_eq!(parts[0]["part"], json!(1));
    assert_eq!(parts[1]["from"], json!(text));
}

#[tokio::test]
async fn a_failing_message_is_retried_with_increasing_dequeue_count_until_it_succeeds() {
    let app = start_app().await;
    let Some(az) = support::azurite::azurite("a_failing_message_is_retried") else {
        return;
    };
    let (emu, work, next) = emulator(&app, &az, None);
    emu.enqueue("Work", r#"{"fail": 2}"#, None).await.unwrap();
    let report = emu
        .pump_queue(
            "Work",
            Pump::until_completed(1, 10, Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let counts: Vec<(u32, Disposition)> = report
        .deliveries
        .iter()
        .map(|d| (d.dequeue_count, d.disposition.clone()))
        .collect();
    assert_eq!(
        counts,
        [
            (1, Disposition::Retrying),
            (2, Disposition::Retrying),
            (3, Disposition::Completed)
        ]
    );
    assert_eq!(
        report.deliveries[0]
            .invocation
            .as_ref()
            .unwrap()
            .handler_status,
        Some(500)
    );
    // Failed attempts wrote no outputs; the successful one wrote two.
    assert_eq!(drain(emu.queue(), &next).await.len(), 2);
    assert!(drain(emu.queue(), &work).await.is_empty());
    let seen: Vec<String> = app
        .fake
        .seen("Work")
        .iter()
        .map(|s| {
            s.body["Metadata"]["DequeueCount"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(seen, ["1", "2", "3"]);
}

#[tokio::test]
async fn a_message_failing_max_dequeue_count_times_moves_to_the_poison_queue() {
    let app = start_app().await;
    let Some(az) = support::azurite::azurite("a_message_failing_moves_to_poison") else {
        return;
    };
    let (emu, work, next) = emulator(&app, &az, None);
    let text = r#"{"fail": 99, "runId": "doomed"}"#;
    emu.enqueue("Work", text, None).await.unwrap();
    let report = emu
        .pump_queue(
            "Work",
            Pump::until(
                |r| r.count(Disposition::Poisoned) == 1,
                10,
                Duration::from_secs(30),
            ),
        )
        .await
        .unwrap();
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(
        report.invocations(),
        3,
        "maxDequeueCount 3 means three attempts"
    );
    assert_eq!(
        report.deliveries.last().unwrap().disposition,
        Disposition::Poisoned
    );
    let poison = drain(emu.queue(), &format!("{work}-poison")).await;
    assert_eq!(poison, [text]);
    assert!(drain(emu.queue(), &work).await.is_empty());
    assert!(drain(emu.queue(), &next).await.is_empty());
}

#[tokio::test]
async fn invalid_handler_answers_fail_the_invocation_and_are_retried() {
    let app = start_app().await;
    let Some(az) = support::azurite::azurite("invalid_handler_answers_fail") else {
        return;
    };
    let (emu, _, next) = emulator(&app, &az, None);
    emu.enqueue("Work", r#"{"mode": "text"}"#, None)
        .await
        .unwrap();
    emu.enqueue("Work", r#"{"mode": "null"}"#, None)
        .await
        .unwrap();
    let report = emu
        .pump_queue(
            "Work",
            Pump::until(
                |r| r.count(Disposition::Poisoned) == 2,
                20,
                Duration::from_secs(30),
            ),
        )
        .await
        .unwrap();
    assert_eq!(report.count(Disposition::Poisoned), 2, "{report:?}");
    assert_eq!(report.count(Disposition::Completed), 0);
    let failures: Vec<String> = report
        .deliveries
        .iter()
        .filter_map(|d| d.invocation.as_ref()?.failure.clone())
        .collect();
    assert!(
        failures.iter().any(|f| f.contains("not JSON")),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|f| f.contains("not a JSON object")),
        "{failures:?}"
    );
    assert!(drain(emu.queue(), &next).await.is_empty());
}

#[tokio::test]
async fn a_message_that_is_not_base64_is_poisoned_without_an_invocation() {
    let app = start_app().await;
    let Some(az) = support::azurite::azurite("a_message_that_is_not_base64") else {
        return;
    };
    let (emu, work, _) = emulator(&app, &az, None);
    // Another producer forgot the encoding host.json asks for.
    let raw = az.queue_client(MessageEncoding::None);
    raw.send(&work, "{not base64}", None).await.unwrap();
    let report = emu
        .pump_queue(
            "Work",
            Pump::until(
                |r| r.count(Disposition::Poisoned) == 1,
                5,
                Duration::from_secs(20),
            ),
        )
        .await
        .unwrap();
    assert_eq!(report.invocations(), 0, "{report:?}");
    assert!(app.fake.seen("Work").is_empty());
    let poison = raw
        .receive(&format!("{work}-poison"), 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(poison.len(), 1);
}

#[tokio::test]
async fn an_http_call_is_routed_shaped_like_the_host_and_answered_from_res() {
    let app = start_app().await;
    let Some(az) = support::azurite::azurite("an_http_call_is_routed") else {
        return;
    };
    let (emu, work, _) = emulator(&app, &az, Some("k3y"));

    // Without the key the host answers 401 and the handler never sees the call.
    let denied = emu
        .request("POST", "/api/jobs/copy", &[], b"{}")
        .await
        .unwrap();
    assert_eq!(denied.status, 401);
    assert!(app.fake.seen("Submit").is_empty());
    // Unknown route, wrong method: 404 from the host.
    assert_eq!(
        emu.request("POST", "/api/nothing", &[("x-functions-key", "k3y")], b"")
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        emu.request("GET", "/api/jobs/copy", &[("x-functions-key", "k3y")], b"")
            .await
            .unwrap()
            .status,
        404
    );

    let res = emu
        .request(
            "POST",
            "/api/jobs/copy/7?dry=1&tag=a&tag=b",
            &[
                ("Content-Type", "application/json"),
                ("x-functions-key", "k3y"),
                ("X-Trace", "t1"),
            ],
            br#"{"reason":"drill","count":3}"#,
        )
        .await
        .unwrap();
    assert_eq!(res.status, 202, "{res:?}");
    assert_eq!(res.headers.get("x-run").map(String::as_str), Some("r-42"));
    let body = res.json();
    assert_eq!(body["kind"], json!("copy"));
    assert_eq!(body["id"], json!("7"));
    assert_eq!(body["query"], json!({"dry": "1", "tag": "a,b"}));
    assert_eq!(body["body"], json!(r#"{"reason":"drill","count":3}"#));

    let seen = &app.fake.seen("Submit")[0].body;
    let req = &seen["Data"]["req"];
    assert_eq!(req["Method"], json!("POST"));
    assert_eq!(req["Headers"]["X-Trace"], json!(["t1"]));
    assert_eq!(
        req["Identities"][0]["AuthenticationType"],
        json!("WebJobsAuthLevel")
    );
    let md = &seen["Metadata"];
    assert_eq!(md["kind"], json!("\"copy\""));
    assert_eq!(md["reason"], json!("\"drill\""));
    assert_eq!(md["count"], json!("\"3\""));
    assert_eq!(md["Headers"]["X-Trace"], json!("t1"));

    // The queue output of the HTTP function was written too.
    let msgs = drain(emu.queue(), &work).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&msgs[0]).unwrap()["runId"],
        json!("r-42")
    );

    // Optional route parameter left out: Params has it as null; http() calls by function name.
    let res = emu
        .request("POST", "/api/jobs/copy?code=k3y", &[], b"")
        .await
        .unwrap();
    assert_eq!(res.status, 202);
    assert_eq!(res.json()["id"], Value::Null);
    assert!(
        app.fake.seen("Submit")[1].body["Data"]["req"]
            .get("Body")
            .is_none(),
        "no Body when empty"
    );
}

#[tokio::test]
async fn an_unreachable_handler_fails_the_http_call_with_500_and_retries_queue_messages() {
    let app = start_app().await;
    let Some(az) = support::azurite::azurite("an_unreachable_handler") else {
        return;
    };
    let (emu, _, _) = emulator(&app, &az, None);
    app.server.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let res = emu
        .request("POST", "/api/jobs/copy", &[], b"")
        .await
        .unwrap();
    assert_eq!(res.status, 500);
    emu.enqueue("Work", r#"{"x":1}"#, None).await.unwrap();
    let report = emu
        .pump_queue(
            "Work",
            Pump::until(
                |r| r.count(Disposition::Poisoned) == 1,
                5,
                Duration::from_secs(20),
            ),
        )
        .await
        .unwrap();
    assert_eq!(report.invocations(), 3, "{report:?}");
    assert!(
        report.deliveries[0]
            .invocation
            .as_ref()
            .unwrap()
            .handler_status
            .is_none()
    );
}

// Pure helpers of the emulator (no Azurite needed).

#[test]
fn output_strings_are_base64_sniffed_arrays_fan_out_and_objects_are_indented() {
    assert_eq!(
        queue_messages(&json!("test"), false),
        [String::from_utf8_lossy(&[0xb5, 0xeb, 0x2d]).into_owned()]
    );
    assert_eq!(queue_messages(&json!("test"), true), ["test"]);
    assert_eq!(
        queue_messages(&json!({"a": 1}), false),
        ["{\n  \"a\": 1\n}"]
    );
    assert_eq!(
        queue_messages(&json!([{"a": 1}, "x-y"]), false),
        ["{\n  \"a\": 1\n}", "x-y"]
    );
    assert_eq!(
        queue_messages(&json!("[{\"a\":1},{\"b\":2}]"), false).len(),
        2
    );
    assert_eq!(queue_messages(&json!("run-1: go"), false), ["run-1: go"]);
}

#[test]
fn routes_match_with_optional_parameters_only() {
    let segs = |s: &str| s.split('/').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        match_route("failover/{runId}/{action?}", &segs("failover/r1/approve")),
        Some(vec![
            ("runId".into(), Some("r1".into())),
            ("action".into(), Some("approve".into()))
        ])
    );
    assert_eq!(
        match_route("failover/{runId}/{action?}", &segs("failover/r1")),
        Some(vec![
            ("runId".into(), Some("r1".into())),
            ("action".into(), None)
        ])
    );
    assert_eq!(match_route("failover", &segs("failover/r1")), None);
    assert_eq!(
        match_route("readiness/{pair?}", &segs("readiness")),
        Some(vec![("pair".into(), None)])
    );
}

#[test]
fn host_timespans_parse() {
    assert_eq!(parse_timespan("00:00:30").unwrap(), Duration::from_secs(30));
    assert_eq!(
        parse_timespan("1.02:00:00").unwrap(),
        Duration::from_secs(26 * 3600)
    );
    assert!(parse_timespan("30s").is_err());
}

/// The emulator reads the app's real host.json and functions/*/function.json (no I/O at build).
#[test]
fn the_repositorys_host_json_and_functions_load_in_the_emulator() {
    let storage =
        datashare_dr::store::StorageSettings::from_connection_string("UseDevelopmentStorage=true")
            .unwrap();
    let emu = HostEmulator::for_repo("http://127.0.0.1:9", &storage)
        .build()
        .unwrap();
    let host = emu.host_settings();
    assert!(host.max_dequeue_count >= 1);
    assert_eq!(
        host.message_encoding,
        MessageEncoding::from_host_json(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/host.json")).unwrap()
        )
        .unwrap()
    );
    assert_eq!(
        emu.trigger_queue("FailoverStage").unwrap(),
        datashare_dr::store::STAGE_QUEUE
    );
    assert_eq!(
        emu.trigger_queue("FailoverPoison").unwrap(),
        datashare_dr::store::STAGE_POISON_QUEUE
    );
    for f in emu.functions().values() {
        let t = f.trigger();
        assert!(
            ["httpTrigger", "timerTrigger", "queueTrigger"].contains(&t.kind.as_str()),
            "{}: {}",
            f.name,
            t.kind
        );
    }
}
