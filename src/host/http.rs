//! HTTP trigger in payload mode: `Data.<name>` = `{Url, Method, Query, Headers, Params,
//! Identities, Body}` (reference §5.6), and the reusable body decoders for HTTP functions.
//!
//! Must not import anything outside `host`.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::identity::{Caller, Identities};
use super::request::{InvocationRequest, PayloadError, Sys, Trigger, TriggerKind, expect_object};
use super::wire::{kind_of, meta_get};

/// Largest request body an HTTP function accepts (bytes of the decoded body).
pub const HTTP_BODY_LIMIT: usize = 256 * 1024;

/// Header names whose values are secrets passed through by the host (redacted in `Debug`).
const SECRET_HEADERS: &[&str] = &["x-functions-key", "authorization", "cookie"];
/// Query parameters that are secrets (the function key).
const SECRET_QUERY: &[&str] = &["code", "sig"];

/// Request headers: name → values, looked up case-insensitively.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Headers(Vec<(String, Vec<String>)>);

impl Headers {
    /// First value of a header (case-insensitive name).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).first().map(String::as_str)
    }

    /// All values of a header (case-insensitive name).
    pub fn get_all(&self, name: &str) -> &[String] {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    pub fn from_pairs<I, N, V>(pairs: I) -> Headers
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let mut h = Headers::default();
        for (n, v) in pairs {
            let n = n.into();
            match h.0.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(&n)) {
                Some((_, vals)) => vals.push(v.into()),
                None => h.0.push((n, vec![v.into()])),
            }
        }
        h
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (n, v) in &self.0 {
            if SECRET_HEADERS.iter().any(|s| n.eq_ignore_ascii_case(s)) {
                m.entry(n, &"***");
            } else {
                m.entry(n, v);
            }
        }
        m.finish()
    }
}

/// A decoded HTTP-trigger invocation (the caller's request as the host saw it).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `scheme://host/api/...?query` as seen by the host.
    pub url: String,
    /// Upper-case method, e.g. `POST`.
    pub method: String,
    /// Query parameters; repeated keys arrive joined with `,`.
    pub query: BTreeMap<String, String>,
    pub headers: Headers,
    /// Route parameters; `None` for an empty optional segment.
    pub params: BTreeMap<String, Option<String>>,
    /// `Identities`: who the host authenticated (function key name, Easy Auth principal).
    /// The only source of the caller for audit trails ([`HttpRequest::caller`]).
    pub identities: Identities,
    /// Raw `Body` as the host sent it (text, or base64 for octet-stream / multipart).
    body: Option<String>,
    pub sys: Sys,
    pub invocation_id: Option<String>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query: BTreeMap<&str, &str> = self
            .query
            .iter()
            .map(|(k, v)| {
                let secret = SECRET_QUERY.iter().any(|s| k.eq_ignore_ascii_case(s));
                (k.as_str(), if secret { "***" } else { v.as_str() })
            })
            .collect();
        let url = self.url.split('?').next().unwrap_or_default();
        f.debug_struct("HttpRequest")
            .field("url", &url)
            .field("method", &self.method)
            .field("query", &query)
            .field("headers", &self.headers)
            .field("params", &self.params)
            .field("caller", &self.identities.caller().audit_name())
            .field("body_len", &self.body.as_ref().map(String::len))
            .field("invocation_id", &self.invocation_id)
            .finish()
    }
}

impl HttpRequest {
    /// Builds a request directly (tests, CLI paths that reuse HTTP handlers).
    pub fn new(method: &str, url: &str) -> HttpRequest {
        HttpRequest {
            url: url.to_owned(),
            method: method.to_ascii_uppercase(),
            query: BTreeMap::new(),
            headers: Headers::default(),
            params: BTreeMap::new(),
            identities: Identities::default(),
            body: None,
            sys: Sys::default(),
            invocation_id: None,
        }
    }

    /// Sets the raw body text (builder).
    pub fn with_body(mut self, body: impl Into<String>) -> HttpRequest {
        self.body = Some(body.into());
        self
    }

    /// Sets the host's `Identities` (builder; tests and CLI paths).
    pub fn with_identities(mut self, identities: Identities) -> HttpRequest {
        self.identities = identities;
        self
    }

    /// Who called, as the host authenticated it (never a request header).
    pub fn caller(&self) -> Caller {
        self.identities.caller()
    }

