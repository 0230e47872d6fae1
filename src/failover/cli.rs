//! `datashare-dr failover start|status|approve|cancel|list` and `datashare-dr drill`.
//!
//! `approve` / `cancel` take `--reason`, recorded on the run (approval / cancellation: who,
//! when, why) and print the new state (what was cancelled) before the run. `list` shows the
//! runs of the run store, newest first. At a terminal (stdout and stderr both terminals, no
//! `--json`) `start` shows the running stage on stderr while it waits.
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

use crate::cli::progress::{Progress, secs};
use crate::cli::{
    DrillArgs, EXIT_USAGE, FailoverCommand, FailoverListArgs, FailoverRunArgs, FailoverStartArgs,
    ResetStateArgs,
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

/// Run event settings from the environment (`NOTIFY_*`, `WEBSITE_HOSTNAME`); none when the
/// settings do not read.
fn cli_event_settings(config: &std::path::Path) -> super::events::EventSettings {
    let env = crate::config::Config::from_env().ok();
    super::events::EventSettings {
        channels: env
            .as_ref()
            .and_then(|c| crate::notify::Channels::from_config(c).ok())
            .unwrap_or_default(),
        public_base_url: env
            .as_ref()
            .and_then(|c| c.website_hostname.as_deref())
            .map(super::events::EventSettings::base_url_for_host),
        config_name: config.file_name().map(|n| n.to_string_lossy().into_owned()),
    }
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
        FailoverCommand::Status(a) => run_action(a, "status", None),
        FailoverCommand::Approve(a) => run_action(&a.run, "approve", a.reason.as_deref()),
        FailoverCommand::Cancel(a) => run_action(&a.run, "cancel", a.reason.as_deref()),
        FailoverCommand::List(a) => run_list(a),
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
            match start::reset_pair_state(blobs.as_ref(), &a.pair, &caller(), &a.reason, now).await
            {
                Ok(s) => s,
                // A run of the pair is still active: refused (exit 1, as `start` refuses).
                Err(crate::failover::FailoverError::InvalidState { reason, .. }) => {
                    eprintln!("error: {reason}");
                    return Ok(1);
                }
                Err(e) => return Err(e.into()),
            };
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
    let progress = Progress::for_terminal(a.json);
    let started = Instant::now();
    loop {
        let r = start::status(blobs.as_ref(), &run.run_id).await?;
        if r.status.is_terminal() || started.elapsed() > Duration::from_secs(3600) {
            progress.clear();
            print_run(&r, a.json);
            return Ok(exit_for(&r));
        }
        progress.status(&stage_line(&r, started.elapsed()));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn start_local(
    a: &FailoverStartArgs,
    req: &StartRequest,
    cfg: Arc<DrConfig>,
) -> anyhow::Result<i32> {
    let arm = arm_client_from_config(&cfg).context("ARM client")?;
    // `--record DIR` (issue 16): every exchange of the local run.
    let arm = crate::config::arm::with_recording(arm, a.record.as_deref(), a.record_keep_ids)
        .context("--record")?;
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
    let progress = Progress::for_terminal(a.json);
    let (run, stopped) = if progress.enabled() {
        // Redraw the running stage while the stages run (the run store is in memory: a read
        // between two polls of the runner costs nothing).
        let started = Instant::now();
        let mut work = std::pin::pin!(drive(&ctx, &queue, &run.run_id, RunnerOptions::default()));
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                out = &mut work => break out?,
                _ = tick.tick() => {
                    if let Ok(r) = start::status(ctx.store.as_ref(), &run.run_id).await {
                        progress.status(&stage_line(&r, started.elapsed()));
                    }
                }
            }
        }
    } else {
        drive(&ctx, &queue, &run.run_id, RunnerOptions::default()).await?
    };
    progress.clear();
    print_run(&run, a.json);
    if stopped == Stopped::Waiting && !a.json {
        eprintln!("the run is waiting (e.g. for approval) and cannot continue in this process");
    }
    Ok(exit_for(&run))
}

/// The progress line of a running run: its stage and how many stages are done.
fn stage_line(r: &RunRecord, elapsed: Duration) -> String {
    let done = r
        .stages
        .iter()
        .filter(|s| {
            !matches!(
                s.status,
                super::run::StageStatus::Pending
                    | super::run::StageStatus::Running
                    | super::run::StageStatus::Waiting
            )
        })
        .count();
    format!(
        "run {}: {}, stage {} ({done}/{} stages done, {})",
        r.run_id,
        r.status.as_str(),
        r.current_stage
            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        r.stages.len(),
        secs(elapsed)
    )
}

fn exit_for(run: &RunRecord) -> i32 {
    match run.status {
        RunStatus::Succeeded => 0,
        _ => 1,
    }
}

fn run_action(a: &FailoverRunArgs, action: &str, reason: Option<&str>) -> anyhow::Result<i32> {
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
        let by = caller();
        let result = match action {
            "approve" => {
                start::approve_because(blobs.as_ref(), queue.as_ref(), &a.run_id, &by, reason, now)
                    .await
            }
            "cancel" => start::cancel_because(blobs.as_ref(), &a.run_id, &by, reason, now).await,
            _ => start::status(blobs.as_ref(), &a.run_id).await,
        };
        if action == "cancel"
            && let Ok(run) = &result
            && run.status.is_terminal()
        {
            // Ended here (between stages): no stage will announce it.
            let settings = cli_event_settings(&a.config);
            super::events::send_end(queue.as_ref(), &settings, run, now).await;
        }
        match result {
            Ok(run) => {
                if !a.json {
                    match action {
                        "approve" => print!("{}", render_approved(&run)),
                        "cancel" => print!("{}", render_cancelled(&run)),
                        _ => {}
                    }
                }
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

/// `failover list`: the runs in the run store, newest first (same storage rules as `status`).
fn run_list(a: &FailoverListArgs) -> anyhow::Result<i32> {
    let cfg = match load_config(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(EXIT_USAGE);
        }
    };
    if let Some(p) = &a.pair
        && let Err(e) = start::check_pair(&cfg, p)
    {
        eprintln!("error: --pair: {e}");
        return Ok(EXIT_USAGE);
    }
    let rt = runtime()?;
    rt.block_on(async {
        let Some((blobs, _)) = stores_from_env().context("storage settings")? else {
            eprintln!(
                "error: `failover list` needs the run store: set AzureWebJobsStorage (or \
                 AzureWebJobsStorage__blobServiceUri and __queueServiceUri)"
            );
            return Ok(EXIT_USAGE);
        };
        let progress = Progress::for_terminal(a.json);
        progress.status("reading the run store…");
        let runs = start::list_runs(blobs.as_ref(), a.pair.as_deref()).await;
        progress.clear();
        let runs = runs?;
        if a.json {
            let rows: Vec<RunSummary<'_>> = runs.iter().map(RunSummary::of).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print!("{}", render_list(&runs, a.pair.as_deref()));
        }
        Ok(0)
    })
}

/// One run in `failover list --json`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary<'a> {
    pub run_id: &'a str,
    pub pair: &'a str,
    pub mode: Mode,
    pub status: RunStatus,
    pub trigger: &'a super::run::Trigger,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<time::OffsetDateTime>,
    pub rto_secs: Option<f64>,
}

impl<'a> RunSummary<'a> {
    pub fn of(r: &'a RunRecord) -> RunSummary<'a> {
        RunSummary {
            run_id: &r.run_id,
            pair: &r.pair,
            mode: r.mode,
            status: r.status,
            trigger: &r.trigger,
            created_at: r.created_at,
            completed_at: r.completed_at,
            rto_secs: r.rto_secs,
        }
    }
}

/// `failover list` as people read it: one line per run, newest first.
pub fn render_list(runs: &[RunRecord], pair: Option<&str>) -> String {
    if runs.is_empty() {
        return match pair {
            Some(p) => format!("no runs of pair {p} in the run store\n"),
            None => "no runs in the run store\n".to_owned(),
        };
    }
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|r| {
            [
                r.run_id.clone(),
                r.pair.clone(),
                r.mode.to_string(),
                r.status.as_str().to_owned(),
                format!("{} ({})", r.trigger.kind, r.trigger.reason),
                r.created_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                r.rto_secs
                    .map_or_else(|| "-".into(), |s| format!("{s:.1} s")),
            ]
        })
        .collect();
    let header = ["RUN", "PAIR", "MODE", "STATUS", "TRIGGER", "CREATED", "RTO"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line = row
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The headline of `failover approve`: the run's new state.
pub fn render_approved(run: &RunRecord) -> String {
    let mut s = format!(
        "approved run {} ({} of pair {}) by {}: now {}",
        run.run_id,
        run.mode,
        run.pair,
        run.approval.by.as_deref().unwrap_or("unknown"),
        run.status.as_str()
    );
    if let Some(stage) = run.current_stage {
        s.push_str(&format!(", next stage {stage}"));
    }
    s.push('\n');
    if let Some(r) = &run.approval.reason {
        s.push_str(&format!("  reason: {r}\n"));
    }
    s
}

/// The headline of `failover cancel`: what was cancelled.
pub fn render_cancelled(run: &RunRecord) -> String {
    let c = run.cancellation.as_ref();
    let by = c.map_or("unknown", |c| c.by.as_str());
    let stage = c.and_then(|c| c.stage);
    let mut s = if run.status == RunStatus::Cancelled {
        let done = run.done_stages();
        format!(
            "cancelled run {} ({} of pair {}) by {by}{}; stages done: {}\n",
            run.run_id,
            run.mode,
            run.pair,
            stage.map_or_else(String::new, |st| format!(" before stage {st}")),
            if done.is_empty() {
                "none".to_owned()
            } else {
                done.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )
    } else {
        format!(
            "cancel requested for run {} ({} of pair {}) by {by}: it stops after the running \
             stage{} ends\n",
            run.run_id,
            run.mode,
            run.pair,
            stage.map_or_else(String::new, |st| format!(" {st}"))
        )
    };
    if let Some(r) = c.and_then(|c| c.reason.as_deref()) {
        s.push_str(&format!("  reason: {r}\n"));
    }
    s
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
    if let Some(a) = run
        .approval
        .by
        .as_deref()
        .filter(|_| run.approval.state == "approved")
    {
        s.push_str(&format!("  approved by {a}"));
        if let Some(r) = &run.approval.reason {
            s.push_str(&format!(" ({r})"));
        }
        s.push('\n');
    }
    if let Some(c) = &run.cancellation {
        s.push_str(&format!("  cancel requested by {}", c.by));
        if let Some(r) = &c.reason {
            s.push_str(&format!(" ({r})"));
        }
        s.push('\n');
    }
    match &run.error {
        // A cancellation is what someone asked for, not an error.
        Some(e) if run.status == RunStatus::Cancelled => s.push_str(&format!("cancelled: {e}\n")),
        Some(e) => s.push_str(&format!("error: {e}\n")),
        None => {}
    }
    if let Some(rto) = run.rto_secs {
        s.push_str(&format!("RTO: {rto:.2} s\n"));
    }
    s
}
