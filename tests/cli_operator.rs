//! The command line as a new operator meets it: the real binary, its exit codes and output.
//!
//! - Progress: at a terminal (stdout and stderr both terminals, through a pseudo-terminal made
//!   by python3's `pty` module) `plan`, `check`, `replicate` and `failover start` show what they
//!   read and how far they got on stderr; with pipes, with only one of the two a terminal, or
//!   with `--json`, nothing of it is written.
//! - `check --html FILE` writes exactly the page `ReadinessStatus` serves for the same reports.
//! - Usage errors: a mistyped subcommand, flag or benchmark name gets a suggestion and exit 64;
//!   `--config` naming a file that cannot be read says why (the OS reason), exit 64.
//!
//! Every child is bounded in time and killed by its own handle when it overruns; the simulator
//! listens on a free loopback port.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use datashare_dr::readiness::api;
use datashare_dr::readiness::report::Report;
use datashare_dr::sim::{self, FaultSettings, SimHandle};

const BOUND: Duration = Duration::from_secs(120);
const BIN: &str = env!("CARGO_BIN_EXE_datashare-dr");

/// Runs `cmd` with its stdout and/or stderr on a pseudo-terminal (`mode`: `both`, `stdout`,
/// `stderr`, `none`) and prints `{code, tty, stdout, stderr}` as JSON: `tty` is what reached the
/// terminal, `stdout`/`stderr` what reached the pipes.
const PTY_DRIVER: &str = r#"
import json, os, pty, subprocess, sys, threading
mode, cmd = sys.argv[1], sys.argv[2:]
master, slave = pty.openpty()
out = slave if mode in ("both", "stdout") else subprocess.PIPE
err = slave if mode in ("both", "stderr") else subprocess.PIPE
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
os.close(slave)
chunks = []
def pump():
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
t = threading.Thread(target=pump, daemon=True)
t.start()
try:
    o, e = p.communicate(timeout=100)
except subprocess.TimeoutExpired:
    p.kill()
    p.communicate()
    print(json.dumps({"timeout": True}))
    sys.exit(3)
t.join(timeout=10)
d = lambda b: (b or b"").decode("utf-8", "replace")
print(json.dumps({"code": p.returncode, "tty": d(b"".join(chunks)), "stdout": d(o), "stderr": d(e)}))
"#;

#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    tty: String,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args`; `mode` says which of stdout/stderr are a terminal.
async fn run(mode: &str, args: &[&str]) -> Ran {
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg("-c")
        .arg(PTY_DRIVER)
        .arg(mode)
        .arg(BIN)
        .args(args)
        .env_remove("ARM_ENDPOINT")
        .env_remove("ARM_AUTH")
        .env_remove("DR_CONFIG_PATH")
        .env_remove("AzureWebJobsStorage")
        .env_remove("AzureWebJobsStorage__blobServiceUri")
        .env_remove("AzureWebJobsStorage__queueServiceUri")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .expect("start python3 (the pseudo-terminal driver)");
    let out = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not end within {BOUND:?}"))
        .expect("wait for the driver");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "the pty driver's answer is not JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        v["timeout"].is_null(),
        "{args:?} timed out in the pty driver"
    );
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Ran {
        code: v["code"].as_i64().map(|c| c as i32),
        tty: s("tty"),
        stdout: s("stdout"),
        stderr: s("stderr"),
    }
}

/// What progress writes (any of these on a stream means progress reached it).
const PROGRESS_MARKS: [&str; 4] = ["ARM reads", "stages done", "checking pair", "\x1b[K"];

fn has_progress(text: &str) -> bool {
    PROGRESS_MARKS.iter().any(|m| text.contains(m))
}

struct World {
    sim: SimHandle,
    pair: String,
    _dir: tempfile::TempDir,
    config: String,
}

