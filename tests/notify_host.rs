//! Run events delivered, and the approval deadline — through the Functions host emulator
//! (tests/support/host_emulator.rs) with Azurite and the ARM simulator (issue 14):
//!
//! - an alert for a pair with `failover = "approve"` delivers `started` and `awaiting-approval`
//!   (approve / cancel URLs without a key, which work once the caller adds its key) to the JSON
//!   webhook and a Teams-shaped Adaptive Card to the Teams channel, through the `Notify`
//!   function; approving completes the run, and `completed` (with the RTO) reaches the webhook
//!   only when the run record already says complete (the receiver reads the record on arrival);
//! - `approval_timeout_minutes` elapsing (0.1 min = 6 s here) → `approval-reminder`, `expired`,
//!   the run `failed` (`approval-expired`), the lock released; with `on_approval_timeout =
//!   "proceed"` the run completes, recorded as approved by timeout;
//! - a failing channel is retried by the queue and ends in `notifications-poison`.
//!
//! The webhook receivers are axum servers on 127.0.0.1 port 0 that stop by themselves (a
//! deadline, and when the test drops them).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datashare_dr::config::dr::DrConfig;
use datashare_dr::config::{
    Config, SecretUrl, StorageSettings as ConfigStorage, parse_connection_string,
};
use datashare_dr::failover::drill::resource_health_alert;
use datashare_dr::failover::run::lock_path;
use datashare_dr::failover::{RunRecord, RunStatus};
use datashare_dr::sim::{self, SimHandle};
use datashare_dr::startup::{AppState, AppStorage};
use datashare_dr::store::{
    self, AzureBlobStore, AzureQueue, BlobStore, MessageEncoding, Queue, ReceivedMessage,
    StoreFuture,
};
use serde_json::Value;
use support::app::{TestApp, spawn_app_with_state};
use support::azurite::{TestAzurite, azurite, unique_name};
use support::host_emulator::{Disposition, HostEmulator, Pump};
use time::OffsetDateTime;

const KEY: &str = "test-function-key";
const PUBLIC_HOST: &str = "dr-app.example.net";

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

/// One POST a receiver got: path, JSON body, and — for a `completed` event — the run's status
/// in the run store at the moment it arrived.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    body: Value,
    run_status_on_arrival: Option<String>,
}

/// A loopback receiver for `/hook` (JSON webhook) and `/teams`; answers `status` to every POST.
/// Stops after `lifetime` or when dropped.
struct Receiver {
    base: String,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start(blobs: Arc<dyn BlobStore>, status: u16, lifetime: Duration) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = got.clone();
        let handler = move |uri: axum::http::Uri, body: String| {
            let sink = sink.clone();
            let blobs = blobs.clone();
            async move {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let mut run_status_on_arrival = None;
                if v["event"] == "completed"
                    && let Some(id) = v["runId"].as_str()
                    && let Ok((run, _)) =
                        datashare_dr::failover::run::require_run(blobs.as_ref(), id).await
                {
                    run_status_on_arrival = Some(run.status.as_str().to_owned());
                }
                sink.lock().expect("lock").push(Received {
                    path: uri.path().to_owned(),
                    body: v,
                    run_status_on_arrival,
                });
                axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK)
            }
        };
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(handler.clone()))
            .route("/teams", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = tokio::time::timeout(lifetime, axum::serve(listener, router)).await;
        });
        Receiver { base, got, task }
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    fn events(&self, path: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| r.body)
            .collect()
    }
}

struct World {
    sim: SimHandle,
    cfg: DrConfig,
    subscription: String,
    blobs: Arc<AzureBlobStore>,
    notifications: String,
    host: HostEmulator,
    receiver: Receiver,
    _app: TestApp,
}

