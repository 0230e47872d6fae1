//! Failover runs against the simulator with the in-memory run store and the in-process queue:
//! the same `run_one_stage` the `FailoverStage` function runs.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datashare_dr::arm::client::ArmClient;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::failover::drill::resource_health_alert;
use datashare_dr::failover::exec::{StageMessage, capture_roster};
use datashare_dr::failover::run::{RunStatus, StageStatus};
use datashare_dr::failover::runner::{InProcessQueue, RunnerOptions, Stopped, drive};
use datashare_dr::failover::start::{
    AlertAnswer, StartRequest, approve, cancel, ingest_alert, start_run,
};
use datashare_dr::failover::{Mode, Outcome, RunRecord, Stage, StageContext, run_one_stage};
use datashare_dr::sim::{self, Estate, SimHandle};
use datashare_dr::store::{BlobStore, Queue, STAGE_QUEUE};
use time::OffsetDateTime;

struct World {
    sim: SimHandle,
    estate: Estate,
    cfg: Arc<DrConfig>,
    arm: ArmClient,
    store: Arc<dyn BlobStore>,
    queue: InProcessQueue,
    ctx: StageContext,
}

async fn world_with(edit: impl Fn(String) -> String) -> World {
    let (sim, estate) = support::estate::populated(3, 2, 2, 11).await;
    let toml = edit(sim::write_config(&estate, &sim.base_url));
    let cfg = Arc::new(DrConfig::from_toml_str(&toml, "sim.toml").expect("config"));
    let arm = support::estate::bootstrap(&sim, &cfg, &cfg.pairs[0]).await;
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

fn ops(w: &World, op: &str) -> u64 {
    w.sim.stats().operations.get(op).map_or(0, |o| o.calls)
}

async fn invitations_on(w: &World, account: &datashare_dr::arm::id::AccountId) -> Vec<String> {
    let mut out = Vec::new();
    for share in w.arm.list_shares(account).await.expect("shares") {
        let name = share.meta.name.clone().unwrap_or_default();
        let id = account.share(&name).expect("share id");
        for inv in w.arm.list_invitations(&id).await.expect("invitations") {
            let t = inv
                .properties
                .target_email
                .clone()
                .unwrap_or_else(|| inv.properties.target_object_id.clone().unwrap_or_default());
            out.push(format!("{name}:{}", t.to_ascii_lowercase()));
        }
    }
    out.sort();
    out
}

async fn alert_run(w: &World) -> String {
    let body = resource_health_alert(
        w.cfg.pairs[0].primary.as_str(),
        &w.estate.subscription_id,
        OffsetDateTime::now_utc(),
    )
    .expect("alert");
    match ingest_alert(w.store.as_ref(), &w.queue, &w.cfg, &body, w.ctx.clock.now())
        .await
        .expect("ingest")
    {
        AlertAnswer::Accepted { pairs } => pairs[0].run_id.clone().expect("run id"),
        other => panic!("expected a started run, got {other:?}"),
    }
}

async fn finish(w: &World, run_id: &str) -> RunRecord {
    let (run, stopped) = drive(&w.ctx, &w.queue, run_id, RunnerOptions::default())
        .await
        .expect("drive");
    assert_eq!(stopped, Stopped::Ended, "{run:#?}");
    run
}

#[tokio::test]
async fn an_alert_with_the_primary_down_becomes_one_completed_run_with_final_sync_skipped() {
    let w = world().await;
    let roster = capture_roster(
        &w.arm,
        w.store.as_ref(),
        &w.cfg.pairs[0],
        OffsetDateTime::now_utc(),
    )
    .await
    .expect("roster");
    assert!(roster > 0);
    w.sim.region_down(&w.cfg.pairs[0].primary_region);
    let run_id = alert_run(&w).await;
    let run = finish(&w, &run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let fs = run.stage(Stage::FinalSync).expect("final-sync");
    assert_eq!(fs.status, StageStatus::Skipped);
    assert!(run.findings.iter().any(|f| f.code == "final-sync-skipped"));
    assert!(run.rto_secs.is_some());
    // Every consumer of the roster is invited or subscribed on the secondary now.
    let inv = run.stage(Stage::InviteConsumers).expect("invite");
    assert_eq!(
        inv.counts.get("invited").copied().unwrap_or(0)
            + inv.counts.get("alreadyCovered").copied().unwrap_or(0),
        roster as u64
    );
    let runs = w.store.list("runs/").await.expect("list");
    assert_eq!(runs.len(), 1);
    assert!(
        w.store.list("locks/").await.expect("locks").is_empty(),
        "lock released"
    );
}

#[tokio::test]
async fn a_hundred_concurrent_identical_alerts_start_exactly_one_run() {
    let w = world().await;
    let body = resource_health_alert(
        w.cfg.pairs[0].primary.as_str(),
        &w.estate.subscription_id,
        OffsetDateTime::now_utc(),
    )
    .expect("alert");
    let now = OffsetDateTime::now_utc();
    let answers = futures::future::join_all(
        (0..100).map(|_| ingest_alert(w.store.as_ref(), &w.queue, &w.cfg, &body, now)),
    )
    .await;
    let mut ids = std::collections::BTreeSet::new();
    let mut started = 0;
    for a in answers {
        match a.expect("answer") {
            AlertAnswer::Accepted { pairs } => {
                if pairs[0].action == "started" {
                    started += 1;
                }
                ids.insert(pairs[0].run_id.clone().expect("id"));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(started, 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(w.store.list("runs/").await.expect("list").len(), 1);
    assert_eq!(w.queue.len(STAGE_QUEUE), 1, "one preflight message");
}

#[tokio::test]
async fn a_stage_message_delivered_twice_sends_no_second_invitation() {
    let w = world().await;
    let req = StartRequest {
        pair: w.cfg.pairs[0].name.clone(),
        mode: Mode::Failover,
        force: false,
        reason: "test".into(),
        caller: "test".into(),
    };
    let run = start_run(w.store.as_ref(), &w.queue, &w.cfg, &req, w.ctx.clock.now())
        .await
        .expect("start");
    // Walk up to invite-consumers by hand.
    let mut stage = Stage::Preflight;
    while stage != Stage::InviteConsumers {
        match run_one_stage(&w.ctx, &StageMessage::new(&run.run_id, stage, 0))
            .await
            .expect("stage")
        {
            Outcome::Advance(n) => stage = n,
            other => panic!("{stage}: {other:?}"),
        }
    }
    let msg = StageMessage::new(&run.run_id, Stage::InviteConsumers, 0);
    let before = ops(&w, "Invitations_Create");
    let first = run_one_stage(&w.ctx, &msg).await.expect("first");
    assert_eq!(first, Outcome::Advance(Stage::EnableSchedules));
    let after_first = ops(&w, "Invitations_Create");
    // The same message again: the stage was passed, so it is dropped without ARM writes.
    let second = run_one_stage(&w.ctx, &msg).await.expect("second");
    assert!(
        matches!(
            second,
            Outcome::Done | Outcome::Advance(Stage::EnableSchedules)
        ),
        "{second:?}"
    );
    assert_eq!(ops(&w, "Invitations_Create"), after_first);
    // The first delivery did invite: one `Invitations_Create` per invitation it recorded.
    let (run, _) = datashare_dr::failover::run::require_run(w.store.as_ref(), &run.run_id)
        .await
        .expect("run");
    let invited = run
        .stage(Stage::InviteConsumers)
        .and_then(|s| s.counts.get("invited").copied())
        .unwrap_or_default();
    assert!(invited > 0, "the first delivery invited no one: {run:#?}");
    assert_eq!(after_first - before, invited, "one PUT per invitation");
    let invs = invitations_on(&w, &w.cfg.pairs[0].secondary).await;
    let mut dedup = invs.clone();
    dedup.dedup();
    assert_eq!(invs, dedup, "no target invited twice on a share");
}

#[tokio::test]
async fn concurrent_deliveries_of_one_stage_run_it_once() {
    let w = world().await;
    let req = StartRequest {
        pair: w.cfg.pairs[0].name.clone(),
        mode: Mode::Failover,
        force: false,
        reason: "test".into(),
        caller: "test".into(),
    };
    let run = start_run(w.store.as_ref(), &w.queue, &w.cfg, &req, w.ctx.clock.now())
        .await
        .expect("start");
    let msg = StageMessage::new(&run.run_id, Stage::Preflight, 0);
    let (a, b) = tokio::join!(run_one_stage(&w.ctx, &msg), run_one_stage(&w.ctx, &msg));
    let outcomes = [a.expect("a"), b.expect("b")];
    let advanced = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Advance(_)))
        .count();
    assert_eq!(advanced, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Wait(_) | Outcome::Done))
    );
}

#[tokio::test]
async fn a_drill_invites_only_drill_recipients_and_cleans_up() {
    let w = world().await;
    let real_before = invitations_on(&w, &w.cfg.pairs[0].secondary).await;
    let primary_before = invitations_on(&w, &w.cfg.pairs[0].primary).await;
    let req = StartRequest {
        pair: w.cfg.pairs[0].name.clone(),
        mode: Mode::Drill,
        force: false,
        reason: "rehearsal".into(),
        caller: "test".into(),
    };
    let run = start_run(w.store.as_ref(), &w.queue, &w.cfg, &req, w.ctx.clock.now())
        .await
        .expect("start");
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert!(!run.drill_artefacts.is_empty());
    assert!(run.drill_artefacts.iter().all(|a| a.removed));
    let invited = run
        .stage(Stage::InviteConsumers)
        .and_then(|s| s.counts.get("invited").copied())
        .unwrap_or(0);
    assert_eq!(
        invited as usize,
        w.cfg.pairs[0].drill_recipients.len() * w.estate.shares.len()
    );
    // Real consumers and the primary untouched; drill invitations gone.
    assert_eq!(
        invitations_on(&w, &w.cfg.pairs[0].secondary).await,
        real_before
    );
    assert_eq!(
        invitations_on(&w, &w.cfg.pairs[0].primary).await,
        primary_before
    );
    // The readiness "last drill" is recorded.
    let last = datashare_dr::readiness::last_drill(w.store.as_ref(), &w.cfg.pairs[0].name)
        .await
        .expect("state");
    assert_eq!(last.and_then(|d| d.run_id), Some(run.run_id.clone()));
}

#[tokio::test]
async fn an_alert_under_the_approve_policy_waits_until_approved() {
    let w = world_with(|t| t.replace("failover = \"auto\"", "failover = \"approve\"")).await;
    let base = ops(&w, "Invitations_Create");
    let run_id = alert_run(&w).await;
    let opts = RunnerOptions {
        max_virtual: Duration::from_secs(120),
        ..RunnerOptions::default()
    };
    let (run, stopped) = drive(&w.ctx, &w.queue, &run_id, opts).await.expect("drive");
    assert_eq!(stopped, Stopped::Waiting);
    assert_eq!(run.status, RunStatus::AwaitingApproval);
    assert_eq!(ops(&w, "Invitations_Create"), base);
    approve(
        w.store.as_ref(),
        &w.queue,
        &run_id,
        "alice",
        w.ctx.clock.now(),
    )
    .await
    .expect("approve");
    let run = finish(&w, &run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.approval.by.as_deref(), Some("alice"));
}

#[tokio::test]
async fn cancel_stops_a_waiting_run_and_lists_what_was_done() {
    let w = world_with(|t| t.replace("failover = \"auto\"", "failover = \"approve\"")).await;
    let base = ops(&w, "Invitations_Create");
    let run_id = alert_run(&w).await;
    let opts = RunnerOptions {
        max_virtual: Duration::from_secs(60),
        ..RunnerOptions::default()
    };
    drive(&w.ctx, &w.queue, &run_id, opts).await.expect("drive");
    let run = cancel(w.store.as_ref(), &run_id, "bob", w.ctx.clock.now())
        .await
        .expect("cancel");
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.done_stages(), vec![Stage::Preflight]);
    assert!(w.store.list("locks/").await.expect("locks").is_empty());
    // The waiting message is dropped; nothing else runs.
    let (after, _) = drive(&w.ctx, &w.queue, &run_id, RunnerOptions::default())
        .await
        .expect("drive");
    assert_eq!(after.status, RunStatus::Cancelled);
    assert_eq!(ops(&w, "Invitations_Create"), base);
}

#[tokio::test]
async fn a_stage_failing_every_time_ends_with_the_run_failed() {
    let w = world().await;
    let req = StartRequest {
        pair: w.cfg.pairs[0].name.clone(),
        mode: Mode::Failover,
        force: true,
        reason: "test".into(),
        caller: "test".into(),
    };
    // The secondary region is down: readiness is NotReady (forced), then every write fails.
    w.sim.region_down(&w.cfg.pairs[0].secondary_region);
    let run = start_run(w.store.as_ref(), &w.queue, &w.cfg, &req, w.ctx.clock.now())
        .await
        .expect("start");
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert!(
        run.error
            .as_deref()
            .unwrap_or("")
            .contains("exhausted its retries"),
        "{:?}",
        run.error
    );
    assert!(w.store.list("locks/").await.expect("locks").is_empty());
}

#[tokio::test]
async fn failback_replicates_back_and_restores_the_normal_direction() {
    let w = world().await;
    // A share created on the secondary while it was active comes back to the primary.
    let sec_share = w.cfg.pairs[0]
        .secondary
        .share("made-during-outage")
        .expect("id");
    w.arm
        .put_share(
            &sec_share,
            &datashare_dr::arm::models::Share::new(
                Some("created on the secondary".into()),
                None,
                datashare_dr::arm::models::ShareKind::CopyBased,
            ),
        )
        .await
        .expect("share");
    let req = StartRequest {
        pair: w.cfg.pairs[0].name.clone(),
        mode: Mode::Failback,
        force: false,
        reason: "primary recovered".into(),
        caller: "test".into(),
    };
    let run = start_run(w.store.as_ref(), &w.queue, &w.cfg, &req, w.ctx.clock.now())
        .await
        .expect("start");
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert!(run.findings.iter().any(|f| f.code == "direction-restored"));
    let back = w
        .arm
        .get_share(
            &w.cfg.pairs[0]
                .primary
                .share("made-during-outage")
                .expect("id"),
        )
        .await;
    assert!(back.is_ok(), "the share is back on the primary");
}

#[tokio::test]
async fn a_failback_while_the_primary_is_down_is_refused_by_preflight() {
    let w = world().await;
    w.sim.region_down(&w.cfg.pairs[0].primary_region);
    let req = StartRequest {
        pair: w.cfg.pairs[0].name.clone(),
        mode: Mode::Failback,
        force: false,
        reason: "too early".into(),
        caller: "test".into(),
    };
    let run = start_run(w.store.as_ref(), &w.queue, &w.cfg, &req, w.ctx.clock.now())
        .await
        .expect("start");
    let run = finish(&w, &run.run_id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error
            .as_deref()
            .unwrap_or("")
            .contains("does not answer yet")
    );
    assert_eq!(w.queue.len(STAGE_QUEUE), 0);
    let _ = w.queue.ensure_queue(STAGE_QUEUE).await;
}

/// A `final-sync` whose replicate pass starts a long-running operation (a changed schedule is
/// a synchronization-setting replacement: DELETE is an LRO) that outlives the stage's hand-off
/// budget stores the handle on the run and re-enqueues instead of sleeping; the next deliveries
/// poll it, then the pass finishes the replacement. One DELETE, the run completes, nothing left
/// pending, and the secondary holds the new schedule.
#[tokio::test]
async fn final_sync_hands_a_long_running_delete_to_the_queue_and_finishes_after_it() {
    use datashare_dr::arm::models::SynchronizationSettingKind;
    let mut w = world().await;
    let pair = w.cfg.pairs[0].clone();
    // Change the schedule of share 0 on the primary (delete + create: no in-place update).
    let s0 = pair.primary.share(&w.estate.shares[0]).expect("share id");
    let mut setting = w
        .arm
        .list_synchronization_settings(&s0)
        .await
        .expect("list")[0]
        .clone();
    let name = setting.name().expect("name").to_string();
    if let SynchronizationSettingKind::ScheduleBased(p) = &mut setting.kind {
        p.synchronization_time += time::Duration::hours(2);
    }
    let sid = s0.synchronization_setting(&name).expect("id");
    w.arm
        .delete_synchronization_setting(&sid)
        .await
        .expect("delete");
    w.arm
        .put_synchronization_setting(&sid, &setting.for_create())
        .await
        .expect("put");
    // From now on LROs take 1.5 s; a stage polls them for 100 ms at most.
    w.sim.set_faults(&sim::FaultSettings {
        lro_delay_ms: Some(1500),
        ..Default::default()
    });
    w.ctx.lro_handoff = Duration::from_millis(100);
    w.sim.reset_counters();
    let req = StartRequest {
        pair: pair.name.clone(),
        mode: Mode::Failover,
        force: false,
        reason: "test".into(),
        caller: "test".into(),
    };
    let run = start_run(w.store.as_ref(), &w.queue, &w.cfg, &req, w.ctx.clock.now())
        .await
        .expect("start");
    let (run, stopped) = drive(
        &w.ctx,
        &w.queue,
        &run.run_id,
        RunnerOptions {
            virtual_time: false,
            max_wall: Duration::from_secs(60),
            ..RunnerOptions::default()
        },
    )
    .await
    .expect("drive");
    assert_eq!(stopped, Stopped::Ended, "{run:#?}");
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let fs = run.stage(Stage::FinalSync).expect("final-sync");
    assert_eq!(fs.status, StageStatus::Succeeded, "{fs:#?}");
    assert!(fs.attempts >= 2, "the stage waited at least once: {fs:#?}");
    assert_eq!(fs.counts.get("operationsRunning"), Some(&0), "{fs:#?}");
    assert!(run.pending_operations.is_empty());
    assert!(
        !run.findings
            .iter()
            .any(|f| f.code.starts_with("final-sync")),
        "{:#?}",
        run.findings
    );
    assert_eq!(
        ops(&w, "SynchronizationSettings_Delete"),
        1,
        "one DELETE, polled, not repeated"
    );
    let secondary = pair.secondary.share(&w.estate.shares[0]).expect("share id");
    let now = w
        .arm
        .list_synchronization_settings(&secondary)
        .await
        .expect("list");
    match (&now[0].kind, &setting.kind) {
        (
            SynchronizationSettingKind::ScheduleBased(a),
            SynchronizationSettingKind::ScheduleBased(b),
        ) => assert_eq!(a.synchronization_time, b.synchronization_time),
        other => panic!("{other:?}"),
    }
}

/// Preflight with a primary that answers but whose consumers cannot be listed, and no stored
/// roster: a transient failure (503) retries the stage for the first deliveries instead of
/// going on to invite nobody; the third delivery goes on with a Critical `roster-unknown`
/// finding naming the error. A refusal (403) is a tool fault: the run stops in preflight.
#[tokio::test]
async fn preflight_retries_an_unreadable_roster_then_goes_on_with_a_critical_finding() {
    use datashare_dr::failover::exec::Delivery;
    for (status, first_retries) in [(503u16, true), (403, false)] {
        let mut w = world().await;
        // Only the primary's consumers are unreadable: with both accounts' listings failing,
        // neither region would answer and preflight would rightly stop (cannot assess).
        let primary = w.cfg.pairs[0].primary.name().to_owned();
        w.sim.set_faults(&sim::FaultSettings {
            fail_operations: Some(
                [(
                    format!("ProviderShareSubscriptions_ListByShare@{primary}"),
                    status,
                )]
                .into(),
            ),
            ..Default::default()
        });
        let req = StartRequest {
            pair: w.cfg.pairs[0].name.clone(),
            mode: Mode::Failover,
            force: true,
            reason: "test".into(),
            caller: "test".into(),
        };
        let run = start_run(w.store.as_ref(), &w.queue, &w.cfg, &req, w.ctx.clock.now())
            .await
            .expect("start");
        let msg = StageMessage::new(&run.run_id, Stage::Preflight, 0);
        let deliver = |w: &mut World, n: u32| {
            w.ctx.delivery = Some(Delivery {
                message_id: "m-preflight".into(),
                dequeue_count: n,
            });
        };
        deliver(&mut w, 1);
        let first = run_one_stage(&w.ctx, &msg).await;
        if first_retries {
            let e = match first {
                Err(e) => e,
                Ok(o) => {
                    let (rec, _) =
                        datashare_dr::failover::run::require_run(w.store.as_ref(), &run.run_id)
                            .await
                            .expect("run");
                    panic!(
                        "a transient roster failure retries the stage, got {o:?}: {:#?}",
                        rec.findings
                    );
                }
            };
            assert!(e.is_transient(), "{e}");
            assert!(
                datashare_dr::failover::error_text(&e).contains("consumers could not be read"),
                "{e}"
            );
            deliver(&mut w, 2);
            assert!(
                run_one_stage(&w.ctx, &msg).await.is_err(),
                "second delivery retries too"
            );
            deliver(&mut w, 3);
            let third = run_one_stage(&w.ctx, &msg)
                .await
                .expect("third delivery goes on");
            assert!(matches!(third, Outcome::Advance(_)), "{third:?}");
        } else {
            // A refusal (403) is the tool's own fault (a missing role), never an outage:
            // preflight stops the run with the fault and its fix instead of going on.
            let first = first.expect("a refusal is decided at once");
            match &first {
                Outcome::Abort(reason) => assert!(
                    reason.contains("tool-fault") && reason.contains("role"),
                    "{reason}"
                ),
                other => panic!("a 403 on the roster read must stop the run: {other:?}"),
            }
            continue;
        }
        let (rec, _) = datashare_dr::failover::run::require_run(w.store.as_ref(), &run.run_id)
            .await
            .expect("run");
        let f = rec
            .findings
            .iter()
            .find(|f| f.code == "roster-unknown")
            .unwrap_or_else(|| panic!("{status}: {:#?}", rec.findings));
        assert_eq!(f.severity, "Critical", "{f:?}");
        assert!(
            f.message.contains("ProviderShareSubscriptions_ListByShare"),
            "{status}: the finding names the failed read: {}",
            f.message
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Documented guarantees (docs/failover.md "Guarantees", `failover::exec` module docs)

/// Runs stages by hand (as the queue function would, without a queue) until `until` is the
/// run's current stage.
async fn walk_to(w: &World, run_id: &str, until: Stage) {
    let mut stage = Stage::Preflight;
    while stage != until {
        match run_one_stage(&w.ctx, &StageMessage::new(run_id, stage, 0))
            .await
            .unwrap_or_else(|e| panic!("{stage}: {e}"))
        {
            Outcome::Advance(n) => stage = n,
            other => panic!("{stage}: {other:?}"),
        }
    }
}

async fn runbook_run(w: &World) -> RunRecord {
    let req = StartRequest {
        pair: w.cfg.pairs[0].name.clone(),
        mode: Mode::Failover,
        force: false,
        reason: "test".into(),
        caller: "test".into(),
    };
    start_run(w.store.as_ref(), &w.queue, &w.cfg, &req, w.ctx.clock.now())
        .await
        .expect("start")
}

async fn load(w: &World, run_id: &str) -> RunRecord {
    datashare_dr::failover::run::require_run(w.store.as_ref(), run_id)
        .await
        .expect("run")
        .0
}

/// "A claim older than 120 s is taken over (the claimant died)": a delivery that finds a
/// younger claim waits; once the claim is older than `CLAIM_LEASE`, the next delivery runs the
/// stage itself.
#[tokio::test]
async fn a_stage_claim_older_than_its_lease_is_taken_over() {
    use datashare_dr::failover::exec::{CLAIM_LEASE, CLAIMED_RETRY};
    use datashare_dr::failover::run::update_run;
    let w = world().await;
    let run = runbook_run(&w).await;
    // A delivery claimed preflight, then its process died.
    let claimed_at = w.ctx.clock.now();
    update_run(w.store.as_ref(), &run.run_id, |r| {
        let rec = r.stage_mut(Stage::Preflight).expect("preflight");
        rec.status = StageStatus::Running;
        rec.claim = Some("dead-delivery".into());
        rec.claimed_at = Some(claimed_at);
        rec.attempts = 1;
        Ok(())
    })
    .await
    .expect("claim");
    let msg = StageMessage::new(&run.run_id, Stage::Preflight, 0);
    // Within the lease the claim is respected.
    w.ctx.clock.advance(CLAIM_LEASE - Duration::from_secs(5));
    let out = run_one_stage(&w.ctx, &msg).await.expect("within the lease");
    assert_eq!(out, Outcome::Wait(CLAIMED_RETRY));
    let rec = load(&w, &run.run_id).await;
    assert_eq!(
        rec.stage(Stage::Preflight).and_then(|s| s.claim.clone()),
        Some("dead-delivery".into())
    );
    // Past the lease the stage is taken over and runs to its end.
    w.ctx.clock.advance(Duration::from_secs(10));
    let out = run_one_stage(&w.ctx, &msg).await.expect("after the lease");
    assert_eq!(out, Outcome::Advance(Stage::FinalSync));
    let rec = load(&w, &run.run_id).await;
    let pre = rec.stage(Stage::Preflight).expect("preflight");
    assert_eq!(pre.status, StageStatus::Succeeded, "{pre:#?}");
    assert_eq!(pre.attempts, 2, "{pre:#?}");
    assert_eq!(pre.claim, None);
}

/// "Resolved/Available alerts are recorded on the active run (`resolvedAlerts`), never an
/// automatic failback."
#[tokio::test]
async fn a_resolved_alert_is_recorded_on_the_active_run_and_starts_nothing() {
    use serde_json::{Value, json};
    let w = world().await;
    let run_id = alert_run(&w).await;
    let mut v: Value = serde_json::from_slice(
        &resource_health_alert(
            w.cfg.pairs[0].primary.as_str(),
            &w.estate.subscription_id,
            OffsetDateTime::now_utc(),
        )
        .expect("alert"),
    )
    .expect("alert JSON");
    v["data"]["essentials"]["monitorCondition"] = json!("Resolved");
    v["data"]["alertContext"]["status"] = json!("Resolved");
    v["data"]["alertContext"]["properties"]["previousHealthStatus"] = json!("Unavailable");
    v["data"]["alertContext"]["properties"]["currentHealthStatus"] = json!("Available");
    let alert_id = v["data"]["essentials"]["alertId"]
        .as_str()
        .expect("alert id")
        .to_owned();
    let answer = ingest_alert(
        w.store.as_ref(),
        &w.queue,
        &w.cfg,
        v.to_string().as_bytes(),
        w.ctx.clock.now(),
    )
    .await
    .expect("ingest");
    let AlertAnswer::Recorded { pairs } = answer else {
        panic!("expected the recovery to be recorded, got {answer:?}")
    };
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(pairs[0].action, "recorded", "{pairs:?}");
    assert_eq!(pairs[0].run_id.as_deref(), Some(run_id.as_str()));
    let run = load(&w, &run_id).await;
    assert_eq!(run.resolved_alerts.len(), 1, "{run:#?}");
    assert_eq!(run.resolved_alerts[0].alert_id, alert_id);
    assert!(!run.status.is_terminal(), "{run:#?}");
    assert_eq!(run.mode, Mode::Failover);
    assert_eq!(
        w.store.list("runs/").await.expect("list").len(),
        1,
        "no failback run"
    );
    // The failover goes on and keeps the record.
    let run = finish(&w, &run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.resolved_alerts.len(), 1);
}

/// "after 30 rounds the run goes on with `final-sync-incomplete`": a long-running operation of
/// the final sync that never finishes does not hold the failover.
#[tokio::test]
async fn final_sync_gives_up_after_its_bounded_rounds_with_a_finding() {
    use datashare_dr::arm::models::SynchronizationSettingKind;
    let mut w = world().await;
    let pair = w.cfg.pairs[0].clone();
    // A changed schedule on the primary: the final sync replaces the secondary's (DELETE: an LRO).
    let s0 = pair.primary.share(&w.estate.shares[0]).expect("share id");
    let mut setting = w
        .arm
        .list_synchronization_settings(&s0)
        .await
        .expect("list")[0]
        .clone();
    let name = setting.name().expect("name").to_string();
    if let SynchronizationSettingKind::ScheduleBased(p) = &mut setting.kind {
        p.synchronization_time += time::Duration::hours(2);
    }
    let sid = s0.synchronization_setting(&name).expect("id");
    w.arm
        .delete_synchronization_setting(&sid)
        .await
        .expect("delete");
    w.arm
        .put_synchronization_setting(&sid, &setting.for_create())
        .await
        .expect("put");
    // From now on an LRO outlives the test (an hour); a stage polls it for 10 ms at most.
    w.sim.set_faults(&sim::FaultSettings {
        lro_delay_ms: Some(3_600_000),
        ..Default::default()
    });
    w.ctx.lro_handoff = Duration::from_millis(10);
    w.sim.reset_counters();
    let run = runbook_run(&w).await;
    let (run, stopped) = drive(
        &w.ctx,
        &w.queue,
        &run.run_id,
        RunnerOptions {
            max_wall: Duration::from_secs(120),
            max_virtual: Duration::from_secs(2 * 3600),
            ..RunnerOptions::default()
        },
    )
    .await
    .expect("drive");
    assert_eq!(stopped, Stopped::Ended, "{run:#?}");
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let fs = run.stage(Stage::FinalSync).expect("final-sync");
    assert_eq!(fs.status, StageStatus::Succeeded, "{fs:#?}");
    assert_eq!(fs.attempts, 30, "30 rounds, then on: {fs:#?}");
    let incomplete: Vec<_> = run
        .findings
        .iter()
        .filter(|f| f.code == "final-sync-incomplete")
        .collect();
    assert_eq!(incomplete.len(), 1, "{:#?}", run.findings);
    assert_eq!(incomplete[0].severity, "Warning");
    assert_eq!(incomplete[0].stage, Some(Stage::FinalSync));
    assert!(
        incomplete[0].message.contains("SynchronizationSettings")
            || incomplete[0].message.contains(&name),
        "the finding names the open operation: {:?}",
        incomplete[0]
    );
    assert!(run.pending_operations.is_empty(), "{run:#?}");
    assert_eq!(
        ops(&w, "SynchronizationSettings_Delete"),
        1,
        "one DELETE, polled, never repeated"
    );
    // enable-schedules cannot create the schedule while its deletion runs: a finding, not a
    // failed failover.
    assert!(
        run.findings
            .iter()
            .any(|f| f.code == "schedule-not-enabled" && f.stage == Some(Stage::EnableSchedules)),
        "{:#?}",
        run.findings
    );
}

/// "the message of the current stage is emitted again when its predecessor is redelivered and
/// the current stage never started": a crash between recording preflight and enqueueing its
/// successor loses the successor's message; the host redelivers preflight, which does no work
/// again and emits exactly one message for the current stage. Once that stage has started, a
/// further redelivery of preflight emits nothing.
#[tokio::test]
async fn a_redelivered_predecessor_re_emits_the_current_stage_exactly_once() {
    use datashare_dr::failover::runner::process_message;
    let w = world_with(|t| t.replace("failover = \"auto\"", "failover = \"approve\"")).await;
    let run_id = alert_run(&w).await;
    let take_all = || async {
        let got = w
            .queue
            .receive(STAGE_QUEUE, 32, Duration::from_secs(600))
            .await
            .expect("receive");
        for m in &got {
            w.queue
                .delete(STAGE_QUEUE, &m.id, &m.pop_receipt)
                .await
                .expect("delete");
        }
        got.into_iter()
            .map(|m| serde_json::from_str::<StageMessage>(&m.text).expect("stage message"))
            .collect::<Vec<_>>()
    };
    let first = take_all().await;
    assert_eq!(first.len(), 1);
    let preflight = first[0].clone();
    assert_eq!(preflight.stage, "preflight");
    let out = process_message(&w.ctx, &preflight, 1, 5, true)
        .await
        .expect("preflight");
    assert_eq!(out, Some(Outcome::Advance(Stage::AwaitApproval)));
    // The crash: the successor's message never made it to the queue.
    assert_eq!(take_all().await.len(), 1);
    assert_eq!(w.queue.len(STAGE_QUEUE), 0);

    // The host redelivers preflight: no ARM call, one message for await-approval.
    let calls = w.sim.stats().total;
    let out = process_message(&w.ctx, &preflight, 2, 5, true)
        .await
        .expect("redelivered preflight");
    assert_eq!(out, Some(Outcome::Advance(Stage::AwaitApproval)));
    assert_eq!(w.sim.stats().total, calls, "preflight ran again");
    let emitted = take_all().await;
    assert_eq!(
        emitted.iter().map(|m| m.stage.as_str()).collect::<Vec<_>>(),
        vec!["await-approval"],
        "exactly one message for the current stage"
    );
    let run = load(&w, &run_id).await;
    assert_eq!(run.stage(Stage::Preflight).map(|s| s.attempts), Some(1));

    // The current stage starts (and waits for approval); preflight again emits nothing.
    let out = process_message(&w.ctx, &emitted[0], 1, 5, true)
        .await
        .expect("await-approval");
    assert!(matches!(out, Some(Outcome::Wait(_))), "{out:?}");
    let waiting = w.queue.len(STAGE_QUEUE);
    assert_eq!(waiting, 1, "the delayed re-check of await-approval");
    let out = process_message(&w.ctx, &preflight, 3, 5, true)
        .await
        .expect("preflight once more");
    assert_eq!(out, Some(Outcome::Done));
    assert_eq!(w.queue.len(STAGE_QUEUE), waiting, "nothing emitted");
}

/// `enable-schedules` with a primary that answered preflight but whose schedules cannot be read
/// now: not "no schedule". A transient failure retries the stage (first deliveries); after
/// that, or for a permanent refusal, the stage goes on with a Warning naming the failed read.
#[tokio::test]
async fn enable_schedules_does_not_take_an_unreadable_primary_for_one_without_schedules() {
    use datashare_dr::failover::exec::Delivery;
    for (status, retried) in [(503u16, true), (403, false)] {
        let mut w = world().await;
        let run = runbook_run(&w).await;
        walk_to(&w, &run.run_id, Stage::EnableSchedules).await;
        assert_eq!(load(&w, &run.run_id).await.primary_reachable, Some(true));
        let primary = w.cfg.pairs[0].primary.name().to_owned();
        w.sim.set_faults(&sim::FaultSettings {
            fail_operations: Some(
                [(
                    format!("SynchronizationSettings_ListByShare@{primary}"),
                    status,
                )]
                .into(),
            ),
            ..Default::default()
        });
        let msg = StageMessage::new(&run.run_id, Stage::EnableSchedules, 0);
        w.ctx.delivery = Some(Delivery {
            message_id: "m-enable".into(),
            dequeue_count: 1,
        });
        let first = run_one_stage(&w.ctx, &msg).await;
        if retried {
            let e = first.expect_err("a transient failure retries the stage");
            assert!(e.is_transient(), "{e}");
            let text = datashare_dr::failover::error_text(&e);
            assert!(
                text.contains("schedules") && text.contains(&primary),
                "names the read: {text}"
            );
            w.ctx.delivery = Some(Delivery {
                message_id: "m-enable".into(),
                dequeue_count: 3,
            });
            let third = run_one_stage(&w.ctx, &msg).await.expect("third delivery");
            assert_eq!(third, Outcome::Advance(Stage::Notify), "{status}");
        } else {
            assert_eq!(
                first.expect("a refusal goes on at once"),
                Outcome::Advance(Stage::Notify)
            );
        }
        let run = load(&w, &run.run_id).await;
        let unread: Vec<_> = run
            .findings
            .iter()
            .filter(|f| f.code == "schedules-unread")
            .collect();
        assert_eq!(unread.len(), 1, "{status}: {:#?}", run.findings);
        assert_eq!(unread[0].severity, "Warning");
        assert_eq!(unread[0].stage, Some(Stage::EnableSchedules));
        assert!(
            unread[0].message.contains(&primary)
                && unread[0].message.contains("SynchronizationSettings"),
            "{status}: the finding names the read that failed: {:?}",
            unread[0]
        );
    }
}

/// A queue that refuses every notification (the stage queue works).
#[derive(Clone)]
struct NoNotifications(InProcessQueue);

impl Queue for NoNotifications {
    fn ensure_queue<'a>(&'a self, queue: &'a str) -> datashare_dr::store::StoreFuture<'a, ()> {
        self.0.ensure_queue(queue)
    }
    fn send<'a>(
        &'a self,
        queue: &'a str,
        text: &'a str,
        visibility_delay: Option<Duration>,
    ) -> datashare_dr::store::StoreFuture<'a, String> {
        if queue == datashare_dr::store::NOTIFICATIONS_QUEUE {
            return Box::pin(async move {
                Err(datashare_dr::store::StoreError::SendMessage {
                    queue: queue.to_owned(),
                    source: datashare_dr::store::RemoteError {
                        status: Some(503),
                        code: Some("ServerBusy".into()),
                        message: "the notifications queue refuses messages (test)".into(),
                        transient: true,
                    },
                })
            });
        }
        self.0.send(queue, text, visibility_delay)
    }
    fn receive<'a>(
        &'a self,
        queue: &'a str,
        max: u32,
        visibility_timeout: Duration,
    ) -> datashare_dr::store::StoreFuture<'a, Vec<datashare_dr::store::ReceivedMessage>> {
        self.0.receive(queue, max, visibility_timeout)
    }
    fn delete<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
    ) -> datashare_dr::store::StoreFuture<'a, ()> {
        self.0.delete(queue, id, pop_receipt)
    }
    fn update_visibility<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
        visibility_timeout: Duration,
    ) -> datashare_dr::store::StoreFuture<'a, String> {
        self.0
            .update_visibility(queue, id, pop_receipt, visibility_timeout)
    }
}

