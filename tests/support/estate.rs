//! The simulated estate most integration tests start from: a simulator on a free loopback port,
//! a populated primary, and (for tests that need it) the pair replicated once to the secondary.

use datashare_dr::arm::client::ArmClient;
use datashare_dr::config::dr::{DrConfig, Pair};
use datashare_dr::readiness::arm_reader::arm_client_from_config;
use datashare_dr::reconcile::apply::{ReplicateOptions, replicate};
use datashare_dr::sim::{self, Estate, PopulateSpec, SimHandle, SimOptions};
use time::OffsetDateTime;

/// The simulator tests use (long-running operations finish after 5 ms), with the ring TLS
/// provider installed for the clients.
pub async fn spawn_sim() -> SimHandle {
    datashare_dr::startup::install_crypto_provider();
    sim::spawn(SimOptions {
        lro_delay_ms: 5,
        ..SimOptions::default()
    })
    .await
    .expect("simulator")
}

/// [`spawn_sim`] with a primary of `shares` × `datasets` data sets × `consumers` consumers.
pub async fn populated(
    shares: usize,
    datasets: usize,
    consumers: usize,
    seed: u64,
) -> (SimHandle, Estate) {
    let sim = spawn_sim().await;
    let estate = sim
        .populate(&PopulateSpec {
            shares,
            datasets,
            consumers,
            seed,
        })
        .expect("populate");
    (sim, estate)
}

/// One replicate pass of `pair` (a bootstrap of the empty secondary), which must observe both
/// accounts; then the simulator's triggers fire once so snapshots (RPO) exist.
pub async fn bootstrap(sim: &SimHandle, cfg: &DrConfig, pair: &Pair) -> ArmClient {
    let arm = arm_client_from_config(cfg).expect("ARM client");
    replicate_once(&arm, pair).await;
    sim.fire_triggers();
    arm
}

/// One replicate pass of `pair` (bootstrap, or repair after a test broke something); it must
/// observe both accounts.
pub async fn replicate_once(arm: &ArmClient, pair: &Pair) {
    let rep = replicate(
        arm,
        pair,
        &ReplicateOptions {
            dry_run: false,
            prune: false,
            concurrency: 8,
            now: OffsetDateTime::now_utc(),
        },
        &|_, _| {},
    )
    .await;
    assert!(rep.error.is_none(), "replicate: {:?}", rep.error);
}
