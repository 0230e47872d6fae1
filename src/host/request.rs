//! The invocation envelope the host POSTs to `/<FunctionName>`, and the decode error.
//!
//! Must not import anything outside `host`.

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::wire::{kind_of, meta_get, meta_string, parse_host_datetime};

/// Header carrying the invocation id on every payload-mode request.
pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// A payload that cannot be decoded. `path` is the JSON path of the offending field, e.g.
/// `Data.msg.stage` or `Metadata.DequeueCount`; messages never include secrets (only short,
/// clipped excerpts of non-secret values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The field is there but has the wrong type, format or value.
    #[error("invalid `{path}`: {reason}")]
    Invalid { path: String, reason: String },
    /// A required field is absent (or null).
    #[error("missing `{path}`")]
    Missing { path: String },
    /// A body over the size limit.
    #[error("`{path}` is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        path: String,
        size: usize,
        limit: usize,
    },
}

impl PayloadError {
    pub fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        PayloadError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub fn missing(path: impl Into<String>) -> Self {
        PayloadError::Missing { path: path.into() }
    }

    /// JSON path of the offending field.
    pub fn path(&self) -> &str {
        match self {
            PayloadError::Invalid { path, .. }
            | PayloadError::Missing { path }
            | PayloadError::TooLarge { path, .. } => path,
        }
    }

    /// HTTP status for this error: 413 for size, otherwise 400.
    pub fn status(&self) -> u16 {
        match self {
            PayloadError::TooLarge { .. } => 413,
            _ => 400,
        }
    }

    /// Builds an error from a `serde_path_to_error` failure, prefixing the path with `base`.
    pub(crate) fn from_serde(
        base: &str,
        err: serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let inner = err.path().to_string();
        let path = join_path(base, &inner);
        let source = err.into_inner();
        let reason = strip_position(&source.to_string());
        PayloadError::Invalid { path, reason }
    }
}

/// Joins a base path and a serde_path_to_error path (`.` means "the value itself").
pub(crate) fn join_path(base: &str, inner: &str) -> String {
    match (base.is_empty(), inner == "." || inner.is_empty()) {
        (true, true) => "$".to_owned(),
        (true, false) => inner.to_owned(),
        (false, true) => base.to_owned(),
        (false, false) if inner.starts_with('[') => format!("{base}{inner}"),
        (false, false) => format!("{base}.{inner}"),
    }
}

/// serde_json appends " at line L column C"; the path already locates the problem.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// Which kind of trigger a function has; decides how errors become responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Queue,
    Timer,
    Http,
}

/// `Metadata.sys`: the function name and the host's clock at invocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sys {
    pub method_name: Option<String>,
    pub utc_now: Option<OffsetDateTime>,
    pub rand_guid: Option<String>,
}

/// The decoded envelope: `Data` (one entry per input binding) and `Metadata` (trigger binding
/// data), plus the invocation id from the request header.
///
/// `Debug` prints only the binding and metadata *names*: the values carry what callers send
/// (the `code` query parameter, `x-functions-key` and `Authorization` headers).
#[derive(Clone)]
pub struct InvocationRequest {
    data: Map<String, Value>,
    metadata: Map<String, Value>,
    invocation_id: Option<String>,
}

impl std::fmt::Debug for InvocationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvocationRequest")
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .field("metadata", &self.metadata.keys().collect::<Vec<_>>())
            .field("invocation_id", &self.invocation_id)
            .finish()
    }
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "Data", alias = "data", default)]
    data: Option<Map<String, Value>>,
    #[serde(rename = "Metadata", alias = "metadata", default)]
    metadata: Option<Map<String, Value>>,
}

