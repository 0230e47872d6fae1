//! Consumer-role failover against the simulator: the provider pair is replicated with
//! invitations `now` (consumer00 has pending invitations on the provider's secondary shares),
//! then consumer00's own deployment (`role = "consumer"`) runs its failover through the
//! in-process runner with the consumer's token — accept, map, trigger, first synchronization —
//! on its northeurope account.

mod support;

use std::sync::Arc;
use std::time::Duration;

use datashare_dr::arm::ListQuery;
use datashare_dr::arm::client::ArmClient;
use datashare_dr::arm::id::ShareSubscriptionId;
use datashare_dr::arm::models::{
    DataSetMappingKind, SourceShareSynchronizationSettingKind, SynchronizationMode, TriggerKind,
};
use datashare_dr::config::dr::DrConfig;
use datashare_dr::failover::consumer::{capture_primary, mapping_sink};
use datashare_dr::failover::drill::resource_health_alert;
use datashare_dr::failover::exec::StageMessage;
use datashare_dr::failover::run::{RunStatus, StageStatus, update_run};
use datashare_dr::failover::runner::{InProcessQueue, RunnerOptions, Stopped, drive};
use datashare_dr::failover::start::{AlertAnswer, StartRequest, approve, ingest_alert, start_run};
use datashare_dr::failover::{Mode, Outcome, RunRecord, Stage, StageContext, run_one_stage};
use datashare_dr::readiness::arm_reader::arm_client_from_config;
use datashare_dr::sim::{self, ConsumerInfo, Estate, SimHandle};
use datashare_dr::store::BlobStore;
use time::OffsetDateTime;

/// Totals of the simulator's write counters (see [`World::writes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Writes {
    mutations: u64,
    deletes: u64,
}

struct World {
    sim: SimHandle,
    estate: Estate,
    cfg: Arc<DrConfig>,
    /// The consumer's client (consumer00's token).
    arm: ArmClient,
    store: Arc<dyn BlobStore>,
    queue: InProcessQueue,
    ctx: StageContext,
}

impl World {
    fn consumer(&self) -> &ConsumerInfo {
        &self.estate.consumers[0]
    }
    fn ops(&self, op: &str) -> u64 {
        self.sim.stats().operations.get(op).map_or(0, |o| o.calls)
    }
    /// The simulator's counters of every request that could change state (any operation, any
    /// account): `mutations` (PUT, PATCH, DELETE, POST actions but `list…`) and `deletes`.
    fn writes(&self) -> Writes {
        let s = self.sim.stats();
        Writes {
            mutations: s.mutations,
            deletes: s.deletes,
        }
    }
    /// The share subscription the run created on the consumer's secondary account.
    fn secondary_subscription(&self, name: &str) -> ShareSubscriptionId {
        ShareSubscriptionId::parse(&format!(
            "{}/shareSubscriptions/{name}",
            self.consumer().secondary_account_id
        ))
        .expect("share subscription id")
    }
}

async fn world_with(edit: impl Fn(String) -> String) -> World {
    world_of(2, 2, 2, edit).await
}

/// A world of `shares` shares (share-004 of five is in-place), `datasets` data sets each and
/// `consumers` consumers; consumer00 runs.
async fn world_of(
    shares: usize,
    datasets: usize,
    consumers: usize,
    edit: impl Fn(String) -> String,
) -> World {
    let (sim, estate) = support::estate::populated(shares, datasets, consumers, 21).await;
    // The provider replicates its pair; consumer00's policy is `now`: pending invitations on
    // the secondary shares.
    let provider = DrConfig::from_toml_str(&sim::write_config(&estate, &sim.base_url), "p.toml")
        .expect("provider config");
    let parm = arm_client_from_config(&provider).expect("provider client");
    support::estate::replicate_once(&parm, &provider.pairs[0]).await;

    let toml = edit(sim::write_consumer_config(&estate, &sim.base_url, 0).expect("consumer00"));
    let cfg = Arc::new(DrConfig::from_toml_str(&toml, "consumer.toml").expect("consumer config"));
    let arm = arm_client_from_config(&cfg).expect("consumer client");
    let (mut ctx, queue) = datashare_dr::failover::runner::in_process(cfg.clone(), arm.clone());
    let store = ctx.store.clone();
    ctx.probe_deadline = Duration::from_secs(2);
    World {
        sim,
        estate,
        cfg,
        arm,
        store,
        queue,
        ctx,
    }
}