/// A run that ends without success notifies; when that notification cannot be queued, a WARN
/// line with the run id says so (nobody else would know).
#[tokio::test]
async fn a_notification_that_cannot_be_queued_is_logged_at_warn_with_the_run_id() {
    use datashare_dr::failover::exec::fail_run;
    use support::logs::Captured;
    let w = world().await;
    let run = runbook_run(&w).await;
    let mut ctx = w.ctx.clone();
    ctx.queue = Arc::new(NoNotifications(w.queue.clone()));
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let failed = fail_run(&ctx, &run.run_id, Some(Stage::Preflight), "test failure")
        .await
        .expect("fail the run");
    assert_eq!(failed.status, RunStatus::Failed);
    let text = captured.text();
    let warned: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "WARN")
        .filter(|v| v["fields"]["run_id"] == run.run_id.as_str())
        .collect();
    assert!(
        warned.iter().any(|v| v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("notification"))
            && v["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("refuses messages"))),
        "a WARN line with the run id and the error: {text}"
    );
}

/// "Claims that cannot lapse": a stage that runs longer than its claim lease keeps the claim
/// (the heartbeat renews it), so a concurrent delivery of the same stage — arriving after the
/// lease would have run out — waits instead of running the stage a second time. Judged on the
/// simulator's request log: every invitation PUT path appears once.
#[tokio::test]
async fn a_stage_that_runs_longer_than_its_lease_is_not_run_twice_by_a_concurrent_delivery() {
    use datashare_dr::failover::exec::CLAIMED_RETRY;
    use datashare_dr::sim::FaultSettings;
    let mut w = world().await;
    w.ctx.claim_lease = Duration::from_millis(800);
    let run = runbook_run(&w).await;
    let mut stage = Stage::Preflight;
    while stage != Stage::InviteConsumers {
        match run_one_stage(&w.ctx, &StageMessage::new(&run.run_id, stage, 0))
            .await
            .expect("stage")
        {
            Outcome::Advance(n) => stage = n,
            other => panic!("{stage}: {other:?}"),
        }
    }
    // Every ARM call now takes 900 ms: invite-consumers lasts several leases.
    w.sim.set_faults(&FaultSettings {
        latency_ms: Some(900),
        ..FaultSettings::default()
    });
    let log_from = w.sim.requests().last().map_or(0, |e| e.seq);
    let msg = StageMessage::new(&run.run_id, Stage::InviteConsumers, 0);
    let first = async {
        let started = std::time::Instant::now();
        let out = run_one_stage(&w.ctx, &msg).await;
        (out, started.elapsed())
    };
    let second = async {
        // Well past the lease (had nobody renewed it).
        tokio::time::sleep(Duration::from_millis(1_600)).await;
        run_one_stage(&w.ctx, &msg).await
    };
    let ((first, took), second) = tokio::join!(first, second);
    assert!(
        took > Duration::from_millis(2_400),
        "the stage must outlast the lease for this test to mean anything (took {took:?})"
    );
    assert_eq!(
        first.expect("first delivery"),
        Outcome::Advance(Stage::EnableSchedules)
    );
    assert_eq!(
        second.expect("second delivery"),
        Outcome::Wait(CLAIMED_RETRY),
        "the concurrent delivery must wait on the live (renewed) claim"
    );
    let mut puts: BTreeMap<String, u32> = BTreeMap::new();
    for e in w.sim.requests().iter().filter(|e| e.seq > log_from) {
        if e.method == "PUT" && e.path.to_ascii_lowercase().contains("/invitations/") {
            *puts.entry(e.path.clone()).or_default() += 1;
        }
    }
    assert!(!puts.is_empty(), "the stage invited nobody");
    let twice: Vec<_> = puts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "invitations PUT more than once: {twice:?}"
    );
    let rec = load(&w, &run.run_id).await;
    let inv = rec.stage(Stage::InviteConsumers).expect("invite");
    assert_eq!(inv.attempts, 1, "{inv:#?}");
}

