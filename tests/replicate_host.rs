//! `ReplicateConfig` (timer) and `ReplicateNow` (HTTP `POST api/replicate`) through the Functions
//! host emulator (real host.json / function.json, payload mode, Azurite behind the host) with
//! the handler serving a DR config written by the simulator (`write_config` → a temp file →
//! `DR_CONFIG_PATH`), against the ARM simulator.
//!
//! Skipped with a notice when `DSDR_TEST_STORAGE` is unset (plain `cargo test`); failing when
//! `DSDR_REQUIRE_AZURITE=1` (`scripts/test`).

mod support;

use std::time::Duration;

use datashare_dr::arm::client::ArmClient;
use datashare_dr::config::Config;
use datashare_dr::config::arm::arm_client_from_config;
use datashare_dr::config::dr::DrConfig;
use datashare_dr::sim::{self, Estate, SimHandle};
use datashare_dr::startup::{AppState, AppStorage};
use datashare_dr::store::MessageEncoding;
use serde_json::Value;
use support::app::{TestApp, payload, spawn_app, spawn_app_with_state};
use support::azurite::azurite;
use support::host_emulator::{HostEmulator, HttpResult, Pump};

struct World {
    sim: SimHandle,
    estate: Estate,
    cfg: DrConfig,
    /// A client of our own to look at (and break) the secondary.
    client: ArmClient,
    /// Keeps the DR config file alive while the app runs.
    _config_file: tempfile::NamedTempFile,
    app: TestApp,
    host: HostEmulator,
}

/// Simulator with a populated primary and an empty secondary, the handler started with the
/// generated DR config from a file, and the host emulator in front of it.
async fn world(test: &str) -> Option<World> {
    world_with_budget(test, None).await
}

/// [`world`]; with a `budget`, the app runs with `REPLICATE_BUDGET_SECONDS` = `budget` on
/// Azurite storage of its own (a fresh container; queue `replicate-pairs`), so its jobs and
/// cursor are visible to the emulator's `ReplicatePair` and to nothing else.
async fn world_with_budget(test: &str, budget: Option<Duration>) -> Option<World> {
    let az = azurite(test)?;
    let (sim, estate) = support::estate::populated(3, 2, 1, 13).await;
    // A 5 s per-call deadline (the generated config says 60): with the primary region down a
    // tick gives up within it, not after 6 jittered attempts (up to ~25 s), so the direct
    // invocation in the outage test stays inside the test client's 10 s timeout.
    let text = sim::write_config(&estate, &sim.base_url).replacen(
        "deadline_secs = 60\n",
        "deadline_secs = 5\n",
        1,
    );
    assert!(text.contains("deadline_secs = 5\n"), "{text}");
    let file = tempfile::Builder::new()
        .prefix("dsdr-replicate-host-")
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), &text).expect("write the DR config");
    let cfg = DrConfig::load(file.path()).expect("the generated config loads");
    let client = arm_client_from_config(&cfg).expect("client");

    let mut config = Config::for_port(0);
    config.dr_config_path = Some(file.path().to_path_buf());
    let app = match budget {
        None => spawn_app(config).await,
        Some(b) => {
            config.replicate_budget = Some(b);
            let dr = DrConfig::load(file.path()).expect("the generated config loads");
            let storage = AppStorage {
                blobs: az.fresh_container("rep-host").await,
                queue: az.queue_client(MessageEncoding::None),
                kind: "azure",
            };
            spawn_app_with_state(AppState::new(config, Some(dr)).with_storage(storage)).await
        }
    };
    let host = HostEmulator::for_repo(&app.base_url, &az.settings)
        .setting("REPLICATE_SCHEDULE", "0 */15 * * * *")
        .function_timeout(Duration::from_secs(120))
        .build()
        .expect("emulator");
    Some(World {
        sim,
        estate,
        cfg,
        client,
        _config_file: file,
        app,
        host,
    })
}