    /// A route parameter (`None` when absent or an empty optional segment).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
            .filter(|v| !v.is_empty())
    }

    /// A query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type of the body, lower-case, without parameters.
    pub fn content_type(&self) -> Option<String> {
        self.headers.get("content-type").map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// True when the caller's `Accept` header prefers `mime` over JSON (e.g. a browser asking
    /// for `text/html`).
    pub fn accepts(&self, mime: &str) -> bool {
        self.headers
            .get_all("accept")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|part| {
                part.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .eq_ignore_ascii_case(mime)
            })
    }

    /// True when the host sent the body base64-encoded (octet-stream and multipart bodies).
    fn body_is_base64(&self) -> bool {
        self.content_type()
            .is_some_and(|ct| ct == "application/octet-stream" || ct.starts_with("multipart/"))
    }

    /// The raw body as the host delivered it (base64 text for binary content types).
    pub fn raw_body(&self) -> Option<&str> {
        self.body.as_deref()
    }

    /// The body bytes (base64 decoded for binary content types), checked against
    /// [`HTTP_BODY_LIMIT`]. `Ok(None)` when the request had no body.
    pub fn body_bytes(&self) -> Result<Option<Vec<u8>>, PayloadError> {
        let Some(body) = self.body.as_deref() else {
            return Ok(None);
        };
        let bytes = if self.body_is_base64() {
            base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .map_err(|e| {
                    PayloadError::invalid("Data.req.Body", format!("not valid base64 ({e})"))
                })?
        } else {
            body.as_bytes().to_vec()
        };
        if bytes.len() > HTTP_BODY_LIMIT {
            return Err(PayloadError::TooLarge {
                path: "body".into(),
                size: bytes.len(),
                limit: HTTP_BODY_LIMIT,
            });
        }
        Ok(Some(bytes))
    }

    /// Decodes a JSON request body into `T`. Errors name the field (`body.pair`), 413 for a body
    /// over [`HTTP_BODY_LIMIT`], 400 for a missing body, wrong content type or bad JSON.
    pub fn json_body<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        let bytes = self
            .body_bytes()?
            .ok_or_else(|| PayloadError::missing("body"))?;
        if let Some(ct) = self.content_type()
            && !(ct == "application/json" || ct == "text/json" || ct.ends_with("+json"))
        {
            return Err(PayloadError::invalid(
                "body",
                format!("expected Content-Type application/json, got `{ct}`"),
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
            if err.inner().is_syntax() || err.inner().is_eof() {
                PayloadError::invalid("body", format!("not valid JSON ({})", err.inner()))
            } else {
                PayloadError::from_serde("body", err)
            }
        })?;
        de.end().map_err(|e| {
            PayloadError::invalid("body", format!("trailing characters after the JSON ({e})"))
        })?;
        Ok(value)
    }

    /// Like [`HttpRequest::json_body`], but an absent or empty body decodes as `T::default()`.
    pub fn json_body_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, PayloadError> {
        match self.body.as_deref() {
            None => Ok(T::default()),
            Some(b) if b.trim().is_empty() => Ok(T::default()),
            Some(_) => self.json_body(),
        }
    }
}

impl Trigger for HttpRequest {
    const KIND: TriggerKind = TriggerKind::Http;

    fn decode(request: &InvocationRequest, binding: &str) -> Result<Self, PayloadError> {
        let base = format!("Data.{binding}");
        let req = expect_object(request.data_entry(binding)?, &base)?;
        let field = |name: &str| meta_get(req, name).filter(|(_, v)| !v.is_null());
        let string = |name: &str, required: bool| -> Result<Option<String>, PayloadError> {
            match field(name) {
                None if required => Err(PayloadError::missing(format!("{base}.{name}"))),
                None => Ok(None),
                Some((_, Value::String(s))) => Ok(Some(s.clone())),
                Some((k, other)) => Err(PayloadError::invalid(
                    format!("{base}.{k}"),
                    format!("expected a string, found {}", kind_of(other)),
                )),
            }
        };
        let url = string("Url", false)?.unwrap_or_default();
        let method = string("Method", true)?
            .unwrap_or_default()
            .to_ascii_uppercase();
        if method.is_empty() || !method.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(PayloadError::invalid(
                format!("{base}.Method"),
                "expected an HTTP method such as POST",
            ));
        }
        let query = match field("Query") {
            None => BTreeMap::new(),
            Some((k, v)) => string_map(v, &format!("{base}.{k}"))?,
        };
        let headers = match field("Headers") {
            None => Headers::default(),
            Some((k, v)) => headers_from(v, &format!("{base}.{k}"))?,
        };
        let params = match field("Params") {
            None => BTreeMap::new(),
            Some((k, v)) => {
                let path = format!("{base}.{k}");
                let map = expect_object(v, &path)?;
                let mut out = BTreeMap::new();
                for (name, value) in map {
                    let value = match value {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        other => {
                            return Err(PayloadError::invalid(
                                format!("{path}.{name}"),
                                format!("expected a string, found {}", kind_of(other)),
                            ));
                        }
                    };
                    out.insert(name.clone(), value);
                }
                out
            }
        };
        let identities = Identities::from_value(field("Identities").map(|(_, v)| v));
        let body = string("Body", false)?;
        Ok(HttpRequest {
            url,
            method,
            query,
            headers,
            params,
            identities,
            body,
            sys: request.sys(),
            invocation_id: request.invocation_id().map(str::to_owned),
        })
    }
}

