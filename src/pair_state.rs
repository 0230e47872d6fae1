//! Pair state (`pairs/{pair}.json`, type [`PairPhase`]): which side of a pair serves consumers
//! and where the pair is in the failover cycle, so that replication never overwrites a secondary
//! that took over.
//!
//! Phases: `normal` → `failing-over` → `failed-over` → `failing-back` → `normal`.
//! - A failover or failback run moves the pair to `failing-over` / `failing-back` when its first
//!   writing stage starts ([`enter_run_phase`]); a completed failover leaves `failed-over`, a
//!   completed failback `normal` ([`finish_run_phase`]); a run that fails after writing leaves
//!   its phase (with its run id) until an operator clears it ([`reset`], audited). Drills never
//!   change the state. These writes happen only inside runs, which hold the pair lock
//!   (`locks/{pair}.json`), or in the audited reset.
//! - A missing blob means `normal`, primary serving (deployments from before the pair state).
//! - Replication primary → secondary writes only in `normal` ([`PhaseGate`] re-reads the phase
//!   before every level of writes). A replicate pass holds a short per-pair lease
//!   ([`take_replicate_lease`], `leases/replicate-{pair}.json`), never the run lock, so an alert
//!   during a pass still starts its run; the run's first write then stops the pass at its next
//!   level.
//! - The inventory of resources the tool created ([`PairPhase::created`]) is appended by the
//!   passes that created them (ETag read-modify-write that leaves the phase fields as they are):
//!   under a `prune = "delete"` policy only those are delete candidates; anything else on the
//!   secondary was made by hand and is reported, never deleted.
//!
//! Every write is an ETag-guarded read-modify-write ([`store::update_with_retry`]).
//! Must not import: handlers, host, reconcile, readiness, failover (they import this).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store::{self, BlobStore, ETag, Precondition, StoreError};

/// `pairs/{pair}.json`.
pub fn pair_state_path(pair: &str) -> String {
    format!("pairs/{pair}.json")
}

/// `leases/replicate-{pair}.json`.
pub fn replicate_lease_path(pair: &str) -> String {
    format!("leases/replicate-{pair}.json")
}

/// How long a replicate lease is honoured before another pass may break it (a pass that died).
pub const REPLICATE_LEASE: Duration = Duration::from_secs(15 * 60);

/// Which account serves the consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    #[default]
    Primary,
    Secondary,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Primary => "primary",
            Side::Secondary => "secondary",
        }
    }
}

/// Where the pair is in the failover cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    #[default]
    Normal,
    FailingOver,
    FailedOver,
    FailingBack,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Normal => "normal",
            Phase::FailingOver => "failing-over",
            Phase::FailedOver => "failed-over",
            Phase::FailingBack => "failing-back",
        }
    }
    /// In words, for messages: "failed over".
    pub fn words(self) -> &'static str {
        match self {
            Phase::Normal => "normal",
            Phase::FailingOver => "failing over",
            Phase::FailedOver => "failed over",
            Phase::FailingBack => "failing back",
        }
    }
}

/// One operator reset of the state (the audit trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub by: String,
    pub reason: String,
    /// The phase, serving side and run the reset cleared.
    pub from_phase: Phase,
    pub from_serving: Side,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_run_id: Option<String>,
}

/// A resource this tool created (a delete candidate under `prune = "delete"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedResource {
    /// The account it was created in (ARM id, as configured).
    pub account: String,
    /// Path below the account: `shares/s`, `shares/s/dataSets/d`, …
    pub address: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The contents of `pairs/{pair}.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairPhase {
    pub pair: String,
    pub serving: Side,
    pub phase: Phase,
    /// When the pair entered `phase`.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// The run that moved it there (`None` for `normal` by default or by reset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The phase before the current run moved the pair (a failover's `final-sync` replicates
    /// only when that was `normal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Phase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resets: Vec<ResetEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<CreatedResource>,
}

impl PairPhase {
    /// The state of a pair without a blob: normal, primary serving.
    pub fn normal(pair: &str) -> PairPhase {
        PairPhase {
            pair: pair.to_owned(),
            serving: Side::Primary,
            phase: Phase::Normal,
            since: OffsetDateTime::UNIX_EPOCH,
            run_id: None,
            previous: None,
            resets: Vec::new(),
            created: Vec::new(),
        }
    }