impl World {
    /// (share name, data set count) on the secondary, sorted by share name.
    async fn secondary_shares(&self) -> Vec<(String, usize)> {
        let pair = &self.cfg.pairs[0];
        let mut out = Vec::new();
        for share in self
            .client
            .list_shares(&pair.secondary)
            .await
            .expect("list secondary shares")
        {
            let name = share.meta.name.clone().expect("share name");
            let id = pair.secondary.share(&name).expect("share id");
            let n = self
                .client
                .list_datasets(&id)
                .await
                .expect("datasets")
                .len();
            out.push((name.to_ascii_lowercase(), n));
        }
        out.sort();
        out
    }

    /// What the primary holds, in the same form.
    fn primary_shares(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = self
            .estate
            .shares
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .zip(self.estate.datasets_per_share.iter().copied())
            .collect();
        out.sort();
        out
    }

    async fn replicate(&self, body: &str) -> HttpResult {
        self.host
            .http(
                "POST",
                "ReplicateNow",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .await
            .expect("the host routes POST api/replicate")
    }

    /// Fires the timer and returns its `ReturnValue` (the invocation must succeed).
    async fn tick(&self) -> Value {
        let inv = self
            .host
            .fire_timer("ReplicateConfig")
            .await
            .expect("fire ReplicateConfig");
        assert!(
            inv.succeeded,
            "the timer invocation succeeds: {:?}",
            inv.failure
        );
        assert_eq!(inv.handler_status, Some(200));
        assert!(
            inv.logs
                .iter()
                .any(|l| l.starts_with(&format!("pair {}:", self.cfg.pairs[0].name))),
            "one log line per pair: {:?}",
            inv.logs
        );
        inv.response
            .as_ref()
            .and_then(|r| r.get("ReturnValue"))
            .cloned()
            .expect("a ReturnValue")
    }
}

fn problem(res: &HttpResult) -> Value {
    let v = res.json();
    assert!(v.is_object(), "a JSON problem body: {}", res.body);
    v
}

#[tokio::test]
async fn the_timer_bootstraps_the_secondary_and_a_second_tick_writes_nothing() {
    let Some(w) =
        world("the_timer_bootstraps_the_secondary_and_a_second_tick_writes_nothing").await
    else {
        return;
    };
    assert!(
        w.secondary_shares().await.is_empty(),
        "the secondary starts empty"
    );
    w.sim.reset_counters();

    let first = w.tick().await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["summary"]["failed"], 0, "{first}");
    assert_eq!(first["failures"], Value::Array(Vec::new()));
    let created = first["summary"]["create"].as_u64().expect("create count");
    assert!(created > 0, "{first}");
    assert_eq!(first["summary"]["succeeded"].as_u64(), Some(created));
    let writes = w.sim.stats().writes;
    assert_eq!(writes, created, "one ARM write per planned change, no more");
    assert_eq!(
        w.secondary_shares().await,
        w.primary_shares(),
        "every primary share and data set now exists on the secondary"
    );
    assert_eq!(
        first["pairs"][0]["armCalls"]["writes"].as_u64(),
        Some(writes)
    );

    // Second tick: in sync, so lists only.
    w.sim.reset_counters();
    let second = w.tick().await;
    assert_eq!(second["status"], "succeeded", "{second}");
    for key in ["create", "update", "delete", "findings", "failed"] {
        assert_eq!(second["summary"][key], 0, "{key}: {second}");
    }
    let stats = w.sim.stats();
    assert_eq!((stats.writes, stats.deletes), (0, 0), "{stats:?}");
    assert!(stats.reads > 0, "the second tick observed both accounts");
    assert_eq!(stats.throttled, 0);
    drop(w.app);
}

