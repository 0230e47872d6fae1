//! Failover through the Functions host emulator (tests/support/host_emulator.rs) with Azurite and
//! the ARM simulator: the real handler answers `AlertWebhook`, `StartFailover`, `FailoverRun`,
//! `FailoverStage` and `FailoverPoison` exactly as the host calls them, stage messages travel
//! through Azurite queues with the host's retry/poison rules, and run records are read back from
//! Azurite blob storage.
//!
//! Isolation: the app sends stage and notification messages itself (a wait needs a visibility
//! delay, which an output binding cannot set), to the contract names `failover-stages` and
//! `notifications`, and keeps runs in the container `datashare-dr`. The in-process tests give the
//! handler a [`RenamedQueue`] (the real Azure queue client, with the contract names mapped to
//! per-test names — the same mapping the emulator's `queue_alias` applies to the function.json
//! bindings) and a per-test container, so they run in parallel against the one Azurite. The
//! SIGKILL test runs the real binary as a child process, which uses the contract names; so do
//! chaos, storm and failover_cli. It takes [`REAL_NAMES`], a unique pair name keeps its blobs
//! apart from anything else in `datashare-dr`, and it counts only its own run's deliveries.
//!
//! Without Azurite (`DSDR_TEST_STORAGE` unset) every test prints a skip notice and passes —
//! unless `DSDR_REQUIRE_AZURITE=1` (set by scripts/test), which makes a missing Azurite a failure.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datashare_dr::arm::client::ArmClient;
use datashare_dr::arm::id::AccountId;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::config::{Config, StorageSettings as ConfigStorage, parse_connection_string};
use datashare_dr::failover::drill::resource_health_alert;
use datashare_dr::failover::exec::{Roster, roster_path};
use datashare_dr::failover::run::{StageStatus, lock_path};
use datashare_dr::failover::{RunRecord, RunStatus, Stage};
use datashare_dr::sim::{self, Estate, FaultSettings, SimHandle};
use datashare_dr::startup::{AppState, AppStorage};
use datashare_dr::store::{
    self, AzureBlobStore, AzureQueue, BlobStore, MessageEncoding, Queue, ReceivedMessage,
    StoreFuture,
};
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app_with_state};
use support::azurite::{TestAzurite, azurite, unique_name};
use support::host_emulator::{Delivery, Disposition, HostEmulator, Pump};
use time::OffsetDateTime;

/// Serialises the tests that use the contract queue/container names (the child process).
static REAL_NAMES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// storage isolation

/// The app's queue client with the contract queue names mapped to per-test names.
struct RenamedQueue {
    inner: Arc<AzureQueue>,
    names: HashMap<String, String>,
}

impl RenamedQueue {
    fn name<'a>(&'a self, queue: &'a str) -> &'a str {
        self.names.get(queue).map_or(queue, String::as_str)
    }
}

impl Queue for RenamedQueue {
    fn ensure_queue<'a>(&'a self, queue: &'a str) -> StoreFuture<'a, ()> {
        self.inner.ensure_queue(self.name(queue))
    }
    fn send<'a>(
        &'a self,
        queue: &'a str,
        text: &'a str,
        visibility_delay: Option<Duration>,
    ) -> StoreFuture<'a, String> {
        self.inner.send(self.name(queue), text, visibility_delay)
    }
    fn receive<'a>(
        &'a self,
        queue: &'a str,
        max: u32,
        visibility_timeout: Duration,
    ) -> StoreFuture<'a, Vec<ReceivedMessage>> {
        self.inner
            .receive(self.name(queue), max, visibility_timeout)
    }
    fn delete<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
    ) -> StoreFuture<'a, ()> {
        self.inner.delete(self.name(queue), id, pop_receipt)
    }
    fn update_visibility<'a>(
        &'a self,
        queue: &'a str,
        id: &'a str,
        pop_receipt: &'a str,
        visibility_timeout: Duration,
    ) -> StoreFuture<'a, String> {
        self.inner
            .update_visibility(self.name(queue), id, pop_receipt, visibility_timeout)
    }
}

// ---------------------------------------------------------------------------------------------
// the world: simulator + replicated estate + Azurite + handler + host emulator

struct Sim {
    sim: SimHandle,
    estate: Estate,
    /// The generated DR config text (after the test's edit).
    toml: String,
    cfg: DrConfig,
    arm: ArmClient,
}

/// A simulator with a generated estate (3 shares × 2 data sets, 2 consumers; the second
/// consumer is invited only at failover), replicated once, config text edited by `edit`.
async fn replicated_sim(edit: impl Fn(String) -> String) -> Sim {
    let (sim, estate) = support::estate::populated(3, 2, 2, 7).await;
    // Trusts the test issuer whose tokens the host emulator sends to AlertWebhook (issue 15).
    let toml = support::alert_token::trust(&edit(sim::write_config(&estate, &sim.base_url)));
    let cfg = DrConfig::from_toml_str(&toml, "failover-host.toml").expect("generated config");
    let arm = support::estate::bootstrap(&sim, &cfg, &cfg.pairs[0]).await;
    Sim {
        sim,
        estate,
        toml,
        cfg,
        arm,
    }
}

struct World {
    s: Sim,
    blobs: Arc<AzureBlobStore>,
    stages: String,
    notifications: String,
    poison: String,
    host: HostEmulator,
    _app: TestApp,
}

impl std::ops::Deref for World {
    type Target = Sim;
    fn deref(&self) -> &Sim {
        &self.s
    }
}

/// The handler in-process on per-test storage, behind the host emulator.
async fn world(az: &TestAzurite, edit: impl Fn(String) -> String) -> World {
    let s = replicated_sim(edit).await;
    let blobs = az.fresh_container("fo-host").await;
    let stages = unique_name("fo-stages");
    let notifications = unique_name("fo-notes");
    let poison = format!("{stages}-poison");
    let mut names = HashMap::new();
    names.insert(store::STAGE_QUEUE.to_owned(), stages.clone());
    names.insert(store::STAGE_POISON_QUEUE.to_owned(), poison.clone());
    names.insert(store::NOTIFICATIONS_QUEUE.to_owned(), notifications.clone());
    let raw = az.queue_client(MessageEncoding::None);
    for q in [&stages, &poison, &notifications] {
        raw.ensure_queue(q).await.expect("create a test queue");
    }
    let storage = AppStorage {
        blobs: blobs.clone(),
        queue: Arc::new(RenamedQueue { inner: raw, names }),
        kind: "azure",
    };
    let mut config = Config::for_port(0);
    config.storage = Some(ConfigStorage::ConnectionString(
        parse_connection_string(&az.connection_string).expect("Azurite connection string"),
    ));
    let app =
        spawn_app_with_state(AppState::new(config, Some(s.cfg.clone())).with_storage(storage))
            .await;
    let host = HostEmulator::for_repo(&app.base_url, &az.settings)
        .setting("REPLICATE_SCHEDULE", "0 */15 * * * *")
        .setting("READINESS_SCHEDULE", "0 */15 * * * *")
        .setting("WATCHDOG_SCHEDULE", "0 */5 * * * *")
        .queue_alias(store::STAGE_QUEUE, &stages)
        .queue_alias(store::STAGE_POISON_QUEUE, &poison)
        .queue_alias(store::NOTIFICATIONS_QUEUE, &notifications)
        .visibility_timeout(Duration::from_secs(1))
        .function_timeout(Duration::from_secs(120))
        .build()
        .expect("host emulator");
    World {
        s,
        blobs,
        stages,
        notifications,
        poison,
        host,
        _app: app,
    }
}

