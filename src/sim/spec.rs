//! The Data Share OpenAPI document (`DataShare.json`, 2021-08-01) as the simulator's source of
//! truth: routes (method + path template → operationId, LRO and paging flags, body parameter) and
//! a small JSON-schema validator for request bodies (and, in tests, for response bodies).
//!
//! Invariants: the spec is embedded with `include_str!` and parsed once; literal path segments
//! match case-insensitively (ARM semantics); discriminated bodies (`kind`) are validated against
//! the subtype whose `x-ms-discriminator-value` matches. Must not import anything of ours.

use std::sync::OnceLock;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The embedded spec text.
pub const SPEC_JSON: &str = include_str!("DataShare.json");

/// Every api-version the Data Share provider publishes (ARM accepts all of them).
pub const API_VERSIONS: [&str; 5] = [
    "2018-11-01-preview",
    "2019-11-01",
    "2020-09-01",
    "2020-10-01-preview",
    "2021-08-01",
];

/// One path segment of a route template.
#[derive(Debug, Clone)]
pub enum Seg {
    /// A literal segment, original casing kept (used to build resource `type` strings).
    Lit(String),
    /// A `{param}` placeholder.
    Param(String),
}

/// One operation of the spec.
#[derive(Debug, Clone)]
pub struct Route {
    pub operation_id: String,
    pub method: String,
    pub template: String,
    pub segs: Vec<Seg>,
    pub long_running: bool,
    pub pageable: bool,
    /// `(parameter name, schema, required)` of the body parameter, if any.
    pub body: Option<(String, Value, bool)>,
    /// Response schemas by status code (`"200"`, `"201"`, ...), `$ref` objects.
    pub responses: Vec<(String, Value)>,
}

/// A matched route with its path parameters (original casing from the request).
#[derive(Debug, Clone)]
pub struct Matched<'a> {
    pub route: &'a Route,
    pub params: Vec<(String, String)>,
}

impl Matched<'_> {
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// One schema violation: the property path (`properties.containerName`) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

/// Validation direction: requests drop read-only and unknown properties; responses check them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Request,
    Response,
}