#[tokio::test]
async fn the_http_function_plans_repairs_with_one_write_and_refuses_bad_requests() {
    let Some(w) =
        world("the_http_function_plans_repairs_with_one_write_and_refuses_bad_requests").await
    else {
        return;
    };
    let pair = w.cfg.pairs[0].name.clone();

    // Bootstrap through the HTTP function (every pair, apply).
    let boot = w.replicate("{}").await;
    assert_eq!(boot.status, 200, "{}", boot.body);
    let v = boot.json();
    assert_eq!(v["dryRun"], false);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["complete"], true);
    assert!(
        v["summary"]["create"].as_u64().is_some_and(|n| n > 0),
        "{v}"
    );
    assert_eq!(w.secondary_shares().await, w.primary_shares());

    // Dry run on a replicated pair: the plan document with zero changes, nothing written.
    w.sim.reset_counters();
    let plan = w.replicate(r#"{"dryRun": true}"#).await;
    assert_eq!(plan.status, 200, "{}", plan.body);
    let v = plan.json();
    assert_eq!(v["dryRun"], true);
    assert_eq!(v["status"], "succeeded");
    for key in ["create", "update", "delete", "findings"] {
        assert_eq!(v["summary"][key], 0, "{key}: {v}");
    }
    assert_eq!(v["changes"], Value::Array(Vec::new()));
    assert_eq!(v["pairs"][0]["pair"], pair.as_str());
    assert_eq!(v["pairs"][0]["secondaryExists"], true);
    assert!(v.get("results").is_none(), "a dry run has no results: {v}");
    assert_eq!(w.sim.stats().writes, 0);

    // Delete one secondary data set through the ARM API; `{}` repairs it with exactly one write.
    let p = &w.cfg.pairs[0];
    let share = w.client.list_shares(&p.secondary).await.expect("shares")[0]
        .meta
        .name
        .clone()
        .expect("share name");
    let share_id = p.secondary.share(&share).expect("share id");
    let dataset = w.client.list_datasets(&share_id).await.expect("datasets")[0]
        .meta
        .name
        .clone()
        .expect("data set name");
    w.client
        .delete_dataset(&share_id.data_set(&dataset).expect("data set id"))
        .await
        .expect("delete the data set");
    assert_ne!(w.secondary_shares().await, w.primary_shares());

    w.sim.reset_counters();
    let repair = w.replicate("{}").await;
    assert_eq!(repair.status, 200, "{}", repair.body);
    let v = repair.json();
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["summary"]["create"], 1, "{v}");
    assert_eq!(v["summary"]["update"], 0);
    assert_eq!(v["summary"]["delete"], 0);
    assert_eq!(v["summary"]["succeeded"], 1);
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{v}");
    assert_eq!(results[0]["outcome"], "ok");
    assert_eq!(results[0]["pair"], pair.as_str());
    assert!(results[0]["correlationId"].is_string());
    let stats = w.sim.stats();
    assert_eq!(
        (stats.writes, stats.deletes),
        (1, 0),
        "exactly one write: {stats:?}"
    );
    assert_eq!(w.secondary_shares().await, w.primary_shares());

    // Malformed bodies: 400 naming the field, nothing written.
    w.sim.reset_counters();
    for (body, field) in [
        (r#"{"dryRun": "yes"}"#, "body.dryRun"),
        (r#"{"prune": 1}"#, "body.prune"),
        (r#"{"pair": ""}"#, "body.pair"),
        (r#"{"dry_run": true}"#, "body.dry_run"),
        ("{not json", "body"),
    ] {
        let res = w.replicate(body).await;
        assert_eq!(res.status, 400, "{body}: {}", res.body);
        let p = problem(&res);
        assert_eq!(p["field"], field, "{body}: {p}");
        assert_eq!(p["status"], 400);
        assert!(
            p["detail"].as_str().is_some_and(|d| d.contains(field)),
            "{body}: the message names the field: {p}"
        );
    }

    // Unknown pair: 404 problem naming it.
    let res = w.replicate(r#"{"pair": "no-such-pair"}"#).await;
    assert_eq!(res.status, 404, "{}", res.body);
    let p = problem(&res);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no-such-pair") && d.contains(&pair)),
        "{p}"
    );
    let stats = w.sim.stats();
    assert_eq!(
        (stats.reads, stats.writes),
        (0, 0),
        "refused requests reach no ARM"
    );

    // One named pair, dry run: the same document for that pair only.
    let res = w
        .replicate(&format!(
            r#"{{"pair": "{pair}", "dryRun": true, "prune": false}}"#
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let v = res.json();
    assert_eq!(v["pairs"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["summary"]["create"], 0);
    drop(w.app);
}

#[tokio::test]
async fn a_primary_region_outage_fails_the_tick_for_a_retry_and_answers_503_over_http() {
    let Some(w) =
        world("a_primary_region_outage_fails_the_tick_for_a_retry_and_answers_503_over_http").await
    else {
        return;
    };
    w.sim.region_down(&w.estate.primary_region);

    // Timer: a transient failure answers non-2xx, so the host's retry policy runs it again.
    let inv = w
        .host
        .fire_timer("ReplicateConfig")
        .await
        .expect("fire ReplicateConfig");
    assert!(!inv.succeeded, "the tick must fail so the host retries it");
    assert_eq!(inv.handler_status, Some(500), "{:?}", inv.response);
    // The host keeps no body of a failed invocation; the handler's own answer names the pair.
    let (status, p) = w
        .app
        .invoke("ReplicateConfig", &payload::timer("ReplicateConfig", false))
        .await;
    assert_eq!(status, 500, "{p}");
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("replicate pair {}", w.cfg.pairs[0].name))
            && detail.contains("transiently"),
        "the problem names the pair and says it is transient: {p}"
    );

    // HTTP: nothing could be observed and the cause is transient → 503 for the caller.
    let res = w.replicate(r#"{"dryRun": true}"#).await;
    assert_eq!(res.status, 503, "{}", res.body);
    assert_eq!(problem(&res)["status"], 503);
    assert_eq!(w.sim.stats().writes, 0, "nothing was written");

    // Back up: the next tick bootstraps as if nothing had happened.
    w.sim.region_up(&w.estate.primary_region);
    let v = w.tick().await;
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(w.secondary_shares().await, w.primary_shares());
    drop(w.app);
}

/// A consumer-role config (no `[[pairs]]`): the timer replicates nothing and instead records a
/// snapshot of each `[[subscriptions]]` primary share subscription; with the primary region
/// down the last snapshot is kept and the line says so (the invocation still succeeds).
#[tokio::test]
async fn the_timer_of_a_consumer_config_records_the_primary_snapshot() {
    let test = "the_timer_of_a_consumer_config_records_the_primary_snapshot";
    let Some(az) = azurite(test) else {
        return;
    };
    let (sim, estate) = support::estate::populated(2, 2, 1, 17).await;
    let text = sim::write_consumer_config(&estate, &sim.base_url, 0).expect("consumer config");
    let file = tempfile::Builder::new()
        .prefix("dsdr-consumer-timer-")
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), &text).expect("write the DR config");
    let cfg = DrConfig::load(file.path()).expect("the consumer config loads");
    assert!(cfg.pairs.is_empty() && !cfg.subscriptions.is_empty());
    let name = cfg.subscriptions[0].name.clone();
    let mut config = Config::for_port(0);
    config.dr_config_path = Some(file.path().to_path_buf());
    let app = spawn_app(config).await;
    let host = HostEmulator::for_repo(&app.base_url, &az.settings)
        .setting("REPLICATE_SCHEDULE", "0 */15 * * * *")
        .function_timeout(Duration::from_secs(60))
        .build()
        .expect("emulator");

    let fire = || async {
        let inv = host
            .fire_timer("ReplicateConfig")
            .await
            .expect("fire ReplicateConfig");
        assert!(inv.succeeded, "{:?}", inv.failure);
        inv.logs
    };
    let logs = fire().await;
    assert!(
        logs.iter().any(|l| l
            .starts_with(&format!("subscription {name}: primary snapshot recorded ("))
            && !l.contains("(0 dataset")),
        "{logs:?}"
    );
    assert_eq!(sim.stats().writes, 0, "a snapshot writes nothing to ARM");

    sim.region_down(&cfg.subscriptions[0].primary_region);
    let logs = fire().await;
    assert!(
        logs.iter().any(|l| l.starts_with(&format!(
            "subscription {name}: primary snapshot not recorded (the last one is kept)"
        ))),
        "{logs:?}"
    );
}

/// Every write the simulator applied (2xx PUT/PATCH/DELETE or POST action), as `METHOD path`.
fn applied_writes(sim: &SimHandle) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| (200..300).contains(&r.status))
        .filter(|r| r.method != "GET" && !r.operation.contains("List"))
        .map(|r| format!("{} {}", r.method, r.path.to_ascii_lowercase()))
        .collect()
}

fn assert_nothing_applied_twice(sim: &SimHandle) {
    let writes = applied_writes(sim);
    let mut seen = std::collections::BTreeSet::new();
    let twice: Vec<&String> = writes.iter().filter(|w| !seen.insert(*w)).collect();
    assert!(
        twice.is_empty(),
        "applied twice: {twice:?} (all writes: {writes:#?})"
    );
}

const BUDGET: Duration = Duration::from_secs(2);

/// A simulator slow enough that bootstrapping the secondary takes several budgets.
fn slow(sim: &SimHandle, latency_ms: u64) {
    sim.set_faults(&sim::FaultSettings {
        latency_ms: Some(latency_ms),
        ..Default::default()
    });
}

#[tokio::test]
async fn replicate_now_over_its_budget_answers_202_and_the_job_completes_through_the_queue() {
    let Some(w) = world_with_budget(
        "replicate_now_over_its_budget_answers_202_and_the_job_completes_through_the_queue",
        Some(BUDGET),
    )
    .await
    else {
        return;
    };
    slow(&w.sim, 1500);
    let started = std::time::Instant::now();
    let res = w.replicate("{}").await;
    let took = started.elapsed();
    assert_eq!(res.status, 202, "{}", res.body);
    assert!(
        took < BUDGET + Duration::from_secs(3),
        "answered after {took:?}, budget {BUDGET:?}"
    );
    let v = res.json();
    let job_id = v["jobId"].as_str().expect("jobId").to_owned();
    let url = v["statusUrl"].as_str().expect("statusUrl").to_owned();
    assert!(url.ends_with(&format!("/api/replicate/{job_id}")), "{url}");
    assert_eq!(res.headers.get("location"), Some(&url), "{:?}", res.headers);
    assert_eq!(v["status"], "running", "{v}");
    assert_eq!(v["pairs"][0]["status"], "queued", "{v}");
    let path = &url[url.find("/api/").expect("an /api/ URL")..];

    // While queued, the status URL answers the running job.
    let get = w
        .host
        .request("GET", path, &[], b"")
        .await
        .expect("GET job");
    assert_eq!(get.status, 200, "{}", get.body);
    assert_eq!(get.json()["status"], "running");

    // The background continuation (one pair's pass per message) finishes the job.
    slow(&w.sim, 0);
    let report = w
        .host
        .pump_queue(
            "ReplicatePair",
            Pump::until_idle(Duration::from_secs(2), 40, Duration::from_secs(90)),
        )
        .await
        .expect("pump replicate-pairs");
    assert!(report.invocations() >= 1, "{report:?}");
    let get = w
        .host
        .request("GET", path, &[], b"")
        .await
        .expect("GET job");
    assert_eq!(get.status, 200, "{}", get.body);
    let job = get.json();
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["pairs"][0]["status"], "succeeded", "{job:#}");
    assert_eq!(w.secondary_shares().await, w.primary_shares());
    assert_nothing_applied_twice(&w.sim);

    // Unknown and malformed job ids; POST with an id is not a pass.
    let missing = w
        .host
        .request(
            "GET",
            "/api/replicate/00000000-0000-0000-0000-000000000000",
            &[],
            b"",
        )
        .await
        .expect("GET");
    assert_eq!(missing.status, 404, "{}", missing.body);
    let bad = w
        .host
        .request("GET", "/api/replicate/not_a_job", &[], b"")
        .await
        .expect("GET");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(problem(&bad)["field"], "params.jobId");
}