fn approve_policy(t: String) -> String {
    t.replace("failover = \"auto\"", "failover = \"approve\"")
}

// ---------------------------------------------------------------------------------------------
// helpers

async fn load_run(blobs: &dyn BlobStore, run_id: &str) -> RunRecord {
    datashare_dr::failover::run::require_run(blobs, run_id)
        .await
        .unwrap_or_else(|e| panic!("run {run_id}: {e}"))
        .0
}

fn stage_of(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["stage"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Pumps `FailoverStage` until the run satisfies `done` (checked between bounded pump rounds),
/// at most `within`. Returns the run and every delivery.
async fn pump_until(
    host: &HostEmulator,
    blobs: &dyn BlobStore,
    run_id: &str,
    within: Duration,
    done: impl Fn(&RunRecord) -> bool,
) -> (RunRecord, Vec<Delivery>) {
    let started = Instant::now();
    let mut deliveries = Vec::new();
    loop {
        let run = load_run(blobs, run_id).await;
        if done(&run) {
            return (run, deliveries);
        }
        assert!(
            started.elapsed() < within,
            "run {run_id} did not get there within {within:?}: {run:#?}\ndeliveries: {:#?}",
            deliveries
                .iter()
                .map(|d: &Delivery| (
                    stage_of(&d.text),
                    d.dequeue_count,
                    d.disposition.clone(),
                    d.invocation.as_ref().and_then(|i| i.failure.clone()),
                    d.invocation.as_ref().map(|i| i.logs.clone())
                ))
                .collect::<Vec<_>>()
        );
        let report = host
            .pump_queue(
                "FailoverStage",
                Pump::until_completed(1, 20, Duration::from_secs(2)),
            )
            .await
            .expect("pump FailoverStage");
        deliveries.extend(report.deliveries);
    }
}

async fn pump_to_end(
    host: &HostEmulator,
    blobs: &dyn BlobStore,
    run_id: &str,
    within: Duration,
) -> (RunRecord, Vec<Delivery>) {
    pump_until(host, blobs, run_id, within, |r| r.status.is_terminal()).await
}

/// Invitations per (share, lower-cased target) on `account`.
async fn invitations(arm: &ArmClient, account: &AccountId) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for share in arm.list_shares(account).await.expect("list shares") {
        let name = share.meta.name.clone().unwrap_or_default();
        let id = account.share(&name).expect("share id");
        for inv in arm.list_invitations(&id).await.expect("list invitations") {
            let t = inv
                .properties
                .target_email
                .clone()
                .or_else(|| inv.properties.target_object_id.clone())
                .unwrap_or_default()
                .to_ascii_lowercase();
            *out.entry((name.to_ascii_lowercase(), t)).or_default() += 1;
        }
    }
    out
}

fn op_calls(sim: &SimHandle, op: &str) -> u64 {
    sim.stats().operations.get(op).map_or(0, |o| o.calls)
}

/// Every consumer of the run's roster has exactly one invitation on its share of the
/// secondary, and no (share, target) has two.
async fn assert_roster_invited_once(w: &Sim, run: &RunRecord) {
    assert!(!run.roster.is_empty(), "the run knows its consumers");
    let invs = invitations(&w.arm, &w.cfg.pairs[0].secondary).await;
    for ((share, target), n) in &invs {
        assert_eq!(*n, 1, "{target} is invited {n} times on share {share}");
    }
    for e in &run.roster {
        let key = (e.share.to_ascii_lowercase(), e.target.to_ascii_lowercase());
        assert_eq!(
            invs.get(&key).copied(),
            Some(1),
            "consumer {} of share {} has one invitation on the secondary: {invs:?}",
            e.target,
            e.share
        );
    }
}

fn alert_body(w: &Sim) -> Vec<u8> {
    resource_health_alert(
        w.cfg.pairs[0].primary.as_str(),
        &w.estate.subscription_id,
        OffsetDateTime::now_utc(),
    )
    .expect("the re-targeted Resource Health alert")
}

const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

/// POSTs an alert through the host; returns (status, answer).
async fn post_alert(host: &HostEmulator, body: &[u8]) -> (u16, Value) {
    let res = host
        .request("POST", "/api/alerts", JSON, body)
        .await
        .expect("POST api/alerts");
    (res.status, res.json())
}

/// The run id of a 202 answer that started or joined a run.
fn run_id_of(status: u16, answer: &Value) -> String {
    assert_eq!(status, 202, "{answer}");
    answer["pairs"][0]["runId"]
        .as_str()
        .unwrap_or_else(|| panic!("no run id: {answer}"))
        .to_owned()
}

async fn messages_on(az: &TestAzurite, queue: &str) -> Vec<Value> {
    let q = az.queue_client(MessageEncoding::None);
    let got = q
        .receive(queue, 32, Duration::from_secs(60))
        .await
        .unwrap_or_default();
    got.iter()
        .map(|m| serde_json::from_str(&m.text).unwrap_or(Value::Null))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// issue 15: a forged body with the function key but without the secure-webhook identity

#[tokio::test]
async fn a_forged_alert_with_the_function_key_but_no_identity_starts_nothing() {
    let Some(az) = azurite("a_forged_alert_with_the_function_key_but_no_identity_starts_nothing")
    else {
        return;
    };
    let w = world(&az, |t| t).await;
    // The host enforces the function key; the caller has it, but sends no bearer token.
    let host = HostEmulator::for_repo(&w._app.base_url, &az.settings)
        .function_key("the-alertwebhook-key")
        .alert_token(false)
        .queue_alias(store::STAGE_QUEUE, &w.stages)
        .build()
        .expect("host emulator");
    let body = alert_body(&w);
    let r = host
        .request("POST", "/api/alerts?code=the-alertwebhook-key", JSON, &body)
        .await
        .expect("POST api/alerts");
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["code"], "missing_token", "{}", r.body);
    let runs = w.blobs.list("runs/").await.expect("list runs");
    assert!(runs.is_empty(), "a run was written: {runs:?}");
    let queued = host
        .queue()
        .receive(&w.stages, 32, Duration::from_secs(1))
        .await
        .expect("receive");
    assert!(queued.is_empty(), "a stage was enqueued");
    // The same body from the test issuer (the default) is accepted.
    let (status, answer) = post_alert(&w.host, &body).await;
    assert_eq!(status, 202, "{answer}");
}

// ---------------------------------------------------------------------------------------------
// (a) alert → exactly one completed run

#[tokio::test]
async fn an_alert_through_the_host_becomes_exactly_one_completed_run() {
    let Some(az) = azurite("an_alert_through_the_host_becomes_exactly_one_completed_run") else {
        return;
    };
    let w = world(&az, |t| t).await;
    assert_eq!(w.host.trigger_queue("FailoverStage").unwrap(), w.stages);
    let pair = w.cfg.pairs[0].name.clone();
    let body = alert_body(&w);
    // Warm the app's signing-key cache (issue 15) as any earlier alert would: a token for
    // another audience makes the app fetch the JWKS once and is refused (401, starts nothing).
    let mut other = support::alert_token::valid_claims();
    other["aud"] = serde_json::json!("api://another-app");
    let warm = format!(
        "Bearer {}",
        support::alert_token::sign(
            &other,
            support::alert_token::Key::Trusted,
            support::alert_token::KID
        )
    );
    let mut headers = JSON.to_vec();
    headers.push(("Authorization", warm.as_str()));
    let r = w
        .host
        .request("POST", "/api/alerts", &headers, &body)
        .await
        .expect("warm-up");
    assert_eq!(r.status, 401, "{}", r.body);
    let t0 = Instant::now();
    let (status, answer) = post_alert(&w.host, &body).await;
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "answered within 1 s: {:?}",
        t0.elapsed()
    );
    let run_id = run_id_of(status, &answer);
    assert_eq!(answer["decision"], "accepted", "{answer}");
    assert_eq!(answer["pairs"][0]["action"], "started", "{answer}");
    assert_eq!(answer["pairs"][0]["pair"], pair.as_str());

    let (run, deliveries) =
        pump_to_end(&w.host, w.blobs.as_ref(), &run_id, Duration::from_secs(120)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.trigger.kind, "alert");
    assert!(run.rto_secs.is_some());
    // The primary answers, so every stage ran, final-sync included.
    for s in &run.stages {
        assert_eq!(s.status, StageStatus::Succeeded, "{:?}: {s:#?}", s.stage);
    }
    assert_eq!(
        run.stages.iter().map(|s| s.stage).collect::<Vec<_>>(),
        [
            Stage::Preflight,
            Stage::FinalSync,
            Stage::InviteConsumers,
            Stage::EnableSchedules,
            Stage::Notify,
            Stage::Complete
        ]
    );
    // One delivery per stage, each acknowledged.
    let delivered: Vec<String> = deliveries.iter().map(|d| stage_of(&d.text)).collect();
    assert_eq!(
        delivered,
        run.stages
            .iter()
            .map(|s| s.stage.as_str().to_owned())
            .collect::<Vec<_>>()
    );
    assert!(
        deliveries
            .iter()
            .all(|d| d.disposition == Disposition::Completed)
    );
    assert_roster_invited_once(&w, &run).await;
    let invited = run
        .stage(Stage::InviteConsumers)
        .expect("invite stage")
        .counts["invited"];
    assert!(invited > 0, "the at-failover consumer was invited");

    // Exactly one run record, lock released.
    assert_eq!(w.blobs.list("runs/").await.expect("list runs").len(), 1);
    assert!(
        w.blobs
            .get(&lock_path(&pair))
            .await
            .expect("read lock")
            .is_none()
    );
    // The run summary went to the notifications queue.
    let notes = messages_on(&az, &w.notifications).await;
    assert!(
        notes
            .iter()
            .any(|n| n["type"] == "failover.run" && n["runId"] == run_id.as_str()),
        "{notes:?}"
    );

    // The status endpoint shows the same record.
    let res = w
        .host
        .request("GET", &format!("/api/failover/{run_id}"), &[], b"")
        .await
        .expect("GET status");
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["status"], "succeeded");
    assert_eq!(res.json()["runId"], run_id.as_str());

    // The action group retries the same alert: answered with the same run, nothing new.
    let creates = op_calls(&w.sim, "Invitations_Create");
    let (status, again) = post_alert(&w.host, &body).await;
    assert_eq!(run_id_of(status, &again), run_id);
    assert_eq!(again["pairs"][0]["action"], "duplicate", "{again}");
    let report = w
        .host
        .pump_queue(
            "FailoverStage",
            Pump::until_idle(Duration::from_secs(1), 10, Duration::from_secs(10)),
        )
        .await
        .expect("pump");
    assert_eq!(report.invocations(), 0, "no stage message for a duplicate");
    assert_eq!(w.blobs.list("runs/").await.expect("list runs").len(), 1);
    assert_eq!(op_calls(&w.sim, "Invitations_Create"), creates);
}

