//! The handler's answer in payload mode: `{"Outputs": …, "Logs": […], "ReturnValue": …}`
//! (reference §6), with typed outputs: the HTTP output (`res`) and queue messages.
//!
//! Invariants: the encoder always writes a JSON object with all three members (never an empty
//! body or `null`, which would hang the host); `statusCode` is written as a string (the form the
//! docs, the host's tests and the official samples use); queue messages built with
//! [`QueueMessage::json`] are JSON objects, so the host's base64 sniffing (§6.3) never turns
//! them into other bytes.
//! Must not import anything outside `host`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::request::PayloadError;
use super::wire::kind_of;

/// Error while encoding an output value.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The value could not be serialized.
    #[error("cannot serialize the {what}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Queue messages must be JSON objects (a bare short string may be base64-sniffed).
    #[error("a queue message must serialize to a JSON object, got {kind}")]
    NotAnObject { kind: &'static str },
}

/// One queue message for a queue output binding.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage(Value);

impl QueueMessage {
    /// A message holding `value` as a JSON object (the only form stage messages use).
    pub fn json<T: Serialize>(value: &T) -> Result<QueueMessage, EncodeError> {
        let v = serde_json::to_value(value).map_err(|source| EncodeError::Serialize {
            what: "queue message",
            source,
        })?;
        if !v.is_object() {
            return Err(EncodeError::NotAnObject { kind: kind_of(&v) });
        }
        Ok(QueueMessage(v))
    }

    /// A plain-text message. Caution (§6.3): text that is valid base64 (`test`, `abcd1234`) is
    /// decoded into other bytes by the host; prefer [`QueueMessage::json`].
    pub fn text(text: impl Into<String>) -> QueueMessage {
        QueueMessage(Value::String(text.into()))
    }