/// The parsed spec.
#[derive(Debug)]
pub struct Spec {
    definitions: Map<String, Value>,
    routes: Vec<Route>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the embedded DataShare.json is not valid JSON")]
    ParseSpec(#[source] serde_json::Error),
    #[error("the embedded DataShare.json has no `{0}` object")]
    ReadSpecSection(&'static str),
    #[error("the embedded DataShare.json could not be loaded: {0}")]
    LoadSpec(String),
}

static SPEC: OnceLock<Result<Spec, String>> = OnceLock::new();

/// The process-wide parsed spec (parsed on first use).
pub fn spec() -> Result<&'static Spec, SpecError> {
    SPEC.get_or_init(|| Spec::parse(SPEC_JSON).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| SpecError::LoadSpec(e.clone()))
}

impl Spec {
    pub fn parse(text: &str) -> Result<Spec, SpecError> {
        let doc: Value = serde_json::from_str(text).map_err(SpecError::ParseSpec)?;
        let definitions = doc
            .get("definitions")
            .and_then(Value::as_object)
            .cloned()
            .ok_or(SpecError::ReadSpecSection("definitions"))?;
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or(SpecError::ReadSpecSection("paths"))?;
        let mut routes = Vec::new();
        for (template, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                if method == "parameters" {
                    continue;
                }
                let Some(op_id) = op.get("operationId").and_then(Value::as_str) else {
                    continue;
                };
                let segs = template
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Seg::Param(s[1..s.len() - 1].to_string())
                        } else {
                            Seg::Lit(s.to_string())
                        }
                    })
                    .collect();
                let body = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .and_then(|ps| {
                        ps.iter()
                            .find(|p| p.get("in").and_then(Value::as_str) == Some("body"))
                    })
                    .map(|p| {
                        (
                            p.get("name")
                                .and_then(Value::as_str)
                                .unwrap_or("body")
                                .to_string(),
                            p.get("schema").cloned().unwrap_or(Value::Null),
                            p.get("required").and_then(Value::as_bool).unwrap_or(false),
                        )
                    });
                let responses = op
                    .get("responses")
                    .and_then(Value::as_object)
                    .map(|r| {
                        r.iter()
                            .filter_map(|(code, v)| {
                                v.get("schema").map(|s| (code.clone(), s.clone()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                routes.push(Route {
                    operation_id: op_id.to_string(),
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segs,
                    long_running: op
                        .get("x-ms-long-running-operation")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    pageable: op.get("x-ms-pageable").is_some(),
                    body,
                    responses,
                });
            }
        }
        Ok(Spec {
            definitions,
            routes,
        })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn route(&self, operation_id: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.operation_id == operation_id)
    }

    /// Find the operation for `method` + `path` (segments already split, percent-decoded).
    /// A GET on the path of a pageable POST operation matches it too (nextLink pages are GETs).
    pub fn find<'a>(&'a self, method: &str, segs: &[&str]) -> Option<Matched<'a>> {
        let exact = self
            .routes
            .iter()
            .filter(|r| r.method == method)
            .find_map(|r| match_route(r, segs));
        if exact.is_some() {
            return exact;
        }
        if method == "GET" {
            return self
                .routes
                .iter()
                .filter(|r| r.method == "POST" && r.pageable)
                .find_map(|r| match_route(r, segs));
        }
        None
    }

    /// True when some operation exists for the path with another method (→ 405).
    pub fn path_known(&self, segs: &[&str]) -> bool {
        self.routes.iter().any(|r| match_route(r, segs).is_some())
    }

    pub fn definition(&self, name: &str) -> Option<&Value> {
        self.definitions.get(name)
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> (Option<&'a str>, &'a Value) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            if let Some(d) = self.definitions.get(name) {
                return (Some(name), d);
            }
        }
        (None, schema)
    }

