//! `datashare-dr check --config F [--json] [--pair P]`: check every pair (or one), print a table
//! or JSON, exit 0 Ready / 1 Degraded / 2 NotReady (the worst pair decides).
//!
//! Glue only: config loading, the ARM reader, printing. `anyhow` is allowed here.

use std::io::Write;

use anyhow::Context as _;
use time::OffsetDateTime;

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
    let mut reports = Vec::with_capacity(pairs.len());
    for pair in pairs {
        reports.push(check_pair(reader, cfg, pair, now, None).await);
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
    // Env overrides of `[arm]` (ARM_ENDPOINT, ARM_AUTH) and the AZURE_* identity settings,
    // through the one shared builder (config::arm).
    let env = match crate::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_USAGE);
        }
    };
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
        let mut stdout = std::io::stdout().lock();
        run_check_with(args, &cfg, &reader, OffsetDateTime::now_utc(), &mut stdout).await
    })
}
