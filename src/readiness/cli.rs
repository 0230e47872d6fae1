//! `datashare-dr check --config F [--json] [--pair P] [--html FILE]`: check every pair (or one),
//! print a table or JSON, exit 0 Ready / 1 Degraded / 2 NotReady (the worst pair decides).
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

use super::check::{PairReader, check_pair};
use super::evaluate::fmt_secs;
use super::report::{Report, Status};

/// Exit code of a run over `reports`: the worst status's code.
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
        if r.findings.is_empty() && r.rpo.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n{} ({}, score {}):\n",
            r.pair, r.status, r.score
        ));
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
    run_check_showing(args, cfg, reader, now, out, Progress::off(), &|| 0).await
}

/// [`run_check_with`] with a progress line per pair (`reads` counts the ARM reads so far), and
/// `--html FILE` written with the page `ReadinessStatus` serves ([`super::api::respond`]).
pub async fn run_check_showing<R: PairReader>(
    args: &CheckArgs,
    cfg: &DrConfig,
    reader: &R,
    now: OffsetDateTime,
    out: &mut dyn Write,
    progress: Progress,
    reads: &(dyn Fn() -> u64 + Sync),
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
        let report = progress
            .reading(&label, reads, check_pair(reader, cfg, pair, now, None))
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
/// the exit code (0 Ready, 1 Degraded, 2 NotReady; 64 for a bad config or unknown pair).
///
/// The CLI has no storage settings of its own, so "last drill" is not known here (the timer
/// function reads it from `state/{pair}.json`).
pub fn run_check(args: &CheckArgs) -> anyhow::Result<i32> {
    let mut cfg = match DrConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    };
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
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
        )
        .await
    })
}
