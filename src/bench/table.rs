//! `datashare-dr bench all` (alias `bench table`): every benchmark of the project against ONE
//! simulator, printed as ONE table — plus the helpers the simulator-backed benchmarks share.
//!
//! One run: the cold-start benchmark (process spawns; needs no simulator), then, against a single
//! in-process simulator (latency `--latency-ms`, ARM throttling on), each benchmark on its own
//! generated estate (`populate` with a distinct seed, so each has its own subscription and
//! therefore its own ARM token buckets, as separate subscriptions have in Azure):
//! ARM reads (issue 3), replicate bootstrap + steady-state plan (issue 4), readiness with its
//! sequential naive baseline (issue 5 / 8), failover alert → `complete` (issue 6).
//! Between benchmarks the simulator's counters and buckets are reset and each benchmark builds a
//! fresh ARM client, so every figure starts from full buckets on both sides — the state its lower
//! bound assumes.
//!
//! Fairness of the bounds: `max(n × latency / concurrency, time the bucket allows)` where the
//! bucket time is `max(0, n − burst) / refill` with ARM's numbers (reads 250 / 25 s⁻¹, writes and
//! deletes 200 / 10 s⁻¹) and `n` is what the simulator counted, not what we meant to send.
//!
//! Benchmark glue: `anyhow` and printing allowed. Domain modules must not import this.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;

use super::Row;
use crate::arm::client::{ArmClient, ArmSettings};
use crate::arm::{AuthMode, Secret};
use crate::cli::BenchArgs;
use crate::config::dr::DrConfig;
use crate::sim::{self, Estate, FaultSettings, PopulateSpec, SimHandle, SimOptions};

/// ARM's read bucket: burst and refill per second (per subscription and principal).
pub const READ_BUCKET: (u64, f64) = (250, 25.0);
/// ARM's write bucket (deletes have the same numbers in their own bucket).
pub const WRITE_BUCKET: (u64, f64) = (200, 10.0);

/// Seeds of the estates `bench all` generates (one subscription each).
pub const SEED_ARM_READS: u64 = 31;
pub const SEED_REPLICATE: u64 = 41;
pub const SEED_FAILOVER: u64 = 61;

/// Time a token bucket (`burst`, `rate`/s, starting full) needs to admit `n` requests:
/// `max(0, n − burst) / rate`.
pub fn bucket_time(n: u64, (burst, rate): (u64, f64)) -> Duration {
    Duration::from_secs_f64(n.saturating_sub(burst) as f64 / rate)
}

/// `n × latency / concurrency`: the time `n` requests take when `concurrency` are always in
/// flight and each takes `latency`.
pub fn latency_time(n: u64, latency: Duration, concurrency: usize) -> Duration {
    Duration::from_secs_f64(n as f64 * latency.as_secs_f64() / concurrency.max(1) as f64)
}

/// The lower bound the benchmarks compare with:
/// `max(n × latency / concurrency, time the bucket allows)`.
pub fn lower_bound(n: u64, latency: Duration, concurrency: usize, bucket: (u64, f64)) -> Duration {
    latency_time(n, latency, concurrency).max(bucket_time(n, bucket))
}

/// `measured / bound` (a zero bound counts as 1 ms so the ratio stays finite).
pub fn ratio(measured: Duration, bound: Duration) -> f64 {
    measured.as_secs_f64() / bound.as_secs_f64().max(1e-3)
}

