//! Azure Monitor alerts (`failover::alert`): every sample in tests/fixtures/alerts/ parses and gets
//! its expected decision; variants of the real samples exercise the Resource Health and Service
//! Health tables; malformed bodies name the field; no input panics the parser.

use std::path::PathBuf;

use datashare_dr::config::dr::DrConfig;
use datashare_dr::failover::alert::{
    AlertKind, AlertSchema, Approval, Decision, DedupKey, HealthCause, HealthStatus, IncidentStage,
    IncidentType, MonitorCondition, decide, decide_at, parse_alert,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Subscription of most test-action samples.
const SUB_A: &str = "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e";
/// Subscription of the 2022 Service Health sample.
const SUB_1: &str = "11111111-1111-1111-1111-111111111111";
/// Subscription of the legacy "Active" Service Health sample (Australia East).
const SUB_C: &str = "cccc2c2c-dd3d-ee4e-ff5f-aaaaaa6a6a6a";

fn primary() -> String {
    format!(
        "/subscriptions/{SUB_A}/resourceGroups/test-RG/providers/Microsoft.DataShare/accounts/ds-aue"
    )
}
fn secondary() -> String {
    format!(
        "/subscriptions/{SUB_A}/resourceGroups/test-RG-dr/providers/Microsoft.DataShare/accounts/ds-ause"
    )
}

/// A config whose pair `ds-aue` lives in the region and subscription of the samples:
/// primary in Australia East (the legacy Service Health incident), subscription `aaaa0a0a…`
/// (the test-action samples); the three sample subscriptions are allowed.
fn config_with(alerts_extra: &str) -> DrConfig {
    let text = format!(
        r#"
[alerts]
allowed_sources = ["/subscriptions/{SUB_A}", "{SUB_1}", "/SUBSCRIPTIONS/{upper_c}/"]
{alerts_extra}

[[pairs]]
name = "ds-aue"
primary = "{p}"
secondary = "{s}"
primary_region = "australiaeast"
secondary_region = "Australia Southeast"
failover = "auto"

[[pairs]]
name = "other-weu"
primary = "/subscriptions/{SUB_A}/resourceGroups/rg-weu/providers/Microsoft.DataShare/accounts/o-weu"
secondary = "/subscriptions/{SUB_A}/resourceGroups/rg-neu/providers/Microsoft.DataShare/accounts/o-neu"
primary_region = "westeurope"
secondary_region = "northeurope"
"#,
        p = primary(),
        s = secondary(),
        upper_c = SUB_C.to_uppercase(),
    );
    DrConfig::from_toml_str(&text, "test.toml").unwrap()
}

fn config() -> DrConfig {
    config_with("")
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alerts")
}

fn read_fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Compact form of a decision for tables: `ignore:<code>`, `refuse`,
/// `start:<pair>:<auto|approval>,…`, `resolved:<pair>,…`.
fn shape(d: &Decision) -> String {
    match d {
        Decision::Ignore(i) => format!("ignore:{}", i.code.as_str()),
        Decision::Refuse { .. } => "refuse".into(),
        Decision::StartRun(runs) => {
            assert!(!runs.is_empty());
            let parts: Vec<String> = runs
                .iter()
                .map(|r| {
                    format!(
                        "{}:{}",
                        r.pair,
                        match r.approval {
                            Approval::Auto => "auto",
                            Approval::AwaitApproval => "approval",
                        }
                    )
                })
                .collect();
            format!("start:{}", parts.join(","))
        }
        Decision::RecordResolved(rs) => {
            assert!(!rs.is_empty());
            let parts: Vec<&str> = rs.iter().map(|r| r.pair.as_str()).collect();
            format!("resolved:{}", parts.join(","))
        }
    }
}

fn decide_value(v: &Value, c: &DrConfig) -> String {
    let alert = parse_alert(v.to_string().as_bytes()).unwrap();
    shape(&decide(&alert, c))
}

/// Suffix of the sidecar that carries an alert file's expected decision.
const EXPECT_SUFFIX: &str = ".expect.json";

/// What to write into a missing sidecar (the test's failure message shows it).
const EXPECT_FORMAT: &str = r#"{"decision": "ignore" | "refuse" | "start" | "resolved", "code": "<ignore code, e.g. not_actionable; only with ignore>", "pairs": [{"pair": "<pair name>", "approval": "auto" | "approval" (start only)}], "why": "<what the alert is and why this is the right decision>"}"#;

/// The expected decision for one alert file, `<name>.expect.json` next to it (decided against
/// [`config`]: pair `ds-aue` with its primary in Australia East, `other-weu`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// `ignore`, `refuse`, `start` or `resolved`.
    decision: String,
    /// The ignore code (`IgnoreCode::as_str`); only with `ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    /// Pairs a run starts for (with their approval) or whose recovery is recorded; empty for
    /// `ignore` and `refuse`.
    pairs: Vec<ExpectPair>,
    /// Why this is the right decision (not compared).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct ExpectPair {
    pair: String,
    /// `auto` or `approval`; only with `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approval: Option<String>,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

impl Expect {
    /// The actual decision in the sidecar's terms (`why` left empty).
    fn of(d: &Decision) -> Expect {
        let (decision, code, pairs) = match d {
            Decision::Ignore(i) => ("ignore", Some(i.code.as_str().to_owned()), vec![]),
            Decision::Refuse { .. } => ("refuse", None, vec![]),
            Decision::StartRun(runs) => (
                "start",
                None,
                runs.iter()
                    .map(|r| ExpectPair {
                        pair: r.pair.clone(),
                        approval: Some(
                            match r.approval {
                                Approval::Auto => "auto",
                                Approval::AwaitApproval => "approval",
                            }
                            .to_owned(),
                        ),
                    })
                    .collect(),
            ),
            Decision::RecordResolved(rs) => (
                "resolved",
                None,
                rs.iter()
                    .map(|r| ExpectPair {
                        pair: r.pair.clone(),
                        approval: None,
                    })
                    .collect(),
            ),
        };
        Expect {
            decision: decision.to_owned(),
            code,
            pairs,
            why: String::new(),
        }
    }
}

/// Every alert file in the folder carries an expected decision in its sidecar, and gets it; a
/// file without one (or a sidecar without its alert) fails, saying what to add.
#[test]
fn every_alert_file_in_the_fixture_folder_gets_the_decision_its_sidecar_expects() {
    let c = config();
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_owned())
        .collect();
    names.sort();
    let mut checked = 0;
    let mut problems = Vec::new();
    for name in &names {
        if let Some(stem) = name.strip_suffix(EXPECT_SUFFIX) {
            if !names.contains(&format!("{stem}.json")) {
                problems.push(format!(
                    "{name}: expectation without its alert file {stem}.json (remove it, or add the alert)"
                ));
            }
            continue;
        }
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let body = std::fs::read(fixtures().join(name)).unwrap();
        let alert = match parse_alert(&body) {
            Ok(a) => a,
            Err(e) => {
                problems.push(format!("{name}: does not parse: {e}"));
                continue;
            }
        };
        let actual = Expect::of(&decide(&alert, &c));
        let sidecar = format!("{stem}{EXPECT_SUFFIX}");
        let Ok(text) = std::fs::read_to_string(fixtures().join(&sidecar)) else {
            problems.push(format!(
                "{name}: no expected decision; add tests/fixtures/alerts/{sidecar} with {EXPECT_FORMAT} \
                 (today's decision is {actual}; check it is right before writing it down)"
            ));
            continue;
        };
        let want: Expect = match serde_json::from_str(&text) {
            Ok(w) => w,
            Err(e) => {
                problems.push(format!("{sidecar}: {e}; the format is {EXPECT_FORMAT}"));
                continue;
            }
        };
        if want.why.trim().is_empty() {
            problems.push(format!("{sidecar}: say `why` this is the right decision"));
        }
        let mut compared = want.clone();
        compared.why = String::new();
        if compared != actual {
            problems.push(format!(
                "{name}: expected {compared} ({}), got {actual}",
                want.why
            ));
        }
        checked += 1;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked > 0, "no alert files in {}", fixtures().display());
}