    pub fn is_normal(&self) -> bool {
        self.phase == Phase::Normal
    }

    /// `since` as RFC 3339 (`"unknown"` for the epoch of a pair without a blob).
    pub fn since_text(&self) -> String {
        if self.since == OffsetDateTime::UNIX_EPOCH {
            return "unknown".into();
        }
        self.since
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }

    /// Why replication does nothing for this pair (`None` when it is `normal`):
    /// `pair P is failed over (secondary serving since T, run R): replication paused; run a
    /// failback to resume`.
    pub fn paused_message(&self) -> Option<String> {
        if self.is_normal() {
            return None;
        }
        let run = self.run_id.as_deref().unwrap_or("unknown");
        let what_next = match self.phase {
            Phase::FailedOver => "run a failback to resume".to_owned(),
            _ => format!(
                "it resumes when run {run} completes a failback; if that run ended without \
                 finishing, clear the state with `failover reset-state`"
            ),
        };
        Some(format!(
            "pair {} is {} ({} serving since {}, run {run}): replication paused; {what_next}",
            self.pair,
            self.phase.words(),
            self.serving.as_str(),
            self.since_text()
        ))
    }

    /// Whether the tool created `address` in `account`.
    pub fn created_here(&self, account: &str, address: &str) -> bool {
        self.created.iter().any(|c| {
            c.account.eq_ignore_ascii_case(account) && c.address.eq_ignore_ascii_case(address)
        })
    }
}

/// The state as answers carry it (`state` in `plan --json`, `ReplicateNow`, readiness):
/// `{serving, phase, since, runId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseView {
    pub serving: Side,
    pub phase: Phase,
    /// RFC 3339, or `null` for a pair that never left `normal`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl PairPhase {
    pub fn view(&self) -> PhaseView {
        PhaseView {
            serving: self.serving,
            phase: self.phase,
            since: (self.since != OffsetDateTime::UNIX_EPOCH).then_some(self.since),
            run_id: self.run_id.clone(),
        }
    }
}

/// Errors of reading or writing the pair state.
#[derive(Debug, thiserror::Error)]
pub enum PairStateError {
    #[error("could not read the state of pair {pair} (pairs/{pair}.json)")]
    Read {
        pair: String,
        #[source]
        source: StoreError,
    },
    #[error("could not write the state of pair {pair} (pairs/{pair}.json)")]
    Write {
        pair: String,
        #[source]
        source: StoreError,
    },
    #[error("could not take the replicate lease of pair {pair}")]
    Lease {
        pair: String,
        #[source]
        source: StoreError,
    },
}

impl PairStateError {
    pub fn is_transient(&self) -> bool {
        match self {
            PairStateError::Read { source, .. }
            | PairStateError::Write { source, .. }
            | PairStateError::Lease { source, .. } => source.is_transient(),
        }
    }
}

/// Reads the pair's state; a missing blob is `normal` (with `None` for the ETag).
pub async fn load(
    store: &dyn BlobStore,
    pair: &str,
) -> Result<(PairPhase, Option<ETag>), PairStateError> {
    match store::get_json::<PairPhase>(store, &pair_state_path(pair)).await {
        Ok(Some((p, etag))) => Ok((p, Some(etag))),
        Ok(None) => Ok((PairPhase::normal(pair), None)),
        Err(source) => Err(PairStateError::Read {
            pair: pair.to_owned(),
            source,
        }),
    }
}

enum UpdErr {
    Store(StoreError),
}

impl From<StoreError> for UpdErr {
    fn from(e: StoreError) -> Self {
        UpdErr::Store(e)
    }
}

/// ETag-guarded read-modify-write of the pair state (`change` may run several times).
pub async fn update(
    store: &dyn BlobStore,
    pair: &str,
    mut change: impl FnMut(&mut PairPhase),
) -> Result<PairPhase, PairStateError> {
    let r =
        store::update_with_retry::<PairPhase, UpdErr, _>(store, &pair_state_path(pair), |cur| {
            let mut s = cur.unwrap_or_else(|| PairPhase::normal(pair));
            change(&mut s);
            Ok(s)
        })
        .await;
    match r {
        Ok((s, _)) => Ok(s),
        Err(UpdErr::Store(source)) => Err(PairStateError::Write {
            pair: pair.to_owned(),
            source,
        }),
    }
}

