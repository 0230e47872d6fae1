//! Report storage and per-pair state in the app's blob container (`datashare-dr`):
//! `reports/{pair}/latest.json`, `reports/{pair}/history/{timestamp}.json` and `state/{pair}.json`.
//!
//! Guarantees: the history blob is written before `latest`, so `latest` never names a report
//! missing from history. The state blob (last status, last drill) is only changed through an
//! ETag-guarded read-modify-write, so two concurrent checks agree on exactly one status change.
//!
//! Must not import: handlers, host, arm.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::ReadinessError;
use super::model::DrillRecord;
use super::report::{Report, Status};
use crate::store::{self, BlobStore, Precondition, StoreError};

pub fn latest_path(pair: &str) -> String {
    format!("reports/{pair}/latest.json")
}

/// History blob name: a sortable UTC timestamp without colons, e.g. `20250601T120000Z`.
pub fn history_path(pair: &str, checked_at: OffsetDateTime) -> String {
    let t = checked_at.to_offset(time::UtcOffset::UTC);
    let d = t.date();
    format!(
        "reports/{pair}/history/{:04}{:02}{:02}T{:02}{:02}{:02}{:03}Z.json",
        d.year(),
        u8::from(d.month()),
        d.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub fn state_path(pair: &str) -> String {
    format!("state/{pair}.json")
}

/// What is remembered about a pair between checks (`state/{pair}.json`). Other writers (failover
/// drill) change only `lastDrill`, through [`record_drill`]; unknown fields are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairState {
    /// Status of the last stored check.
    pub status: Option<Status>,
    pub score: Option<u8>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub checked_at: Option<OffsetDateTime>,
    /// When `status` last changed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub changed_at: Option<OffsetDateTime>,
    pub last_drill: Option<DrillRecord>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A status change of a pair between two checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// `None` on the first check of a pair.
    pub old: Option<Status>,
    pub new: Status,
}

impl Transition {
    /// "worsened", "recovered" (back to Ready), "improved" (NotReady → Degraded) or
    /// "unassessable" (now `Unknown`: the tool cannot tell).
    pub fn direction(&self) -> &'static str {
        let old = self.old.unwrap_or(Status::Ready);
        if self.new == Status::Unknown {
            "unassessable"
        } else if self.new.rank() > old.rank() {
            "worsened"
        } else if self.new == Status::Ready {
            "recovered"
        } else {
            "improved"
        }
    }
}

/// Whether going from `old` to `new` deserves a notification: any change of status; on the first
/// check (no previous state) only a status other than Ready (treated as worse than the unknown).
pub fn is_edge(old: Option<Status>, new: Status) -> bool {
    match old {
        Some(old) => old != new,
        None => new != Status::Ready,
    }
}

/// Writes the report to history and then to `latest`.
pub async fn store_report(store: &dyn BlobStore, report: &Report) -> Result<(), ReadinessError> {
    let wrap = |path: String| {
        let pair = report.pair.clone();
        move |source: StoreError| ReadinessError::StoreReport {
            pair,
            path,
            source: Box::new(source),
        }
    };
    let history = history_path(&report.pair, report.checked_at);
    store::put_json(store, &history, report, Precondition::None)
        .await
        .map_err(wrap(history.clone()))?;
    let latest = latest_path(&report.pair);
    store::put_json(store, &latest, report, Precondition::None)
        .await
        .map_err(wrap(latest.clone()))?;
    Ok(())
}

/// The latest stored report of `pair`, if any.
pub async fn load_latest(
    store: &dyn BlobStore,
    pair: &str,
) -> Result<Option<Report>, ReadinessError> {
    store::get_json::<Report>(store, &latest_path(pair))
        .await
        .map(|o| o.map(|(r, _)| r))
        .map_err(|source| ReadinessError::LoadReport {
            pair: pair.to_string(),
            source: Box::new(source),
        })
}

