//! `datashare-dr drill`: the offline end-to-end demonstration, with nothing but this binary.
//!
//! Starts the built-in simulator in-process with a generated estate, replicates the pair,
//! checks readiness, records the consumer roster, takes the primary region down, feeds a
//! Resource Health "Unavailable" alert (the fixture
//! `tests/fixtures/alerts/common.resourcehealth.unavailable.fired.test-action.json`, re-targeted
//! at the simulated primary account) through the same decision path as `AlertWebhook`, runs the
//! failover to completion with the in-process queue and in-memory store, and prints a short
//! report. Exit 0 when the run succeeded, 1 otherwise.
//!
//! `--role consumer` drills the consumer's side instead ([`consumer_drill`]): the provider
//! replicates (inviting the consumer on its secondary shares), the consumer's primary share
//! subscriptions are snapshotted, the consumer's primary region goes down, and a Resource
//! Health alert on the consumer's primary account runs accept → map → triggers on its
//! secondary account for every subscription.
//!
//! Everything runs on loopback; nothing touches Azure. Must not import: handlers, host.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cli::DrillArgs;
use crate::config::dr::DrConfig;
use crate::readiness::arm_reader::{ArmReader, arm_client_from_config};
use crate::readiness::check::check_pair;
use crate::reconcile::apply::{ReplicateOptions, replicate};
use crate::sim::{self, OpStats, PopulateSpec, SimOptions};
use crate::store::NOTIFICATIONS_QUEUE;

use super::exec::capture_roster;
use super::run::{RunRecord, RunStatus};
use super::runner::{RunnerOptions, Stopped, drive, in_process};
use super::start::{AlertAnswer, ingest_alert};

/// The Resource Health alert template (Azure's own test-action sample).
const ALERT_TEMPLATE: &str = include_str!(
    "../../tests/fixtures/alerts/common.resourcehealth.unavailable.fired.test-action.json"
);

/// What the drill did, for the readable report and `--json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrillReport {
    pub pair: String,
    pub estate: String,
    pub replicated_changes: usize,
    pub readiness_before: String,
    pub roster_consumers: usize,
    pub primary_region_down: String,
    pub alert_decision: String,
    pub run: RunRecord,
    /// ARM calls of the failover run, by operation (from the simulator's counters).
    pub arm_calls: BTreeMap<String, u64>,
    pub notifications: usize,
    pub wall_secs: f64,
}

/// Re-targets the fixture at `account_id` (an Unavailable, platform-initiated event, now).
pub fn resource_health_alert(
    account_id: &str,
    subscription_id: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<u8>> {
    let mut v: Value = serde_json::from_str(ALERT_TEMPLATE).context("alert template")?;
    let stamp = now
        .format(&time::format_description::well_known::Rfc3339)
        .context("format the alert time")?;
    let name = account_id.rsplit('/').next().unwrap_or(account_id);
    let alert_id = format!(
        "/subscriptions/{subscription_id}/providers/Microsoft.AlertsManagement/alerts/{}",
        uuid::Uuid::new_v4()
    );
    let ess = v
        .pointer_mut("/data/essentials")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("alert template has no data.essentials"))?;
    ess.insert("alertId".into(), json!(alert_id));
    ess.insert(
        "alertRule".into(),
        json!("datashare-primary-resource-health"),
    );
    ess.insert("alertTargetIDs".into(), json!([account_id]));
    ess.insert("configurationItems".into(), json!([name]));
    ess.insert("firedDateTime".into(), json!(stamp));
    let ctx = v
        .pointer_mut("/data/alertContext")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("alert template has no data.alertContext"))?;
    ctx.insert("eventTimestamp".into(), json!(stamp));
    ctx.insert(
        "eventDataId".into(),
        json!(uuid::Uuid::new_v4().to_string()),
    );
    let props = v
        .pointer_mut("/data/alertContext/properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("alert template has no data.alertContext.properties"))?;
    props.insert("title".into(), json!("Data Share account unavailable"));
    props.insert("currentHealthStatus".into(), json!("Unavailable"));
    props.insert("previousHealthStatus".into(), json!("Available"));
    props.insert("cause".into(), json!("PlatformInitiated"));
    serde_json::to_vec(&v).context("encode the alert")
}