/// What kind of run moves the state (drills never do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Failover,
    Failback,
}

/// A run's first writing stage starts: the pair moves to `failing-over` / `failing-back` with
/// this run's id (idempotent for the same run). Returns the state, whose `previous` says what
/// the phase was before this run.
pub async fn enter_run_phase(
    store: &dyn BlobStore,
    pair: &str,
    run_id: &str,
    kind: RunKind,
    now: OffsetDateTime,
) -> Result<PairPhase, PairStateError> {
    let to = match kind {
        RunKind::Failover => Phase::FailingOver,
        RunKind::Failback => Phase::FailingBack,
    };
    update(store, pair, |s| {
        if s.phase == to && s.run_id.as_deref() == Some(run_id) {
            return;
        }
        s.previous = Some(s.phase);
        s.phase = to;
        s.since = now;
        s.run_id = Some(run_id.to_owned());
        // Who serves does not change until the run completes.
    })
    .await
}

/// A run completed: a failover leaves `failed-over` (secondary serving), a failback `normal`
/// (primary serving). Only when the state still names this run (a reset in between wins).
pub async fn finish_run_phase(
    store: &dyn BlobStore,
    pair: &str,
    run_id: &str,
    kind: RunKind,
    now: OffsetDateTime,
) -> Result<PairPhase, PairStateError> {
    update(store, pair, |s| {
        if s.run_id.as_deref() != Some(run_id) {
            return;
        }
        let (phase, serving) = match kind {
            RunKind::Failover => (Phase::FailedOver, Side::Secondary),
            RunKind::Failback => (Phase::Normal, Side::Primary),
        };
        if s.phase == phase && s.serving == serving {
            return;
        }
        s.previous = Some(s.phase);
        s.phase = phase;
        s.serving = serving;
        s.since = now;
    })
    .await
}

/// The operator clears the state (`failover reset-state`): back to `normal`, primary serving,
/// with an audit entry naming who, why and what was cleared.
pub async fn reset(
    store: &dyn BlobStore,
    pair: &str,
    by: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<PairPhase, PairStateError> {
    update(store, pair, |s| {
        let entry = ResetEntry {
            at: now,
            by: by.to_owned(),
            reason: reason.to_owned(),
            from_phase: s.phase,
            from_serving: s.serving,
            from_run_id: s.run_id.clone(),
        };
        if !s.resets.contains(&entry) {
            s.resets.push(entry);
        }
        s.phase = Phase::Normal;
        s.serving = Side::Primary;
        s.since = now;
        s.run_id = None;
        s.previous = None;
    })
    .await
}

/// Appends resources the tool created in `account` to the inventory (phase fields untouched).
pub async fn record_created(
    store: &dyn BlobStore,
    pair: &str,
    account: &str,
    addresses: &[String],
    now: OffsetDateTime,
) -> Result<(), PairStateError> {
    if addresses.is_empty() {
        return Ok(());
    }
    update(store, pair, |s| {
        for a in addresses {
            if !s.created_here(account, a) {
                s.created.push(CreatedResource {
                    account: account.to_owned(),
                    address: a.clone(),
                    at: now,
                });
            }
        }
    })
    .await
    .map(|_| ())
}

/// Removes deleted resources from the inventory.
pub async fn forget_created(
    store: &dyn BlobStore,
    pair: &str,
    account: &str,
    addresses: &[String],
) -> Result<(), PairStateError> {
    if addresses.is_empty() {
        return Ok(());
    }
    update(store, pair, |s| {
        s.created.retain(|c| {
            !(c.account.eq_ignore_ascii_case(account)
                && addresses.iter().any(|a| {
                    let a = a.to_ascii_lowercase();
                    let have = c.address.to_ascii_lowercase();
                    have == a || have.starts_with(&format!("{a}/"))
                }))
        });
    })
    .await
    .map(|_| ())
}

/// Contents of a replicate lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRecord {
    pub pair: String,
    pub holder: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A held replicate lease; give it back with [`release_replicate_lease`].
#[derive(Debug)]
pub struct Lease {
    pub pair: String,
    etag: ETag,
}

/// Takes the pair's replicate lease (create-if-absent; a lease older than
/// [`REPLICATE_LEASE`] is broken). `Ok(Err(holder_since))` when another pass holds it.
pub async fn take_replicate_lease(
    store: &dyn BlobStore,
    pair: &str,
    holder: &str,
    now: OffsetDateTime,
) -> Result<Result<Lease, OffsetDateTime>, PairStateError> {
    let path = replicate_lease_path(pair);
    let err = |source| PairStateError::Lease {
        pair: pair.to_owned(),
        source,
    };
    let rec = LeaseRecord {
        pair: pair.to_owned(),
        holder: holder.to_owned(),
        at: now,
    };
    for _ in 0..2 {
        match store::put_json(store, &path, &rec, Precondition::IfNoneMatchAny).await {
            Ok(etag) => {
                return Ok(Ok(Lease {
                    pair: pair.to_owned(),
                    etag,
                }));
            }
            Err(StoreError::AlreadyExists { .. }) => {
                let Some((held, etag)) = store::get_json::<LeaseRecord>(store, &path)
                    .await
                    .map_err(err)?
                else {
                    continue;
                };
                let lease = time::Duration::try_from(REPLICATE_LEASE).unwrap_or_default();
                if now - held.at < lease {
                    return Ok(Err(held.at));
                }
                match store.delete(&path, Some(&etag)).await {
                    Ok(_) | Err(StoreError::PreconditionFailed { .. }) => continue,
                    Err(e) => return Err(err(e)),
                }
            }
            Err(e) => return Err(err(e)),
        }
    }
    Ok(Err(now))
}

/// Gives a lease back (only the version this pass wrote).
pub async fn release_replicate_lease(store: &dyn BlobStore, lease: Lease) {
    let path = replicate_lease_path(&lease.pair);
    if let Err(e) = store.delete(&path, Some(&lease.etag)).await {
        tracing::warn!(pair = %lease.pair, error = %e, "could not release the replicate lease (it expires)");
    }
}

/// Re-reads the pair's phase before each level of writes of a replicate pass (one read per
/// level, shared by the changes of that level) and says why the pass must stop when the pair is
/// no longer `normal` (or its state cannot be read: no write without knowing).
pub struct PhaseGate<'a> {
    store: &'a dyn BlobStore,
    pair: String,
    seen: tokio::sync::Mutex<std::collections::BTreeMap<String, Option<String>>>,
}

