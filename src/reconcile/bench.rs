//! `datashare-dr bench replicate`: bootstrap and steady-state figures against the simulator.
//!
//! Bootstrap: an empty secondary for an estate of S shares × D data sets × C consumers; the
//! writes must equal the exact minimum (one per planned change) with no 429 provoked, and the
//! elapsed time is compared with `max(writes × latency / concurrency, time ARM's write bucket
//! allows)` (200 burst, 10/s). Steady state: a plan after the bootstrap must use list reads
//! only and is compared with `max(reads × latency / concurrency, time the read bucket allows)`
//! (250 burst, 25/s; the bucket is given time to refill first).
//!
//! Benchmark glue (not a domain module): may use the simulator, `anyhow` and printing.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use time::OffsetDateTime;

use crate::bench::Row;
use crate::config::dr::DrConfig;
use crate::readiness::arm_reader::arm_client_from_config;
use crate::sim::{self, PopulateSpec, SimOptions};

use super::apply::{apply, plan_pair};
use super::report::Outcome;

/// Time a token bucket (`burst`, `rate`/s, starting full) needs to admit `n` requests.
pub fn bucket_time(n: u64, burst: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(n.saturating_sub(burst) as f64 / rate)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Runs the replicate benchmark; `quick` uses a small estate (CI smoke runs).
pub fn run(latency_ms: u64, quick: bool) -> anyhow::Result<Vec<Row>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(latency_ms, quick))
}

async fn run_async(latency_ms: u64, quick: bool) -> anyhow::Result<Vec<Row>> {
    let spec = if quick {
        PopulateSpec {
            shares: 20,
            datasets: 5,
            consumers: 3,
            seed: 1,
        }
    } else {
        PopulateSpec {
            shares: 200,
            datasets: 10,
            consumers: 5,
            seed: 1,
        }
    };
    let sim = sim::spawn(SimOptions {
        latency_ms,
        lro_delay_ms: 5,
        ..SimOptions::default()
    })
    .await
    .context("starting the simulator")?;
    let estate = sim.populate(&spec).context("generating the estate")?;
    let cfg = DrConfig::from_toml_str(&sim::write_config(&estate, &sim.base_url), "bench.toml")
        .context("loading the generated DR config")?;
    let client = arm_client_from_config(&cfg).context("building the ARM client")?;
    let pair = cfg
        .pairs
        .first()
        .context("the generated config has no pair")?;
    let concurrency = cfg.arm.max_concurrency.max(1);
    let latency = Duration::from_millis(latency_ms);
    let label = format!("{}x{}x{}", spec.shares, spec.datasets, spec.consumers);
    sim.reset_counters();

    // Bootstrap: observe + plan, then apply (timed separately: the bound is about writes).
    let t0 = Instant::now();
    let (_, plan) = plan_pair(&client, pair, false, OffsetDateTime::now_utc(), concurrency)
        .await
        .context("bootstrap observe")?;
    let observe = t0.elapsed();
    let before_apply = sim.stats();
    let t1 = Instant::now();
    let results = apply(&client, &pair.secondary, &plan, concurrency, &|_, _| {}).await;
    let boot = t1.elapsed();
    let failed = results.iter().filter(|r| r.outcome != Outcome::Ok).count();
    let s = sim.stats();
    let minimum = plan.changes.len() as u64;
    let writes = s.writes + s.deletes - before_apply.writes - before_apply.deletes;
    let boot_bound =
        (latency * (writes as u32) / concurrency as u32).max(bucket_time(writes, 200, 10.0));
    let mut rows = vec![
        Row {
            name: format!("replicate bootstrap apply {label}"),
            measured: secs(boot),
            detail: format!(
                "{writes} writes (minimum {minimum}), {failed} failed, {} throttled; observe+plan {}",
                s.throttled,
                secs(observe)
            ),
            reference: format!("bound {}", secs(boot_bound)),
            ratio: boot.as_secs_f64() / boot_bound.as_secs_f64().max(1e-9),
            target_ratio: 1.5,
        },
        Row {
            name: "replicate bootstrap writes / minimum".into(),
            measured: format!("{writes}"),
            detail: String::new(),
            reference: format!("minimum {minimum}"),
            ratio: writes as f64 / (minimum.max(1)) as f64,
            target_ratio: 1.0,
        },
        Row {
            name: "replicate bootstrap 429s provoked".into(),
            measured: format!("{}", s.throttled),
            detail: String::new(),
            reference: "0".into(),
            ratio: s.throttled as f64,
            target_ratio: 0.0,
        },
    ];

    // Steady state: let the read bucket refill (250 tokens at 25/s), then plan.
    tokio::time::sleep(Duration::from_secs(10)).await;
    sim.reset_counters();
    let t0 = Instant::now();
    let (_, plan) = plan_pair(&client, pair, false, OffsetDateTime::now_utc(), concurrency)
        .await
        .context("steady-state plan")?;
    let steady = t0.elapsed();
    let s = sim.stats();
    let non_list: Vec<&String> = s
        .operations
        .keys()
        .filter(|op| !op.contains("_List"))
        .collect();
    let reads = s.reads;
    let steady_bound =
        (latency * (reads as u32) / concurrency as u32).max(bucket_time(reads, 250, 25.0));
    rows.push(Row {
        name: format!("replicate steady-state plan {label}"),
        measured: secs(steady),
        detail: format!(
            "{reads} reads ({}), {} writes, {} changes, {} throttled",
            if non_list.is_empty() {
                "lists only".to_string()
            } else {
                format!("NOT only lists: {non_list:?}")
            },
            s.writes + s.deletes,
            plan.changes.len(),
            s.throttled
        ),
        reference: format!("bound {}", secs(steady_bound)),
        ratio: if non_list.is_empty() && plan.changes.is_empty() {
            steady.as_secs_f64() / steady_bound.as_secs_f64().max(1e-9)
        } else {
            f64::INFINITY
        },
        target_ratio: 1.5,
    });
    sim.shutdown().await;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_time_counts_only_what_exceeds_the_burst() {
        assert_eq!(bucket_time(150, 200, 10.0), Duration::ZERO);
        assert_eq!(bucket_time(3000, 200, 10.0), Duration::from_secs(280));
    }
}
