//! Azure Monitor alerts: parse what an action group POSTs, and decide what it means for the DR
//! pairs (reference: docs/reference/azure-monitor-alerts.md, §2–§5 and §9).
//!
//! Job: [`parse_alert`] turns a webhook body — the common alert schema
//! (`azureMonitorCommonAlertSchema`) or the legacy activity-log / metric shapes — into a typed
//! [`Alert`]; [`decide`] maps an alert and the [`DrConfig`] to a [`Decision`]. Both are pure: no
//! IO, no clock (use [`decide_at`] for the staleness window), so the webhook handler can answer
//! within a second by enqueueing whatever the decision says.
//!
//! Invariants:
//! - Parsing is tolerant as the reference demands: unknown keys ignored, any field may be null or
//!   missing, enum-ish fields may be numbers or strings, key names matched case-insensitively
//!   when the exact spelling is absent (`alertRuleID`, `isSynthetic`), `impactedServices` as a
//!   JSON string or an array. It fails only on a body that is not JSON, or on a field we read
//!   that has an impossible type; the error names the field's JSON path.
//! - Decisions never read `monitorCondition`, `severity`, `level`, `title` or `description` for
//!   Resource/Service Health; they never start a failback; a synthetic (test) Service Health
//!   alert never starts a run; a source outside `[alerts].allowed_sources` is refused.
//! - Ids compare case-insensitively (lower-cased, trailing `/` dropped).
//!
//! Must not import handlers, host or store (the handler does IO with the decision).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::arm::id::AccountId;
use crate::config::dr::{AlertEscalation, DrConfig, FailoverPolicy, normalize_region};

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a webhook body is not an alert we can read.
#[derive(Debug, thiserror::Error)]
pub enum AlertParseError {
    /// The body is not JSON at all.
    #[error("alert body is not valid JSON")]
    NotJson(#[source] serde_json::Error),
    /// A field we read has a type it can never have.
    #[error("alert field `{field}` must be {expected}, got {found}")]
    InvalidField {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    /// `impactedServices` is a string that does not hold the expected JSON.
    #[error("alert field `{field}` holds a string that is not a JSON list of impacted services")]
    InvalidEmbeddedJson {
        field: String,
        #[source]
        source: serde_json::Error,
    },
}

impl AlertParseError {
    /// The JSON path of the offending field (`""` for a body that is not JSON).
    pub fn field(&self) -> &str {
        match self {
            AlertParseError::NotJson(_) => "",
            AlertParseError::InvalidField { field, .. }
            | AlertParseError::InvalidEmbeddedJson { field, .. } => field,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Model

/// Which body shape the alert came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertSchema {
    /// `azureMonitorCommonAlertSchema`.
    Common,
    /// `Microsoft.Insights/activityLogs` (common schema switched off).
    LegacyActivityLog,
    /// `AzureMonitorMetricAlert` (common schema switched off).
    LegacyMetric,
    /// Anything else (`schemaId` value, or `None` when absent).
    Unsupported(Option<String>),
}

/// `Fired` / `Resolved` (legacy `Activated` / `Deactivated`). Meaningless for Resource and
/// Service Health, which are always `Fired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorCondition {
    Fired,
    Resolved,
}

/// Who raised the alert, for the allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSource {
    /// Lower-cased subscription ids found in the alert id, rule id, target ids and legacy
    /// `subscriptionId` / `resourceId`.
    pub subscription_ids: Vec<String>,
    /// Alert rule ARM id (`alertRuleId`/`alertRuleID`, legacy metric `context.id`), if given.
    pub rule_id: Option<String>,
    /// Affected resources (`alertTargetIDs`, legacy `resourceId`), as sent.
    pub target_ids: Vec<String>,
    /// Custom property `actionGroupId`, if the action sets it (action groups do not send their
    /// own id; the IaC stamps it into the webhook properties).
    pub action_group_id: Option<String>,
    /// `customProperties` (legacy: `data.properties`), values as strings.
    pub custom_properties: BTreeMap<String, String>,
}

impl AlertSource {
    /// Every id the allow-list may match: `/subscriptions/<id>` for each subscription, the rule
    /// id and the action group id.
    pub fn ids(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .subscription_ids
            .iter()
            .map(|s| format!("/subscriptions/{s}"))
            .collect();
        out.extend(self.rule_id.iter().cloned());
        out.extend(self.action_group_id.iter().cloned());
        out
    }
}

macro_rules! loose_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = [$($text:literal),+]),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name { $($variant,)+ /// A value not in the documented list, as sent.
            Other(String) }

        impl $name {
            /// Parses case- and space-insensitively; unknown values are kept.
            pub fn parse(s: &str) -> Self {
                let k = squash(s);
                $( if [$($text),+].contains(&k.as_str()) { return $name::$variant; } )+
                $name::Other(s.to_owned())
            }
        }
    };
}

loose_enum!(
    /// Resource Health `currentHealthStatus` / `previousHealthStatus`.
    HealthStatus { Available = ["available"], Unavailable = ["unavailable"], Degraded = ["degraded"], Unknown = ["unknown"] }
);
loose_enum!(
    /// Resource Health `cause`.
    HealthCause { PlatformInitiated = ["platforminitiated"], UserInitiated = ["userinitiated"], Unknown = ["unknown"] }
);
loose_enum!(
    /// Resource Health event stage (`alertContext.status`).
    HealthEventStatus { Active = ["active"], InProgress = ["inprogress"], Updated = ["updated"], Resolved = ["resolved"] }
);
loose_enum!(
    /// Service Health `incidentType`.
    IncidentType {
        Incident = ["incident"],
        Maintenance = ["maintenance"],
        Information = ["information", "informational"],
        ActionRequired = ["actionrequired"],
        Security = ["security"],
    }
);
loose_enum!(
    /// Service Health `stage`.
    IncidentStage {
        Active = ["active"],
        Resolved = ["resolved"],
        Rca = ["rca"],
        Planned = ["planned"],
        InProgress = ["inprogress"],
        Canceled = ["canceled", "cancelled"],
        Rescheduled = ["rescheduled"],
        Complete = ["complete", "completed"],
    }
);

/// A Resource Health event (§4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceHealthEvent {
    /// The resource: common `alertTargetIDs[0]`, legacy `resourceId`.
    pub resource_id: Option<String>,
    pub status: Option<HealthEventStatus>,
    pub current: Option<HealthStatus>,
    pub previous: Option<HealthStatus>,
    pub cause: Option<HealthCause>,
    pub operation_name: Option<String>,
}

/// One entry of `impactedServices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactedService {
    pub service: String,
    /// Display names as sent (`West Europe`, `Global`).
    pub regions: Vec<String>,
}