#[tokio::test]
async fn a_timer_pass_over_its_budget_resumes_on_the_next_tick_and_applies_nothing_twice() {
    let Some(w) = world_with_budget(
        "a_timer_pass_over_its_budget_resumes_on_the_next_tick_and_applies_nothing_twice",
        Some(BUDGET),
    )
    .await
    else {
        return;
    };
    slow(&w.sim, 1500);
    let started = std::time::Instant::now();
    let inv = w
        .host
        .fire_timer("ReplicateConfig")
        .await
        .expect("fire ReplicateConfig");
    let took = started.elapsed();
    assert!(inv.succeeded, "{:?}", inv.failure);
    assert!(
        took < BUDGET + Duration::from_secs(3),
        "the tick took {took:?}, budget {BUDGET:?}"
    );
    assert!(
        inv.logs
            .iter()
            .any(|l| l.starts_with("time budget exhausted")),
        "{:?}",
        inv.logs
    );
    let rv = inv
        .response
        .as_ref()
        .and_then(|r| r.get("ReturnValue"))
        .cloned()
        .expect("a ReturnValue");
    assert_ne!(rv["status"], "succeeded", "cut off mid-pass: {rv:#}");
    let first = applied_writes(&w.sim).len();

    slow(&w.sim, 0);
    let rv = w.tick().await;
    assert_eq!(rv["status"], "succeeded", "{rv:#}");
    assert_eq!(w.secondary_shares().await, w.primary_shares());
    assert!(
        applied_writes(&w.sim).len() > first,
        "the next tick did the rest"
    );
    assert_nothing_applied_twice(&w.sim);
}