    /// Collect properties and required names of an object schema, following `allOf`.
    fn flatten<'a>(
        &'a self,
        schema: &'a Value,
        props: &mut Vec<(&'a str, &'a Value)>,
        required: &mut Vec<&'a str>,
        depth: usize,
    ) {
        if depth > 16 {
            return;
        }
        let (_, s) = self.resolve(schema);
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for a in all {
                self.flatten(a, props, required, depth + 1);
            }
        }
        if let Some(p) = s.get("properties").and_then(Value::as_object) {
            for (k, v) in p {
                if let Some(slot) = props.iter_mut().find(|(n, _)| *n == k.as_str()) {
                    slot.1 = v;
                } else {
                    props.push((k.as_str(), v));
                }
            }
        }
        if let Some(r) = s.get("required").and_then(Value::as_array) {
            for x in r.iter().filter_map(Value::as_str) {
                if !required.contains(&x) {
                    required.push(x);
                }
            }
        }
    }

    /// Subtype of `base` whose discriminator value is `value` (case-insensitive).
    fn subtype(&self, base: &str, value: &str) -> Option<(&str, &Value)> {
        let target = format!("#/definitions/{base}");
        self.definitions.iter().find_map(|(name, d)| {
            let dv = d.get("x-ms-discriminator-value").and_then(Value::as_str)?;
            let extends = d.get("allOf").and_then(Value::as_array).is_some_and(|a| {
                a.iter()
                    .any(|x| x.get("$ref").and_then(Value::as_str) == Some(&target))
            });
            (extends && dv.eq_ignore_ascii_case(value)).then_some((name.as_str(), d))
        })
    }

    /// Discriminator values allowed for `base`.
    fn subtype_values(&self, base: &str) -> Vec<&str> {
        let target = format!("#/definitions/{base}");
        self.definitions
            .values()
            .filter(|d| {
                d.get("allOf").and_then(Value::as_array).is_some_and(|a| {
                    a.iter()
                        .any(|x| x.get("$ref").and_then(Value::as_str) == Some(&target))
                })
            })
            .filter_map(|d| d.get("x-ms-discriminator-value").and_then(Value::as_str))
            .collect()
    }

    /// Validate `value` against `schema`; returns the cleaned value (request mode: read-only and
    /// unknown properties dropped, enum values normalised to the spec's casing) and pushes every
    /// violation found.
    pub fn validate(
        &self,
        schema: &Value,
        value: &Value,
        path: &str,
        mode: Mode,
        out: &mut Vec<Violation>,
    ) -> Value {
        self.validate_at(schema, value, path, mode, out, 0)
    }

    fn validate_at(
        &self,
        schema: &Value,
        value: &Value,
        path: &str,
        mode: Mode,
        out: &mut Vec<Violation>,
        depth: usize,
    ) -> Value {
        if depth > 32 {
            return value.clone();
        }
        let (name, s) = self.resolve(schema);
        // Polymorphic base: dispatch on the discriminator.
        if let (Some(base), Some(disc)) = (name, s.get("discriminator").and_then(Value::as_str))
            && s.get("x-ms-discriminator-value").is_none()
        {
            let Some(obj) = value.as_object() else {
                out.push(Violation {
                    path: display(path),
                    message: "must be a JSON object".into(),
                });
                return value.clone();
            };
            let dpath = join(path, disc);
            match obj.get(disc).and_then(Value::as_str) {
                None => {
                    out.push(Violation {
                        path: dpath,
                        message: format!(
                            "is required (one of: {})",
                            self.subtype_values(base).join(", ")
                        ),
                    });
                    return value.clone();
                }
                Some(k) => match self.subtype(base, k) {
                    Some((sub, _)) => {
                        let sub_schema =
                            serde_json::json!({ "$ref": format!("#/definitions/{sub}") });
                        return self.validate_at(&sub_schema, value, path, mode, out, depth + 1);
                    }
                    None => {
                        out.push(Violation {
                            path: dpath,
                            message: format!(
                                "value '{k}' is not one of: {}",
                                self.subtype_values(base).join(", ")
                            ),
                        });
                        return value.clone();
                    }
                },
            }
        }
        let ty = s.get("type").and_then(Value::as_str);
        let is_object = ty == Some("object")
            || (ty.is_none() && (s.get("properties").is_some() || s.get("allOf").is_some()));
        if is_object {
            return self.validate_object(schema, s, value, path, mode, out, depth);
        }
        match ty {
            Some("string") => {
                let Some(text) = value.as_str() else {
                    out.push(Violation {
                        path: display(path),
                        message: format!("must be a string, found {}", kind_of(value)),
                    });
                    return value.clone();
                };
                if let Some(en) = s.get("enum").and_then(Value::as_array) {
                    let allowed: Vec<&str> = en.iter().filter_map(Value::as_str).collect();
                    match allowed.iter().find(|a| a.eq_ignore_ascii_case(text)) {
                        Some(canon) => return Value::String((*canon).to_string()),
                        None => {
                            out.push(Violation {
                                path: display(path),
                                message: format!(
                                    "value '{text}' is not one of: {}",
                                    allowed.join(", ")
                                ),
                            });
                            return value.clone();
                        }
                    }
                }
                match s.get("format").and_then(Value::as_str) {
                    Some("date-time") if OffsetDateTime::parse(text, &Rfc3339).is_err() => {
                        out.push(Violation {
                            path: display(path),
                            message: format!("value '{text}' is not an RFC 3339 date-time"),
                        });
                    }
                    Some("uuid") if uuid::Uuid::parse_str(text).is_err() => {
                        out.push(Violation {
                            path: display(path),
                            message: format!("value '{text}' is not a UUID"),
                        });
                    }
                    _ => {}
                }
                value.clone()
            }
            Some("integer") => {
                if !(value.is_i64() || value.is_u64()) {
                    out.push(Violation {
                        path: display(path),
                        message: format!("must be an integer, found {}", kind_of(value)),
                    });
                }
                value.clone()
            }
            Some("number") => {
                if !value.is_number() {
                    out.push(Violation {
                        path: display(path),
                        message: format!("must be a number, found {}", kind_of(value)),
                    });
                }
                value.clone()
            }
            Some("boolean") => {
                if !value.is_boolean() {
                    out.push(Violation {
                        path: display(path),
                        message: format!("must be a boolean, found {}", kind_of(value)),
                    });
                }
                value.clone()
            }
            Some("array") => {
                let Some(items) = value.as_array() else {
                    out.push(Violation {
                        path: display(path),
                        message: format!("must be an array, found {}", kind_of(value)),
                    });
                    return value.clone();
                };
                let item_schema = s.get("items").cloned().unwrap_or(Value::Null);
                Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            self.validate_at(
                                &item_schema,
                                v,
                                &format!("{path}[{i}]"),
                                mode,
                                out,
                                depth + 1,
                            )
                        })
                        .collect(),
                )
            }
            _ => value.clone(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn validate_object(
        &self,
        schema: &Value,
        s: &Value,
        value: &Value,
        path: &str,
        mode: Mode,
        out: &mut Vec<Violation>,
        depth: usize,
    ) -> Value {
        let Some(obj) = value.as_object() else {
            out.push(Violation {
                path: display(path),
                message: format!("must be a JSON object, found {}", kind_of(value)),
            });
            return value.clone();
        };
        let mut props = Vec::new();
        let mut required = Vec::new();
        self.flatten(schema, &mut props, &mut required, 0);
        let additional = s.get("additionalProperties");
        let mut cleaned = Map::new();
        for r in &required {
            let read_only = props
                .iter()
                .find(|(n, _)| n == r)
                .is_some_and(|(_, p)| p.get("readOnly").and_then(Value::as_bool) == Some(true));
            if (mode == Mode::Response || !read_only) && obj.get(*r).is_none_or(Value::is_null) {
                out.push(Violation {
                    path: join(path, r),
                    message: "is required".into(),
                });
            }
        }
        for (k, v) in obj {
            let p = join(path, k);
            match props.iter().find(|(n, _)| *n == k.as_str()) {
                Some((_, ps)) => {
                    let read_only = ps.get("readOnly").and_then(Value::as_bool) == Some(true);
                    if read_only && mode == Mode::Request {
                        continue;
                    }
                    if v.is_null() && mode == Mode::Request {
                        continue;
                    }
                    if v.is_null() {
                        cleaned.insert(k.clone(), Value::Null);
                        continue;
                    }
                    let c = self.validate_at(ps, v, &p, mode, out, depth + 1);
                    cleaned.insert(k.clone(), c);
                }
                None => match additional {
                    Some(a) if a.is_object() => {
                        let c = self.validate_at(a, v, &p, mode, out, depth + 1);
                        cleaned.insert(k.clone(), c);
                    }
                    _ => {
                        if mode == Mode::Response {
                            out.push(Violation {
                                path: p,
                                message: "is not a property of the schema".into(),
                            });
                        }
                    }
                },
            }
        }
        Value::Object(cleaned)
    }
}

