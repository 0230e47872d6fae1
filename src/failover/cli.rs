//! `datashare-dr failover start|status|approve|cancel` and `datashare-dr drill`.
//!
//! With storage settings (`AzureWebJobsStorage` or the identity-based
//! `AzureWebJobsStorage__blobServiceUri` / `__queueServiceUri`) the CLI works on the same
//! run store and queue as the Functions app: `start` enqueues `preflight` and the app's
//! `FailoverStage` runs the stages (`--wait` follows the run). Without them, `start` runs the
//! whole run in this process — in-memory run store, in-process queue, the same
//! `run_one_stage` loop — against the ARM endpoint of the DR config (e.g. the simulator).
//!
//! Exit codes: 0 the run succeeded (or was started / approved / cancelled as asked); 1 it
//! failed or was refused (409: another run is active); 64 usage or configuration errors.
//!
//! Must not import: handlers, host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};

use crate::cli::{
    DrillArgs, EXIT_USAGE, FailoverCommand, FailoverRunArgs, FailoverStartArgs, ResetStateArgs,
};
use crate::config::dr::DrConfig;
use crate::readiness::arm_reader::arm_client_from_config;
use crate::store::{self, BlobStore, MessageEncoding, Queue, StorageSettings};

use super::run::{RunRecord, RunStatus, StartError};
use super::runner::{RunnerOptions, Stopped, drive, in_process};
use super::stages::Mode;
use super::start::{self, StartRequest};

/// Storage from the app settings in the environment, when configured. host.json sets
/// `messageEncoding: none`, so messages are written as plain text.
/// A blob store and a queue service, shared.
pub type Stores = (Arc<dyn BlobStore>, Arc<dyn Queue>);

/// Storage from the app settings (see [`stores_from_env`]).
pub fn stores_from_env() -> Result<Option<Stores>, store::StoreError> {
    let Some(settings) = StorageSettings::from_app_settings(|k| std::env::var(k).ok())? else {
        return Ok(None);
    };
    let (blobs, queue) = store::azure::connect(&settings, store::CONTAINER, MessageEncoding::None)?;
    Ok(Some((Arc::new(blobs), Arc::new(queue))))
}

fn load_config(path: &std::path::Path) -> anyhow::Result<DrConfig> {
    DrConfig::load(path).map_err(|e| anyhow!("{e}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")
}

fn caller() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// `datashare-dr failover …`.
pub fn run_failover(cmd: &FailoverCommand) -> anyhow::Result<i32> {
    crate::startup::install_crypto_provider();
    match cmd {
        FailoverCommand::Start(a) => run_start(a),
        FailoverCommand::Status(a) => run_action(a, "status"),
        FailoverCommand::Approve(a) => run_action(a, "approve"),
        FailoverCommand::Cancel(a) => run_action(a, "cancel"),
        FailoverCommand::ResetState(a) => run_reset_state(a),
    }
}

/// `datashare-dr failover reset-state --config F --pair P --reason R`: clears the pair state
/// back to `normal` (primary serving), recording who and why on the pair state.
fn run_reset_state(a: &ResetStateArgs) -> anyhow::Result<i32> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(EXIT_USAGE);
        }
    };
    if let Err(e) = start::check_pair(&cfg, &a.pair) {
        eprintln!("error: --pair: {e}");
        return Ok(EXIT_USAGE);
    }
    if a.reason.trim().is_empty() {
        eprintln!("error: --reason must say why the state is cleared (it is recorded)");
        return Ok(EXIT_USAGE);
    }
    let rt = runtime()?;
    rt.block_on(async {
        let Some((blobs, _)) = stores_from_env().context("storage settings")? else {
            eprintln!(
                "error: `failover reset-state` needs the run store: set AzureWebJobsStorage (or \
                 AzureWebJobsStorage__blobServiceUri and __queueServiceUri)"
            );
            return Ok(EXIT_USAGE);
        };
        let now = time::OffsetDateTime::now_utc();
        let state =
            start::reset_pair_state(blobs.as_ref(), &a.pair, &caller(), &a.reason, now).await?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&state)?);
        } else {
            let last = state.resets.last();
            println!(
                "pair {} is normal (primary serving); cleared {} (run {}) — reason recorded: {}",
                a.pair,
                last.map_or("normal", |r| r.from_phase.as_str()),
                last.and_then(|r| r.from_run_id.as_deref())
                    .unwrap_or("none"),
                a.reason
            );
        }
        Ok(0)
    })
}