/// Latest reports of the given pairs (pairs never checked are skipped), in the given order.
pub async fn load_all_latest(
    store: &dyn BlobStore,
    pairs: &[String],
) -> Result<Vec<Report>, ReadinessError> {
    let loaded = futures::future::join_all(pairs.iter().map(|p| load_latest(store, p))).await;
    let mut out = Vec::with_capacity(pairs.len());
    for r in loaded {
        if let Some(report) = r? {
            out.push(report);
        }
    }
    Ok(out)
}

/// Report file names in history, oldest first.
pub async fn list_history(
    store: &dyn BlobStore,
    pair: &str,
) -> Result<Vec<String>, ReadinessError> {
    store
        .list(&format!("reports/{pair}/history/"))
        .await
        .map(|v| v.into_iter().map(|e| e.path).collect())
        .map_err(|source| ReadinessError::LoadReport {
            pair: pair.to_string(),
            source: Box::new(source),
        })
}

pub async fn load_state(
    store: &dyn BlobStore,
    pair: &str,
) -> Result<Option<PairState>, ReadinessError> {
    store::get_json::<PairState>(store, &state_path(pair))
        .await
        .map(|o| o.map(|(s, _)| s))
        .map_err(|source| ReadinessError::UpdateState {
            pair: pair.to_string(),
            source: Box::new(source),
        })
}

/// Records the new status of `report` in `state/{pair}.json` (ETag-guarded) and returns the
/// transition when [`is_edge`] says the change deserves a notification. Of two concurrent calls
/// with the same new status, only one sees the transition.
pub async fn record_status(
    store: &dyn BlobStore,
    report: &Report,
) -> Result<Option<Transition>, ReadinessError> {
    let mut seen_old: Option<Status> = None;
    let new = report.status;
    store::update_with_retry::<PairState, StoreError, _>(store, &state_path(&report.pair), |cur| {
        let mut state = cur.unwrap_or_default();
        seen_old = state.status;
        if state.status != Some(new) {
            state.changed_at = Some(report.checked_at);
        }
        state.status = Some(new);
        state.score = Some(report.score);
        state.checked_at = Some(report.checked_at);
        Ok(state)
    })
    .await
    .map_err(|source| ReadinessError::UpdateState {
        pair: report.pair.clone(),
        source: Box::new(source),
    })?;
    Ok(is_edge(seen_old, new).then_some(Transition { old: seen_old, new }))
}

/// Puts the status back to `previous` after a notification could not be sent, so the next check
/// sees the change again. Only if the state still holds `failed` (ETag-guarded).
pub async fn revert_status(
    store: &dyn BlobStore,
    pair: &str,
    failed: Status,
    previous: Option<Status>,
) -> Result<(), ReadinessError> {
    store::update_with_retry::<PairState, StoreError, _>(store, &state_path(pair), |cur| {
        let mut state = cur.unwrap_or_default();
        if state.status == Some(failed) {
            state.status = previous;
        }
        Ok(state)
    })
    .await
    .map(|_| ())
    .map_err(|source| ReadinessError::UpdateState {
        pair: pair.to_string(),
        source: Box::new(source),
    })
}

/// Records a successful drill (called by failover's drill mode); keeps the newest record.
pub async fn record_drill(
    store: &dyn BlobStore,
    pair: &str,
    drill: DrillRecord,
) -> Result<(), ReadinessError> {
    store::update_with_retry::<PairState, StoreError, _>(store, &state_path(pair), |cur| {
        let mut state = cur.unwrap_or_default();
        let newer = state
            .last_drill
            .as_ref()
            .is_none_or(|d| d.completed_at <= drill.completed_at);
        if newer {
            state.last_drill = Some(drill.clone());
        }
        Ok(state)
    })
    .await
    .map(|_| ())
    .map_err(|source| ReadinessError::UpdateState {
        pair: pair.to_string(),
        source: Box::new(source),
    })
}

/// The last successful drill of `pair`, from its state blob.
pub async fn last_drill(
    store: &dyn BlobStore,
    pair: &str,
) -> Result<Option<DrillRecord>, ReadinessError> {
    Ok(load_state(store, pair).await?.and_then(|s| s.last_drill))
}
