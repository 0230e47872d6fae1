//! Our own faults are not region outages (issue 13): with the simulator answering 401 for the
//! tool's token (a token it never issued: `InvalidAuthenticationToken`, as ARM answers an
//! expired one) and with `[arm].endpoint` on a closed loopback port, readiness is `Unknown`,
//! `check` exits 3 and nothing suggests a failover; a run's preflight fails with the fault;
//! `CheckReadiness` stores `Unknown` and notifies once. A real regional outage (simulator
//! `region_down`) is still reported as unreachable. Region names are validated at load.
//!
//! Every server listens on a free loopback port; child processes are bounded in time.

mod support;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use datashare_dr::arm::client::ArmClient;
use datashare_dr::config::Config;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::failover::exec::StageMessage;
use datashare_dr::failover::run::{RunStatus, require_run};
use datashare_dr::failover::start::{StartRequest, start_run};
use datashare_dr::failover::{Mode, Outcome, Stage, run_one_stage};
use datashare_dr::host::InvocationResponse;
use datashare_dr::readiness::arm_reader::{ArmReader, arm_client_from_config};
use datashare_dr::readiness::check::check_pair;
use datashare_dr::readiness::{Report, Status, codes, history};
use datashare_dr::sim::{self, Estate, SimHandle};
use datashare_dr::startup::{AppState, AppStorage};
use serde_json::Value;
use support::app::{payload, spawn_app_with_state};
use time::OffsetDateTime;

const BIN: &str = env!("CARGO_BIN_EXE_datashare-dr");
const BOUND: Duration = Duration::from_secs(120);

struct World {
    sim: SimHandle,
    estate: Estate,
    /// The generated DR config (good token, the simulator's endpoint).
    toml: String,
}

/// A replicated pair: Ready while the tool's credentials and endpoint are right.
async fn world() -> World {
    let (sim, estate) = support::estate::populated(2, 2, 1, 13).await;
    let toml = sim::write_config(&estate, &sim.base_url);
    let cfg = DrConfig::from_toml_str(&toml, "sim.toml").expect("generated config loads");
    support::estate::bootstrap(&sim, &cfg, &cfg.pairs[0]).await;
    World { sim, estate, toml }
}

