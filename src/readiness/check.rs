//! OBSERVE + evaluate for one pair: the few ARM reads readiness needs, issued concurrently
//! (bounded), then the pure [`evaluate`](super::evaluate()).
//!
//! Reads (fewest): per account the account GET and the share lists — the same observation
//! replication makes (`read_account` is reconcile's observe, so readiness shares it) — plus
//! only what readiness adds: `Shares_ListSynchronizations` per selected primary share (RPO),
//! one GET per mapped secondary store (existence, location), and role assignments of the
//! secondary account's identity once per subscription holding mapped stores (not per store).
//!
//! The reads go through [`PairReader`], implemented for the ARM client next to it (and by test
//! fakes); failures become observations (`Unreachable`, `Faulted`, `Failed`) and thus findings —
//! a check never fails because one read did. Account read failures are classified once
//! (`arm::fault::classify`): a tool fault is `Faulted`, never `Unreachable`.
//!
//! Must not import: handlers, host.

use std::collections::BTreeMap;
use std::future::Future;

use futures::StreamExt;
use time::OffsetDateTime;

use crate::arm::id::{AccountId, ResourceId};
use crate::arm::models::{Account, RoleAssignment, ShareSynchronization};
use crate::config::dr::{DrConfig, Pair};
use crate::reconcile::convert::ShareLists;

use super::convert::{self, StoreRead};
use super::evaluate::evaluate_in_state;
use super::model::{AccountObservation, DrillRecord, Observations, StoreObservation, same_id};
use super::report::{ActiveRun, Report};
use crate::pair_state::PhaseView;

/// What reading one Data Share account gave.
#[derive(Debug, Clone)]
pub enum AccountRead {
    /// 404.
    Missing,
    /// The account did not answer (timeout, 408, 5xx); a short, secret-free reason.
    Unreachable(String),
    /// The reads failed because of the tool's own fault (see `arm::fault::classify`).
    Faulted {
        fault: super::model::ToolFault,
        reason: String,
    },
    /// The account and the lists of its selected shares.
    Present {
        account: Box<Account>,
        shares: Vec<ShareLists>,
    },
}

/// The ARM reads readiness makes. Implementations map errors to text (never secrets).
pub trait PairReader: Sync {
    /// Account GET plus the lists of every share `selects` accepts (reconcile's observe step).
    fn read_account(
        &self,
        id: &AccountId,
        selects: &(dyn Fn(&str) -> bool + Sync),
    ) -> impl Future<Output = AccountRead> + Send;
    /// `Shares_ListSynchronizations` of one share.
    fn list_synchronizations(
        &self,
        share_id: &str,
    ) -> impl Future<Output = Result<Vec<ShareSynchronization>, String>> + Send;
    /// GET of a store (storage account, SQL server, Kusto cluster/database, …).
    fn get_store(&self, id: &str) -> impl Future<Output = StoreRead> + Send;
    /// Role assignments of `principal_id` in subscription `subscription_id` (all scopes in it).
    fn role_assignments(
        &self,
        subscription_id: &str,
        principal_id: &str,
    ) -> impl Future<Output = Result<Vec<RoleAssignment>, String>> + Send;
}