/// `datashare-dr drill`.
pub fn run_drill(args: &DrillArgs) -> anyhow::Result<i32> {
    super::drill::run_drill(args)
}

fn run_start(a: &FailoverStartArgs) -> anyhow::Result<i32> {
    let Some(mode) = Mode::parse(&a.mode) else {
        eprintln!(
            "error: --mode {:?} is not one of failover, drill, failback",
            a.mode
        );
        return Ok(EXIT_USAGE);
    };
    let cfg = match load_config(&a.config) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(EXIT_USAGE);
        }
    };
    if let Err(e) = start::check_pair(&cfg, &a.pair) {
        eprintln!("error: --pair: {e}");
        return Ok(EXIT_USAGE);
    }
    if a.dry_run {
        let mut plan = start::dry_run_plan(&cfg, &a.pair, mode)?;
        // Read-only, so it runs without the run store too (the pair state is then unknown).
        let rt = runtime()?;
        let arm = arm_client_from_config(&cfg).context("ARM client")?;
        let stores = stores_from_env().context("storage settings")?;
        plan.preview = Some(rt.block_on(super::preview::preview(
            &arm,
            stores.as_ref().map(|(b, _)| b.as_ref()),
            &cfg,
            &a.pair,
            mode,
            time::OffsetDateTime::now_utc(),
        ))?);
        if a.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            println!(
                "{mode} of pair {} would run (dry run, nothing written):",
                a.pair
            );
            for s in &plan.stages {
                println!("  {:<18} {}", s.stage.as_str(), s.description);
            }
            if let Some(p) = &plan.preview {
                if let Some(r) = &p.readiness {
                    println!("preflight readiness: {r} (score {})", p.score.unwrap_or(0));
                }
                if !p.preflight.is_empty() {
                    println!("preflight findings:");
                    for f in &p.preflight {
                        println!("  {:<8} {:<22} {}", f.severity, f.code, f.message);
                    }
                }
                if let Some(inv) = &p.would_invite {
                    println!("invite-consumers would invite {}:", inv.len());
                    for e in inv {
                        println!("  {} on share {}", e.target, e.share);
                    }
                }
                if let Some(text) = &p.changes_text {
                    println!("changes on the primary (secondary → primary):");
                    print!("{text}");
                }
            }
        }
        return Ok(0);
    }
    let req = StartRequest {
        pair: a.pair.clone(),
        mode,
        force: a.force,
        reason: a.reason.clone(),
        caller: caller(),
    };
    // A run against a real ARM endpoint needs the run store (pair state, lock); decided before
    // any network call. `--local` runs in this process anyway; loopback (the simulator) too.
    let stores = if a.local {
        eprintln!(
            "warning: --local: the run executes in this process: no lock is taken and no pair \
             state is read or written"
        );
        None
    } else {
        match stores_from_env() {
            Ok(Some(s)) => Some(s),
            Ok(None) if crate::arm::auth::is_loopback(&cfg.arm.endpoint) => None,
            Ok(None) => {
                eprintln!(
                    "error: `failover start` against {} (not a loopback endpoint) needs the run \
                     store to read the pair state and take the lock; missing settings: \
                     AzureWebJobsStorage (or AzureWebJobsStorage__blobServiceUri and \
                     AzureWebJobsStorage__queueServiceUri). Set them, or pass --local to run in \
                     this process without them.",
                    cfg.arm.endpoint
                );
                return Ok(EXIT_USAGE);
            }
            Err(e) => {
                eprintln!("error: storage settings: {e}");
                return Ok(EXIT_USAGE);
            }
        }
    };
    let rt = runtime()?;
    rt.block_on(async {
        match stores {
            Some((blobs, queue)) => start_remote(a, &req, &cfg, blobs, queue).await,
            None => start_local(a, &req, cfg).await,
        }
    })
}

