//! `datashare-dr plan` / `replicate` as an operator runs them, against an in-process simulator.

mod support;

use std::path::Path;
use std::process::Output;

use datashare_dr::sim::{self, SimHandle};

async fn sim_with_config(dir: &Path) -> (SimHandle, std::path::PathBuf) {
    let (sim, estate) = support::estate::populated(2, 2, 2, 3).await;
    let path = dir.join("dr.toml");
    std::fs::write(&path, sim::write_config(&estate, &sim.base_url)).expect("write config");
    (sim, path)
}

async fn cli(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_datashare-dr"))
        .args(args)
        .env_remove("ARM_ENDPOINT")
        .env_remove("ARM_AUTH")
        .env_remove("DR_CONFIG_PATH")
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_then_replicate_then_plan_again_shows_no_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, cfg) = sim_with_config(dir.path()).await;
    let cfg = cfg.to_str().expect("utf-8 path");

    let o = cli(&["plan", "--config", cfg, "--json"]).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("plan JSON");
    let create = v["summary"]["create"].as_u64().expect("summary.create");
    assert!(create > 0, "{v}");
    assert_eq!(v["changes"].as_array().map(Vec::len), Some(create as usize));
    assert_eq!(v["changes"][0]["action"], "create");
    assert_eq!(v["changes"][0]["resourceType"], "share");
    assert_eq!(sim.stats().writes, 0, "plan writes nothing");

    let o = cli(&["replicate", "--config", cfg]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("+ create share share-000 ... done"), "{text}");
    assert!(
        text.contains(&format!("Replicate: {create} applied, 0 failed, 0 skipped")),
        "{text}"
    );

    let o = cli(&["plan", "--config", cfg]).await;
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(text.contains("No changes."), "{text}");
    assert!(
        text.ends_with("Plan: 0 to create, 0 to update, 0 to delete, 0 findings.\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicate_exits_non_zero_when_a_pair_fails_unless_partial_is_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sim, cfg) = sim_with_config(dir.path()).await;
    let cfg = cfg.to_str().expect("utf-8 path");
    sim.region_down("northeurope");

    let o = cli(&["replicate", "--config", cfg, "--json"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["complete"], false);
    assert_eq!(v["summary"]["pairsFailed"], 1);
    assert!(v["pairs"][0]["error"].as_str().is_some(), "{v}");

    let o = cli(&["replicate", "--config", cfg, "--allow-partial"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_pair_or_a_bad_config_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sim, cfg) = sim_with_config(dir.path()).await;
    let cfg = cfg.to_str().expect("utf-8 path");
    let o = cli(&["plan", "--config", cfg, "--pair", "nope"]).await;
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"nope\""));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[pairs]]\nname = 7\n").expect("write");
    let o = cli(&["replicate", "--config", bad.to_str().expect("path")]).await;
    assert_eq!(o.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("pairs[0].name"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
