//! Property tests of the four input parsers (issue 8, "Fuzzing": the same parsers as the
//! `fuzz/` targets, run in the normal suite with a moderate case count).
//!
//! What is covered here and not already elsewhere:
//! - host payloads (`host`): arbitrary bytes and arbitrary JSON under every trigger type never
//!   panic and are refused with a 400/413 naming a field under `Data.<binding>`/`Metadata`; an
//!   HTTP request built from arbitrary parts decodes to exactly those parts; a response built
//!   from arbitrary parts survives encode → parse; encode ∘ parse of arbitrary JSON is a fixed
//!   point; every captured request fixture with one leaf replaced by arbitrary JSON never panics.
//! - ARM ids (`arm::id`): *generic* ids (provider, nested, extension and tenant-level shapes, a
//!   trailing slash) round-trip parse → print → parse, compare and hash ASCII-case-insensitively;
//!   slash-heavy text never panics and what is accepted is a print fixed point. (Typed Data Share
//!   id round trips and case flips are in `src/arm/id.rs`.)
//! - alerts (`failover::alert`): every sample alert with one leaf replaced or one key removed
//!   never panics the parser or the decision, and a refusal names the field. (Arbitrary JSON and
//!   bytes are in tests/alerts_decide.rs.)
//! - DR config (`config::dr`): line-level mutations of examples/dr.toml (a line dropped,
//!   duplicated, or its value replaced by a value of another TOML type) never panic, and every
//!   issue points at a line of the file. (Arbitrary text and character insertions are in
//!   tests/config_dr.rs.)
//!
//! Case count: 256 per property unless `PROPTEST_CASES` says otherwise.

use std::path::{Path, PathBuf};

