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
use super::run::{RunRecord, RunStatus, StageRecord};
use super::runner::{RunnerOptions, Stopped, drive, in_process};
use super::start::{AlertAnswer, RtoStart, ingest_alert, rto_start};

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
    /// How long each stage took on the run's clock (first start to last end, waits included).
    pub stage_durations: Vec<StageDuration>,
    /// Where the RTO is measured from (the alert's event time, else its fire time).
    pub rto_measured_from: RtoStart,
    /// What a person must do now that the run is over.
    pub actions: Actions,
    /// ARM calls of the failover run, by operation (from the simulator's counters).
    pub arm_calls: BTreeMap<String, u64>,
    pub notifications: usize,
    pub wall_secs: f64,
}

/// One stage's duration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageDuration {
    pub stage: String,
    pub status: String,
    /// `None` when the stage never ran (pending, cancelled before it started).
    pub secs: Option<f64>,
}

/// Durations of the stages of `run`, in run order.
pub fn stage_durations(run: &RunRecord) -> Vec<StageDuration> {
    run.stages.iter().map(stage_duration).collect()
}

fn stage_duration(st: &StageRecord) -> StageDuration {
    StageDuration {
        stage: st.stage.as_str().to_string(),
        status: status_text(st),
        secs: match (st.started_at, st.ended_at) {
            (Some(a), Some(b)) => Some((b - a).as_seconds_f64().max(0.0)),
            _ => None,
        },
    }
}

fn status_text(st: &StageRecord) -> String {
    serde_json::to_value(st.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn fmt_duration(secs: Option<f64>) -> String {
    match secs {
        Some(s) => format!("{s:.2} s"),
        None => "—".to_string(),
    }
}

/// A pending invitation on the secondary: its consumer must accept it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingInvitation {
    pub share: String,
    /// E-mail, or `tenant:<tid>/object:<oid>`.
    pub consumer: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
}

/// "What a person must do now": the facts behind each step, and the steps as sentences.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Actions {
    /// Invitations on the secondary still pending after the run (read from the secondary).
    pub pending_invitations: Vec<PendingInvitation>,
    /// Changes `final-sync-skipped` could not carry: made on the primary after this time (the
    /// last replicate pass) and before the outage; `None` when final-sync ran.
    #[serde(with = "time::serde::rfc3339::option")]
    pub uncarried_changes_since: Option<OffsetDateTime>,
    /// Each step, one sentence (the readable report prints these).
    pub steps: Vec<String>,
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
    /// When that pass ended (the last replicate pass before the outage).
    replicated_at: OffsetDateTime,
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
        replicated_at: OffsetDateTime::now_utc(),
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
        replicated_at,
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
    let received = clock.now();
    let answer = ingest_alert(store.as_ref(), &queue, &cfg, &body, received)
        .await
        .context("alert webhook path")?;
    let rto_from = alert_rto_start(&body, received)?;
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
    // After the run (and after counting its ARM calls): what is left for people.
    let pending = pending_invitations(&arm, &pair.secondary).await?;
    let actions = provider_actions(&run, pending, replicated_at, &pair.name);
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
        stage_durations: stage_durations(&run),
        rto_measured_from: rto_from,
        actions,
        run,
        arm_calls,
        notifications,
        wall_secs: wall.elapsed().as_secs_f64(),
    })
}

/// Where the RTO of the run `body` started is measured from (the rule `ingest_alert` applied).
fn alert_rto_start(body: &[u8], received: OffsetDateTime) -> anyhow::Result<RtoStart> {
    let alert = super::alert::parse_alert(body).map_err(|e| anyhow!("the drill's alert: {e}"))?;
    Ok(rto_start(&alert, received))
}

