//! Every payload in tests/fixtures/functions-payloads/ (copied from the shared reference) goes
//! through the wire types: each `*.request.json` decodes as the trigger its `Data` shows, and
//! each response file is reproduced exactly by the encoder. A file dropped into the folder is
//! picked up automatically.

use std::path::{Path, PathBuf};

use datashare_dr::host::{
    HttpOutput, HttpRequest, InvocationRequest, InvocationResponse, MessageText, OutputValue,
    QueueMessage, QueueTrigger, TimerTrigger, Trigger,
};
use serde::Deserialize;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/functions-payloads")
}

fn files(pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("the fixtures folder exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&pred))
        .collect();
    out.sort();
    out
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Debug)]
enum Decoded {
    Queue(QueueTrigger<MessageText>),
    Timer(TimerTrigger),
    Http(HttpRequest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Queue,
    Timer,
    Http,
}

/// What a request fixture must look like for the folder test to judge it.
const CLASSIFY_HINT: &str = "give its `Data` the trigger binding: an HTTP request object (with \
    `Method`), a timer object (with `IsPastDue` or `Schedule`), or the queue message as a string";

/// How the folder's files are named (anything else fails the folder test).
const NAMING_HINT: &str = "name a request `<trigger>.<variant>.<origin>.request.json` (or \
    `request.<…>.json`) and a response `response.<…>.json`, and add a row for it to the \
    folder's README.md";

fn is_request_file(name: &str) -> bool {
    name.ends_with(".request.json") || (name.starts_with("request.") && name.ends_with(".json"))
}

fn is_response_file(name: &str) -> bool {
    name.contains("response") && name.ends_with(".json")
}

/// Picks the trigger binding from `Data` the way the file's bindings show it: an HTTP request
/// object (has `Method`), a timer object (has `IsPastDue`/`Schedule`), else a string = queue
/// message (the first string entry when there are extra input bindings).
fn classify(data: &serde_json::Map<String, Value>) -> Option<(Kind, String)> {
    let has = |v: &Value, k: &str| v.as_object().is_some_and(|o| o.contains_key(k));
    if let Some((name, _)) = data.iter().find(|(_, v)| has(v, "Method")) {
        return Some((Kind::Http, name.clone()));
    }
    if let Some((name, _)) = data
        .iter()
        .find(|(_, v)| has(v, "IsPastDue") || has(v, "Schedule"))
    {
        return Some((Kind::Timer, name.clone()));
    }
    // Queue: the trigger is the first binding (Data keeps file order only with preserve_order,
    // so prefer the entry whose string is a JSON string literal, as real hosts send it).
    data.iter()
        .filter(|(_, v)| v.is_string())
        .min_by_key(|(_, v)| !v.as_str().unwrap_or_default().starts_with('"'))
        .map(|(k, _)| (Kind::Queue, k.clone()))
}

/// Decodes a request fixture as its trigger; returns the binding name too.
fn decode_fixture(path: &Path) -> (Decoded, String) {
    let raw = std::fs::read(path).unwrap();
    let json = read_json(path);
    let data = json["Data"].as_object().unwrap_or_else(|| {
        panic!(
            "{}: no `Data` object; a request fixture is the host's invocation request \
             `{{\"Data\": {{…}}, \"Metadata\": {{…}}}}`",
            path.display()
        )
    });
    let (kind, binding) = classify(data).unwrap_or_else(|| {
        panic!(
            "{}: cannot tell which trigger this is; {CLASSIFY_HINT}",
            path.display()
        )
    });
    let req = InvocationRequest::from_slice(&raw, Some("fixture".into()))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let context = |e: datashare_dr::host::PayloadError| -> ! { panic!("{}: {e}", path.display()) };
    let decoded = match kind {
        Kind::Http => {
            Decoded::Http(HttpRequest::decode(&req, &binding).unwrap_or_else(|e| context(e)))
        }
        Kind::Timer => {
            Decoded::Timer(TimerTrigger::decode(&req, &binding).unwrap_or_else(|e| context(e)))
        }
        Kind::Queue => {
            Decoded::Queue(QueueTrigger::decode(&req, &binding).unwrap_or_else(|e| context(e)))
        }
    };
    (decoded, binding)
}

/// A value the host may send as a JSON value or as its JSON text in a string (`"4"`, `"true"`,
/// `"\"abc\""`): the JSON value.
fn unquoted(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

/// Case-insensitive key lookup, as the host's keys vary in case between versions.
fn get_ci<'a>(o: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Every file in the folder is a request or a response fixture (README aside), and every
/// request decodes as its trigger with the fields the decoder claims taken from the payload:
/// invariants of the decoder, true of any valid payload. What a particular file holds (a timer
/// that is or is not past due, a message text) is checked by the named tests below.
#[test]
fn every_request_fixture_decodes_as_its_trigger_and_keeps_what_it_carries() {
    let mut unnamed = Vec::new();
    for name in files(|_| true)
        .iter()
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
    {
        if name != "README.md" && !is_request_file(&name) && !is_response_file(&name) {
            unnamed.push(format!(
                "{name}: neither a request nor a response; {NAMING_HINT}"
            ));
        }
    }
    assert!(unnamed.is_empty(), "{}", unnamed.join("\n"));

    let requests = files(is_request_file);
    assert!(
        requests.len() >= 9,
        "expected the reference request files, found {}",
        requests.len()
    );
    for path in &requests {
        let p = path.display();
        let json = read_json(path);
        let (decoded, binding) = decode_fixture(path);
        let raw = &json["Data"][&binding];
        let meta = json["Metadata"].as_object().cloned().unwrap_or_default();
        match decoded {
            Decoded::Queue(q) => {
                // The message text is the binding's string, unwrapped exactly once.
                let text = raw.as_str().unwrap_or_else(|| panic!("{p}: {binding}"));
                let once = if text.starts_with('"') {
                    serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_owned())
                } else {
                    text.to_owned()
                };
                assert_eq!(q.message_text, once, "{p}: message text");
                assert_eq!(q.body.0, once, "{p}: body");
                // The dequeue count is the metadata's, and a delivered message has one.
                let count = get_ci(&meta, "DequeueCount").map(unquoted);
                assert_eq!(
                    count.as_ref().and_then(Value::as_u64),
                    Some(u64::from(q.dequeue_count)),
                    "{p}: DequeueCount"
                );
                assert!(
                    q.dequeue_count >= 1,
                    "{p}: a delivery is at least the first"
                );
                let id = get_ci(&meta, "Id").map(unquoted);
                assert_eq!(
                    id.as_ref().and_then(Value::as_str),
                    q.id.as_deref(),
                    "{p}: Id"
                );
            }
            Decoded::Timer(t) => {
                let timer = raw.as_object().unwrap_or_else(|| panic!("{p}: {binding}"));
                let past_due = match get_ci(timer, "IsPastDue").map(unquoted) {
                    None | Some(Value::Null) => false,
                    Some(v) => v
                        .as_bool()
                        .unwrap_or_else(|| panic!("{p}: IsPastDue is not a boolean: {v}")),
                };
                assert_eq!(t.is_past_due, past_due, "{p}: IsPastDue");
                let status = get_ci(timer, "ScheduleStatus").is_some_and(|v| !v.is_null());
                assert_eq!(t.schedule_status.is_some(), status, "{p}: ScheduleStatus");
            }
            Decoded::Http(h) => {
                let req = raw.as_object().unwrap_or_else(|| panic!("{p}: {binding}"));
                let method = get_ci(req, "Method")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                assert!(!h.method.is_empty(), "{p}: method");
                assert_eq!(h.method, method.to_ascii_uppercase(), "{p}: Method");
                if let Some(query) = get_ci(req, "Query").and_then(Value::as_object) {
                    for (k, v) in query {
                        assert_eq!(h.query_param(k), v.as_str(), "{p}: query parameter {k}");
                    }
                }
            }
        }
    }
}

fn fixture(name: &str) -> Decoded {
    decode_fixture(&fixtures().join(name)).0
}

#[test]
fn a_past_due_timer_decodes_as_past_due() {
    let Decoded::Timer(t) = fixture("timer-trigger.past-due.composed.request.json") else {
        panic!("expected a timer trigger")
    };
    assert!(t.is_past_due, "IsPastDue: true in the payload: {t:?}");
    assert!(t.schedule_status.is_some());
}

#[test]
fn the_captured_and_composed_timers_on_schedule_are_not_past_due() {
    for name in [
        "timer-trigger.schedulestatus-null.captured.request.json",
        "timer-trigger.populated.composed.request.json",
    ] {
        let Decoded::Timer(t) = fixture(name) else {
            panic!("{name}: expected a timer trigger")
        };
        assert!(!t.is_past_due, "{name}: IsPastDue is false in the payload");
    }
}

#[test]
fn the_captured_queue_message_is_unwrapped_once_with_typed_metadata() {
    let Decoded::Queue(q) = fixture("queue-trigger.string-message.captured.request.json") else {
        panic!("expected a queue trigger")
    };
    assert_eq!(q.body, MessageText("aaaaa".into()));
    assert_eq!(q.dequeue_count, 1);
    assert_eq!(
        q.id.as_deref(),
        Some("a0004923-f050-417a-9742-6d7c7b984134")
    );
    assert_eq!(
        q.pop_receipt.as_deref(),
        Some("AgAAAAMAAAAAAAAA8d5gQex+2AE=")
    );
    assert_eq!(q.expiration_time.unwrap().unix_timestamp(), 1_655_704_806);
    assert_eq!(
        q.next_visible_time.unwrap().to_string(),
        "2022-06-13 6:10:18.0 +00:00:00"
    );
    assert_eq!(q.sys.method_name.as_deref(), Some("queue"));
}

#[test]
fn the_docs_queue_sample_with_numeric_dequeue_count_decodes() {
    let Decoded::Queue(q) = fixture("queue-trigger.docs-sample.request.json") else {
        panic!("expected a queue trigger")
    };
    assert_eq!(q.dequeue_count, 1);
    assert_eq!(
        q.id.as_deref(),
        Some("800ae4b3-bdd2-4c08-badd-f08e5a34b865")
    );
    assert_eq!(q.body.0, "{ message: \"Message sent\" }");
}

#[test]
fn the_host_unit_test_fixture_uses_lower_case_dequeue_count() {
    let Decoded::Queue(q) = fixture("request.host-unit-test-fixture.rendered.json") else {
        panic!("expected a queue trigger")
    };
    assert_eq!(q.dequeue_count, 4);
    assert_eq!(q.body.0, "HelloWorld");
}

#[test]
fn the_extra_input_binding_is_not_taken_for_the_message() {
    let Decoded::Queue(q) = fixture("queue-trigger.with-extra-input-binding.captured.request.json")
    else {
        panic!("expected a queue trigger")
    };
    assert_eq!(q.body.0, "qqeeewwww");
}

#[test]
fn a_null_schedule_status_is_none() {
    let Decoded::Timer(t) = fixture("timer-trigger.schedulestatus-null.captured.request.json")
    else {
        panic!("expected a timer trigger")
    };
    assert!(t.schedule_status.is_none());
    let Decoded::Timer(t) = fixture("timer-trigger.populated.composed.request.json") else {
        panic!("expected a timer trigger")
    };
    let s = t.schedule_status.unwrap();
    assert_eq!(
        s.next.unwrap().unix_timestamp() - s.last.unwrap().unix_timestamp(),
        300
    );
}

#[derive(Debug, Deserialize, PartialEq)]
struct Person {
    name: String,
    age: u32,
}

#[test]
fn the_captured_http_json_body_decodes_into_a_typed_struct() {
    let Decoded::Http(h) = fixture("http-trigger.nonforwarded.json-body.captured.request.json")
    else {
        panic!("expected an http trigger")
    };
    assert_eq!(h.method, "POST");
    assert_eq!(h.headers.get("content-length"), Some("41"));
    assert_eq!(
        h.json_body::<Person>().unwrap(),
        Person {
            name: "Anjana".into(),
            age: 12
        }
    );
}

#[test]
fn the_captured_http_query_and_the_legacy_string_query_decode() {
    let Decoded::Http(h) = fixture("http-trigger.nonforwarded.query-param.captured.request.json")
    else {
        panic!("expected an http trigger")
    };
    assert_eq!(h.query_param("name"), Some("test1"));
    assert_eq!(h.raw_body(), Some("Jack"));
    let Decoded::Http(h) = fixture("http-trigger.nonforwarded.docs-sample.request.json") else {
        panic!("expected an http trigger")
    };
    assert!(h.query.is_empty());
}

#[test]
fn every_response_fixture_is_reproduced_by_the_encoder() {
    let responses = files(|n| n.contains("response") && n.ends_with(".json"));
    assert!(responses.len() >= 5, "found {}", responses.len());
    for path in &responses {
        let raw = std::fs::read(path).unwrap();
        let parsed = InvocationResponse::parse(&raw, &["res"])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            parsed.to_json_value(),
            read_json(path),
            "{}",
            path.display()
        );
    }
}

#[test]
fn the_builder_produces_the_official_sample_response() {
    let built = InvocationResponse::new()
        .with_output(
            "output",
            OutputValue::Value(QueueMessage::text("Mark Taylor")),
        )
        .with_output(
            "output2",
            OutputValue::Value(
                QueueMessage::json(&json!({"home": "123-466-799", "office": "564-987-654"}))
                    .unwrap(),
            ),
        )
        .with_http(
            HttpOutput::new(201)
                .with_body_text("my world")
                .with_header("header1", "header1Val")
                .with_header("header2", "header2Val"),
        )
        .log("test log1")
        .log("test log2")
        .with_return_value(OutputValue::Value(QueueMessage::text("Hello,World")));
    let expected = read_json(
        &fixtures().join("response.http-res-headers-plus-queue.azure-samples.rendered.json"),
    );
    assert_eq!(built.to_json_value(), expected);
}

#[test]
fn the_builder_produces_the_host_fixture_http_response() {
    let built = InvocationResponse::http(HttpOutput::new(201).with_body_text("my world"))
        .log("invocation log1")
        .log("invocation log2");
    let expected =
        read_json(&fixtures().join("response.http-res.host-unit-test-fixture.rendered.json"));
    assert_eq!(built.to_json_value(), expected);
}