/// `ReplicatePair` on its last round (`round = MAX_ROUNDS - 1`) with a pass budget of zero (the
/// guard reports the pass out of time): no further round is queued and the job records the
/// pair `failed` with an error naming the rounds. In-memory storage, no host.
#[tokio::test]
async fn replicate_pair_gives_up_after_its_max_rounds_and_records_the_pair_failed() {
    use datashare_dr::host::{QueueTrigger, Sys};
    use datashare_dr::reconcile::job::{
        self, JobPair, JobStatus, MAX_ROUNDS, PAIRS_QUEUE, PairMessage, PairStatus, ReplicateJob,
    };
    let (sim, estate) = support::estate::populated(2, 1, 1, 21).await;
    let file = tempfile::Builder::new()
        .prefix("dsdr-replicate-pair-")
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), sim::write_config(&estate, &sim.base_url)).expect("write");
    let dr = DrConfig::load(file.path()).expect("the generated config loads");
    let pair = dr.pairs[0].name.clone();
    let storage = AppStorage::memory();
    let blobs = storage.blobs.clone();
    let queue = storage.queue.clone();
    let mut state = AppState::new(Config::for_port(0), Some(dr)).with_storage(storage);
    state.budgets.pass = Duration::ZERO;
    let now = time::OffsetDateTime::now_utc();
    let job_id = job::new_job_id();
    job::create(
        blobs.as_ref(),
        &ReplicateJob {
            job_id: job_id.clone(),
            status: JobStatus::Running,
            dry_run: false,
            prune: false,
            trigger: "test".into(),
            created_at: now,
            updated_at: now,
            pairs: vec![JobPair {
                pair: pair.clone(),
                status: PairStatus::Queued,
                rounds: MAX_ROUNDS - 1,
                counts: None,
                error: None,
                reason: None,
                updated_at: now,
            }],
        },
    )
    .await
    .expect("create the job");
    let msg = PairMessage {
        job_id: job_id.clone(),
        pair: pair.clone(),
        round: MAX_ROUNDS - 1,
    };
    let trigger = QueueTrigger {
        message_text: serde_json::to_string(&msg).expect("encode"),
        body: msg,
        dequeue_count: 1,
        id: Some("m-last-round".into()),
        insertion_time: None,
        expiration_time: None,
        next_visible_time: None,
        pop_receipt: None,
        sys: Sys::default(),
        invocation_id: None,
    };
    let res = datashare_dr::handlers::replicate_pair::handle(&state, trigger)
        .await
        .expect("the last round answers");
    let record = job::load(blobs.as_ref(), &job_id)
        .await
        .expect("read the job")
        .expect("the job exists");
    let p = record.pair(&pair).expect("the job's pair");
    assert_eq!(
        p.status,
        PairStatus::Failed,
        "{record:#?} / {:?}",
        res.logs()
    );
    assert_eq!(p.rounds, MAX_ROUNDS, "{p:#?}");
    let error = p.error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&format!("not finished after {MAX_ROUNDS} rounds")),
        "the error names the rounds: {error:?}"
    );
    assert_eq!(record.status, JobStatus::Failed, "{record:#?}");
    assert!(
        queue
            .receive(PAIRS_QUEUE, 10, Duration::from_secs(30))
            .await
            .unwrap_or_default()
            .is_empty(),
        "no further round is queued"
    );
}