/// Invitations still pending on the `secondary` account (one list per share).
async fn pending_invitations(
    arm: &crate::arm::client::ArmClient,
    secondary: &crate::arm::id::AccountId,
) -> anyhow::Result<Vec<PendingInvitation>> {
    let mut out = Vec::new();
    for share in arm
        .list_shares(secondary)
        .await
        .context("list the secondary's shares")?
    {
        let Some(name) = share.name() else { continue };
        let id = secondary
            .share(name)
            .map_err(|e| anyhow!("share id {name}: {e}"))?;
        for inv in arm
            .list_invitations(&id)
            .await
            .with_context(|| format!("list the invitations of share {name}"))?
        {
            let p = &inv.properties;
            let pending = p
                .invitation_status
                .as_ref()
                .is_some_and(|s| s.as_str() == "Pending");
            if !pending {
                continue;
            }
            let consumer = match (
                &p.target_email,
                &p.target_active_directory_id,
                &p.target_object_id,
            ) {
                (Some(e), _, _) => e.clone(),
                (None, Some(t), Some(o)) => format!("tenant:{t}/object:{o}"),
                _ => inv.name().unwrap_or("?").to_string(),
            };
            out.push(PendingInvitation {
                share: name.to_string(),
                consumer,
                expires: p.expiration_date,
            });
        }
    }
    out.sort_by(|a, b| (&a.consumer, &a.share).cmp(&(&b.consumer, &b.share)));
    Ok(out)
}

/// The provider drill's "what a person must do now".
fn provider_actions(
    run: &RunRecord,
    pending: Vec<PendingInvitation>,
    replicated_at: OffsetDateTime,
    pair: &str,
) -> Actions {
    let mut steps = Vec::new();
    if run.status != RunStatus::Succeeded {
        steps.push(format!(
            "the run ended {}: read its error and findings (`datashare-dr failover status --config FILE {}`) before anything else",
            run.status.as_str(),
            run.run_id
        ));
    }
    let skipped = run.findings.iter().any(|f| f.code == "final-sync-skipped");
    let since = skipped.then_some(replicated_at);
    if let Some(at) = since {
        steps.push(format!(
            "final-sync was skipped: changes made on the primary after the last replicate pass \
             ({}) are not on the secondary. When the primary answers, list them with \
             `datashare-dr plan --config FILE --pair {pair}` (read-only) and make the ones \
             consumers need on the secondary by hand",
            rfc3339(at)
        ));
    }
    if !pending.is_empty() {
        let mut consumers: Vec<&str> = pending.iter().map(|p| p.consumer.as_str()).collect();
        consumers.dedup();
        steps.push(format!(
            "{} consumer(s) hold {} pending invitation(s) on the secondary: ask each to accept \
             it and map its data sets ({})",
            consumers.len(),
            pending.len(),
            consumers.join(", ")
        ));
    }
    for f in &run.findings {
        if f.severity == "Critical" {
            steps.push(format!("resolve {}: {}", f.code, f.message));
        }
    }
    Actions {
        pending_invitations: pending,
        uncarried_changes_since: since,
        steps,
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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
    /// One line per subscription's run (what the readable report's table shows).
    pub subscriptions: Vec<SubscriptionSummary>,
    /// The slowest run's duration of each stage, in stage order.
    pub stage_durations: Vec<StageDuration>,
    /// Totals over every run: the one summary the drill ends with.
    pub summary: ConsumerTotals,
    /// Where each run's RTO is measured from (the alert's event time, else its fire time).
    pub rto_measured_from: RtoStart,
    /// What a person must do now.
    pub actions: Actions,
    /// ARM calls of the failover runs, by operation.
    pub arm_calls: BTreeMap<String, u64>,
    pub wall_secs: f64,
}

/// One subscription's run, in one line.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSummary {
    pub subscription: String,
    pub run_id: String,
    pub status: String,
    /// The share subscription on the secondary account, when accepted (or found).
    pub share_subscription: Option<String>,
    pub mapped: u64,
    pub already_mapped: u64,
    pub without_sink: u64,
    pub triggers_created: u64,
    pub triggers_present: u64,
    /// Status of the first synchronization this run started.
    pub first_sync: Option<String>,
    pub rto_secs: Option<f64>,
    pub stage_durations: Vec<StageDuration>,
}