async fn world() -> World {
    world_with(|t| t).await
}

async fn start(w: &World, name: &str, mode: Mode) -> RunRecord {
    let req = StartRequest {
        pair: name.to_owned(),
        mode,
        force: false,
        reason: "consumer test".into(),
        caller: "test".into(),
    };
    start_run(w.store.as_ref(), &w.queue, &w.cfg, &req, w.ctx.clock.now())
        .await
        .expect("start")
}

async fn finish(w: &World, run_id: &str) -> RunRecord {
    let (run, stopped) = drive(&w.ctx, &w.queue, run_id, RunnerOptions::default())
        .await
        .expect("drive");
    assert_eq!(stopped, Stopped::Ended, "{run:#?}");
    run
}

fn storage_account_of(kind: &DataSetMappingKind) -> Option<String> {
    match kind {
        DataSetMappingKind::Blob(p) => Some(p.storage_account_name.clone()),
        DataSetMappingKind::BlobFolder(p) => Some(p.storage_account_name.clone()),
        DataSetMappingKind::Container(p) => Some(p.storage_account_name.clone()),
        DataSetMappingKind::AdlsGen2File(p) => Some(p.storage_account_name.clone()),
        DataSetMappingKind::AdlsGen2Folder(p) => Some(p.storage_account_name.clone()),
        DataSetMappingKind::AdlsGen2FileSystem(p) => Some(p.storage_account_name.clone()),
        _ => None,
    }
}