/// A Service Health event (§5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealthEvent {
    pub tracking_id: Option<String>,
    pub communication_id: Option<String>,
    pub incident_type: Option<IncidentType>,
    pub stage: Option<IncidentStage>,
    pub impacted: Vec<ImpactedService>,
    /// `IsSynthetic` / `isSynthetic` = true: a portal test alert.
    pub is_synthetic: bool,
    pub title: Option<String>,
}

/// What the alert is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertKind {
    ResourceHealth(ResourceHealthEvent),
    ServiceHealth(ServiceHealthEvent),
    /// Metric alert (`Platform`, legacy `AzureMonitorMetricAlert`).
    Metric {
        condition_type: Option<String>,
        metric_names: Vec<String>,
    },
    /// Log search alert (`Log Alerts V2`, `Log Analytics`, …).
    Log {
        monitoring_service: Option<String>,
    },
    /// Other activity-log alert (`Activity Log - Administrative`, …).
    ActivityLog {
        monitoring_service: Option<String>,
        operation_name: Option<String>,
    },
    /// Anything else (smart detector, budget, Prometheus, unknown schema).
    Other {
        monitoring_service: Option<String>,
    },
}

/// A parsed alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub schema: AlertSchema,
    /// `essentials.alertId`; for legacy shapes an id built from the event
    /// (`activitylog:{eventDataId}`, `{rule id}|{timestamp}`); when nothing identifies the
    /// alert, `sha256:{digest of the body}` (a redelivery sends the identical body).
    pub alert_id: String,
    /// Rule name (`alertRule`, legacy metric `context.name`).
    pub rule: Option<String>,
    pub source: AlertSource,
    pub monitor_condition: MonitorCondition,
    pub monitoring_service: Option<String>,
    /// `alertContext.eventDataId`: the same event delivered through several rules.
    pub event_data_id: Option<String>,
    /// `eventTimestamp` (activity-log events).
    pub event_time: Option<OffsetDateTime>,
    /// `firedDateTime` (zone-less values read as UTC).
    pub fired_at: Option<OffsetDateTime>,
    pub kind: AlertKind,
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Lower-case, spaces/underscores/hyphens removed: `In Progress` = `InProgress`.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON value with its path, for error messages.
#[derive(Clone, Copy)]
struct Node<'a> {
    v: &'a Value,
    path: &'a str,
}

struct Field<'a> {
    v: &'a Value,
    path: String,
}

impl<'a> Field<'a> {
    fn node(&'a self) -> Node<'a> {
        Node {
            v: self.v,
            path: &self.path,
        }
    }
}

impl<'a> Node<'a> {
    /// A member by name: exact spelling first, then case-insensitive. `null` counts as absent.
    fn get(self, name: &str) -> Option<Field<'a>> {
        let obj = self.v.as_object()?;
        let v = obj.get(name).or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })?;
        if v.is_null() {
            return None;
        }
        let path = if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        };
        Some(Field { v, path })
    }

    fn invalid(self, expected: &'static str) -> AlertParseError {
        AlertParseError::InvalidField {
            field: if self.path.is_empty() {
                "(body)".to_owned()
            } else {
                self.path.to_owned()
            },
            expected,
            found: json_type(self.v),
        }
    }

    /// Scalars as text: strings as they are, numbers and booleans printed.
    fn text(self) -> Result<String, AlertParseError> {
        match self.v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(self.invalid("a string or number")),
        }
    }

    fn object(self) -> Result<Node<'a>, AlertParseError> {
        if self.v.is_object() {
            Ok(self)
        } else {
            Err(self.invalid("an object"))
        }
    }
}

fn opt_text(node: Node<'_>, name: &str) -> Result<Option<String>, AlertParseError> {
    match node.get(name) {
        Some(f) => f.node().text().map(Some),
        None => Ok(None),
    }
}

/// An array of strings (a single string is accepted as a one-element list).
fn opt_text_list(node: Node<'_>, name: &str) -> Result<Vec<String>, AlertParseError> {
    let Some(f) = node.get(name) else {
        return Ok(Vec::new());
    };
    match f.v {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if item.is_null() {
                    continue;
                }
                let path = format!("{}[{i}]", f.path);
                out.push(
                    Node {
                        v: item,
                        path: &path,
                    }
                    .text()?,
                );
            }
            Ok(out)
        }
        Value::String(s) => Ok(vec![s.clone()]),
        _ => Err(f.node().invalid("an array of strings")),
    }
}

fn opt_bool_like(node: Node<'_>, name: &str) -> Result<bool, AlertParseError> {
    Ok(match node.get(name) {
        Some(f) => match f.v {
            Value::Bool(b) => *b,
            _ => f.node().text()?.trim().eq_ignore_ascii_case("true"),
        },
        None => false,
    })
}

fn opt_object<'a>(node: Node<'a>, name: &str) -> Result<Option<Field<'a>>, AlertParseError> {
    match node.get(name) {
        Some(f) => {
            f.node().object()?;
            Ok(Some(f))
        }
        None => Ok(None),
    }
}

/// `2021-11-17T05:34:48.0623172`, `…Z`, `…+00:00`; zone-less values are UTC. Unreadable → `None`.
pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339).ok()
}

fn custom_properties(node: Option<Field<'_>>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(obj) = node.as_ref().and_then(|f| f.v.as_object()) {
        for (k, v) in obj {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            out.insert(k.clone(), text);
        }
    }
    out
}

/// The subscription id in `/subscriptions/{id}/…`, lower-cased.
fn subscription_of(id: &str) -> Option<String> {
    let mut parts = id.trim().trim_start_matches('/').split('/');
    let first = parts.next()?;
    if !first.eq_ignore_ascii_case("subscriptions") {
        return None;
    }
    let sub = parts.next()?.trim();
    (!sub.is_empty()).then(|| sub.to_ascii_lowercase())
}

fn push_sub(subs: &mut Vec<String>, id: Option<&str>) {
    if let Some(s) = id.and_then(subscription_of)
        && !subs.contains(&s)
    {
        subs.push(s);
    }
}

