//! `ReplicateConfig` (timer, `%REPLICATE_SCHEDULE%`): reconcile every pair of the DR config —
//! observe primary and secondary, plan, apply (pruning per the pair's `prune` policy).
//!
//! Also home of the one replicate pass both replicate functions share ([`run_pass`]):
//! pairs one after the other (the ARM client bounds concurrency inside a pair, and a sequential
//! walk keeps one pair from starving another's write bucket), one structured event per pair
//! (`event = "replicate.pair"` with created/updated/deleted/failed/skipped/findings counts and the
//! ARM calls it cost), and the classification of what went wrong.
//!
//! Failure policy of the timer:
//! - a pair whose observation failed with a transient ARM error (429/5xx/transport after the
//!   client's own retries, a regional outage) → [`HandlerError::Transient`] once every pair has
//!   been tried: the invocation answers 500, so the host's retry policy for this function
//!   (`retry` in its function.json) runs it again. Safe: the reconcile is level-triggered and
//!   idempotent (PUTs are upserts, invitations are never duplicated), so pairs already in sync
//!   cost only list reads;
//! - anything else (a change ARM refused, a primary account that does not exist) is a partial
//!   result: the invocation succeeds, the failures are in the events, in `Logs` and in the
//!   `ReturnValue` (`status: "partial"` or `"failed"`), and the next tick tries again.
//!
//! After a pass, [`record_rosters`] stores each observed pair's consumer roster
//! (`rosters/{pair}.json`) for failovers that find the primary down (best effort, in `Logs`).
//! In a consumer-role config (no `[[pairs]]`), the timer instead records a snapshot of each
//! `[[subscriptions]]` primary share subscription (`consumer-snapshots/{name}.json`).
//!
//! The ARM client is the process-wide one from [`AppState::arm`] (built once, lazily).
//! Must not import: axum, `serde_json::Value` (handlers speak typed triggers only).

use std::time::Instant;

use serde::Serialize;
use time::OffsetDateTime;

use crate::arm::client::ArmClient;
use crate::arm::error::ArmError;
use crate::config::dr::Pair;
use crate::failover::exec::{roster_of, save_roster};
use crate::failover::run::RosterEntry;
use crate::host::{InvocationResponse, OutputValue, QueueMessage, TimerTrigger};
use crate::reconcile::guard::{Deletes, GuardedOptions, replicate_guarded};
use crate::reconcile::job::{self, JobCounts, JobPair, PairStatus};
use crate::reconcile::observe::ObserveError;
use crate::reconcile::plan::Action;
use crate::reconcile::report::{Outcome, PairReport, ReplicateReport, ReplicateSummary};
use crate::startup::AppState;
use crate::store::BlobStore;

use super::{HandlerError, error_chain};

/// Function (folder) name.
pub const NAME: &str = "ReplicateConfig";

/// At most this many failed changes are listed one per line in `Logs` (all are in the events).
const MAX_FAILURE_LINES: usize = 20;

/// How a replicate pass ended (the `status` field of both functions' answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PassStatus {
    /// Every pair was observed and every planned change applied (or planned, for a dry run).
    Succeeded,
    /// Some pair could not be observed, or some change failed or was skipped.
    Partial,
    /// No pair could be observed, or every attempted change failed.
    Failed,
}

impl PassStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PassStatus::Succeeded => "succeeded",
            PassStatus::Partial => "partial",
            PassStatus::Failed => "failed",
        }
    }
}

/// What one pass over the selected pairs did.
#[derive(Debug)]
pub struct Pass {
    /// Per pair: the plan, the results, the observation error (as text), ARM calls.
    pub report: ReplicateReport,
    /// Pairs whose observation failed with an error that retrying may fix.
    pub transient: Vec<(String, ObserveError)>,
    /// Per observed pair (not in dry runs): the consumer roster of the primary, taken from the
    /// pass's own observation for [`record_rosters`].
    pub rosters: Vec<(String, Vec<RosterEntry>)>,
    /// Pairs the time budget cut off or left unstarted (their reports say so in `error`).
    pub unfinished: Vec<String>,
}

impl Pass {
    pub fn status(&self) -> PassStatus {
        status_of(&self.report)
    }
}