/// Default bound on concurrent reads of one check.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Observes one pair.
pub async fn observe_pair<R: PairReader>(
    reader: &R,
    pair: &Pair,
    last_drill: Option<DrillRecord>,
    concurrency: usize,
) -> Observations {
    let concurrency = concurrency.max(1);
    let selects = |name: &str| pair.selects(name);

    // Pipelined: the synchronization history of the selected primary shares (RPO) depends on the
    // primary alone, so those reads start as soon as the primary is observed, while the
    // secondary's observation may still be running. Store and role reads need both sides and
    // come after. The number of reads is the same as in a phase-by-phase walk; the ARM client's
    // own concurrency limit bounds what is in flight overall.
    let primary_side = async {
        let primary = reader.read_account(&pair.primary, &selects).await;
        let primary_share_ids: Vec<String> = match &primary {
            AccountRead::Present { shares, .. } => shares
                .iter()
                .filter_map(|s| s.share.meta.id.clone())
                .collect(),
            _ => Vec::new(),
        };
        let sync_results =
            futures::stream::iter(primary_share_ids.into_iter().map(|id| async move {
                let runs = reader.list_synchronizations(&id).await;
                (id, runs)
            }))
            .buffer_unordered(concurrency)
            .collect::<Vec<_>>()
            .await;
        (account_observation(primary), sync_results)
    };
    let secondary_side =
        async { account_observation(reader.read_account(&pair.secondary, &selects).await) };
    let ((primary_obs, sync_results), secondary_obs) = futures::join!(primary_side, secondary_side);

    let mapping = match primary_obs.snapshot() {
        Some(p) => convert::store_mapping(pair, p),
        None => BTreeMap::new(),
    };
    let to_check =
        convert::stores_to_check(&mapping, primary_obs.snapshot(), secondary_obs.snapshot());
    let principal = secondary_obs
        .snapshot()
        .and_then(|s| s.principal_id.clone())
        .filter(|p| !p.is_empty());

    // Owned ids: a closure over borrowed keys makes the future's `Send` depend on a
    // higher-ranked lifetime the compiler cannot prove (then the handler future is not `Send`).
    let store_ids: Vec<String> = to_check.keys().cloned().collect();
    let store_reads = futures::stream::iter(store_ids.into_iter().map(|id| async move {
        let read = reader.get_store(&id).await;
        (id, read)
    }))
    .buffer_unordered(concurrency)
    .collect::<Vec<_>>();

    let subscriptions: Vec<String> = {
        let mut subs: Vec<String> = to_check
            .keys()
            .filter_map(|id| ResourceId::parse(id).ok())
            .filter_map(|id| id.subscription_id().map(str::to_ascii_lowercase))
            .collect();
        subs.sort();
        subs.dedup();
        if principal.is_none() {
            subs.clear();
        }
        subs
    };
    let role_reads = futures::stream::iter(subscriptions.into_iter().map(|sub| {
        let principal = principal.clone().unwrap_or_default();
        async move {
            let r = reader.role_assignments(&sub, &principal).await;
            (sub, r)
        }
    }))
    .buffer_unordered(concurrency)
    .collect::<Vec<_>>();

    let (store_results, role_results) = futures::join!(store_reads, role_reads);

    // Attach synchronization history to the primary shares.
    let mut primary_obs = primary_obs;
    if let AccountObservation::Present(snapshot) = &mut primary_obs {
        for share in snapshot.shares.values_mut() {
            if let Some((_, result)) = sync_results.iter().find(|(id, _)| same_id(id, &share.id)) {
                share.synchronizations = result.as_ref().ok().map(|runs| {
                    runs.iter()
                        .map(convert::synchronization_observation)
                        .collect()
                });
            }
        }
    }

    let roles: BTreeMap<String, Result<Vec<RoleAssignment>, String>> =
        role_results.into_iter().collect();
    let mut stores = BTreeMap::new();
    for (id, read) in store_results {
        let kind = to_check
            .iter()
            .find(|(k, _)| same_id(k, &id))
            .map(|(_, k)| *k)
            .unwrap_or(super::model::StoreKind::Storage);
        let sub = ResourceId::parse(&id)
            .ok()
            .and_then(|r| r.subscription_id().map(str::to_ascii_lowercase));
        let assignments = sub
            .and_then(|s| roles.get(&s))
            .and_then(|r| r.as_ref().ok())
            .map(Vec::as_slice);
        let obs: StoreObservation = convert::store_observation(&id, kind, read, assignments);
        stores.insert(id, obs);
    }

    Observations {
        pair: pair.name.clone(),
        primary_id: pair.primary.as_str().to_string(),
        secondary_id: pair.secondary.as_str().to_string(),
        primary_region: pair.primary_region.clone(),
        secondary_region: pair.secondary_region.clone(),
        primary: primary_obs,
        secondary: secondary_obs,
        store_mapping: mapping,
        stores,
        last_drill,
    }
}

fn account_observation(read: AccountRead) -> AccountObservation {
    match read {
        AccountRead::Missing => AccountObservation::Missing,
        AccountRead::Unreachable(reason) => AccountObservation::Unreachable { reason },
        AccountRead::Faulted { fault, reason } => AccountObservation::Faulted { fault, reason },
        AccountRead::Present { account, shares } => {
            let shares = shares
                .iter()
                .map(|lists| convert::share_observation(lists, None));
            AccountObservation::Present(convert::account_snapshot(&account, shares))
        }
    }
}

/// Observes and evaluates one pair (pair state unknown: `pairState` is `null`).
pub async fn check_pair<R: PairReader>(
    reader: &R,
    cfg: &DrConfig,
    pair: &Pair,
    now: OffsetDateTime,
    last_drill: Option<DrillRecord>,
) -> Report {
    check_pair_in(reader, cfg, pair, now, last_drill, None, &[]).await
}

/// Observes and evaluates one pair in its state (`pairs/{pair}.json`, `None` when unknown)
/// with its runs not yet ended: a pair that is not `normal` gets the failback readiness
/// ([`super::failback`]).
pub async fn check_pair_in<R: PairReader>(
    reader: &R,
    cfg: &DrConfig,
    pair: &Pair,
    now: OffsetDateTime,
    last_drill: Option<DrillRecord>,
    state: Option<&PhaseView>,
    active: &[ActiveRun],
) -> Report {
    let concurrency = cfg.arm.max_concurrency.max(1);
    let obs = observe_pair(reader, pair, last_drill, concurrency).await;
    let report = evaluate_in_state(&obs, &convert::policy_for(cfg, pair), now, state, active);
    log_checked(&report);
    report
}

/// The one structured event per check (`readiness.checked`), picked up by Application Insights
/// from stdout.
pub fn log_checked(report: &Report) {
    tracing::info!(
        event = "readiness.checked",
        pair = %report.pair,
        status = report.status.as_str(),
        score = report.score,
        critical = report.counts.critical,
        warning = report.counts.warning,
        info = report.counts.info,
        "readiness.checked"
    );
}
