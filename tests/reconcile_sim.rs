//! Replication against the simulator: bootstrap, steady state, repairs with exactly one write,
//! propagation of primary changes, unmapped stores, prune, and convergence under injected faults.

use datashare_dr::arm::client::ArmClient;
use datashare_dr::arm::id::{AccountId, ShareId};
use datashare_dr::arm::models::{
    DataSet, InvitationStatus, Share, ShareKind, SynchronizationSettingKind,
};
use datashare_dr::config::dr::DrConfig;
use datashare_dr::readiness::arm_reader::arm_client_from_config;
use datashare_dr::reconcile::apply::{ReplicateOptions, plan_pair, replicate};
use datashare_dr::reconcile::plan::{Change, FindingCode, Plan};
use datashare_dr::reconcile::report::{Outcome, PairReport};
use datashare_dr::sim::{self, Estate, PopulateSpec, SimHandle, SimOptions, SimStats};
use time::OffsetDateTime;

struct World {
    sim: SimHandle,
    estate: Estate,
    cfg: DrConfig,
    client: ArmClient,
}

async fn world_with(opts: SimOptions, spec: PopulateSpec) -> World {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = sim::spawn(SimOptions {
        lro_delay_ms: 5,
        ..opts
    })
    .await
    .expect("simulator starts");
    let estate = sim.populate(&spec).expect("populate");
    let toml = sim::write_config(&estate, &sim.base_url);
    let cfg = DrConfig::from_toml_str(&toml, "sim.toml").expect("generated config loads");
    let client = arm_client_from_config(&cfg).expect("client");
    World {
        sim,
        estate,
        cfg,
        client,
    }
}

async fn world() -> World {
    world_with(
        SimOptions::default(),
        PopulateSpec {
            shares: 3,
            datasets: 4,
            consumers: 2,
            seed: 11,
        },
    )
    .await
}

fn opts(prune: bool) -> ReplicateOptions {
    ReplicateOptions {
        dry_run: false,
        prune,
        concurrency: 8,
        now: OffsetDateTime::now_utc(),
    }
}

async fn run(w: &World, prune: bool) -> PairReport {
    let r = replicate(&w.client, &w.cfg.pairs[0], &opts(prune), &|_, _| {}).await;
    assert!(r.error.is_none(), "replicate failed: {:?}", r.error);
    r
}

async fn plan_now(w: &World, prune: bool) -> Plan {
    plan_pair(
        &w.client,
        &w.cfg.pairs[0],
        prune,
        OffsetDateTime::now_utc(),
        8,
    )
    .await
    .expect("observe")
    .1
}

fn failures(r: &PairReport) -> Vec<String> {
    r.results
        .iter()
        .filter(|x| x.outcome != Outcome::Ok)
        .map(|x| format!("{}: {:?}", x.change.address(), x.error))
        .collect()
}

fn secondary(w: &World) -> AccountId {
    AccountId::parse(&w.estate.secondary.id).expect("secondary id")
}

fn primary(w: &World) -> AccountId {
    AccountId::parse(&w.estate.primary.id).expect("primary id")
}

/// Writes (PUT/POST) and deletes the simulator served since the last reset.
fn writes(s: &SimStats) -> (u64, u64) {
    (s.writes, s.deletes)
}

#[tokio::test]
async fn bootstrap_of_an_empty_secondary_then_a_second_run_writes_nothing() {
    let w = world().await;
    let first = run(&w, false).await;
    assert!(failures(&first).is_empty(), "{:?}", failures(&first));
    let shares = first
        .results
        .iter()
        .filter(|r| matches!(r.change, Change::CreateShare { .. }))
        .count();
    assert_eq!(shares, w.estate.shares.len());
    let datasets = first
        .results
        .iter()
        .filter(|r| matches!(r.change, Change::CreateDataSet { .. }))
        .count();
    assert!(datasets > 0);
    let invitations = first
        .results
        .iter()
        .filter(|r| matches!(r.change, Change::CreateInvitation { .. }))
        .count();
    assert!(invitations > 0, "consumers with policy `now` are invited");

    w.sim.reset_counters();
    let second = run(&w, false).await;
    assert!(second.plan.changes.is_empty(), "{:?}", second.plan.changes);
    let stats = w.sim.stats();
    assert_eq!(writes(&stats), (0, 0), "a steady-state run writes nothing");
    assert!(stats.reads > 0);
}

