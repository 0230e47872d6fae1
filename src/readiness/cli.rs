//! `datashare-dr check --config F [--json] [--pair P] [--html FILE]`: check every pair (or one),
//! print a table or JSON. Exit code over all pairs: 2 if any pair is NotReady, else 3 if any
//! cannot be assessed (`Unknown`: a tool fault) or the check itself failed, else 1 if any is
//! Degraded, else 0 ([`exit_code`]; 64 for a bad config or unknown pair). A pair that is not
//! `normal` is judged on its serving side (see [`run_check`]).
//! `--html FILE` also writes the status page `ReadinessStatus` serves for these reports (the
//! same [`super::api::respond`] call), so an operator can look without deploying. At a terminal
//! (stdout and stderr both terminals, no `--json`) each pair's read shows progress on stderr.
//!
//! Glue only: config loading, the ARM reader, printing. `anyhow` is allowed here.

use std::io::Write;
use std::time::Instant;

use anyhow::Context as _;
use time::OffsetDateTime;

use crate::cli::progress::{Progress, secs};
use crate::cli::{CheckArgs, EXIT_USAGE};
use crate::config::dr::DrConfig;

use super::check::{PairReader, check_pair_in};
use super::evaluate::fmt_secs;
use super::report::ActiveRun;
use super::report::{Report, Status};
use crate::pair_state::PhaseView;
use crate::store::BlobStore;

/// Exit code of `check` when the check itself failed (it cannot assess anything).
pub const EXIT_CANNOT_ASSESS: i32 = 3;

/// Exit code of a run over `reports`: 2 if any NotReady, else 3 if any Unknown, else 1 if any
/// Degraded, else 0 (the status of highest [`Status::rank`]).
pub fn exit_code(reports: &[Report]) -> i32 {
    reports
        .iter()
        .map(|r| r.status)
        .max_by_key(|s| s.rank())
        .unwrap_or(Status::Ready)
        .exit_code()
}

/// Human output: one block per pair with its findings.
pub fn render_table(reports: &[Report]) -> String {
    let mut out = String::new();
    let w = reports
        .iter()
        .map(|r| r.pair.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "{:<w$}  {:<9}  {:>5}  {:>8}  {:>7}  {:>4}  CHECKED\n",
        "PAIR", "STATUS", "SCORE", "CRITICAL", "WARNING", "INFO"
    ));
    for r in reports {
        out.push_str(&format!(
            "{:<w$}  {:<9}  {:>5}  {:>8}  {:>7}  {:>4}  {}\n",
            r.pair,
            r.status.as_str(),
            r.score,
            r.counts.critical,
            r.counts.warning,
            r.counts.info,
            r.checked_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        ));
    }
    for r in reports {
        let not_normal = r
            .pair_state
            .as_ref()
            .filter(|s| s.phase != crate::pair_state::Phase::Normal);
        if r.findings.is_empty()
            && r.rpo.is_empty()
            && not_normal.is_none()
            && r.active_runs.is_empty()
        {
            continue;
        }
        out.push_str(&format!(
            "\n{} ({}, score {}):\n",
            r.pair, r.status, r.score
        ));
        if let Some(st) = not_normal {
            out.push_str(&format!(
                "  state: {} — {} serving since {} (run {}); findings are the failback readiness\n",
                st.phase.words(),
                st.serving.as_str(),
                st.since
                    .and_then(|t| t
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok())
                    .unwrap_or_else(|| "unknown".into()),
                st.run_id.as_deref().unwrap_or("unknown"),
            ));
        }
        for run in &r.active_runs {
            out.push_str(&format!(
                "  active run {} ({}): {}{}\n",
                run.run_id,
                run.mode,
                run.status,
                run.stage
                    .as_deref()
                    .map(|s| format!(", stage {s}"))
                    .unwrap_or_default()
            ));
        }
        for f in &r.findings {
            out.push_str(&format!(
                "  [{:<8}] {}: {}\n             resource: {}\n             remedy:   {}\n",
                f.severity.as_str(),
                f.code,
                f.message,
                f.resource_id,
                f.remedy
            ));
        }
        for rpo in &r.rpo {
            if let (Some(age), Some(limit)) = (rpo.age_secs, rpo.limit_secs) {
                out.push_str(&format!(
                    "  rpo {}: last snapshot {} ago (limit {}){}\n",
                    rpo.share,
                    fmt_secs(age),
                    fmt_secs(limit),
                    if rpo.exceeded { " EXCEEDED" } else { "" }
                ));
            }
        }
    }
    out
}