/// [`PassStatus`] of a report.
pub fn status_of(report: &ReplicateReport) -> PassStatus {
    if report.is_complete() {
        return PassStatus::Succeeded;
    }
    let s = report.summary();
    let observed = report.pairs.iter().any(|p| p.error.is_none());
    let attempted = s.succeeded + s.failed;
    if !observed || (attempted > 0 && s.succeeded == 0) {
        PassStatus::Failed
    } else {
        PassStatus::Partial
    }
}

/// Counts of one pair's outcome, for its event and log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairCounts {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub failed: usize,
    pub skipped: usize,
    pub findings: usize,
    /// Planned changes (a replace counts once).
    pub planned: usize,
}

impl PairCounts {
    pub fn of(report: &PairReport) -> PairCounts {
        let mut c = PairCounts {
            findings: report.plan.findings.len(),
            planned: report.plan.changes.len(),
            ..PairCounts::default()
        };
        for r in &report.results {
            match r.outcome {
                Outcome::Ok => match r.change.action() {
                    Action::Create => c.created += 1,
                    Action::Update => c.updated += 1,
                    Action::Delete => c.deleted += 1,
                    Action::Replace => {
                        c.created += 1;
                        c.deleted += 1;
                    }
                },
                Outcome::Failed => c.failed += 1,
                Outcome::Skipped => c.skipped += 1,
            }
        }
        c
    }
}

/// True when retrying may fix the observation error (the ARM client already retried).
fn observe_is_transient(e: &ObserveError) -> bool {
    e.arm().is_some_and(ArmError::is_transient)
}

/// The job record's view of one pair's report ([`crate::reconcile::job`]): its status and
/// counts. `out_of_time` pairs are `queued` again (the caller re-enqueues them).
pub fn job_pair(report: &PairReport, out_of_time: bool, rounds: u32) -> JobPair {
    let c = PairCounts::of(report);
    let status = if out_of_time {
        PairStatus::Queued
    } else if report.paused {
        PairStatus::Paused
    } else {
        match status_of(&ReplicateReport {
            pairs: vec![report.clone()],
        }) {
            PassStatus::Succeeded => PairStatus::Succeeded,
            PassStatus::Partial => PairStatus::Partial,
            PassStatus::Failed => PairStatus::Failed,
        }
    };
    JobPair {
        pair: report.pair.clone(),
        status,
        rounds,
        counts: (!out_of_time && report.error.is_none()).then_some(JobCounts {
            planned: c.planned,
            created: c.created,
            updated: c.updated,
            deleted: c.deleted,
            failed: c.failed,
            skipped: c.skipped,
            findings: c.findings,
        }),
        error: if out_of_time {
            None
        } else {
            report.error.clone()
        },
        reason: report.reason.clone(),
        updated_at: OffsetDateTime::now_utc(),
    }
}

/// One replicate pass: for each of `pairs`, the guarded pass of
/// [`replicate_guarded`](crate::reconcile::guard::replicate_guarded) — read the pair state
/// (a pair that is not `normal` is paused: nothing observed, nothing written), take the pair's
/// replicate lease, observe → plan (deletes limited by the prune policy) → apply (unless
/// `dry_run`) — one `replicate.pair` event per pair. `show_prune`: a dry run shows deletes (as
/// refused where the policy says so). `deadline`: the pass's time budget (pairs cut off or not
/// started are in [`Pass::unfinished`]). Never fails: errors are in the [`Pass`].
#[allow(clippy::too_many_arguments)]
pub async fn run_pass(
    client: &ArmClient,
    store: Option<&dyn BlobStore>,
    pairs: &[&Pair],
    dry_run: bool,
    show_prune: bool,
    concurrency: usize,
    trigger: &'static str,
    deadline: Option<tokio::time::Instant>,
) -> Pass {
    let now = OffsetDateTime::now_utc();
    let concurrency = concurrency.max(1);
    let mut pass = Pass {
        report: ReplicateReport::default(),
        transient: Vec::new(),
        rosters: Vec::new(),
        unfinished: Vec::new(),
    };
    let holder = format!("{trigger}:{}", uuid::Uuid::new_v4());
    for pair in pairs {
        let started = Instant::now();
        let opts = GuardedOptions {
            dry_run,
            show_prune,
            deletes: Deletes::Apply,
            concurrency,
            now,
            deadline,
        };
        let g = replicate_guarded(client, pair, store, &holder, &opts, &|_, _| {}).await;
        if g.out_of_time {
            pass.unfinished.push(pair.name.clone());
        }
        if let Some(e) = g.observe_error
            && observe_is_transient(&e)
        {
            pass.transient.push((pair.name.clone(), e));
        }
        if !dry_run && let Some(primary) = &g.primary {
            pass.rosters.push((pair.name.clone(), roster_of(primary)));
        }
        log_pair(&g.report, trigger, started);
        pass.report.pairs.push(g.report);
    }
    pass
}