fn share(acct: &AccountId, name: &str) -> ShareId {
    acct.share(name).expect("share id")
}

/// Replicates once (bootstrap), resets the simulator's counters, returns the world.
async fn bootstrapped() -> World {
    let w = world().await;
    let r = run(&w, false).await;
    assert!(failures(&r).is_empty(), "{:?}", failures(&r));
    w.sim.reset_counters();
    w
}

fn op_calls(s: &SimStats, op: &str) -> u64 {
    s.operations.get(op).map(|o| o.calls).unwrap_or(0)
}

#[tokio::test]
async fn a_deleted_secondary_dataset_is_repaired_with_exactly_one_write() {
    let w = bootstrapped().await;
    let sid = share(&secondary(&w), &w.estate.shares[0]);
    let victim = w.client.list_datasets(&sid).await.expect("list")[0]
        .name()
        .expect("name")
        .to_string();
    w.client
        .delete_dataset(&sid.data_set(&victim).expect("id"))
        .await
        .expect("delete");
    w.sim.reset_counters();

    let r = run(&w, false).await;
    let addrs: Vec<String> = r.results.iter().map(|x| x.change.address()).collect();
    assert_eq!(
        addrs,
        vec![format!("shares/{}/dataSets/{victim}", w.estate.shares[0])]
    );
    let s = w.sim.stats();
    assert_eq!(writes(&s), (1, 0));
    assert_eq!(op_calls(&s, "DataSets_Create"), 1);
}

#[tokio::test]
async fn a_deleted_secondary_sync_setting_is_repaired_with_exactly_one_write() {
    let w = bootstrapped().await;
    let sid = share(&secondary(&w), &w.estate.shares[1]);
    let settings = w
        .client
        .list_synchronization_settings(&sid)
        .await
        .expect("list");
    let name = settings[0].name().expect("name").to_string();
    w.client
        .delete_synchronization_setting(&sid.synchronization_setting(&name).expect("id"))
        .await
        .expect("delete");
    w.sim.reset_counters();

    let r = run(&w, false).await;
    assert_eq!(r.results.len(), 1, "{:?}", r.results);
    assert_eq!(r.results[0].outcome, Outcome::Ok);
    let s = w.sim.stats();
    assert_eq!(writes(&s), (1, 0));
    assert_eq!(op_calls(&s, "SynchronizationSettings_Create"), 1);
}

#[tokio::test]
async fn a_deleted_secondary_invitation_is_repaired_with_exactly_one_write() {
    let w = bootstrapped().await;
    let sid = share(&secondary(&w), &w.estate.shares[2]);
    let invs = w.client.list_invitations(&sid).await.expect("list");
    assert_eq!(invs.len(), 1, "one consumer has policy `now`");
    let name = invs[0].meta.name.clone().expect("name");
    w.client
        .delete_invitation(&sid.invitation(&name).expect("id"))
        .await
        .expect("delete");
    w.sim.reset_counters();

    let r = run(&w, false).await;
    assert_eq!(r.results.len(), 1, "{:?}", r.results);
    assert!(matches!(
        r.results[0].change,
        Change::CreateInvitation { .. }
    ));
    let s = w.sim.stats();
    assert_eq!(writes(&s), (1, 0));
    assert_eq!(op_calls(&s, "Invitations_Create"), 1);
    assert_eq!(
        w.client.list_invitations(&sid).await.expect("list").len(),
        1
    );
}

