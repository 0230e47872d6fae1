//! `datashare-dr bench readiness` (issue 5): one readiness check of a replicated pair against
//! the simulator (latency 20 ms, ARM throttling on).
//!
//! Set-up (not measured): an estate of 200 shares × 10 data sets × 5 consumers (`--quick`:
//! 20 × 5 × 3), replicated to the secondary with `replicate` — with throttling and latency
//! switched off and an unthrottled client, so the set-up takes seconds, not the minutes ARM's
//! write bucket would impose. Then latency and throttling go back on and the simulator's counters
//! and buckets are reset (full buckets, the state the bound assumes).
//!
//! Measured:
//! - **the check** (`readiness::check::check_pair` over the ARM client the generated DR config
//!   gives, concurrency 16) runs in a **child process** (this binary, hidden subcommand
//!   `bench-readiness-probe`), which reports its elapsed time and its own peak RSS (`VmHWM` from
//!   `/proc/self/status`), so the simulator's memory is not counted; the ARM reads and 429s are
//!   the simulator's counters. Rows: elapsed vs `max(reads × latency / concurrency,
//!   max(0, reads − 250) / 25 s)` (target ≤ 1.5×; `Shares_ListSynchronizations` is a POST list,
//!   which ARM counts as a write, so those calls are held to the write bucket's
//!   `max(0, n − 200) / 10 s` instead — see [`check_bound`]), 429s provoked (target 0), peak RSS
//!   (target ≤ 64 MB); the row fails when the check is not Ready (a replicated pair must be) or
//!   any state-changing operation was sent;
//! - **concurrency pays**: on a 20-share estate (20 × 3 × 2, `--quick`: 10 × 3 × 2) small enough
//!   that the read bucket does not bind, the same check with the reader at concurrency 16 and at
//!   concurrency 1 (the same reads issued one at a time, the naive baseline): target ≥ 8× faster.
//!   Both runs start from full buckets on both sides.
//!
//! Benchmark glue: `anyhow` and printing allowed.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use time::OffsetDateTime;

use super::Row;
use super::table::{self, READ_BUCKET, WRITE_BUCKET, exact_count_row, fmt_dur, ratio};
use crate::arm::client::ArmClient;
use crate::cli::BenchArgs;
use crate::config::arm::arm_client_from_config;
use crate::config::dr::DrConfig;
use crate::readiness::arm_reader::ArmReader;
use crate::readiness::check::check_pair;
use crate::readiness::{Report, Status};
use crate::sim::{Estate, PopulateSpec, SimHandle, SimStats};

/// Seed of the estates this benchmark generates (its own subscription, so its own buckets).
pub const SEED_READINESS: u64 = 51;
/// Seed of the 20-share estate of the sequential comparison.
pub const SEED_READINESS_SMALL: u64 = 53;
/// The hidden subcommand of the child process that runs one check (see module docs).
pub const PROBE: &str = "bench-readiness-probe";
/// Env var naming the DR config file the probe checks.
pub const PROBE_CONFIG_ENV: &str = "DSDR_BENCH_READINESS_CONFIG";
/// Peak RSS target of one check.
pub const RSS_TARGET_MB: f64 = 64.0;
/// Required speed-up of the concurrent check over the one-at-a-time baseline.
pub const SPEEDUP_TARGET: f64 = 8.0;

/// What the probe prints (one JSON line on stdout).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeResult {
    pub elapsed_ms: f64,
    pub vmhwm_kb: u64,
    pub status: Status,
    pub findings: usize,
}

/// `bench readiness` on its own simulator.
pub fn run(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    table::run_alone(args, run_on)
}