    /// Decodes a JSON-object message into `T` (tests, the host emulator).
    pub fn to_typed<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.0)
    }

    /// The message text the handler meant to enqueue (objects as compact JSON).
    pub fn to_text(&self) -> String {
        match &self.0 {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// HTTP response for the caller (output binding of type `http`, named `res`).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOutput {
    status: Option<u16>,
    body: Option<Value>,
    headers: Option<BTreeMap<String, String>>,
}

impl HttpOutput {
    /// An empty response with `status`.
    pub fn new(status: u16) -> HttpOutput {
        HttpOutput {
            status: Some(status),
            body: None,
            headers: None,
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> HttpOutput {
        HttpOutput::new(status)
            .with_body_text(body)
            .with_header("Content-Type", "text/plain; charset=utf-8")
    }

    /// A `text/html` response.
    pub fn html(status: u16, body: impl Into<String>) -> HttpOutput {
        HttpOutput::new(status)
            .with_body_text(body)
            .with_header("Content-Type", "text/html; charset=utf-8")
    }

    /// A JSON response: the body is sent as JSON text with `Content-Type: application/json`
    /// (a string body is passed through verbatim by the host).
    pub fn json<T: Serialize>(status: u16, value: &T) -> Result<HttpOutput, EncodeError> {
        let text = serde_json::to_string(value).map_err(|source| EncodeError::Serialize {
            what: "http response body",
            source,
        })?;
        Ok(HttpOutput::new(status)
            .with_body_text(text)
            .with_header("Content-Type", "application/json"))
    }

    /// An RFC 7807 problem response (`application/problem+json`).
    pub fn problem(problem: &Problem) -> HttpOutput {
        HttpOutput::new(problem.status)
            .with_body_text(problem.to_json())
            .with_header("Content-Type", "application/problem+json")
    }

    pub fn with_body_text(mut self, body: impl Into<String>) -> HttpOutput {
        self.body = Some(Value::String(body.into()));
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpOutput {
        self.headers
            .get_or_insert_with(BTreeMap::new)
            .insert(name.into(), value.into());
        self
    }

    /// The status the caller gets (the host uses 200 when `statusCode` is absent).
    pub fn status(&self) -> u16 {
        self.status.unwrap_or(200)
    }

    /// The body as the caller receives it (JSON bodies as compact text).
    pub fn body_text(&self) -> Option<String> {
        self.body.as_ref().map(|b| match b {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// A response header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .as_ref()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        if let Some(s) = self.status {
            m.insert("statusCode".into(), Value::String(s.to_string()));
        }
        if let Some(b) = &self.body {
            m.insert("body".into(), b.clone());
        }
        if let Some(h) = &self.headers {
            let h: Map<String, Value> = h
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            m.insert("headers".into(), Value::Object(h));
        }
        Value::Object(m)
    }

    fn from_value(value: &Value, path: &str) -> Result<HttpOutput, PayloadError> {
        let parsed;
        let map = match value {
            Value::Object(m) => m,
            // A string holding JSON object text also works on the host (§6.4).
            Value::String(s) => {
                parsed = serde_json::from_str::<Value>(s)
                    .map_err(|_| PayloadError::invalid(path, "an http output must be an object"))?;
                parsed.as_object().ok_or_else(|| {
                    PayloadError::invalid(path, "an http output must be an object")
                })?
            }
            other => {
                return Err(PayloadError::invalid(
                    path,
                    format!("an http output must be an object, found {}", kind_of(other)),
                ));
            }
        };
        let get = |k: &str| {
            map.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        let status = match get("statusCode") {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
            _ => None,
        };
        let headers = match get("headers") {
            None | Some(Value::Null) => None,
            Some(Value::Object(h)) => Some(
                h.iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        other => Err(PayloadError::invalid(
                            format!("{path}.headers.{k}"),
                            format!("expected a string, found {}", kind_of(other)),
                        )),
                    })
                    .collect::<Result<BTreeMap<_, _>, _>>()?,
            ),
            Some(other) => {
                return Err(PayloadError::invalid(
                    format!("{path}.headers"),
                    format!("expected an object, found {}", kind_of(other)),
                ));
            }
        };
        Ok(HttpOutput {
            status,
            body: get("body").filter(|b| !b.is_null()).cloned(),
            headers,
        })
    }
}

/// RFC 7807 problem details, used for every error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// JSON path of the offending field, for decode errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
}

impl Problem {
    pub fn new(status: u16, title: impl Into<String>, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: title.into(),
            status,
            detail: detail.into(),
            field: None,
            function: None,
            invocation_id: None,
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| format!("{{\"status\":{}}}", self.status))
    }
}

/// One `Outputs` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputValue {
    /// An `http` output binding.
    Http(HttpOutput),
    /// Messages for a queue output binding (written as a JSON array: one message per element).
    Messages(Vec<QueueMessage>),
    /// Any other single value (written as is).
    Value(QueueMessage),
}

impl OutputValue {
    fn to_value(&self) -> Value {
        match self {
            OutputValue::Http(h) => h.to_value(),
            OutputValue::Messages(ms) => Value::Array(ms.iter().map(|m| m.0.clone()).collect()),
            OutputValue::Value(m) => m.0.clone(),
        }
    }

    /// The queue messages the host would enqueue for this value (reference §6.3): base64
    /// sniffing of a top-level string, one message per array element, JSON-looking strings
    /// re-read, objects re-serialized indented. `Http` outputs yield nothing.
    pub fn host_queue_messages(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            OutputValue::Http(_) => {}
            OutputValue::Messages(ms) => {
                for m in ms {
                    host_element(&m.0, &mut out);
                }
            }
            OutputValue::Value(m) => match &m.0 {
                Value::String(s) => match sniff_base64(s) {
                    Some(bytes) => out.push(bytes),
                    None => host_element(&m.0, &mut out),
                },
                Value::Array(items) => items.iter().for_each(|i| host_element(i, &mut out)),
                other => host_element(other, &mut out),
            },
        }
        out
    }
}

fn host_element(value: &Value, out: &mut Vec<Vec<u8>>) {
    match value {
        Value::String(s) => {
            let t = s.trim();
            let looks_json = (t.starts_with('{') && t.ends_with('}'))
                || (t.starts_with('[') && t.ends_with(']'));
            if looks_json && let Ok(parsed) = serde_json::from_str::<Value>(t) {
                match parsed {
                    Value::Array(items) => items.iter().for_each(|i| host_element(i, out)),
                    other => out.push(pretty(&other)),
                }
                return;
            }
            out.push(s.as_bytes().to_vec());
        }
        Value::Object(_) => out.push(pretty(value)),
        other => out.push(other.to_string().into_bytes()),
    }
}