/// Checks the selected pairs with `reader` and prints the result to `out`; returns the exit code.
pub async fn run_check_with<R: PairReader>(
    args: &CheckArgs,
    cfg: &DrConfig,
    reader: &R,
    now: OffsetDateTime,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    run_check_showing(args, cfg, reader, now, out, Progress::off(), &|| 0, None).await
}

/// The pair's state and active runs from the run store (`None` store: unknown).
async fn pair_context(
    store: Option<&dyn BlobStore>,
    pair: &str,
) -> anyhow::Result<Option<(PhaseView, Vec<ActiveRun>)>> {
    let Some(store) = store else {
        return Ok(None);
    };
    let (state, _) = crate::pair_state::load(store, pair)
        .await
        .with_context(|| format!("reading the state of pair {pair} (pairs/{pair}.json)"))?;
    let runs = crate::failover::run::active_runs(store, pair)
        .await
        .with_context(|| format!("reading the active run of pair {pair} (locks/{pair}.json)"))?;
    Ok(Some((state.view(), runs)))
}

/// [`run_check_with`] with a progress line per pair (`reads` counts the ARM reads so far), and
/// `--html FILE` written with the page `ReadinessStatus` serves ([`super::api::respond`]).
// Glue with one caller per surface; the arguments are the command's inputs and outputs.
#[allow(clippy::too_many_arguments)]
pub async fn run_check_showing<R: PairReader>(
    args: &CheckArgs,
    cfg: &DrConfig,
    reader: &R,
    now: OffsetDateTime,
    out: &mut dyn Write,
    progress: Progress,
    reads: &(dyn Fn() -> u64 + Sync),
    store: Option<&dyn BlobStore>,
) -> anyhow::Result<i32> {
    let pairs: Vec<_> = match &args.pair {
        Some(name) => match cfg.pair(name) {
            Some(p) => vec![p],
            None => {
                writeln!(
                    out,
                    "error: pair {name:?} is not in {} (pairs: {})",
                    args.config.display(),
                    cfg.pairs
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
                return Ok(EXIT_USAGE);
            }
        },
        None => cfg.pairs.iter().collect(),
    };
    let total = pairs.len();
    let started = Instant::now();
    let mut reports = Vec::with_capacity(total);
    for (i, pair) in pairs.into_iter().enumerate() {
        let label = format!(
            "checking pair {} ({}/{total}): reading primary and secondary",
            pair.name,
            i + 1
        );
        progress.status(&label);
        let context = pair_context(store, &pair.name).await?;
        let (state, runs) = match &context {
            Some((s, r)) => (Some(s), r.as_slice()),
            None => (None, &[][..]),
        };
        let report = progress
            .reading(
                &label,
                reads,
                check_pair_in(reader, cfg, pair, now, None, state, runs),
            )
            .await;
        progress.status(&format!(
            "checked pair {} ({}/{total}): {}",
            pair.name,
            i + 1,
            report.status.as_str()
        ));
        reports.push(report);
    }
    progress.line(&format!(
        "checked {total} pair(s) in {} ({} ARM reads)",
        secs(started.elapsed()),
        reads()
    ));
    if let Some(path) = &args.html {
        let configured: Vec<String> = cfg.pairs.iter().map(|p| p.name.clone()).collect();
        let page = super::api::respond(
            &configured,
            &reports,
            args.pair.as_deref(),
            Some("text/html"),
            now,
        );
        anyhow::ensure!(
            page.content_type.starts_with("text/html"),
            "the status page could not be rendered ({}): {}",
            page.status,
            page.body
        );
        std::fs::write(path, page.body.as_bytes())
            .with_context(|| format!("cannot write the status page to {}", path.display()))?;
        progress.line(&format!("status page written to {}", path.display()));
    }
    if args.json {
        let body = if args.pair.is_some() && reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])
        } else {
            serde_json::to_string_pretty(&reports)
        }
        .context("encoding the reports as JSON")?;
        writeln!(out, "{body}")?;
    } else {
        write!(out, "{}", render_table(&reports))?;
    }
    Ok(exit_code(&reports))
}