/// Seconds with two decimals (`12.34 s`), or milliseconds below one second.
pub fn fmt_dur(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// A row for a count that must be exactly `expected` (e.g. writes = minimum, 429s = 0): the
/// ratio is 1 (0 for an expected 0) when equal and infinite otherwise — fewer than expected is a
/// miss too (e.g. writes that failed) — against target 1.
pub fn exact_count_row(name: impl Into<String>, measured: u64, expected: u64, what: &str) -> Row {
    Row {
        name: name.into(),
        measured: measured.to_string(),
        detail: String::new(),
        reference: format!("{what} {expected} {}", super::EXACT_MARK),
        ratio: match (measured == expected, expected) {
            (true, 0) => 0.0,
            (true, _) => 1.0,
            (false, _) => f64::INFINITY,
        },
        target_ratio: 1.0,
    }
}

/// The estate sizes of the issues (200 × 10 × 5), or small ones with `--quick`.
pub fn fleet(quick: bool, seed: u64) -> PopulateSpec {
    if quick {
        PopulateSpec {
            shares: 20,
            datasets: 5,
            consumers: 3,
            seed,
        }
    } else {
        PopulateSpec {
            shares: 200,
            datasets: 10,
            consumers: 5,
            seed,
        }
    }
}

/// Simulator options for the benchmarks: `latency_ms`, throttling on, defaults otherwise
/// (page size 5, so list paging is exercised and counted), 10 ms async operations.
pub fn sim_options(latency_ms: u64) -> SimOptions {
    SimOptions {
        latency_ms,
        throttle: true,
        lro_delay_ms: 10,
        log_capacity: 200_000,
        ..SimOptions::default()
    }
}

/// A multi-threaded runtime for one benchmark command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs `f` against a fresh in-process simulator (for the single-benchmark commands).
pub fn with_sim<F, Fut>(latency_ms: u64, f: F) -> anyhow::Result<Vec<Row>>
where
    F: FnOnce(SimHandle) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<Row>>>,
{
    runtime()?.block_on(async move {
        let sim = sim::spawn(sim_options(latency_ms))
            .await
            .context("starting the simulator")?;
        f(sim).await
    })
}

/// One benchmark on a simulator of its own (`bench <name>`): `run_on(sim, quick)`, then the
/// simulator stops.
pub fn run_alone(
    args: &BenchArgs,
    run_on: impl AsyncFn(&SimHandle, bool) -> anyhow::Result<Vec<Row>>,
) -> anyhow::Result<Vec<Row>> {
    let quick = args.quick;
    with_sim(args.latency_ms, |sim| async move {
        let rows = run_on(&sim, quick).await;
        sim.shutdown().await;
        rows
    })
}

/// Starts an unmeasured set-up step: the simulator's latency to 0 and its ARM throttling off, so
/// set-up does not spend the buckets' time (use [`setup_client`], whose limiter is off too).
/// Returns the latency to give back to [`end_setup`].
pub fn begin_setup(sim: &SimHandle) -> u64 {
    let latency_ms = sim.faults().latency_ms;
    sim.set_faults(&FaultSettings {
        latency_ms: Some(0),
        throttle: Some(false),
        ..FaultSettings::default()
    });
    latency_ms
}

/// Ends a set-up step: latency back to `latency_ms`, throttling on (every measurement runs so).
pub fn end_setup(sim: &SimHandle, latency_ms: u64) {
    sim.set_faults(&FaultSettings {
        latency_ms: Some(latency_ms),
        throttle: Some(true),
        ..FaultSettings::default()
    });
}

/// Runs `step` as an unmeasured set-up step ([`begin_setup`] … [`end_setup`]); latency and
/// throttling are restored whether it succeeds or not.
pub async fn in_setup<T>(sim: &SimHandle, step: impl Future<Output = T>) -> T {
    let latency_ms = begin_setup(sim);
    let out = step.await;
    end_setup(sim, latency_ms);
    out
}

/// The set-up replicate pass of `pair` (through a limiter-less `setup` client), then one
/// snapshot per share (the simulator fires every trigger once).
pub async fn replicate_setup(
    sim: &SimHandle,
    setup: &ArmClient,
    pair: &crate::config::dr::Pair,
    concurrency: usize,
) -> anyhow::Result<()> {
    let rep = crate::reconcile::apply::replicate(
        setup,
        pair,
        &crate::reconcile::apply::ReplicateOptions {
            dry_run: false,
            prune: false,
            concurrency: concurrency.max(1),
            now: time::OffsetDateTime::now_utc(),
        },
        &|_, _| {},
    )
    .await;
    if let Some(e) = rep.error {
        anyhow::bail!("set-up replicate failed: {e}");
    }
    sim.fire_triggers();
    Ok(())
}

/// A client for unmeasured set-up steps: no client-side limiter (run them between
/// [`begin_setup`] and [`end_setup`]).
pub fn setup_client(sim: &SimHandle, estate: &Estate) -> anyhow::Result<ArmClient> {
    sim_client(sim, estate, |s| s.rate_limits.enabled = false)
}

/// The DR config the simulator writes for `estate` (what `plan --config` would read).
pub fn estate_config(sim: &SimHandle, estate: &Estate) -> anyhow::Result<DrConfig> {
    DrConfig::from_toml_str(&sim::write_config(estate, &sim.base_url), "bench.toml")
        .context("loading the DR config generated for the simulated estate")
}

/// An ARM client for the simulator as an operator would have it: the library defaults
/// ([`ArmSettings::new`]: 16 concurrent calls, ARM's buckets, 120 s per call) with the estate's
/// static token, then `tweak` applied.
pub fn sim_client(
    sim: &SimHandle,
    estate: &Estate,
    tweak: impl FnOnce(&mut ArmSettings),
) -> anyhow::Result<ArmClient> {
    let endpoint = url::Url::parse(&sim.base_url).context("simulator URL")?;
    let mut settings = ArmSettings::new(
        endpoint,
        AuthMode::StaticToken(Secret::new(estate.admin_token.clone())),
    );
    tweak(&mut settings);
    ArmClient::new(settings).context("building the ARM client")
}

/// Describes the machine (CPU model, cores, memory) for the table's header line.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "? GiB".into());
    format!("{cpu}, {cores} cores, {mem_gib} RAM")
}