/// Simulator + replicated estate (pair policy from `edit`), the handler on per-test storage
/// with both channels pointing at a loopback receiver answering `status`, behind the host
/// emulator (function keys enforced).
async fn world(az: &TestAzurite, status: u16, edit: impl Fn(String) -> String) -> World {
    let (sim, estate) = support::estate::populated(2, 1, 1, 11).await;
    let toml = support::alert_token::trust(&edit(sim::write_config(&estate, &sim.base_url)));
    let cfg = DrConfig::from_toml_str(&toml, "notify-host.toml").expect("generated config");
    support::estate::bootstrap(&sim, &cfg, &cfg.pairs[0]).await;
    let blobs = az.fresh_container("notify-host").await;
    let stages = unique_name("nt-stages");
    let notifications = unique_name("nt-notes");
    let poison = format!("{stages}-poison");
    let notify_poison = format!("{notifications}-poison");
    let mut names = HashMap::new();
    names.insert(store::STAGE_QUEUE.to_owned(), stages.clone());
    names.insert(store::STAGE_POISON_QUEUE.to_owned(), poison.clone());
    names.insert(store::NOTIFICATIONS_QUEUE.to_owned(), notifications.clone());
    let raw = az.queue_client(MessageEncoding::None);
    for q in [&stages, &poison, &notifications, &notify_poison] {
        raw.ensure_queue(q).await.expect("create a test queue");
    }
    let receiver = Receiver::start(blobs.clone(), status, Duration::from_secs(180)).await;
    let storage = AppStorage {
        blobs: blobs.clone(),
        queue: Arc::new(RenamedQueue { inner: raw, names }),
        kind: "azure",
    };
    let mut config = Config::for_port(0);
    config.storage = Some(ConfigStorage::ConnectionString(
        parse_connection_string(&az.connection_string).expect("Azurite connection string"),
    ));
    let url = |p: &str| {
        Some(SecretUrl::new(
            url::Url::parse(&format!("{}{p}", receiver.base)).expect("url"),
        ))
    };
    config.notify_webhook_url = url("/hook");
    config.notify_teams_webhook_url = url("/teams");
    config.website_hostname = Some(PUBLIC_HOST.into());
    let app =
        spawn_app_with_state(AppState::new(config, Some(cfg.clone())).with_storage(storage)).await;
    let host = HostEmulator::for_repo(&app.base_url, &az.settings)
        .setting("REPLICATE_SCHEDULE", "0 */15 * * * *")
        .setting("READINESS_SCHEDULE", "0 */15 * * * *")
        .queue_alias(store::STAGE_QUEUE, &stages)
        .queue_alias(store::STAGE_POISON_QUEUE, &poison)
        .queue_alias(store::NOTIFICATIONS_QUEUE, &notifications)
        .function_key(KEY)
        .visibility_timeout(Duration::from_secs(1))
        .function_timeout(Duration::from_secs(120))
        .build()
        .expect("host emulator");
    World {
        sim,
        subscription: estate.subscription_id.clone(),
        cfg,
        blobs,
        notifications,
        host,
        receiver,
        _app: app,
    }
}

/// The pair's `failover = "auto"` becomes `approve`, with `extra` pair keys.
fn approve_with(extra: &'static str) -> impl Fn(String) -> String {
    move |t| {
        t.replace(
            "failover = \"auto\"",
            &format!("failover = \"approve\"\n{extra}"),
        )
    }
}

async fn load(blobs: &dyn BlobStore, run_id: &str) -> RunRecord {
    datashare_dr::failover::run::require_run(blobs, run_id)
        .await
        .unwrap_or_else(|e| panic!("run {run_id}: {e}"))
        .0
}

async fn start_by_alert(w: &World) -> String {
    let body = resource_health_alert(
        w.cfg.pairs[0].primary.as_str(),
        &w.subscription,
        OffsetDateTime::now_utc(),
    )
    .expect("alert");
    let res = w
        .host
        .request(
            "POST",
            &format!("/api/alerts?code={KEY}"),
            &[("Content-Type", "application/json")],
            &body,
        )
        .await
        .expect("POST alert");
    assert_eq!(res.status, 202, "{}", res.body);
    res.json()["pairs"][0]["runId"]
        .as_str()
        .expect("runId")
        .to_owned()
}