fn pretty(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_else(|_| value.to_string().into_bytes())
}

/// .NET `Convert.FromBase64String` acceptance: whitespace ignored, base64 alphabet, length a
/// multiple of 4.
fn sniff_base64(s: &str) -> Option<Vec<u8>> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() || !compact.len().is_multiple_of(4) {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// Binding name of the HTTP output in every function.json of this app.
pub const HTTP_RES: &str = "res";

/// The payload-mode response body.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationResponse {
    outputs: BTreeMap<String, OutputValue>,
    logs: Option<Vec<String>>,
    return_value: Option<OutputValue>,
}

impl Default for InvocationResponse {
    fn default() -> Self {
        Self::new()
    }
}

impl InvocationResponse {
    /// No outputs, no logs, no return value.
    pub fn new() -> InvocationResponse {
        InvocationResponse {
            outputs: BTreeMap::new(),
            logs: Some(Vec::new()),
            return_value: None,
        }
    }

    /// A response whose only output is the HTTP response `res`.
    pub fn http(res: HttpOutput) -> InvocationResponse {
        InvocationResponse::new().with_output(HTTP_RES, OutputValue::Http(res))
    }

    pub fn with_output(mut self, binding: impl Into<String>, value: OutputValue) -> Self {
        self.outputs.insert(binding.into(), value);
        self
    }

    /// Sets the HTTP output `res`.
    pub fn with_http(self, res: HttpOutput) -> Self {
        self.with_output(HTTP_RES, OutputValue::Http(res))
    }

    /// Appends a message to a queue output binding.
    pub fn push_message(&mut self, binding: &str, message: QueueMessage) {
        match self.outputs.get_mut(binding) {
            Some(OutputValue::Messages(ms)) => ms.push(message),
            _ => {
                self.outputs
                    .insert(binding.to_owned(), OutputValue::Messages(vec![message]));
            }
        }
    }

    /// Builder form of [`InvocationResponse::push_message`].
    pub fn with_message(mut self, binding: &str, message: QueueMessage) -> Self {
        self.push_message(binding, message);
        self
    }

    /// Adds a line to `Logs` (attached to the invocation; Information level; lost on non-2xx).
    pub fn log(mut self, line: impl Into<String>) -> Self {
        self.logs.get_or_insert_with(Vec::new).push(line.into());
        self
    }

    pub fn with_return_value(mut self, value: OutputValue) -> Self {
        self.return_value = Some(value);
        self
    }

    pub fn output(&self, binding: &str) -> Option<&OutputValue> {
        self.outputs.get(binding)
    }