#[tokio::test]
async fn a_new_primary_share_and_a_changed_schedule_propagate() {
    let w = bootstrapped().await;
    let p = primary(&w);
    // A new share on the primary, with the data sets and schedule of share 0.
    let src = share(&p, &w.estate.shares[0]);
    let new = share(&p, "share-new");
    let kind = w
        .client
        .get_share(&src)
        .await
        .expect("share")
        .properties
        .share_kind;
    w.client
        .put_share(
            &new,
            &Share::new(Some("brand new".into()), None, kind.expect("kind")),
        )
        .await
        .expect("new share");
    for d in w.client.list_datasets(&src).await.expect("list") {
        let name = d.name().expect("name").to_string();
        let body: DataSet = d.for_create();
        w.client
            .put_dataset(&new.data_set(&name).expect("id"), &body)
            .await
            .expect("copy data set");
    }
    // A changed schedule on share 1: one hour later.
    let s1 = share(&p, &w.estate.shares[1]);
    let mut setting = w
        .client
        .list_synchronization_settings(&s1)
        .await
        .expect("list")[0]
        .clone();
    let name = setting.name().expect("name").to_string();
    if let SynchronizationSettingKind::ScheduleBased(props) = &mut setting.kind {
        props.synchronization_time += time::Duration::hours(1);
    }
    let sid = s1.synchronization_setting(&name).expect("id");
    w.client
        .delete_synchronization_setting(&sid)
        .await
        .expect("delete");
    w.client
        .put_synchronization_setting(&sid, &setting.for_create())
        .await
        .expect("changed schedule");

    let plan = plan_now(&w, false).await;
    let kinds: Vec<String> = plan
        .changes
        .iter()
        .map(|c| format!("{:?} {}", c.action(), c.address()))
        .collect();
    assert!(
        kinds.contains(&"Create shares/share-new".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&format!(
            "Replace shares/{}/synchronizationSettings/{name}",
            w.estate.shares[1]
        )),
        "{kinds:?}"
    );
    let r = run(&w, false).await;
    assert!(failures(&r).is_empty(), "{:?}", failures(&r));
    assert!(plan_now(&w, false).await.changes.is_empty());
    let secondary_time = w
        .client
        .list_synchronization_settings(&share(&secondary(&w), &w.estate.shares[1]))
        .await
        .expect("list");
    match (&secondary_time[0].kind, &setting.kind) {
        (
            SynchronizationSettingKind::ScheduleBased(a),
            SynchronizationSettingKind::ScheduleBased(b),
        ) => {
            assert_eq!(a.synchronization_time, b.synchronization_time)
        }
        other => panic!("unexpected kinds {other:?}"),
    }
}

#[tokio::test]
async fn an_unmapped_store_is_reported_and_skipped() {
    let w = bootstrapped().await;
    // A storage account in a resource group and region no mapping rule covers.
    let sub = &w.estate.subscription_id;
    let store = format!(
        "/subscriptions/{sub}/resourceGroups/rg-lonely/providers/Microsoft.Storage/storageAccounts/lonelyeus"
    );
    let url = w.client.url(&store, "2023-05-01", &[]).expect("url");
    let _: serde_json::Value = w
        .client
        .call_json(
            "StorageAccounts_Create",
            &store,
            reqwest::Method::PUT,
            url,
            Some(
                &serde_json::json!({"location": "eastus", "kind": "StorageV2",
                "sku": {"name": "Standard_LRS"}, "properties": {"isHnsEnabled": true}}),
            ),
        )
        .await
        .expect("store");
    let s0 = share(&primary(&w), &w.estate.shares[0]);
    let body: DataSet = serde_json::from_value(serde_json::json!({"kind": "Container",
        "properties": {"containerName": "landing", "subscriptionId": sub,
                       "resourceGroup": "rg-lonely", "storageAccountName": "lonelyeus"}}))
    .expect("body");
    w.client
        .put_dataset(&s0.data_set("lonely").expect("id"), &body)
        .await
        .expect("primary data set");
    w.sim.reset_counters();

    let r = run(&w, false).await;
    assert!(r.results.is_empty(), "nothing to write: {:?}", r.results);
    let f: Vec<_> = r
        .plan
        .findings
        .iter()
        .filter(|f| f.code == FindingCode::UnmappedStore)
        .collect();
    assert_eq!(f.len(), 1, "{:?}", r.plan.findings);
    assert!(f[0].message.contains("lonelyeus"));
    assert_eq!(writes(&w.sim.stats()), (0, 0));
    let sec = w
        .client
        .list_datasets(&share(&secondary(&w), &w.estate.shares[0]))
        .await
        .expect("list");
    assert!(sec.iter().all(|d| d.name() != Some("lonely")));
}

