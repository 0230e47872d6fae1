//! The guarded replicate pass every write path of replication goes through (the
//! `ReplicateConfig` timer, `ReplicateNow`, CLI `plan`/`replicate`): it reads the pair state
//! first, holds a short per-pair lease while it writes, re-reads the phase before each level of
//! writes, and keeps deletes inside the pair's prune policy.
//!
//! Guarantees (the worst-day invariants 1 and 5 of the architecture):
//! - A pair whose state is not `normal` is not observed and nothing is written: the report says
//!   `paused` with the state and the reason ([`PairPhase::paused_message`]).
//! - The pair's `prune` setting is a ceiling: under `report` a prune request that would write is
//!   refused ([`check_prune`]); under `delete` only resources this tool created on the account
//!   (the inventory in the pair state) are delete candidates; every other delete the diff
//!   proposes becomes a `delete-refused` finding ([`limit_deletes`]). Dry runs show those.
//! - Resources a pass creates are added to the inventory; resources it deletes are removed.
//! - Without a store (the CLI against the simulator, without storage settings) the state is
//!   unknown: the pass behaves as `normal` with an empty inventory (so it never deletes).
//!
//! Must not import: handlers, host, failover, readiness.

use time::OffsetDateTime;

use crate::arm::client::ArmClient;
use crate::config::dr::{Pair, PrunePolicy};
use crate::pair_state::{self, PairPhase, PhaseGate};
use crate::store::BlobStore;

use super::apply::{apply_gated, plan_pair};
use super::model::AccountModel;
use super::observe::{AccountObservation, ObserveError};
use super::plan::{Action, Change, Finding, FindingCode, Plan};
use super::report::{ArmCalls, Outcome, PairReport};
use super::schedule::Progress;

/// A prune request the pair's policy does not allow (CLI exit 64, HTTP 409).
#[derive(Debug, thiserror::Error)]
#[error(
    "pair {pair} has prune = \"report\" (report extra secondary items, never delete): the prune \
     request is refused and nothing was deleted; set prune = \"delete\" on the pair to let the \
     tool delete what it created"
)]
pub struct PruneRefused {
    pub pair: String,
}

/// Refuses a prune request that would write on a pair whose policy is `report`.
pub fn check_prune(pair: &Pair, requested: bool) -> Result<(), PruneRefused> {
    if requested && pair.prune == PrunePolicy::Report {
        return Err(PruneRefused {
            pair: pair.name.clone(),
        });
    }
    Ok(())
}

/// What to do with the deletes the policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletes {
    /// Apply them (the timer and `ReplicateNow` on `delete` pairs; CLI `--prune --yes`).
    Apply,
    /// Write nothing when there are any: list them (CLI without `--prune --yes`).
    HoldForConsent,
}

/// Options of [`replicate_guarded`].
#[derive(Debug, Clone, Copy)]
pub struct GuardedOptions {
    pub dry_run: bool,
    /// A dry run asked to show deletes (`plan --prune`, `dryRun` + `prune`): on a `report` pair
    /// they are shown as refused.
    pub show_prune: bool,
    pub deletes: Deletes,
    pub concurrency: usize,
    pub now: OffsetDateTime,
    /// The pass's time budget ends here (`None` = no budget: the CLI). A pair not finished by
    /// then is cut off — its observe/apply future is dropped, its lease released — and the
    /// result says [`Guarded::out_of_time`]; the next pass (level-triggered) observes afresh
    /// and applies what is left, so nothing is applied twice.
    pub deadline: Option<tokio::time::Instant>,
}

/// The outcome of one guarded pass over one pair.
pub struct Guarded {
    pub report: PairReport,
    /// The primary as observed (for the consumer roster), when the pass observed it.
    pub primary: Option<AccountModel>,
    /// The observation error, when observing failed (the caller classifies it).
    pub observe_error: Option<ObserveError>,
    /// The time budget ([`GuardedOptions::deadline`]) ran out before the pair was finished
    /// (or started): the report's `error` says so; the pair must be passed over again.
    pub out_of_time: bool,
}

/// The report `error` of a pair cut off by its time budget.
pub const OUT_OF_TIME: &str = "the pass's time budget ran out before this pair was finished";

fn delete_address(c: &Change) -> Option<String> {
    matches!(c.action(), Action::Delete).then(|| c.address())
}