/// `name → string`; also accepts the pre-2020 form, a string holding a JSON object (`"{}"`).
fn string_map(value: &Value, path: &str) -> Result<BTreeMap<String, String>, PayloadError> {
    let parsed;
    let map: &Map<String, Value> = match value {
        Value::Object(m) => m,
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).map_err(|_| {
                PayloadError::invalid(
                    path,
                    "expected an object (or a string holding a JSON object)",
                )
            })?;
            expect_object(&parsed, path)?
        }
        other => {
            return Err(PayloadError::invalid(
                path,
                format!("expected an object, found {}", kind_of(other)),
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(PayloadError::invalid(
                    format!("{path}.{k}"),
                    format!("expected a string, found {}", kind_of(other)),
                ));
            }
        };
        out.insert(k.clone(), v);
    }
    Ok(out)
}

/// `name → [string]` (real hosts); a single string value is accepted too.
fn headers_from(value: &Value, path: &str) -> Result<Headers, PayloadError> {
    let map = expect_object(value, path)?;
    let mut pairs = Vec::new();
    for (name, v) in map {
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => pairs.push((name.clone(), s.clone())),
                        other => {
                            return Err(PayloadError::invalid(
                                format!("{path}.{name}[{i}]"),
                                format!("expected a string, found {}", kind_of(other)),
                            ));
                        }
                    }
                }
            }
            Value::String(s) => pairs.push((name.clone(), s.clone())),
            other => {
                return Err(PayloadError::invalid(
                    format!("{path}.{name}"),
                    format!("expected an array of strings, found {}", kind_of(other)),
                ));
            }
        }
    }
    Ok(Headers::from_pairs(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn decode(body: &str) -> Result<HttpRequest, PayloadError> {
        let req = InvocationRequest::from_slice(body.as_bytes(), None).unwrap();
        HttpRequest::decode(&req, "req")
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Start {
        pair: String,
        #[serde(default)]
        force: bool,
    }

    #[test]
    fn headers_query_and_params_decode() {
        let r = decode(
            r#"{"Data":{"req":{"Url":"https://x/api/readiness/sales?code=k","Method":"get","Query":{"code":"k"},
            "Headers":{"Accept":["text/html,application/xhtml+xml"],"x-functions-key":["k2"]},"Params":{"pair":"sales","action":null}}}}"#,
        )
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.param("pair"), Some("sales"));
        assert_eq!(r.param("action"), None);
        assert!(r.accepts("text/html"));
        let shown = format!("{r:?}");
        assert!(!shown.contains("k2") && !shown.contains("\"k\""), "{shown}");
    }

    #[test]
    fn a_json_body_field_error_names_the_field() {
        let r = decode(r#"{"Data":{"req":{"Method":"POST","Headers":{"Content-Type":["application/json"]},"Body":"{\"pair\":5}"}}}"#)
            .unwrap();
        let err = r.json_body::<Start>().unwrap_err();
        assert_eq!(err.path(), "body.pair");
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn a_body_over_the_limit_is_413() {
        let big = "x".repeat(HTTP_BODY_LIMIT + 1);
        let r = HttpRequest::new("POST", "http://x").with_body(big);
        assert_eq!(r.json_body::<Start>().unwrap_err().status(), 413);
    }

    #[test]
    fn an_octet_stream_body_is_base64_decoded() {
        let r = decode(r#"{"Data":{"req":{"Method":"POST","Headers":{"Content-Type":["application/octet-stream"]},"Body":"AAEC"}}}"#)
            .unwrap();
        assert_eq!(r.body_bytes().unwrap().unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn the_legacy_string_query_form_decodes() {
        let r = decode(r#"{"Data":{"req":{"Method":"POST","Query":"{\"a\":\"b\"}"}}}"#).unwrap();
        assert_eq!(r.query_param("a"), Some("b"));
    }
}