/// A populated primary (not yet replicated) and its DR config in a file; the simulator answers
/// every request after `latency_ms`.
async fn world(latency_ms: u64) -> World {
    let (sim, estate) = support::estate::populated(3, 2, 1, 31).await;
    sim.set_faults(&FaultSettings {
        latency_ms: Some(latency_ms),
        ..FaultSettings::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dr-config.toml");
    std::fs::write(&path, sim::write_config(&estate, &sim.base_url)).expect("write config");
    World {
        sim,
        pair: estate.pair_name.clone(),
        config: path_str(&path),
        _dir: dir,
    }
}

/// Stderr without the one warning `plan` and `check` must print when no storage settings are
/// given (the pair state cannot be read): that line is not progress and shows at a pipe too.
fn beyond_state_warning(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("warning: pair state unknown"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_shown_at_a_terminal_and_nowhere_else() {
    let w = world(20).await;
    let c = w.config.as_str();
    let pair = w.pair.as_str();

    // plan at a terminal: the read phase, then the closing line; the plan itself still printed.
    let plan = run("both", &["plan", "--config", c]).await;
    assert_eq!(plan.code, Some(0), "{plan:?}");
    assert!(
        plan.tty.contains(&format!(
            "planning {pair}: reading primary and secondary share configuration ("
        )),
        "the read phase is shown: {:?}",
        plan.tty
    );
    assert!(
        plan.tty.contains("changes planned (") && plan.tty.contains("ARM reads"),
        "the closing line counts: {:?}",
        plan.tty
    );
    assert_eq!(w.sim.stats().writes, 0, "plan writes nothing");

    // With pipes: the same command writes nothing to stderr.
    let piped = run("none", &["plan", "--config", c]).await;
    assert_eq!(piped.code, Some(0), "{piped:?}");
    assert_eq!(
        beyond_state_warning(&piped.stderr),
        "",
        "nothing extra on a piped stderr"
    );
    assert!(piped.stdout.contains(pair), "{piped:?}");
    // Only one of the two a terminal: nothing either.
    let err_only = run("stdout", &["plan", "--config", c]).await;
    assert_eq!(
        beyond_state_warning(&err_only.stderr),
        "",
        "stderr is a pipe: {err_only:?}"
    );
    assert!(!has_progress(&err_only.tty), "{err_only:?}");
    let out_only = run("stderr", &["plan", "--config", c]).await;
    assert!(
        !has_progress(&out_only.tty),
        "stdout is a pipe, so stderr stays quiet: {out_only:?}"
    );
    // --json at a terminal: nothing but the JSON.
    let json = run("both", &["plan", "--config", c, "--json"]).await;
    assert_eq!(json.code, Some(0), "{json:?}");
    assert!(
        !has_progress(&json.tty),
        "--json shows no progress: {json:?}"
    );

    // replicate at a terminal: read phase, then what was applied.
    let rep = run("both", &["replicate", "--config", c]).await;
    assert_eq!(rep.code, Some(0), "{rep:?}");
    assert!(
        rep.tty.contains(&format!(
            "replicating {pair}: reading primary and secondary"
        )),
        "{:?}",
        rep.tty
    );
    assert!(rep.tty.contains("applied ("), "{:?}", rep.tty);
    let rep_piped = run("none", &["replicate", "--config", c]).await;
    assert_eq!(rep_piped.code, Some(0), "{rep_piped:?}");
    assert_eq!(beyond_state_warning(&rep_piped.stderr), "", "{rep_piped:?}");

    // check at a terminal: which pair of how many, then the total.
    let check = run("both", &["check", "--config", c]).await;
    assert!(
        check.tty.contains(&format!(
            "checking pair {pair} (1/1): reading primary and secondary"
        )),
        "{:?}",
        check.tty
    );
    assert!(
        check.tty.contains("checked 1 pair(s) in "),
        "{:?}",
        check.tty
    );
    let check_piped = run("none", &["check", "--config", c]).await;
    assert_eq!(check_piped.code, check.code, "same verdict either way");
    assert_eq!(
        beyond_state_warning(&check_piped.stderr),
        "",
        "{check_piped:?}"
    );
    let check_json = run("both", &["check", "--config", c, "--json"]).await;
    assert!(!has_progress(&check_json.tty), "{check_json:?}");

    // failover start (in process, no storage): the running stage while it runs.
    let fo = [
        "failover", "start", "--config", c, "--pair", pair, "--mode", "drill",
    ];
    let start = run("both", &fo).await;
    assert_eq!(start.code, Some(0), "{start:?}");
    assert!(
        start.tty.contains("stages done"),
        "the running stage is shown: {:?}",
        start.tty
    );
    let start_piped = run("none", &fo).await;
    assert_eq!(start_piped.code, Some(0), "{start_piped:?}");
    assert!(
        !has_progress(&start_piped.stderr),
        "no progress on a piped stderr: {:?}",
        start_piped.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_html_writes_the_page_readiness_status_serves() {
    let w = world(0).await;
    // A second pair (one share of the same accounts), so the page of all pairs and the page of
    // one pair differ.
    let text = std::fs::read_to_string(&w.config).expect("config");
    let first = text.find("[[pairs]]").expect("a pair");
    let head: String = text[first..]
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("shares"))
        .filter(|l| !l.starts_with("name"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(
        &w.config,
        format!("{text}\n{head}\nname = \"pair-two\"\nshares = [\"share-000\"]\n"),
    )
    .expect("add a pair");
    let configured = [w.pair.clone(), "pair-two".to_owned()];
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("status.html");
    let page_s = path_str(&page);

    // All pairs: the file is the page `ReadinessStatus` answers for these very reports.
    let ran = run(
        "none",
        &["check", "--config", &w.config, "--json", "--html", &page_s],
    )
    .await;
    assert!(
        matches!(ran.code, Some(0..=2)),
        "a verdict, not an error: {ran:?}"
    );
    let reports: Vec<Report> = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("check --json ({e}): {}", ran.stdout));
    assert_eq!(reports.len(), 2, "both pairs checked");
    let written = std::fs::read_to_string(&page).expect("the status page was written");
    let served = api::respond(
        &configured,
        &reports,
        None,
        Some("text/html"),
        reports[0].checked_at,
    );
    assert_eq!(served.status, 200);
    assert_eq!(
        written, served.body,
        "check --html writes what ReadinessStatus serves"
    );
    assert!(written.contains(&w.pair), "the page names the pair");
    assert!(written.contains("pair-two"), "and the other pair");

    // One pair: that pair's page.
    let one = run(
        "none",
        &[
            "check", "--config", &w.config, "--pair", &w.pair, "--json", "--html", &page_s,
        ],
    )
    .await;
    let report: Report = serde_json::from_str(&one.stdout)
        .unwrap_or_else(|e| panic!("check --pair --json ({e}): {}", one.stdout));
    let served = api::respond(
        &configured,
        std::slice::from_ref(&report),
        Some(&w.pair),
        Some("text/html"),
        report.checked_at,
    );
    let one_page = std::fs::read_to_string(&page).expect("page");
    assert_eq!(one_page, served.body, "the pair's page");
    assert!(!one_page.contains("pair-two"), "only the pair asked for");

    // A path that cannot be written: a usage error before any read, with the OS reason.
    w.sim.reset_counters();
    let bad = run(
        "none",
        &[
            "check",
            "--config",
            &w.config,
            "--html",
            "/nonexistent-dir/status.html",
        ],
    )
    .await;
    assert_eq!(bad.code, Some(64), "{bad:?}");
    assert!(bad.stderr.contains("--html"), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("No such file or directory"),
        "{}",
        bad.stderr
    );
    assert_eq!(w.sim.stats().reads, 0, "nothing was read");
}

#[tokio::test]
async fn usage_errors_suggest_a_close_name_and_exit_64() {
    // A mistyped subcommand, top level and nested.
    let typo = run("none", &["replciate", "--config", "x.toml"]).await;
    assert_eq!(typo.code, Some(64), "{typo:?}");
    assert!(
        typo.stderr.contains("unrecognized subcommand 'replciate'"),
        "{}",
        typo.stderr
    );
    assert!(
        typo.stderr
            .contains("a similar subcommand exists: 'replicate'"),
        "{}",
        typo.stderr
    );
    let nested = run("none", &["failover", "aprove", "r-1"]).await;
    assert_eq!(nested.code, Some(64), "{nested:?}");
    assert!(
        nested
            .stderr
            .contains("a similar subcommand exists: 'approve'"),
        "{}",
        nested.stderr
    );
    // A mistyped flag.
    let flag = run("none", &["plan", "--config", "x.toml", "--jsno"]).await;
    assert_eq!(flag.code, Some(64), "{flag:?}");
    assert!(
        flag.stderr.contains("a similar argument exists: '--json'"),
        "{}",
        flag.stderr
    );
    // Nothing close: no made-up suggestion, still a usage error.
    let far = run("none", &["xyzzy"]).await;
    assert_eq!(far.code, Some(64), "{far:?}");
    assert!(!far.stderr.contains("similar"), "{}", far.stderr);

    // An unknown benchmark is a usage error like the others (64, not 1), naming the choices.
    let bench = run("none", &["bench", "nope"]).await;
    assert_eq!(bench.code, Some(64), "{bench:?}");
    assert!(bench.stderr.contains("'nope'"), "{}", bench.stderr);
    assert!(bench.stderr.contains("cold-start"), "{}", bench.stderr);
    let close = run("none", &["bench", "readines", "--quick"]).await;
    assert_eq!(close.code, Some(64), "{close:?}");
    assert!(
        close.stderr.contains("a similar value exists: 'readiness'"),
        "{}",
        close.stderr
    );
}

#[tokio::test]
async fn a_config_that_cannot_be_read_is_named_with_the_os_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = path_str(&dir.path().join("nope.toml"));
    for args in [
        vec!["check", "--config", missing.as_str()],
        vec!["plan", "--config", missing.as_str()],
        vec!["replicate", "--config", missing.as_str()],
        vec![
            "failover",
            "start",
            "--config",
            missing.as_str(),
            "--pair",
            "p",
        ],
        vec!["failover", "list", "--config", missing.as_str()],
    ] {
        let r = run("none", &args).await;
        assert_eq!(r.code, Some(64), "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "cannot read DR config {missing}: No such file or directory"
            )),
            "{args:?} names the file and why: {}",
            r.stderr
        );
    }
    // A directory is not a file either; the OS says so.
    let dir_s = path_str(dir.path());
    let r = run("none", &["plan", "--config", &dir_s]).await;
    assert_eq!(r.code, Some(64), "{r:?}");
    assert!(r.stderr.contains("Is a directory"), "{}", r.stderr);
}