/// Preflight finding the primary account missing (ARM 404 naming it) on an alert-started run
/// nobody approved inserts `await-approval`: the run waits for a person, its route is
/// `primary-account-missing`, and that route expires rather than proceeds on timeout.
#[tokio::test]
async fn a_missing_primary_account_routes_an_alert_run_to_approval_that_never_proceeds() {
    use datashare_dr::config::dr::{ApprovalDeadline, ApprovalTimeoutAction};
    use datashare_dr::failover::events::{DeadlineDecision, approval_deadline_decision};
    use datashare_dr::failover::run::approval_route;
    let w = world().await;
    w.arm
        .delete_account(&w.cfg.pairs[0].primary)
        .await
        .expect("delete the primary account");
    let base = ops(&w, "Invitations_Create");
    let run_id = alert_run(&w).await;
    let opts = RunnerOptions {
        max_virtual: Duration::from_secs(120),
        ..RunnerOptions::default()
    };
    let (run, stopped) = drive(&w.ctx, &w.queue, &run_id, opts).await.expect("drive");
    assert_eq!(stopped, Stopped::Waiting, "{run:#?}");
    assert_eq!(run.status, RunStatus::AwaitingApproval, "{run:#?}");
    assert_eq!(run.current_stage, Some(Stage::AwaitApproval));
    let order: Vec<Stage> = run.stages.iter().map(|s| s.stage).collect();
    assert_eq!(
        &order[..2],
        &[Stage::Preflight, Stage::AwaitApproval],
        "{order:?}"
    );
    assert!(run.approval.required);
    assert_eq!(
        run.approval.route.as_deref(),
        Some(approval_route::PRIMARY_ACCOUNT_MISSING),
        "{:#?}",
        run.approval
    );
    assert!(
        run.findings.iter().any(|f| f.code == "approval-required"),
        "{:#?}",
        run.findings
    );
    assert_eq!(ops(&w, "Invitations_Create"), base, "nothing was invited");
    // Even under `on_approval_timeout = "proceed"` the deadline expires the run.
    let policy = ApprovalDeadline {
        timeout: Duration::from_secs(60),
        on_timeout: ApprovalTimeoutAction::Proceed,
    };
    assert_eq!(
        approval_deadline_decision(&run, &policy, run.updated_at + time::Duration::hours(24)),
        DeadlineDecision::Expire
    );
}