/// Keeps only the deletes the policy allows: under `delete`, resources in the inventory of
/// `account`; every other delete becomes a `delete-refused` finding naming why.
pub fn limit_deletes(plan: Plan, pair: &Pair, account: &str, state: Option<&PairPhase>) -> Plan {
    let mut out = Plan {
        changes: Vec::with_capacity(plan.changes.len()),
        findings: plan.findings,
    };
    for c in plan.changes {
        let Some(address) = delete_address(&c) else {
            out.changes.push(c);
            continue;
        };
        let tool_made = state.is_some_and(|s| s.created_here(account, &address));
        if pair.prune == PrunePolicy::Delete && tool_made {
            out.changes.push(c);
            continue;
        }
        let why = if pair.prune == PrunePolicy::Report {
            "the pair's policy is prune = \"report\" (never delete)".to_owned()
        } else if state.is_none() {
            "the pair state is unknown (no storage settings), so nothing is known to be made by \
             this tool"
                .to_owned()
        } else {
            "it was not created by this tool (made by hand): reported, never deleted".to_owned()
        };
        out.findings.push(Finding::new(
            FindingCode::DeleteRefused,
            c.share().map(|s| s.as_str()),
            c.item()
                .map(|i| format!("{}/{i}", c.share().map(|s| s.as_str()).unwrap_or("")))
                .as_deref(),
            format!("{address} is not on the primary; not deleted: {why}"),
        ));
    }
    out.sorted()
}

/// Resources a result created (for the inventory) and deleted (to forget).
fn inventory_changes(report: &PairReport) -> (Vec<String>, Vec<String>) {
    let mut created = Vec::new();
    let mut deleted = Vec::new();
    for r in report.results.iter().filter(|r| r.outcome == Outcome::Ok) {
        match &r.change {
            Change::CreateShare { .. }
            | Change::CreateDataSet { .. }
            | Change::ReplaceDataSet { .. }
            | Change::CreateSyncSetting { .. }
            | Change::ReplaceSyncSetting { .. } => created.push(r.change.address()),
            Change::DeleteShare { .. }
            | Change::DeleteDataSet { .. }
            | Change::DeleteSyncSetting { .. } => deleted.push(r.change.address()),
            _ => {}
        }
    }
    (created, deleted)
}

/// Records a pass's creates and deletes in the pair's inventory (best effort: logged).
pub async fn record_inventory(
    store: &dyn BlobStore,
    pair: &str,
    account: &str,
    report: &PairReport,
    now: OffsetDateTime,
) {
    let (created, deleted) = inventory_changes(report);
    if let Err(e) = pair_state::record_created(store, pair, account, &created, now).await {
        tracing::warn!(pair, error = %e, "could not record the created resources in the pair state");
    }
    if let Err(e) = pair_state::forget_created(store, pair, account, &deleted).await {
        tracing::warn!(pair, error = %e, "could not remove deleted resources from the pair state");
    }
}

/// Observe and plan `pair` under its prune policy: deletes planned only under `delete`, and
/// only of resources in the inventory of `pair.secondary` ([`limit_deletes`]). What a run's
/// replicate stage and its dry run both use, so the dry run lists what the stage does.
pub async fn plan_limited(
    client: &ArmClient,
    pair: &Pair,
    state: Option<&PairPhase>,
    now: OffsetDateTime,
    concurrency: usize,
) -> Result<(super::observe::PairObservation, Plan), ObserveError> {
    let (obs, plan) = plan_pair(
        client,
        pair,
        pair.prune == PrunePolicy::Delete,
        now,
        concurrency,
    )
    .await?;
    Ok((
        obs,
        limit_deletes(plan, pair, pair.secondary.as_str(), state),
    ))
}

