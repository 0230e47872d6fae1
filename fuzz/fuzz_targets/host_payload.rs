//! Fuzz target: host payload decoding (every trigger type) must never panic, and every refusal
//! must be a 400/413 naming a field.
//!
//! The input is the raw body the Functions host POSTs to `/<FunctionName>`. It is decoded as the
//! envelope, then as each trigger type the app uses (timer, HTTP, queue as text, queue as the
//! typed stage message, queue as any JSON) under the app's binding names and under every `Data`
//! key present; decoded HTTP requests also go through the body accessors and `Debug`.
#![no_main]

use datashare_dr::handlers::failover_stage::StageMessage;
use datashare_dr::host::{
    HttpRequest, InvocationRequest, MessageText, PayloadError, QueueTrigger, TimerTrigger, Trigger,
};
use libfuzzer_sys::fuzz_target;

fn check(err: &PayloadError) {
    assert!(
        !err.path().is_empty(),
        "an error without a field path: {err}"
    );
    assert!(
        matches!(err.status(), 400 | 413),
        "status {} for {err}",
        err.status()
    );
    assert!(!err.to_string().is_empty());
}

fn try_trigger<T: Trigger>(req: &InvocationRequest, binding: &str) -> Option<T> {
    match T::decode(req, binding) {
        Ok(t) => {
            let _ = t.dequeue_count();
            Some(t)
        }
        Err(e) => {
            check(&e);
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let req = match InvocationRequest::from_slice(data, Some("fuzz-invocation".into())) {
        Ok(r) => r,
        Err(e) => {
            check(&e);
            return;
        }
    };
    let _ = req.sys();
    let mut bindings: Vec<String> = vec!["msg".into(), "timer".into(), "req".into()];
    bindings.extend(req.binding_names().take(8).map(str::to_owned));
    for b in &bindings {
        let _ = try_trigger::<TimerTrigger>(&req, b);
        let _ = try_trigger::<QueueTrigger<MessageText>>(&req, b);
        let _ = try_trigger::<QueueTrigger<StageMessage>>(&req, b);
        let _ = try_trigger::<QueueTrigger<serde_json::Value>>(&req, b);
        if let Some(http) = try_trigger::<HttpRequest>(&req, b) {
            let _ = format!("{http:?}");
            let _ = http.content_type();
            let _ = http.accepts("application/json");
            let _ = http.param("pair");
            let _ = http.query_param("code");
            match http.body_bytes() {
                Ok(_) => {}
                Err(e) => check(&e),
            }
            if let Err(e) = http.json_body::<serde_json::Value>() {
                check(&e);
            }
            if let Err(e) =
                http.json_body_or_default::<serde_json::Map<String, serde_json::Value>>()
            {
                check(&e);
            }
        }
    }
});