fn body_digest(body: &[u8]) -> String {
    let d = Sha256::digest(body);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Parses `impactedServices`: a JSON array, or a string holding one.
fn impacted_services(props: Node<'_>) -> Result<Vec<ImpactedService>, AlertParseError> {
    let Some(f) = props.get("impactedServices") else {
        return Ok(Vec::new());
    };
    let decoded;
    let list: &Value = match f.v {
        Value::String(s) if s.trim().is_empty() => return Ok(Vec::new()),
        Value::String(s) => {
            decoded = serde_json::from_str::<Value>(s).map_err(|source| {
                AlertParseError::InvalidEmbeddedJson {
                    field: f.path.clone(),
                    source,
                }
            })?;
            &decoded
        }
        other => other,
    };
    let Value::Array(items) = list else {
        return Err(AlertParseError::InvalidField {
            field: f.path.clone(),
            expected: "a list of impacted services (array or JSON text)",
            found: json_type(list),
        });
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}[{i}]", f.path);
        let node = Node {
            v: item,
            path: &path,
        }
        .object()?;
        let service = opt_text(node, "ServiceName")?.unwrap_or_default();
        let mut regions = Vec::new();
        if let Some(rf) = node.get("ImpactedRegions") {
            let Value::Array(rs) = rf.v else {
                return Err(rf.node().invalid("an array of regions"));
            };
            for (j, r) in rs.iter().enumerate() {
                let rpath = format!("{}[{j}]", rf.path);
                let rnode = Node { v: r, path: &rpath };
                match r {
                    Value::String(s) => regions.push(s.clone()),
                    Value::Object(_) => {
                        if let Some(name) = opt_text(rnode, "RegionName")? {
                            regions.push(name);
                        }
                    }
                    Value::Null => {}
                    _ => return Err(rnode.invalid("a region object")),
                }
            }
        }
        out.push(ImpactedService { service, regions });
    }
    Ok(out)
}

fn resource_health(
    ctx: Node<'_>,
    resource_id: Option<String>,
) -> Result<ResourceHealthEvent, AlertParseError> {
    let props = opt_object(ctx, "properties")?;
    let (current, previous, cause) = match &props {
        Some(p) => (
            opt_text(p.node(), "currentHealthStatus")?.map(|s| HealthStatus::parse(&s)),
            opt_text(p.node(), "previousHealthStatus")?.map(|s| HealthStatus::parse(&s)),
            opt_text(p.node(), "cause")?.map(|s| HealthCause::parse(&s)),
        ),
        None => (None, None, None),
    };
    Ok(ResourceHealthEvent {
        resource_id,
        status: opt_text(ctx, "status")?.map(|s| HealthEventStatus::parse(&s)),
        current,
        previous,
        cause,
        operation_name: opt_text(ctx, "operationName")?,
    })
}

fn service_health(ctx: Node<'_>) -> Result<ServiceHealthEvent, AlertParseError> {
    let props = opt_object(ctx, "properties")?;
    let Some(p) = props else {
        return Ok(ServiceHealthEvent {
            tracking_id: None,
            communication_id: None,
            incident_type: None,
            stage: None,
            impacted: Vec::new(),
            is_synthetic: false,
            title: None,
        });
    };
    let p = p.node();
    Ok(ServiceHealthEvent {
        tracking_id: opt_text(p, "trackingId")?,
        communication_id: opt_text(p, "communicationId")?,
        incident_type: opt_text(p, "incidentType")?.map(|s| IncidentType::parse(&s)),
        stage: opt_text(p, "stage")?.map(|s| IncidentStage::parse(&s)),
        impacted: impacted_services(p)?,
        is_synthetic: opt_bool_like(p, "IsSynthetic")?,
        title: opt_text(p, "title")?,
    })
}

/// Which family an activity-log style context belongs to, from `monitoringService`, else from
/// `eventSource` / `operationName`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    ResourceHealth,
    ServiceHealth,
    Metric,
    Log,
    ActivityLog,
    Other,
}

fn family_of(
    monitoring_service: Option<&str>,
    ctx: Option<Node<'_>>,
) -> Result<Family, AlertParseError> {
    if let Some(ms) = monitoring_service {
        let k = squash(ms);
        return Ok(match k.as_str() {
            "resourcehealth" => Family::ResourceHealth,
            "servicehealth" => Family::ServiceHealth,
            "platform" => Family::Metric,
            "loganalytics" | "applicationinsights" | "logalertsv2" | "simplelogalert" => {
                Family::Log
            }
            k if k.starts_with("activitylog") => Family::ActivityLog,
            _ => Family::Other,
        });
    }
    let Some(ctx) = ctx else {
        return Ok(Family::Other);
    };
    let source = match ctx.get("eventSource") {
        Some(f) => Some(squash(&f.node().text()?)),
        None => None,
    };
    let op = opt_text(ctx, "operationName")?.map(|s| s.to_ascii_lowercase());
    let op = op.as_deref().unwrap_or("");
    Ok(
        if source.as_deref() == Some("resourcehealth")
            || op.starts_with("microsoft.resourcehealth/healthevent/")
        {
            Family::ResourceHealth
        } else if source.as_deref() == Some("servicehealth")
            || op.starts_with("microsoft.servicehealth/")
        {
            Family::ServiceHealth
        } else if op.is_empty() && source.is_none() {
            Family::Other
        } else {
            Family::ActivityLog
        },
    )
}

fn kind_for(
    family: Family,
    monitoring_service: Option<&str>,
    ctx: Option<Node<'_>>,
    resource_id: Option<String>,
) -> Result<AlertKind, AlertParseError> {
    let ms = monitoring_service.map(str::to_owned);
    Ok(match (family, ctx) {
        (Family::ResourceHealth, Some(c)) => {
            AlertKind::ResourceHealth(resource_health(c, resource_id)?)
        }
        (Family::ResourceHealth, None) => AlertKind::ResourceHealth(ResourceHealthEvent {
            resource_id,
            status: None,
            current: None,
            previous: None,
            cause: None,
            operation_name: None,
        }),
        (Family::ServiceHealth, Some(c)) => AlertKind::ServiceHealth(service_health(c)?),
        (Family::ServiceHealth, None) => AlertKind::ServiceHealth(ServiceHealthEvent {
            tracking_id: None,
            communication_id: None,
            incident_type: None,
            stage: None,
            impacted: Vec::new(),
            is_synthetic: false,
            title: None,
        }),
        (Family::Metric, c) => {
            let (condition_type, metric_names) = match c {
                Some(c) => metric_details(c)?,
                None => (None, Vec::new()),
            };
            AlertKind::Metric {
                condition_type,
                metric_names,
            }
        }
        (Family::Log, _) => AlertKind::Log {
            monitoring_service: ms,
        },
        (Family::ActivityLog, c) => AlertKind::ActivityLog {
            monitoring_service: ms,
            operation_name: match c {
                Some(c) => opt_text(c, "operationName")?,
                None => None,
            },
        },
        (Family::Other, _) => AlertKind::Other {
            monitoring_service: ms,
        },
    })
}

