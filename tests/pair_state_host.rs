//! The worst day, through the Functions host emulator with Azurite and the ARM simulator: a pair
//! knows it has failed over, and no replication path overwrites the secondary that now serves —
//! the `ReplicateConfig` timer, `ReplicateNow` and the CLI `replicate` each write nothing and say
//! why, a change made on the secondary during the outage survives; a failback restores `normal`
//! and the next tick replicates again. Also: the prune policy as a ceiling, and the operator's
//! reset.
//!
//! Storage: the handler keeps blobs in the contract container `datashare-dr` (the CLI child
//! process reads the pair state there), under a unique pair name; stage and notification queues
//! are per-test names (the emulator's `queue_alias` and a renaming queue client).
//!
//! Without Azurite (`DSDR_TEST_STORAGE` unset) every test prints a skip notice and passes —
//! unless `DSDR_REQUIRE_AZURITE=1` (set by scripts/test).

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datashare_dr::arm::client::ArmClient;
use datashare_dr::arm::models::Share;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::config::{Config, StorageSettings as ConfigStorage, parse_connection_string};
use datashare_dr::failover::drill::resource_health_alert;
use datashare_dr::failover::{RunRecord, RunStatus};
use datashare_dr::pair_state::{self, Phase, Side};
use datashare_dr::sim::{self, Estate, SimHandle};
use datashare_dr::startup::{AppState, AppStorage};
use datashare_dr::store::{
    self, AzureBlobStore, AzureQueue, BlobStore, MessageEncoding, Queue, ReceivedMessage,
    StoreFuture,
};
use serde_json::{Value, json};
use support::app::{TestApp, spawn_app_with_state};
use support::azurite::{TestAzurite, azurite, unique_name};
use support::host_emulator::{HostEmulator, Pump};
use time::OffsetDateTime;

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

struct World {
    sim: SimHandle,
    estate: Estate,
    cfg: DrConfig,
    config_path: std::path::PathBuf,
    arm: ArmClient,
    blobs: Arc<AzureBlobStore>,
    host: HostEmulator,
    pair: String,
    _dir: tempfile::TempDir,
    _app: TestApp,
}

/// A replicated simulator estate under a unique pair name (config text edited by `edit`), the
/// handler on Azurite behind the host emulator.
async fn world(az: &TestAzurite, edit: impl Fn(String) -> String) -> World {
    let (sim, estate) = support::estate::populated(2, 2, 1, 11).await;
    let pair = unique_name("ps");
    // Trusts the test issuer whose tokens the host emulator sends to AlertWebhook (issue 15).
    let toml =
        support::alert_token::trust(&edit(sim::write_config(&estate, &sim.base_url).replace(
            &format!("name = \"{}\"", estate.pair_name),
            &format!("name = \"{pair}\""),
        )));
    let cfg = DrConfig::from_toml_str(&toml, "pair-state.toml").expect("generated config");
    assert_eq!(cfg.pairs[0].name, pair, "the pair was renamed");
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("dr.toml");
    std::fs::write(&config_path, &toml).expect("write the config");
    let arm = support::estate::bootstrap(&sim, &cfg, &cfg.pairs[0]).await;

    let blobs = Arc::new(AzureBlobStore::new(&az.settings, store::CONTAINER).expect("container"));
    blobs
        .ensure_container()
        .await
        .expect("create the container");
    let stages = unique_name("ps-stages");
    let notifications = unique_name("ps-notes");
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
        spawn_app_with_state(AppState::new(config, Some(cfg.clone())).with_storage(storage)).await;
    let host = HostEmulator::for_repo(&app.base_url, &az.settings)
        .setting("REPLICATE_SCHEDULE", "0 */15 * * * *")
        .setting("READINESS_SCHEDULE", "0 */15 * * * *")
        .queue_alias(store::STAGE_QUEUE, &stages)
        .queue_alias(store::STAGE_POISON_QUEUE, &poison)
        .queue_alias(store::NOTIFICATIONS_QUEUE, &notifications)
        .visibility_timeout(Duration::from_secs(1))
        .function_timeout(Duration::from_secs(120))
        .build()
        .expect("host emulator");
    World {
        sim,
        estate,
        cfg,
        config_path,
        arm,
        blobs,
        host,
        pair,
        _dir: dir,
        _app: app,
    }
}

const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