#[test]
fn samples_are_read_into_the_right_typed_fields() {
    let rh = parse_alert(
        &std::fs::read(fixtures().join("common.resourcehealth.unavailable.fired.test-action.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(rh.schema, AlertSchema::Common);
    assert_eq!(rh.monitor_condition, MonitorCondition::Fired);
    assert_eq!(rh.source.subscription_ids, vec![SUB_A.to_owned()]);
    assert_eq!(
        rh.event_data_id.as_deref(),
        Some("dddd3333-ee44-5555-66ff-777777aaaaaa")
    );
    assert!(rh.fired_at.is_some());
    let AlertKind::ResourceHealth(e) = &rh.kind else {
        panic!("{:?}", rh.kind)
    };
    assert_eq!(e.current, Some(HealthStatus::Unavailable));
    assert_eq!(e.previous, Some(HealthStatus::Available));
    assert_eq!(e.cause, Some(HealthCause::UserInitiated));
    assert!(
        e.resource_id
            .as_deref()
            .unwrap()
            .ends_with("/virtualmachines/test-VM")
    );

    // 2022: impactedServices double-encoded, enums as numbers, zone-less firedDateTime
    let sh = parse_alert(
        &std::fs::read(
            fixtures().join("common.servicehealth.incident.resolved.test-action.2022.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(sh.fired_at.unwrap().unix_timestamp(), 1_637_127_288);
    let AlertKind::ServiceHealth(s) = &sh.kind else {
        panic!()
    };
    assert_eq!(s.tracking_id.as_deref(), Some("ABC1-DEF"));
    assert_eq!(s.incident_type, Some(IncidentType::Incident));
    assert_eq!(s.stage, Some(IncidentStage::Resolved));
    assert!(s.is_synthetic);
    assert_eq!(s.impacted[0].service, "Azure Service Name");
    assert_eq!(s.impacted[0].regions, vec!["Global".to_owned()]);

    // 2026: impactedServices as a real array
    let sh26 = parse_alert(
        &std::fs::read(
            fixtures().join("common.servicehealth.incident.resolved.test-action.2026.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let AlertKind::ServiceHealth(s26) = &sh26.kind else {
        panic!()
    };
    assert_eq!(s26.impacted[0].service, "AzureServiceName");
    assert_eq!(s26.tracking_id.as_deref(), Some("TEST-TTT"));

    // legacy activity log: resource and subscription from the context; lower-case isSynthetic
    let lsh = parse_alert(
        &std::fs::read(
            fixtures().join("legacy-activitylog.servicehealth.incident.resolved.test-action.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(lsh.schema, AlertSchema::LegacyActivityLog);
    let AlertKind::ServiceHealth(l) = &lsh.kind else {
        panic!()
    };
    assert!(l.is_synthetic);
    assert_eq!(lsh.source.custom_properties["customKey1"], "value1");

    let lm = parse_alert(
        &std::fs::read(fixtures().join("legacy-metric.static.activated.test-action.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(lm.schema, AlertSchema::LegacyMetric);
    assert!(
        matches!(&lm.kind, AlertKind::Metric { metric_names, .. } if metric_names == &["Transactions".to_owned()])
    );
    assert!(
        lm.source
            .rule_id
            .as_deref()
            .unwrap()
            .ends_with("metricAlerts/test-metricAlertRule")
    );

    let resolved = parse_alert(
        &std::fs::read(fixtures().join("common.metric.static.resolved.docs.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(resolved.monitor_condition, MonitorCondition::Resolved);
}

/// Wraps an `alertContext`-only sample into a full common-schema body.
fn wrap_context(file: &str, monitoring_service: &str, target: &str) -> Value {
    let ctx = read_fixture(file)["alertContext"].clone();
    json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": format!("/subscriptions/{SUB_A}/providers/Microsoft.AlertsManagement/alerts/{file}"),
                "monitorCondition": "Fired",
                "monitoringService": monitoring_service,
                "alertTargetIDs": [target],
            },
            "alertContext": ctx
        }
    })
}

#[test]
fn context_only_samples_decide_correctly_once_wrapped_in_essentials() {
    let c = config();
    let sub = format!("/subscriptions/{SUB_A}");
    let cases = [
        (
            "context.resourcehealth.unavailable.docs.json",
            "Resource Health",
            primary()
                .to_uppercase()
                .replace("/SUBSCRIPTIONS/", "/subscriptions/"),
            "ignore:policy_ignore",
        ),
        (
            "context.servicehealth.maintenance.planned.docs.json",
            "ServiceHealth",
            sub.clone(),
            "ignore:not_an_incident",
        ),
        (
            "context.servicehealth.maintenance.planned.numeric-enums.docs.json",
            "ServiceHealth",
            sub.clone(),
            "ignore:not_an_incident",
        ),
        (
            "context.prometheus.docs.json",
            "Prometheus",
            sub.clone(),
            "ignore:not_actionable",
        ),
    ];
    for (file, service, target, want) in cases {
        let v = wrap_context(file, service, &target);
        assert_eq!(decide_value(&v, &c), want, "{file}");
    }
}

/// The common Resource Health sample pointed at the configured primary, with its fields set.
fn rh(target: &str, current: Value, cause: Value, status: Value) -> Value {
    let mut v = read_fixture("common.resourcehealth.unavailable.fired.test-action.json");
    v["data"]["essentials"]["alertTargetIDs"] = json!([target]);
    v["data"]["alertContext"]["properties"]["currentHealthStatus"] = current;
    v["data"]["alertContext"]["properties"]["cause"] = cause;
    v["data"]["alertContext"]["status"] = status;
    v
}

#[test]
fn resource_health_follows_the_reference_table_for_the_primary_account() {
    let c = config();
    let p = primary();
    let p_upper = p
        .to_uppercase()
        .replace("/SUBSCRIPTIONS/", "/subscriptions/");
    let s = secondary();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "platform outage, active",
            rh(
                &p,
                json!("Unavailable"),
                json!("PlatformInitiated"),
                json!("Active"),
            ),
            "start:ds-aue:auto",
        ),
        (
            "id in other casing with trailing slash",
            rh(
                &format!("{p_upper}/"),
                json!("Unavailable"),
                json!("PlatformInitiated"),
                json!("Active"),
            ),
            "start:ds-aue:auto",
        ),
        (
            "cause unknown, in progress",
            rh(
                &p,
                json!("Unavailable"),
                json!("Unknown"),
                json!("In Progress"),
            ),
            "start:ds-aue:auto",
        ),
        (
            "cause null, updated",
            rh(&p, json!("Unavailable"), Value::Null, json!("Updated")),
            "start:ds-aue:auto",
        ),
        (
            "status missing is read as active",
            rh(
                &p,
                json!("Unavailable"),
                json!("PlatformInitiated"),
                Value::Null,
            ),
            "start:ds-aue:auto",
        ),
        (
            "user initiated (the sample's cause)",
            rh(
                &p,
                json!("Unavailable"),
                json!("UserInitiated"),
                json!("Active"),
            ),
            "ignore:policy_ignore",
        ),
        (
            "unavailable but resolved",
            rh(
                &p,
                json!("Unavailable"),
                json!("PlatformInitiated"),
                json!("Resolved"),
            ),
            "ignore:not_a_decision_signal",
        ),
        (
            "degraded",
            rh(
                &p,
                json!("Degraded"),
                json!("PlatformInitiated"),
                json!("Active"),
            ),
            "start:ds-aue:approval",
        ),
        (
            "degraded by the user",
            rh(
                &p,
                json!("Degraded"),
                json!("UserInitiated"),
                json!("Active"),
            ),
            "ignore:not_a_decision_signal",
        ),
        (
            "recovered",
            rh(
                &p,
                json!("Available"),
                json!("PlatformInitiated"),
                json!("Resolved"),
            ),
            "resolved:ds-aue",
        ),
        (
            "recovered (updated)",
            rh(&p, json!("Available"), Value::Null, json!("Updated")),
            "resolved:ds-aue",
        ),
        (
            "available while active",
            rh(&p, json!("Available"), Value::Null, json!("Active")),
            "ignore:not_a_decision_signal",
        ),
        (
            "unknown health",
            rh(&p, json!("Unknown"), Value::Null, json!("Active")),
            "ignore:not_a_decision_signal",
        ),
        (
            "null health",
            rh(&p, Value::Null, Value::Null, json!("Updated")),
            "ignore:not_a_decision_signal",
        ),
        (
            "the secondary account is down",
            rh(
                &s,
                json!("Unavailable"),
                json!("PlatformInitiated"),
                json!("Active"),
            ),
            "ignore:secondary_account",
        ),
    ];
    for (case, v, want) in cases {
        assert_eq!(decide_value(&v, &c), want, "{case}");
    }

    // the policies are configurable
    let strict = config_with("on_degraded = \"ignore\"\non_user_initiated = \"approve\"");
    assert_eq!(
        decide_value(
            &rh(
                &p,
                json!("Degraded"),
                json!("PlatformInitiated"),
                json!("Active")
            ),
            &strict
        ),
        "ignore:policy_ignore"
    );
    assert_eq!(
        decide_value(
            &rh(
                &p,
                json!("Unavailable"),
                json!("UserInitiated"),
                json!("Active")
            ),
            &strict
        ),
        "start:ds-aue:approval"
    );
}

#[test]
fn a_start_carries_the_alert_and_event_dedup_keys() {
    let c = config();
    let v = rh(
        &primary(),
        json!("Unavailable"),
        json!("PlatformInitiated"),
        json!("Active"),
    );
    let alert = parse_alert(v.to_string().as_bytes()).unwrap();
    let Decision::StartRun(runs) = decide(&alert, &c) else {
        panic!()
    };
    assert_eq!(
        runs[0].dedup_keys,
        vec![
            DedupKey::Alert(alert.alert_id.clone()),
            DedupKey::Event("dddd3333-ee44-5555-66ff-777777aaaaaa".into()),
        ]
    );
}

#[test]
fn the_legacy_resource_health_shape_reaches_the_same_decision() {
    let c = config();
    let mut v = read_fixture("legacy-activitylog.resourcehealth.unavailable.test-action.json");
    v["data"]["context"]["activityLog"]["resourceId"] = json!(primary().to_lowercase());
    v["data"]["context"]["activityLog"]["properties"]["cause"] = json!("PlatformInitiated");
    assert_eq!(decide_value(&v, &c), "start:ds-aue:auto");
}

/// The legacy Active incident (Australia East) with its impacted services replaced.
fn incident(services: Value, stage: &str, incident_type: &str) -> Value {
    let mut v = read_fixture("legacy-activitylog.servicehealth.incident.active.docs.json");
    let props = &mut v["data"]["context"]["activityLog"]["properties"];
    props["impactedServices"] = json!(services.to_string()); // double-encoded, as Azure sends it
    props["stage"] = json!(stage);
    props["incidentType"] = json!(incident_type);
    v
}

fn data_share_in(regions: &[&str]) -> Value {
    let regions: Vec<Value> = regions.iter().map(|r| json!({ "RegionName": r })).collect();
    json!([
        { "ImpactedRegions": [{ "RegionName": "West Europe" }], "ServiceName": "Virtual Machines" },
        { "ImpactedRegions": regions, "ServiceName": "Azure Data Share" }
    ])
}

#[test]
fn service_health_follows_the_reference_table_for_the_primary_region() {
    let c = config();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "data share down in the primary region",
            incident(data_share_in(&["Australia East"]), "Active", "Incident"),
            "start:ds-aue:auto",
        ),
        (
            "both regions hit",
            incident(
                data_share_in(&["Australia East", "Australia Southeast"]),
                "Active",
                "Incident",
            ),
            "start:ds-aue:approval",
        ),
        (
            "global",
            incident(data_share_in(&["Global"]), "Active", "Incident"),
            "start:ds-aue:approval,other-weu:approval",
        ),
        (
            "only the secondary region",
            incident(
                data_share_in(&["Australia Southeast"]),
                "Active",
                "Incident",
            ),
            "ignore:other_service_or_region",
        ),
        (
            "another pair's region",
            incident(data_share_in(&["West Europe"]), "Active", "Incident"),
            "start:other-weu:approval",
        ),
        (
            "resolved",
            incident(data_share_in(&["Australia East"]), "Resolved", "Incident"),
            "resolved:ds-aue",
        ),
        (
            "rca",
            incident(data_share_in(&["Australia East"]), "RCA", "Incident"),
            "resolved:ds-aue",
        ),
        (
            "maintenance",
            incident(data_share_in(&["Australia East"]), "Active", "Maintenance"),
            "ignore:not_an_incident",
        ),
        (
            "other service in the region (the sample)",
            incident(
                json!([{ "ImpactedRegions": [{ "RegionName": "Australia East" }], "ServiceName": "Virtual Machines" }]),
                "Active",
                "Incident",
            ),
            "ignore:other_service_or_region",
        ),
    ];
    for (case, v, want) in cases {
        assert_eq!(decide_value(&v, &c), want, "{case}");
    }
    let ignore_both = config_with("on_both_regions = \"ignore\"");
    assert_eq!(
        decide_value(
            &incident(
                data_share_in(&["Australia East", "Australia Southeast"]),
                "Active",
                "Incident"
            ),
            &ignore_both
        ),
        "ignore:policy_ignore"
    );
}

#[test]
fn an_incident_start_is_deduplicated_per_pair_and_tracking_id() {
    let c = config();
    let v = incident(data_share_in(&["Australia East"]), "Active", "Incident");
    let alert = parse_alert(v.to_string().as_bytes()).unwrap();
    let Decision::StartRun(runs) = decide(&alert, &c) else {
        panic!()
    };
    assert!(runs[0].dedup_keys.contains(&DedupKey::Incident {
        pair: "ds-aue".into(),
        tracking_id: "0NIH-U2O".into()
    }));
    assert_eq!(runs[0].tracking_id.as_deref(), Some("0NIH-U2O"));
}

#[test]
fn the_common_schema_service_health_samples_start_a_run_once_made_real() {
    // Both published common-schema forms (string and array impactedServices), minus IsSynthetic.
    let c = config();
    for (file, sub) in [
        (
            "common.servicehealth.incident.resolved.test-action.2026.json",
            SUB_A,
        ),
        (
            "common.servicehealth.incident.resolved.test-action.2022.json",
            SUB_1,
        ),
    ] {
        let mut v = read_fixture(file);
        let props = &mut v["data"]["alertContext"]["properties"];
        props.as_object_mut().unwrap().remove("IsSynthetic");
        props["stage"] = json!("Active");
        let services = json!([{ "ImpactedRegions": [{ "RegionName": "australia east" }], "ServiceName": "AZURE DATA SHARE" }]);
        props["impactedServices"] = if file.ends_with("2022.json") {
            json!(services.to_string())
        } else {
            services
        };
        assert_eq!(decide_value(&v, &c), "start:ds-aue:auto", "{file}");
        // same alert from a subscription not on the allow-list is refused
        v["data"]["essentials"]["alertTargetIDs"] =
            json!(["/subscriptions/99999999-9999-9999-9999-999999999999"]);
        v["data"]["essentials"]["alertId"] = json!(
            "/subscriptions/99999999-9999-9999-9999-999999999999/providers/Microsoft.AlertsManagement/alerts/x"
        );
        assert_eq!(
            decide_value(&v, &c),
            "refuse",
            "{file} from {sub} rewritten"
        );
    }
}

#[test]
fn an_action_group_or_rule_id_on_the_allow_list_admits_an_alert() {
    let foreign = "99999999-9999-9999-9999-999999999999";
    let ag = format!(
        "/subscriptions/{foreign}/resourceGroups/rg/providers/microsoft.insights/actionGroups/dr-ag"
    );
    let text = format!(
        r#"
[alerts]
allowed_sources = ["{ag_upper}"]
[[pairs]]
name = "p"
primary = "/subscriptions/{foreign}/resourceGroups/rg/providers/Microsoft.DataShare/accounts/a"
secondary = "/subscriptions/{foreign}/resourceGroups/rg2/providers/Microsoft.DataShare/accounts/b"
primary_region = "westeurope"
secondary_region = "northeurope"
"#,
        ag_upper = ag
            .to_uppercase()
            .replace("/SUBSCRIPTIONS/", "/subscriptions/"),
    );
    let c = DrConfig::from_toml_str(&text, "t.toml").unwrap();
    let mut v = rh(
        &format!(
            "/subscriptions/{foreign}/resourceGroups/rg/providers/Microsoft.DataShare/accounts/a"
        ),
        json!("Unavailable"),
        json!("PlatformInitiated"),
        json!("Active"),
    );
    v["data"]["essentials"]["alertId"] = json!(format!(
        "/subscriptions/{foreign}/providers/Microsoft.AlertsManagement/alerts/1"
    ));
    assert_eq!(decide_value(&v, &c), "refuse");
    v["data"]["customProperties"] = json!({ "actionGroupId": ag });
    assert_eq!(decide_value(&v, &c), "start:p:approval");
}

#[test]
fn stale_events_start_nothing_when_a_window_is_configured() {
    let c = config_with("max_event_age_hours = 24");
    let v = rh(
        &primary(),
        json!("Unavailable"),
        json!("PlatformInitiated"),
        json!("Active"),
    );
    let alert = parse_alert(v.to_string().as_bytes()).unwrap();
    let event = alert.event_time.unwrap();
    let fresh = decide_at(&alert, &c, event + time::Duration::hours(1));
    assert_eq!(shape(&fresh), "start:ds-aue:auto");
    let stale = decide_at(&alert, &c, event + time::Duration::hours(25));
    assert_eq!(shape(&stale), "ignore:stale");
}

#[test]
fn ids_are_read_in_any_case_and_enums_as_numbers_or_strings() {
    let c = config();
    let mut v = rh(
        &primary(),
        json!("UNAVAILABLE"),
        json!("platforminitiated"),
        json!("active"),
    );
    let ess = v["data"]["essentials"].as_object_mut().unwrap();
    let id = ess.remove("alertId").unwrap();
    ess.insert("ALERTID".into(), id);
    v["data"]["alertContext"]["level"] = json!(3);
    v["data"]["alertContext"]["eventSource"] = json!(2);
    v["data"]["alertContext"]["channels"] = json!(1);
    assert_eq!(decide_value(&v, &c), "start:ds-aue:auto");
}

#[test]
fn malformed_bodies_are_errors_naming_the_field() {
    let base = read_fixture("common.servicehealth.incident.resolved.test-action.2026.json");
    let set = |f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        f(&mut v);
        v.to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("not json", "{\"schemaId\": ".into(), ""),
        ("a list, not an object", "[1, 2]".into(), "(body)"),
        ("essentials is a string", set(&|v| v["data"]["essentials"] = json!("x")), "data.essentials"),
        ("target ids are a number", set(&|v| v["data"]["essentials"]["alertTargetIDs"] = json!(5)), "data.essentials.alertTargetIDs"),
        ("a target id is an object", set(&|v| v["data"]["essentials"]["alertTargetIDs"] = json!([{}])), "data.essentials.alertTargetIDs[0]"),
        ("monitorCondition unknown", set(&|v| v["data"]["essentials"]["monitorCondition"] = json!("Maybe")), "data.essentials.monitorCondition"),
        ("impactedServices is not JSON text", set(&|v| v["data"]["alertContext"]["properties"]["impactedServices"] = json!("[{oops")), "data.alertContext.properties.impactedServices"),
        ("impactedServices is a number", set(&|v| v["data"]["alertContext"]["properties"]["impactedServices"] = json!(7)), "data.alertContext.properties.impactedServices"),
        ("impactedServices holds an object", set(&|v| v["data"]["alertContext"]["properties"]["impactedServices"] = json!("{\"a\":1}")), "data.alertContext.properties.impactedServices"),
        ("regions are not a list", set(&|v| v["data"]["alertContext"]["properties"]["impactedServices"] = json!([{ "ServiceName": "x", "ImpactedRegions": 3 }])), "data.alertContext.properties.impactedServices[0].ImpactedRegions"),
        ("properties is a string", set(&|v| v["data"]["alertContext"]["properties"] = json!("x")), "data.alertContext.properties"),
        ("trackingId is an object", set(&|v| v["data"]["alertContext"]["properties"]["trackingId"] = json!({})), "data.alertContext.properties.trackingId"),
        ("legacy activityLog is a list", r#"{"schemaId":"Microsoft.Insights/activityLogs","data":{"status":"Activated","context":{"activityLog":[]}}}"#.into(), "data.context.activityLog"),
    ];
    for (case, body, field) in cases {
        let err = parse_alert(body.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{case}: parsed"));
        assert_eq!(err.field(), field, "{case}: {err}");
        if !field.is_empty() {
            assert!(err.to_string().contains(field), "{case}: {err}");
        }
    }
}

#[test]
fn absent_or_null_fields_are_tolerated() {
    let c = config();
    for body in [
        r#"{}"#,
        r#"{"schemaId":"azureMonitorCommonAlertSchema"}"#,
        r#"{"schemaId":"azureMonitorCommonAlertSchema","data":{}}"#,
        r#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":null,"alertContext":null}}"#,
        r#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"monitoringService":"Resource Health"}}}"#,
        r#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"monitoringService":"ServiceHealth","alertTargetIDs":null}}}"#,
        r#"{"schemaId":"AzureMonitorMetricAlert","data":{}}"#,
        r#"{"SubscriptionId":"x","AlertRuleName":"legacy log search"}"#,
    ] {
        let alert = parse_alert(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert!(!alert.alert_id.is_empty());
        let _ = decide(&alert, &c);
    }
    // without an id the body digest identifies the alert, so a redelivery dedups
    let a = parse_alert(br#"{"schemaId":"azureMonitorCommonAlertSchema","data":{}}"#).unwrap();
    assert!(a.alert_id.starts_with("sha256:"));
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("azureMonitorCommonAlertSchema"),
            Just("Microsoft.Insights/activityLogs"),
            Just("AzureMonitorMetricAlert"),
            Just("Resource Health"),
            Just("ServiceHealth"),
            Just("Unavailable"),
            Just("Incident"),
            Just("Active"),
            Just("[{\"ImpactedRegions\":3}]"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    let keys = prop_oneof![
        Just("schemaId"),
        Just("data"),
        Just("essentials"),
        Just("alertContext"),
        Just("properties"),
        Just("monitoringService"),
        Just("alertTargetIDs"),
        Just("alertId"),
        Just("impactedServices"),
        Just("ImpactedRegions"),
        Just("RegionName"),
        Just("ServiceName"),
        Just("context"),
        Just("activityLog"),
        Just("status"),
        Just("currentHealthStatus"),
        Just("incidentType"),
        Just("stage"),
        Just("condition"),
        Just("allOf"),
        Just("customProperties"),
        Just("x"),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_json_never_panics_the_parser_or_the_decision(v in arb_json()) {
        let c = config();
        if let Ok(alert) = parse_alert(v.to_string().as_bytes()) {
            let _ = decide(&alert, &c);
        }
        // also inside a plausible envelope
        let wrapped = json!({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"monitoringService": "ServiceHealth"}, "alertContext": v}});
        if let Ok(alert) = parse_alert(wrapped.to_string().as_bytes()) {
            let _ = decide(&alert, &c);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_alert(&bytes);
    }
}

/// One Service Health incident that covers two pairs starts one run per pair (the dedup record
/// is per pair: the shared delivery key must not let the first pair swallow the second), and a
/// redelivery of the same alert is a duplicate for both.
#[tokio::test]
async fn one_alert_covering_two_pairs_starts_a_run_for_each_and_dedups_each() {
    use datashare_dr::failover::start::{AlertAnswer, ingest_alert};
    use datashare_dr::store::{BlobStore, MemoryBlobStore, MemoryQueue};
    let c = config();
    let body = incident(data_share_in(&["Global"]), "Active", "Incident").to_string();
    let store = MemoryBlobStore::new();
    let queue = MemoryQueue::new();
    // The legacy sample's event is from 2017: ingest it as if it had just happened (the 24 h
    // staleness window is the default since issue 15).
    let now =
        parse_alert(body.as_bytes()).unwrap().event_time.unwrap() + time::Duration::minutes(1);
    let first = ingest_alert(&store, &queue, &c, body.as_bytes(), now)
        .await
        .unwrap();
    let AlertAnswer::Accepted { pairs } = first else {
        panic!("{first:?}")
    };
    let actions: Vec<(&str, &str)> = pairs
        .iter()
        .map(|p| (p.pair.as_str(), p.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![("ds-aue", "started"), ("other-weu", "started")]
    );
    // A Global incident never fails over automatically, and the answer says so per pair (ds-aue's
    // own policy is `auto`).
    for p in &pairs {
        assert_eq!(p.approval.as_deref(), Some("required"), "{p:?}");
        assert!(
            p.decision
                .as_deref()
                .is_some_and(|d| d.contains("approval required")),
            "the answer carries the decision: {p:?}"
        );
    }
    let answer = serde_json::to_value(&pairs).unwrap();
    assert_eq!(answer[0]["approval"], "required", "{answer}");
    assert_eq!(store.list("runs/").await.unwrap().len(), 2);
    let again = ingest_alert(&store, &queue, &c, body.as_bytes(), now)
        .await
        .unwrap();
    let AlertAnswer::Accepted { pairs: again } = again else {
        panic!("{again:?}")
    };
    assert_eq!(again.len(), pairs.len(), "{again:?}");
    for (a, b) in pairs.iter().zip(&again) {
        assert_eq!(b.action, "duplicate", "{b:?}");
        assert_eq!(a.run_id, b.run_id);
    }
    assert_eq!(store.list("runs/").await.unwrap().len(), 2);
}

// ---- issue 15: plausibility -------------------------------------------------------------------

#[test]
fn a_multi_region_or_global_incident_never_fails_over_automatically() {
    // ds-aue has failover = "auto"; its secondary (Australia Southeast) is NOT named, but the
    // incident spans two regions: approval, whatever the pair's policy says.
    let c = config();
    let multi = incident(
        data_share_in(&["Australia East", "Japan East"]),
        "Active",
        "Incident",
    );
    assert_eq!(decide_value(&multi, &c), "start:ds-aue:approval");
    let alert = parse_alert(multi.to_string().as_bytes()).unwrap();
    let d = decide(&alert, &c);
    assert!(
        d.summary().contains("never fails over automatically"),
        "the decision must say why: {}",
        d.summary()
    );
    let global = incident(data_share_in(&["Global"]), "Active", "Incident");
    assert_eq!(
        decide_value(&global, &config_with("on_both_regions = \"approve\"")),
        "start:ds-aue:approval,other-weu:approval"
    );
}

#[test]
fn stale_events_start_nothing_by_default_after_24_hours() {
    let c = config(); // no max_event_age_hours: the default window is 24 h
    assert_eq!(
        c.alerts.max_event_age,
        Some(std::time::Duration::from_secs(24 * 3600))
    );
    let v = rh(
        &primary(),
        json!("Unavailable"),
        json!("PlatformInitiated"),
        json!("Active"),
    );
    let alert = parse_alert(v.to_string().as_bytes()).unwrap();
    let event = alert.event_time.unwrap();
    assert_eq!(
        shape(&decide_at(&alert, &c, event + time::Duration::hours(23))),
        "start:ds-aue:auto"
    );
    let stale = decide_at(&alert, &c, event + time::Duration::hours(25));
    assert_eq!(shape(&stale), "ignore:stale");
    assert!(stale.summary().contains("stale"), "{}", stale.summary());
}

#[test]
fn a_primary_that_answered_after_the_event_routes_the_failover_to_approval() {
    use datashare_dr::failover::alert::route_if_primary_answered;
    let c = config();
    let v = rh(
        &primary(),
        json!("Unavailable"),
        json!("PlatformInitiated"),
        json!("Active"),
    );
    let alert = parse_alert(v.to_string().as_bytes()).unwrap();
    let event = alert.event_time.unwrap();
    let before = route_if_primary_answered(decide(&alert, &c), &alert, &|_| {
        Some(event - time::Duration::minutes(5))
    });
    assert_eq!(shape(&before), "start:ds-aue:auto");
    let after = route_if_primary_answered(decide(&alert, &c), &alert, &|p| {
        (p == "ds-aue").then_some(event + time::Duration::minutes(5))
    });
    assert_eq!(shape(&after), "start:ds-aue:approval");
    assert!(
        after.summary().contains("primary answered a read"),
        "{}",
        after.summary()
    );
}