fn metric_details(ctx: Node<'_>) -> Result<(Option<String>, Vec<String>), AlertParseError> {
    let condition_type = opt_text(ctx, "conditionType")?;
    let mut names = Vec::new();
    if let Some(cond) = opt_object(ctx, "condition")?
        && let Some(all) = cond.node().get("allOf")
    {
        let Value::Array(items) = all.v else {
            return Err(all.node().invalid("an array of criteria"));
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", all.path);
            let node = Node {
                v: item,
                path: &path,
            };
            if item.is_object()
                && let Some(n) = opt_text(node, "metricName")?
            {
                names.push(n);
            }
        }
    }
    Ok((condition_type, names))
}

fn monitor_condition(
    text: Option<String>,
    field: &str,
) -> Result<MonitorCondition, AlertParseError> {
    match text.as_deref().map(squash).as_deref() {
        None | Some("fired") | Some("activated") | Some("active") => Ok(MonitorCondition::Fired),
        Some("resolved") | Some("deactivated") => Ok(MonitorCondition::Resolved),
        Some(_) => Err(AlertParseError::InvalidField {
            field: field.to_owned(),
            expected: "\"Fired\" or \"Resolved\" (legacy \"Activated\" or \"Deactivated\")",
            found: "another string",
        }),
    }
}

/// Parses a webhook body from an Azure Monitor action group.
pub fn parse_alert(body: &[u8]) -> Result<Alert, AlertParseError> {
    let root: Value = serde_json::from_slice(body).map_err(AlertParseError::NotJson)?;
    let top = Node { v: &root, path: "" }.object()?;
    let schema_id = opt_text(top, "schemaId")?;
    let schema = match schema_id.as_deref().map(squash).as_deref() {
        Some("azuremonitorcommonalertschema") => AlertSchema::Common,
        Some("microsoft.insights/activitylogs") => AlertSchema::LegacyActivityLog,
        Some("azuremonitormetricalert") => AlertSchema::LegacyMetric,
        _ => AlertSchema::Unsupported(schema_id.clone()),
    };
    let data = opt_object(top, "data")?;
    match (&schema, data) {
        (AlertSchema::Common, Some(d)) => parse_common(body, d.node()),
        (AlertSchema::LegacyActivityLog, Some(d)) => parse_legacy_activity_log(body, d.node()),
        (AlertSchema::LegacyMetric, Some(d)) => parse_legacy_metric(body, d.node()),
        (AlertSchema::Unsupported(_), _) | (_, None) => Ok(Alert {
            schema: if matches!(schema, AlertSchema::Unsupported(_)) {
                schema
            } else {
                // a known schemaId without `data`: nothing to read
                AlertSchema::Unsupported(schema_id)
            },
            alert_id: body_digest(body),
            rule: None,
            source: AlertSource::default(),
            monitor_condition: MonitorCondition::Fired,
            monitoring_service: None,
            event_data_id: None,
            event_time: None,
            fired_at: None,
            kind: AlertKind::Other {
                monitoring_service: None,
            },
        }),
    }
}

fn parse_common(body: &[u8], data: Node<'_>) -> Result<Alert, AlertParseError> {
    let ess_field = opt_object(data, "essentials")?;
    let empty = Value::Object(serde_json::Map::new());
    let ess = ess_field.as_ref().map_or(
        Node {
            v: &empty,
            path: "data.essentials",
        },
        Field::node,
    );
    let ctx_field = opt_object(data, "alertContext")?;
    let ctx = ctx_field.as_ref().map(Field::node);

    let alert_id = opt_text(ess, "alertId")?;
    let rule = opt_text(ess, "alertRule")?;
    let rule_id = opt_text(ess, "alertRuleId")?;
    let target_ids = opt_text_list(ess, "alertTargetIDs")?;
    let monitoring_service = opt_text(ess, "monitoringService")?;
    let condition = monitor_condition(
        opt_text(ess, "monitorCondition")?,
        "data.essentials.monitorCondition",
    )?;
    let fired_at = opt_text(ess, "firedDateTime")?.and_then(|s| parse_timestamp(&s));

    let custom = custom_properties(opt_object(data, "customProperties")?);
    let mut subs = Vec::new();
    push_sub(&mut subs, alert_id.as_deref());
    for t in &target_ids {
        push_sub(&mut subs, Some(t));
    }
    push_sub(&mut subs, rule_id.as_deref());

    let family = family_of(monitoring_service.as_deref(), ctx)?;
    let kind = kind_for(
        family,
        monitoring_service.as_deref(),
        ctx,
        target_ids.first().cloned(),
    )?;
    let (event_data_id, event_time) = match ctx {
        Some(c) => (
            opt_text(c, "eventDataId")?,
            opt_text(c, "eventTimestamp")?.and_then(|s| parse_timestamp(&s)),
        ),
        None => (None, None),
    };
    let action_group_id = custom
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("actionGroupId"))
        .map(|(_, v)| v.clone());
    Ok(Alert {
        schema: AlertSchema::Common,
        alert_id: alert_id.unwrap_or_else(|| body_digest(body)),
        rule,
        source: AlertSource {
            subscription_ids: subs,
            rule_id,
            target_ids,
            action_group_id,
            custom_properties: custom,
        },
        monitor_condition: condition,
        monitoring_service,
        event_data_id,
        event_time,
        fired_at,
        kind,
    })
}

fn parse_legacy_activity_log(body: &[u8], data: Node<'_>) -> Result<Alert, AlertParseError> {
    let condition = monitor_condition(opt_text(data, "status")?, "data.status")?;
    let context = opt_object(data, "context")?;
    let log_field = match &context {
        Some(c) => opt_object(c.node(), "activityLog")?,
        None => None,
    };
    let log = log_field.as_ref().map(Field::node);
    let custom = custom_properties(opt_object(data, "properties")?);
    let (resource_id, subscription_id, event_data_id, event_time) = match log {
        Some(l) => (
            opt_text(l, "resourceId")?,
            opt_text(l, "subscriptionId")?,
            opt_text(l, "eventDataId")?,
            opt_text(l, "eventTimestamp")?.and_then(|s| parse_timestamp(&s)),
        ),
        None => (None, None, None, None),
    };
    let mut subs = Vec::new();
    if let Some(s) = subscription_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        subs.push(s.to_ascii_lowercase());
    }
    push_sub(&mut subs, resource_id.as_deref());
    let family = family_of(None, log)?;
    let kind = kind_for(family, None, log, resource_id.clone())?;
    let monitoring_service = match family {
        Family::ResourceHealth => Some("Resource Health".to_owned()),
        Family::ServiceHealth => Some("ServiceHealth".to_owned()),
        _ => None,
    };
    let action_group_id = custom
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("actionGroupId"))
        .map(|(_, v)| v.clone());
    Ok(Alert {
        schema: AlertSchema::LegacyActivityLog,
        alert_id: event_data_id
            .as_deref()
            .map(|e| format!("activitylog:{}", e.to_ascii_lowercase()))
            .unwrap_or_else(|| body_digest(body)),
        rule: None,
        source: AlertSource {
            subscription_ids: subs,
            rule_id: None,
            target_ids: resource_id.into_iter().collect(),
            action_group_id,
            custom_properties: custom,
        },
        monitor_condition: condition,
        monitoring_service,
        event_data_id,
        event_time,
        fired_at: event_time,
        kind,
    })
}

