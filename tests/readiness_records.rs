//! Stored readiness records stay readable across versions, and everything the readiness surfaces
//! write is camelCase.
//!
//! `tests/fixtures/readiness-records/` holds records as earlier versions stored them
//! (`reports/{pair}/latest.json` → `report.*.json`, `state/{pair}.json` → `pair-state.*.json`).
//! Every file in the folder is loaded with today's types through the same store path the app
//! uses; the values of `lastDrill` survive whichever spelling the file used, and writing the
//! record back produces camelCase keys only. A file whose name says neither kind fails the test
//! with a message saying how to name it.

mod support;

use std::path::{Path, PathBuf};

use datashare_dr::config::dr::DrConfig;
use datashare_dr::readiness::api::respond;
use datashare_dr::readiness::arm_reader::ArmReader;
use datashare_dr::readiness::check::check_pair;
use datashare_dr::readiness::history::{PairState, latest_path, load_state, state_path};
use datashare_dr::readiness::{self, DrillRecord, Report};
use datashare_dr::store::{BlobStore, MemoryBlobStore, Precondition};
use serde_json::Value;
use time::OffsetDateTime;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/readiness-records")
}

/// Every object key in `v` (recursively) that is not camelCase, with its JSON path.
fn non_camel_keys(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let camel = k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && k.chars().all(|c| c.is_ascii_alphanumeric());
                if !camel {
                    out.push(format!("{at}.{k}"));
                }
                non_camel_keys(child, &format!("{at}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                non_camel_keys(child, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn assert_camel(v: &Value, what: &str) {
    let mut bad = Vec::new();
    non_camel_keys(v, "$", &mut bad);
    assert!(bad.is_empty(), "{what}: keys not camelCase: {bad:?}\n{v:#}");
}

/// `lastDrill` as written in a raw record, whichever spelling it used.
fn raw_drill(raw: &Value) -> Option<(String, Option<String>, Option<f64>)> {
    let d = raw.get("lastDrill").filter(|d| !d.is_null())?;
    let pick = |camel: &str, snake: &str| d.get(camel).or_else(|| d.get(snake)).cloned();
    Some((
        pick("completedAt", "completed_at")?.as_str()?.to_string(),
        pick("runId", "run_id").and_then(|v| v.as_str().map(str::to_string)),
        pick("rtoSecs", "rto_secs").and_then(|v| v.as_f64()),
    ))
}

fn assert_drill_kept(file: &str, raw: &Value, loaded: Option<&DrillRecord>) {
    match (raw_drill(raw), loaded) {
        (None, None) => {}
        (Some((at, run, rto)), Some(d)) => {
            let want = OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("{file}: lastDrill completed time {at:?}: {e}"));
            assert_eq!(d.completed_at, want, "{file}: completed time");
            assert_eq!(d.run_id, run, "{file}: run id");
            assert_eq!(d.rto_secs, rto, "{file}: RTO");
        }
        (raw, loaded) => panic!("{file}: lastDrill in the file {raw:?}, loaded {loaded:?}"),
    }
}

/// Old and new spellings both load through the app's own store path, keep every value of
/// `lastDrill`, and are written back camelCase.
#[tokio::test]
async fn every_stored_record_in_the_fixture_folder_loads_and_is_rewritten_camel_case() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures/readiness-records")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut snake = 0;
    let mut judged = 0;
    for path in &files {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        if file == "README.md" {
            continue;
        }
        let bytes = std::fs::read(path).expect("read fixture");
        let raw: Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        if raw.pointer("/lastDrill/rto_secs").is_some()
            || raw.pointer("/lastDrill/completed_at").is_some()
        {
            snake += 1;
        }
        let store = MemoryBlobStore::new();
        if file.starts_with("report.") && file.ends_with(".json") {
            let pair = raw["pair"].as_str().unwrap_or("p").to_string();
            store
                .put(&latest_path(&pair), bytes, Precondition::None)
                .await
                .expect("put");
            let report: Report = readiness::load_latest(&store, &pair)
                .await
                .unwrap_or_else(|e| panic!("{file}: does not load as a report: {e:#}"))
                .expect("stored");
            assert_eq!(report.pair, pair, "{file}");
            assert_drill_kept(&file, &raw, report.last_drill.as_ref());
            let again = serde_json::to_value(&report).expect("encode");
            assert_camel(&again, &file);
            let back: Report = serde_json::from_value(again).expect("decode again");
            assert_eq!(back, report, "{file}: round trip");
        } else if file.starts_with("pair-state.") && file.ends_with(".json") {
            store
                .put(&state_path("p"), bytes, Precondition::None)
                .await
                .expect("put");
            let state: PairState = load_state(&store, "p")
                .await
                .unwrap_or_else(|e| panic!("{file}: does not load as a pair state: {e:#}"))
                .expect("stored");
            assert_drill_kept(&file, &raw, state.last_drill.as_ref());
            assert!(
                state.extra.is_empty(),
                "{file}: keys not understood (kept as unknown): {:?}",
                state.extra.keys().collect::<Vec<_>>()
            );
            let again = serde_json::to_value(&state).expect("encode");
            assert_camel(&again, &file);
        } else {
            panic!(
                "tests/fixtures/readiness-records/{file}: cannot tell what record this is; name it \
                 report.<what>.json (a stored reports/{{pair}}/latest.json) or \
                 pair-state.<what>.json (a stored state/{{pair}}.json)"
            );
        }
        judged += 1;
    }
    assert!(judged >= 2, "{judged} records judged in {files:?}");
    assert!(
        snake >= 2,
        "the folder must keep the old snake_case records (report and pair state): {snake} found"
    );
}