/// Pumps `FailoverStage` until `done(run)`, at most `within` (bounded rounds).
async fn pump_stages(
    w: &World,
    run_id: &str,
    within: Duration,
    done: impl Fn(&RunRecord) -> bool,
) -> RunRecord {
    let started = Instant::now();
    loop {
        let run = load(w.blobs.as_ref(), run_id).await;
        if done(&run) {
            return run;
        }
        assert!(
            started.elapsed() < within,
            "run {run_id} did not get there within {within:?}: {run:#?}"
        );
        w.host
            .pump_queue(
                "FailoverStage",
                Pump::until_completed(1, 20, Duration::from_secs(2)),
            )
            .await
            .expect("pump FailoverStage");
    }
}

/// Delivers what is on `notifications` through the `Notify` function until the queue is idle.
async fn pump_notify(w: &World) -> support::host_emulator::PumpReport {
    w.host
        .pump_queue(
            "Notify",
            Pump::until_idle(Duration::from_secs(2), 60, Duration::from_secs(60)),
        )
        .await
        .expect("pump Notify")
}

fn of_event<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

#[tokio::test]
async fn an_approve_run_is_heard_on_both_channels_and_completed_arrives_after_complete() {
    let Some(az) =
        azurite("an_approve_run_is_heard_on_both_channels_and_completed_arrives_after_complete")
    else {
        return;
    };
    let w = world(&az, 200, approve_with("")).await;
    let run_id = start_by_alert(&w).await;
    let run = pump_stages(&w, &run_id, Duration::from_secs(90), |r| {
        r.status == RunStatus::AwaitingApproval
            && r.notified.iter().any(|k| k == "awaiting-approval")
    })
    .await;
    assert_eq!(run.approval.route.as_deref(), Some("policy"));
    let report = pump_notify(&w).await;
    assert_eq!(report.count(Disposition::Poisoned), 0, "{report:?}");

    let hook = w.receiver.events("/hook");
    assert_eq!(of_event(&hook, "started").len(), 1, "{hook:#?}");
    let waiting = of_event(&hook, "awaiting-approval");
    assert_eq!(waiting.len(), 1, "{hook:#?}");
    let ev = waiting[0];
    assert_eq!(ev["runId"], run_id.as_str());
    assert_eq!(ev["decision"]["route"], "policy");
    assert!(
        ev["decision"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{ev}"
    );
    assert!(ev["deadline"].is_string(), "{ev}");
    let text = ev.to_string();
    assert!(
        !text.contains(KEY) && !text.contains("code="),
        "no function key in a message: {text}"
    );
    assert_eq!(
        ev["links"]["approveCommand"].as_str().unwrap_or_default(),
        format!("datashare-dr failover approve --config dr-config.toml {run_id}"),
        "{ev}"
    );

    // The Teams channel got Adaptive Cards in the message envelope, one per event.
    let teams = w.receiver.events("/teams");
    assert_eq!(teams.len(), 2, "started + awaiting-approval: {teams:#?}");
    for card in &teams {
        assert_eq!(card["type"], "message");
        assert_eq!(
            card["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["attachments"][0]["content"]["type"], "AdaptiveCard");
        assert_eq!(card["attachments"][0]["content"]["version"], "1.4");
    }
    assert!(
        teams.iter().any(|c| c.to_string().contains("/approve")),
        "{teams:#?}"
    );

    // The approve and cancel URLs name this app's routes; without a key the host refuses them,
    // with the key the approve URL approves.
    let approve =
        url::Url::parse(ev["links"]["approveUrl"].as_str().expect("approveUrl")).expect("url");
    let cancel =
        url::Url::parse(ev["links"]["cancelUrl"].as_str().expect("cancelUrl")).expect("url");
    assert_eq!(approve.host_str(), Some(PUBLIC_HOST));
    assert_eq!(cancel.path(), format!("/api/failover/{run_id}/cancel"));
    let bare = w
        .host
        .request("POST", approve.path(), &[], b"")
        .await
        .expect("POST approve");
    assert_eq!(bare.status, 401, "no key: refused by the host");
    let approved = w
        .host
        .request(
            "POST",
            &format!("{}?code={KEY}", approve.path()),
            &[],
            br#"{"reason":"test"}"#,
        )
        .await
        .expect("POST approve");
    assert_eq!(approved.status, 200, "{}", approved.body);

    let run = pump_stages(&w, &run_id, Duration::from_secs(120), |r| {
        r.status.is_terminal()
    })
    .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let rto = run.rto_secs.expect("an RTO");
    pump_notify(&w).await;
    let got = w.receiver.all();
    let completed: Vec<&Received> = got
        .iter()
        .filter(|r| r.path == "/hook" && r.body["event"] == "completed")
        .collect();
    assert_eq!(completed.len(), 1, "{got:#?}");
    let c = completed[0];
    assert_eq!(
        c.run_status_on_arrival.as_deref(),
        Some("succeeded"),
        "the record said complete first"
    );
    assert_eq!(c.body["status"], "succeeded");
    assert_eq!(c.body["rtoSecs"].as_f64(), Some(rto));
    assert!(c.body["counts"].is_object(), "{}", c.body);
    w.sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_approval_fails_the_run_releases_the_lock_and_says_so() {
    let Some(az) = azurite("an_expired_approval_fails_the_run_releases_the_lock_and_says_so")
    else {
        return;
    };
    let w = world(&az, 200, approve_with("approval_timeout_minutes = 0.1")).await;
    let run_id = start_by_alert(&w).await;
    let run = pump_stages(&w, &run_id, Duration::from_secs(120), |r| {
        r.status.is_terminal()
    })
    .await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.starts_with("approval-expired")),
        "{:?}",
        run.error
    );
    assert!(
        w.blobs
            .get(&lock_path(&run.pair))
            .await
            .expect("read lock")
            .is_none(),
        "the lock is released"
    );
    pump_notify(&w).await;
    let hook = w.receiver.events("/hook");
    let names: Vec<&str> = hook.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "expired").count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| **n == "approval-reminder").count(),
        1,
        "{names:?}"
    );
    assert!(!names.contains(&"completed"), "{names:?}");
    w.sim.shutdown().await;
}

