//! Every upstream x-ms-example in `tests/fixtures/datashare/examples/` decodes into the typed
//! models, and encodes back to the same JSON (request bodies and response bodies), so nothing
//! the service sends is lost. A file dropped into the folder is picked up; a file for an
//! operation with no registered model fails with a message naming it.

use std::path::Path;

use datashare_dr::arm::models::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Removes `null` members (the encoder omits absent optionals instead of writing null).
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), strip_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v.clone()).map_err(|e| format!("decode: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| format!("encode: {e}"))?;
    if back != strip_nulls(v) {
        return Err(format!(
            "round trip changed the body\n original: {}\n encoded:  {}",
            strip_nulls(v),
            back
        ));
    }
    Ok(back)
}

/// Which model a body of this operation decodes into. `list` = the `Page<T>` form.
fn check_body(op: &str, v: &Value) -> Result<&'static str, String> {
    let (group, rest) = op.split_once('_').unwrap_or((op, ""));
    let action = rest.rsplit('_').next().unwrap_or(rest);
    let is_list = action.starts_with("List");
    macro_rules! rt {
        ($t:ty) => {{
            if is_list {
                round_trip::<Page<$t>>(v)?;
            } else {
                round_trip::<$t>(v)?;
            }
            Ok(stringify!($t))
        }};
    }
    match (group, action) {
        (_, "Delete") => round_trip::<OperationResponse>(v).map(|_| "OperationResponse"),
        ("Accounts", _) => rt!(Account),
        ("ConsumerInvitations", _) => rt!(ConsumerInvitation),
        ("DataSetMappings", _) => rt!(DataSetMapping),
        ("DataSets", _) => rt!(DataSet),
        ("Invitations", _) => rt!(Invitation),
        ("ProviderShareSubscriptions", _) => rt!(ProviderShareSubscription),
        ("ShareSubscriptions", "ListSourceShareSynchronizationSettings") => {
            rt!(SourceShareSynchronizationSetting)
        }
        ("ShareSubscriptions", "ListSynchronizations" | "Synchronize") => {
            rt!(ShareSubscriptionSynchronization)
        }
        ("ShareSubscriptions", _) => rt!(ShareSubscription),
        ("Shares", "ListSynchronizations") => rt!(ShareSynchronization),
        ("Shares", _) => rt!(Share),
        ("SynchronizationSettings", _) => rt!(SynchronizationSetting),
        ("Triggers", _) => rt!(Trigger),
        _ => Err(format!("no model registered for operation `{op}`")),
    }
}

#[test]
fn every_example_body_decodes_and_encodes_back_unchanged() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datashare/examples");
    let mut files = 0;
    let mut bodies = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for path in entries {
        files += 1;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path).expect("read example");
        let doc: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: not JSON: {e}"));
                continue;
            }
        };
        // request bodies: every object-valued parameter
        if let Some(params) = doc.get("parameters").and_then(Value::as_object) {
            for (pname, pval) in params {
                if pval.is_object() {
                    bodies += 1;
                    // request bodies of list/POST operations are the single resource type
                    let op = name.replace("_ListInvitations", "_Get");
                    if let Err(e) = check_body(&op, pval) {
                        failures.push(format!("{name} request `{pname}`: {e}"));
                    }
                }
            }
        }
        let Some(responses) = doc.get("responses").and_then(Value::as_object) else {
            failures.push(format!("{name}: no responses"));
            continue;
        };
        for (code, resp) in responses {
            let Some(body) = resp.get("body").filter(|b| !b.is_null()) else {
                continue;
            };
            bodies += 1;
            if let Err(e) = check_body(&name, body) {
                failures.push(format!("{name} response {code}: {e}"));
            }
        }
    }
    assert!(
        files >= 37,
        "expected the 37 upstream examples, found {files}"
    );
    assert!(bodies > 60, "too few bodies checked: {bodies}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn typed_examples_have_the_expected_kinds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datashare/examples");
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).expect("read")).expect("json")
    };
    let kusto: DataSet = serde_json::from_value(
        read("DataSets_KustoTable_Create.json")["responses"]["201"]["body"].clone(),
    )
    .expect("decode");
    assert_eq!(kusto.kind_name(), "KustoTable");
    let store = kusto.store().expect("kusto table has a store");
    assert_eq!(store.kind, StoreKind::KustoDatabase);

    let sql: DataSet = serde_json::from_value(
        read("DataSets_SqlDBTable_Create.json")["responses"]["201"]["body"].clone(),
    )
    .expect("decode");
    assert_eq!(sql.store().expect("sql store").kind, StoreKind::SqlServer);
    assert_eq!(
        sql.data_reader_role(),
        DataReaderRole::SqlDatabaseRole {
            role: "db_datareader"
        }
    );

    let psss: Page<ProviderShareSubscription> = serde_json::from_value(
        read("ProviderShareSubscriptions_ListByShare.json")["responses"]["200"]["body"].clone(),
    )
    .expect("decode");
    assert!(!psss.value.is_empty());
    assert!(psss.value[0].properties.share_subscription_status.is_some());

    let trig: Trigger =
        serde_json::from_value(read("Triggers_Get.json")["responses"]["200"]["body"].clone())
            .expect("decode");
    let TriggerKind::ScheduleBased(p) = &trig.kind else {
        panic!("trigger kind {}", trig.kind_name())
    };
    assert_eq!(p.recurrence_interval, RecurrenceInterval::Day);
    assert_eq!(p.trigger_status, Some(TriggerStatus::Active));

    let acct: Account =
        serde_json::from_value(read("Accounts_Get.json")["responses"]["200"]["body"].clone())
            .expect("decode");
    assert_eq!(
        acct.properties.provisioning_state,
        Some(ProvisioningState::Succeeded)
    );
    assert_eq!(acct.identity.identity_type, "SystemAssigned");
}