fn last_segment(id: &str) -> String {
    id.rsplit('/').next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_consumer_failover_accepts_maps_and_schedules_on_the_secondary_account() {
    let w = world().await;
    let name = w.cfg.subscriptions[0].name.clone();
    let run = start(&w, &name, Mode::Failover).await;
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert!(
        run.stages
            .iter()
            .all(|s| s.status == StageStatus::Succeeded),
        "{:#?}",
        run.stages
    );

    // (1) The share subscription exists on the secondary account, Active, sourced in the
    // provider's secondary region.
    let ss = w.secondary_subscription(&name);
    let got = w
        .arm
        .get_share_subscription(&ss)
        .await
        .expect("secondary subscription");
    assert_eq!(
        got.properties
            .share_subscription_status
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        Some("Active".to_owned())
    );
    assert_eq!(got.properties.source_share_location, "northeurope");
    assert_eq!(got.properties.share_name.as_deref(), Some(name.as_str()));
    let state = run.consumer.clone().expect("consumer state");
    assert_eq!(state.share_subscription.as_deref(), Some(ss.as_str()));
    assert!(state.created_subscription);

    // (2) Every source data set is mapped, into the consumer's secondary sink, never the primary.
    let sources = w
        .arm
        .list_consumer_source_datasets(&ss)
        .await
        .expect("sources");
    let mappings = w.arm.list_dataset_mappings(&ss).await.expect("mappings");
    assert_eq!(sources.len(), 2);
    assert_eq!(mappings.len(), sources.len(), "{mappings:#?}");
    let secondary_sink = last_segment(&w.consumer().sink_secondary);
    let primary_sink = last_segment(&w.consumer().sink_primary);
    for m in &mappings {
        let account = storage_account_of(&m.kind).expect("storage mapping");
        assert_eq!(account, secondary_sink, "{m:?}");
        assert_ne!(account, primary_sink);
        let (_, sink) = mapping_sink(m).expect("sink");
        assert!(sink.as_str().contains("-neu/"), "{sink}");
        assert!(
            sources
                .iter()
                .any(|s| s.properties.data_set_id.as_deref() == m.data_set_id()),
            "mapping of a data set that is not a source: {m:?}"
        );
    }
    let map_stage = run.stage(Stage::MapDatasets).expect("map stage");
    assert_eq!(map_stage.counts.get("mapped"), Some(&2));
    assert_eq!(map_stage.counts.get("unmapped"), Some(&0));

    // (3) Triggers carry the provider's schedule (as the consumer sees it).
    let settings = w
        .arm
        .list_source_share_synchronization_settings(&ss)
        .await
        .expect("settings");
    let triggers = w.arm.list_triggers(&ss).await.expect("triggers");
    assert!(!settings.is_empty());
    assert_eq!(triggers.len(), settings.len(), "{triggers:#?}");
    for s in &settings {
        let SourceShareSynchronizationSettingKind::ScheduleBased(p) = &s.kind else {
            panic!("unexpected setting {s:?}");
        };
        assert!(
            triggers
                .iter()
                .any(|t| matches!(&t.kind, TriggerKind::ScheduleBased(tp)
                if Some(&tp.recurrence_interval) == p.recurrence_interval.as_ref()
                    && Some(tp.synchronization_time) == p.synchronization_time)),
            "no trigger for {p:?}: {triggers:#?}"
        );
    }

    // (4) The first synchronization was started (full) and is on record.
    let fs = state.first_sync.clone().expect("first sync");
    assert!(fs.done, "{fs:?}");
    let sync_id = fs.synchronization_id.clone().expect("synchronization id");
    let syncs = w
        .arm
        .list_share_subscription_synchronizations(&ss, &ListQuery::default())
        .await
        .expect("synchronizations");
    let first = syncs
        .iter()
        .find(|s| s.synchronization_id == sync_id)
        .expect("the recorded synchronization exists");
    assert_eq!(
        first.synchronization_mode,
        Some(SynchronizationMode::FullSync)
    );
    assert_eq!(w.ops("ShareSubscriptions_Synchronize"), 1);
    // Trigger creation and the synchronization are LROs: the stage re-enqueued itself (a
    // delayed message) and polled the stored handle on later deliveries.
    let triggers_stage = run.stage(Stage::CreateTriggers).expect("create-triggers");
    assert!(triggers_stage.attempts >= 2, "{triggers_stage:?}");
    assert!(fs.handle.is_none());

    // The run record has the audit trail: correlation ids on every ARM stage.
    for s in [
        Stage::Preflight,
        Stage::AcceptInvitations,
        Stage::MapDatasets,
        Stage::CreateTriggers,
    ] {
        let rec = run.stage(s).expect("stage");
        assert!(!rec.correlation_ids.is_empty(), "{s}: {rec:?}");
        assert!(
            rec.counts.get("armCalls").is_some_and(|n| *n > 0),
            "{s}: {rec:?}"
        );
    }
    // Nothing written on the consumer's primary account (any method but reads and list POSTs).
    let primary = w.consumer().account_id.to_ascii_lowercase();
    let writes: Vec<String> = w
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.operation.contains("List"))
        .filter(|r| r.path.to_ascii_lowercase().starts_with(&primary))
        .map(|r| format!("{} {} ({})", r.method, r.path, r.operation))
        .collect();
    assert!(
        writes.is_empty(),
        "writes to the primary account: {writes:?}"
    );
}