#[tokio::test]
async fn with_proceed_an_elapsed_approval_completes_the_run_approved_by_timeout() {
    let Some(az) =
        azurite("with_proceed_an_elapsed_approval_completes_the_run_approved_by_timeout")
    else {
        return;
    };
    let w = world(
        &az,
        200,
        approve_with("approval_timeout_minutes = 0.1\non_approval_timeout = \"proceed\""),
    )
    .await;
    let run_id = start_by_alert(&w).await;
    let run = pump_stages(&w, &run_id, Duration::from_secs(150), |r| {
        r.status.is_terminal()
    })
    .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert!(run.approval.by_timeout, "{:?}", run.approval);
    assert_eq!(run.approval.by.as_deref(), Some("approval-timeout"));
    assert!(
        run.findings.iter().any(|f| f.code == "approved-by-timeout"),
        "{:?}",
        run.findings
    );
    pump_notify(&w).await;
    let hook = w.receiver.events("/hook");
    assert_eq!(of_event(&hook, "completed").len(), 1, "{hook:#?}");
    assert!(of_event(&hook, "expired").is_empty(), "{hook:#?}");
    w.sim.shutdown().await;
}

#[tokio::test]
async fn a_failing_channel_is_retried_then_poisoned_and_never_blocks_the_run() {
    let Some(az) = azurite("a_failing_channel_is_retried_then_poisoned_and_never_blocks_the_run")
    else {
        return;
    };
    let w = world(&az, 503, approve_with("")).await;
    let run_id = start_by_alert(&w).await;
    pump_stages(&w, &run_id, Duration::from_secs(90), |r| {
        r.status == RunStatus::AwaitingApproval
            && r.notified.iter().any(|k| k == "awaiting-approval")
    })
    .await;
    let report = pump_notify(&w).await;
    // 2 events × 2 channels, each tried maxDequeueCount (5) times, then poisoned.
    assert_eq!(
        report.count(Disposition::Poisoned),
        4,
        "{} deliveries, none poisoned as expected",
        report.invocations()
    );
    let poisoned = w
        .host
        .queue()
        .receive(
            &format!("{}-poison", w.notifications),
            32,
            Duration::from_secs(30),
        )
        .await
        .expect("receive poison");
    assert_eq!(poisoned.len(), 4);
    assert_eq!(w.receiver.all().len(), 20, "five attempts per message");
    w.sim.shutdown().await;
}