/// `datashare-dr check`: loads the DR config, checks the pairs against ARM, prints, and returns
/// the exit code (0 Ready, 1 Degraded, 2 NotReady, 3 cannot assess; 64 for a bad config or
/// unknown pair). A check that fails on its own (no runtime, output cannot be written) is 3, not
/// an exit code that reads as a readiness verdict.
///
/// With the storage settings (`AzureWebJobsStorage`, as `plan` and `replicate` read them) each
/// pair is checked in its state (`pairs/{pair}.json`): a failed-over pair gets its failback
/// readiness, and the status and exit code describe the serving side; `--json` carries
/// `pairState` and `activeRuns`. Without them it warns `pair state unknown` and checks as if
/// every pair were normal (`pairState: null`). "Last drill" is not read here (the timer
/// function reads it from `state/{pair}.json`).
pub fn run_check(args: &CheckArgs) -> anyhow::Result<i32> {
    let mut cfg = match DrConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    for w in cfg.warnings() {
        eprintln!("warning: {w}");
    }
    // `--html FILE`: a path that cannot be written is a usage error before minutes of reads.
    if let Some(path) = &args.html
        && let Err(e) = std::fs::File::create(path)
    {
        eprintln!(
            "error: --html: cannot write the status page to {}: {e}",
            path.display()
        );
        return Ok(EXIT_USAGE);
    }
    // Env overrides of `[arm]` (ARM_ENDPOINT, ARM_AUTH) and the AZURE_* identity settings,
    // through the one shared builder (config::arm).
    let mut env = match crate::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    // `--record DIR` (issue 16) wins over RECORD_DIR.
    if args.record.is_some() {
        env.record_dir = args.record.clone();
    }
    env.record_keep_ids = args.record_keep_ids;
    match crate::config::arm::effective_arm(&cfg.arm, &env) {
        Ok(arm) => cfg.arm = arm,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    }
    let client = match crate::config::arm::arm_client(&cfg, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    // The pair state (failed over → failback readiness) needs the run store; without its
    // settings the check runs read-only as if every pair were normal, and says so.
    let store = match crate::reconcile::cli::run_store() {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    if store.is_none() {
        crate::reconcile::cli::warn_pair_state_unknown("readiness is checked");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot assess: starting the async runtime: {e}");
            return Ok(EXIT_CANNOT_ASSESS);
        }
    };
    let result = runtime.block_on(async {
        let reader = super::arm_reader::ArmReader {
            client: &client,
            concurrency: cfg.arm.max_concurrency,
        };
        let progress = Progress::for_terminal(args.json);
        let reads = || client.stats().reads;
        let mut stdout = std::io::stdout().lock();
        run_check_showing(
            args,
            &cfg,
            &reader,
            OffsetDateTime::now_utc(),
            &mut stdout,
            progress,
            &reads,
            store.as_deref(),
        )
        .await
    });
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: cannot assess: {e:#}");
            Ok(EXIT_CANNOT_ASSESS)
        }
    }
}