/// The config with a token the simulator never issued: every call is 401.
fn with_expired_token(w: &World) -> String {
    let good = format!("token = \"{}\"", w.estate.admin_token);
    assert!(w.toml.contains(&good), "the generated config has {good}");
    w.toml.replace(&good, "token = \"expired-token\"")
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The config with `[arm].endpoint` on a closed loopback port and a short call deadline.
fn with_closed_endpoint(w: &World) -> String {
    let base = format!("endpoint = \"{}\"", w.sim.base_url);
    assert!(w.toml.contains(&base), "the generated config has {base}");
    w.toml
        .replace(
            &base,
            &format!("endpoint = \"http://127.0.0.1:{}/\"", closed_port()),
        )
        .replace("deadline_secs = 60", "deadline_secs = 3")
}

fn load(toml: &str) -> DrConfig {
    DrConfig::from_toml_str(toml, "sim.toml").expect("config loads")
}

async fn readiness(toml: &str) -> Report {
    let cfg = load(toml);
    let client: ArmClient = arm_client_from_config(&cfg).expect("client");
    let reader = ArmReader {
        client: &client,
        concurrency: 8,
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        check_pair(
            &reader,
            &cfg,
            &cfg.pairs[0],
            OffsetDateTime::now_utc(),
            None,
        ),
    )
    .await
    .expect("check finishes")
}

/// No finding of the report suggests or mentions a failover.
fn assert_no_failover_remedy(report: &Report) {
    for f in &report.findings {
        let text = format!("{} {}", f.message, f.remedy).to_ascii_lowercase();
        assert!(
            !text.contains("failover") && !text.contains("fail over"),
            "a tool fault must not suggest a failover: {f:#?}"
        );
    }
}

#[tokio::test]
async fn an_expired_token_is_unknown_with_the_credential_fix_and_no_failover() {
    let w = world().await;
    let before = w.sim.requests().len();
    let report = readiness(&with_expired_token(&w)).await;
    assert_eq!(report.status, Status::Unknown, "{:#?}", report.findings);
    assert_eq!(report.status.exit_code(), 3);
    assert!(!report.findings.is_empty());
    for f in &report.findings {
        assert_eq!(f.code, codes::TOOL_FAULT, "{f:#?}");
        assert!(f.message.contains("authentication"), "{f:#?}");
        assert!(f.message.contains("401"), "names the answer: {f:#?}");
        assert!(f.remedy.contains("refresh the credential"), "{f:#?}");
    }
    assert!(!report.has(codes::PRIMARY_UNREACHABLE));
    assert!(!report.has(codes::SECONDARY_UNREACHABLE));
    assert_no_failover_remedy(&report);
    // The simulator saw the calls and rejected each with 401.
    let log = w.sim.requests()[before..].to_vec();
    assert!(!log.is_empty());
    assert!(log.iter().all(|r| r.status == 401), "{log:#?}");
    w.sim.shutdown().await;
}

#[tokio::test]
async fn a_closed_endpoint_port_is_unknown_with_the_endpoint_fix_and_no_failover() {
    let w = world().await;
    let report = readiness(&with_closed_endpoint(&w)).await;
    assert_eq!(report.status, Status::Unknown, "{:#?}", report.findings);
    assert!(report.has(codes::TOOL_FAULT), "{:#?}", report.findings);
    for f in &report.findings {
        assert!(f.message.contains("configuration"), "{f:#?}");
        assert!(f.remedy.contains("check `[arm].endpoint`"), "{f:#?}");
    }
    assert_no_failover_remedy(&report);
    w.sim.shutdown().await;
}

#[tokio::test]
async fn a_region_outage_is_still_reported_as_unreachable() {
    let w = world().await;
    let cfg = load(&w.toml);
    w.sim.region_down(&cfg.pairs[0].primary_region);
    let report = readiness(&w.toml).await;
    assert!(
        report.has(codes::PRIMARY_UNREACHABLE),
        "{:#?}",
        report.findings
    );
    assert_eq!(report.status, Status::Degraded, "{:#?}", report.findings);
    let f = report
        .findings
        .iter()
        .find(|f| f.code == codes::PRIMARY_UNREACHABLE)
        .expect("finding");
    assert!(f.remedy.contains("failover start"), "{f:#?}");

    w.sim.region_up(&cfg.pairs[0].primary_region);
    w.sim.region_down(&cfg.pairs[0].secondary_region);
    let report = readiness(&w.toml).await;
    assert!(
        report.has(codes::SECONDARY_UNREACHABLE),
        "{:#?}",
        report.findings
    );
    assert_eq!(report.status, Status::NotReady);
    w.sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// the CLI

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn cli(args: &[&str]) -> Ran {
    let child = tokio::process::Command::new(BIN)
        .args(args)
        .env_remove("ARM_ENDPOINT")
        .env_remove("ARM_AUTH")
        .env_remove("DR_CONFIG_PATH")
        .env_remove("AzureWebJobsStorage")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the binary");
    let out = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not end within {BOUND:?}"))
        .expect("wait");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write config");
    p.to_str().expect("utf-8 path").to_owned()
}

#[tokio::test]
async fn check_exits_3_for_a_tool_fault_and_2_for_a_secondary_outage() {
    let w = world().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, toml, fix) in [
        (
            "expired.toml",
            with_expired_token(&w),
            "refresh the credential",
        ),
        (
            "closed.toml",
            with_closed_endpoint(&w),
            "check `[arm].endpoint`",
        ),
    ] {
        let path = write(&dir, name, &toml);
        let ran = cli(&["check", "--config", &path, "--json"]).await;
        assert_eq!(ran.code, Some(3), "{name}: {}\n{}", ran.stdout, ran.stderr);
        let reports: Vec<Report> = serde_json::from_str(&ran.stdout)
            .unwrap_or_else(|e| panic!("{name}: JSON ({e}): {}", ran.stdout));
        assert!(
            reports.iter().all(|r| r.status == Status::Unknown),
            "{name}"
        );
        let v: Value = serde_json::from_str(&ran.stdout).expect("json");
        assert_eq!(v[0]["status"], "Unknown", "serialised as \"Unknown\"");
        assert!(ran.stdout.contains(fix), "{name}: {}", ran.stdout);
        let table = cli(&["check", "--config", &path]).await;
        assert_eq!(table.code, Some(3), "{name}");
        let lower = table.stdout.to_ascii_lowercase();
        assert!(
            !lower.contains("failover") && !lower.contains("fail over"),
            "{name}: no failover remedy: {}",
            table.stdout
        );
        assert!(table.stdout.contains("Unknown"), "{}", table.stdout);
    }
    // A real outage of the secondary: NotReady, exit 2, as before.
    let cfg = load(&w.toml);
    w.sim.region_down(&cfg.pairs[0].secondary_region);
    let path = write(&dir, "good.toml", &w.toml);
    let ran = cli(&["check", "--config", &path]).await;
    assert_eq!(ran.code, Some(2), "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains(codes::SECONDARY_UNREACHABLE),
        "{}",
        ran.stdout
    );
    w.sim.shutdown().await;
}

#[tokio::test]
async fn a_mistyped_region_exits_64_with_a_suggestion_and_a_display_name_is_accepted() {
    let w = world().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let primary = "primary_region = \"westeurope\"";
    assert!(w.toml.contains(primary), "{}", w.toml);
    let typo = write(
        &dir,
        "typo.toml",
        &w.toml.replace(primary, "primary_region = \"westeurop\""),
    );
    let reads = w.sim.stats().reads;
    let ran = cli(&["check", "--config", &typo]).await;
    assert_eq!(ran.code, Some(64), "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("did you mean \"westeurope\""),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("primary_region"),
        "names the key: {}",
        ran.stderr
    );
    assert_eq!(
        w.sim.stats().reads,
        reads,
        "nothing was read with a bad config"
    );

    let display = write(
        &dir,
        "display.toml",
        &w.toml.replace(primary, "primary_region = \"West Europe\""),
    );
    let ran = cli(&["check", "--config", &display, "--json"]).await;
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    let reports: Vec<Report> = serde_json::from_str(&ran.stdout).expect("json");
    assert_eq!(reports[0].primary_region, "westeurope");
    w.sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// a run's preflight

#[tokio::test]
async fn preflight_with_a_tool_fault_fails_the_run_with_the_finding_even_when_forced() {
    let w = world().await;
    let cfg = Arc::new(load(&with_expired_token(&w)));
    let arm = arm_client_from_config(&cfg).expect("client");
    let (ctx, queue) = datashare_dr::failover::runner::in_process(cfg.clone(), arm);
    let req = StartRequest {
        pair: cfg.pairs[0].name.clone(),
        mode: Mode::Failover,
        force: true,
        reason: "test".into(),
        caller: "test".into(),
    };
    let run = start_run(
        ctx.store.as_ref(),
        &queue,
        &cfg,
        &req,
        OffsetDateTime::now_utc(),
    )
    .await
    .expect("start");
    let before = w.sim.requests().len();
    let outcome = run_one_stage(&ctx, &StageMessage::new(&run.run_id, Stage::Preflight, 0))
        .await
        .expect("preflight answers");
    let Outcome::Abort(reason) = outcome else {
        panic!("preflight must stop the run, got {outcome:?}");
    };
    assert!(reason.contains("cannot be assessed"), "{reason}");
    assert!(reason.contains("refresh the credential"), "{reason}");
    let (stored, _) = require_run(ctx.store.as_ref(), &run.run_id)
        .await
        .expect("run");
    assert_eq!(stored.status, RunStatus::Failed);
    assert!(
        stored.findings.iter().any(|f| f.code == codes::TOOL_FAULT),
        "{:#?}",
        stored.findings
    );
    assert_ne!(
        stored.primary_reachable,
        Some(false),
        "the primary is not taken for down"
    );
    let writes = w.sim.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(writes, 0, "nothing was written");
    w.sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// CheckReadiness and ReadinessStatus (the handler, in-memory storage)

#[tokio::test]
async fn check_readiness_stores_unknown_and_notifies_once() {
    let w = world().await;
    let cfg = load(&with_expired_token(&w));
    let pair = cfg.pairs[0].name.clone();
    let storage = AppStorage::memory();
    let blobs = storage.blobs.clone();
    let app = spawn_app_with_state(
        AppState::new(Config::for_port(0), Some(cfg)).with_storage(storage.clone()),
    )
    .await;
    let mut notes = Vec::new();
    for _ in 0..3 {
        let (status, body) = app
            .invoke("CheckReadiness", &payload::timer("CheckReadiness", false))
            .await;
        assert_eq!(status, 200, "{body}");
        let r = InvocationResponse::parse(body.to_string().as_bytes(), &[]).expect("response");
        notes.extend(
            r.messages("notify")
                .iter()
                .map(|m| m.to_typed::<Value>().expect("notification JSON")),
        );
    }
    assert_eq!(
        notes.len(),
        1,
        "one notification over three ticks: {notes:#?}"
    );
    assert_eq!(notes[0]["newStatus"], "Unknown");
    assert_eq!(notes[0]["direction"], "unassessable");
    let latest = history::load_latest(blobs.as_ref(), &pair)
        .await
        .expect("load")
        .expect("a report");
    assert_eq!(latest.status, Status::Unknown);
    assert!(latest.has(codes::TOOL_FAULT));

    // ReadinessStatus: JSON says Unknown, the page shows it with its own class and words.
    let (status, body) = app
        .invoke(
            "ReadinessStatus",
            &payload::http(
                "ReadinessStatus",
                "GET",
                &format!("readiness/{pair}"),
                serde_json::json!({ "pair": pair }),
                None,
            ),
        )
        .await;
    assert_eq!(status, 200);
    let r = InvocationResponse::parse(body.to_string().as_bytes(), &["res"]).expect("response");
    let res = r.http_res().expect("res");
    let v: Value = serde_json::from_str(&res.body_text().unwrap_or_default()).expect("json");
    assert_eq!(v["status"], "Unknown");
    let page = datashare_dr::readiness::render_status_page(&[latest]);
    assert!(page.contains("class=\"pill Unknown\""), "{page}");
    assert!(page.contains(".pill.Unknown{background:var(--unknown)}"));
    assert!(page.contains("Cannot assess"), "{page}");
    w.sim.shutdown().await;
}

/// A refused connection on `[arm].endpoint` is a configuration fault, not a slow region: the
/// client gives up after a couple of attempts instead of retrying until `deadline_secs`, so
/// `check` exits 3 within seconds even with a five-minute call deadline.
#[tokio::test]
async fn check_against_a_refused_endpoint_exits_3_within_seconds_despite_a_long_deadline() {
    let w = world().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = with_closed_endpoint(&w).replace("deadline_secs = 3", "deadline_secs = 300");
    assert!(toml.contains("deadline_secs = 300"), "{toml}");
    let path = write(&dir, "closed-long.toml", &toml);
    let started = std::time::Instant::now();
    let ran = cli(&["check", "--config", &path, "--json"]).await;
    let took = started.elapsed();
    assert_eq!(ran.code, Some(3), "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        took < Duration::from_secs(4),
        "a refused endpoint must fail fast, took {took:?} (deadline_secs = 300)"
    );
    assert!(
        ran.stdout.contains("check `[arm].endpoint`"),
        "{}",
        ran.stdout
    );
    w.sim.shutdown().await;
}