#[tokio::test]
async fn prune_removes_an_extra_secondary_share_and_nothing_else() {
    let w = bootstrapped().await;
    let extra = share(&secondary(&w), "leftover");
    w.client
        .put_share(
            &extra,
            &Share::new(Some("old".into()), None, ShareKind::CopyBased),
        )
        .await
        .expect("extra share");
    w.sim.reset_counters();

    // Without prune: a finding, nothing written.
    let r = run(&w, false).await;
    assert!(r.results.is_empty(), "{:?}", r.results);
    assert!(
        r.plan
            .findings
            .iter()
            .any(|f| f.code == FindingCode::ExtraShare && f.share.as_deref() == Some("leftover")),
        "{:?}",
        r.plan.findings
    );
    assert_eq!(writes(&w.sim.stats()), (0, 0));

    // With prune: exactly that share is deleted.
    w.sim.reset_counters();
    let r = run(&w, true).await;
    let addrs: Vec<String> = r.results.iter().map(|x| x.change.address()).collect();
    assert_eq!(addrs, vec!["shares/leftover".to_string()]);
    assert!(failures(&r).is_empty(), "{:?}", failures(&r));
    let s = w.sim.stats();
    assert_eq!(writes(&s), (0, 1));
    assert_eq!(op_calls(&s, "Shares_Delete"), 1);
    let names: Vec<String> = w
        .client
        .list_shares(&secondary(&w))
        .await
        .expect("list")
        .iter()
        .filter_map(|s| s.meta.name.clone())
        .collect();
    assert_eq!(names.len(), w.estate.shares.len());
    assert!(!names.iter().any(|n| n == "leftover"));
}

#[tokio::test]
async fn replicate_converges_under_throttling_and_server_errors_without_duplicates() {
    let w = world_with(
        SimOptions {
            fault_429: 0.10,
            fault_5xx: 0.05,
            seed: 5,
            ..SimOptions::default()
        },
        PopulateSpec {
            shares: 4,
            datasets: 3,
            consumers: 3,
            seed: 21,
        },
    )
    .await;
    let mut planned_writes = 0u64;
    let mut complete = false;
    for _ in 0..3 {
        let r = replicate(&w.client, &w.cfg.pairs[0], &opts(false), &|_, _| {}).await;
        if r.error.is_some() {
            continue;
        }
        planned_writes += r
            .results
            .iter()
            .filter(|x| x.outcome == Outcome::Ok)
            .count() as u64;
        if failures(&r).is_empty() {
            complete = true;
            break;
        }
    }
    assert!(complete, "replicate did not converge in 3 runs");
    let s = w.sim.stats();
    assert!(
        s.faults_429 + s.faults_5xx > 0,
        "faults were injected: {s:?}"
    );
    // Every write that reached the simulator was one planned change: no duplicates.
    assert_eq!(s.writes, planned_writes, "{s:?}");
    assert_eq!(s.deletes, 0);

    // Steady state, and exactly one invitation per target per share.
    w.sim.set_faults(&datashare_dr::sim::FaultSettings {
        fault_429: Some(0.0),
        fault_5xx: Some(0.0),
        ..Default::default()
    });
    assert!(plan_now(&w, false).await.changes.is_empty());
    for name in &w.estate.shares {
        let invs = w
            .client
            .list_invitations(&share(&secondary(&w), name))
            .await
            .expect("list");
        let mut targets: Vec<String> = invs
            .iter()
            .filter(|i| {
                i.properties.invitation_status.is_none()
                    || i.properties.invitation_status == Some(InvitationStatus::Pending)
            })
            .filter_map(|i| i.properties.target_email.clone())
            .map(|e| e.to_lowercase())
            .collect();
        let n = targets.len();
        targets.sort();
        targets.dedup();
        assert_eq!(n, targets.len(), "duplicate invitation on {name}: {invs:?}");
        assert!(n >= 1);
    }
}