/// `bench all`: every benchmark against one simulator; returns all rows.
pub fn run_all(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    eprintln!(
        "bench all: {} (latency {} ms{})",
        machine(),
        args.latency_ms,
        if args.quick { ", quick" } else { "" }
    );
    let mut rows = Vec::new();
    eprintln!("bench all: cold start …");
    rows.extend(super::cold_start::run(args)?);
    let latency_ms = args.latency_ms;
    let quick = args.quick;
    rows.extend(with_sim(latency_ms, |sim| async move {
        let mut rows = Vec::new();
        eprintln!("bench all: ARM reads …");
        rows.extend(super::arm_reads::run_on(&sim, quick).await?);
        sim.reset_counters();
        eprintln!("bench all: readiness (concurrent, and one request at a time) …");
        rows.extend(super::readiness::run_on(&sim, quick).await?);
        sim.reset_counters();
        eprintln!("bench all: replicate bootstrap + steady-state plan …");
        rows.extend(super::replicate::run_on(&sim, quick).await?);
        sim.reset_counters();
        eprintln!("bench all: failover alert -> complete …");
        rows.extend(super::failover::run_on(&sim, quick).await?);
        sim.reset_counters();
        sim.shutdown().await;
        Ok(rows)
    })?);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_bound_counts_only_what_exceeds_the_burst() {
        assert_eq!(bucket_time(150, WRITE_BUCKET), Duration::ZERO);
        assert_eq!(bucket_time(2000, READ_BUCKET), Duration::from_secs(70));
        assert_eq!(bucket_time(3000, WRITE_BUCKET), Duration::from_secs(280));
    }

    #[test]
    fn the_lower_bound_is_the_larger_of_latency_and_bucket_time() {
        let lat = Duration::from_millis(20);
        // 2,000 reads: 2.5 s of latency at 16 in flight, but 70 s of read bucket.
        assert_eq!(
            lower_bound(2000, lat, 16, READ_BUCKET),
            Duration::from_secs(70)
        );
        // 200 reads fit in the burst: latency bound 0.25 s.
        assert_eq!(
            lower_bound(200, lat, 16, READ_BUCKET),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn an_exact_count_row_passes_only_on_equality() {
        assert!(exact_count_row("w", 10, 10, "minimum").within_target());
        assert!(exact_count_row("t", 0, 0, "target").within_target());
        assert!(!exact_count_row("w", 9, 10, "minimum").within_target());
        assert!(!exact_count_row("w", 11, 10, "minimum").within_target());
        assert!(!exact_count_row("t", 1, 0, "target").within_target());
    }
}
