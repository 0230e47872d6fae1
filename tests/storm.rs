//! Storms: 100 concurrent identical alerts, and 100 concurrent `StartFailover` calls, through
//! the host emulator's HTTP path (payload mode) into the handler, with the run store in Azurite.
//! Each storm must give exactly one run (counted as run blobs of the test's pair in Azurite):
//! the alert storm answers every call 202 with that one run id (one `started`, the rest
//! deduplicated), the runbook storm answers one 202 and 99 × 409 naming the active run.
//!
//! Each test has its own simulator, estate and uniquely named pair; the `datashare-dr` container
//! and the `failover-stages` queue are shared, so each test counts only its pair's runs and
//! removes its own stage messages at the end (nothing here pumps the queue).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datashare_dr::config::Config;
use datashare_dr::config::StorageSettings as ConfigStorage;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::failover::RunRecord;
use datashare_dr::failover::drill::resource_health_alert;
use datashare_dr::sim::{self, SimHandle};
use datashare_dr::startup::AppState;
use datashare_dr::store::{self, AzureBlobStore, BlobStore, CONTAINER};
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app_with_state};
use support::azurite::{TestAzurite, azurite, unique_name};
use support::host_emulator::HostEmulator;
use time::OffsetDateTime;

const STORM: usize = 100;

struct World {
    _sim: SimHandle,
    pair: String,
    cfg: Arc<DrConfig>,
    subscription_id: String,
    _app: TestApp,
    host: HostEmulator,
    blobs: AzureBlobStore,
}

async fn world(az: &TestAzurite, prefix: &str) -> World {
    let (sim, mut estate) = support::estate::populated(2, 1, 2, 7).await;
    let pair = unique_name(prefix);
    estate.pair_name = pair.clone();
    let cfg = Arc::new(
        DrConfig::from_toml_str(
            // Trusts the test issuer whose tokens the host emulator sends (issue 15).
            &support::alert_token::trust(&sim::write_config(&estate, &sim.base_url)),
            "storm.toml",
        )
        .expect("config"),
    );
    let mut config = Config::for_port(0);
    config.storage = Some(ConfigStorage::ConnectionString(
        datashare_dr::config::parse_connection_string(&az.connection_string)
            .expect("Azurite connection string"),
    ));
    let app = spawn_app_with_state(AppState::new(config, Some(cfg.as_ref().clone()))).await;
    let host = HostEmulator::for_repo(&app.base_url, &az.settings)
        .function_timeout(Duration::from_secs(60))
        .build()
        .expect("emulator");
    let blobs = AzureBlobStore::new(&az.settings, CONTAINER).expect("blob store");
    blobs.ensure_container().await.expect("container");
    World {
        _sim: sim,
        pair,
        cfg,
        subscription_id: estate.subscription_id.clone(),
        _app: app,
        host,
        blobs,
    }
}

/// Run records of `pair` in Azurite.
async fn runs_of(blobs: &AzureBlobStore, pair: &str) -> Vec<RunRecord> {
    let mut out = Vec::new();
    for entry in blobs.list("runs/").await.expect("list runs/") {
        if let Some((run, _)) = store::get_json::<RunRecord>(blobs, &entry.path)
            .await
            .expect("read run")
            && run.pair == pair
        {
            out.push(run);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_identical_alerts_through_the_webhook_make_exactly_one_run() {
    let Some(az) = azurite("a_hundred_concurrent_identical_alerts_make_one_run") else {
        return;
    };
    let w = world(&az, "storm-alert").await;
    let body = resource_health_alert(
        w.cfg.pairs[0].primary.as_str(),
        &w.subscription_id,
        OffsetDateTime::now_utc(),
    )
    .expect("alert");
    let started = Instant::now();
    let answers = futures::future::join_all((0..STORM).map(|_| {
        w.host.http(
            "POST",
            "AlertWebhook",
            &[("Content-Type", "application/json")],
            &body,
        )
    }))
    .await;
    let elapsed = started.elapsed();

    let mut run_ids = BTreeSet::new();
    let mut actions = std::collections::BTreeMap::<String, usize>::new();
    for a in answers {
        let a = a.expect("the host answers");
        assert_eq!(
            a.status, 202,
            "every identical alert is accepted: {}",
            a.body
        );
        let v = a.json();
        assert_eq!(v["decision"], "accepted", "{v}");
        let p = &v["pairs"][0];
        assert_eq!(p["pair"], json!(w.pair), "{v}");
        run_ids.insert(p["runId"].as_str().expect("a run id").to_owned());
        *actions
            .entry(p["action"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        run_ids.len(),
        1,
        "all answers name the same run: {run_ids:?}"
    );
    assert_eq!(
        actions.get("started").copied(),
        Some(1),
        "exactly one answer started the run: {actions:?}"
    );
    let runs = runs_of(&w.blobs, &w.pair).await;
    assert_eq!(
        runs.len(),
        1,
        "one run blob for the pair: {:?}",
        runs.iter().map(|r| &r.run_id).collect::<Vec<_>>()
    );
    assert_eq!(Some(&runs[0].run_id), run_ids.first());
    assert_eq!(runs[0].trigger.kind, "alert");
    eprintln!(
        "alert storm: {STORM} concurrent alerts in {:.0} ms → 1 run; answers {actions:?}",
        elapsed.as_secs_f64() * 1e3
    );
    az.remove_stage_messages(&run_ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_start_failover_calls_make_one_run_and_ninety_nine_conflicts() {
    let Some(az) = azurite("a_hundred_concurrent_start_failover_calls_make_one_run") else {
        return;
    };
    let w = world(&az, "storm-start").await;
    let body = serde_json::to_vec(&json!({
        "pair": w.pair,
        "mode": "failover",
        "reason": "storm test: region outage declared by the on-call engineer",
    }))
    .expect("body");
    let started = Instant::now();
    let answers = futures::future::join_all((0..STORM).map(|_| {
        w.host.http(
            "POST",
            "StartFailover",
            &[("Content-Type", "application/json")],
            &body,
        )
    }))
    .await;
    let elapsed = started.elapsed();

    let mut accepted: Vec<Value> = Vec::new();
    let mut conflicts: Vec<Value> = Vec::new();
    for a in answers {
        let a = a.expect("the host answers");
        match a.status {
            202 => accepted.push(a.json()),
            409 => conflicts.push(a.json()),
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    assert_eq!(accepted.len(), 1, "exactly one start wins: {accepted:?}");
    assert_eq!(conflicts.len(), STORM - 1);
    let winner = accepted[0]["runId"]
        .as_str()
        .expect("runId of the winner")
        .to_owned();
    assert!(
        accepted[0]["statusUrl"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/api/failover/{winner}"))),
        "{}",
        accepted[0]
    );
    for c in &conflicts {
        assert_eq!(
            c["activeRunId"].as_str(),
            Some(winner.as_str()),
            "every 409 names the active run: {c}"
        );
    }
    let runs = runs_of(&w.blobs, &w.pair).await;
    assert_eq!(
        runs.len(),
        1,
        "one run blob for the pair: {:?}",
        runs.iter().map(|r| &r.run_id).collect::<Vec<_>>()
    );
    assert_eq!(runs[0].run_id, winner);
    assert_eq!(runs[0].trigger.kind, "runbook");
    eprintln!(
        "start storm: {STORM} concurrent StartFailover calls in {:.0} ms → 1 × 202, {} × 409",
        elapsed.as_secs_f64() * 1e3,
        conflicts.len()
    );
    az.remove_stage_messages(&BTreeSet::from([winner])).await;
}