fn parse_legacy_metric(body: &[u8], data: Node<'_>) -> Result<Alert, AlertParseError> {
    let condition = monitor_condition(opt_text(data, "status")?, "data.status")?;
    let custom = custom_properties(opt_object(data, "properties")?);
    let context = opt_object(data, "context")?;
    let ctx = context.as_ref().map(Field::node);
    let (rule_id, rule, timestamp, resource_id, subscription_id) = match ctx {
        Some(c) => (
            opt_text(c, "id")?,
            opt_text(c, "name")?,
            opt_text(c, "timestamp")?,
            opt_text(c, "resourceId")?,
            opt_text(c, "subscriptionId")?,
        ),
        None => (None, None, None, None, None),
    };
    let mut subs = Vec::new();
    if let Some(s) = subscription_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        subs.push(s.to_ascii_lowercase());
    }
    push_sub(&mut subs, rule_id.as_deref());
    push_sub(&mut subs, resource_id.as_deref());
    let (condition_type, metric_names) = match ctx {
        Some(c) => metric_details(c)?,
        None => (None, Vec::new()),
    };
    let alert_id = match (&rule_id, &timestamp) {
        (Some(r), Some(t)) => format!(
            "{}|{}|{}",
            r.to_ascii_lowercase(),
            t,
            if condition == MonitorCondition::Fired {
                "fired"
            } else {
                "resolved"
            }
        ),
        _ => body_digest(body),
    };
    let action_group_id = custom
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("actionGroupId"))
        .map(|(_, v)| v.clone());
    Ok(Alert {
        schema: AlertSchema::LegacyMetric,
        alert_id,
        rule,
        source: AlertSource {
            subscription_ids: subs,
            rule_id,
            target_ids: resource_id.into_iter().collect(),
            action_group_id,
            custom_properties: custom,
        },
        monitor_condition: condition,
        monitoring_service: Some("Platform".to_owned()),
        event_data_id: None,
        event_time: None,
        fired_at: timestamp.as_deref().and_then(parse_timestamp),
        kind: AlertKind::Metric {
            condition_type,
            metric_names,
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Decision

/// What kind of run an alert asks for. Alerts only ever ask for `Failover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Failover,
}

/// Whether the run proceeds on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    Auto,
    AwaitApproval,
}

/// A key under which an alert (or the event/incident behind it) is recorded so that a
/// redelivery, a second rule, or a later update of the same incident is not acted on twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DedupKey {
    /// One delivery: the alert id (+ monitor condition for stateful alerts).
    Alert(String),
    /// One activity-log event seen through several rules/action groups (`eventDataId`).
    Event(String),
    /// One Service Health incident for one pair (`trackingId`).
    Incident { pair: String, tracking_id: String },
}

impl DedupKey {
    /// Canonical text, lower-cased ids: `alert:…`, `event:…`, `incident:{pair}:{trackingId}`.
    pub fn as_key(&self) -> String {
        match self {
            DedupKey::Alert(id) => format!("alert:{}", id.to_ascii_lowercase()),
            DedupKey::Event(id) => format!("event:{}", id.to_ascii_lowercase()),
            DedupKey::Incident { pair, tracking_id } => {
                format!("incident:{pair}:{}", tracking_id.to_ascii_lowercase())
            }
        }
    }

    /// A blob-name-safe form scoped to one pair (for `alerts/{digest}.json`): SHA-256 hex of
    /// `{pair}\n{key}` (pair names are case-sensitive config keys), so one alert covering
    /// several pairs dedups per pair.
    pub fn digest_for_pair(&self, pair: &str) -> String {
        Sha256::digest(format!("{pair}\n{}", self.as_key()).as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Stable reason codes for ignored alerts (for logs and the audit record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreCode {
    /// Not the common schema nor a legacy shape we read.
    UnsupportedSchema,
    /// Metric, log, activity-log, smart detector, budget…: never starts a run.
    NotActionable,
    /// A portal test alert.
    Synthetic,
    /// The resource is not a configured primary account.
    NotOurResource,
    /// A configured secondary account: marks the pair not ready, never fails over.
    SecondaryAccount,
    /// Service Health: another service or region.
    OtherServiceOrRegion,
    /// Service Health: not an incident (maintenance, information, …) or a stage we do not act on.
    NotAnIncident,
    /// Resource Health: the status/cause combination is not a decision signal.
    NotADecisionSignal,
    /// A configured policy (`on_degraded`, `on_user_initiated`, `on_both_regions`) says ignore.
    PolicyIgnore,
    /// The event is older than `[alerts].max_event_age_hours`.
    Stale,
}

impl IgnoreCode {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreCode::UnsupportedSchema => "unsupported_schema",
            IgnoreCode::NotActionable => "not_actionable",
            IgnoreCode::Synthetic => "synthetic",
            IgnoreCode::NotOurResource => "not_our_resource",
            IgnoreCode::SecondaryAccount => "secondary_account",
            IgnoreCode::OtherServiceOrRegion => "other_service_or_region",
            IgnoreCode::NotAnIncident => "not_an_incident",
            IgnoreCode::NotADecisionSignal => "not_a_decision_signal",
            IgnoreCode::PolicyIgnore => "policy_ignore",
            IgnoreCode::Stale => "stale",
        }
    }
}

/// An alert that starts nothing; answered 2xx and logged with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub code: IgnoreCode,
    /// Pairs the alert concerns (for a note on their record), possibly empty.
    pub pairs: Vec<String>,
    pub reason: String,
}

/// Start (or join the active) failover run for one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRun {
    pub pair: String,
    pub mode: RunMode,
    pub approval: Approval,
    /// The run waits for approval because an `[alerts]` rule said so (`on_degraded`,
    /// `on_both_regions`, `on_user_initiated`), not because of the pair's `failover` policy:
    /// such a run never proceeds when its approval deadline passes.
    pub approval_by_rule: bool,
    pub reason: String,
    /// Record all of them; if any already exists the alert is a duplicate for this pair.
    pub dedup_keys: Vec<DedupKey>,
    /// Service Health `trackingId`, if any.
    pub tracking_id: Option<String>,
}

