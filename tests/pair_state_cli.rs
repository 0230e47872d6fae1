//! The CLI and the pair state: `replicate` and `failover start` against a non-loopback ARM
//! endpoint refuse without the run store (exit 64 naming the missing settings, before any
//! network call); `--local` runs in-process with a warning; `plan` without storage warns that
//! the pair state is unknown, and so does `check`. The non-loopback endpoint is under
//! `.invalid` (RFC 6761): it is never contacted — the refusal comes first.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use datashare_dr::sim;

const STORAGE_KEYS: [&str; 4] = [
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__credential",
];

fn datashare_dr(args: &[&str], config: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_datashare-dr"));
    cmd.args(args).arg("--config").arg(config);
    for k in STORAGE_KEYS {
        cmd.env_remove(k);
    }
    cmd.env_remove("DR_CONFIG_PATH")
        .env_remove("ARM_ENDPOINT")
        .env_remove("ARM_AUTH");
    cmd
}

async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run the CLI"))
        .await
        .expect("CLI thread")
}

#[tokio::test]
async fn writes_against_a_real_endpoint_need_the_run_store_and_local_runs_anyway_with_a_warning() {
    let (sim, estate) = support::estate::populated(1, 1, 1, 3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let loopback = sim::write_config(&estate, &sim.base_url);
    let remote = loopback
        .replace(
            &format!("endpoint = \"{}\"", sim.base_url),
            "endpoint = \"https://dsdr-never-contacted.invalid\"",
        )
        .replace("auth = \"static-token\"", "auth = \"azure-cli\"")
        .lines()
        .filter(|l| !l.starts_with("token = "))
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(remote, loopback, "the endpoint was replaced");
    let remote_path = dir.path().join("remote.toml");
    std::fs::write(&remote_path, &remote).expect("write");
    let local_path = dir.path().join("local.toml");
    std::fs::write(&local_path, &loopback).expect("write");

    for args in [
        vec!["replicate"],
        vec!["failover", "start", "--pair", estate.pair_name.as_str()],
    ] {
        let started = Instant::now();
        let out = run(datashare_dr(&args, &remote_path)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains("not a loopback endpoint"), "{stderr}");
        assert!(stderr.contains("AzureWebJobsStorage"), "{stderr}");
        assert!(stderr.contains("--local"), "{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} refused at once"
        );
    }

    // --local runs in this process (against the simulator here) and says what it gives up.
    let before = sim.requests().len();
    let out = run(datashare_dr(&["replicate", "--local"], &local_path)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: --local") && stderr.contains("no lock is taken"),
        "{stderr}"
    );
    assert!(sim.requests().len() > before, "--local did replicate");

    // Loopback without storage keeps today's in-process behaviour, without a warning.
    let out = run(datashare_dr(&["replicate"], &local_path)).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // plan without storage: read-only, warns that the pair state is unknown.
    let out = run(datashare_dr(&["plan", "--json"], &local_path)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("pair state unknown"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["pairs"][0]["paused"], false, "{v}");
    assert!(v["pairs"][0]["state"].is_null(), "{v}");

    // check without storage: read-only, the same warning; the reports carry `pairState: null`.
    let out = run(datashare_dr(&["check", "--json"], &local_path)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: pair state unknown (no storage settings: AzureWebJobsStorage"),
        "{stderr}"
    );
    assert!(
        stderr.contains("readiness is checked as if every pair were normal"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let report = &v[0];
    assert!(
        report["pairState"].is_null() && report.get("pairState").is_some(),
        "{v}"
    );
    assert_eq!(report["activeRuns"], serde_json::json!([]), "{v}");
    assert!(matches!(out.status.code(), Some(0..=2)), "{stderr}");
}