/// Runs `stage` until it stops waiting (bounded); the simulator's operations take ~5 ms.
async fn run_stage(w: &World, run_id: &str, stage: Stage) -> Outcome {
    for _ in 0..200 {
        let out = run_one_stage(&w.ctx, &StageMessage::new(run_id, stage, 0))
            .await
            .unwrap_or_else(|e| panic!("{stage}: {e:?}"));
        match out {
            Outcome::Wait(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            other => return other,
        }
    }
    panic!("{stage} kept waiting");
}

#[tokio::test]
async fn every_consumer_stage_delivered_again_writes_nothing() {
    let w = world().await;
    let name = w.cfg.subscriptions[0].name.clone();
    let run = start(&w, &name, Mode::Failover).await;
    let mut stage = Stage::Preflight;
    while stage != Stage::Notify {
        let next = match run_stage(&w, &run.run_id, stage).await {
            Outcome::Advance(n) => n,
            other => panic!("{stage}: {other:?}"),
        };
        let after_first = w.writes();
        // The stage's work is done but its record is lost (a crash before the commit): rewind
        // the record and deliver the stage again. For accept-invitations, forget even which
        // share subscription was created, so only observation can find it.
        update_run(w.store.as_ref(), &run.run_id, |r| {
            r.current_stage = Some(stage);
            if let Some(rec) = r.stage_mut(stage) {
                rec.status = StageStatus::Pending;
                rec.attempts = 0;
                rec.claim = None;
            }
            if stage == Stage::AcceptInvitations
                && let Some(c) = r.consumer.as_mut()
            {
                c.share_subscription = None;
            }
            Ok(())
        })
        .await
        .expect("rewind");
        let again = run_stage(&w, &run.run_id, stage).await;
        assert_eq!(again, Outcome::Advance(next), "{stage}");
        assert_eq!(w.writes(), after_first, "{stage} wrote again");
        stage = next;
    }
    let (run, _) = datashare_dr::failover::run::require_run(w.store.as_ref(), &run.run_id)
        .await
        .expect("run");
    let accept = run.stage(Stage::AcceptInvitations).expect("accept");
    assert_eq!(accept.counts.get("existing"), Some(&1), "{accept:?}");
    // One of each write, exactly.
    assert_eq!(w.ops("ShareSubscriptions_Create"), 1);
    assert_eq!(w.ops("DataSetMappings_Create"), 2);
    assert_eq!(w.ops("Triggers_Create"), 1);
    assert_eq!(w.ops("ShareSubscriptions_Synchronize"), 1);
}

#[tokio::test]
async fn a_second_run_for_the_same_subscription_writes_nothing() {
    let w = world().await;
    let name = w.cfg.subscriptions[0].name.clone();
    let first = start(&w, &name, Mode::Failover).await;
    let first = finish(&w, &first.run_id).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:#?}");
    let before = w.writes();
    let second = start(&w, &name, Mode::Failover).await;
    let second = finish(&w, &second.run_id).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{second:#?}");
    assert_eq!(w.writes(), before, "the second run wrote");
    let map = second.stage(Stage::MapDatasets).expect("map");
    assert_eq!(map.counts.get("present"), Some(&2));
    assert_eq!(map.counts.get("mapped"), Some(&0));
    assert!(
        second
            .findings
            .iter()
            .any(|f| f.code == "first-sync-not-needed"),
        "{:#?}",
        second.findings
    );
}

#[tokio::test]
async fn a_sink_without_a_mapping_rule_is_a_finding_and_stays_unmapped() {
    // Without the storage rule, the consumer's storage sinks have no secondary counterpart.
    let w = world_with(|t| {
        t.replace(
            "[subscriptions.stores.defaults.storage]\nreplace = [[\"weu\", \"neu\"]]\n",
            "",
        )
    })
    .await;
    let name = w.cfg.subscriptions[0].name.clone();
    let run = start(&w, &name, Mode::Failover).await;
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let unmapped: Vec<_> = run
        .findings
        .iter()
        .filter(|f| f.code == "sink-unmapped" && f.stage == Some(Stage::MapDatasets))
        .collect();
    assert_eq!(unmapped.len(), 2, "{:#?}", run.findings);
    assert!(
        unmapped[0].message.contains("no store mapping rule"),
        "{unmapped:?}"
    );
    let ss = w.secondary_subscription(&name);
    assert!(
        w.arm
            .list_dataset_mappings(&ss)
            .await
            .expect("mappings")
            .is_empty()
    );
    assert_eq!(w.ops("DataSetMappings_Create"), 0);
    let map = run.stage(Stage::MapDatasets).expect("map");
    assert_eq!(map.counts.get("unmapped"), Some(&2));
}

#[tokio::test]
async fn with_the_primary_region_down_the_stored_snapshot_supplies_the_sinks() {
    let w = world().await;
    let sub = w.cfg.subscriptions[0].clone();
    let snap = capture_primary(&w.arm, w.store.as_ref(), &sub, OffsetDateTime::now_utc())
        .await
        .expect("snapshot");
    assert_eq!(snap.mappings.len(), 2);
    w.sim.region_down(&w.estate.primary_region);
    let run = start(&w, &sub.name, Mode::Failover).await;
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert!(
        run.findings.iter().any(|f| f.code == "snapshot-from-store"),
        "{:#?}",
        run.findings
    );
    assert_eq!(
        run.consumer.as_ref().and_then(|c| c.primary_reachable),
        Some(false)
    );
    let ss = w.secondary_subscription(&sub.name);
    let mappings = w.arm.list_dataset_mappings(&ss).await.expect("mappings");
    assert_eq!(mappings.len(), 2);
    let secondary_sink = last_segment(&w.consumer().sink_secondary);
    assert!(
        mappings
            .iter()
            .all(|m| storage_account_of(&m.kind).as_deref() == Some(secondary_sink.as_str()))
    );
}

#[tokio::test]
async fn without_a_snapshot_and_with_the_primary_down_nothing_is_mapped_blindly() {
    let w = world().await;
    let name = w.cfg.subscriptions[0].name.clone();
    w.sim.region_down(&w.estate.primary_region);
    let run = start(&w, &name, Mode::Failover).await;
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert!(
        run.findings.iter().any(|f| f.code == "primary-unknown"),
        "{:#?}",
        run.findings
    );
    assert!(
        run.findings.iter().any(|f| f.code == "sink-unknown"),
        "{:#?}",
        run.findings
    );
    assert_eq!(w.ops("DataSetMappings_Create"), 0);
    // The invitation is still accepted (the provider share name defaults to the
    // subscription's name), so the consumer can map by hand.
    assert_eq!(w.ops("ShareSubscriptions_Create"), 1);
}

#[tokio::test]
async fn a_consumer_drill_writes_nothing_and_reports_the_plan() {
    let w = world().await;
    let name = w.cfg.subscriptions[0].name.clone();
    let before = w.writes();
    let run = start(&w, &name, Mode::Drill).await;
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(w.writes(), before, "the drill wrote");
    let accept = run.stage(Stage::AcceptInvitations).expect("accept");
    assert_eq!(accept.counts.get("wouldAccept"), Some(&1), "{accept:?}");
    let map = run.stage(Stage::MapDatasets).expect("map");
    assert_eq!(map.counts.get("wouldMap"), Some(&2), "{map:?}");
}

#[tokio::test]
async fn the_run_waits_for_an_invitation_that_has_not_arrived_and_then_gives_up() {
    // consumer01 is invited only at failover: no pending invitation on the secondary.
    let w = world().await;
    let toml = sim::write_consumer_config(&w.estate, &w.sim.base_url, 1).expect("consumer01");
    let cfg = Arc::new(DrConfig::from_toml_str(&toml, "c1.toml").expect("config"));
    let arm = arm_client_from_config(&cfg).expect("client");
    let mut ctx = w.ctx.clone();
    ctx.config = cfg.clone();
    ctx.arm = arm;
    let req = StartRequest {
        pair: cfg.subscriptions[0].name.clone(),
        mode: Mode::Failover,
        force: false,
        reason: "test".into(),
        caller: "test".into(),
    };
    let run = start_run(w.store.as_ref(), &w.queue, &cfg, &req, ctx.clock.now())
        .await
        .expect("start");
    let (run, stopped) = drive(&ctx, &w.queue, &run.run_id, RunnerOptions::default())
        .await
        .expect("drive");
    assert_eq!(stopped, Stopped::Ended);
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    let accept = run.stage(Stage::AcceptInvitations).expect("accept");
    assert!(
        accept.attempts > 10,
        "it polled with delayed messages: {accept:?}"
    );
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("no pending invitation")),
        "{:?}",
        run.error
    );
    assert_eq!(w.ops("ShareSubscriptions_Create"), 0);
    // Preflight let it through (at-failover: the invitation is expected later), saying so.
    let preflight = run.stage(Stage::Preflight).expect("preflight");
    assert_eq!(preflight.status, StageStatus::Succeeded, "{preflight:?}");
    assert_eq!(preflight.counts.get("invitationsFound"), Some(&0));
    assert!(
        run.findings
            .iter()
            .any(|f| f.code == "invitation-at-failover"
                && f.severity == "Info"
                && f.stage == Some(Stage::Preflight)),
        "{:#?}",
        run.findings
    );
}