/// After a pass: records the consumer roster (`rosters/{pair}.json`) of every pair the pass
/// observed — from that observation, no second read of the primary — so a failover that finds
/// the primary down still knows whom to invite on the secondary. Pairs that could not be
/// observed (a primary that is down or missing fails the pass) keep their last roster. Best
/// effort: a failure is logged and returned as a `Logs` line; the replicate result stands and
/// the next pass records it again.
pub async fn record_rosters(state: &AppState, pass: &Pass) -> Vec<String> {
    if pass.rosters.is_empty() {
        return Vec::new();
    }
    let storage = match state.storage().await {
        Ok(s) => s,
        Err(e) => {
            let text = error_chain(&e);
            tracing::warn!(event = "replicate.roster-failed", error = %text, "consumer rosters not recorded");
            return vec![format!("consumer rosters not recorded: {text}")];
        }
    };
    let mut lines = Vec::new();
    for (pair, roster) in &pass.rosters {
        let now = OffsetDateTime::now_utc();
        match save_roster(storage.blobs.as_ref(), pair, roster, now).await {
            Ok(()) => lines.push(format!(
                "pair {pair}: roster of {} consumer(s) recorded",
                roster.len()
            )),
            Err(e) => {
                let text = error_chain(&e);
                tracing::warn!(event = "replicate.roster-failed", pair = %pair, error = %text, "consumer roster not recorded");
                lines.push(format!("pair {pair}: roster not recorded: {text}"));
            }
        }
    }
    lines
}

/// The one structured event per pair (Application Insights reads it from stdout).
fn log_pair(report: &PairReport, trigger: &'static str, started: Instant) {
    let c = PairCounts::of(report);
    let calls = report.arm_calls.unwrap_or_default();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let single = ReplicateReport {
        pairs: vec![report.clone()],
    };
    let status = status_of(&single).as_str();
    if report.paused {
        tracing::info!(
            event = "replicate.pair",
            trigger,
            pair = %report.pair,
            status,
            paused = true,
            phase = report.state.as_ref().map_or("", |s| s.phase.as_str()),
            arm_writes = calls.writes,
            elapsed_ms,
            "{}",
            report.reason.as_deref().unwrap_or("replication paused")
        );
        return;
    }
    match &report.error {
        Some(error) => tracing::warn!(
            event = "replicate.pair",
            trigger,
            pair = %report.pair,
            status,
            dry_run = report.dry_run,
            error = %error,
            arm_reads = calls.reads,
            elapsed_ms,
            "pair {} could not be observed",
            report.pair
        ),
        None => {
            for r in report
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Failed)
            {
                tracing::warn!(
                    event = "replicate.change-failed",
                    trigger,
                    pair = %report.pair,
                    change = %r.change.address(),
                    error = r.error.as_deref().unwrap_or(""),
                    correlation_id = r.correlation_id.as_deref().unwrap_or(""),
                    "change failed"
                );
            }
            tracing::info!(
                event = "replicate.pair",
                trigger,
                pair = %report.pair,
                status,
                dry_run = report.dry_run,
                planned = c.planned,
                created = c.created,
                updated = c.updated,
                deleted = c.deleted,
                failed = c.failed,
                skipped = c.skipped,
                findings = c.findings,
                secondary_exists = report.secondary_exists,
                arm_reads = calls.reads,
                arm_writes = calls.writes,
                arm_deletes = calls.deletes,
                elapsed_ms,
                "pair {} replicated",
                report.pair
            );
        }
    }
}

/// One failed or skipped change in the timer's return value.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FailedChange<'a> {
    pair: &'a str,
    change: String,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
}

/// The timer's `ReturnValue`: compact (no per-change list of what succeeded).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TimerResult<'a> {
    status: PassStatus,
    summary: ReplicateSummary,
    pairs: &'a [PairReport],
    failures: Vec<FailedChange<'a>>,
}

