//! Artefacts derived from code are held to it (STYLE #15): every `functions/*/function.json`
//! matches a route in the handler's functions table and vice versa, HTTP functions use
//! `authLevel: function`, host.json has the settings the design relies on, and
//! `local.settings.json.sample` lists exactly the keys `Config` reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use datashare_dr::config::{ENV_KEYS, HOST_PROVIDED_KEYS};
use datashare_dr::handlers::{FUNCTIONS, HTTP_RES};
use datashare_dr::host::TriggerKind;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

fn function_jsons() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("functions")).expect("functions/ exists") {
        let dir = entry.unwrap().path();
        if dir.is_dir() {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            out.insert(name, read_json(&dir.join("function.json")));
        }
    }
    out
}

fn bindings(fj: &Value) -> &Vec<Value> {
    fj["bindings"].as_array().expect("a bindings array")
}

#[test]
fn every_function_json_has_a_route_and_every_route_a_function_json() {
    let on_disk: BTreeSet<String> = function_jsons().into_keys().collect();
    let in_code: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.name.to_owned()).collect();
    assert_eq!(on_disk, in_code);
}

#[test]
fn every_function_json_declares_what_the_handler_decodes() {
    let all = function_jsons();
    for f in FUNCTIONS {
        let fj = &all[f.name];
        let b = bindings(fj);
        let trigger: Vec<&Value> = b.iter().filter(|x| x["direction"] == "in").collect();
        assert_eq!(
            trigger.len(),
            1,
            "{}: exactly one input binding (the trigger)",
            f.name
        );
        let t = trigger[0];
        assert_eq!(t["name"], f.binding, "{}: trigger binding name", f.name);
        match f.trigger {
            TriggerKind::Timer => {
                assert_eq!(t["type"], "timerTrigger", "{}", f.name);
                assert_eq!(t["schedule"], f.source, "{}", f.name);
            }
            TriggerKind::Queue => {
                assert_eq!(t["type"], "queueTrigger", "{}", f.name);
                assert_eq!(t["queueName"], f.source, "{}", f.name);
                assert_eq!(t["connection"], "AzureWebJobsStorage", "{}", f.name);
            }
            TriggerKind::Http => {
                assert_eq!(t["type"], "httpTrigger", "{}", f.name);
                assert_eq!(t["route"], f.source, "{}", f.name);
                let methods: Vec<&str> = t["methods"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap())
                    .collect();
                assert_eq!(methods, f.methods, "{}", f.name);
                let res: Vec<&Value> = b.iter().filter(|x| x["type"] == "http").collect();
                assert_eq!(res.len(), 1, "{}: one http output", f.name);
                assert_eq!(res[0]["name"], HTTP_RES, "{}", f.name);
            }
        }
        let queues: BTreeSet<(String, String)> = b
            .iter()
            .filter(|x| x["type"] == "queue" && x["direction"] == "out")
            .map(|x| {
                assert_eq!(x["connection"], "AzureWebJobsStorage", "{}", f.name);
                (
                    x["name"].as_str().unwrap().to_owned(),
                    x["queueName"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: BTreeSet<(String, String)> = f
            .queue_outputs
            .iter()
            .map(|(n, q)| ((*n).to_owned(), (*q).to_owned()))
            .collect();
        assert_eq!(queues, expected, "{}: queue outputs", f.name);
        assert_eq!(
            b.len(),
            1 + usize::from(f.trigger == TriggerKind::Http) + expected.len(),
            "{}: no stray bindings",
            f.name
        );
    }
}

#[test]
fn every_http_function_uses_auth_level_function() {
    for (name, fj) in function_jsons() {
        for b in bindings(&fj).iter().filter(|b| b["type"] == "httpTrigger") {
            assert_eq!(b["authLevel"], "function", "{name}");
        }
    }
}

#[test]
fn host_json_starts_our_binary_in_payload_mode_with_explicit_queue_settings() {
    let host = read_json(&root().join("host.json"));
    assert_eq!(host["version"], "2.0");
    assert_eq!(
        host["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
    assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");
    let ch = &host["customHandler"];
    assert_eq!(
        ch["description"]["defaultExecutablePath"],
        env!("CARGO_PKG_NAME")
    );
    assert_eq!(ch["description"]["arguments"], serde_json::json!(["serve"]));
    assert_eq!(ch["enableForwardingHttpRequest"], false);
    let q = &host["extensions"]["queues"];
    assert_eq!(q["maxDequeueCount"], 5);
    assert_eq!(q["visibilityTimeout"], "00:00:10");
    assert_eq!(q["messageEncoding"], "none");
    let timeout = host["functionTimeout"].as_str().unwrap();
    assert!(
        timeout.len() == 8 && timeout.as_bytes()[2] == b':',
        "{timeout}"
    );
}

/// `Values` must be exactly the keys `Config` reads, except:
/// - keys the Functions host sets itself on the handler process (`HOST_PROVIDED_KEYS`, i.e.
///   `FUNCTIONS_CUSTOMHANDLER_PORT`), which must not be app settings;
/// - `FUNCTIONS_WORKER_RUNTIME` (`Custom`), which the host (not `Config`) needs to start a
///   custom handler locally.
#[test]
fn local_settings_sample_lists_exactly_the_keys_config_reads() {
    let sample = read_json(&root().join("local.settings.json.sample"));
    let values = sample["Values"].as_object().expect("a Values object");
    let mut in_sample: BTreeSet<&str> = values.keys().map(String::as_str).collect();
    assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "Custom");
    in_sample.remove("FUNCTIONS_WORKER_RUNTIME");
    let expected: BTreeSet<&str> = ENV_KEYS
        .iter()
        .copied()
        .filter(|k| !HOST_PROVIDED_KEYS.contains(k))
        .collect();
    assert_eq!(in_sample, expected);
    for (k, v) in values {
        assert!(v.is_string(), "{k}: app settings are strings");
    }
}

#[test]
fn the_local_settings_sample_is_a_valid_config() {
    let sample = read_json(&root().join("local.settings.json.sample"));
    let values = sample["Values"].as_object().unwrap().clone();
    let config = datashare_dr::config::Config::from_lookup(|k| {
        values.get(k).and_then(|v| v.as_str()).map(str::to_owned)
    })
    .expect("the sample values parse");
    assert!(config.storage.is_some());
    assert!(config.replicate_schedule.is_some() && config.readiness_schedule.is_some());
}