// ---------------------------------------------------------------------------------------------
// (b) 100 concurrent identical alerts → 1 run

#[tokio::test]
async fn a_hundred_concurrent_identical_alerts_through_the_host_start_one_run() {
    let Some(az) = azurite("a_hundred_concurrent_identical_alerts_through_the_host_start_one_run")
    else {
        return;
    };
    let w = world(&az, |t| t).await;
    let body = alert_body(&w);
    let answers = futures::future::join_all((0..100).map(|_| post_alert(&w.host, &body))).await;
    let mut ids = std::collections::BTreeSet::new();
    let mut actions: BTreeMap<String, usize> = BTreeMap::new();
    for (status, answer) in &answers {
        ids.insert(run_id_of(*status, answer));
        *actions
            .entry(
                answer["pairs"][0]["action"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
            )
            .or_default() += 1;
    }
    assert_eq!(ids.len(), 1, "one run id for every answer: {ids:?}");
    assert_eq!(actions.get("started"), Some(&1), "{actions:?}");
    assert_eq!(actions.values().sum::<usize>(), 100);
    assert_eq!(w.blobs.list("runs/").await.expect("list runs").len(), 1);
    let run_id = ids.into_iter().next().expect("a run id");

    let (run, deliveries) =
        pump_to_end(&w.host, w.blobs.as_ref(), &run_id, Duration::from_secs(120)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let preflights = deliveries
        .iter()
        .filter(|d| stage_of(&d.text) == "preflight")
        .count();
    assert_eq!(preflights, 1, "one preflight message was enqueued");
    assert_roster_invited_once(&w, &run).await;
    assert_eq!(w.blobs.list("runs/").await.expect("list runs").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// (c) approval and cancel

#[tokio::test]
async fn under_the_approve_policy_a_run_waits_until_approved_through_the_api() {
    let Some(az) = azurite("under_the_approve_policy_a_run_waits_until_approved_through_the_api")
    else {
        return;
    };
    let w = world(&az, approve_policy).await;
    let creates = op_calls(&w.sim, "Invitations_Create");
    let (status, answer) = post_alert(&w.host, &alert_body(&w)).await;
    let run_id = run_id_of(status, &answer);

    let (run, _) = pump_until(
        &w.host,
        w.blobs.as_ref(),
        &run_id,
        Duration::from_secs(60),
        |r| r.status == RunStatus::AwaitingApproval,
    )
    .await;
    assert_eq!(run.current_stage, Some(Stage::AwaitApproval));
    assert_eq!(run.approval.state, "pending");
    assert_eq!(run.done_stages(), [Stage::Preflight]);
    // While it waits nothing is written to the accounts.
    let report = w
        .host
        .pump_queue(
            "FailoverStage",
            Pump::until_idle(Duration::from_secs(2), 10, Duration::from_secs(10)),
        )
        .await
        .expect("pump");
    assert_eq!(report.invocations(), 0, "the waiting message is delayed");
    assert_eq!(op_calls(&w.sim, "Invitations_Create"), creates);
    assert_eq!(
        load_run(w.blobs.as_ref(), &run_id).await.status,
        RunStatus::AwaitingApproval
    );

    let res = w
        .host
        .request(
            "POST",
            &format!("/api/failover/{run_id}/approve"),
            &[],
            br#"{"reason":"bridge call agreed"}"#,
        )
        .await
        .expect("POST approve");
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["approval"]["state"], "approved", "{}", res.body);
    // The audit trail records why (the body's reason) on the stored approval.
    assert_eq!(
        load_run(w.blobs.as_ref(), &run_id)
            .await
            .approval
            .reason
            .as_deref(),
        Some("bridge call agreed")
    );

    let (run, _) = pump_to_end(&w.host, w.blobs.as_ref(), &run_id, Duration::from_secs(120)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.approval.by.as_deref(), Some("anonymous"));
    assert_eq!(
        run.stage(Stage::AwaitApproval).map(|s| s.status),
        Some(StageStatus::Succeeded)
    );
    assert_roster_invited_once(&w, &run).await;

    // Approving an ended run is a conflict.
    let res = w
        .host
        .request("POST", &format!("/api/failover/{run_id}/approve"), &[], b"")
        .await
        .expect("POST approve again");
    assert_eq!(res.status, 409, "{}", res.body);
}

#[tokio::test]
async fn cancel_through_the_api_stops_a_waiting_run_and_lists_what_was_done() {
    let Some(az) = azurite("cancel_through_the_api_stops_a_waiting_run_and_lists_what_was_done")
    else {
        return;
    };
    let w = world(&az, approve_policy).await;
    let pair = w.cfg.pairs[0].name.clone();
    let creates = op_calls(&w.sim, "Invitations_Create");
    let (status, answer) = post_alert(&w.host, &alert_body(&w)).await;
    let run_id = run_id_of(status, &answer);
    pump_until(
        &w.host,
        w.blobs.as_ref(),
        &run_id,
        Duration::from_secs(60),
        |r| r.status == RunStatus::AwaitingApproval,
    )
    .await;

    let res = w
        .host
        .request(
            "POST",
            &format!("/api/failover/{run_id}/cancel"),
            &[],
            br#"{"reason":"false alarm"}"#,
        )
        .await
        .expect("POST cancel");
    assert_eq!(res.status, 200, "{}", res.body);
    let answer = res.json();
    assert_eq!(answer["status"], "cancelled", "{answer}");
    assert_eq!(answer["cancellation"]["reason"], "false alarm", "{answer}");
    assert_eq!(answer["cancellation"]["by"], "anonymous", "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cancelled by anonymous before await-approval"),
        "{error}"
    );
    // What was done: preflight succeeded; everything after it cancelled.
    let stages = answer["stages"].as_array().expect("stages");
    let done: Vec<&str> = stages
        .iter()
        .filter(|s| s["status"] == "succeeded" || s["status"] == "skipped")
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert_eq!(done, ["preflight"], "{answer}");
    assert!(
        stages
            .iter()
            .filter(|s| s["stage"] != "preflight")
            .all(|s| s["status"] == "cancelled"),
        "{answer}"
    );
    assert!(
        w.blobs
            .get(&lock_path(&pair))
            .await
            .expect("read lock")
            .is_none(),
        "the lock is released at once"
    );

    // A stage message that arrives now (the approval wait, or a stray copy) is dropped.
    w.host
        .enqueue(
            "FailoverStage",
            &json!({"runId": run_id, "stage": "await-approval", "attempt": 1}).to_string(),
            None,
        )
        .await
        .expect("enqueue");
    let report = w
        .host
        .pump_queue(
            "FailoverStage",
            Pump::until_completed(1, 5, Duration::from_secs(20)),
        )
        .await
        .expect("pump");
    assert_eq!(report.count(Disposition::Completed), 1);
    let run = load_run(w.blobs.as_ref(), &run_id).await;
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.done_stages(), [Stage::Preflight]);
    assert_eq!(op_calls(&w.sim, "Invitations_Create"), creates);

    // Cancelling (or approving) an ended run is a conflict; an unknown run a 404.
    for action in ["cancel", "approve"] {
        let res = w
            .host
            .request(
                "POST",
                &format!("/api/failover/{run_id}/{action}"),
                &[],
                b"",
            )
            .await
            .expect("POST");
        assert_eq!(res.status, 409, "{action}: {}", res.body);
    }
    let res = w
        .host
        .request("GET", "/api/failover/no-such-run", &[], b"")
        .await
        .expect("GET");
    assert_eq!(res.status, 404, "{}", res.body);
}

// ---------------------------------------------------------------------------------------------
// (d) a stage message delivered twice

#[tokio::test]
async fn a_stage_message_delivered_twice_sends_no_second_invitation() {
    let Some(az) = azurite("a_stage_message_delivered_twice_sends_no_second_invitation") else {
        return;
    };
    let w = world(&az, |t| t).await;
    let creates_before = op_calls(&w.sim, "Invitations_Create");
    let (status, answer) = post_alert(&w.host, &alert_body(&w)).await;
    let run_id = run_id_of(status, &answer);

    // Up to the end of final-sync: the invite-consumers message is then on the queue.
    let (run, _) = pump_until(
        &w.host,
        w.blobs.as_ref(),
        &run_id,
        Duration::from_secs(60),
        |r| r.current_stage == Some(Stage::InviteConsumers),
    )
    .await;
    assert_eq!(
        run.stage(Stage::InviteConsumers).map(|s| s.attempts),
        Some(0)
    );
    // A second copy of that message (at-least-once delivery): both arrive in one batch.
    let copy = json!({"runId": run_id, "stage": "invite-consumers", "attempt": 0}).to_string();
    w.host
        .enqueue("FailoverStage", &copy, None)
        .await
        .expect("enqueue the copy");

    let (run, deliveries) =
        pump_to_end(&w.host, w.blobs.as_ref(), &run_id, Duration::from_secs(120)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let invite_deliveries = deliveries
        .iter()
        .filter(|d| stage_of(&d.text) == "invite-consumers")
        .count();
    assert!(invite_deliveries >= 2, "both copies were delivered");
    // The copy that came second either found the claim (and re-enqueued itself with a delay)
    // or found the stage passed (and was dropped). Let any delayed copy arrive as well.
    let report = w
        .host
        .pump_queue(
            "FailoverStage",
            Pump::until_idle(Duration::from_secs(17), 20, Duration::from_secs(60)),
        )
        .await
        .expect("pump leftovers");
    assert!(
        report
            .deliveries
            .iter()
            .all(|d| d.disposition == Disposition::Completed),
        "{:?}",
        report.deliveries
    );
    let run = load_run(w.blobs.as_ref(), &run_id).await;
    let invite = run.stage(Stage::InviteConsumers).expect("invite stage");
    assert_eq!(invite.attempts, 1, "the stage body ran once: {invite:#?}");
    let invited = invite.counts["invited"];
    assert!(invited > 0, "{invite:#?}");
    assert_eq!(
        op_calls(&w.sim, "Invitations_Create") - creates_before,
        invited,
        "one PUT per invitation"
    );
    assert_roster_invited_once(&w, &run).await;
}

// ---------------------------------------------------------------------------------------------
// (e) primary region down

#[tokio::test]
async fn with_the_primary_region_down_final_sync_is_skipped_and_the_rest_completes() {
    let Some(az) =
        azurite("with_the_primary_region_down_final_sync_is_skipped_and_the_rest_completes")
    else {
        return;
    };
    let w = world(&az, |t| t).await;
    let pair = w.cfg.pairs[0].clone();
    // The replicate timer records whom to invite while the primary still answers.
    let inv = w
        .host
        .fire_timer("ReplicateConfig")
        .await
        .expect("fire ReplicateConfig");
    assert!(inv.succeeded, "{:?}", inv.failure);
    assert!(
        inv.logs
            .iter()
            .any(|l| l.starts_with(&format!("pair {}: roster of", pair.name))),
        "{:?}",
        inv.logs
    );
    let (roster, _) = store::get_json::<Roster>(w.blobs.as_ref(), &roster_path(&pair.name))
        .await
        .expect("read roster")
        .expect("the replicate timer stored the roster");
    assert_eq!(
        roster.entries.len(),
        w.estate.shares.len() * w.estate.consumers.len(),
        "every consumer of every share: {roster:#?}"
    );

    // Every request from here on must still be in the request log when we count writes.
    let outage_from = w.sim.requests().last().map_or(0, |r| r.seq) + 1;
    w.sim.region_down(&pair.primary_region);
    let (status, answer) = post_alert(&w.host, &alert_body(&w)).await;
    let run_id = run_id_of(status, &answer);
    let (run, _) = pump_to_end(&w.host, w.blobs.as_ref(), &run_id, Duration::from_secs(180)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.primary_reachable, Some(false));
    let fs = run.stage(Stage::FinalSync).expect("final-sync");
    assert_eq!(fs.status, StageStatus::Skipped, "{fs:#?}");
    assert!(
        run.findings
            .iter()
            .any(|f| f.code == "final-sync-skipped" && f.stage == Some(Stage::FinalSync)),
        "{:#?}",
        run.findings
    );
    assert!(
        run.findings.iter().any(|f| f.code == "roster-from-store"),
        "{:#?}",
        run.findings
    );
    for s in [
        Stage::Preflight,
        Stage::InviteConsumers,
        Stage::EnableSchedules,
        Stage::Notify,
        Stage::Complete,
    ] {
        assert_eq!(
            run.stage(s).map(|r| r.status),
            Some(StageStatus::Succeeded),
            "{s}"
        );
    }
    let invite = run.stage(Stage::InviteConsumers).expect("invite");
    assert_eq!(
        invite.counts["invited"] + invite.counts["alreadyCovered"],
        roster.entries.len() as u64
    );
    assert!(invite.counts["invited"] > 0);
    assert_roster_invited_once(&w, &run).await;
    // The primary was asked and was down; nothing was ever written to it. Every request that
    // would change the primary counts, whatever its outcome (while the region is down each one
    // is answered `region_down`, so an outcome filter would hide them): anything but GET and
    // the read-only POST `list*` actions.
    assert!(
        w.sim.stats().region_down > 0,
        "the primary was asked and was down"
    );
    let primary = w.cfg.pairs[0].primary.as_str().to_ascii_lowercase();
    let log = w.sim.requests();
    assert!(
        log.first().is_some_and(|r| r.seq <= outage_from),
        "the simulator's request log dropped requests made during the outage; raise log_capacity"
    );
    let to_primary: Vec<_> = log
        .iter()
        .filter(|r| r.path.to_ascii_lowercase().starts_with(&primary))
        .collect();
    assert!(
        to_primary
            .iter()
            .any(|r| r.seq >= outage_from && r.outcome == "region_down"),
        "the run asked the primary while it was down: {to_primary:#?}"
    );
    let writes: Vec<String> = to_primary
        .iter()
        .filter(|r| !is_read(&r.method, &r.path))
        .map(|r| format!("{} {} ({})", r.method, r.path, r.outcome))
        .collect();
    assert!(writes.is_empty(), "writes to the primary: {writes:?}");
}

/// A request that cannot change anything: GET, or a POST to a `list…` action
/// (`listSynchronizations`, `listSynchronizationDetails`, …).
fn is_read(method: &str, path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or_default();
    method.eq_ignore_ascii_case("GET")
        || (method.eq_ignore_ascii_case("POST") && last.to_ascii_lowercase().starts_with("list"))
}

// ---------------------------------------------------------------------------------------------
// (f) permanent stage failure → poison

#[tokio::test]
async fn a_stage_that_keeps_failing_ends_in_the_poison_queue_and_the_run_failed() {
    let Some(az) =
        azurite("a_stage_that_keeps_failing_ends_in_the_poison_queue_and_the_run_failed")
    else {
        return;
    };
    // Short ARM deadline so each failing attempt ends quickly.
    let w = world(&az, |t| {
        t.replace("deadline_secs = 60", "deadline_secs = 3")
    })
    .await;
    let pair = w.cfg.pairs[0].clone();
    let res = w
        .host
        .request(
            "POST",
            "/api/failover",
            JSON,
            json!({"pair": pair.name, "mode": "failover", "reason": "poison test"})
                .to_string()
                .as_bytes(),
        )
        .await
        .expect("POST api/failover");
    assert_eq!(res.status, 202, "{}", res.body);
    let run_id = res.json()["runId"].as_str().expect("runId").to_owned();
    assert!(
        res.json()["statusUrl"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/api/failover/{run_id}"))),
        "{}",
        res.body
    );
    // A second start while it is active: 409 with the active run.
    let again = w
        .host
        .request(
            "POST",
            "/api/failover",
            JSON,
            json!({"pair": pair.name, "mode": "failover", "reason": "again"})
                .to_string()
                .as_bytes(),
        )
        .await
        .expect("POST api/failover");
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.json()["activeRunId"], run_id.as_str());

    // Up to invite-consumers; then the secondary region goes down for good.
    pump_until(
        &w.host,
        w.blobs.as_ref(),
        &run_id,
        Duration::from_secs(60),
        |r| r.current_stage == Some(Stage::InviteConsumers),
    )
    .await;
    w.sim.region_down(&pair.secondary_region);
    let max = w.host.host_settings().max_dequeue_count;
    let report = w
        .host
        .pump_queue(
            "FailoverStage",
            Pump::until(
                |r| r.count(Disposition::Poisoned) >= 1,
                50,
                Duration::from_secs(120),
            ),
        )
        .await
        .expect("pump to poison");
    assert!(!report.timed_out, "{:?}", report.deliveries);
    let tries: Vec<(u32, Disposition, Option<u16>)> = report
        .deliveries
        .iter()
        .map(|d| {
            (
                d.dequeue_count,
                d.disposition.clone(),
                d.invocation.as_ref().and_then(|i| i.handler_status),
            )
        })
        .collect();
    assert_eq!(tries.len() as u32, max, "{tries:?}");
    for (i, (count, disposition, status)) in tries.iter().enumerate() {
        assert_eq!(*count, i as u32 + 1);
        assert_eq!(
            *status,
            Some(500),
            "transient failure answers 500: {tries:?}"
        );
        let expected = if *count == max {
            Disposition::Poisoned
        } else {
            Disposition::Retrying
        };
        assert_eq!(*disposition, expected, "{tries:?}");
    }
    assert!(
        report
            .deliveries
            .iter()
            .all(|d| stage_of(&d.text) == "invite-consumers")
    );
    // While the message retries, the run is still running.
    assert_eq!(
        load_run(w.blobs.as_ref(), &run_id).await.status,
        RunStatus::Running
    );

    // The emulator moved the message to <queue>-poison; FailoverPoison marks the run failed.
    let poisoned = w
        .host
        .pump_queue(
            "FailoverPoison",
            Pump::until_completed(1, 3, Duration::from_secs(30)),
        )
        .await
        .expect("pump the poison queue");
    assert_eq!(poisoned.count(Disposition::Completed), 1, "{poisoned:?}");
    assert_eq!(w.host.trigger_queue("FailoverPoison").unwrap(), w.poison);
    let run = load_run(w.blobs.as_ref(), &run_id).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    let error = run.error.clone().unwrap_or_default();
    assert!(
        error.contains("invite-consumers") && error.contains("exhausted its retries"),
        "{error}"
    );
    let invite = run.stage(Stage::InviteConsumers).expect("invite");
    assert_eq!(invite.status, StageStatus::Failed);
    assert!(
        w.blobs
            .get(&lock_path(&pair.name))
            .await
            .expect("read lock")
            .is_none(),
        "lock released"
    );
    let notes = messages_on(&az, &w.notifications).await;
    assert!(
        notes
            .iter()
            .any(|n| n["runId"] == run_id.as_str() && n["status"] == "failed"),
        "a failure notification: {notes:?}"
    );
    // The stage queue is empty (nothing keeps retrying).
    let left = w
        .host
        .pump_queue(
            "FailoverStage",
            Pump::until_idle(Duration::from_secs(2), 5, Duration::from_secs(10)),
        )
        .await
        .expect("pump");
    assert_eq!(left.invocations(), 0);
}

// ---------------------------------------------------------------------------------------------
// (g) SIGKILL mid-run

/// A `datashare-dr serve` child process; killed (SIGKILL) on drop.
struct Handler {
    child: Child,
}

impl Handler {
    fn spawn(port: u16, dr_path: &PathBuf, storage: &str, log: &PathBuf) -> Handler {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("handler log file");
        let err = out.try_clone().expect("log file handle");
        let child = Command::new(env!("CARGO_BIN_EXE_datashare-dr"))
            .arg("serve")
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("DR_CONFIG_PATH", dr_path)
            .env("AzureWebJobsStorage", storage)
            .env_remove("ARM_ENDPOINT")
            .env_remove("ARM_AUTH")
            .env_remove("NOTIFY_WEBHOOK_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start datashare-dr serve");
        Handler { child }
    }

    /// Waits until `GET /` answers.
    async fn ready(&mut self, port: u16) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/")).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("serve exited early: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "serve did not answer GET / within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL (std's `Child::kill` on Unix) and reap.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test]
async fn a_handler_killed_mid_stage_and_restarted_completes_the_run_without_duplicates() {
    let Some(az) =
        azurite("a_handler_killed_mid_stage_and_restarted_completes_the_run_without_duplicates")
    else {
        return;
    };
    let _names = REAL_NAMES.lock().await;
    // A unique pair name: the child uses the shared `datashare-dr` container.
    let pair_name = unique_name("kill");
    let w = replicated_sim(|t| t).await;
    let toml = w.toml.replace(
        &format!("name = \"{}\"", w.estate.pair_name),
        &format!("name = \"{pair_name}\""),
    );
    let cfg = DrConfig::from_toml_str(&toml, "kill.toml").expect("renamed config");
    assert_eq!(cfg.pairs[0].name, pair_name);
    let dir = tempfile::tempdir().expect("tempdir");
    let dr_path = dir.path().join("dr.toml");
    std::fs::write(&dr_path, &toml).expect("write the DR config");
    let log = dir.path().join("serve.log");
    let port = free_port();
    let mut handler = Handler::spawn(port, &dr_path, &az.connection_string, &log);
    handler.ready(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let host = HostEmulator::for_repo(&base, &az.settings)
        .setting("REPLICATE_SCHEDULE", "0 */15 * * * *")
        .setting("READINESS_SCHEDULE", "0 */15 * * * *")
        .visibility_timeout(Duration::from_secs(3))
        .function_timeout(Duration::from_secs(120))
        .build()
        .expect("host emulator");
    let blobs = AzureBlobStore::new(&az.settings, store::CONTAINER).expect("blob store");

    // Stages take a while: every ARM call costs 150 ms.
    w.sim.set_faults(&FaultSettings {
        latency_ms: Some(150),
        ..FaultSettings::default()
    });
    let creates_before = op_calls(&w.sim, "Invitations_Create");
    let secondary_before = invitations(&w.arm, &cfg.pairs[0].secondary).await;
    let body = resource_health_alert(
        cfg.pairs[0].primary.as_str(),
        &w.estate.subscription_id,
        OffsetDateTime::now_utc(),
    )
    .expect("alert");
    let (status, answer) = post_alert(&host, &body).await;
    let run_id = run_id_of(status, &answer);
    assert_eq!(answer["pairs"][0]["pair"], pair_name.as_str());

    // Pump in the background; kill the handler once invite-consumers has sent its first PUT.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pump = {
        let host = host.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            host.pump_queue(
                "FailoverStage",
                Pump::until(
                    move |_| stop.load(std::sync::atomic::Ordering::SeqCst),
                    100,
                    Duration::from_secs(180),
                ),
            )
            .await
        })
    };
    let started = Instant::now();
    loop {
        if op_calls(&w.sim, "Invitations_Create") > creates_before {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "invite-consumers never started: {:#?}",
            load_run(&blobs, &run_id).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handler.kill9();
    let at_kill = load_run(&blobs, &run_id).await;
    let invite = at_kill.stage(Stage::InviteConsumers).expect("invite stage");
    assert_eq!(
        invite.status,
        StageStatus::Running,
        "killed in the middle of invite-consumers: {at_kill:#?}"
    );
    assert!(invite.claim.is_some());
    let created_at_kill = op_calls(&w.sim, "Invitations_Create") - creates_before;

    // Restart on the same port; the host keeps delivering.
    let mut handler = Handler::spawn(port, &dr_path, &az.connection_string, &log);
    handler.ready(port).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let first = pump.await.expect("pump task").expect("pump");
    // The contract-named queue is shared (chaos, storm, failover_cli): count this run's only.
    let mine = |d: &&Delivery| d.text.contains(&run_id);
    let failed_by_kill = first
        .deliveries
        .iter()
        .filter(mine)
        .filter(|d| d.disposition == Disposition::Retrying)
        .count();
    assert!(
        failed_by_kill >= 1,
        "the killed invocation failed and will be redelivered: {:?}",
        first.deliveries
    );
    assert!(
        first
            .deliveries
            .iter()
            .filter(mine)
            .all(|d| d.disposition != Disposition::Poisoned)
    );

    let (run, deliveries) = pump_to_end(&host, &blobs, &run_id, Duration::from_secs(300)).await;
    let serve_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        run.status,
        RunStatus::Succeeded,
        "{run:#?}\nserve log tail: {}",
        serve_log
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        deliveries
            .iter()
            .filter(mine)
            .all(|d| d.disposition != Disposition::Poisoned),
        "nothing of this run poisoned"
    );
    // Nothing lost: every stage done, every roster consumer invited on the secondary.
    for s in &run.stages {
        assert_eq!(s.status, StageStatus::Succeeded, "{:?}", s.stage);
    }
    let invite = run.stage(Stage::InviteConsumers).expect("invite stage");
    assert!(invite.attempts >= 2, "the stage ran again after the kill");
    assert_eq!(
        invite.counts["invited"] + invite.counts["alreadyCovered"],
        run.roster.len() as u64,
        "{invite:#?}"
    );
    let renamed = Sim { cfg, ..w };
    assert_roster_invited_once(&renamed, &run).await;
    // Nothing duplicated: one PUT per invitation the run had to create, plus at most the one
    // in flight when the process died (a PUT of the same name is an upsert, not a second
    // invitation — the listing above shows one per consumer and share).
    let needed = run
        .roster
        .iter()
        .filter(|e| {
            !secondary_before
                .contains_key(&(e.share.to_ascii_lowercase(), e.target.to_ascii_lowercase()))
        })
        .count() as u64;
    let creates = op_calls(&renamed.sim, "Invitations_Create") - creates_before;
    assert!(needed > 1, "the failover had invitations to send");
    assert!(
        creates >= needed && creates <= needed + 1,
        "{creates} invitation PUTs for {needed} new invitations"
    );
    assert!(
        created_at_kill < needed,
        "the kill left invitations for after the restart ({created_at_kill} of {needed} sent)"
    );
    assert!(
        blobs
            .get(&lock_path(&pair_name))
            .await
            .expect("read lock")
            .is_none()
    );
    drop(handler);
}

// ---------------------------------------------------------------------------------------------
// the roster the replicate timer records

#[tokio::test]
async fn the_replicate_timer_records_the_roster_and_keeps_it_when_the_primary_account_is_gone() {
    let Some(az) = azurite(
        "the_replicate_timer_records_the_roster_and_keeps_it_when_the_primary_account_is_gone",
    ) else {
        return;
    };
    let w = world(&az, |t| t).await;
    let pair = w.cfg.pairs[0].clone();
    let inv = w
        .host
        .fire_timer("ReplicateConfig")
        .await
        .expect("fire ReplicateConfig");
    assert!(inv.succeeded, "{:?}", inv.failure);
    let (first, _) = store::get_json::<Roster>(w.blobs.as_ref(), &roster_path(&pair.name))
        .await
        .expect("read roster")
        .expect("a roster");
    assert_eq!(
        first.entries.len(),
        w.estate.shares.len() * w.estate.consumers.len()
    );

    // The primary account disappears (404): the next tick must not wipe whom to invite.
    w.arm
        .delete_account(&pair.primary)
        .await
        .expect("delete the primary account");
    let inv = w
        .host
        .fire_timer("ReplicateConfig")
        .await
        .expect("fire ReplicateConfig");
    // The pass reports the pair as not observed, so its roster is left alone.
    assert!(
        inv.logs.iter().any(
            |l| l.starts_with(&format!("pair {}: not observed", pair.name))
                && l.contains("does not exist")
        ),
        "{:?} {:?}",
        inv.failure,
        inv.logs
    );
    assert!(
        !inv.logs.iter().any(|l| l.contains("roster of")),
        "{:?}",
        inv.logs
    );
    let (kept, _) = store::get_json::<Roster>(w.blobs.as_ref(), &roster_path(&pair.name))
        .await
        .expect("read roster")
        .expect("a roster");
    assert_eq!(kept.entries, first.entries);
    assert_eq!(kept.recorded_at, first.recorded_at);
}

// ---------------------------------------------------------------------------------------------
// issue 14: who did it, the watchdog, poisoned duplicates

/// The same app behind a host that enforces function keys, one of them named `ops-runbook`.
fn keyed_host(az: &TestAzurite, w: &World) -> HostEmulator {
    HostEmulator::for_repo(&w._app.base_url, &az.settings)
        .named_function_key("ops-runbook", "not-a-real-key-1")
        .queue_alias(store::STAGE_QUEUE, &w.stages)
        .queue_alias(store::STAGE_POISON_QUEUE, &w.poison)
        .queue_alias(store::NOTIFICATIONS_QUEUE, &w.notifications)
        .visibility_timeout(Duration::from_secs(1))
        .function_timeout(Duration::from_secs(120))
        .build()
        .expect("keyed host emulator")
}

async fn start_through_api(host: &HostEmulator, pair: &str, headers: &[(&str, &str)]) -> String {
    let res = host
        .request(
            "POST",
            "/api/failover",
            headers,
            json!({"pair": pair, "mode": "failover", "reason": "issue 14"})
                .to_string()
                .as_bytes(),
        )
        .await
        .expect("POST api/failover");
    assert_eq!(res.status, 202, "{}", res.body);
    res.json()["runId"].as_str().expect("runId").to_owned()
}

#[tokio::test]
async fn the_audit_trail_names_the_function_key_from_identities_and_ignores_a_forged_header() {
    let Some(az) = azurite(
        "the_audit_trail_names_the_function_key_from_identities_and_ignores_a_forged_header",
    ) else {
        return;
    };
    let w = world(&az, |t| t).await;
    let host = keyed_host(&az, &w);
    let forged: &[(&str, &str)] = &[
        ("Content-Type", "application/json"),
        ("x-functions-key", "not-a-real-key-1"),
        ("x-ms-client-principal-name", "mallory@evil.example"),
    ];
    // Without the key the host refuses the call before the handler sees it.
    let refused = host
        .request("POST", "/api/failover", JSON, b"{}")
        .await
        .expect("POST without key");
    assert_eq!(refused.status, 401);

    let run_id = start_through_api(&host, &w.cfg.pairs[0].name, forged).await;
    let run = load_run(w.blobs.as_ref(), &run_id).await;
    assert_eq!(
        run.trigger.caller.as_deref(),
        Some("key:ops-runbook"),
        "{:#?}",
        run.trigger
    );

    let res = host
        .request(
            "POST",
            &format!("/api/failover/{run_id}/cancel"),
            forged,
            br#"{"reason":"wrong pair"}"#,
        )
        .await
        .expect("POST cancel");
    assert_eq!(res.status, 200, "{}", res.body);
    let run = load_run(w.blobs.as_ref(), &run_id).await;
    let by = run
        .cancellation
        .as_ref()
        .map(|c| c.by.clone())
        .unwrap_or_default();
    assert_eq!(by, "key:ops-runbook", "{:#?}", run.cancellation);
    let text = serde_json::to_string(&run).unwrap_or_default();
    assert!(
        !text.contains("mallory"),
        "a forged header reached the record: {text}"
    );
}

#[tokio::test]
async fn a_run_whose_stage_message_was_deleted_is_resumed_by_the_watchdog() {
    let Some(az) = azurite("a_run_whose_stage_message_was_deleted_is_resumed_by_the_watchdog")
    else {
        return;
    };
    let w = world(&az, |t| t).await;
    let run_id = start_through_api(&w.host, &w.cfg.pairs[0].name, JSON).await;
    pump_until(
        &w.host,
        w.blobs.as_ref(),
        &run_id,
        Duration::from_secs(60),
        |r| r.current_stage == Some(Stage::InviteConsumers),
    )
    .await;
    // The invite-consumers message is lost (deleted by hand, expired, …).
    let q = az.queue_client(MessageEncoding::None);
    let got = q
        .receive(&w.stages, 32, Duration::from_secs(60))
        .await
        .expect("receive");
    assert_eq!(got.len(), 1, "one stage message in flight");
    for m in &got {
        q.delete(&w.stages, &m.id, &m.pop_receipt)
            .await
            .expect("delete the stage message");
    }
    // Nothing happens on its own: the run is stuck.
    let idle = w
        .host
        .pump_queue(
            "FailoverStage",
            Pump::until_idle(Duration::from_secs(2), 5, Duration::from_secs(5)),
        )
        .await
        .expect("pump");
    assert_eq!(idle.invocations(), 0);
    // A fresh run is left alone by the watchdog …
    let inv = w.host.fire_timer("RunWatchdog").await.expect("watchdog");
    assert!(inv.succeeded, "{:?}", inv.failure);
    assert!(
        inv.logs.iter().any(|l| l.contains("resumed []")),
        "{:?}",
        inv.logs
    );
    // … one without progress for longer than its stage can take is resumed.
    datashare_dr::failover::run::update_run(w.blobs.as_ref(), &run_id, |r| {
        r.updated_at -= time::Duration::hours(1);
        Ok(())
    })
    .await
    .expect("age the run");
    let inv = w.host.fire_timer("RunWatchdog").await.expect("watchdog");
    assert!(inv.succeeded, "{:?}", inv.failure);
    assert!(
        inv.logs
            .iter()
            .any(|l| l.contains(&format!("{run_id} invite-consumers"))),
        "{:?}",
        inv.logs
    );
    let (run, _) = pump_to_end(&w.host, w.blobs.as_ref(), &run_id, Duration::from_secs(120)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.watchdog.as_ref().map(|m| m.resumes), Some(1));
    assert_roster_invited_once(&w, &run).await;
    // The finished run's lock is gone; a lock left behind by a finished run is broken.
    let stale = json!({"runId": run_id, "pair": w.cfg.pairs[0].name, "at": "2020-01-01T00:00:00Z"});
    store::put_json(
        w.blobs.as_ref(),
        &lock_path(&w.cfg.pairs[0].name),
        &stale,
        store::Precondition::IfNoneMatchAny,
    )
    .await
    .expect("plant a stale lock");
    let inv = w.host.fire_timer("RunWatchdog").await.expect("watchdog");
    assert!(
        inv.logs
            .iter()
            .any(|l| l.contains(&format!("locks broken [{}]", w.cfg.pairs[0].name))),
        "{:?}",
        inv.logs
    );
    assert!(
        w.blobs
            .get(&lock_path(&w.cfg.pairs[0].name))
            .await
            .expect("get lock")
            .is_none()
    );
}

#[tokio::test]
async fn a_stale_poisoned_duplicate_does_not_fail_a_healthy_run() {
    let Some(az) = azurite("a_stale_poisoned_duplicate_does_not_fail_a_healthy_run") else {
        return;
    };
    let w = world(&az, |t| t).await;
    let run_id = start_through_api(&w.host, &w.cfg.pairs[0].name, JSON).await;
    pump_until(
        &w.host,
        w.blobs.as_ref(),
        &run_id,
        Duration::from_secs(60),
        |r| r.current_stage == Some(Stage::InviteConsumers),
    )
    .await;
    // A duplicate preflight message that kept failing lands in the poison queue.
    let stale = json!({"runId": run_id, "stage": "preflight", "attempt": 0}).to_string();
    w.host
        .enqueue("FailoverPoison", &stale, None)
        .await
        .expect("enqueue poison");
    let report = w
        .host
        .pump_queue(
            "FailoverPoison",
            Pump::until_completed(1, 3, Duration::from_secs(20)),
        )
        .await
        .expect("pump poison");
    assert_eq!(report.invocations(), 1, "{:?}", report.deliveries);
    let run = load_run(w.blobs.as_ref(), &run_id).await;
    assert!(!run.status.is_terminal(), "{run:#?}");
    assert_eq!(run.current_stage, Some(Stage::InviteConsumers));
    let (run, _) = pump_to_end(&w.host, w.blobs.as_ref(), &run_id, Duration::from_secs(120)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
}