/// Final-sync probes the primary before skipping: a tool fault on the primary's reads (403,
/// the identity lost its role) fails the run with the fault's finding instead of skipping as if
/// the region were down.
#[tokio::test]
async fn final_sync_fails_with_the_tool_fault_instead_of_skipping() {
    let w = world().await;
    let run = runbook_run(&w).await;
    walk_to(&w, &run.run_id, Stage::FinalSync).await;
    assert_eq!(load(&w, &run.run_id).await.primary_reachable, Some(true));
    let primary = w.cfg.pairs[0].primary.name().to_owned();
    w.sim.set_faults(&sim::FaultSettings {
        fail_operations: Some(
            [
                (format!("Accounts_Get@{primary}"), 403u16),
                (format!("Shares_ListByAccount@{primary}"), 403),
            ]
            .into(),
        ),
        ..Default::default()
    });
    let out = run_one_stage(&w.ctx, &StageMessage::new(&run.run_id, Stage::FinalSync, 0)).await;
    let rec = load(&w, &run.run_id).await;
    assert!(
        matches!(out, Ok(Outcome::Abort(_))),
        "{out:?}: {:#?}",
        rec.findings
    );
    assert_eq!(rec.status, RunStatus::Failed, "{rec:#?}");
    assert_ne!(
        rec.stage(Stage::FinalSync).expect("final-sync").status,
        StageStatus::Skipped
    );
    assert!(
        !rec.findings.iter().any(|f| f.code == "final-sync-skipped"),
        "{:#?}",
        rec.findings
    );
    let f = rec
        .findings
        .iter()
        .find(|f| f.code == "tool-fault" && f.stage == Some(Stage::FinalSync))
        .unwrap_or_else(|| panic!("{:#?}", rec.findings));
    assert_eq!(f.severity, "Critical");
    assert!(f.message.contains("authorization"), "{}", f.message);
    assert!(
        rec.error.as_deref().unwrap_or("").contains("final-sync"),
        "{rec:#?}"
    );
}