#[tokio::test]
async fn a_missing_secondary_account_is_a_finding_or_created_when_configured() {
    let mut w = world().await;
    w.client
        .delete_account(&secondary(&w))
        .await
        .expect("delete the secondary account");

    let r = run(&w, false).await;
    assert!(!r.secondary_exists);
    assert!(r.results.is_empty(), "{:?}", r.results);
    assert_eq!(
        r.plan.findings.iter().map(|f| f.code).collect::<Vec<_>>(),
        vec![FindingCode::SecondaryAccountMissing]
    );

    w.cfg.pairs[0].create_secondary = Some(datashare_dr::config::dr::CreateSecondary {
        location: "northeurope".into(),
        tags: [("owner".to_string(), "dr".to_string())]
            .into_iter()
            .collect(),
    });
    let r = run(&w, false).await;
    assert!(failures(&r).is_empty(), "{:?}", failures(&r));
    assert!(matches!(r.results[0].change, Change::CreateAccount { .. }));
    assert!(r.results.len() > 1 + w.estate.shares.len());
    let acct = w.client.get_account(&secondary(&w)).await.expect("created");
    assert_eq!(acct.location.as_deref(), Some("northeurope"));
    assert!(plan_now(&w, false).await.changes.is_empty());
}

/// Issue 15: a 403 on a data set PUT on the secondary (the app identity lacks the right Data
/// Share requires of whoever adds a data set) is a tool fault whose error names the missing
/// right and the store — never an outage; once the right is granted the next pass converges.
#[tokio::test]
async fn a_403_creating_a_data_set_names_the_missing_right_on_the_store() {
    use datashare_dr::reconcile::model::DataSetSpec;
    let w = world().await;
    let secondary_name = secondary(&w).name().to_ascii_lowercase();
    w.sim.set_faults(&sim::FaultSettings {
        fail_operations: Some([(format!("DataSets_Create@{secondary_name}"), 403u16)].into()),
        ..Default::default()
    });
    let r = run(&w, false).await;
    let mut storage_kinds = 0;
    let mut creates = 0;
    for x in &r.results {
        let Change::CreateDataSet { spec, .. } = &x.change else {
            assert_eq!(
                x.outcome,
                Outcome::Ok,
                "{}: {:?}",
                x.change.address(),
                x.error
            );
            continue;
        };
        creates += 1;
        assert_eq!(x.outcome, Outcome::Failed, "{}", x.change.address());
        let e = x.error.as_deref().expect("error text");
        assert!(e.contains("tool fault (authorization)"), "{e}");
        assert!(e.contains("not a region outage"), "{e}");
        assert!(e.contains("docs/deploy.md \"Roles\""), "{e}");
        assert!(!e.to_lowercase().contains("unavailable"), "{e}");
        let store = match spec {
            DataSetSpec::Blob { store, .. }
            | DataSetSpec::BlobFolder { store, .. }
            | DataSetSpec::Container { store, .. }
            | DataSetSpec::AdlsGen2File { store, .. }
            | DataSetSpec::AdlsGen2Folder { store, .. }
            | DataSetSpec::AdlsGen2FileSystem { store, .. } => Some(store.resource_id()),
            _ => None,
        };
        if let Some(store) = store {
            storage_kinds += 1;
            assert!(
                e.contains("`Microsoft.Storage/storageAccounts/write`"),
                "names the right: {e}"
            );
            assert!(
                e.contains(&format!("on store {store}")),
                "names the store: {e}"
            );
            assert!(e.contains("storeWriteForDataSetCreation"), "{e}");
        }
    }
    assert!(
        creates > 0 && storage_kinds > 0,
        "{creates} creates, {storage_kinds} on storage"
    );

    // The right granted (fault cleared): the next pass creates the data sets.
    w.sim.set_faults(&sim::FaultSettings {
        fail_operations: Some(Default::default()),
        ..Default::default()
    });
    let again = run(&w, false).await;
    assert!(failures(&again).is_empty(), "{:?}", failures(&again));
    assert_eq!(
        again
            .results
            .iter()
            .filter(|x| matches!(x.change, Change::CreateDataSet { .. }))
            .count(),
        creates
    );
}