async fn post(host: &HostEmulator, path: &str, body: &Value) -> (u16, Value) {
    let res = host
        .request("POST", path, JSON, body.to_string().as_bytes())
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    (res.status, res.json())
}

async fn load_run(blobs: &dyn BlobStore, run_id: &str) -> RunRecord {
    datashare_dr::failover::run::require_run(blobs, run_id)
        .await
        .unwrap_or_else(|e| panic!("run {run_id}: {e}"))
        .0
}

/// Pumps `FailoverStage` until the run ends (bounded).
async fn pump_to_end(w: &World, run_id: &str, within: Duration) -> RunRecord {
    let started = Instant::now();
    loop {
        let run = load_run(w.blobs.as_ref(), run_id).await;
        if run.status.is_terminal() {
            return run;
        }
        assert!(
            started.elapsed() < within,
            "run {run_id} did not end within {within:?}: {run:#?}"
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

/// ARM writes (PUT / PATCH / DELETE, served) the simulator saw after request `from`.
fn writes_since(sim: &SimHandle, from: u64) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.seq > from)
        .filter(|r| matches!(r.method.as_str(), "PUT" | "PATCH" | "DELETE"))
        .filter(|r| r.outcome == "served")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn last_seq(sim: &SimHandle) -> u64 {
    sim.requests().last().map_or(0, |r| r.seq)
}

async fn set_description(
    arm: &ArmClient,
    account: &datashare_dr::arm::id::AccountId,
    share: &str,
    text: &str,
) {
    let id = account.share(share).expect("share id");
    let cur = arm.get_share(&id).await.expect("read the share");
    let body = Share::new(
        Some(text.to_owned()),
        cur.properties.terms.clone(),
        cur.properties.share_kind.clone().expect("share kind"),
    );
    arm.put_share(&id, &body).await.expect("update the share");
}

async fn description(
    arm: &ArmClient,
    account: &datashare_dr::arm::id::AccountId,
    share: &str,
) -> Option<String> {
    let id = account.share(share).expect("share id");
    arm.get_share(&id)
        .await
        .expect("read the share")
        .properties
        .description
}

async fn state_of(w: &World) -> pair_state::PairPhase {
    pair_state::load(w.blobs.as_ref(), &w.pair)
        .await
        .expect("read the pair state")
        .0
}

/// Runs the CLI (off the runtime's threads: the simulator answers it from this runtime).
async fn cli(w: &World, az: &TestAzurite, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_datashare-dr"));
    cmd.args(args)
        .arg("--config")
        .arg(&w.config_path)
        .env("AzureWebJobsStorage", &az.connection_string)
        .env_remove("DR_CONFIG_PATH")
        .env_remove("ARM_ENDPOINT");
    tokio::task::spawn_blocking(move || cmd.output().expect("run the CLI"))
        .await
        .expect("the CLI thread")
}

#[tokio::test]
async fn after_a_failover_no_replication_path_writes_until_a_failback_completes() {
    let Some(az) =
        azurite("after_a_failover_no_replication_path_writes_until_a_failback_completes")
    else {
        return;
    };
    let w = world(&az, |t| t).await;
    let pair = w.cfg.pairs[0].clone();
    let share = w.estate.shares[0].clone();

    // Normal: a tick replicates (and records the roster); no pair state blob yet = normal.
    let inv = w.host.fire_timer("ReplicateConfig").await.expect("tick");
    assert!(inv.succeeded, "{:?} {:?}", inv.failure, inv.logs);
    assert_eq!(state_of(&w).await.phase, Phase::Normal);

    // The primary region fails; the alert's failover completes.
    w.sim.region_down(&pair.primary_region);
    let alert = resource_health_alert(
        pair.primary.as_str(),
        &w.estate.subscription_id,
        OffsetDateTime::now_utc(),
    )
    .expect("alert");
    let res = w
        .host
        .request("POST", "/api/alerts", JSON, &alert)
        .await
        .expect("POST api/alerts");
    let answer = res.json();
    assert_eq!(res.status, 202, "{answer}");
    let run_id = answer["pairs"][0]["runId"]
        .as_str()
        .expect("run id")
        .to_owned();
    let run = pump_to_end(&w, &run_id, Duration::from_secs(180)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let s = state_of(&w).await;
    assert_eq!(
        (s.phase, s.serving, s.run_id.as_deref()),
        (Phase::FailedOver, Side::Secondary, Some(run_id.as_str())),
        "{s:#?}"
    );

    // During the outage, the secondary serves and is changed there.
    set_description(
        &w.arm,
        &pair.secondary,
        &share,
        "changed on secondary during outage",
    )
    .await;
    // The primary comes back, stale (and changed, so replication would have work to do).
    w.sim.region_up(&pair.primary_region);
    set_description(&w.arm, &pair.primary, &share, "ops reports").await;
    let expected = format!(
        "pair {} is failed over (secondary serving since {}, run {run_id}): replication paused; run a failback to resume",
        w.pair,
        s.since_text()
    );

    // 1. The timer: one line per paused pair, 0 writes.
    let from = last_seq(&w.sim);
    let inv = w.host.fire_timer("ReplicateConfig").await.expect("tick");
    assert!(inv.succeeded, "{:?}", inv.failure);
    assert!(inv.logs.contains(&expected), "{expected}\n{:?}", inv.logs);
    assert_eq!(writes_since(&w.sim, from), Vec::<String>::new());

    // 2. ReplicateNow naming the pair: 409 naming the state; without a pair: 200, paused.
    let from = last_seq(&w.sim);
    let (status, body) = post(&w.host, "/api/replicate", &json!({"pair": w.pair})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["detail"], format!("conflict: {expected}"), "{body}");
    let (status, body) = post(&w.host, "/api/replicate", &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pairs"][0]["paused"], true, "{body}");
    assert_eq!(body["pairs"][0]["state"]["phase"], "failed-over", "{body}");
    assert_eq!(body["pairs"][0]["state"]["serving"], "secondary", "{body}");
    assert_eq!(
        body["pairs"][0]["state"]["runId"],
        run_id.as_str(),
        "{body}"
    );
    assert_eq!(body["pairs"][0]["reason"], expected.as_str(), "{body}");
    assert_eq!(writes_since(&w.sim, from), Vec::<String>::new());

    // 3. The CLI: replicate says why and writes nothing; plan --json carries paused + state.
    let from = last_seq(&w.sim);
    let out = cli(&w, &az, &["replicate"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&expected), "{stdout}");
    let out = cli(&w, &az, &["plan"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&expected), "{stdout}");
    let out = cli(&w, &az, &["plan", "--json"]).await;
    let v: Value = serde_json::from_slice(&out.stdout).expect("plan --json");
    assert_eq!(v["pairs"][0]["paused"], true, "{v}");
    assert_eq!(v["pairs"][0]["state"]["phase"], "failed-over", "{v}");
    assert_eq!(writes_since(&w.sim, from), Vec::<String>::new());

    // The change made on the secondary during the outage survived all of them.
    assert_eq!(
        description(&w.arm, &pair.secondary, &share)
            .await
            .as_deref(),
        Some("changed on secondary during outage")
    );

    // Failback completes: the pair is normal again, the primary serves.
    let (status, body) = post(
        &w.host,
        "/api/failover",
        &json!({"pair": w.pair, "mode": "failback", "reason": "primary recovered"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let back_id = body["runId"].as_str().expect("run id").to_owned();
    let back = pump_to_end(&w, &back_id, Duration::from_secs(180)).await;
    assert_eq!(back.status, RunStatus::Succeeded, "{back:#?}");
    let s = state_of(&w).await;
    assert_eq!(
        (s.phase, s.serving),
        (Phase::Normal, Side::Primary),
        "{s:#?}"
    );
    // The failback carried the secondary's change back to the primary.
    assert_eq!(
        description(&w.arm, &pair.primary, &share).await.as_deref(),
        Some("changed on secondary during outage")
    );

    // The next tick replicates normally again: a primary change reaches the secondary.
    set_description(&w.arm, &pair.primary, &share, "after failback").await;
    let from = last_seq(&w.sim);
    let inv = w.host.fire_timer("ReplicateConfig").await.expect("tick");
    assert!(inv.succeeded, "{:?}", inv.failure);
    assert!(
        inv.logs
            .iter()
            .any(|l| l.starts_with(&format!("pair {}: 0 created, 1 updated", w.pair))),
        "{:?}",
        inv.logs
    );
    assert_eq!(
        writes_since(&w.sim, from).len(),
        1,
        "{:?}",
        writes_since(&w.sim, from)
    );
    assert_eq!(
        description(&w.arm, &pair.secondary, &share)
            .await
            .as_deref(),
        Some("after failback")
    );
}

fn copy_based() -> Share {
    Share::new(
        Some("test share".into()),
        None,
        datashare_dr::arm::models::ShareKind::CopyBased,
    )
}

fn deletes_since(sim: &SimHandle, from: u64) -> Vec<String> {
    writes_since(sim, from)
        .into_iter()
        .filter(|w| w.starts_with("DELETE "))
        .collect()
}

#[tokio::test]
async fn under_prune_report_a_prune_request_is_refused_and_nothing_is_deleted() {
    let Some(az) = azurite("under_prune_report_a_prune_request_is_refused_and_nothing_is_deleted")
    else {
        return;
    };
    let w = world(&az, |t| t).await;
    let pair = w.cfg.pairs[0].clone();
    // An extra share on the secondary (the primary does not have it).
    let extra = pair.secondary.share("extra").expect("share id");
    w.arm
        .put_share(&extra, &copy_based())
        .await
        .expect("create");

    let from = last_seq(&w.sim);
    let (status, body) = post(
        &w.host,
        "/api/replicate",
        &json!({"pair": w.pair, "prune": true}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("prune = \"report\""), "{detail}");
    let out = cli(&w, &az, &["replicate", "--prune", "--yes"]).await;
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("prune = \"report\""), "{stderr}");
    // A dry run shows the delete it would refuse.
    let (status, body) = post(
        &w.host,
        "/api/replicate",
        &json!({"pair": w.pair, "prune": true, "dryRun": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refused: Vec<&Value> = body["findings"]
        .as_array()
        .map(|f| f.iter().filter(|f| f["code"] == "delete-refused").collect())
        .unwrap_or_default();
    assert_eq!(refused.len(), 1, "{body}");
    assert!(
        refused[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("shares/extra") && m.contains("prune = \"report\"")),
        "{body}"
    );
    assert_eq!(writes_since(&w.sim, from), Vec::<String>::new());
    assert!(
        w.arm.get_share(&extra).await.is_ok(),
        "the extra share is still there"
    );
}

#[tokio::test]
async fn under_prune_delete_only_what_the_tool_created_is_deleted() {
    let Some(az) = azurite("under_prune_delete_only_what_the_tool_created_is_deleted") else {
        return;
    };
    let w = world(&az, |t| {
        t.replace("prune = \"report\"", "prune = \"delete\"")
    })
    .await;
    let pair = w.cfg.pairs[0].clone();
    assert_eq!(
        pair.prune,
        datashare_dr::config::dr::PrunePolicy::Delete,
        "the test config prunes"
    );
    // The tool creates `tool-made` on the secondary (a tick after it appears on the primary).
    let on_primary = pair.primary.share("tool-made").expect("share id");
    w.arm
        .put_share(&on_primary, &copy_based())
        .await
        .expect("create");
    let inv = w.host.fire_timer("ReplicateConfig").await.expect("tick");
    assert!(inv.succeeded, "{:?} {:?}", inv.failure, inv.logs);
    let s = state_of(&w).await;
    assert!(
        s.created_here(pair.secondary.as_str(), "shares/tool-made"),
        "{:#?}",
        s.created
    );
    // Someone makes `by-hand` on the secondary.
    let by_hand = pair.secondary.share("by-hand").expect("share id");
    w.arm
        .put_share(&by_hand, &copy_based())
        .await
        .expect("create");
    // `tool-made` leaves the primary: it is now an orphan the tool made.
    w.arm.delete_share(&on_primary).await.expect("delete");

    // The CLI lists the delete and writes nothing without --prune --yes.
    let from = last_seq(&w.sim);
    let out = cli(&w, &az, &["replicate"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(64), "{stdout}");
    assert!(stdout.contains("delete share tool-made"), "{stdout}");
    assert!(stdout.contains("--prune --yes"), "{stdout}");
    assert!(!stdout.contains("delete share by-hand"), "{stdout}");
    assert_eq!(writes_since(&w.sim, from), Vec::<String>::new());

    // The timer deletes the tool-made orphan and leaves the hand-made share alone.
    let inv = w.host.fire_timer("ReplicateConfig").await.expect("tick");
    assert!(inv.succeeded, "{:?} {:?}", inv.failure, inv.logs);
    let deleted = deletes_since(&w.sim, from);
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(deleted[0].ends_with("/shares/tool-made"), "{deleted:?}");
    assert!(
        w.arm.get_share(&by_hand).await.is_ok(),
        "hand-made share kept"
    );
    assert!(
        w.arm
            .get_share(&pair.secondary.share("tool-made").expect("id"))
            .await
            .is_err(),
        "tool-made orphan deleted"
    );
    let s = state_of(&w).await;
    assert!(!s.created_here(pair.secondary.as_str(), "shares/tool-made"));
}

/// (method, path below the account) of the writes to `account` after request `from`.
fn writes_to(sim: &SimHandle, account: &str, from: u64) -> Vec<(String, String)> {
    let prefix = account.to_ascii_lowercase();
    let mut out: Vec<(String, String)> = sim
        .requests()
        .into_iter()
        .filter(|r| r.seq > from && r.outcome == "served")
        .filter(|r| matches!(r.method.as_str(), "PUT" | "PATCH" | "DELETE"))
        .filter_map(|r| {
            let lower = r.path.to_ascii_lowercase();
            lower
                .strip_prefix(&prefix)
                .map(|rest| (r.method.clone(), rest.trim_start_matches('/').to_owned()))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_failback_dry_run_lists_exactly_the_arm_changes_the_failback_makes() {
    let Some(az) = azurite("a_failback_dry_run_lists_exactly_the_arm_changes_the_failback_makes")
    else {
        return;
    };
    let w = world(&az, |t| t).await;
    let pair = w.cfg.pairs[0].clone();
    let inv = w.host.fire_timer("ReplicateConfig").await.expect("tick");
    assert!(inv.succeeded, "{:?}", inv.failure);
    w.sim.region_down(&pair.primary_region);
    let (status, body) = post(
        &w.host,
        "/api/failover",
        &json!({"pair": w.pair, "mode": "failover", "reason": "region down", "force": true}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let run = pump_to_end(
        &w,
        body["runId"].as_str().expect("id"),
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    // During the outage the secondary changes: a description, and a new share.
    set_description(
        &w.arm,
        &pair.secondary,
        &w.estate.shares[0],
        "changed on secondary during outage",
    )
    .await;
    let new_share = pair.secondary.share("outage-share").expect("id");
    w.arm
        .put_share(&new_share, &copy_based())
        .await
        .expect("create");
    w.sim.region_up(&pair.primary_region);

    let from = last_seq(&w.sim);
    let (status, dry) = post(
        &w.host,
        "/api/failover",
        &json!({"pair": w.pair, "mode": "failback", "reason": "preview", "dryRun": true}),
    )
    .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        writes_since(&w.sim, from),
        Vec::<String>::new(),
        "a dry run writes nothing"
    );
    let preview = &dry["preview"];
    assert_eq!(preview["state"]["phase"], "failed-over", "{dry}");
    assert!(
        preview["preflight"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["code"] == "primary-reachable")),
        "{dry}"
    );
    let changes = preview["changes"]["changes"]
        .as_array()
        .expect("changes")
        .clone();
    assert!(!changes.is_empty(), "{dry}");
    let mut planned: Vec<(String, String)> = Vec::new();
    for c in &changes {
        let address = c["address"].as_str().expect("address").to_ascii_lowercase();
        match c["action"].as_str().expect("action") {
            "create" | "update" => planned.push(("PUT".into(), address)),
            "delete" => planned.push(("DELETE".into(), address)),
            "replace" => {
                planned.push(("DELETE".into(), address.clone()));
                planned.push(("PUT".into(), address));
            }
            other => panic!("unknown action {other}"),
        }
    }
    planned.sort();
    assert!(
        planned.contains(&("PUT".into(), "shares/outage-share".into())),
        "{planned:?}"
    );

    let from = last_seq(&w.sim);
    let (status, body) = post(
        &w.host,
        "/api/failover",
        &json!({"pair": w.pair, "mode": "failback", "reason": "primary recovered"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let back = pump_to_end(
        &w,
        body["runId"].as_str().expect("id"),
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(back.status, RunStatus::Succeeded, "{back:#?}");
    let made = writes_to(&w.sim, pair.primary.as_str(), from);
    assert_eq!(
        made, planned,
        "the failback's writes on the primary = its dry run"
    );
}

/// Codes of the findings in a readiness report (JSON).
fn codes_of(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Readiness shows the state: a failed-over pair is checked for failback readiness by `check`
/// (exit code from the serving side's view), the `CheckReadiness` timer and `ReadinessStatus`
/// (JSON and page), with an active run and its stage; `failover reset-state` and
/// `POST api/failover/pairs/{pair}/reset` clear the state (audited), refused while a run is
/// active.
#[tokio::test]
async fn a_failed_over_pair_is_checked_for_failback_and_an_operator_reset_clears_it() {
    let Some(az) =
        azurite("a_failed_over_pair_is_checked_for_failback_and_an_operator_reset_clears_it")
    else {
        return;
    };
    let w = world(&az, |t| t).await;
    let pair = w.cfg.pairs[0].clone();
    let share = w.estate.shares[0].clone();
    let blobs = w.blobs.as_ref();
    let t0 = OffsetDateTime::now_utc();

    // A failover run completed (the state as the run leaves it) while the primary is down; the
    // secondary is changed during the outage.
    pair_state::enter_run_phase(
        blobs,
        &w.pair,
        "run-fo-1",
        pair_state::RunKind::Failover,
        t0,
    )
    .await
    .expect("enter");
    pair_state::finish_run_phase(
        blobs,
        &w.pair,
        "run-fo-1",
        pair_state::RunKind::Failover,
        t0,
    )
    .await
    .expect("finish");
    set_description(&w.arm, &pair.secondary, &share, "changed during the outage").await;
    w.sim.region_down(&pair.primary_region);

    // check --json: the state, failback readiness; the primary being down keeps a failback
    // from working (Degraded, exit 1) while the serving secondary is fine.
    let out = cli(&w, &az, &["check", "--json", "--pair", &w.pair]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("pair state unknown"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check --json: {e}: {stderr}"));
    assert_eq!(out.status.code(), Some(1), "{v:#}\n{stderr}");
    assert_eq!(v["status"], "Degraded", "{v:#}");
    assert_eq!(v["pairState"]["phase"], "failed-over", "{v:#}");
    assert_eq!(v["pairState"]["serving"], "secondary", "{v:#}");
    assert_eq!(v["pairState"]["runId"], "run-fo-1", "{v:#}");
    assert!(v["pairState"]["since"].is_string(), "{v:#}");
    let codes = codes_of(&v);
    for want in ["pair-failed-over", "failback-primary-unreachable"] {
        assert!(codes.iter().any(|c| c == want), "{want} in {codes:?}");
    }
    // Not the failover question: a down primary is not "start a failover" here.
    assert!(
        !codes.iter().any(|c| c == "primary-unreachable"),
        "{codes:?}"
    );

    // The primary is back: it is ready to take back (exit 0), and the outage's change is listed
    // as what a failback would carry.
    w.sim.region_up(&pair.primary_region);
    let out = cli(&w, &az, &["check", "--json", "--pair", &w.pair]).await;
    let v: Value = serde_json::from_slice(&out.stdout).expect("check --json");
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let codes = codes_of(&v);
    assert!(
        codes.iter().any(|c| c == "failback-primary-ready"),
        "{codes:?}"
    );
    let carried = v["findings"].as_array().expect("findings").iter().any(|f| {
        f["code"] == "failback-carries"
            && f["message"]
                .as_str()
                .is_some_and(|m| m.contains("changed during the outage"))
    });
    assert!(carried, "the outage's change is listed: {v:#}");

    // A failback run is started (not pumped: pending, stage preflight): it shows as active.
    let (status, body) = post(
        &w.host,
        "/api/failover",
        &json!({"pair": w.pair, "mode": "failback", "reason": "primary recovered"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let run_id = body["runId"].as_str().expect("run id").to_owned();
    let inv = w.host.fire_timer("CheckReadiness").await.expect("tick");
    assert!(inv.succeeded, "{:?} {:?}", inv.failure, inv.logs);
    let stored: datashare_dr::readiness::Report =
        datashare_dr::readiness::load_latest(blobs, &w.pair)
            .await
            .expect("load")
            .expect("a stored report");
    assert_eq!(
        stored.pair_state.as_ref().map(|s| s.phase),
        Some(Phase::FailedOver)
    );
    assert_eq!(stored.active_runs.len(), 1, "{stored:#?}");
    let res = w
        .host
        .request("GET", &format!("/api/readiness/{}", w.pair), &[], b"")
        .await
        .expect("GET api/readiness/{pair}");
    let v = res.json();
    assert_eq!(res.status, 200, "{v:#}");
    assert_eq!(v["pairState"]["phase"], "failed-over", "{v:#}");
    assert_eq!(v["activeRuns"][0]["runId"], run_id.as_str(), "{v:#}");
    assert_eq!(v["activeRuns"][0]["mode"], "failback", "{v:#}");
    assert!(v["activeRuns"][0]["stage"].is_string(), "{v:#}");
    let page = w
        .host
        .request(
            "GET",
            &format!("/api/readiness/{}", w.pair),
            &[("Accept", "text/html")],
            b"",
        )
        .await
        .expect("GET the page");
    assert!(
        page.body.contains("data-role=\"pair-state\"")
            && page.body.contains(&format!("/api/failover/{run_id}")),
        "{}",
        page.body
    );

    // Reset is refused while the run is active: CLI exit 1, HTTP 409; nothing changes.
    let out = cli(
        &w,
        &az,
        &[
            "failover",
            "reset-state",
            "--pair",
            &w.pair,
            "--reason",
            "x",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("still active"), "{stderr}");
    let reset_path = format!("/api/failover/pairs/{}/reset", w.pair);
    let (status, body) = post(&w.host, &reset_path, &json!({"reason": "x"})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(state_of(&w).await.phase, Phase::FailedOver);

    // The run is cancelled (and ends): the CLI reset clears the state, audited with the reason.
    let out = cli(
        &w,
        &az,
        &["failover", "cancel", &run_id, "--reason", "reset instead"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pump_to_end(&w, &run_id, Duration::from_secs(60)).await;
    // Usage errors first: an empty reason and an unknown pair exit 64.
    let out = cli(
        &w,
        &az,
        &[
            "failover",
            "reset-state",
            "--pair",
            &w.pair,
            "--reason",
            " ",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(64));
    let out = cli(
        &w,
        &az,
        &["failover", "reset-state", "--pair", "nope", "--reason", "r"],
    )
    .await;
    assert_eq!(out.status.code(), Some(64));
    let out = cli(
        &w,
        &az,
        &[
            "failover",
            "reset-state",
            "--pair",
            &w.pair,
            "--reason",
            "failed over by hand; primary verified",
            "--json",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = state_of(&w).await;
    assert_eq!(
        (s.phase, s.serving, s.run_id.as_deref()),
        (Phase::Normal, Side::Primary, None)
    );
    let audit = s.resets.last().expect("an audit entry");
    assert_eq!(audit.reason, "failed over by hand; primary verified");
    assert_eq!(audit.from_phase, Phase::FailedOver);
    assert_eq!(audit.from_run_id.as_deref(), Some("run-fo-1"));
    assert!(audit.by.starts_with("cli"), "{audit:?}");

    // The route: a failing-back pair left by a failed run is cleared by POST, audited.
    pair_state::enter_run_phase(
        blobs,
        &w.pair,
        "run-fb-9",
        pair_state::RunKind::Failback,
        t0,
    )
    .await
    .expect("enter");
    let (status, body) = post(&w.host, &reset_path, &json!({})).await;
    assert_eq!(status, 400, "a reason is required: {body}");
    let (status, body) = post(
        &w.host,
        "/api/failover/pairs/no-such-pair/reset",
        &json!({"reason": "r"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // Stuck in failing-back with no active run: readiness says so (Warning) until the reset.
    let out = cli(&w, &az, &["check", "--json", "--pair", &w.pair]).await;
    let v: Value = serde_json::from_slice(&out.stdout).expect("check --json");
    assert!(
        codes_of(&v).iter().any(|c| c == "pair-state-stuck"),
        "{v:#}"
    );
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let (status, body) = post(
        &w.host,
        &reset_path,
        &json!({"reason": "failback finished by hand"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["phase"], "normal", "{body}");
    let s = state_of(&w).await;
    assert_eq!(s.phase, Phase::Normal);
    let audit = s.resets.last().expect("an audit entry");
    assert_eq!(
        (
            audit.reason.as_str(),
            audit.from_phase,
            audit.from_run_id.as_deref()
        ),
        (
            "failback finished by hand",
            Phase::FailingBack,
            Some("run-fb-9")
        )
    );
    assert_eq!(s.resets.len(), 2);
}