/// The readiness benchmark against a running simulator (its latency setting is restored after
/// the set-up).
pub async fn run_on(sim: &SimHandle, quick: bool) -> anyhow::Result<Vec<Row>> {
    let latency_ms = sim.faults().latency_ms;
    let latency = Duration::from_millis(latency_ms);
    let mut rows = Vec::new();

    // ------------------------------------------------------------------ the check (child)
    let spec = table::fleet(quick, SEED_READINESS);
    let label = format!("{}x{}x{}", spec.shares, spec.datasets, spec.consumers);
    let (cfg, estate) = replicated_estate(sim, &spec).await?;
    let concurrency = cfg.arm.max_concurrency.max(1);
    let config_path = std::env::temp_dir().join(format!(
        "dsdr-bench-readiness-{}-{}.toml",
        std::process::id(),
        spec.seed
    ));
    // The same DR config the probe's `DrConfig::load` reads back (what `check --config` reads).
    std::fs::write(
        &config_path,
        crate::sim::write_config(&estate, &sim.base_url),
    )
    .with_context(|| format!("writing {}", config_path.display()))?;
    sim.reset_counters();
    let probe = run_probe(&config_path).await;
    let _ = std::fs::remove_file(&config_path);
    let probe = probe?;
    let s = sim.stats();
    let elapsed = Duration::from_secs_f64(probe.elapsed_ms / 1000.0);
    let bound = check_bound(&s, latency, concurrency);
    let changes = state_changing_ops(&s);
    rows.push(Row {
        name: format!("readiness check {label}"),
        measured: fmt_dur(elapsed),
        detail: format!(
            "{} ARM reads ({} GET + {} POST lists), concurrency {concurrency}, status {}, {} findings{}",
            s.reads + s.writes,
            s.reads,
            s.writes,
            probe.status,
            probe.findings,
            if changes.is_empty() {
                String::new()
            } else {
                format!(", CHANGED STATE: {changes:?}")
            }
        ),
        reference: format!("bound {}", fmt_dur(bound)),
        ratio: if probe.status == Status::Ready && changes.is_empty() {
            ratio(elapsed, bound)
        } else {
            f64::INFINITY
        },
        target_ratio: 1.5,
    });
    rows.push(exact_count_row(
        "readiness check 429s provoked",
        s.throttled,
        0,
        "target",
    ));
    let rss_mb = probe.vmhwm_kb as f64 / 1024.0;
    rows.push(Row {
        name: format!("readiness check peak RSS {label}"),
        measured: format!("{rss_mb:.1} MB"),
        detail: "VmHWM of the checking process (simulator not included)".into(),
        reference: format!("target {RSS_TARGET_MB:.0} MB"),
        ratio: rss_mb / RSS_TARGET_MB,
        target_ratio: 1.0,
    });

    // ------------------------------------------------- concurrent vs one at a time (in-process)
    let small = PopulateSpec {
        shares: if quick { 10 } else { 20 },
        datasets: 3,
        consumers: 2,
        seed: SEED_READINESS_SMALL,
    };
    let small_label = format!("{}x{}x{}", small.shares, small.datasets, small.consumers);
    let (cfg, _) = replicated_estate(sim, &small).await?;
    sim.reset_counters();
    let (fast, fast_report) = timed_check(&cfg, cfg.arm.max_concurrency.max(1)).await?;
    let fast_stats = sim.stats();
    sim.reset_counters();
    let (slow, slow_report) = timed_check(&cfg, 1).await?;
    let slow_stats = sim.stats();
    let speedup = slow.as_secs_f64() / fast.as_secs_f64().max(1e-9);
    let requests = |s: &SimStats| s.reads + s.writes + s.deletes;
    let same_reads = requests(&fast_stats) == requests(&slow_stats);
    let both_ready = fast_report.status == Status::Ready && slow_report.status == Status::Ready;
    let bucket_free = fast_stats.reads <= READ_BUCKET.0 && fast_stats.writes <= WRITE_BUCKET.0;
    rows.push(Row {
        name: format!("readiness check {small_label} vs one-at-a-time"),
        measured: fmt_dur(fast),
        detail: format!(
            "{:.1}x faster; sequential {} ({} reads each way{}{}{})",
            speedup,
            fmt_dur(slow),
            requests(&fast_stats),
            if same_reads {
                String::new()
            } else {
                format!(", sequential made {}", requests(&slow_stats))
            },
            if both_ready { "" } else { ", NOT Ready" },
            if bucket_free {
                ""
            } else {
                ", read bucket binds"
            }
        ),
        reference: format!(
            "sequential / {SPEEDUP_TARGET:.0} = {}",
            fmt_dur(slow.div_f64(SPEEDUP_TARGET))
        ),
        ratio: if both_ready && same_reads {
            SPEEDUP_TARGET / speedup
        } else {
            f64::INFINITY
        },
        target_ratio: 1.0,
    });
    rows.push(exact_count_row(
        "readiness sequential comparison 429s provoked",
        fast_stats.throttled + slow_stats.throttled,
        0,
        "target",
    ));
    Ok(rows)
}

/// Populates `spec` and replicates it as an unmeasured set-up step ([`table::in_setup`]), with
/// one snapshot per share so RPO has something to measure. Returns the DR config and the estate.
async fn replicated_estate(
    sim: &SimHandle,
    spec: &PopulateSpec,
) -> anyhow::Result<(DrConfig, Estate)> {
    let estate = sim.populate(spec).context("generating the estate")?;
    let cfg = table::estate_config(sim, &estate)?;
    let pair = cfg
        .pairs
        .first()
        .context("the generated config has no pair")?;
    let setup = table::sim_client(sim, &estate, |s| {
        s.rate_limits.enabled = false;
        s.max_concurrency = 32;
    })?;
    table::in_setup(sim, table::replicate_setup(sim, &setup, pair, 32)).await?;
    Ok((cfg, estate))
}

