//! Fuzz target: the payload-mode response encoder round trip.
//!
//! Two properties, chosen by the first input byte:
//! - even: the bytes are read back as a handler response (`InvocationResponse::parse`, what the
//!   host emulator does); when that succeeds, encoding and parsing again gives the same value
//!   (encode ∘ parse is a fixed point) and the host's view of queue outputs does not panic;
//! - odd: a response is *built* from the bytes through the public builders (HTTP `res` output
//!   with any status, body and headers; queue messages as text or JSON objects; logs), encoded,
//!   and parsed back: the result must equal what was built.
#![no_main]

use datashare_dr::host::{HttpOutput, InvocationResponse, OutputValue, QueueMessage};
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fn parsed_then_reencoded(bytes: &[u8]) {
    let Ok(first) = InvocationResponse::parse(bytes, &["res"]) else {
        return;
    };
    for (_, out) in first.outputs() {
        let _ = out.host_queue_messages();
    }
    let encoded = first.to_json_bytes();
    // serde_json's default float parser is not exact to the last bit; keep to exact numbers.
    if has_float(&first.to_json_value()) {
        return;
    }
    let second = InvocationResponse::parse(&encoded, &["res"])
        .unwrap_or_else(|e| panic!("our own encoding does not parse back: {e}"));
    assert_eq!(first, second, "encode ∘ parse is not a fixed point");
}

fn built_then_parsed(u: &mut Unstructured<'_>) -> ArbResult<()> {
    let mut expected = InvocationResponse::new();
    if u.arbitrary::<bool>()? {
        let status: u16 = u.arbitrary()?;
        let mut res = match u.int_in_range(0..=2u8)? {
            0 => HttpOutput::text(status, u.arbitrary::<String>()?),
            1 => HttpOutput::html(status, u.arbitrary::<String>()?),
            _ => HttpOutput::new(status),
        };
        for _ in 0..u.int_in_range(0..=3u8)? {
            res = res.with_header(u.arbitrary::<String>()?, u.arbitrary::<String>()?);
        }
        expected = expected.with_http(res);
    }
    for _ in 0..u.int_in_range(0..=3u8)? {
        let binding: String = u.arbitrary()?;
        if binding == "res" {
            continue;
        }
        let message = if u.arbitrary::<bool>()? {
            QueueMessage::text(u.arbitrary::<String>()?)
        } else {
            let mut m = Map::new();
            for _ in 0..u.int_in_range(0..=3u8)? {
                let v = match u.int_in_range(0..=3u8)? {
                    0 => Value::from(u.arbitrary::<String>()?),
                    1 => Value::from(u.arbitrary::<i64>()?),
                    2 => Value::from(u.arbitrary::<bool>()?),
                    _ => Value::Null,
                };
                m.insert(u.arbitrary::<String>()?, v);
            }
            match QueueMessage::json(&m) {
                Ok(q) => q,
                Err(e) => panic!("a JSON object must encode as a queue message: {e}"),
            }
        };
        expected.push_message(&binding, message);
    }
    for _ in 0..u.int_in_range(0..=3u8)? {
        expected = expected.log(u.arbitrary::<String>()?);
    }
    if u.arbitrary::<bool>()? {
        expected = expected.with_return_value(OutputValue::Value(QueueMessage::text(
            u.arbitrary::<String>()?,
        )));
    }
    let bytes = expected.to_json_bytes();
    let back = InvocationResponse::parse(&bytes, &["res"])
        .unwrap_or_else(|e| panic!("our own encoding does not parse back: {e}"));
    assert_eq!(
        back, expected,
        "built response did not survive encode → parse"
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        parsed_then_reencoded(rest);
    } else {
        let _ = built_then_parsed(&mut Unstructured::new(rest));
    }
});
