//! `datashare-dr failover start|status|approve|cancel` as a runbook runs them: the real binary
//! against the simulator, with exit codes and output checked.
//!
//! - Without storage settings `start` runs the whole run in its own process (in-memory run store,
//!   in-process queue): a drill and a failover complete and exit 0; `--dry-run` writes nothing;
//!   a bad `--mode` or `--pair` is a usage error (64) naming the flag; `status` without storage
//!   is a usage error naming the setting.
//! - With storage (Azurite through `AzureWebJobsStorage`, when `scripts/test` provides it)
//!   `start` records the run and enqueues `preflight` for the Functions app: a second start is
//!   refused (exit 1, naming the active run), `status` reads the run, `approve` of a run that
//!   needs none is refused (1), `cancel` records the request (0), an unknown run id is 1.
//!
//! Every child is bounded in time and killed by its own handle when it overruns.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use datashare_dr::config::dr::DrConfig;
use datashare_dr::sim::{self, SimHandle};
use serde_json::Value;
use support::azurite::{azurite, unique_name};

const BOUND: Duration = Duration::from_secs(90);

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs the binary with `args`, the storage setting only when given, and waits (async, so the
/// in-process simulator keeps serving) up to [`BOUND`].
async fn cli(args: &[&str], storage: Option<&str>) -> Ran {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_datashare-dr"));
    cmd.args(args)
        .env_remove("AzureWebJobsStorage")
        .env_remove("AzureWebJobsStorage__blobServiceUri")
        .env_remove("AzureWebJobsStorage__queueServiceUri")
        .env_remove("DR_CONFIG_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(s) = storage {
        cmd.env("AzureWebJobsStorage", s);
    }
    let child = cmd.spawn().expect("start datashare-dr");
    let out = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not end within {BOUND:?}"))
        .expect("wait for datashare-dr");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

struct World {
    sim: SimHandle,
    pair: String,
    _file: tempfile::NamedTempFile,
    config: String,
}

/// A populated, replicated estate and its DR config in a file; the pair renamed to `pair`.
async fn world(pair: &str) -> World {
    let (sim, estate) = support::estate::populated(2, 2, 2, 23).await;
    let text = sim::write_config(&estate, &sim.base_url).replace(
        &format!("name = \"{}\"", estate.pair_name),
        &format!("name = \"{pair}\""),
    );
    let cfg = DrConfig::from_toml_str(&text, "cli.toml").expect("config");
    assert_eq!(cfg.pairs[0].name, pair, "the pair was renamed");
    let _arm = support::estate::bootstrap(&sim, &cfg, &cfg.pairs[0]).await;
    let file = tempfile::Builder::new()
        .prefix("dsdr-failover-cli-")
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), &text).expect("write config");
    let config = path_str(file.path());
    World {
        sim,
        pair: pair.to_owned(),
        _file: file,
        config,
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_storage_start_runs_a_drill_and_a_failover_in_process() {
    let w = world("cli-local").await;
    let base = [
        "failover", "start", "--config", &w.config, "--pair", &w.pair,
    ];

    // Dry run: the stage plan, nothing written.
    w.sim.reset_counters();
    let dry = cli(
        &[&base[..], &["--mode", "failover", "--dry-run"]].concat(),
        None,
    )
    .await;
    assert_eq!(dry.code, Some(0), "stderr:\n{}", dry.stderr);
    assert!(dry.stdout.contains("preflight"), "{}", dry.stdout);
    assert!(dry.stdout.contains("invite-consumers"), "{}", dry.stdout);
    // The dry run reads (its preview: readiness, whom it would invite), and some Data Share
    // list operations are POSTs that ARM counts in its write bucket: count real writes.
    let written: Vec<String> = w
        .sim
        .requests()
        .into_iter()
        .filter(|r| matches!(r.method.as_str(), "PUT" | "PATCH" | "DELETE"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(written, Vec::<String>::new(), "a dry run writes nothing");
    assert!(
        dry.stdout.contains("preflight readiness:"),
        "the failover dry run shows its preflight readiness: {}",
        dry.stdout
    );

    // A drill, JSON: completed, cleaned up.
    let drill = cli(&[&base[..], &["--mode", "drill", "--json"]].concat(), None).await;
    assert_eq!(drill.code, Some(0), "stderr:\n{}", drill.stderr);
    let run = drill.json();
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(run["mode"], "drill");
    assert_eq!(run["pair"], w.pair.as_str());
    let stages: Vec<&str> = run["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert!(stages.contains(&"cleanup"), "{stages:?}");
    let artefacts = run["drillArtefacts"]
        .as_array()
        .unwrap_or_else(|| panic!("the drill recorded what it created: {run:#}"));
    assert!(!artefacts.is_empty(), "{run:#}");
    assert!(
        artefacts.iter().all(|x| x["removed"] == true),
        "every drill artefact removed: {run:#}"
    );

    // A failover, readable output.
    let fo = cli(
        &[&base[..], &["--mode", "failover", "--reason", "cli test"]].concat(),
        None,
    )
    .await;
    assert_eq!(
        fo.code,
        Some(0),
        "stderr:\n{}\nstdout:\n{}",
        fo.stderr,
        fo.stdout
    );
    assert!(
        fo.stdout
            .lines()
            .next()
            .is_some_and(|l| l.contains("failover of pair cli-local: succeeded")),
        "{}",
        fo.stdout
    );
    assert!(fo.stdout.contains("RTO:"), "{}", fo.stdout);
    assert!(fo.stderr.contains("in-memory run store"), "{}", fo.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_usage_errors_naming_what_is_wrong() {
    let w = world("cli-usage").await;
    let base = ["failover", "start", "--config", &w.config];
    let mode = cli(
        &[&base[..], &["--pair", &w.pair, "--mode", "sideways"]].concat(),
        None,
    )
    .await;
    assert_eq!(mode.code, Some(64), "{}", mode.stderr);
    assert!(mode.stderr.contains("--mode"), "{}", mode.stderr);
    let pair = cli(&[&base[..], &["--pair", "no-such-pair"]].concat(), None).await;
    assert_eq!(pair.code, Some(64), "{}", pair.stderr);
    assert!(pair.stderr.contains("--pair"), "{}", pair.stderr);
    assert!(pair.stderr.contains("no-such-pair"), "{}", pair.stderr);
    let missing = cli(
        &[
            "failover",
            "start",
            "--config",
            "/nonexistent/dr.toml",
            "--pair",
            "x",
        ],
        None,
    )
    .await;
    assert_eq!(missing.code, Some(64), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("/nonexistent/dr.toml"),
        "{}",
        missing.stderr
    );
    let status = cli(&["failover", "status", "--config", &w.config, "r-1"], None).await;
    assert_eq!(status.code, Some(64), "{}", status.stderr);
    assert!(
        status.stderr.contains("AzureWebJobsStorage"),
        "{}",
        status.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_storage_start_enqueues_and_status_approve_cancel_work_on_the_run() {
    let test = "with_storage_start_enqueues_and_status_approve_cancel_work_on_the_run";
    let Some(az) = azurite(test) else {
        return;
    };
    let storage = Some(az.connection_string.as_str());
    // A pair name of its own: the run store is the app's container, shared in Azurite.
    let pair = unique_name("cli");
    let w = world(&pair).await;
    let base = [
        "failover", "start", "--config", &w.config, "--pair", &w.pair,
    ];

    let first = cli(
        &[&base[..], &["--mode", "drill", "--json"]].concat(),
        storage,
    )
    .await;
    assert_eq!(first.code, Some(0), "stderr:\n{}", first.stderr);
    let run = first.json();
    let run_id = run["runId"].as_str().expect("runId").to_owned();
    assert_eq!(run["pair"], pair.as_str());
    assert!(
        !["succeeded", "failed", "cancelled"].contains(&run["status"].as_str().unwrap_or("")),
        "started, not run here: {run:#}"
    );

    let second = cli(&[&base[..], &["--mode", "drill"]].concat(), storage).await;
    assert_eq!(second.code, Some(1), "{}", second.stderr);
    assert!(
        second.stderr.contains(&run_id),
        "names the active run: {}",
        second.stderr
    );

    let status = cli(
        &[
            "failover", "status", "--config", &w.config, &run_id, "--json",
        ],
        storage,
    )
    .await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert_eq!(status.json()["runId"], run_id.as_str());

    let approve = cli(
        &["failover", "approve", "--config", &w.config, &run_id],
        storage,
    )
    .await;
    assert_eq!(approve.code, Some(1), "{}", approve.stderr);
    assert!(
        approve.stderr.contains("does not need approval"),
        "{}",
        approve.stderr
    );

    let cancel = cli(
        &[
            "failover", "cancel", "--config", &w.config, &run_id, "--json",
        ],
        storage,
    )
    .await;
    assert_eq!(cancel.code, Some(0), "{}", cancel.stderr);
    let cancelled = cancel.json();
    assert!(
        cancelled["cancelRequested"] == true || cancelled["status"] == "cancelled",
        "{cancelled:#}"
    );

    let unknown = cli(
        &[
            "failover",
            "status",
            "--config",
            &w.config,
            "r-does-not-exist",
        ],
        storage,
    )
    .await;
    assert_eq!(unknown.code, Some(1), "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("r-does-not-exist"),
        "{}",
        unknown.stderr
    );
    // No Functions app runs here: take the run's preflight message off the shared queue.
    az.remove_stage_messages(&[run_id].into()).await;
}

/// Writes a run record straight into the app's run store (no lock, no stage message).
async fn put_run(
    blobs: &dyn datashare_dr::store::BlobStore,
    id: &str,
    pair: &str,
    mode: datashare_dr::failover::stages::Mode,
    at: time::OffsetDateTime,
    change: impl FnOnce(&mut datashare_dr::failover::run::RunRecord),
) {
    use datashare_dr::failover::run::{RunRecord, Trigger, save_run};
    use datashare_dr::failover::stages::{Policy, Role};
    let mut run = RunRecord::new(
        id.into(),
        pair.into(),
        mode,
        Policy {
            role: Role::Provider,
            approval_required: true,
        },
        false,
        Trigger {
            kind: "alert".into(),
            reason: "region down".into(),
            at,
            ..Trigger::default()
        },
        at,
    );
    change(&mut run);
    save_run(blobs, &run, None).await.expect("write the run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_storage_list_shows_runs_newest_first_and_approve_and_cancel_record_why() {
    use datashare_dr::failover::run::RunStatus;
    use datashare_dr::failover::stages::Mode;
    use time::macros::datetime;
    let test = "with_storage_list_shows_runs_newest_first_and_approve_and_cancel_record_why";
    let Some(az) = azurite(test) else {
        return;
    };
    let storage = Some(az.connection_string.as_str());
    let pair = unique_name("cli-list");
    let w = world(&pair).await;
    let blobs =
        datashare_dr::store::AzureBlobStore::new(&az.settings, datashare_dr::store::CONTAINER)
            .expect("run store");
    datashare_dr::store::BlobStore::ensure_container(&blobs)
        .await
        .expect("container");
    // Three runs of this pair, written oldest last: a finished failover with its RTO, a
    // cancelled drill, and the newest, pending approval.
    let (old, mid, new) = (
        format!("{pair}-1"),
        format!("{pair}-2"),
        format!("{pair}-3"),
    );
    put_run(
        &blobs,
        &new,
        &pair,
        Mode::Failover,
        datetime!(2026-03-03 10:00 UTC),
        |_| {},
    )
    .await;
    put_run(
        &blobs,
        &old,
        &pair,
        Mode::Failover,
        datetime!(2026-03-01 10:00 UTC),
        |r| {
            r.status = RunStatus::Succeeded;
            r.rto_secs = Some(42.5);
        },
    )
    .await;
    put_run(
        &blobs,
        &mid,
        &pair,
        Mode::Drill,
        datetime!(2026-03-02 10:00 UTC),
        |r| {
            r.status = RunStatus::Cancelled;
        },
    )
    .await;

    // Human list: header, then newest first with mode, status, trigger and RTO.
    let list = cli(
        &["failover", "list", "--config", &w.config, "--pair", &pair],
        storage,
    )
    .await;
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", list.stdout);
    for h in ["RUN", "PAIR", "MODE", "STATUS", "TRIGGER", "CREATED", "RTO"] {
        assert!(lines[0].contains(h), "header names {h}: {}", lines[0]);
    }
    assert!(
        lines[1].starts_with(&new) && lines[1].contains("pending"),
        "{}",
        list.stdout
    );
    assert!(
        lines[2].starts_with(&mid) && lines[2].contains("drill"),
        "{}",
        list.stdout
    );
    assert!(lines[2].contains("cancelled"), "{}", list.stdout);
    assert!(
        lines[3].starts_with(&old) && lines[3].contains("succeeded"),
        "{}",
        list.stdout
    );
    assert!(lines[3].contains("42.5 s"), "RTO: {}", lines[3]);
    assert!(
        lines[3].contains("alert (region down)"),
        "trigger: {}",
        lines[3]
    );

    // JSON: the same order, camelCase keys.
    let json = cli(
        &[
            "failover", "list", "--config", &w.config, "--pair", &pair, "--json",
        ],
        storage,
    )
    .await;
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let v = json.json();
    let ids: Vec<&str> = v
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|r| r["runId"].as_str())
        .collect();
    assert_eq!(ids, [new.as_str(), mid.as_str(), old.as_str()], "{v:#}");
    assert_eq!(v[2]["rtoSecs"], 42.5, "{v:#}");
    assert_eq!(v[1]["mode"], "drill", "{v:#}");
    assert_eq!(v[2]["trigger"]["kind"], "alert", "{v:#}");
    // Without --pair: every pair's runs, ours still newest first among them.
    let all = cli(&["failover", "list", "--config", &w.config], storage).await;
    assert_eq!(all.code, Some(0), "{}", all.stderr);
    let at = |id: &str| all.stdout.find(id).unwrap_or_else(|| panic!("{id} listed"));
    assert!(at(&new) < at(&mid) && at(&mid) < at(&old), "{}", all.stdout);
    // A pair not in the config, and no storage: usage errors naming what is wrong.
    let bad = cli(
        &[
            "failover",
            "list",
            "--config",
            &w.config,
            "--pair",
            "no-such-pair",
        ],
        storage,
    )
    .await;
    assert_eq!(bad.code, Some(64), "{}", bad.stderr);
    assert!(bad.stderr.contains("no-such-pair"), "{}", bad.stderr);
    let nostore = cli(&["failover", "list", "--config", &w.config], None).await;
    assert_eq!(nostore.code, Some(64), "{}", nostore.stderr);
    assert!(
        nostore.stderr.contains("AzureWebJobsStorage"),
        "{}",
        nostore.stderr
    );

    // approve --reason: prints the new state; the reason is stored on the approval.
    let approve = cli(
        &[
            "failover",
            "approve",
            "--config",
            &w.config,
            &new,
            "--reason",
            "bridge call agreed",
        ],
        storage,
    )
    .await;
    assert_eq!(approve.code, Some(0), "{}", approve.stderr);
    let first = approve.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "approved run {new} (failover of pair {pair}) by cli:"
        )) && first.contains("now pending, next stage preflight"),
        "{}",
        approve.stdout
    );
    assert!(
        approve.stdout.contains("reason: bridge call agreed"),
        "{}",
        approve.stdout
    );
    let status = cli(
        &["failover", "status", "--config", &w.config, &new, "--json"],
        storage,
    )
    .await;
    assert_eq!(status.json()["approval"]["reason"], "bridge call agreed");

    // cancel --reason of the pending run: says what it cancelled, no `error:`.
    let cancel = cli(
        &[
            "failover",
            "cancel",
            "--config",
            &w.config,
            &new,
            "--reason",
            "false alarm",
        ],
        storage,
    )
    .await;
    assert_eq!(cancel.code, Some(0), "{}", cancel.stderr);
    assert!(
        cancel.stdout.starts_with(&format!(
            "cancelled run {new} (failover of pair {pair}) by cli:"
        )),
        "{}",
        cancel.stdout
    );
    assert!(
        cancel.stdout.contains("before stage preflight"),
        "{}",
        cancel.stdout
    );
    assert!(
        cancel.stdout.contains("reason: false alarm"),
        "{}",
        cancel.stdout
    );
    assert!(
        !cancel.stdout.contains("error:") && !cancel.stderr.contains("error:"),
        "a cancellation is not an error:\n{}\n{}",
        cancel.stdout,
        cancel.stderr
    );
    let status = cli(
        &["failover", "status", "--config", &w.config, &new, "--json"],
        storage,
    )
    .await;
    let run = status.json();
    assert_eq!(run["status"], "cancelled", "{run:#}");
    assert_eq!(run["cancellation"]["reason"], "false alarm", "{run:#}");
    assert_eq!(run["cancellation"]["stage"], "preflight", "{run:#}");
}