#[tokio::test]
async fn preflight_fails_naming_the_missing_invitation_when_invitations_are_now() {
    // consumer01 is invited only at failover; its config claims `now`: preflight must fail
    // before anything is written, naming the share, the region and what the provider must do.
    let w = world().await;
    let toml = sim::write_consumer_config(&w.estate, &w.sim.base_url, 1)
        .expect("consumer01")
        .replace("invitations = \"at-failover\"", "invitations = \"now\"");
    assert!(toml.contains("invitations = \"now\""), "{toml}");
    let cfg = Arc::new(DrConfig::from_toml_str(&toml, "c1.toml").expect("config"));
    let arm = arm_client_from_config(&cfg).expect("client");
    let mut ctx = w.ctx.clone();
    ctx.config = cfg.clone();
    ctx.arm = arm;
    let share = cfg.subscriptions[0].name.clone();
    let req = StartRequest {
        pair: share.clone(),
        mode: Mode::Failover,
        force: false,
        reason: "test".into(),
        caller: "test".into(),
    };
    let before = w.writes();
    let run = start_run(w.store.as_ref(), &w.queue, &cfg, &req, ctx.clock.now())
        .await
        .expect("start");
    let (run, stopped) = drive(&ctx, &w.queue, &run.run_id, RunnerOptions::default())
        .await
        .expect("drive");
    assert_eq!(stopped, Stopped::Ended);
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    let preflight = run.stage(Stage::Preflight).expect("preflight");
    assert_ne!(preflight.status, StageStatus::Succeeded, "{preflight:?}");
    let err = run.error.clone().unwrap_or_default();
    assert!(
        err.starts_with("preflight: no pending invitation")
            && err.contains(&share)
            && err.contains("northeurope")
            && err.contains("tenant + object id"),
        "{err}"
    );
    let accept = run.stage(Stage::AcceptInvitations).expect("accept");
    assert_eq!(accept.attempts, 0, "accept never ran: {accept:?}");
    assert_eq!(w.writes(), before, "preflight wrote");
}