async fn start_remote(
    a: &FailoverStartArgs,
    req: &StartRequest,
    cfg: &DrConfig,
    blobs: Arc<dyn BlobStore>,
    queue: Arc<dyn Queue>,
) -> anyhow::Result<i32> {
    blobs
        .ensure_container()
        .await
        .context("storage container")?;
    let now = time::OffsetDateTime::now_utc();
    let run = match start::start_run(blobs.as_ref(), queue.as_ref(), cfg, req, now).await {
        Ok(r) => r,
        Err(StartError::Active { run_id, pair }) => {
            eprintln!("error: run {run_id} is already active for pair {pair}");
            return Ok(1);
        }
        Err(StartError::Failed(e)) => return Err(e.into()),
    };
    if !a.wait {
        print_run(&run, a.json);
        return Ok(0);
    }
    if !a.json {
        eprintln!("run {} started; waiting for it to end…", run.run_id);
    }
    let started = Instant::now();
    loop {
        let r = start::status(blobs.as_ref(), &run.run_id).await?;
        if r.status.is_terminal() || started.elapsed() > Duration::from_secs(3600) {
            print_run(&r, a.json);
            return Ok(exit_for(&r));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn start_local(
    a: &FailoverStartArgs,
    req: &StartRequest,
    cfg: Arc<DrConfig>,
) -> anyhow::Result<i32> {
    let arm = arm_client_from_config(&cfg).context("ARM client")?;
    let (ctx, queue) = in_process(cfg.clone(), arm);
    let run = match start::start_run(ctx.store.as_ref(), &queue, &cfg, req, ctx.clock.now()).await {
        Ok(r) => r,
        Err(StartError::Active { run_id, pair }) => {
            eprintln!("error: run {run_id} is already active for pair {pair}");
            return Ok(1);
        }
        Err(StartError::Failed(e)) => return Err(e.into()),
    };
    if !a.json {
        eprintln!(
            "no storage settings: running {} in this process (in-memory run store)",
            run.run_id
        );
    }
    let (run, stopped) = drive(&ctx, &queue, &run.run_id, RunnerOptions::default()).await?;
    print_run(&run, a.json);
    if stopped == Stopped::Waiting && !a.json {
        eprintln!("the run is waiting (e.g. for approval) and cannot continue in this process");
    }
    Ok(exit_for(&run))
}

fn exit_for(run: &RunRecord) -> i32 {
    match run.status {
        RunStatus::Succeeded => 0,
        _ => 1,
    }
}

fn run_action(a: &FailoverRunArgs, action: &str) -> anyhow::Result<i32> {
    let rt = runtime()?;
    rt.block_on(async {
        let Some((blobs, queue)) = stores_from_env().context("storage settings")? else {
            eprintln!(
                "error: `failover {action}` needs the run store: set AzureWebJobsStorage (or \
                 AzureWebJobsStorage__blobServiceUri and __queueServiceUri)"
            );
            return Ok(EXIT_USAGE);
        };
        let now = time::OffsetDateTime::now_utc();
        let result = match action {
            "approve" => {
                start::approve(blobs.as_ref(), queue.as_ref(), &a.run_id, &caller(), now).await
            }
            "cancel" => start::cancel(blobs.as_ref(), &a.run_id, &caller(), now).await,
            _ => start::status(blobs.as_ref(), &a.run_id).await,
        };
        match result {
            Ok(run) => {
                print_run(&run, a.json);
                Ok(0)
            }
            Err(e @ super::FailoverError::RunNotFound { .. })
            | Err(e @ super::FailoverError::InvalidState { .. }) => {
                eprintln!("error: {e}");
                Ok(1)
            }
            Err(e) => Err(e.into()),
        }
    })
}

fn print_run(run: &RunRecord, json: bool) {
    if json {
        match serde_json::to_string_pretty(run) {
            Ok(t) => println!("{t}"),
            Err(e) => eprintln!("error: cannot encode the run: {e}"),
        }
    } else {
        print!("{}", render_run(run));
    }
}

/// A run as people read it: stages with status and summary, findings, RTO.
pub fn render_run(run: &RunRecord) -> String {
    let mut s = format!(
        "run {} — {} of pair {}: {}\n",
        run.run_id,
        run.mode,
        run.pair,
        run.status.as_str()
    );
    s.push_str(&format!(
        "  trigger: {} ({})\n",
        run.trigger.kind, run.trigger.reason
    ));
    for st in &run.stages {
        let status = serde_json::to_value(st.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        s.push_str(&format!(
            "  {:<18} {:<10} {}\n",
            st.stage.as_str(),
            status,
            st.summary.as_deref().or(st.error.as_deref()).unwrap_or("")
        ));
    }
    if !run.findings.is_empty() {
        s.push_str("findings:\n");
        for f in &run.findings {
            s.push_str(&format!(
                "  {:<8} {:<22} {}\n",
                f.severity, f.code, f.message
            ));
        }
    }
    if let Some(e) = &run.error {
        s.push_str(&format!("error: {e}\n"));
    }
    if let Some(rto) = run.rto_secs {
        s.push_str(&format!("RTO: {rto:.2} s\n"));
    }
    s
}