impl<'a> PhaseGate<'a> {
    pub fn new(store: &'a dyn BlobStore, pair: &str) -> PhaseGate<'a> {
        PhaseGate {
            store,
            pair: pair.to_owned(),
            seen: tokio::sync::Mutex::default(),
        }
    }

    /// `None` when writes of `level` may go ahead; otherwise the reason they must not.
    pub async fn check(&self, level: &str) -> Option<String> {
        let mut seen = self.seen.lock().await;
        if let Some(answer) = seen.get(level) {
            return answer.clone();
        }
        let answer = match load(self.store, &self.pair).await {
            Ok((s, _)) => s.paused_message(),
            Err(e) => Some(format!(
                "the pair state could not be read before writing ({}); nothing more written",
                chain(&e)
            )),
        };
        if let Some(a) = &answer {
            tracing::warn!(pair = %self.pair, level, reason = %a, "replicate pass stopped");
        }
        seen.insert(level.to_owned(), answer.clone());
        answer
    }
}

/// An error with its causes, one line.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryBlobStore;

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000) + time::Duration::seconds(s)
    }

    #[tokio::test]
    async fn a_missing_blob_is_normal_with_the_primary_serving() {
        let store = MemoryBlobStore::new();
        let (s, etag) = load(&store, "p").await.expect("load");
        assert_eq!(
            (s.phase, s.serving, etag),
            (Phase::Normal, Side::Primary, None)
        );
        assert_eq!(s.paused_message(), None);
    }

    #[tokio::test]
    async fn a_failover_then_a_failback_walk_the_cycle_and_only_a_reset_clears_a_failed_run() {
        let store = MemoryBlobStore::new();
        let s = enter_run_phase(&store, "p", "r1", RunKind::Failover, t(1))
            .await
            .expect("enter");
        assert_eq!(
            (s.phase, s.previous),
            (Phase::FailingOver, Some(Phase::Normal))
        );
        // Idempotent for the same run: `previous` stays what it was before the run.
        let s = enter_run_phase(&store, "p", "r1", RunKind::Failover, t(2))
            .await
            .expect("enter again");
        assert_eq!((s.since, s.previous), (t(1), Some(Phase::Normal)));
        let s = finish_run_phase(&store, "p", "r1", RunKind::Failover, t(3))
            .await
            .expect("finish");
        assert_eq!((s.phase, s.serving), (Phase::FailedOver, Side::Secondary));
        assert_eq!(
            s.paused_message().as_deref(),
            Some(
                "pair p is failed over (secondary serving since 2024-10-04T00:00:03Z, run r1): \
                 replication paused; run a failback to resume"
            )
        );
        // A failback that fails after writing leaves failing-back with its run id.
        let s = enter_run_phase(&store, "p", "r2", RunKind::Failback, t(4))
            .await
            .expect("enter failback");
        assert_eq!(
            (s.phase, s.run_id.as_deref()),
            (Phase::FailingBack, Some("r2"))
        );
        // Finishing under another run id changes nothing.
        let s = finish_run_phase(&store, "p", "r1", RunKind::Failback, t(5))
            .await
            .expect("finish other");
        assert_eq!(s.phase, Phase::FailingBack);
        let s = reset(
            &store,
            "p",
            "cli:ops",
            "failback failed; fixed by hand",
            t(6),
        )
        .await
        .expect("reset");
        assert_eq!(
            (s.phase, s.serving, s.run_id),
            (Phase::Normal, Side::Primary, None)
        );
        assert_eq!(s.resets.len(), 1);
        assert_eq!(s.resets[0].from_phase, Phase::FailingBack);
        assert_eq!(s.resets[0].from_run_id.as_deref(), Some("r2"));
        // A completed failback returns to normal.
        enter_run_phase(&store, "p", "r3", RunKind::Failback, t(7))
            .await
            .expect("enter");
        let s = finish_run_phase(&store, "p", "r3", RunKind::Failback, t(8))
            .await
            .expect("finish");
        assert_eq!((s.phase, s.serving), (Phase::Normal, Side::Primary));
    }

    #[tokio::test]
    async fn the_inventory_survives_phase_changes_and_forgets_deleted_children() {
        let store = MemoryBlobStore::new();
        let addrs = vec!["shares/a".to_owned(), "shares/a/dataSets/d".to_owned()];
        record_created(&store, "p", "/acc/S", &addrs, t(1))
            .await
            .expect("record");
        enter_run_phase(&store, "p", "r1", RunKind::Failover, t(2))
            .await
            .expect("enter");
        let (s, _) = load(&store, "p").await.expect("load");
        assert!(s.created_here("/acc/s", "SHARES/A"));
        assert!(!s.created_here("/acc/other", "shares/a"));
        forget_created(&store, "p", "/acc/S", &["shares/a".to_owned()])
            .await
            .expect("forget");
        let (s, _) = load(&store, "p").await.expect("load");
        assert!(s.created.is_empty(), "{:?}", s.created);
        assert_eq!(s.phase, Phase::FailingOver);
    }

    #[tokio::test]
    async fn a_replicate_lease_is_exclusive_until_released_or_expired() {
        let store = MemoryBlobStore::new();
        let a = take_replicate_lease(&store, "p", "a", t(0))
            .await
            .expect("take")
            .expect("free");
        let held = take_replicate_lease(&store, "p", "b", t(1))
            .await
            .expect("take");
        assert_eq!(held.err(), Some(t(0)));
        release_replicate_lease(&store, a).await;
        assert!(
            take_replicate_lease(&store, "p", "b", t(2))
                .await
                .expect("take")
                .is_ok()
        );
        // A lease held past REPLICATE_LEASE is broken.
        let late = t(3) + time::Duration::try_from(REPLICATE_LEASE).unwrap_or_default();
        assert!(
            take_replicate_lease(&store, "p", "c", late)
                .await
                .expect("take")
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_gate_stops_a_pass_once_the_pair_leaves_normal() {
        let store = MemoryBlobStore::new();
        let gate = PhaseGate::new(&store, "p");
        assert_eq!(gate.check("share").await, None);
        enter_run_phase(&store, "p", "r1", RunKind::Failover, t(1))
            .await
            .expect("enter");
        // The level already checked keeps its answer; the next level sees the change.
        assert_eq!(gate.check("share").await, None);
        let why = gate.check("dataSet").await.expect("stopped");
        assert!(why.contains("pair p is failing over"), "{why}");
    }
}