/// [`replicate`](super::apply::replicate) under the prune policy ([`plan_limited`]), for the
/// failover stages (which hold the run lock and have moved the pair state themselves).
pub async fn replicate_limited(
    client: &ArmClient,
    pair: &Pair,
    state: Option<&PairPhase>,
    opts: &super::apply::ReplicateOptions,
    progress: Progress<'_>,
) -> PairReport {
    let before = client.stats();
    let mut report = PairReport::new(
        &pair.name,
        pair.primary.as_str(),
        pair.secondary.as_str(),
        opts.dry_run,
    );
    match plan_limited(client, pair, state, opts.now, opts.concurrency).await {
        Err(e) => report.error = Some(chain(&e)),
        Ok((obs, plan)) => {
            report.secondary_exists = obs.secondary != AccountObservation::Missing;
            if !opts.dry_run {
                report.results = apply_gated(
                    client,
                    &pair.secondary,
                    &plan,
                    opts.concurrency,
                    progress,
                    None,
                )
                .await;
            }
            report.plan = plan;
        }
    }
    let after = client.stats();
    report.arm_calls = Some(ArmCalls {
        reads: after.reads.saturating_sub(before.reads),
        writes: after.writes.saturating_sub(before.writes),
        deletes: after.deletes.saturating_sub(before.deletes),
    });
    report
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// One guarded pass over `pair` (see the module docs). `store` is the run store holding
/// `pairs/{pair}.json`; `holder` names the pass in its lease.
pub async fn replicate_guarded(
    client: &ArmClient,
    pair: &Pair,
    store: Option<&dyn BlobStore>,
    holder: &str,
    opts: &GuardedOptions,
    progress: Progress<'_>,
) -> Guarded {
    let before = client.stats();
    let mut out = Guarded {
        report: PairReport::new(
            &pair.name,
            pair.primary.as_str(),
            pair.secondary.as_str(),
            opts.dry_run,
        ),
        primary: None,
        observe_error: None,
        out_of_time: false,
    };
    if opts
        .deadline
        .is_some_and(|d| tokio::time::Instant::now() >= d)
    {
        out.out_of_time = true;
        out.report.error = Some(format!("{OUT_OF_TIME} (not started)"));
        return out;
    }
    let state = match store {
        None => None,
        Some(st) => match pair_state::load(st, &pair.name).await {
            Ok((s, _)) => Some(s),
            Err(e) => {
                out.report.error = Some(format!(
                    "{}; nothing observed or written (replication never writes without knowing \
                     the pair's phase)",
                    chain(&e)
                ));
                return out;
            }
        },
    };
    if let Some(s) = &state {
        out.report.state = Some(s.view());
        if let Some(why) = s.paused_message() {
            tracing::info!(event = "replicate.paused", pair = %pair.name, phase = s.phase.as_str(), run_id = s.run_id.as_deref().unwrap_or(""), "{why}");
            out.report.paused = true;
            out.report.reason = Some(why);
            out.report.arm_calls = Some(ArmCalls::default());
            return out;
        }
    }
    let lease = match (store, opts.dry_run) {
        (Some(st), false) => {
            match pair_state::take_replicate_lease(st, &pair.name, holder, opts.now).await {
                Ok(Ok(l)) => Some(l),
                Ok(Err(since)) => {
                    let why = format!(
                        "another replicate pass holds pair {} (since {}); skipped",
                        pair.name,
                        since
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                    );
                    out.report.error = Some(why.clone());
                    out.report.reason = Some(why);
                    return out;
                }
                Err(e) => {
                    out.report.error = Some(chain(&e));
                    return out;
                }
            }
        }
        _ => None,
    };
    let prune = pair.prune == PrunePolicy::Delete || (opts.dry_run && opts.show_prune);
    let work = async {
        match plan_pair(client, pair, prune, opts.now, opts.concurrency).await {
            Err(e) => {
                out.report.error = Some(chain(&e));
                out.observe_error = Some(e);
            }
            Ok((obs, plan)) => {
                out.report.secondary_exists = obs.secondary != AccountObservation::Missing;
                out.primary = obs.primary.model().0;
                let plan = limit_deletes(plan, pair, pair.secondary.as_str(), state.as_ref());
                let deletes = plan
                    .changes
                    .iter()
                    .filter(|c| c.action() == Action::Delete)
                    .count();
                if !opts.dry_run {
                    if deletes > 0 && opts.deletes == Deletes::HoldForConsent {
                        out.report.deletes_held = deletes;
                        out.report.reason = Some(format!(
                            "{deletes} delete(s) of resources this tool created are planned; nothing \
                         was written: re-run with --prune --yes to apply them"
                        ));
                    } else {
                        let gate = store.map(|st| PhaseGate::new(st, &pair.name));
                        out.report.results = apply_gated(
                            client,
                            &pair.secondary,
                            &plan,
                            opts.concurrency,
                            progress,
                            gate.as_ref(),
                        )
                        .await;
                        if let Some(st) = store {
                            record_inventory(
                                st,
                                &pair.name,
                                pair.secondary.as_str(),
                                &out.report,
                                opts.now,
                            )
                            .await;
                        }
                        if let Some(why) = out
                            .report
                            .results
                            .iter()
                            .find(|r| {
                                r.outcome == Outcome::Skipped
                                    && r.error
                                        .as_deref()
                                        .is_some_and(|e| e.contains("replication paused"))
                            })
                            .and_then(|r| r.error.clone())
                        {
                            out.report.paused = true;
                            out.report.reason = Some(why);
                        }
                    }
                }
                out.report.plan = plan;
            }
        }
    };
    let finished = match opts.deadline {
        Some(d) => tokio::time::timeout_at(d, work).await.is_ok(),
        None => {
            work.await;
            true
        }
    };
    if !finished {
        // Cut off mid-pair: whatever was applied stays applied (each change is an upsert or
        // an observed-first invitation); the next pass observes it and does the rest.
        tracing::warn!(event = "replicate.out-of-time", pair = %pair.name, "the time budget ran out; the pair is passed over again later");
        out.out_of_time = true;
        out.report.error = Some(OUT_OF_TIME.to_owned());
        out.report.results.clear();
    }
    if let (Some(st), Some(l)) = (store, lease) {
        pair_state::release_replicate_lease(st, l).await;
    }
    let after = client.stats();
    out.report.arm_calls = Some(ArmCalls {
        reads: after.reads.saturating_sub(before.reads),
        writes: after.writes.saturating_sub(before.writes),
        deletes: after.deletes.saturating_sub(before.deletes),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::model::Name;

    fn pair(prune: PrunePolicy) -> Pair {
        let toml = format!(
            r#"
[[pairs]]
name = "p"
primary = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.DataShare/accounts/a"
secondary = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg2/providers/Microsoft.DataShare/accounts/b"
primary_region = "westeurope"
secondary_region = "northeurope"
prune = "{}"
"#,
            if prune == PrunePolicy::Delete {
                "delete"
            } else {
                "report"
            }
        );
        crate::config::dr::DrConfig::from_toml_str(&toml, "t.toml")
            .expect("config")
            .pairs
            .remove(0)
    }

    fn plan_with_deletes() -> Plan {
        Plan {
            changes: vec![
                Change::DeleteShare {
                    share: Name::from("made-by-tool"),
                },
                Change::DeleteShare {
                    share: Name::from("made-by-hand"),
                },
            ],
            findings: Vec::new(),
        }
    }

    #[test]
    fn under_delete_only_tool_made_resources_stay_delete_candidates() {
        let p = pair(PrunePolicy::Delete);
        let mut state = PairPhase::normal("p");
        state.created.push(pair_state::CreatedResource {
            account: p.secondary.as_str().to_owned(),
            address: "shares/made-by-tool".into(),
            at: OffsetDateTime::UNIX_EPOCH,
        });
        let out = limit_deletes(plan_with_deletes(), &p, p.secondary.as_str(), Some(&state));
        assert_eq!(
            out.changes.iter().map(Change::address).collect::<Vec<_>>(),
            ["shares/made-by-tool"]
        );
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].code, FindingCode::DeleteRefused);
        assert!(
            out.findings[0].message.contains("made by hand"),
            "{:?}",
            out.findings
        );
    }

    #[test]
    fn under_report_every_delete_is_refused_and_a_prune_request_is_refused() {
        let p = pair(PrunePolicy::Report);
        let mut state = PairPhase::normal("p");
        state.created.push(pair_state::CreatedResource {
            account: p.secondary.as_str().to_owned(),
            address: "shares/made-by-tool".into(),
            at: OffsetDateTime::UNIX_EPOCH,
        });
        let out = limit_deletes(plan_with_deletes(), &p, p.secondary.as_str(), Some(&state));
        assert!(out.changes.is_empty());
        assert_eq!(out.findings.len(), 2);
        let e = check_prune(&p, true).expect_err("refused");
        assert!(e.to_string().contains("prune = \"report\""), "{e}");
        assert!(check_prune(&p, false).is_ok());
        assert!(check_prune(&pair(PrunePolicy::Delete), true).is_ok());
    }
}