fn timer_result(report: &ReplicateReport) -> TimerResult<'_> {
    let failures = report
        .pairs
        .iter()
        .flat_map(|p| {
            p.results
                .iter()
                .filter(|r| r.outcome != Outcome::Ok)
                .map(|r| FailedChange {
                    pair: &p.pair,
                    change: r.change.address(),
                    outcome: r.outcome,
                    error: r.error.as_deref(),
                    correlation_id: r.correlation_id.as_deref(),
                })
        })
        .collect();
    TimerResult {
        status: status_of(report),
        summary: report.summary(),
        pairs: &report.pairs,
        failures,
    }
}

/// `Logs` lines: one per pair, then the failed changes (bounded).
fn log_lines(report: &ReplicateReport) -> Vec<String> {
    let mut lines = Vec::new();
    for p in &report.pairs {
        if p.paused {
            lines.push(
                p.reason
                    .clone()
                    .unwrap_or_else(|| format!("pair {}: replication paused", p.pair)),
            );
            continue;
        }
        match &p.error {
            Some(e) => lines.push(format!("pair {}: not observed: {e}", p.pair)),
            None => {
                let c = PairCounts::of(p);
                lines.push(format!(
                    "pair {}: {} created, {} updated, {} deleted, {} failed, {} skipped, {} findings",
                    p.pair, c.created, c.updated, c.deleted, c.failed, c.skipped, c.findings
                ));
            }
        }
    }
    let failed: Vec<String> = report
        .pairs
        .iter()
        .flat_map(|p| {
            p.results
                .iter()
                .filter(|r| r.outcome == Outcome::Failed)
                .map(|r| {
                    format!(
                        "pair {}: FAILED {}: {}",
                        p.pair,
                        r.change.address(),
                        r.error.as_deref().unwrap_or("unknown error")
                    )
                })
        })
        .collect();
    let more = failed.len().saturating_sub(MAX_FAILURE_LINES);
    lines.extend(failed.into_iter().take(MAX_FAILURE_LINES));
    if more > 0 {
        lines.push(format!("… and {more} more failed changes (see the events)"));
    }
    lines
}

pub async fn handle(
    state: &AppState,
    trigger: TimerTrigger,
) -> Result<InvocationResponse, HandlerError> {
    let dr = state.dr()?;
    if trigger.is_past_due {
        tracing::info!(
            event = "replicate.past-due",
            "ReplicateConfig runs late (past due)"
        );
    }
    let pairs: Vec<&Pair> = dr.pairs.iter().collect();
    if pairs.is_empty() {
        let mut response = InvocationResponse::new().log(format!(
            "{NAME}: {} has no [[pairs]] (a consumer-role config); nothing to replicate",
            dr.source
        ));
        // The consumer role's part of the timer: keep the primary snapshots fresh, so a
        // failover with the primary region down still knows the sinks and the schedule.
        for line in record_consumer_snapshots(state, dr).await? {
            response = response.log(line);
        }
        return Ok(response);
    }
    let client = state.arm().await?;
    let storage = state.storage().await?;
    let deadline = tokio::time::Instant::now() + state.budgets.pass;
    // Resume a pass an earlier tick could not finish: skip the pairs it has done.
    let cursor = match job::load_cursor(storage.blobs.as_ref(), NAME).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(event = "replicate.cursor-unreadable", error = %e, "the replicate cursor cannot be read; this tick passes over every pair");
            None
        }
    };
    let skipped: Vec<String> = cursor.as_ref().map_or_else(Vec::new, |c| c.done.clone());
    let pairs: Vec<&Pair> = pairs
        .into_iter()
        .filter(|p| !skipped.contains(&p.name))
        .collect();
    let pass = run_pass(
        client,
        Some(storage.blobs.as_ref()),
        &pairs,
        false,
        false,
        dr.arm.max_concurrency,
        NAME,
        Some(deadline),
    )
    .await;
    let roster_lines = record_rosters(state, &pass).await;
    let cursor_line = advance_cursor(storage.blobs.as_ref(), cursor, skipped, &pass).await;

    if let Some((first, error)) = pass.transient.into_iter().next() {
        let pairs_failed: Vec<&str> = pass
            .report
            .pairs
            .iter()
            .filter(|p| p.error.is_some())
            .map(|p| p.pair.as_str())
            .collect();
        return Err(HandlerError::transient(
            format!(
                "replicate pair {first} (pairs not observed: {})",
                pairs_failed.join(", ")
            ),
            error,
        ));
    }

    let result = timer_result(&pass.report);
    let mut response = InvocationResponse::new();
    for line in log_lines(&pass.report)
        .into_iter()
        .chain(roster_lines)
        .chain(cursor_line)
    {
        response = response.log(line);
    }
    Ok(response.with_return_value(OutputValue::Value(QueueMessage::json(&result)?)))
}