/// `enable-schedules` does not hold its invocation while a schedule's creation runs long: the
/// creation (a long-running operation, simulator `long_running_settings`) is handed over to the
/// queue (`pendingOperations`, a `Wait`), the next delivery polls it instead of writing again,
/// and once it finished the stage observes the schedule in place and goes on — one PUT.
#[tokio::test]
async fn enable_schedules_hands_a_long_running_schedule_creation_to_the_queue() {
    let mut w = world().await;
    let pair = w.cfg.pairs[0].clone();
    let run = runbook_run(&w).await;
    walk_to(&w, &run.run_id, Stage::EnableSchedules).await;
    // The secondary lost share 0's schedule: enable-schedules creates it from the primary's.
    let s0 = pair.secondary.share(&w.estate.shares[0]).expect("share id");
    let settings = w
        .arm
        .list_synchronization_settings(&s0)
        .await
        .expect("list");
    assert!(!settings.is_empty(), "the bootstrap copied the schedule");
    for s in &settings {
        let sid = s0
            .synchronization_setting(s.name().expect("name"))
            .expect("id");
        w.arm
            .delete_synchronization_setting(&sid)
            .await
            .expect("delete");
    }
    // From now on a schedule's creation takes 1.5 s; a stage polls it for 100 ms at most.
    w.sim.set_faults(&sim::FaultSettings {
        lro_delay_ms: Some(1500),
        long_running_settings: Some(true),
        ..Default::default()
    });
    w.ctx.lro_handoff = Duration::from_millis(100);
    w.sim.reset_counters();
    let msg = StageMessage::new(&run.run_id, Stage::EnableSchedules, 0);

    let started = std::time::Instant::now();
    let first = run_one_stage(&w.ctx, &msg).await.expect("first delivery");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "the stage did not hold the invocation for the operation: {:?}",
        started.elapsed()
    );
    assert!(matches!(first, Outcome::Wait(_)), "{first:?}");
    let rec = load(&w, &run.run_id).await;
    assert_eq!(
        rec.pending_operations.len(),
        settings.len(),
        "{:#?}",
        rec.pending_operations
    );
    assert!(
        rec.pending_operations
            .iter()
            .all(|h| h.operation == "SynchronizationSettings_Create"),
        "{:#?}",
        rec.pending_operations
    );
    let st = rec.stage(Stage::EnableSchedules).expect("stage");
    assert_eq!(
        st.counts.get("operationsRunning"),
        Some(&(settings.len() as u64)),
        "{st:#?}"
    );
    let puts = ops(&w, "SynchronizationSettings_Create");
    assert_eq!(puts, settings.len() as u64, "one PUT per missing schedule");

    // Redelivered while it still runs: polled, not written again.
    let again = run_one_stage(&w.ctx, &msg).await.expect("second delivery");
    assert!(matches!(again, Outcome::Wait(_)), "{again:?}");
    assert_eq!(
        ops(&w, "SynchronizationSettings_Create"),
        puts,
        "no second PUT"
    );

    // Finished: the next delivery observes the schedule in place and goes on.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let done = run_one_stage(&w.ctx, &msg).await.expect("third delivery");
    assert_eq!(done, Outcome::Advance(Stage::Notify));
    assert_eq!(
        ops(&w, "SynchronizationSettings_Create"),
        puts,
        "no second PUT"
    );
    let rec = load(&w, &run.run_id).await;
    assert!(rec.pending_operations.is_empty(), "{rec:#?}");
    let st = rec.stage(Stage::EnableSchedules).expect("stage");
    assert_eq!(st.status, StageStatus::Succeeded, "{st:#?}");
    assert_eq!(st.counts.get("operationsRunning"), Some(&0), "{st:#?}");
    assert!(st.attempts >= 3, "{st:#?}");
    assert!(
        !rec.findings
            .iter()
            .any(|f| f.stage == Some(Stage::EnableSchedules)),
        "{:#?}",
        rec.findings
    );
    let now = w
        .arm
        .list_synchronization_settings(&s0)
        .await
        .expect("list");
    assert_eq!(now.len(), settings.len(), "{now:#?}");
}