/// `datashare-dr drill`: returns the process exit code (64 for a bad `--populate`, a usage
/// error).
pub fn run_drill(args: &DrillArgs) -> anyhow::Result<i32> {
    let spec = match PopulateSpec::parse(&args.populate) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --populate: {e}");
            return Ok(crate::cli::EXIT_USAGE);
        }
    };
    // clap admits only `provider` and `consumer`.
    let consumer = args.role == "consumer";
    if consumer && spec.consumers == 0 {
        eprintln!("error: --role consumer needs at least one consumer in --populate");
        return Ok(crate::cli::EXIT_USAGE);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    if consumer {
        let report = rt.block_on(consumer_drill(spec, args.latency_ms))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render_consumer(&report));
        }
        let ok =
            !report.runs.is_empty() && report.runs.iter().all(|r| r.status == RunStatus::Succeeded);
        return Ok(if ok { 0 } else { 1 });
    }
    let report = rt.block_on(drill(spec, args.latency_ms))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.run.status == RunStatus::Succeeded {
        0
    } else {
        1
    })
}

/// `start failover (pair: action, …)` for the report.
fn decision_text(pairs: &[super::start::PairAnswer]) -> String {
    let each: Vec<String> = pairs
        .iter()
        .map(|p| format!("{}: {}", p.pair, p.action))
        .collect();
    format!("start failover ({})", each.join(", "))
}

fn op_diff(
    before: &BTreeMap<String, OpStats>,
    after: &BTreeMap<String, OpStats>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let n = v.calls - before.get(k).map_or(0, |b| b.calls);
            (n > 0).then(|| (k.clone(), n))
        })
        .collect()
}

/// The simulated provider estate both drills start from.
struct Provider {
    sim: sim::SimHandle,
    estate: sim::Estate,
    cfg: DrConfig,
    pair: crate::config::dr::Pair,
    arm: crate::arm::client::ArmClient,
    /// Changes the bootstrap replicate pass applied.
    replicated: usize,
}

/// Starts the simulator, generates the estate and replicates its pair once.
async fn provider_estate(spec: &PopulateSpec, latency_ms: u64) -> anyhow::Result<Provider> {
    crate::startup::install_crypto_provider();
    let sim = sim::spawn(SimOptions {
        latency_ms,
        lro_delay_ms: 5,
        ..SimOptions::default()
    })
    .await
    .context("start the simulator")?;
    let estate = sim.populate(spec).context("generate the estate")?;
    let toml = sim::write_config(&estate, &sim.base_url);
    let cfg = DrConfig::from_toml_str(&toml, "drill.toml").context("generated config")?;
    let pair = cfg
        .pairs
        .first()
        .ok_or_else(|| anyhow!("the generated config has no pair"))?
        .clone();
    let arm = arm_client_from_config(&cfg).context("ARM client for the simulator")?;
    let rep = replicate(
        &arm,
        &pair,
        &ReplicateOptions {
            dry_run: false,
            prune: false,
            concurrency: cfg.arm.max_concurrency.max(1),
            now: OffsetDateTime::now_utc(),
        },
        &|_, _| {},
    )
    .await;
    if let Some(e) = &rep.error {
        bail!("replicate failed: {e}");
    }
    Ok(Provider {
        sim,
        estate,
        cfg,
        pair,
        arm,
        replicated: rep.results.len(),
    })
}

/// The drill itself (also used by tests).
pub async fn drill(spec: PopulateSpec, latency_ms: u64) -> anyhow::Result<DrillReport> {
    let wall = Instant::now();
    // 1. The simulated estate, replicated primary → secondary.
    let Provider {
        sim,
        estate,
        cfg,
        pair,
        arm,
        replicated,
    } = provider_estate(&spec, latency_ms).await?;
    let cfg = Arc::new(cfg);
    sim.fire_triggers();

    // 2. Readiness.
    let reader = ArmReader {
        client: &arm,
        concurrency: cfg.arm.max_concurrency.max(1),
    };
    let before = check_pair(&reader, &cfg, &pair, OffsetDateTime::now_utc(), None).await;

    // 3. In-memory store + in-process queue; record who the consumers are.
    let (mut ctx, queue) = in_process(cfg.clone(), arm.clone());
    ctx.probe_deadline = Duration::from_secs(2);
    let (store, clock) = (ctx.store.clone(), ctx.clock.clone());
    let roster = capture_roster(&arm, store.as_ref(), &pair, clock.now()).await?;

    // 4. Outage.
    sim.region_down(&pair.primary_region);
    let ops_before = sim.stats().operations;

    // 5. Alert → decision → run.
    let body = resource_health_alert(pair.primary.as_str(), &estate.subscription_id, clock.now())?;
    let answer = ingest_alert(store.as_ref(), &queue, &cfg, &body, clock.now())
        .await
        .context("alert webhook path")?;
    let (decision, run_id) = match &answer {
        AlertAnswer::Accepted { pairs } => (
            decision_text(pairs),
            pairs
                .iter()
                .find_map(|p| p.run_id.clone())
                .ok_or_else(|| anyhow!("the alert started no run"))?,
        ),
        other => bail!("the alert did not start a failover: {other:?}"),
    };

    // 6. Run to completion.
    let (run, stopped) = drive(&ctx, &queue, &run_id, RunnerOptions::default()).await?;
    if stopped != Stopped::Ended {
        tracing::warn!(?stopped, "the drill's run did not end");
    }
    let arm_calls = op_diff(&ops_before, &sim.stats().operations);
    let notifications = queue.len(NOTIFICATIONS_QUEUE);
    sim.shutdown().await;
    Ok(DrillReport {
        pair: pair.name.clone(),
        estate: format!(
            "{} shares × {} data sets, {} consumers",
            spec.shares, spec.datasets, spec.consumers
        ),
        replicated_changes: replicated,
        readiness_before: format!("{} (score {})", before.status.as_str(), before.score),
        roster_consumers: roster,
        primary_region_down: pair.primary_region.clone(),
        alert_decision: decision,
        run,
        arm_calls,
        notifications,
        wall_secs: wall.elapsed().as_secs_f64(),
    })
}