#[tokio::test]
async fn an_in_place_share_subscription_gets_no_trigger_and_no_synchronization() {
    // Five shares: share-004 is in-place (Azure Data Explorer).
    let w = world_of(5, 1, 1, |t| t).await;
    let sub = w
        .cfg
        .subscriptions
        .iter()
        .find(|s| s.name.contains("share-004"))
        .unwrap_or_else(|| panic!("no subscription of share-004: {:?}", w.cfg.subscriptions));
    let name = sub.name.clone();
    let run = start(&w, &name, Mode::Failover).await;
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let ss = w.secondary_subscription(&name);
    let got = w.arm.get_share_subscription(&ss).await.expect("accepted");
    assert_eq!(
        got.properties.share_kind,
        Some(datashare_dr::arm::models::ShareKind::InPlace),
        "{got:?}"
    );
    assert!(
        run.findings
            .iter()
            .any(|f| f.code == "in-place-no-snapshots"
                && f.severity == "Info"
                && f.stage == Some(Stage::CreateTriggers)),
        "{:#?}",
        run.findings
    );
    assert!(
        !run.findings
            .iter()
            .any(|f| f.severity != "Info" && f.stage == Some(Stage::CreateTriggers)),
        "no missing-schedule or other finding for an in-place subscription: {:#?}",
        run.findings
    );
    assert_eq!(w.ops("Triggers_Create"), 0, "a trigger was created");
    assert_eq!(
        w.ops("ShareSubscriptions_Synchronize"),
        0,
        "a synchronization was started"
    );
    assert!(w.arm.list_triggers(&ss).await.expect("triggers").is_empty());
}