    pub fn outputs(&self) -> impl Iterator<Item = (&str, &OutputValue)> {
        self.outputs.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The HTTP output `res`, if set.
    pub fn http_res(&self) -> Option<&HttpOutput> {
        match self.outputs.get(HTTP_RES) {
            Some(OutputValue::Http(h)) => Some(h),
            _ => None,
        }
    }

    /// Messages set for a queue output binding (as the handler built them).
    pub fn messages(&self, binding: &str) -> &[QueueMessage] {
        match self.outputs.get(binding) {
            Some(OutputValue::Messages(ms)) => ms,
            Some(OutputValue::Value(m)) => std::slice::from_ref(m),
            _ => &[],
        }
    }

    pub fn logs(&self) -> &[String] {
        self.logs.as_deref().unwrap_or_default()
    }

    pub fn return_value(&self) -> Option<&OutputValue> {
        self.return_value.as_ref()
    }

    /// The JSON document sent to the host.
    pub fn to_json_value(&self) -> Value {
        let outputs: Map<String, Value> = self
            .outputs
            .iter()
            .map(|(k, v)| (k.clone(), v.to_value()))
            .collect();
        json!({
            "Outputs": outputs,
            "Logs": self.logs,
            "ReturnValue": self.return_value.as_ref().map(OutputValue::to_value),
        })
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json_value().to_string().into_bytes()
    }

    /// Reads a response as the host would (top-level names case-insensitive; `http_bindings`
    /// are the names of `http` output bindings). Used by the host emulator and tests.
    pub fn parse(body: &[u8], http_bindings: &[&str]) -> Result<InvocationResponse, PayloadError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| PayloadError::invalid("$", format!("not valid JSON ({e})")))?;
        let Value::Object(top) = value else {
            return Err(PayloadError::invalid(
                "$",
                format!("expected an object, found {}", kind_of(&value)),
            ));
        };
        let get = |k: &str| {
            top.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        let mut outputs = BTreeMap::new();
        match get("Outputs") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (name, v) in map {
                    let value = if http_bindings.contains(&name.as_str()) {
                        OutputValue::Http(HttpOutput::from_value(v, &format!("Outputs.{name}"))?)
                    } else {
                        match v {
                            Value::Array(items) => OutputValue::Messages(
                                items.iter().cloned().map(QueueMessage).collect(),
                            ),
                            other => OutputValue::Value(QueueMessage(other.clone())),
                        }
                    };
                    outputs.insert(name.clone(), value);
                }
            }
            Some(other) => {
                return Err(PayloadError::invalid(
                    "Outputs",
                    format!("expected an object, found {}", kind_of(other)),
                ));
            }
        }
        let logs = match get("Logs") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(PayloadError::invalid(
                            format!("Logs[{i}]"),
                            format!("expected a string, found {}", kind_of(other)),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => {
                return Err(PayloadError::invalid(
                    "Logs",
                    format!("expected an array, found {}", kind_of(other)),
                ));
            }
        };
        let return_value = match get("ReturnValue") {
            None | Some(Value::Null) => None,
            Some(v) => Some(OutputValue::Value(QueueMessage(v.clone()))),
        };
        Ok(InvocationResponse {
            outputs,
            logs,
            return_value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_response_is_still_a_full_object() {
        let v = InvocationResponse::new().to_json_value();
        assert_eq!(v, json!({"Outputs": {}, "Logs": [], "ReturnValue": null}));
    }

    #[test]
    fn http_output_writes_status_as_a_string_with_headers() {
        let r =
            InvocationResponse::http(HttpOutput::text(201, "my world").with_header("header1", "v"));
        let v = r.to_json_value();
        assert_eq!(v["Outputs"]["res"]["statusCode"], json!("201"));
        assert_eq!(v["Outputs"]["res"]["body"], json!("my world"));
        assert_eq!(v["Outputs"]["res"]["headers"]["header1"], json!("v"));
    }

    #[test]
    fn queue_messages_must_be_objects() {
        assert!(matches!(
            QueueMessage::json(&"abcd"),
            Err(EncodeError::NotAnObject { .. })
        ));
        let m = QueueMessage::json(&json!({"runId": "r"})).unwrap();
        let r = InvocationResponse::new()
            .with_message("stages", m.clone())
            .with_message("stages", m);
        assert_eq!(
            r.to_json_value()["Outputs"]["stages"],
            json!([{"runId": "r"}, {"runId": "r"}])
        );
    }

    #[test]
    fn the_host_sniffs_base64_strings_and_fans_out_arrays() {
        let v = OutputValue::Value(QueueMessage::text("test"));
        assert_eq!(v.host_queue_messages(), vec![vec![0xb5, 0xeb, 0x2d]]);
        let v = OutputValue::Value(QueueMessage::text("[{\"a\":1},{\"a\":2}]"));
        assert_eq!(v.host_queue_messages().len(), 2);
        let v = OutputValue::Messages(vec![QueueMessage::json(&json!({"a": 1})).unwrap()]);
        assert_eq!(v.host_queue_messages(), vec![b"{\n  \"a\": 1\n}".to_vec()]);
        let v = OutputValue::Value(QueueMessage::text("Mark Taylor"));
        assert_eq!(v.host_queue_messages(), vec![b"Mark Taylor".to_vec()]);
    }

    #[test]
    fn parse_reads_http_outputs_by_binding_name() {
        let r = InvocationResponse::parse(
            br#"{"outputs":{"res":{"StatusCode":404,"body":{"a":1}}},"logs":null}"#,
            &["res"],
        )
        .unwrap();
        let res = r.http_res().unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(res.body_text().unwrap(), "{\"a\":1}");
        let err = InvocationResponse::parse(br#"{"Outputs":{"res":5}}"#, &["res"]).unwrap_err();
        assert_eq!(err.path(), "Outputs.res");
    }
}
