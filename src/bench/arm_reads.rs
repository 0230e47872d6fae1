//! `datashare-dr bench arm-reads` (issue 3): 2,000 ARM reads through [`ArmClient`] against the
//! simulator (latency 20 ms, throttling on), versus the lower bound
//! `max(reads × latency / concurrency, max(0, reads − 250) / 25 s)`, and the 429s provoked
//! (target: none).
//!
//! The reads are real single-item operations on a generated 200-share estate: `Shares_Get`,
//! `DataSets_Get` and `Invitations_Get`, share by share (the ids come from lists made before the
//! measurement; the simulator's counters and buckets are reset after that set-up). All reads are
//! submitted at once; the client alone keeps them at its default concurrency (16 in flight) and
//! paces them to ARM's read bucket — that is what is measured.
//!
//! Throttling on both sides: the simulator keeps ARM's token buckets per (principal,
//! subscription, operation type) — reads 250 burst / 25 s⁻¹ — plus an all-principals bucket per
//! subscription at 15× those numbers, and answers 429 + `Retry-After` when one is empty. The
//! client keeps one bucket per (subscription, operation type) with the same numbers minus a 5%
//! burst reserve (so ~237 reads go out at once, then 25 per second) and lowers its level to the
//! `x-ms-ratelimit-remaining-subscription-reads` header the simulator sends on every answer.
//!
//! Benchmark glue: `anyhow` allowed.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;

use super::Row;
use super::table::{
    self, READ_BUCKET, SEED_ARM_READS, exact_count_row, fmt_dur, lower_bound, ratio,
};
use crate::arm::client::ArmClient;
use crate::arm::id::{AccountId, DataSetId, InvitationId, ShareId};
use crate::cli::BenchArgs;
use crate::sim::SimHandle;

/// Reads issued (the figure) and with `--quick`.
pub const READS: usize = 2000;
pub const QUICK_READS: usize = 400;

/// One single-item read.
#[derive(Debug, Clone)]
enum Read {
    Share(ShareId),
    DataSet(DataSetId),
    Invitation(InvitationId),
}

async fn read(client: &ArmClient, r: &Read) -> Result<(), crate::arm::ArmError> {
    match r {
        Read::Share(id) => client.get_share(id).await.map(drop),
        Read::DataSet(id) => client.get_dataset(id).await.map(drop),
        Read::Invitation(id) => client.get_invitation(id).await.map(drop),
    }
}

/// `bench arm-reads` on its own simulator.
pub fn run(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    table::run_alone(args, run_on)
}

/// Runs the benchmark on a running simulator (generates its own estate, seed
/// [`SEED_ARM_READS`]).
pub async fn run_on(sim: &SimHandle, quick: bool) -> anyhow::Result<Vec<Row>> {
    let n = if quick { QUICK_READS } else { READS };
    let estate = sim
        .populate(&table::fleet(quick, SEED_ARM_READS))
        .context("generating the estate")?;
    let account = AccountId::parse(&estate.primary.id).context("primary account id")?;

    // Set-up (not measured): collect ids to read, from lists.
    let setup = table::setup_client(sim, &estate)?;
    let latency_ms = table::begin_setup(sim);
    let per_share = collect_ids(&setup, &account, &estate.shares).await;
    table::end_setup(sim, latency_ms);
    let per_share = per_share?;
    let mut ids: Vec<Read> = Vec::new();
    // Share by share: the share, its data sets, its invitations (2,000 reads of the 200 × 10 × 5
    // estate: 125 Shares_Get, 1,250 DataSets_Get, 625 Invitations_Get).
    ids.extend(per_share.into_iter().flatten());
    anyhow::ensure!(!ids.is_empty(), "the generated estate has nothing to read");
    let plan: Vec<Read> = ids.iter().cycle().take(n).cloned().collect();
    measure(sim, &estate, &plan).await
}

/// The single-item ids of each share: the share, its data sets, its invitations.
async fn collect_ids(
    setup: &ArmClient,
    account: &AccountId,
    shares: &[String],
) -> anyhow::Result<Vec<Vec<Read>>> {
    let mut per_share = Vec::new();
    for name in shares {
        let share = account.share(name).context("share id")?;
        let mut v = vec![Read::Share(share.clone())];
        for ds in setup
            .list_datasets(&share)
            .await
            .context("listing data sets")?
        {
            if let Some(dn) = ds.name() {
                v.push(Read::DataSet(share.data_set(dn)?));
            }
        }
        for inv in setup
            .list_invitations(&share)
            .await
            .context("listing invitations")?
        {
            if let Some(iname) = inv.name() {
                v.push(Read::Invitation(share.invitation(iname)?));
            }
        }
        per_share.push(v);
    }
    Ok(per_share)
}

/// Issues `plan` at once through a fresh default client and builds the rows.
async fn measure(
    sim: &SimHandle,
    estate: &crate::sim::Estate,
    plan: &[Read],
) -> anyhow::Result<Vec<Row>> {
    let n = plan.len();
    // Measurement: fresh buckets on both sides, the client's defaults.
    sim.reset_counters();
    let client = table::sim_client(sim, estate, |_| {})?;
    let concurrency = client.settings().max_concurrency;
    let t0 = Instant::now();
    let results: Vec<Result<(), crate::arm::ArmError>> = futures::stream::iter(plan.iter())
        .map(|r| read(&client, r))
        .buffer_unordered(n)
        .collect()
        .await;
    let elapsed = t0.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("arm-reads: first failure: {e}");
    }
    let stats = sim.stats();
    let by_op = ["Shares_Get", "DataSets_Get", "Invitations_Get"]
        .iter()
        .map(|op| {
            format!(
                "{op} {}",
                stats.operations.get(*op).map(|o| o.calls).unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let latency = Duration::from_millis(sim.faults().latency_ms);
    let bound = lower_bound(stats.reads, latency, concurrency, READ_BUCKET);
    let mut main = Row {
        name: format!("arm-reads: {n} GETs via ArmClient (16 in flight)"),
        measured: fmt_dur(elapsed),
        detail: format!(
            "{} reads served ({by_op}), {failed} failed, {} x 429",
            stats.reads, stats.throttled
        ),
        reference: format!(
            "bound {} = max({} x {} ms / {concurrency}, ({} - 250) / 25 s)",
            fmt_dur(bound),
            stats.reads,
            latency.as_millis(),
            stats.reads
        ),
        ratio: ratio(elapsed, bound),
        target_ratio: 1.5,
    };
    if failed > 0 || stats.reads != n as u64 {
        main.ratio = f64::INFINITY;
    }
    Ok(vec![
        main,
        exact_count_row("arm-reads: 429s provoked", stats.throttled, 0, "target"),
    ])
}
