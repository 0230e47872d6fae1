//! `CheckReadiness` and `ReadinessStatus` through the real handler: a timer run stores the report
//! (latest + history) and produces exactly one notification on a status change and none when the
//! status is unchanged; the status function answers JSON, or the page for `Accept: text/html`.
//!
//! Two worlds: the Functions host emulator with Azurite (skipped with a notice when
//! `DSDR_TEST_STORAGE` is unset, failing when `DSDR_REQUIRE_AZURITE=1`), and the handler alone
//! with in-memory storage (always runs), which also covers the webhook and recovery.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use datashare_dr::arm::client::ArmClient;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::config::{Config, SecretUrl, StorageSettings as ConfigStorage};
use datashare_dr::host::InvocationResponse;
use datashare_dr::readiness::arm_reader::arm_client_from_config;
use datashare_dr::readiness::{Report, Status, history};
use datashare_dr::sim::{self, Estate, SimHandle};
use datashare_dr::startup::{AppState, AppStorage};
use datashare_dr::store::{self, AzureBlobStore, Queue};
use serde_json::Value;
use support::app::{TestApp, payload, spawn_app_with_state};
use support::azurite::{azurite, unique_name};
use support::host_emulator::HostEmulator;

struct World {
    sim: SimHandle,
    cfg: DrConfig,
    client: ArmClient,
    #[allow(dead_code)]
    estate: Estate,
}

/// A simulator with a replicated pair named `pair` (unique per test: the app's blob container
/// is shared by every test using the same Azurite).
async fn replicated_world(pair: &str) -> World {
    let (sim, estate) = support::estate::populated(2, 2, 1, 11).await;
    let mut cfg = DrConfig::from_toml_str(&sim::write_config(&estate, &sim.base_url), "sim.toml")
        .expect("generated config loads");
    cfg.pairs[0].name = pair.to_owned();
    let client = arm_client_from_config(&cfg).expect("client");
    repair(&client, &cfg).await;
    sim.fire_triggers();
    World {
        sim,
        cfg,
        client,
        estate,
    }
}

/// One replicate pass (bootstrap, or repair after something was broken).
async fn repair(client: &ArmClient, cfg: &DrConfig) {
    support::estate::replicate_once(client, &cfg.pairs[0]).await;
}

/// Deletes one dataset from the first secondary share: the pair becomes NotReady.
async fn break_pair(w: &World) {
    let pair = &w.cfg.pairs[0];
    let shares = w.client.list_shares(&pair.secondary).await.expect("shares");
    let share = shares[0].meta.name.clone().expect("share name");
    let share_id = pair.secondary.share(&share).expect("share id");
    let ds = w.client.list_datasets(&share_id).await.expect("datasets")[0]
        .meta
        .name
        .clone()
        .expect("dataset name");
    w.client
        .delete_dataset(&share_id.data_set(&ds).expect("dataset id"))
        .await
        .expect("delete dataset");
}

fn notifications_of(inv: &support::host_emulator::Invocation, queue: &str) -> Vec<Value> {
    inv.enqueued
        .iter()
        .filter(|(q, _)| q == queue)
        .map(|(_, text)| serde_json::from_str(text).expect("a notification is JSON"))
        .collect()
}