/// Totals over the consumer drill's runs.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerTotals {
    pub runs: usize,
    pub succeeded: usize,
    pub mapped: u64,
    pub without_sink: u64,
    pub triggers_created: u64,
    pub triggers_present: u64,
    pub max_rto_secs: Option<f64>,
}

fn stage_count(run: &RunRecord, stage: &str, key: &str) -> u64 {
    run.stages
        .iter()
        .find(|s| s.stage.as_str() == stage)
        .and_then(|s| s.counts.get(key).copied())
        .unwrap_or(0)
}

/// The one-line summary of a consumer run.
pub fn subscription_summary(run: &RunRecord) -> SubscriptionSummary {
    let consumer = run.consumer.as_ref();
    SubscriptionSummary {
        subscription: run.pair.clone(),
        run_id: run.run_id.clone(),
        status: run.status.as_str().to_string(),
        share_subscription: consumer.and_then(|c| c.share_subscription.clone()),
        mapped: stage_count(run, "map-datasets", "mapped"),
        already_mapped: stage_count(run, "map-datasets", "present"),
        without_sink: stage_count(run, "map-datasets", "unmapped"),
        triggers_created: stage_count(run, "create-triggers", "triggersCreated"),
        triggers_present: stage_count(run, "create-triggers", "triggersPresent"),
        first_sync: consumer
            .and_then(|c| c.first_sync.as_ref())
            .and_then(|f| f.status.clone()),
        rto_secs: run.rto_secs,
        stage_durations: stage_durations(run),
    }
}

/// Per stage (in the order the runs list them), the slowest run's duration.
fn slowest_stages(subs: &[SubscriptionSummary]) -> Vec<StageDuration> {
    let mut out: Vec<StageDuration> = Vec::new();
    for d in subs.iter().flat_map(|s| &s.stage_durations) {
        match out.iter_mut().find(|o| o.stage == d.stage) {
            Some(o) => {
                if d.secs > o.secs {
                    o.secs = d.secs;
                }
                if o.status != d.status {
                    o.status = "mixed".into();
                }
            }
            None => out.push(d.clone()),
        }
    }
    out
}

fn consumer_totals(subs: &[SubscriptionSummary]) -> ConsumerTotals {
    ConsumerTotals {
        runs: subs.len(),
        succeeded: subs.iter().filter(|s| s.status == "succeeded").count(),
        mapped: subs.iter().map(|s| s.mapped).sum(),
        without_sink: subs.iter().map(|s| s.without_sink).sum(),
        triggers_created: subs.iter().map(|s| s.triggers_created).sum(),
        triggers_present: subs.iter().map(|s| s.triggers_present).sum(),
        max_rto_secs: subs.iter().filter_map(|s| s.rto_secs).reduce(f64::max),
    }
}

/// The consumer drill's "what a person must do now".
fn consumer_actions(runs: &[RunRecord], subs: &[SubscriptionSummary]) -> Actions {
    let mut steps = Vec::new();
    for s in subs.iter().filter(|s| s.status != "succeeded") {
        steps.push(format!(
            "run {} for subscription {} ended {}: read it with \
             `datashare-dr failover status --config FILE {}`",
            s.run_id, s.subscription, s.status, s.run_id
        ));
    }
    for s in subs.iter().filter(|s| s.without_sink > 0) {
        steps.push(format!(
            "{}: {} data set(s) have no secondary sink: map them by hand on the secondary share \
             subscription",
            s.subscription, s.without_sink
        ));
    }
    for run in runs {
        for f in run
            .findings
            .iter()
            .filter(|f| f.severity == "Warning" || f.severity == "Critical")
        {
            steps.push(format!("{}: {} — {}", run.pair, f.code, f.message));
        }
    }
    Actions {
        steps,
        ..Actions::default()
    }
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
    consumer_drill_with(spec, latency_ms, &mut |_| {}).await
}