/// What the consumer-role drill did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerDrillReport {
    /// The consumer (`consumer00`) and its accounts.
    pub consumer: String,
    pub primary_account: String,
    pub secondary_account: String,
    pub estate: String,
    /// The provider's replicate pass (it invites the consumer on the secondary shares).
    pub provider_replicated_changes: usize,
    /// Primary share subscriptions recorded (`consumer-snapshots/`), and their data set mappings.
    pub snapshots: usize,
    pub snapshot_mappings: usize,
    pub primary_region_down: String,
    pub alert_decision: String,
    /// Runs approved by the drill (alert-started runs under `failover = "approve"`).
    pub approved: usize,
    pub runs: Vec<RunRecord>,
    /// ARM calls of the failover runs, by operation.
    pub arm_calls: BTreeMap<String, u64>,
    pub wall_secs: f64,
}

/// The consumer side of a failover, offline: the provider replicates (inviting the consumer on
/// its secondary shares), the consumer's timer records its primary share subscriptions, the
/// consumer's primary region goes down, a Resource Health alert on the consumer's primary
/// account starts one run per `[[subscriptions]]` entry, and each runs to completion
/// (accept the invitation on the secondary account, map data sets to the secondary sinks,
/// create triggers with the provider's schedule).
pub async fn consumer_drill(
    spec: PopulateSpec,
    latency_ms: u64,
) -> anyhow::Result<ConsumerDrillReport> {
    let wall = Instant::now();
    // 1. The provider keeps its secondary replicated (invitations for `now` consumers).
    let Provider {
        sim,
        estate,
        replicated,
        ..
    } = provider_estate(&spec, latency_ms).await?;
    let consumer = estate
        .consumers
        .first()
        .ok_or_else(|| anyhow!("the generated estate has no consumer"))?
        .clone();

    // 2. The consumer's app: its config, and its timer's primary snapshots.
    let toml = sim::write_consumer_config(&estate, &sim.base_url, 0)
        .ok_or_else(|| anyhow!("no consumer config for {}", consumer.name))?;
    let cfg = Arc::new(
        DrConfig::from_toml_str(&toml, "drill-consumer.toml")
            .context("generated consumer config")?,
    );
    let first = cfg
        .subscriptions
        .first()
        .ok_or_else(|| anyhow!("the consumer config has no [[subscriptions]]"))?;
    let region = first.primary_region.clone();
    let arm = arm_client_from_config(&cfg).context("ARM client (consumer)")?;
    let (mut ctx, queue) = in_process(cfg.clone(), arm.clone());
    ctx.probe_deadline = Duration::from_secs(2);
    let (store, clock) = (ctx.store.clone(), ctx.clock.clone());
    let mut mappings = 0;
    for sub in &cfg.subscriptions {
        let snap = super::consumer::capture_primary(&arm, store.as_ref(), sub, clock.now())
            .await
            .with_context(|| format!("snapshot of subscription {}", sub.name))?;
        mappings += snap.mappings.len();
    }

    // 3. Outage of the consumer's primary region, and the alert on its primary account.
    sim.region_down(&region);
    let ops_before = sim.stats().operations;
    let body = resource_health_alert(&consumer.account_id, &consumer.subscription_id, clock.now())?;
    let answer = ingest_alert(store.as_ref(), &queue, &cfg, &body, clock.now())
        .await
        .context("alert webhook path")?;
    let AlertAnswer::Accepted { pairs } = &answer else {
        bail!("the alert did not start a failover: {answer:?}");
    };
    let decision = decision_text(pairs);
    let ids: Vec<String> = pairs.iter().filter_map(|p| p.run_id.clone()).collect();

    // 4. Approve what waits for approval (the on-call person's step), then run everything.
    let mut approved = 0;
    for id in &ids {
        let (run, _) = super::run::require_run(store.as_ref(), id).await?;
        if run.approval.required && !run.approval.is_approved() {
            super::start::approve(store.as_ref(), &queue, id, "drill", clock.now()).await?;
            approved += 1;
        }
    }
    let mut runs = Vec::new();
    for id in &ids {
        let (run, stopped) = drive(&ctx, &queue, id, RunnerOptions::default()).await?;
        if stopped != Stopped::Ended {
            tracing::warn!(?stopped, run_id = %id, "a consumer drill run did not end");
        }
        runs.push(run);
    }
    let arm_calls = op_diff(&ops_before, &sim.stats().operations);
    sim.shutdown().await;
    Ok(ConsumerDrillReport {
        consumer: consumer.name.clone(),
        primary_account: consumer.account_id.clone(),
        secondary_account: consumer.secondary_account_id.clone(),
        estate: format!(
            "{} shares × {} data sets, {} consumers",
            spec.shares, spec.datasets, spec.consumers
        ),
        provider_replicated_changes: replicated,
        snapshots: cfg.subscriptions.len(),
        snapshot_mappings: mappings,
        primary_region_down: region,
        alert_decision: decision,
        approved,
        runs,
        arm_calls,
        wall_secs: wall.elapsed().as_secs_f64(),
    })
}