#[tokio::test]
async fn a_timer_run_through_the_host_stores_reports_and_notifies_once_per_status_change() {
    let Some(az) =
        azurite("a_timer_run_through_the_host_stores_reports_and_notifies_once_per_status_change")
    else {
        return;
    };
    let pair = unique_name("rdy-host");
    let w = replicated_world(&pair).await;

    let mut config = Config::for_port(0);
    config.storage = Some(ConfigStorage::ConnectionString(
        datashare_dr::config::parse_connection_string(&az.connection_string)
            .expect("Azurite connection string"),
    ));
    let app = spawn_app_with_state(AppState::new(config, Some(w.cfg.clone()))).await;
    let notifications = unique_name("notifications");
    let host = HostEmulator::for_repo(&app.base_url, &az.settings)
        .setting("READINESS_SCHEDULE", "0 */15 * * * *")
        .queue_alias("notifications", &notifications)
        .function_timeout(Duration::from_secs(120))
        .build()
        .expect("emulator");

    // Twice unchanged (Ready): reports stored, no notification (a first Ready is no edge).
    for round in 0..2 {
        let inv = host.fire_timer("CheckReadiness").await.expect("fire");
        assert!(inv.succeeded, "round {round}: {:?}", inv.failure);
        assert!(
            notifications_of(&inv, &notifications).is_empty(),
            "round {round}: no notification while the status stays Ready: {:?}",
            inv.enqueued
        );
    }

    // Broken → exactly one notification.
    break_pair(&w).await;
    let inv = host.fire_timer("CheckReadiness").await.expect("fire");
    assert!(inv.succeeded, "{:?}", inv.failure);
    let notes = notifications_of(&inv, &notifications);
    assert_eq!(notes.len(), 1, "{:?}", inv.enqueued);
    assert_eq!(notes[0]["type"], "readiness.status-changed");
    assert_eq!(notes[0]["pair"], pair.as_str());
    assert_eq!(notes[0]["oldStatus"], "Ready");
    assert_eq!(notes[0]["newStatus"], "NotReady");
    assert_eq!(notes[0]["direction"], "worsened");

    // Still broken: nothing more.
    let inv = host.fire_timer("CheckReadiness").await.expect("fire");
    assert!(inv.succeeded, "{:?}", inv.failure);
    assert!(notifications_of(&inv, &notifications).is_empty());

    // The queue itself holds exactly the one message.
    let received = host
        .queue()
        .receive(&notifications, 32, Duration::from_secs(30))
        .await
        .expect("receive notifications");
    assert_eq!(received.len(), 1, "one message on the notifications queue");
    let body: Value = serde_json::from_str(&received[0].text).expect("JSON message");
    assert_eq!(body["newStatus"], "NotReady");

    // Reports: latest = the last run (NotReady), history = one per run.
    let blobs = AzureBlobStore::new(&az.settings, store::CONTAINER).expect("blob store");
    let latest: Report = history::load_latest(&blobs, &pair)
        .await
        .expect("load latest")
        .expect("a latest report");
    assert_eq!(latest.status, Status::NotReady);
    let runs = history::list_history(&blobs, &pair)
        .await
        .expect("list history");
    assert_eq!(runs.len(), 4, "{runs:?}");

    // ReadinessStatus through the host: JSON by default …
    let one = host
        .request(
            "GET",
            &format!("/api/readiness/{pair}"),
            &[("Accept", "application/json")],
            b"",
        )
        .await
        .expect("GET pair");
    assert_eq!(one.status, 200, "{}", one.body);
    let v = one.json();
    assert_eq!(v["pair"], pair.as_str());
    assert_eq!(v["status"], "NotReady");
    assert!(
        v["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["code"] == "dataset-missing")),
        "{v}"
    );
    let all = host
        .request("GET", "/api/readiness", &[], b"")
        .await
        .expect("GET all");
    assert_eq!(all.status, 200);
    assert_eq!(all.json()["overall"], "NotReady");

    // … and the page for a browser.
    let page = host
        .request(
            "GET",
            &format!("/api/readiness/{pair}"),
            &[("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")],
            b"",
        )
        .await
        .expect("GET page");
    assert_eq!(page.status, 200);
    let ct = page
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(ct.starts_with("text/html"), "content type {ct:?}");
    assert!(page.body.starts_with("<!DOCTYPE html>"));
    assert!(page.body.contains(&format!("data-pair=\"{pair}\"")));
    assert!(page.body.contains("dataset-missing"));

    // An unknown pair is a 404 problem.
    let missing = host
        .request("GET", "/api/readiness/no-such-pair", &[], b"")
        .await
        .expect("GET unknown");
    assert_eq!(missing.status, 404);
    w.sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// in-memory storage: the handler alone (no Azurite needed)

/// A loopback webhook receiver counting POSTs.
async fn webhook() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let counter = counter.clone();
            async move {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                if v["type"] == "readiness.status-changed" {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, hits, task)
}

/// Delivers every `notify` message of `r` through the `Notify` function (as the host would).
async fn deliver_all(app: &TestApp, r: &InvocationResponse) {
    for m in r.messages("notify") {
        let (status, body) = app
            .invoke("Notify", &payload::queue("Notify", &m.to_text(), 1))
            .await;
        assert_eq!(status, 200, "Notify delivers: {body}");
    }
}

async fn fire(app: &TestApp) -> InvocationResponse {
    let (status, body) = app
        .invoke("CheckReadiness", &payload::timer("CheckReadiness", false))
        .await;
    assert_eq!(status, 200, "{body}");
    InvocationResponse::parse(body.to_string().as_bytes(), &[]).expect("a payload-mode response")
}

#[tokio::test]
async fn with_in_memory_storage_a_change_and_a_recovery_each_notify_once() {
    let pair = "mem-pair".to_owned();
    let w = replicated_world(&pair).await;
    let (hook_url, hook_hits, hook_task) = webhook().await;
    let mut config = Config::for_port(0);
    config.notify_webhook_url = Some(SecretUrl::new(
        url::Url::parse(&hook_url).expect("hook url"),
    ));
    let storage = AppStorage::memory();
    let blobs = storage.blobs.clone();
    let app = spawn_app_with_state(
        AppState::new(config, Some(w.cfg.clone())).with_storage(storage.clone()),
    )
    .await;

    let r = fire(&app).await;
    assert!(r.messages("notify").is_empty(), "first Ready: no edge");
    assert!(
        r.logs()
            .iter()
            .any(|l| l.contains(&pair) && l.contains("Ready")),
        "{:?}",
        r.logs()
    );

    break_pair(&w).await;
    let r = fire(&app).await;
    assert_eq!(r.messages("notify").len(), 1);
    let note: Value = r.messages("notify")[0]
        .to_typed()
        .expect("notification JSON");
    assert_eq!(note["newStatus"], "NotReady");
    assert_eq!(note["channel"], "webhook", "one message per channel");
    assert_eq!(
        hook_hits.load(Ordering::SeqCst),
        0,
        "CheckReadiness no longer POSTs itself: the Notify function delivers"
    );
    deliver_all(&app, &r).await;
    assert_eq!(hook_hits.load(Ordering::SeqCst), 1, "one webhook POST");

    let r = fire(&app).await;
    assert!(r.messages("notify").is_empty(), "unchanged: none");

    repair(&w.client, &w.cfg).await;
    let r = fire(&app).await;
    assert_eq!(r.messages("notify").len(), 1, "the recovery is announced");
    let note: Value = r.messages("notify")[0]
        .to_typed()
        .expect("notification JSON");
    assert_eq!(note["oldStatus"], "NotReady");
    assert_eq!(note["newStatus"], "Ready");
    assert_eq!(note["direction"], "recovered");
    deliver_all(&app, &r).await;
    assert_eq!(hook_hits.load(Ordering::SeqCst), 2);

    // The handler sends nothing to the queue itself: the output binding is the only path.
    match storage
        .queue
        .receive(store::NOTIFICATIONS_QUEUE, 32, Duration::from_secs(1))
        .await
    {
        Ok(messages) => assert!(messages.is_empty(), "{messages:?}"),
        Err(store::StoreError::NotFound { .. }) => {} // never even created
        Err(e) => panic!("receive: {e:?}"),
    }
    let runs = history::list_history(blobs.as_ref(), &pair)
        .await
        .expect("history");
    assert_eq!(runs.len(), 4);

    // ReadinessStatus (handler level, payload mode).
    let (status, body) = app
        .invoke(
            "ReadinessStatus",
            &payload::http(
                "ReadinessStatus",
                "GET",
                &format!("readiness/{pair}"),
                serde_json::json!({ "pair": pair }),
                None,
            ),
        )
        .await;
    assert_eq!(status, 200);
    let r = InvocationResponse::parse(body.to_string().as_bytes(), &["res"]).expect("response");
    let res = r.http_res().expect("res");
    assert_eq!(res.status(), 200);
    let report: Value = serde_json::from_str(&res.body_text().unwrap_or_default()).expect("json");
    assert_eq!(report["status"], "Ready");
    hook_task.abort();
    w.sim.shutdown().await;
}

#[tokio::test]
async fn without_a_dr_config_the_timer_fails_naming_the_setting() {
    let app = spawn_app_with_state(
        AppState::new(Config::for_port(0), None).with_storage(AppStorage::memory()),
    )
    .await;
    let (status, body) = app
        .invoke("CheckReadiness", &payload::timer("CheckReadiness", false))
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(body.to_string().contains("DR_CONFIG_PATH"), "{body}");
}