fn match_route<'a>(r: &'a Route, segs: &[&str]) -> Option<Matched<'a>> {
    if r.segs.len() != segs.len() {
        return None;
    }
    let mut params = Vec::new();
    for (t, s) in r.segs.iter().zip(segs) {
        match t {
            Seg::Lit(l) => {
                if !l.eq_ignore_ascii_case(s) {
                    return None;
                }
            }
            Seg::Param(p) => {
                if s.is_empty() {
                    return None;
                }
                params.push((p.clone(), (*s).to_string()));
            }
        }
    }
    Some(Matched { route: r, params })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn display(path: &str) -> String {
    if path.is_empty() {
        "(body)".into()
    } else {
        path.to_string()
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Resource `type` string for a route template: namespace plus every collection name after
/// `providers/{namespace}` (e.g. `Microsoft.DataShare/accounts/shares/dataSets`).
pub fn resource_type(segs: &[Seg]) -> String {
    let lits: Vec<&Seg> = segs.iter().collect();
    let Some(pos) = lits
        .iter()
        .rposition(|s| matches!(s, Seg::Lit(l) if l.eq_ignore_ascii_case("providers")))
    else {
        return String::new();
    };
    let rest = &lits[pos + 1..];
    let mut parts = Vec::new();
    for (i, s) in rest.iter().enumerate() {
        if i == 0 || i % 2 == 1 {
            match s {
                Seg::Lit(l) => parts.push(l.clone()),
                Seg::Param(p) => parts.push(p.clone()),
            }
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s() -> &'static Spec {
        match spec() {
            Ok(s) => s,
            Err(e) => panic!("spec: {e}"),
        }
    }

    #[test]
    fn parses_every_operation_of_the_embedded_spec() {
        assert!(s().routes().len() >= 50);
        assert!(
            s().route("ShareSubscriptions_Synchronize")
                .is_some_and(|r| r.long_running)
        );
    }

    #[test]
    fn matches_paths_case_insensitively_with_params() {
        let segs = [
            "SUBSCRIPTIONS",
            "s1",
            "resourcegroups",
            "rg",
            "providers",
            "microsoft.datashare",
            "accounts",
            "a1",
            "shares",
            "sh1",
        ];
        let m = s().find("GET", &segs).map(|m| {
            (
                m.route.operation_id.clone(),
                m.param("shareName").to_string(),
            )
        });
        assert_eq!(m, Some(("Shares_Get".into(), "sh1".into())));
    }

    #[test]
    fn rejects_a_dataset_without_kind() {
        let r = s().route("DataSets_Create").and_then(|r| r.body.clone());
        let Some((_, schema, _)) = r else {
            panic!("no body")
        };
        let mut out = Vec::new();
        s().validate(
            &schema,
            &json!({"properties": {}}),
            "",
            Mode::Request,
            &mut out,
        );
        assert_eq!(out.first().map(|v| v.path.as_str()), Some("kind"));
    }

    #[test]
    fn names_the_missing_nested_property_of_a_blob_dataset() {
        let Some((_, schema, _)) = s().route("DataSets_Create").and_then(|r| r.body.clone()) else {
            panic!("no body")
        };
        let mut out = Vec::new();
        let body = json!({"kind": "Blob", "properties": {"containerName": "c", "filePath": "f",
            "subscriptionId": "s", "resourceGroup": "rg", "dataSetId": "ignored-read-only"}});
        let cleaned = s().validate(&schema, &body, "", Mode::Request, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path, "properties.storageAccountName");
        assert!(cleaned["properties"].get("dataSetId").is_none());
    }

    #[test]
    fn rejects_bad_enum_and_bad_date_time() {
        let Some((_, schema, _)) = s().route("Triggers_Create").and_then(|r| r.body.clone()) else {
            panic!("no body")
        };
        let mut out = Vec::new();
        let body = json!({"kind": "ScheduleBased", "properties": {"recurrenceInterval": "Week",
            "synchronizationTime": "yesterday"}});
        s().validate(&schema, &body, "", Mode::Request, &mut out);
        let paths: Vec<&str> = out.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "properties.recurrenceInterval",
                "properties.synchronizationTime"
            ]
        );
    }

    #[test]
    fn builds_resource_types_from_templates() {
        let Some(r) = s().route("DataSets_Get") else {
            panic!("no route")
        };
        assert_eq!(
            resource_type(&r.segs),
            "Microsoft.DataShare/accounts/shares/dataSets"
        );
    }
}