/// After a tick: a pass that ran out of budget records the pairs done so far (those of the
/// earlier ticks of the same pass, `skipped`, and this tick's finished ones) so the next tick
/// resumes after them; a pass that reached its end deletes the cursor. Best effort: a failure is
/// logged (the next tick then passes over every pair again, which is safe, only slower).
async fn advance_cursor(
    store: &dyn BlobStore,
    cursor: Option<job::Cursor>,
    skipped: Vec<String>,
    pass: &Pass,
) -> Option<String> {
    if pass.unfinished.is_empty() {
        cursor.as_ref()?;
        return match job::clear_cursor(store, NAME).await {
            Ok(()) => Some(format!(
                "the replicate pass resumed after {} pair(s) done by earlier ticks reached its end",
                skipped.len()
            )),
            Err(e) => {
                tracing::warn!(event = "replicate.cursor-failed", error = %e, "the replicate cursor could not be cleared");
                Some(format!("the replicate cursor could not be cleared: {e}"))
            }
        };
    }
    let mut done = skipped;
    done.extend(
        pass.report
            .pairs
            .iter()
            .filter(|p| !pass.unfinished.contains(&p.pair))
            .map(|p| p.pair.clone()),
    );
    let next = job::Cursor {
        started_at: cursor
            .as_ref()
            .map_or_else(OffsetDateTime::now_utc, |c| c.started_at),
        ticks: cursor.as_ref().map_or(0, |c| c.ticks) + 1,
        done,
    };
    tracing::warn!(
        event = "replicate.budget-exhausted",
        done = next.done.len(),
        unfinished = pass.unfinished.len(),
        "the replicate pass ran out of its time budget; the next tick resumes after the pairs done"
    );
    match job::save_cursor(store, NAME, &next).await {
        Ok(()) => Some(format!(
            "time budget exhausted: {} pair(s) done in this pass, {} left for the next tick ({})",
            next.done.len(),
            pass.unfinished.len(),
            pass.unfinished.join(", ")
        )),
        Err(e) => {
            tracing::warn!(event = "replicate.cursor-failed", error = %e, "the replicate cursor could not be saved");
            Some(format!("the replicate cursor could not be saved: {e}"))
        }
    }
}