/// The lower bound of one check: every request takes `latency` with `concurrency` in flight,
/// and no bucket lets requests through faster than it refills. Readiness only reads, but
/// `Shares_ListSynchronizations` is a POST, which ARM counts against the *writes* bucket, so
/// both buckets are considered: `max(n × latency / concurrency, max(0, GETs − 250) / 25 s,
/// max(0, POSTs − 200) / 10 s)`.
pub fn check_bound(s: &SimStats, latency: Duration, concurrency: usize) -> Duration {
    let n = s.reads + s.writes + s.deletes;
    table::latency_time(n, latency, concurrency)
        .max(table::bucket_time(s.reads, READ_BUCKET))
        .max(table::bucket_time(s.writes, WRITE_BUCKET))
}

/// Operations in the simulator's breakdown that are neither a GET nor a list: a check must
/// change nothing.
pub fn state_changing_ops(s: &SimStats) -> Vec<String> {
    s.operations
        .keys()
        .filter(|op| !(op.contains("_Get") || op.contains("_List")))
        .cloned()
        .collect()
}

/// One check of the config's first pair with the reader at `concurrency`, on a fresh client
/// (full client-side buckets) with the same concurrency limit.
async fn timed_check(cfg: &DrConfig, concurrency: usize) -> anyhow::Result<(Duration, Report)> {
    let mut cfg = cfg.clone();
    cfg.arm.max_concurrency = concurrency.max(1);
    let client = arm_client_from_config(&cfg).context("building the ARM client")?;
    let pair = cfg
        .pairs
        .first()
        .context("the generated config has no pair")?;
    let t0 = Instant::now();
    let report = check_with(&client, &cfg, pair, concurrency).await;
    Ok((t0.elapsed(), report))
}

async fn check_with(
    client: &ArmClient,
    cfg: &DrConfig,
    pair: &crate::config::dr::Pair,
    concurrency: usize,
) -> Report {
    let reader = ArmReader {
        client,
        concurrency: concurrency.max(1),
    };
    check_pair(&reader, cfg, pair, OffsetDateTime::now_utc(), None).await
}

/// Runs this binary as the probe and parses its result line.
async fn run_probe(config: &std::path::Path) -> anyhow::Result<ProbeResult> {
    let exe = std::env::current_exe().context("locating the datashare-dr binary")?;
    let out = tokio::process::Command::new(&exe)
        .arg(PROBE)
        .env(PROBE_CONFIG_ENV, config)
        .env_remove("ARM_ENDPOINT")
        .env_remove("ARM_AUTH")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {} {PROBE}", exe.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "the readiness probe failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("the readiness probe printed no result line")?;
    serde_json::from_str(line).context("parsing the readiness probe's result line")
}

/// Peak resident set size of this process (`VmHWM`, kB), from `/proc/self/status`.
pub fn vmhwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The probe (child process): checks the first pair of the config named by
/// [`PROBE_CONFIG_ENV`] once and prints a [`ProbeResult`] line. Exit code 0 on success.
pub fn probe_main() -> anyhow::Result<i32> {
    let path = std::env::var_os(PROBE_CONFIG_ENV)
        .with_context(|| format!("{PROBE_CONFIG_ENV} is not set (internal benchmark probe)"))?;
    let cfg = DrConfig::load(std::path::Path::new(&path))
        .map_err(|e| anyhow::anyhow!("{}: {e}", std::path::Path::new(&path).display()))?;
    let rt = table::runtime()?;
    let (elapsed, report) = rt.block_on(timed_check(&cfg, cfg.arm.max_concurrency))?;
    drop(rt);
    let result = ProbeResult {
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        vmhwm_kb: vmhwm_kb().context("reading VmHWM from /proc/self/status")?,
        status: report.status,
        findings: report.findings.len(),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string(&result)?)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_peak_rss() {
        let kb = vmhwm_kb().expect("VmHWM on Linux");
        assert!(kb > 0);
    }

    #[test]
    fn the_probe_result_round_trips_as_one_json_line() {
        let r = ProbeResult {
            elapsed_ms: 12.5,
            vmhwm_kb: 20_000,
            status: Status::Ready,
            findings: 0,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        let back: ProbeResult = serde_json::from_str(&line).unwrap();
        assert_eq!(back.vmhwm_kb, 20_000);
        assert_eq!(back.status, Status::Ready);
    }
}