/// [`consumer_drill`], handing the simulator to `before_shutdown` once the runs are over (tests
/// compare the report with the simulator's request log).
pub async fn consumer_drill_with(
    spec: PopulateSpec,
    latency_ms: u64,
    before_shutdown: &mut (dyn FnMut(&sim::SimHandle) + Send),
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
    let received = clock.now();
    let answer = ingest_alert(store.as_ref(), &queue, &cfg, &body, received)
        .await
        .context("alert webhook path")?;
    let rto_from = alert_rto_start(&body, received)?;
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
    before_shutdown(&sim);
    sim.shutdown().await;
    let subscriptions: Vec<SubscriptionSummary> = runs.iter().map(subscription_summary).collect();
    Ok(ConsumerDrillReport {
        stage_durations: slowest_stages(&subscriptions),
        summary: consumer_totals(&subscriptions),
        actions: consumer_actions(&runs, &subscriptions),
        rto_measured_from: rto_from,
        subscriptions,
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
    s.push_str(&format!(
        "  {:<14} {:<10} {:<20} {:>6} {:>9} {:>11} {:<11} {:>8}\n",
        "SUBSCRIPTION",
        "STATUS",
        "SHARE SUBSCRIPTION",
        "MAPPED",
        "NO SINK",
        "TRIGGERS",
        "FIRST SYNC",
        "RTO"
    ));
    for sub in &r.subscriptions {
        s.push_str(&format!(
            "  {:<14} {:<10} {:<20} {:>6} {:>9} {:>11} {:<11} {:>8}\n",
            sub.subscription,
            sub.status,
            sub.share_subscription
                .as_deref()
                .map(|id| id.rsplit('/').next().unwrap_or(id))
                .unwrap_or("—"),
            sub.mapped + sub.already_mapped,
            sub.without_sink,
            format!("{}+{}", sub.triggers_created, sub.triggers_present),
            sub.first_sync.as_deref().unwrap_or("—"),
            fmt_duration(sub.rto_secs),
        ));
    }
    s.push_str("  (TRIGGERS: created by the run + already present)\n\n");
    s.push_str(&format!(
        "stage durations (slowest of {} run(s), waits included):\n",
        r.subscriptions.len()
    ));
    for d in &r.stage_durations {
        s.push_str(&format!(
            "  {:<18} {:>8}  {}\n",
            d.stage,
            fmt_duration(d.secs),
            d.status
        ));
    }
    // Findings once: identical codes of several runs folded into one line.
    let mut folded: BTreeMap<(u8, String), (String, String, Vec<String>)> = BTreeMap::new();
    for run in &r.runs {
        for f in &run.findings {
            let rank = match f.severity.as_str() {
                "Critical" => 0,
                "Warning" => 1,
                _ => 2,
            };
            folded
                .entry((rank, f.code.clone()))
                .or_insert_with(|| (f.severity.clone(), f.message.clone(), Vec::new()))
                .2
                .push(run.pair.clone());
        }
    }
    if !folded.is_empty() {
        s.push_str("findings:\n");
        for ((_, code), (severity, message, subs)) in &folded {
            if subs.len() == 1 {
                s.push_str(&format!(
                    "  {severity:<8} {code:<26} {}: {message}\n",
                    subs[0]
                ));
            } else {
                s.push_str(&format!(
                    "  {severity:<8} {code:<26} {} runs ({}), e.g. {message}\n",
                    subs.len(),
                    subs.join(", ")
                ));
            }
        }
    }
    s.push('\n');
    s.push_str(&render_arm_calls(&r.arm_calls));
    s.push_str(&format!(
        "wall time: {:.2} s (RTO includes the stages' own waits — 1 s polls of long-running \
         operations — which this in-process drill skips ahead in virtual time)\n\n",
        r.wall_secs
    ));
    let t = &r.summary;
    s.push_str(&format!(
        "Summary: {} of {} run(s) succeeded; {} data set(s) mapped, {} without a secondary sink; \
         {} trigger(s) created, {} already present; RTO up to {}, each measured from {} to its \
         run's completion\n",
        t.succeeded,
        t.runs,
        t.mapped,
        t.without_sink,
        t.triggers_created,
        t.triggers_present,
        fmt_duration(t.max_rto_secs),
        r.rto_measured_from.describe()
    ));
    s.push_str(&render_actions(&r.actions.steps));
    s
}

/// The run: header, trigger, one line per stage with its duration, findings, error.
fn render_run_timed(run: &RunRecord) -> String {
    let mut s = format!(
        "run {} — {} of pair {}: {}\n",
        run.run_id,
        run.mode,
        run.pair,
        run.status.as_str()
    );
    s.push_str(&format!(
        "  trigger: {} ({})\n",
        run.trigger.kind, run.trigger.reason
    ));
    s.push_str("  stage              took      status     what it did\n");
    for st in &run.stages {
        s.push_str(&format!(
            "  {:<18} {:>8}  {:<10} {}\n",
            st.stage.as_str(),
            fmt_duration(stage_duration(st).secs),
            status_text(st),
            st.summary.as_deref().or(st.error.as_deref()).unwrap_or("")
        ));
    }
    if !run.findings.is_empty() {
        s.push_str("findings:\n");
        for f in &run.findings {
            s.push_str(&format!(
                "  {:<8} {:<22} {}\n",
                f.severity, f.code, f.message
            ));
        }
    }
    if let Some(e) = &run.error {
        s.push_str(&format!("error: {e}\n"));
    }
    s
}

/// "What a person must do now:" and one numbered line per step (or "nothing").
fn render_actions(steps: &[String]) -> String {
    let mut s = String::from("\nWhat a person must do now:\n");
    if steps.is_empty() {
        s.push_str("  nothing: no pending invitation, no change left behind, no failed step\n");
    }
    for (i, step) in steps.iter().enumerate() {
        s.push_str(&format!("  {}. {step}\n", i + 1));
    }
    s.push('\n');
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
    s.push_str(&render_run_timed(run));
    match run.rto_secs {
        Some(rto) => s.push_str(&format!(
            "RTO: {rto:.2} s, measured from {} to the run's completion\n",
            r.rto_measured_from.describe()
        )),
        None => s.push_str("RTO: n/a (the run did not complete)\n"),
    }
    s.push_str(&render_actions(&r.actions.steps));
    s.push_str(&render_arm_calls(&r.arm_calls));
    s.push_str(&format!(
        "notifications queued: {}\nwall time: {:.2} s\n",
        r.notifications, r.wall_secs
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn alert_at(
        event: Option<OffsetDateTime>,
        fired: Option<OffsetDateTime>,
    ) -> super::super::alert::Alert {
        let body = resource_health_alert(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataShare/accounts/a",
            "s",
            datetime!(2025-06-01 12:00 UTC),
        )
        .expect("alert");
        let mut alert = super::super::alert::parse_alert(&body).expect("parse");
        alert.event_time = event;
        alert.fired_at = fired;
        alert
    }

    /// RTO is measured from the alert's event time, else its fire time, else its receipt; a
    /// time in the future is not used.
    #[test]
    fn rto_starts_at_the_event_time_else_the_fire_time_else_the_receipt() {
        let now = datetime!(2025-06-01 12:10 UTC);
        let event = datetime!(2025-06-01 12:00 UTC);
        let fired = datetime!(2025-06-01 12:03 UTC);
        let r = rto_start(&alert_at(Some(event), Some(fired)), now);
        assert_eq!((r.at, r.source), (event, "event-time"));
        assert!(
            r.describe().contains("event time 2025-06-01T12:00:00Z"),
            "{}",
            r.describe()
        );
        let r = rto_start(&alert_at(None, Some(fired)), now);
        assert_eq!((r.at, r.source), (fired, "fire-time"));
        assert!(r.describe().contains("fire time"), "{}", r.describe());
        let r = rto_start(
            &alert_at(Some(now + time::Duration::hours(1)), Some(fired)),
            now,
        );
        assert_eq!(
            (r.at, r.source),
            (fired, "fire-time"),
            "a future event time is skew"
        );
        let r = rto_start(&alert_at(None, None), now);
        assert_eq!((r.at, r.source), (now, "receipt"));
    }
}
