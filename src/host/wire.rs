//! Low-level decoding rules shared by the trigger types: the host's value encoding (§5.3).
//!
//! Job: unwrap double-encoded strings once, read integers given as numbers or numeric strings,
//! parse the host's date forms, and look up metadata keys case-insensitively.
//! Must not import anything outside `host`.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Parses a date as the host writes it: RFC 3339 with an offset (`2022-06-20T06:00:06+00:00`,
/// up to 7 fractional digits, `Z`), or without an offset (`0001-01-01T00:00:00`, a `DateTime` of
/// unspecified kind), which is taken as UTC.
pub fn parse_host_datetime(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let no_offset = format_description!(
        version = 2,
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(text, &no_offset)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// The text of a string value the host JSON-encoded once more (`"\"abc\""` → `abc`). A string
/// that is not a JSON string literal (the documentation's idealised form) is returned as is.
pub fn unwrap_string(s: &str) -> String {
    if s.starts_with('"')
        && let Ok(inner) = serde_json::from_str::<String>(s)
    {
        return inner;
    }
    s.to_owned()
}

/// Looks a metadata key up, exact match first, then ASCII case-insensitively.
pub fn meta_get<'a>(meta: &'a Map<String, Value>, key: &str) -> Option<(&'a str, &'a Value)> {
    if let Some((k, v)) = meta.get_key_value(key) {
        return Some((k.as_str(), v));
    }
    meta.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(k, v)| (k.as_str(), v))
}

/// A metadata string (unwrapped once), or `None` for null; `Err` names what was found instead.
pub fn meta_string(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(unwrap_string(s))),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(format!("expected a string, found {}", kind_of(other))),
    }
}

/// An unsigned integer given as a number or as a (possibly quoted) numeric string.
pub fn meta_u32(value: &Value) -> Result<u32, String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("expected a non-negative integer, found `{n}`")),
        Value::String(s) => {
            let text = unwrap_string(s);
            text.trim()
                .parse::<u32>()
                .map_err(|_| format!("expected a non-negative integer, found `{}`", clip(&text)))
        }
        other => Err(format!(
            "expected a non-negative integer, found {}",
            kind_of(other)
        )),
    }
}

/// A date given as a (possibly quoted) string.
pub fn meta_datetime(value: &Value) -> Result<Option<OffsetDateTime>, String> {
    match meta_string(value)? {
        None => Ok(None),
        Some(text) => parse_host_datetime(&text).map(Some).ok_or_else(|| {
            format!(
                "expected an ISO-8601 date such as 2022-06-20T06:00:06+00:00, found `{}`",
                clip(&text)
            )
        }),
    }
}

/// A boolean given as a JSON boolean or as `"true"`/`"false"` (possibly quoted).
pub fn meta_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match unwrap_string(s).trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("expected true or false, found `{}`", clip(other))),
        },
        other => Err(format!("expected true or false, found {}", kind_of(other))),
    }
}

/// The JSON kind of a value, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Shortens user-supplied text quoted in an error message.
pub fn clip(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_with_offset_fraction_or_no_offset_parse() {
        let t = parse_host_datetime("2022-06-20T06:00:06+00:00").unwrap();
        assert_eq!(t.unix_timestamp(), 1_655_704_806);
        let t = parse_host_datetime("2022-07-05T11:40:07.4850616Z").unwrap();
        assert_eq!(t.nanosecond(), 485_061_600);
        let t = parse_host_datetime("0001-01-01T00:00:00").unwrap();
        assert_eq!(t.year(), 1);
        assert!(parse_host_datetime("yesterday").is_none());
    }

    #[test]
    fn a_double_encoded_string_is_unwrapped_exactly_once() {
        assert_eq!(unwrap_string("\"aaaaa\""), "aaaaa");
        assert_eq!(unwrap_string("\"\\\"quoted\\\"\""), "\"quoted\"");
        assert_eq!(unwrap_string("plain"), "plain");
        assert_eq!(unwrap_string("\"unterminated"), "\"unterminated");
    }

    #[test]
    fn integers_arrive_as_numbers_or_numeric_strings() {
        assert_eq!(meta_u32(&json!("1")).unwrap(), 1);
        assert_eq!(meta_u32(&json!("\"4\"")).unwrap(), 4);
        assert_eq!(meta_u32(&json!(5)).unwrap(), 5);
        assert!(meta_u32(&json!(-1)).is_err());
        assert!(meta_u32(&json!("five")).is_err());
        assert!(meta_u32(&json!(true)).is_err());
    }

    #[test]
    fn metadata_keys_match_case_insensitively_preferring_the_exact_key() {
        let meta = json!({"dequeueCount": "4", "DequeueCount": "2"});
        let meta = meta.as_object().unwrap();
        assert_eq!(meta_get(meta, "DequeueCount").unwrap().1, &json!("2"));
        let lower = json!({"dequeueCount": "4"});
        assert_eq!(
            meta_get(lower.as_object().unwrap(), "DEQUEUECOUNT")
                .unwrap()
                .0,
            "dequeueCount"
        );
    }
}
