//! CLI glue for `datashare-dr plan` and `datashare-dr replicate`.
//!
//! `plan --config F [--json] [--pair P] [--prune]`: observe and print the plan (nothing written);
//! exit 0, or 1 when a pair could not be observed.
//! `replicate --config F [--json] [--pair P] [--prune] [--allow-partial]`: observe, plan, apply;
//! exit 1 when any change failed or was skipped or a pair could not be observed, unless
//! `--allow-partial`. Usage/config errors exit 64 with the key named.
//!
//! At a terminal (stdout and stderr both terminals, no `--json`) each pair's read phase shows its
//! ARM read count and elapsed time on stderr, then `n/total` while changes are applied, then one
//! closing line per pair (see [`crate::cli::progress`]); nothing otherwise.
//! Glue only (config, client, runtime, printing); `anyhow` is allowed here.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use time::OffsetDateTime;

use crate::arm::client::ArmClient;
use crate::cli::progress::{Progress, secs};
use crate::cli::{EXIT_USAGE, PlanArgs, ReplicateArgs};
use crate::config::Config;
use crate::config::dr::{DrConfig, Pair};

use std::sync::Arc;

use crate::store::{self, BlobStore, MessageEncoding, StorageSettings};

use super::guard::{Deletes, GuardedOptions, check_prune, replicate_guarded};
use super::render::{PairPlan, PlanOutput, render_human};
use super::report::{self, ReplicateReport};

/// Loaded config, the selected pairs, and the client — or the exit code of a usage error.
struct Setup {
    cfg: DrConfig,
    client: ArmClient,
}

/// `--record DIR` / `--record-keep-ids` of `plan` and `replicate` (issue 16).
type Record<'a> = (Option<&'a std::path::Path>, bool);

fn setup(path: &std::path::Path, record: Record<'_>) -> Result<Setup, i32> {
    let mut cfg = match DrConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            for issue in e.issues() {
                eprintln!("  {issue}");
            }
            return Err(EXIT_USAGE);
        }
    };
    // Env overrides of `[arm]` (ARM_ENDPOINT, ARM_AUTH), as in the Functions app.
    let mut env = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(EXIT_USAGE);
        }
    };
    // `--record DIR` wins over RECORD_DIR.
    if let Some(dir) = record.0 {
        env.record_dir = Some(dir.to_owned());
    }
    env.record_keep_ids = record.1;
    match crate::config::arm::effective_arm(&cfg.arm, &env) {
        Ok(arm) => cfg.arm = arm,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(EXIT_USAGE);
        }
    }
    let client = match crate::config::arm::arm_client(&cfg, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot build the ARM client: {e}");
            return Err(EXIT_USAGE);
        }
    };
    Ok(Setup { cfg, client })
}