/// Consumer role: reads every `[[subscriptions]]` primary share subscription and stores it as
/// `consumer-snapshots/{name}.json` (`failover::consumer::capture_primary`). Best effort, one
/// log line per subscription: a primary that does not answer leaves the last snapshot as it is
/// (a failover then works from it) and is logged as a warning, not retried.
async fn record_consumer_snapshots(
    state: &AppState,
    dr: &crate::config::dr::DrConfig,
) -> Result<Vec<String>, HandlerError> {
    if dr.subscriptions.is_empty() {
        return Ok(Vec::new());
    }
    let client = state.arm().await?;
    let storage = state.storage().await?;
    let now = OffsetDateTime::now_utc();
    let mut lines = Vec::new();
    for sub in &dr.subscriptions {
        match crate::failover::consumer::capture_primary(client, storage.blobs.as_ref(), sub, now)
            .await
        {
            Ok(snap) => {
                tracing::info!(
                    event = "consumer.snapshot",
                    subscription = %sub.name,
                    mappings = snap.mappings.len(),
                    "primary share subscription snapshot recorded"
                );
                lines.push(format!(
                    "subscription {}: primary snapshot recorded ({} dataset mapping(s))",
                    sub.name,
                    snap.mappings.len()
                ));
            }
            Err(e) => {
                let text = crate::failover::error_text(&e);
                tracing::warn!(event = "consumer.snapshot-failed", subscription = %sub.name, error = %text, "primary snapshot not recorded; the last one is kept");
                lines.push(format!(
                    "subscription {}: primary snapshot not recorded (the last one is kept): {text}",
                    sub.name
                ));
            }
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::model::Name;
    use crate::reconcile::plan::{Change, Plan};
    use crate::reconcile::report::ChangeResult;

    fn change() -> Change {
        Change::DeleteShare {
            share: Name::from("s1"),
        }
    }

    fn pair(name: &str, error: Option<&str>, outcomes: &[Outcome]) -> PairReport {
        let results: Vec<ChangeResult> = outcomes
            .iter()
            .map(|o| ChangeResult {
                change: change(),
                outcome: *o,
                error: (*o != Outcome::Ok).then(|| "boom".to_owned()),
                correlation_id: None,
                pending: None,
            })
            .collect();
        PairReport {
            pair: name.to_owned(),
            primary: "p".into(),
            secondary: "s".into(),
            dry_run: false,
            secondary_exists: true,
            error: error.map(str::to_owned),
            plan: Plan {
                changes: results.iter().map(|r| r.change.clone()).collect(),
                findings: Vec::new(),
            },
            results,
            arm_calls: None,
            paused: false,
            state: None,
            reason: None,
            deletes_held: 0,
        }
    }

    fn report(pairs: Vec<PairReport>) -> ReplicateReport {
        ReplicateReport { pairs }
    }

    #[test]
    fn a_pass_where_everything_applied_succeeded() {
        let r = report(vec![pair("a", None, &[Outcome::Ok, Outcome::Ok])]);
        assert_eq!(status_of(&r), PassStatus::Succeeded);
        assert_eq!(
            status_of(&report(vec![pair("a", None, &[])])),
            PassStatus::Succeeded
        );
    }

    #[test]
    fn a_failed_change_among_applied_ones_is_partial() {
        let r = report(vec![pair(
            "a",
            None,
            &[Outcome::Ok, Outcome::Failed, Outcome::Skipped],
        )]);
        assert_eq!(status_of(&r), PassStatus::Partial);
    }

    #[test]
    fn one_unobserved_pair_next_to_a_good_one_is_partial() {
        let r = report(vec![
            pair("a", None, &[Outcome::Ok]),
            pair("b", Some("primary down"), &[]),
        ]);
        assert_eq!(status_of(&r), PassStatus::Partial);
    }

    #[test]
    fn no_observed_pair_or_only_failed_changes_is_failed() {
        assert_eq!(
            status_of(&report(vec![pair("a", Some("down"), &[])])),
            PassStatus::Failed
        );
        assert_eq!(
            status_of(&report(vec![pair("a", None, &[Outcome::Failed])])),
            PassStatus::Failed
        );
    }

    #[test]
    fn counts_split_applied_changes_by_action_and_outcome() {
        let p = pair("a", None, &[Outcome::Ok, Outcome::Failed, Outcome::Skipped]);
        let c = PairCounts::of(&p);
        assert_eq!(
            c,
            PairCounts {
                created: 0,
                updated: 0,
                deleted: 1,
                failed: 1,
                skipped: 1,
                findings: 0,
                planned: 3,
            }
        );
    }

    #[test]
    fn the_log_lines_name_every_pair_and_bound_the_failed_changes() {
        let many = vec![Outcome::Failed; MAX_FAILURE_LINES + 5];
        let r = report(vec![pair("a", None, &many), pair("b", Some("gone"), &[])]);
        let lines = log_lines(&r);
        assert!(lines[0].starts_with("pair a: 0 created"), "{lines:?}");
        assert_eq!(lines[1], "pair b: not observed: gone");
        assert_eq!(lines.len(), 2 + MAX_FAILURE_LINES + 1);
        assert!(lines.last().is_some_and(|l| l.contains("5 more")));
    }

    #[test]
    fn the_timer_result_lists_only_changes_that_did_not_apply() {
        let r = report(vec![pair("a", None, &[Outcome::Ok, Outcome::Failed])]);
        let v = serde_json::to_value(timer_result(&r)).expect("serialises");
        assert_eq!(v["status"], "partial");
        assert_eq!(v["summary"]["failed"], 1);
        assert_eq!(v["failures"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["failures"][0]["outcome"], "failed");
        assert_eq!(v["failures"][0]["pair"], "a");
        assert_eq!(v["pairs"][0]["pair"], "a");
    }
}