/// The consumer drill's readable report.
pub fn render_consumer(r: &ConsumerDrillReport) -> String {
    let mut s = format!(
        "datashare-dr drill --role consumer — {} ({})

",
        r.consumer, r.estate
    );
    s.push_str(&format!(
        "  provider         {} change(s) replicated to the provider's secondary (invitations included)
",
        r.provider_replicated_changes
    ));
    s.push_str(&format!(
        "  snapshots        {} primary share subscription(s), {} data set mapping(s) recorded
",
        r.snapshots, r.snapshot_mappings
    ));
    s.push_str(&format!(
        "  outage           region {} taken down
",
        r.primary_region_down
    ));
    s.push_str(&format!(
        "  alert            {}
",
        r.alert_decision
    ));
    if r.approved > 0 {
        s.push_str(&format!(
            "  approval         {} run(s) approved (failover = \"approve\")\n",
            r.approved
        ));
    }
    s.push('\n');
    for run in &r.runs {
        s.push_str(&super::cli::render_run(run));
        s.push('\n');
    }
    s.push_str(&render_arm_calls(&r.arm_calls));
    s.push_str(&format!(
        "wall time: {:.2} s (RTO includes the stages' own waits — 1 s polls of long-running \
         operations — which this in-process drill skips ahead in virtual time)\n",
        r.wall_secs
    ));
    s
}

/// "ARM calls during the failover: N" and one line per operation.
fn render_arm_calls(calls: &BTreeMap<String, u64>) -> String {
    let total: u64 = calls.values().sum();
    let mut s = format!("ARM calls during the failover: {total}\n");
    for (op, n) in calls {
        s.push_str(&format!("  {n:>5}  {op}\n"));
    }
    s
}

/// The short readable report.
pub fn render(r: &DrillReport) -> String {
    let mut s = String::new();
    let run = &r.run;
    s.push_str(&format!(
        "datashare-dr drill — pair {} ({})\n\n",
        r.pair, r.estate
    ));
    s.push_str(&format!(
        "  replicate        {} change(s) applied to the secondary\n",
        r.replicated_changes
    ));
    s.push_str(&format!("  readiness        {}\n", r.readiness_before));
    s.push_str(&format!(
        "  roster           {} consumer invitation(s)/subscription(s) recorded\n",
        r.roster_consumers
    ));
    s.push_str(&format!(
        "  outage           region {} taken down\n",
        r.primary_region_down
    ));
    s.push_str(&format!("  alert            {}\n\n", r.alert_decision));
    s.push_str(&super::cli::render_run(run));
    if run.rto_secs.is_none() {
        s.push_str("RTO: n/a (the run did not complete)\n");
    }
    s.push_str(&render_arm_calls(&r.arm_calls));
    s.push_str(&format!(
        "notifications queued: {}\nwall time: {:.2} s\n",
        r.notifications, r.wall_secs
    ));
    s
}