use datashare_dr::arm::id::ResourceId;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::failover::alert::{AlertParseError, decide, parse_alert};
use datashare_dr::handlers::failover_stage::StageMessage;
use datashare_dr::host::{
    HttpOutput, HttpRequest, InvocationRequest, InvocationResponse, MessageText, OutputValue,
    PayloadError, QueueMessage, QueueTrigger, TimerTrigger, Trigger,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture_files(dir: &str, suffix: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(root().join(dir))
        .expect("the fixtures folder exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        // `<name>.expect.json` sidecars hold a fixture's expected outcome, not a fixture.
        .filter(|p| !p.to_string_lossy().ends_with(".expect.json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a readable fixture");
            let v: Value = serde_json::from_str(&text).expect("a JSON fixture");
            (name_of(&p), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(n)
}

/// Arbitrary JSON, biased towards the shapes the parsers look at (host field names, alert
/// words, double-encoded strings, dates, numeric strings).
fn arb_json() -> impl Strategy<Value = Value> {
    arb_json_with(true)
}

/// Arbitrary JSON without floating-point numbers (serde_json's default float parser is not
/// exact to the last bit, so value-equality after a text round trip needs exact numbers).
fn arb_exact_json() -> impl Strategy<Value = Value> {
    arb_json_with(false)
}

fn arb_json_with(floats: bool) -> impl Strategy<Value = Value> {
    let word = prop_oneof![
        Just("Data"),
        Just("Metadata"),
        Just("req"),
        Just("msg"),
        Just("timer"),
        Just("Method"),
        Just("Url"),
        Just("Query"),
        Just("Headers"),
        Just("Body"),
        Just("Params"),
        Just("DequeueCount"),
        Just("IsPastDue"),
        Just("ScheduleStatus"),
        Just("Schedule"),
        Just("Last"),
        Just("sys"),
        Just("UtcNow"),
        Just("runId"),
        Just("stage"),
        Just("content-type"),
        Just("application/octet-stream"),
        Just("application/json"),
        Just("POST"),
        Just("2022-06-20T06:00:06+00:00"),
        Just("0001-01-01T00:00:00"),
        Just("\"\\\"x\\\"\""),
        Just("\"{\\\"runId\\\":\\\"r\\\",\\\"stage\\\":\\\"s\\\"}\""),
        Just("{}"),
        Just("[]"),
        Just("\"4\""),
        Just("true"),
    ]
    .prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u32>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(move |f| if floats { json!(f) } else { json!(f as i64) }),
        "\\PC{0,16}".prop_map(Value::String),
        word.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![word.clone(), "\\PC{0,8}".prop_map(String::from)],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Host payloads

/// A refusal is a 400 (or 413 for size) and names a field: the envelope root `$`, a path under
/// `Data.<binding>`, under `Metadata`, or the request `body`.
fn assert_names_a_field(err: &PayloadError, binding: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(err.status(), 400 | 413),
        "status {} for {err}",
        err.status()
    );
    let p = err.path();
    prop_assert!(
        p == "$"
            || p == "Data"
            || p == "Metadata"
            || p == "body"
            || p.starts_with("body.")
            || p.starts_with("body[")
            || p.starts_with(&format!("Data.{binding}"))
            || p.starts_with("Metadata."),
        "error path `{p}` does not name a field of the `{binding}` trigger: {err}"
    );
    prop_assert!(!err.to_string().is_empty());
    Ok(())
}

fn decode_all(req: &InvocationRequest) -> Result<(), TestCaseError> {
    fn one<T: Trigger>(req: &InvocationRequest, binding: &str) -> Result<Option<T>, TestCaseError> {
        match T::decode(req, binding) {
            Ok(t) => Ok(Some(t)),
            Err(e) => {
                assert_names_a_field(&e, binding)?;
                Ok(None)
            }
        }
    }
    one::<TimerTrigger>(req, "timer")?;
    one::<QueueTrigger<MessageText>>(req, "msg")?;
    one::<QueueTrigger<StageMessage>>(req, "msg")?;
    if let Some(http) = one::<HttpRequest>(req, "req")? {
        let _ = format!("{http:?}");
        if let Err(e) = http.json_body::<Value>() {
            assert_names_a_field(&e, "req")?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn arbitrary_bytes_never_panic_the_envelope_decoder(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        match InvocationRequest::from_slice(&bytes, None) {
            Ok(req) => decode_all(&req)?,
            Err(e) => assert_names_a_field(&e, "")?,
        }
    }

    #[test]
    fn arbitrary_json_under_every_trigger_decodes_or_names_a_field(
        data in arb_json(), req in arb_json(), msg in arb_json(), timer in arb_json(), meta in arb_json(),
    ) {
        // the value alone, then in the envelope under each binding
        if let Ok(r) = InvocationRequest::from_slice(data.to_string().as_bytes(), None) {
            decode_all(&r)?;
        }
        let envelope = json!({"Data": {"req": req, "msg": msg, "timer": timer}, "Metadata": meta});
        let r = InvocationRequest::from_slice(envelope.to_string().as_bytes(), Some("i".into()));
        match r {
            Ok(r) => decode_all(&r)?,
            // Metadata that is not an object is refused at the envelope
            Err(e) => assert_names_a_field(&e, "")?,
        }
    }

    #[test]
    fn every_request_fixture_with_one_leaf_replaced_never_panics(
        pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), with in arb_json(),
    ) {
        let files = fixture_files("tests/fixtures/functions-payloads", "request.json");
        let (_, original) = pick.get(&files);
        let mut v = original.clone();
        let paths = leaf_paths(&v);
        let target = at.get(&paths).clone();
        replace_at(&mut v, &target, with);
        let bytes = v.to_string();
        match InvocationRequest::from_slice(bytes.as_bytes(), None) {
            Ok(req) => {
                for b in req.binding_names().map(str::to_owned).collect::<Vec<_>>() {
                    for r in [
                        TimerTrigger::decode(&req, &b).err(),
                        QueueTrigger::<MessageText>::decode(&req, &b).err(),
                        HttpRequest::decode(&req, &b).err(),
                    ].into_iter().flatten() {
                        assert_names_a_field(&r, &b)?;
                    }
                }
            }
            Err(e) => assert_names_a_field(&e, "")?,
        }
    }

    #[test]
    fn a_stage_message_decodes_to_its_fields_or_names_the_bad_one(
        run_id in prop_oneof![arb_json(), "\\PC{1,20}".prop_map(Value::String)],
        stage in prop_oneof![arb_json(), "[a-z-]{1,20}".prop_map(Value::String)],
        attempt in prop_oneof![arb_json(), any::<u32>().prop_map(|n| json!(n))],
        dequeue in 1u32..10,
    ) {
        let msg = json!({"runId": run_id, "stage": stage, "attempt": attempt}).to_string();
        let data = serde_json::to_string(&msg).expect("a string encodes");
        let env = json!({"Data": {"msg": data}, "Metadata": {"DequeueCount": dequeue.to_string()}});
        let req = InvocationRequest::from_slice(env.to_string().as_bytes(), None)
            .expect("a well-formed envelope");
        match QueueTrigger::<StageMessage>::decode(&req, "msg") {
            Ok(t) => {
                prop_assert_eq!(Some(t.body.run_id.as_str()), run_id.as_str());
                prop_assert_eq!(Some(t.body.stage.as_str()), stage.as_str());
                prop_assert_eq!(Some(u64::from(t.body.attempt)), attempt.as_u64());
                prop_assert_eq!(t.dequeue_count, dequeue);
            }
            Err(e) => {
                assert_names_a_field(&e, "msg")?;
                let p = e.path();
                prop_assert!(
                    p == "Data.msg.runId" || p == "Data.msg.stage" || p == "Data.msg.attempt",
                    "the error names `{}` instead of the bad field: {}", p, e
                );
                let bad = match p {
                    "Data.msg.runId" => !run_id.is_string(),
                    "Data.msg.stage" => !stage.is_string(),
                    _ => attempt.as_u64().and_then(|n| u32::try_from(n).ok()).is_none(),
                };
                prop_assert!(bad, "`{}` was valid but refused: {}", p, e);
            }
        }
    }

    #[test]
    fn an_http_request_decodes_to_exactly_the_parts_it_was_built_from(
        method in "(GET|POST|get|Post|DELETE)",
        path in "[a-z/]{0,20}",
        query in prop::collection::btree_map("[a-zA-Z_]{1,8}", "\\PC{0,12}", 0..4),
        headers in prop::collection::btree_map("[a-z-]{1,12}", prop::collection::vec("\\PC{0,12}", 1..3), 0..4),
        params in prop::collection::btree_map("[a-zA-Z]{1,8}", prop::option::of("\\PC{0,12}"), 0..3),
        body in prop::option::of("\\PC{0,40}"),
        query_as_string in any::<bool>(),
    ) {
        let url = format!("https://example.invalid/api/{path}");
        let query_json = serde_json::to_value(&query).expect("a map encodes");
        let mut req = Map::new();
        req.insert("Url".into(), json!(url));
        req.insert("Method".into(), json!(method));
        req.insert("Query".into(), if query_as_string { json!(query_json.to_string()) } else { query_json });
        req.insert("Headers".into(), serde_json::to_value(&headers).expect("a map encodes"));
        req.insert("Params".into(), serde_json::to_value(&params).expect("a map encodes"));
        if let Some(b) = &body {
            req.insert("Body".into(), json!(b));
        }
        let env = json!({"Data": {"req": req}, "Metadata": {}});
        let decoded = InvocationRequest::from_slice(env.to_string().as_bytes(), None)
            .and_then(|r| HttpRequest::decode(&r, "req"));
        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => return Err(TestCaseError::fail(format!("a well-formed request was refused: {e}"))),
        };
        prop_assert_eq!(&decoded.url, &url);
        prop_assert_eq!(&decoded.method, &method.to_ascii_uppercase());
        prop_assert_eq!(&decoded.query, &query);
        for (name, values) in &headers {
            prop_assert_eq!(decoded.headers.get_all(name), values.as_slice());
            prop_assert_eq!(decoded.headers.get(&name.to_ascii_uppercase()), values.first().map(String::as_str));
        }
        prop_assert_eq!(&decoded.params, &params);
        prop_assert_eq!(decoded.raw_body(), body.as_deref());
    }

    #[test]
    fn a_built_response_survives_encode_then_parse(
        status in any::<u16>(),
        res_body in prop::option::of("\\PC{0,40}"),
        res_headers in prop::collection::btree_map("[A-Za-z-]{1,12}", "\\PC{0,12}", 0..3),
        queues in prop::collection::btree_map("[a-z]{1,8}", prop::collection::vec(
            prop_oneof![
                "\\PC{0,20}".prop_map(QueueMessage::text),
                prop::collection::btree_map("[a-zA-Z]{1,6}", any::<i64>(), 0..3)
                    .prop_map(|m| QueueMessage::json(&m).expect("an object encodes")),
            ], 1..3), 0..3),
        logs in prop::collection::vec("\\PC{0,20}", 0..3),
        ret in prop::option::of("\\PC{1,20}"),
    ) {
        let mut res = match &res_body {
            Some(b) => HttpOutput::text(status, b.clone()),
            None => HttpOutput::new(status),
        };
        for (k, v) in &res_headers {
            res = res.with_header(k.clone(), v.clone());
        }
        let mut built = InvocationResponse::http(res);
        for (binding, messages) in queues {
            if binding == "res" { continue; }
            for m in messages {
                built.push_message(&binding, m);
            }
        }
        for l in logs {
            built = built.log(l);
        }
        if let Some(r) = ret {
            built = built.with_return_value(OutputValue::Value(QueueMessage::text(r)));
        }
        let bytes = built.to_json_bytes();
        let back = InvocationResponse::parse(&bytes, &["res"]);
        prop_assert_eq!(back.as_ref().ok(), Some(&built), "{:?}", back.as_ref().err());
    }

    #[test]
    fn encode_after_parse_is_a_fixed_point_for_arbitrary_json(
        outputs in arb_exact_json(), logs in arb_exact_json(), ret in arb_exact_json(), res in arb_exact_json(),
    ) {
        let mut outs = outputs.as_object().cloned().unwrap_or_default();
        outs.insert("res".into(), res);
        let body = json!({"Outputs": outs, "Logs": logs, "ReturnValue": ret});
        if let Ok(first) = InvocationResponse::parse(body.to_string().as_bytes(), &["res"]) {
            for (_, out) in first.outputs() {
                let _ = out.host_queue_messages();
            }
            let second = InvocationResponse::parse(&first.to_json_bytes(), &["res"]);
            prop_assert_eq!(second.as_ref().ok(), Some(&first), "{:?}", second.as_ref().err());
        }
    }
}

/// JSON paths (as key/index steps) of every leaf and every non-root container.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn leaf_paths(v: &Value) -> Vec<Vec<Step>> {
    fn walk(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        if !at.is_empty() {
            out.push(at.clone());
        }
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    at.push(Step::Key(k.clone()));
                    walk(c, at, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    at.push(Step::Index(i));
                    walk(c, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

fn slot<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match (s, cur) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn replace_at(v: &mut Value, path: &[Step], with: Value) {
    if let Some(s) = slot(v, path) {
        *s = with;
    }
}

fn remove_at(v: &mut Value, path: &[Step]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    match (last, slot(v, parent)) {
        (Step::Key(k), Some(Value::Object(m))) => {
            m.remove(k);
        }
        (Step::Index(i), Some(Value::Array(a))) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// ARM ids

/// A name ARM allows in an id segment (no `/ \ ? # % & < > : * " |`, whitespace or controls).
fn arm_name() -> &'static str {
    "[A-Za-z0-9._()\\-éß]{1,12}"
}

/// Generic id shapes: subscription, resource group, provider resources nested 1–3 deep under a
/// subscription, a resource group or the tenant, and extension resources
/// (`…/providers/A/x/y/providers/B/z/w`).
fn arb_generic_id() -> impl Strategy<Value = String> {
    let typed = prop::collection::vec((arm_name(), arm_name()), 1..4);
    (
        0u8..3,
        arm_name(),
        arm_name(),
        prop::option::of((arm_name(), typed.clone())),
        prop::option::of((arm_name(), typed)),
    )
        .prop_map(|(scope, sub, rg, first, ext)| {
            let mut s = match scope {
                0 => String::new(),
                1 => format!("/subscriptions/{sub}"),
                _ => format!("/subscriptions/{sub}/resourceGroups/{rg}"),
            };
            let mut push_provider = |ns: &str, pairs: &[(String, String)]| {
                s.push_str(&format!("/providers/{ns}"));
                for (t, n) in pairs {
                    s.push_str(&format!("/{t}/{n}"));
                }
            };
            match (&first, scope) {
                (Some((ns, pairs)), _) => push_provider(ns, pairs),
                (None, 0) => {
                    push_provider("Microsoft.Resources", &[("tenants".into(), "t".into())])
                }
                (None, _) => {}
            }
            if let (Some((ns, pairs)), true) = (&ext, first.is_some()) {
                push_provider(ns, pairs);
            }
            s
        })
}

fn flip_case(s: &str, flips: &[bool]) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| match flips.get(i % flips.len().max(1)) {
            Some(true) if c.is_ascii_lowercase() => c.to_ascii_uppercase(),
            Some(true) => c.to_ascii_lowercase(),
            _ => c,
        })
        .collect()
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn generic_ids_round_trip_and_compare_case_insensitively(
        text in arb_generic_id(), flips in prop::collection::vec(any::<bool>(), 1..64), trailing in any::<bool>(),
    ) {
        let id = match ResourceId::parse(&text) {
            Ok(id) => id,
            Err(e) => return Err(TestCaseError::fail(format!("a generated id {text:?} was refused: {e}"))),
        };
        prop_assert_eq!(id.to_string(), text.clone());
        let input = if trailing { format!("{text}/") } else { text.clone() };
        let flipped_text = flip_case(&input, &flips);
        let flipped = ResourceId::parse(&flipped_text);
        prop_assert!(flipped.is_ok(), "case-flipped {:?} refused: {:?}", flipped_text, flipped.err());
        let flipped = flipped.unwrap_or_else(|_| id.clone());
        prop_assert_eq!(&flipped, &id);
        prop_assert_eq!(flipped.cmp(&id), std::cmp::Ordering::Equal);
        prop_assert_eq!(flipped.to_string(), flipped_text.trim_end_matches('/'));
        use std::hash::BuildHasher;
        let h = std::collections::hash_map::RandomState::new();
        prop_assert_eq!(h.hash_one(&flipped), h.hash_one(&id));
        let json = serde_json::to_string(&flipped).expect("an id serializes");
        let back: ResourceId = serde_json::from_str(&json).expect("an id deserializes");
        prop_assert_eq!(back.as_str(), flipped.as_str());
        if let Some(p) = id.parent() {
            prop_assert!(id.is_within(&p), "{} not within its parent {}", id, p);
        }
    }

    #[test]
    fn slash_heavy_text_never_panics_and_what_parses_is_a_print_fixed_point(
        parts in prop::collection::vec(prop_oneof![
            Just("subscriptions".to_owned()), Just("resourceGroups".to_owned()),
            Just("providers".to_owned()), Just("Microsoft.DataShare".to_owned()),
            Just("accounts".to_owned()), Just("shares".to_owned()), Just(String::new()),
            "\\PC{0,4}".prop_map(String::from), arm_name().prop_map(String::from),
        ], 0..12),
        trailing in prop::option::of(prop_oneof![Just("/"), Just("//"), Just(" "), Just("\u{0}")]),
    ) {
        let mut text = format!("/{}", parts.join("/"));
        if let Some(t) = trailing { text.push_str(t); }
        if let Ok(id) = ResourceId::parse(&text) {
            let printed = id.to_string();
            let again = ResourceId::parse(&printed);
            prop_assert_eq!(again.as_ref().map(ToString::to_string).ok(), Some(printed.clone()));
            prop_assert_eq!(again.ok(), Some(id));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Alerts

fn alert_config() -> DrConfig {
    let text = std::fs::read_to_string(root().join("examples/dr.toml")).expect("examples/dr.toml");
    DrConfig::from_toml_str(&text, "dr.toml").expect("the example config loads")
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn every_sample_alert_with_one_leaf_replaced_or_removed_never_panics(
        pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(),
        with in arb_json(), remove in any::<bool>(),
    ) {
        let files = fixture_files("tests/fixtures/alerts", ".json");
        let (name, original) = pick.get(&files);
        let mut v = original.clone();
        let paths = leaf_paths(&v);
        let target = at.get(&paths).clone();
        if remove { remove_at(&mut v, &target) } else { replace_at(&mut v, &target, with) }
        let c = alert_config();
        match parse_alert(v.to_string().as_bytes()) {
            Ok(alert) => {
                let d = decide(&alert, &c);
                prop_assert!(!d.summary().is_empty());
            }
            Err(AlertParseError::NotJson(e)) => {
                return Err(TestCaseError::fail(format!("{name}: valid JSON called not JSON: {e}")));
            }
            Err(e) => prop_assert!(!e.field().is_empty(), "{}: refusal without a field: {}", name, e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// DR config

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\"\\PC{0,12}\"".prop_map(|s| s.replace('\\', "")),
        any::<i64>().prop_map(|n| n.to_string()),
        (-1e6f64..1e6).prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("[]".to_owned()),
        Just("[1, \"a\"]".to_owned()),
        Just("{}".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("\"http://10.0.0.1\"".to_owned()),
        Just("\"static-token\"".to_owned()),
        Just(
            "\"/subscriptions/x/resourceGroups/y/providers/Microsoft.DataShare/accounts/z\""
                .to_owned()
        ),
        Just("\"*\"".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
    ]
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn line_mutations_of_the_example_config_never_panic_and_point_at_a_line(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, toml_value()), 1..4),
    ) {
        let text = std::fs::read_to_string(root().join("examples/dr.toml")).expect("examples/dr.toml");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        for (at, op, value) in edits {
            if lines.is_empty() { break; }
            let i = at.index(lines.len());
            match op {
                0 => { lines.remove(i); }
                1 => { let l = lines[i].clone(); lines.insert(i, l); }
                _ => {
                    if let Some(eq) = lines[i].find('=') {
                        let key = lines[i][..eq].to_owned();
                        lines[i] = format!("{key}= {value}");
                    }
                }
            }
        }
        let edited = lines.join("\n");
        let line_count = edited.lines().count().max(1);
        if let Err(e) = DrConfig::from_toml_str(&edited, "dr.toml") {
            prop_assert!(!e.issues().is_empty(), "an error without issues: {}", e);
            for i in e.issues() {
                prop_assert!(i.line >= 1 && i.column >= 1, "{}", i);
                prop_assert!(i.line <= line_count + 1, "line {} of {}: {}", i.line, line_count, i);
                prop_assert!(!i.message.is_empty());
            }
        }
    }
}