impl InvocationRequest {
    /// Decodes the body of a payload-mode request.
    pub fn from_slice(body: &[u8], invocation_id: Option<String>) -> Result<Self, PayloadError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(PayloadError::invalid(
                "$",
                "empty body: expected the invocation envelope {\"Data\": …, \"Metadata\": …}",
            ));
        }
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(PayloadError::invalid(
                "$",
                "expected the invocation envelope as a JSON object {\"Data\": …, \"Metadata\": …}",
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let raw: RawEnvelope = match serde_path_to_error::deserialize(&mut de) {
            Ok(raw) => raw,
            Err(err) => {
                let is_syntax = err.inner().is_syntax() || err.inner().is_eof();
                let mut e = PayloadError::from_serde("", err);
                if is_syntax && let PayloadError::Invalid { path, reason } = &mut e {
                    *path = "$".into();
                    *reason = format!("not valid JSON ({reason})");
                }
                return Err(e);
            }
        };
        let data = raw.data.ok_or_else(|| PayloadError::missing("Data"))?;
        Ok(InvocationRequest {
            data,
            metadata: raw.metadata.unwrap_or_default(),
            invocation_id: invocation_id.filter(|s| !s.trim().is_empty()),
        })
    }

    /// Builds an envelope from parts (used by tests and the host emulator).
    pub fn from_parts(
        data: Map<String, Value>,
        metadata: Map<String, Value>,
        invocation_id: Option<String>,
    ) -> Self {
        InvocationRequest {
            data,
            metadata,
            invocation_id,
        }
    }

    /// `X-Azure-Functions-InvocationId`, when the host sent it.
    pub fn invocation_id(&self) -> Option<&str> {
        self.invocation_id.as_deref()
    }

    /// Names of the `Data` entries (one per input binding).
    pub fn binding_names(&self) -> impl Iterator<Item = &str> {
        self.data.keys().map(String::as_str)
    }

    /// `Metadata.sys`; absent or malformed parts are `None` (they are informational).
    pub fn sys(&self) -> Sys {
        let Some((_, Value::Object(sys))) = meta_get(&self.metadata, "sys") else {
            return Sys::default();
        };
        let text = |k: &str| meta_get(sys, k).and_then(|(_, v)| meta_string(v).ok().flatten());
        Sys {
            method_name: text("MethodName"),
            utc_now: text("UtcNow").and_then(|t| parse_host_datetime(&t)),
            rand_guid: text("RandGuid"),
        }
    }

    /// The `Data` entry of `binding`, or a `Missing` error naming `Data.<binding>`.
    pub(crate) fn data_entry(&self, binding: &str) -> Result<&Value, PayloadError> {
        match self.data.get(binding) {
            None | Some(Value::Null) => Err(PayloadError::missing(format!("Data.{binding}"))),
            Some(v) => Ok(v),
        }
    }

    /// A metadata entry (case-insensitive key); `None` when absent or null.
    pub(crate) fn metadata_entry(&self, key: &str) -> Option<(&str, &Value)> {
        meta_get(&self.metadata, key).filter(|(_, v)| !v.is_null())
    }
}

/// A trigger type decodable from an envelope, given the trigger binding's `name` in function.json.
pub trait Trigger: Sized {
    const KIND: TriggerKind;
    fn decode(request: &InvocationRequest, binding: &str) -> Result<Self, PayloadError>;
    /// Dequeue count for queue triggers (recorded on the invocation span).
    fn dequeue_count(&self) -> Option<u32> {
        None
    }
}

pub(crate) fn expect_object<'a>(
    value: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, PayloadError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(PayloadError::invalid(
            path,
            format!("expected an object, found {}", kind_of(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_without_data_is_refused_naming_data() {
        let err = InvocationRequest::from_slice(br#"{"Metadata":{}}"#, None).unwrap_err();
        assert_eq!(err, PayloadError::missing("Data"));
    }

    #[test]
    fn data_that_is_not_an_object_is_refused_naming_data() {
        let err = InvocationRequest::from_slice(br#"{"Data":[1]}"#, None).unwrap_err();
        assert_eq!(err.path(), "Data");
    }

    #[test]
    fn broken_json_is_refused_at_the_root() {
        let err = InvocationRequest::from_slice(br#"{"Data":"#, None).unwrap_err();
        assert_eq!(err.path(), "$");
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[test]
    fn paths_join_with_dots_and_brackets() {
        assert_eq!(join_path("Data.msg", "stage"), "Data.msg.stage");
        assert_eq!(join_path("Data.msg", "."), "Data.msg");
        assert_eq!(join_path("Data.req.Body", "[2].x"), "Data.req.Body[2].x");
        assert_eq!(join_path("", "Data"), "Data");
    }
}