/// Recovery of a pair's primary: record on the active run; never an automatic failback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResolved {
    pub pair: String,
    pub reason: String,
    pub dedup_keys: Vec<DedupKey>,
    pub tracking_id: Option<String>,
}

/// What to do with an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do (2xx).
    Ignore(Ignored),
    /// One entry per affected pair, sorted by pair name; never empty.
    StartRun(Vec<StartRun>),
    /// One entry per affected pair, sorted by pair name; never empty.
    RecordResolved(Vec<RecordResolved>),
    /// The source is not on `[alerts].allowed_sources` (4xx, logged).
    Refuse { reason: String },
}

impl Decision {
    /// One line for logs and the audit record.
    pub fn summary(&self) -> String {
        match self {
            Decision::Ignore(i) => format!("ignored ({}): {}", i.code.as_str(), i.reason),
            Decision::StartRun(runs) => runs
                .iter()
                .map(|r| {
                    format!(
                        "start failover for pair {} ({}): {}",
                        r.pair,
                        match r.approval {
                            Approval::Auto => "auto",
                            Approval::AwaitApproval => "awaiting approval",
                        },
                        r.reason
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            Decision::RecordResolved(rs) => rs
                .iter()
                .map(|r| format!("record recovery for pair {}: {}", r.pair, r.reason))
                .collect::<Vec<_>>()
                .join("; "),
            Decision::Refuse { reason } => format!("refused: {reason}"),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// A pair (provider role) or subscription (consumer role) as the decision sees it.
struct Protected<'c> {
    name: &'c str,
    primary: AccountId,
    secondary: AccountId,
    primary_region: &'c str,
    secondary_region: &'c str,
    failover: FailoverPolicy,
}

fn protected(config: &DrConfig) -> Vec<Protected<'_>> {
    let mut out: Vec<Protected<'_>> = config
        .pairs
        .iter()
        .map(|p| Protected {
            name: &p.name,
            primary: p.primary.clone(),
            secondary: p.secondary.clone(),
            primary_region: &p.primary_region,
            secondary_region: &p.secondary_region,
            failover: p.failover,
        })
        .collect();
    out.extend(config.subscriptions.iter().map(|s| Protected {
        name: &s.name,
        primary: s.primary_account(),
        secondary: s.secondary_account.clone(),
        primary_region: &s.primary_region,
        secondary_region: &s.secondary_region,
        failover: s.failover,
    }));
    out.sort_by(|a, b| a.name.cmp(b.name));
    out
}

fn same_id(a: &str, b: &str) -> bool {
    a.trim()
        .trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim().trim_end_matches('/'))
}

fn ignore(code: IgnoreCode, pairs: Vec<String>, reason: impl Into<String>) -> Decision {
    Decision::Ignore(Ignored {
        code,
        pairs,
        reason: reason.into(),
    })
}

fn approval_for(policy: FailoverPolicy) -> Approval {
    match policy {
        FailoverPolicy::Auto => Approval::Auto,
        FailoverPolicy::Approve => Approval::AwaitApproval,
    }
}

fn delivery_key(alert: &Alert) -> DedupKey {
    let cond = match alert.monitor_condition {
        MonitorCondition::Fired => "fired",
        MonitorCondition::Resolved => "resolved",
    };
    match alert.kind {
        AlertKind::Metric { .. } | AlertKind::Log { .. } => {
            DedupKey::Alert(format!("{}#{cond}", alert.alert_id))
        }
        _ => DedupKey::Alert(alert.alert_id.clone()),
    }
}

/// Decides what an alert means for the configured pairs (reference §4.3, §5.4, §9), without a
/// staleness check. Order: unsupported/not-actionable/synthetic → ignore; source outside the
/// allow-list → refuse; then the Resource Health or Service Health table.
pub fn decide(alert: &Alert, config: &DrConfig) -> Decision {
    // 1. Shapes and kinds that never start anything (answered 2xx, §9 step 2).
    if let AlertSchema::Unsupported(id) = &alert.schema {
        return ignore(
            IgnoreCode::UnsupportedSchema,
            Vec::new(),
            format!(
                "schemaId {} is not one the tool reads (enable the common alert schema on the action)",
                id.as_deref()
                    .map_or("(missing)".to_owned(), |s| format!("{s:?}"))
            ),
        );
    }
    match &alert.kind {
        AlertKind::ResourceHealth(_) | AlertKind::ServiceHealth(_) => {}
        other => {
            let what = match other {
                AlertKind::Metric { .. } => "a metric alert",
                AlertKind::Log { .. } => "a log search alert",
                AlertKind::ActivityLog { .. } => "an activity-log alert",
                _ => "neither a Resource Health nor a Service Health alert",
            };
            return ignore(
                IgnoreCode::NotActionable,
                Vec::new(),
                format!(
                    "{what} ({}) never starts a failover",
                    alert
                        .monitoring_service
                        .as_deref()
                        .unwrap_or("unknown service")
                ),
            );
        }
    }
    if let AlertKind::ServiceHealth(sh) = &alert.kind
        && sh.is_synthetic
    {
        return ignore(
            IgnoreCode::Synthetic,
            Vec::new(),
            "synthetic Service Health test alert (IsSynthetic = True)",
        );
    }

    // 2. Allow-list (§9 step 3).
    let ids = alert.source.ids();
    if !ids.iter().any(|id| config.alerts.allows(id)) {
        return Decision::Refuse {
            reason: if ids.is_empty() {
                "the alert names no subscription, rule or action group to check against [alerts].allowed_sources".to_owned()
            } else {
                format!("source not in [alerts].allowed_sources: {}", ids.join(", "))
            },
        };
    }

    // 3. The tables.
    let pairs = protected(config);
    match &alert.kind {
        AlertKind::ResourceHealth(rh) => decide_resource_health(alert, rh, &pairs, config),
        AlertKind::ServiceHealth(sh) => decide_service_health(alert, sh, &pairs, config),
        _ => ignore(IgnoreCode::NotActionable, Vec::new(), "not actionable"),
    }
}

/// [`decide`], then turns a `StartRun` for an event older than `[alerts].max_event_age_hours`
/// (by `eventTimestamp`, else `firedDateTime`) into an ignore.
pub fn decide_at(alert: &Alert, config: &DrConfig, now: OffsetDateTime) -> Decision {
    let decision = decide(alert, config);
    let (Decision::StartRun(runs), Some(max_age)) = (&decision, config.alerts.max_event_age) else {
        return decision;
    };
    let Some(at) = alert.event_time.or(alert.fired_at) else {
        return decision;
    };
    if now - at > max_age {
        return ignore(
            IgnoreCode::Stale,
            runs.iter().map(|r| r.pair.clone()).collect(),
            format!(
                "event from {at} is older than the {} h window; recorded only",
                max_age.as_secs() / 3600
            ),
        );
    }
    decision
}

/// Issue 15, plausibility: a pair whose primary answered a read made AFTER the alert's event
/// time (`answered_at(pair)` = time of the last read that the primary answered) is not failed
/// over automatically: its `StartRun` is routed to approval with that reason. Other decisions
/// pass through.
pub fn route_if_primary_answered(
    decision: Decision,
    alert: &Alert,
    answered_at: &dyn Fn(&str) -> Option<OffsetDateTime>,
) -> Decision {
    let Decision::StartRun(runs) = decision else {
        return decision;
    };
    let Some(event) = alert.event_time.or(alert.fired_at) else {
        return Decision::StartRun(runs);
    };
    Decision::StartRun(
        runs.into_iter()
            .map(|mut r| {
                if r.approval == Approval::Auto
                    && let Some(at) = answered_at(&r.pair)
                    && at > event
                {
                    r.approval = Approval::AwaitApproval;
                    r.reason = format!(
                        "{}; but the primary answered a read at {at}, after the alert's event time {event}: approval required",
                        r.reason
                    );
                }
                r
            })
            .collect(),
    )
}

fn decide_resource_health(
    alert: &Alert,
    rh: &ResourceHealthEvent,
    pairs: &[Protected<'_>],
    config: &DrConfig,
) -> Decision {
    let Some(resource) = rh.resource_id.as_deref() else {
        return ignore(
            IgnoreCode::NotOurResource,
            Vec::new(),
            "Resource Health alert names no resource",
        );
    };
    let primary_of: Vec<&Protected<'_>> = pairs
        .iter()
        .filter(|p| same_id(p.primary.as_str(), resource))
        .collect();
    if primary_of.is_empty() {
        let secondary_of: Vec<String> = pairs
            .iter()
            .filter(|p| same_id(p.secondary.as_str(), resource))
            .map(|p| p.name.to_owned())
            .collect();
        if !secondary_of.is_empty() {
            return ignore(
                IgnoreCode::SecondaryAccount,
                secondary_of,
                format!(
                    "Resource Health event for the secondary account {resource}: marks the pair not ready, never fails over"
                ),
            );
        }
        return ignore(
            IgnoreCode::NotOurResource,
            Vec::new(),
            format!(
                "Resource Health event for {resource}, which is not a configured primary account"
            ),
        );
    }
    let names: Vec<String> = primary_of.iter().map(|p| p.name.to_owned()).collect();
    let user = matches!(rh.cause, Some(HealthCause::UserInitiated));
    let status = rh.status.clone().unwrap_or(HealthEventStatus::Active);
    let status_text = match &status {
        HealthEventStatus::Active => "Active".to_owned(),
        HealthEventStatus::InProgress => "In Progress".to_owned(),
        HealthEventStatus::Updated => "Updated".to_owned(),
        HealthEventStatus::Resolved => "Resolved".to_owned(),
        HealthEventStatus::Other(s) => s.clone(),
    };
    let mut keys = vec![delivery_key(alert)];
    if let Some(e) = &alert.event_data_id {
        keys.push(DedupKey::Event(e.clone()));
    }
    let start = |approval: &dyn Fn(&Protected<'_>) -> Approval, by_rule: bool, reason: String| {
        Decision::StartRun(
            primary_of
                .iter()
                .map(|p| StartRun {
                    pair: p.name.to_owned(),
                    mode: RunMode::Failover,
                    approval: approval(p),
                    approval_by_rule: by_rule,
                    reason: reason.clone(),
                    dedup_keys: keys.clone(),
                    tracking_id: None,
                })
                .collect(),
        )
    };
    match &rh.current {
        Some(HealthStatus::Unavailable) if user => match config.alerts.on_user_initiated {
            AlertEscalation::Approve => start(
                &|_| Approval::AwaitApproval,
                true,
                format!("primary account {resource} Unavailable (UserInitiated); approval required"),
            ),
            AlertEscalation::Ignore => ignore(
                IgnoreCode::PolicyIgnore,
                names,
                format!(
                    "primary account {resource} Unavailable with cause UserInitiated: someone stopped or changed it; no automatic failover"
                ),
            ),
        },
        Some(HealthStatus::Unavailable) => match status {
            HealthEventStatus::Active | HealthEventStatus::InProgress | HealthEventStatus::Updated => start(
                &|p| approval_for(p.failover),
                false,
                format!(
                    "primary account {resource} Unavailable ({}, status {status_text})",
                    match &rh.cause {
                        Some(HealthCause::PlatformInitiated) => "PlatformInitiated".to_owned(),
                        Some(HealthCause::Unknown) | None => "cause unknown".to_owned(),
                        Some(HealthCause::UserInitiated) => "UserInitiated".to_owned(),
                        Some(HealthCause::Other(s)) => s.clone(),
                    }
                ),
            ),
            _ => ignore(
                IgnoreCode::NotADecisionSignal,
                names,
                format!("primary account {resource} Unavailable but event status is {status_text}"),
            ),
        },
        Some(HealthStatus::Degraded) if !user && status != HealthEventStatus::Resolved => {
            match config.alerts.on_degraded {
                AlertEscalation::Approve => start(
                    &|_| Approval::AwaitApproval,
                    true,
                    format!("primary account {resource} Degraded (status {status_text}); approval required"),
                ),
                AlertEscalation::Ignore => ignore(
                    IgnoreCode::PolicyIgnore,
                    names,
                    format!("primary account {resource} Degraded; [alerts].on_degraded = \"ignore\""),
                ),
            }
        }
        Some(HealthStatus::Available)
            if matches!(status, HealthEventStatus::Resolved | HealthEventStatus::Updated) =>
        {
            Decision::RecordResolved(
                primary_of
                    .iter()
                    .map(|p| RecordResolved {
                        pair: p.name.to_owned(),
                        reason: format!(
                            "primary account {resource} Available again (status {status_text}); failback stays a human decision"
                        ),
                        dedup_keys: keys.clone(),
                        tracking_id: None,
                    })
                    .collect(),
            )
        }
        other => ignore(
            IgnoreCode::NotADecisionSignal,
            names,
            format!(
                "primary account {resource}: health {} with status {status_text} is not a decision signal; recorded only",
                match other {
                    Some(HealthStatus::Available) => "Available".to_owned(),
                    Some(HealthStatus::Unavailable) => "Unavailable".to_owned(),
                    Some(HealthStatus::Degraded) => "Degraded".to_owned(),
                    Some(HealthStatus::Unknown) => "Unknown".to_owned(),
                    Some(HealthStatus::Other(s)) => s.clone(),
                    None => "missing".to_owned(),
                }
            ),
        ),
    }
}

fn decide_service_health(
    alert: &Alert,
    sh: &ServiceHealthEvent,
    pairs: &[Protected<'_>],
    config: &DrConfig,
) -> Decision {
    let wanted = squash(&config.alerts.service_name);
    let regions: Vec<String> = sh
        .impacted
        .iter()
        .filter(|s| squash(&s.service) == wanted)
        .flat_map(|s| s.regions.iter().map(|r| normalize_region(r)))
        .collect();
    let global = regions.iter().any(|r| r == "global");
    // Issue 15: an incident that names Data Share in more than one region (or Global) is a
    // platform-wide event, not a regional outage: it never fails over automatically.
    let multi_region = {
        let mut distinct: Vec<&str> = regions.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        distinct.len() > 1
    };
    let hits = |region: &str| global || regions.iter().any(|r| r == region);
    let affected: Vec<&Protected<'_>> = pairs.iter().filter(|p| hits(p.primary_region)).collect();
    let names: Vec<String> = affected.iter().map(|p| p.name.to_owned()).collect();
    let tracking = sh.tracking_id.clone();
    let keys_for = |p: &Protected<'_>| {
        let mut keys = vec![delivery_key(alert)];
        if let Some(t) = &tracking {
            keys.push(DedupKey::Incident {
                pair: p.name.to_owned(),
                tracking_id: t.clone(),
            });
        }
        keys
    };
    let tid = tracking.as_deref().unwrap_or("(no tracking id)");

    if !matches!(sh.incident_type, Some(IncidentType::Incident)) {
        return ignore(
            IgnoreCode::NotAnIncident,
            names,
            format!(
                "Service Health {:?} {tid} is not an incident; recorded only",
                sh.incident_type
                    .as_ref()
                    .map_or("event without incidentType".to_owned(), |t| format!(
                        "{t:?}"
                    ))
            ),
        );
    }
    if affected.is_empty() {
        return ignore(
            IgnoreCode::OtherServiceOrRegion,
            Vec::new(),
            format!(
                "incident {tid} does not list {} in any configured primary region",
                config.alerts.service_name
            ),
        );
    }
    match &sh.stage {
        Some(IncidentStage::Active) => {
            let mut runs = Vec::new();
            let mut skipped = Vec::new();
            for p in affected {
                let both = global || hits(p.secondary_region);
                let wide = global || multi_region;
                let approval = if both {
                    match config.alerts.on_both_regions {
                        AlertEscalation::Approve => Some(Approval::AwaitApproval),
                        AlertEscalation::Ignore => None,
                    }
                } else if wide {
                    // Whatever the pair's policy says: a human decides.
                    Some(Approval::AwaitApproval)
                } else {
                    Some(approval_for(p.failover))
                };
                match approval {
                    Some(approval) => runs.push(StartRun {
                        pair: p.name.to_owned(),
                        mode: RunMode::Failover,
                        approval,
                        approval_by_rule: both || wide,
                        reason: if wide && !both {
                            format!(
                                "Service Health incident {tid}: {} impacted in several regions ({}); a multi-region or Global incident never fails over automatically; approval required",
                                config.alerts.service_name,
                                regions.join(", ")
                            )
                        } else if both {
                            format!(
                                "Service Health incident {tid}: {} impacted in {} and the secondary region {} (or Global); approval required",
                                config.alerts.service_name, p.primary_region, p.secondary_region
                            )
                        } else {
                            format!(
                                "Service Health incident {tid}: {} impacted in primary region {}",
                                config.alerts.service_name, p.primary_region
                            )
                        },
                        dedup_keys: keys_for(p),
                        tracking_id: tracking.clone(),
                    }),
                    None => skipped.push(p.name.to_owned()),
                }
            }
            if runs.is_empty() {
                ignore(
                    IgnoreCode::PolicyIgnore,
                    skipped,
                    format!(
                        "incident {tid} hits the secondary region too; [alerts].on_both_regions = \"ignore\""
                    ),
                )
            } else {
                Decision::StartRun(runs)
            }
        }
        Some(IncidentStage::Resolved) | Some(IncidentStage::Rca) => Decision::RecordResolved(
            affected
                .iter()
                .map(|p| RecordResolved {
                    pair: p.name.to_owned(),
                    reason: format!(
                        "Service Health incident {tid} is {}; failback stays a human decision",
                        if matches!(sh.stage, Some(IncidentStage::Rca)) {
                            "at RCA"
                        } else {
                            "resolved"
                        }
                    ),
                    dedup_keys: keys_for(p),
                    tracking_id: tracking.clone(),
                })
                .collect(),
        ),
        other => ignore(
            IgnoreCode::NotAnIncident,
            names,
            format!("incident {tid} at stage {other:?} is not acted on"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_zone_less_timestamps_as_utc() {
        let t = parse_timestamp("2021-11-17T05:34:48.0623172").unwrap();
        assert_eq!(t.offset(), time::UtcOffset::UTC);
        assert!(parse_timestamp("2025-04-15T18:20:36.256Z").is_some());
        assert!(parse_timestamp("2019-06-24T15:45:20.4488186+00:00").is_some());
        assert!(parse_timestamp("3/22/2019 1:36:31 PM").is_none());
    }

    #[test]
    fn squashes_spelling_variants() {
        assert_eq!(
            HealthEventStatus::parse("In Progress"),
            HealthEventStatus::InProgress
        );
        assert_eq!(
            IncidentType::parse("Informational"),
            IncidentType::Information
        );
        assert_eq!(
            HealthStatus::parse("weird"),
            HealthStatus::Other("weird".into())
        );
    }

    #[test]
    fn extracts_subscriptions_case_insensitively() {
        assert_eq!(
            subscription_of("/SUBSCRIPTIONS/AbC/resourceGroups/x").as_deref(),
            Some("abc")
        );
        assert_eq!(subscription_of("/providers/x/y"), None);
    }

    #[test]
    fn dedup_keys_are_stable_and_blob_safe() {
        let k = DedupKey::Incident {
            pair: "sales".into(),
            tracking_id: "ABC1-DEF".into(),
        };
        assert_eq!(k.as_key(), "incident:sales:abc1-def");
        let d = k.digest_for_pair("sales");
        assert_eq!(d.len(), 64);
        assert!(d.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(d, k.digest_for_pair("sales"), "stable");
        assert_ne!(d, k.digest_for_pair("other"), "per pair");
    }
}