/// A drill recorded today is written camelCase in the pair state, the report, `check --json`'s
/// document and `GET api/readiness` — `lastDrill.rtoSecs`, never `rto_secs`.
#[tokio::test]
async fn reports_state_and_the_api_write_camel_case_keys_only() {
    let (sim, estate) = support::estate::populated(2, 1, 1, 11).await;
    let toml = datashare_dr::sim::write_config(&estate, &sim.base_url);
    let cfg = DrConfig::from_toml_str(&toml, "records.toml").expect("config");
    let pair = cfg.pairs[0].clone();
    let arm = support::estate::bootstrap(&sim, &cfg, &pair).await;
    let now = OffsetDateTime::now_utc();
    let store = MemoryBlobStore::new();
    readiness::record_drill(
        &store,
        &pair.name,
        DrillRecord {
            completed_at: now - time::Duration::days(3),
            run_id: Some("20250101t120000-0123456789ab".into()),
            rto_secs: Some(2.5),
        },
    )
    .await
    .expect("record drill");
    let last = readiness::last_drill(&store, &pair.name)
        .await
        .expect("last drill");
    let reader = ArmReader {
        client: &arm,
        concurrency: 4,
    };
    let report = check_pair(&reader, &cfg, &pair, now, last).await;
    readiness::store_report(&store, &report)
        .await
        .expect("store");
    sim.shutdown().await;

    let blob = |path: String| {
        let store = &store;
        async move {
            let b = store.get(&path).await.expect("get").expect("exists").bytes;
            serde_json::from_slice::<Value>(&b).expect("json")
        }
    };
    let state = blob(state_path(&pair.name)).await;
    let latest = blob(latest_path(&pair.name)).await;
    for (what, v) in [("state blob", &state), ("latest report blob", &latest)] {
        assert_camel(v, what);
        assert_eq!(v["lastDrill"]["rtoSecs"], 2.5, "{what}: {v:#}");
        assert_eq!(
            v["lastDrill"]["runId"], "20250101t120000-0123456789ab",
            "{what}"
        );
        assert!(v["lastDrill"]["completedAt"].is_string(), "{what}");
    }
    let configured = vec![pair.name.clone(), "never-checked".to_string()];
    let all = respond(&configured, std::slice::from_ref(&report), None, None, now);
    let all: Value = serde_json::from_str(&all.body).expect("api json");
    assert_camel(&all, "GET api/readiness");
    assert_eq!(all["pairs"][0]["lastDrill"]["rtoSecs"], 2.5);
    let one = respond(
        &configured,
        std::slice::from_ref(&report),
        Some(&pair.name),
        None,
        now,
    );
    assert_camel(
        &serde_json::from_str(&one.body).expect("api json"),
        "GET api/readiness/{pair}",
    );
    // `check --json` prints `serde_json::to_string_pretty(&reports)`.
    assert_camel(
        &serde_json::to_value(vec![report]).expect("encode"),
        "check --json",
    );
}