#[tokio::test]
async fn an_alert_on_the_consumers_primary_account_starts_its_consumer_run() {
    // Every subscription of the consumer account gets its own run: the alert's dedup records
    // are per pair / subscription (an earlier version answered all but the first as a
    // "duplicate" of the first one's run).
    let w = world().await;
    assert!(
        w.cfg.subscriptions.len() > 1,
        "{}",
        w.cfg.subscriptions.len()
    );
    let body = resource_health_alert(
        &w.consumer().account_id,
        &w.consumer().subscription_id,
        OffsetDateTime::now_utc(),
    )
    .expect("alert");
    let answer = ingest_alert(w.store.as_ref(), &w.queue, &w.cfg, &body, w.ctx.clock.now())
        .await
        .expect("ingest");
    let AlertAnswer::Accepted { pairs } = answer else {
        panic!("expected started runs, got {answer:?}");
    };
    assert_eq!(pairs.len(), w.cfg.subscriptions.len(), "{pairs:?}");
    assert!(pairs.iter().all(|p| p.action == "started"), "{pairs:?}");
    // Alert-started runs wait for approval under `failover = "approve"`; approve them all
    // first (the runner drives every message of the shared queue).
    let ids: Vec<String> = pairs
        .iter()
        .map(|p| p.run_id.clone().expect("run id"))
        .collect();
    for run_id in &ids {
        let (run, _) = datashare_dr::failover::run::require_run(w.store.as_ref(), run_id)
            .await
            .expect("run");
        assert_eq!(run.trigger.kind, "alert");
        if run.approval.required {
            approve(
                w.store.as_ref(),
                &w.queue,
                run_id,
                "oncall",
                w.ctx.clock.now(),
            )
            .await
            .expect("approve");
        }
    }
    for run_id in &ids {
        let run = finish(&w, run_id).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    }
    // One share subscription per configured subscription on the secondary account.
    let account = datashare_dr::arm::id::AccountId::parse(&w.consumer().secondary_account_id)
        .expect("account");
    let subs = w
        .arm
        .list_share_subscriptions(&account)
        .await
        .expect("subs");
    assert_eq!(subs.len(), w.cfg.subscriptions.len());
}

/// A `synchronize` whose response is lost after the simulator started the synchronization
/// (`drop_after_apply`): the client does not re-post it blindly, the stage observes the
/// synchronizations and records the one that was started — exactly one synchronization.
#[tokio::test]
async fn a_synchronize_whose_answer_is_lost_starts_exactly_one_synchronization() {
    let w = world().await;
    let name = w.cfg.subscriptions[0].name.clone();
    w.sim.set_faults(&sim::FaultSettings {
        drop_after_apply: Some([("ShareSubscriptions_Synchronize".to_owned(), 1)].into()),
        ..Default::default()
    });
    let run = start(&w, &name, Mode::Failover).await;
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");

    // The simulator's request log: one Synchronize, the one whose answer was dropped.
    let posts: Vec<(String, u16)> = w
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.operation == "ShareSubscriptions_Synchronize")
        .map(|r| (r.outcome, r.status))
        .collect();
    assert_eq!(posts.len(), 1, "synchronize posted again: {posts:?}");
    assert_eq!(posts[0].0, "dropped", "{posts:?}");
    assert_eq!(w.sim.stats().dropped, 1);

    // Exactly one full synchronization exists (the trigger's own incremental runs aside), and
    // it is the one on record.
    let ss = w.secondary_subscription(&name);
    let syncs: Vec<_> = w
        .arm
        .list_share_subscription_synchronizations(&ss, &ListQuery::default())
        .await
        .expect("synchronizations")
        .into_iter()
        .filter(|s| s.synchronization_mode == Some(SynchronizationMode::FullSync))
        .collect();
    assert_eq!(syncs.len(), 1, "{syncs:#?}");
    let fs = run
        .consumer
        .clone()
        .and_then(|c| c.first_sync)
        .expect("first sync");
    assert!(fs.done, "{fs:?}");
    assert_eq!(
        fs.synchronization_id.as_deref(),
        Some(syncs[0].synchronization_id.as_str())
    );
}
