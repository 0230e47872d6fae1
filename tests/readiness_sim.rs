//! Readiness against the simulator: a freshly replicated pair is Ready; breaking one thing on
//! purpose turns up as its own finding with the right severity and status.

mod support;

use std::time::Duration;

use datashare_dr::arm::client::ArmClient;
use datashare_dr::arm::id::ResourceId;
use datashare_dr::arm::models::{Invitation, InvitationTarget};
use datashare_dr::arm::ops::ROLE_ASSIGNMENTS_API_VERSION;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::readiness::arm_reader::ArmReader;
use datashare_dr::readiness::check::check_pair;
use datashare_dr::readiness::{Finding, Report, Severity, Status, codes};
use datashare_dr::sim::{self, Estate, SimHandle, StoreKind};
use time::OffsetDateTime;

struct World {
    sim: SimHandle,
    cfg: DrConfig,
    client: ArmClient,
    estate: Estate,
}

async fn replicated_world() -> World {
    let (sim, estate) = support::estate::populated(2, 3, 2, 7).await;
    let toml = sim::write_config(&estate, &sim.base_url);
    let cfg = DrConfig::from_toml_str(&toml, "sim.toml").expect("generated config loads");
    let client = support::estate::bootstrap(&sim, &cfg, &cfg.pairs[0]).await;
    World {
        sim,
        cfg,
        client,
        estate,
    }
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

/// `DELETE {id}?api-version=…` on the simulator as its admin (for resources the Data Share
/// client has no operation for: stores, role assignments).
async fn arm_delete(w: &World, id: &str, api_version: &str) {
    let url = format!(
        "{}{}?api-version={api_version}",
        w.sim.base_url.trim_end_matches('/'),
        id
    );
    let resp = reqwest::Client::new()
        .delete(&url)
        .bearer_auth(&w.estate.admin_token)
        .send()
        .await
        .expect("the simulator answers");
    assert!(resp.status().is_success(), "DELETE {id}: {}", resp.status());
}

/// The secondary of the first storage-account store pair of the estate.
fn secondary_storage_store(w: &World) -> String {
    w.estate
        .stores
        .iter()
        .find(|s| s.kind == StoreKind::Storage)
        .map(|s| s.secondary.clone())
        .expect("the estate maps a storage account")
}

fn first_secondary_share(w: &World) -> datashare_dr::arm::id::ShareId {
    let pair = &w.cfg.pairs[0];
    pair.secondary
        .share(&w.estate.shares[0])
        .expect("secondary share id")
}

fn finding_on<'a>(report: &'a Report, code: &str, resource: &str) -> Option<&'a Finding> {
    report
        .findings
        .iter()
        .find(|f| f.code == code && f.resource_id.eq_ignore_ascii_case(resource))
}

#[tokio::test]
async fn a_deleted_secondary_store_is_critical() {
    let w = replicated_world().await;
    let store = secondary_storage_store(&w);
    arm_delete(&w, &store, "2023-05-01").await;
    let report = check(&w).await;
    assert_finding(
        &report,
        codes::STORE_MISSING,
        Severity::Critical,
        Status::NotReady,
    );
    assert!(
        finding_on(&report, codes::STORE_MISSING, &store).is_some(),
        "the finding names the deleted store: {:#?}",
        report.findings
    );
}

#[tokio::test]
async fn a_missing_reader_role_on_a_secondary_store_is_critical() {
    let w = replicated_world().await;
    let store = secondary_storage_store(&w);
    let principal = w.estate.secondary.principal_id.clone();
    let scope = ResourceId::parse(&store).expect("store id");
    // Every assignment of the secondary identity that grants access to this store (at the store
    // or inherited from above it).
    let assignments = w
        .client
        .list_role_assignments(&scope, &principal)
        .await
        .expect("role assignments");
    assert!(
        !assignments.is_empty(),
        "the estate grants the secondary identity a role on {store}"
    );
    for a in &assignments {
        arm_delete(&w, &a.id, ROLE_ASSIGNMENTS_API_VERSION).await;
    }
    let report = check(&w).await;
    assert_finding(
        &report,
        codes::IDENTITY_ROLE_MISSING,
        Severity::Critical,
        Status::NotReady,
    );
    assert!(
        finding_on(&report, codes::IDENTITY_ROLE_MISSING, &store).is_some(),
        "the finding names the store: {:#?}",
        report.findings
    );
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.code != codes::STORE_MISSING),
        "the store itself is still there"
    );
}

#[tokio::test]
async fn a_consumer_without_a_secondary_invitation_is_a_warning() {
    let w = replicated_world().await;
    let share = first_secondary_share(&w);
    let invitations = w
        .client
        .list_invitations(&share)
        .await
        .expect("invitations");
    assert!(
        !invitations.is_empty(),
        "replicate pre-stages invitations on the secondary (policy `now`)"
    );
    // Withdraw the secondary invitation of one consumer.
    let victim = &invitations[0];
    let name = victim.meta.name.clone().expect("invitation name");
    w.client
        .delete_invitation(&share.invitation(&name).expect("invitation id"))
        .await
        .expect("delete invitation");
    let report = check(&w).await;
    assert_finding(
        &report,
        codes::CONSUMER_NOT_COVERED,
        Severity::Warning,
        Status::Degraded,
    );
    let f = report
        .findings
        .iter()
        .find(|f| f.code == codes::CONSUMER_NOT_COVERED)
        .expect("finding");
    assert!(
        f.resource_id
            .to_ascii_lowercase()
            .starts_with(&share.as_str().to_ascii_lowercase()),
        "the finding names the secondary share: {f:#?}"
    );
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.code == codes::CONSUMER_NOT_COVERED)
            .count(),
        1,
        "only the consumer whose invitation was withdrawn: {:#?}",
        report.findings
    );
}

#[tokio::test]
async fn a_secondary_invitation_expiring_soon_is_a_warning() {
    let w = replicated_world().await;
    let share = first_secondary_share(&w);
    let expires = OffsetDateTime::now_utc() + time::Duration::days(3);
    let id = share.invitation("expiring-soon").expect("invitation id");
    w.client
        .put_invitation(
            &id,
            &Invitation::new(
                &InvitationTarget::Email("late@fabrikam.example".into()),
                Some(expires),
            ),
        )
        .await
        .expect("create invitation");
    let report = check(&w).await;
    assert_finding(
        &report,
        codes::INVITATION_EXPIRING,
        Severity::Warning,
        Status::Degraded,
    );
    assert!(
        finding_on(&report, codes::INVITATION_EXPIRING, id.as_str()).is_some(),
        "the finding names the invitation: {:#?}",
        report.findings
    );
}

#[tokio::test]
async fn an_invitation_expiring_beyond_the_horizon_is_not_a_finding() {
    let w = replicated_world().await;
    let share = first_secondary_share(&w);
    let id = share.invitation("expiring-later").expect("invitation id");
    w.client
        .put_invitation(
            &id,
            &Invitation::new(
                &InvitationTarget::Email("later@fabrikam.example".into()),
                Some(OffsetDateTime::now_utc() + time::Duration::days(60)),
            ),
        )
        .await
        .expect("create invitation");
    let report = check(&w).await;
    assert_eq!(report.status, Status::Ready, "{:#?}", report.findings);
}
