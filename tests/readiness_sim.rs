//! Readiness against the simulator: a freshly replicated pair is Ready; breaking one thing on
//! purpose turns up as its own finding with the right severity and status.

use std::time::Duration;

use datashare_dr::arm::client::ArmClient;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::readiness::arm_reader::{ArmReader, arm_client_from_config};
use datashare_dr::readiness::check::check_pair;
use datashare_dr::readiness::{Report, Severity, Status, codes};
use datashare_dr::reconcile::apply::{ReplicateOptions, replicate};
use datashare_dr::sim::{self, PopulateSpec, SimHandle, SimOptions};
use time::OffsetDateTime;

struct World {
    sim: SimHandle,
    cfg: DrConfig,
    client: ArmClient,
}

async fn replicated_world() -> World {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = sim::spawn(SimOptions {
        lro_delay_ms: 5,
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    let estate = sim
        .populate(&PopulateSpec {
            shares: 2,
            datasets: 3,
            consumers: 2,
            seed: 7,
        })
        .expect("populate");
    let toml = sim::write_config(&estate, &sim.base_url);
    let cfg = DrConfig::from_toml_str(&toml, "sim.toml").expect("generated config loads");
    let client = arm_client_from_config(&cfg).expect("client");
    let report = replicate(
        &client,
        &cfg.pairs[0],
        &ReplicateOptions {
            dry_run: false,
            prune: false,
            concurrency: 8,
            now: OffsetDateTime::now_utc(),
        },
        &|_, _| {},
    )
    .await;
    assert!(
        report.error.is_none(),
        "replicate failed: {:?}",
        report.error
    );
    sim.fire_triggers();
    World { sim, cfg, client }
}

async fn check(w: &World) -> Report {
    let reader = ArmReader {
        client: &w.client,
        concurrency: 8,
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        check_pair(
            &reader,
            &w.cfg,
            &w.cfg.pairs[0],
            OffsetDateTime::now_utc(),
            None,
        ),
    )
    .await
    .expect("check finishes")
}

fn assert_finding(report: &Report, code: &str, severity: Severity, status: Status) {
    let f = report.findings.iter().find(|f| f.code == code);
    assert!(f.is_some(), "expected {code}, got {:#?}", report.findings);
    assert_eq!(f.map(|f| f.severity), Some(severity), "{code}");
    assert_eq!(report.status, status, "{:#?}", report.findings);
}

#[tokio::test]
async fn a_freshly_replicated_pair_is_ready() {
    let w = replicated_world().await;
    let report = check(&w).await;
    assert_eq!(report.status, Status::Ready, "{:#?}", report.findings);
    assert!(report.rpo.iter().all(|r| !r.exceeded));
}

#[tokio::test]
async fn a_primary_region_outage_is_a_warning() {
    let w = replicated_world().await;
    w.sim.region_down(&w.cfg.pairs[0].primary_region);
    let report = check(&w).await;
    assert_finding(
        &report,
        codes::PRIMARY_UNREACHABLE,
        Severity::Warning,
        Status::Degraded,
    );
}

#[tokio::test]
async fn a_secondary_region_outage_is_critical() {
    let w = replicated_world().await;
    w.sim.region_down(&w.cfg.pairs[0].secondary_region);
    let report = check(&w).await;
    assert_finding(
        &report,
        codes::SECONDARY_UNREACHABLE,
        Severity::Critical,
        Status::NotReady,
    );
}

#[tokio::test]
async fn a_stale_snapshot_exceeds_the_rpo() {
    let w = replicated_world().await;
    w.sim.age_history(Duration::from_secs(3 * 86_400));
    let report = check(&w).await;
    assert_finding(
        &report,
        codes::RPO_EXCEEDED,
        Severity::Warning,
        Status::Degraded,
    );
}

#[tokio::test]
async fn a_dataset_removed_from_the_secondary_is_critical() {
    let w = replicated_world().await;
    let pair = &w.cfg.pairs[0];
    let share = w.client.list_shares(&pair.secondary).await.expect("shares")[0]
        .meta
        .name
        .clone()
        .expect("share name");
    let share_id = pair.secondary.share(&share).expect("share id");
    let ds = w.client.list_datasets(&share_id).await.expect("datasets")[0]
        .meta
        .name
        .clone()
        .expect("dataset name");
    w.client
        .delete_dataset(&share_id.data_set(&ds).expect("dataset id"))
        .await
        .expect("delete");
    let report = check(&w).await;
    assert_finding(
        &report,
        codes::DATASET_MISSING,
        Severity::Critical,
        Status::NotReady,
    );
}