fn select<'a>(cfg: &'a DrConfig, pair: &Option<String>) -> Result<Vec<&'a Pair>, i32> {
    match pair {
        Some(name) => match cfg.pair(name) {
            Some(p) => Ok(vec![p]),
            None => {
                eprintln!(
                    "error: --pair {name:?} is not in {} (pairs: {})",
                    cfg.source,
                    cfg.pairs
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                Err(EXIT_USAGE)
            }
        },
        None => {
            if cfg.pairs.is_empty() {
                eprintln!(
                    "error: {} has no [[pairs]] (role = \"consumer\" configs are not replicated)",
                    cfg.source
                );
                return Err(EXIT_USAGE);
            }
            Ok(cfg.pairs.iter().collect())
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The status line of one pair's pass: the read phase with its ARM read count, then
/// `n/total` while changes are applied (the apply callback sets `done`/`total`).
struct PairProgress<'a> {
    progress: Progress,
    verb: &'a str,
    pair: &'a str,
    client: &'a ArmClient,
    base_reads: u64,
    done: AtomicUsize,
    total: AtomicUsize,
}

impl<'a> PairProgress<'a> {
    fn new(progress: Progress, verb: &'a str, pair: &'a str, client: &'a ArmClient) -> Self {
        let p = Self {
            progress,
            verb,
            pair,
            client,
            base_reads: client.stats().reads,
            done: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
        };
        p.progress.status(&p.line(Duration::ZERO));
        p
    }
    fn line(&self, elapsed: Duration) -> String {
        let total = self.total.load(Ordering::Relaxed);
        if total > 0 {
            return format!(
                "{} {}: {}/{total} changes applied ({})",
                self.verb,
                self.pair,
                self.done.load(Ordering::Relaxed),
                secs(elapsed)
            );
        }
        format!(
            "{} {}: reading primary and secondary share configuration ({} ARM reads, {})",
            self.verb,
            self.pair,
            self.client.stats().reads.saturating_sub(self.base_reads),
            secs(elapsed)
        )
    }
    fn applied(&self, done: usize, total: usize) {
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }
    /// The pair's closing line: what was read and planned (or applied).
    fn finish(&self, r: &super::report::PairReport, elapsed: Duration) {
        let reads = self.client.stats().reads.saturating_sub(self.base_reads);
        let outcome = match &r.error {
            Some(_) => "could not be observed".to_owned(),
            None if r.dry_run => format!("{} changes planned", r.plan.changes.len()),
            None => format!(
                "{} changes planned, {} applied",
                r.plan.changes.len(),
                r.results.len()
            ),
        };
        self.progress.line(&format!(
            "{} {}: {outcome} ({reads} ARM reads, {})",
            self.verb,
            self.pair,
            secs(elapsed)
        ));
    }
}

/// The run store (`pairs/{pair}.json`, leases) from the storage settings in the environment
/// (`AzureWebJobsStorage`, or `AzureWebJobsStorage__blobServiceUri`), when they are set.
pub fn run_store() -> Result<Option<Arc<dyn BlobStore>>, i32> {
    let settings = match StorageSettings::from_app_settings(|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: storage settings: {e}");
            return Err(EXIT_USAGE);
        }
    };
    let Some(settings) = settings else {
        return Ok(None);
    };
    match store::azure::connect(&settings, store::CONTAINER, MessageEncoding::None) {
        Ok((blobs, _)) => Ok(Some(Arc::new(blobs))),
        Err(e) => {
            eprintln!("error: storage settings: {e}");
            Err(EXIT_USAGE)
        }
    }
}

/// The warning of a read-only command (`plan`, `check`) run without storage settings:
/// `warning: pair state unknown (no storage settings: …); {what} as if every pair were normal`.
pub fn warn_pair_state_unknown(what: &str) {
    eprintln!(
        "warning: pair state unknown (no storage settings: {STORAGE_SETTINGS}); {what} as if \
         every pair were normal"
    );
}

/// The settings a CLI write needs to read the pair state and take the lock, for messages.
pub const STORAGE_SETTINGS: &str = "AzureWebJobsStorage (or AzureWebJobsStorage__blobServiceUri \
     and AzureWebJobsStorage__queueServiceUri)";

/// Where a CLI write runs: on the run store (state read, lease/lock taken) or in this process.
enum WriteStore {
    Store(Arc<dyn BlobStore>),
    InProcess,
}

/// A CLI write (`replicate`, `failover`) against a non-loopback endpoint needs the run store;
/// `--local` runs in-process anyway (warned); loopback (the simulator) runs in-process as
/// before. Decided before any network call.
fn write_store(cfg: &DrConfig, local: bool, command: &str) -> Result<WriteStore, i32> {
    if local {
        eprintln!(
            "warning: --local: {command} runs in this process: no lock is taken and no pair \
             state is read (a failed-over pair is not protected)"
        );
        return Ok(WriteStore::InProcess);
    }
    match run_store()? {
        Some(s) => Ok(WriteStore::Store(s)),
        None if crate::arm::auth::is_loopback(&cfg.arm.endpoint) => Ok(WriteStore::InProcess),
        None => {
            eprintln!(
                "error: `{command}` against {} (not a loopback endpoint) needs the run store to \
                 read the pair state and take the lock; missing settings: {STORAGE_SETTINGS}. \
                 Set them, or pass --local to run in this process without them.",
                cfg.arm.endpoint
            );
            Err(EXIT_USAGE)
        }
    }
}

/// `datashare-dr plan`.
pub fn run_plan(args: &PlanArgs) -> anyhow::Result<i32> {
    let s = match setup(&args.config, (args.record.as_deref(), args.record_keep_ids)) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let pairs = match select(&s.cfg, &args.pair) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let store = match run_store() {
        Ok(st) => st,
        Err(code) => return Ok(code),
    };
    if store.is_none() {
        warn_pair_state_unknown("the plan is shown");
    }
    let rt = runtime()?;
    let now = OffsetDateTime::now_utc();
    let concurrency = s.cfg.arm.max_concurrency.max(1);
    let progress = Progress::for_terminal(args.json);
    let mut plans = Vec::new();
    let mut failed = false;
    for pair in pairs {
        let opts = GuardedOptions {
            dry_run: true,
            show_prune: args.prune,
            deletes: Deletes::HoldForConsent,
            concurrency,
            now,
            deadline: None,
        };
        let started = Instant::now();
        let line = PairProgress::new(progress, "planning", &pair.name, &s.client);
        let g = rt.block_on(progress.watch(
            replicate_guarded(
                &s.client,
                pair,
                store.as_deref(),
                "cli-plan",
                &opts,
                &|_, _| {},
            ),
            |t| Some(line.line(t)),
        ));
        let r = g.report;
        line.finish(&r, started.elapsed());
        if let Some(e) = &r.error {
            eprintln!("error: pair {}: {e}", pair.name);
            failed = true;
            continue;
        }
        plans.push(PairPlan {
            pair: r.pair,
            primary: r.primary,
            secondary: r.secondary,
            secondary_exists: !r.paused
                && !r
                    .plan
                    .changes
                    .iter()
                    .any(|c| matches!(c, super::plan::Change::CreateAccount { .. }))
                && !r
                    .plan
                    .findings
                    .iter()
                    .any(|f| f.code == super::plan::FindingCode::SecondaryAccountMissing),
            plan: r.plan,
            paused: r.paused,
            state: r.state,
            reason: r.reason,
        });
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let body = serde_json::to_string_pretty(&PlanOutput { pairs: &plans })
            .context("encoding the plan as JSON")?;
        writeln!(out, "{body}")?;
    } else {
        write!(out, "{}", render_human(&plans))?;
    }
    Ok(if failed { 1 } else { 0 })
}

/// `datashare-dr replicate`.
pub fn run_replicate(args: &ReplicateArgs) -> anyhow::Result<i32> {
    let s = match setup(&args.config, (args.record.as_deref(), args.record_keep_ids)) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let pairs = match select(&s.cfg, &args.pair) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    // The prune policy is a ceiling: `--prune` on a `report` pair is refused, nothing read.
    if args.prune {
        for pair in &pairs {
            if let Err(e) = check_prune(pair, true) {
                eprintln!("error: {e}");
                return Ok(EXIT_USAGE);
            }
        }
    }
    let store = match write_store(&s.cfg, args.local, "replicate") {
        Ok(WriteStore::Store(st)) => Some(st),
        Ok(WriteStore::InProcess) => None,
        Err(code) => return Ok(code),
    };
    let rt = runtime()?;
    let now = OffsetDateTime::now_utc();
    let concurrency = s.cfg.arm.max_concurrency.max(1);
    let progress = Progress::for_terminal(args.json);
    let mut report = ReplicateReport::default();
    let deletes = if args.prune && args.yes {
        Deletes::Apply
    } else {
        Deletes::HoldForConsent
    };
    let holder = format!("cli:{}", uuid::Uuid::new_v4());
    for pair in pairs {
        let opts = GuardedOptions {
            dry_run: false,
            show_prune: false,
            deletes,
            concurrency,
            now,
            deadline: None,
        };
        let started = Instant::now();
        let line = PairProgress::new(progress, "replicating", &pair.name, &s.client);
        let cb = |done: usize, total: usize| line.applied(done, total);
        let g = rt.block_on(progress.watch(
            replicate_guarded(&s.client, pair, store.as_deref(), &holder, &opts, &cb),
            |t| Some(line.line(t)),
        ));
        line.finish(&g.report, started.elapsed());
        report.pairs.push(g.report);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let body = serde_json::to_string_pretty(&report).context("encoding the result as JSON")?;
        writeln!(out, "{body}")?;
    } else {
        write!(out, "{}", report::render_human(&report))?;
    }
    if report.pairs.iter().any(|p| p.deletes_held > 0) {
        return Ok(EXIT_USAGE);
    }
    Ok(if report.is_complete() || args.allow_partial {
        0
    } else {
        1
    })
}
