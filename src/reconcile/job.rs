//! Replicate jobs and the timer's cursor: how a replicate pass that cannot finish within its
//! time budget goes on later instead of outliving its invocation (worst-day invariant 6).
//!
//! - A **job** (`replicate-jobs/{jobId}.json`, ETag-guarded) is a `ReplicateNow` call that ran
//!   out of its budget: the pairs it finished carry their outcome, every other pair is
//!   `queued` and has one message `{jobId, pair, round}` on queue [`PAIRS_QUEUE`]
//!   (`replicate-pairs`), which `ReplicatePair` runs — one pair's guarded pass with its own
//!   budget — recording the outcome on the job. A pair cut off again is re-enqueued with the
//!   next `round`, at most [`MAX_ROUNDS`] rounds (then recorded `failed`). The job is `running`
//!   until every pair has a final status, then `succeeded`, `partial` or `failed`.
//! - The **cursor** (`replicate-cursor/{trigger}.json`) is the timer's memory of a tick that
//!   ran out: which pairs that pass has done. The next tick skips them and does the rest; a tick
//!   that reaches the end deletes the cursor, so the tick after it starts over.
//!
//! Guarantees: a pair cut off mid-pass is simply passed over again — replication is
//! level-triggered (observe → diff → apply only the difference), so nothing is applied twice.
//! Caveat: resources created by a cut-off pair are not added to the pair's inventory
//! (`pairs/{pair}.json` `created`) by that pass.
//!
//! Must not import handlers or host.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store::{BlobStore, Precondition, StoreError, get_json, put_json, update_with_retry};

/// Queue of per-pair continuations (the fleet fan-out reuses it).
pub const PAIRS_QUEUE: &str = crate::store::REPLICATE_PAIRS_QUEUE;
/// Blob prefix of job records.
pub const JOBS_PREFIX: &str = "replicate-jobs/";
/// Blob prefix of the timer's cursor.
pub const CURSOR_PREFIX: &str = "replicate-cursor/";
/// Rounds a pair may be cut off by the budget before the job records it `failed`.
pub const MAX_ROUNDS: u32 = 20;

/// `replicate-jobs/{id}.json`.
pub fn job_path(job_id: &str) -> String {
    format!("{JOBS_PREFIX}{job_id}.json")
}

/// `replicate-cursor/{trigger}.json`.
pub fn cursor_path(trigger: &str) -> String {
    format!("{CURSOR_PREFIX}{trigger}.json")
}

/// True for a string that can be a job id (what [`new_job_id`] makes: a UUID).
pub fn is_job_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// A fresh job id.
pub fn new_job_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Status of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Some pair is still queued or running.
    Running,
    /// Every pair finished (or is paused: not `normal`, nothing to do).
    Succeeded,
    /// Some pair finished, some failed.
    Partial,
    /// No pair succeeded.
    Failed,
}

/// Status of one pair of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairStatus {
    /// Waiting for its `replicate-pairs` message.
    Queued,
    Succeeded,
    /// Observed, but some change failed or was skipped.
    Partial,
    /// Not observed, or cut off more than [`MAX_ROUNDS`] times.
    Failed,
    /// The pair is not `normal` (failed over, a run moves it): nothing done.
    Paused,
}

impl PairStatus {
    pub fn is_final(self) -> bool {
        self != PairStatus::Queued
    }
}

/// What one pair's pass did (counts as in the `replicate.pair` event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCounts {
    pub planned: usize,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub failed: usize,
    pub skipped: usize,
    pub findings: usize,
}

/// One pair of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobPair {
    pub pair: String,
    pub status: PairStatus,
    /// Passes that were cut off by their budget so far.
    #[serde(default)]
    pub rounds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<JobCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A replicate job (`replicate-jobs/{jobId}.json`; `ReplicateJob` in docs/openapi.yaml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicateJob {
    pub job_id: String,
    pub status: JobStatus,
    pub dry_run: bool,
    pub prune: bool,
    /// Who started it (`ReplicateNow`).
    pub trigger: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub pairs: Vec<JobPair>,
}

impl ReplicateJob {
    /// Recomputes [`ReplicateJob::status`] from the pairs.
    pub fn settle(&mut self) {
        self.status = if self.pairs.iter().any(|p| !p.status.is_final()) {
            JobStatus::Running
        } else if self
            .pairs
            .iter()
            .all(|p| matches!(p.status, PairStatus::Succeeded | PairStatus::Paused))
        {
            JobStatus::Succeeded
        } else if self
            .pairs
            .iter()
            .any(|p| matches!(p.status, PairStatus::Succeeded | PairStatus::Partial))
        {
            JobStatus::Partial
        } else {
            JobStatus::Failed
        };
    }

    pub fn pair(&self, name: &str) -> Option<&JobPair> {
        self.pairs.iter().find(|p| p.pair == name)
    }
}

/// The `replicate-pairs` message: run `pair`'s pass for `jobId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairMessage {
    pub job_id: String,
    pub pair: String,
    /// 0 for the first continuation; +1 each time the budget cut the pair off again.
    #[serde(default)]
    pub round: u32,
}

/// Creates the job record (it must not exist).
pub async fn create(store: &dyn BlobStore, job: &ReplicateJob) -> Result<(), StoreError> {
    put_json(
        store,
        &job_path(&job.job_id),
        job,
        Precondition::IfNoneMatchAny,
    )
    .await
    .map(|_| ())
}

/// Reads a job; `None` when there is none.
pub async fn load(store: &dyn BlobStore, job_id: &str) -> Result<Option<ReplicateJob>, StoreError> {
    Ok(get_json::<ReplicateJob>(store, &job_path(job_id))
        .await?
        .map(|(j, _)| j))
}

/// Records `update` on `pair` of job `job_id` (ETag-guarded read-modify-write) and settles the
/// job's status. A pair that already has a final status is left as it is (a redelivered
/// message does not overwrite the outcome). Returns the job as written.
pub async fn record_pair(
    store: &dyn BlobStore,
    job_id: &str,
    update: &JobPair,
) -> Result<ReplicateJob, StoreError> {
    let path = job_path(job_id);
    let (job, _) = update_with_retry(store, &path, |current: Option<ReplicateJob>| {
        let Some(mut job) = current else {
            return Err(StoreError::NotFound {
                resource: path.clone(),
            });
        };
        if let Some(p) = job.pairs.iter_mut().find(|p| p.pair == update.pair)
            && !p.status.is_final()
        {
            *p = update.clone();
        }
        job.updated_at = update.updated_at;
        job.settle();
        Ok(job)
    })
    .await?;
    Ok(job)
}

/// The timer's cursor: the pairs the current (unfinished) pass has done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// When the pass this cursor belongs to started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Pairs done by that pass (observed and applied, or paused, or failed for good).
    pub done: Vec<String>,
    /// Ticks that ran out of budget in this pass.
    #[serde(default)]
    pub ticks: u32,
}

/// Reads the cursor of `trigger`; `None` when the last pass finished (or none ran).
pub async fn load_cursor(
    store: &dyn BlobStore,
    trigger: &str,
) -> Result<Option<Cursor>, StoreError> {
    Ok(get_json::<Cursor>(store, &cursor_path(trigger))
        .await?
        .map(|(c, _)| c))
}

/// Writes the cursor of `trigger` (one timer runs at a time: the host's singleton lock).
pub async fn save_cursor(
    store: &dyn BlobStore,
    trigger: &str,
    cursor: &Cursor,
) -> Result<(), StoreError> {
    put_json(store, &cursor_path(trigger), cursor, Precondition::None)
        .await
        .map(|_| ())
}

/// Deletes the cursor of `trigger` (the pass reached its end).
pub async fn clear_cursor(store: &dyn BlobStore, trigger: &str) -> Result<(), StoreError> {
    store.delete(&cursor_path(trigger), None).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str, status: PairStatus) -> JobPair {
        JobPair {
            pair: name.into(),
            status,
            rounds: 0,
            counts: None,
            error: None,
            reason: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn job(pairs: Vec<JobPair>) -> ReplicateJob {
        ReplicateJob {
            job_id: new_job_id(),
            status: JobStatus::Running,
            dry_run: false,
            prune: false,
            trigger: "ReplicateNow".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            pairs,
        }
    }

    #[test]
    fn a_job_runs_until_every_pair_is_final_then_says_how_it_went() {
        use PairStatus::*;
        for (pairs, want) in [
            (vec![Succeeded, Queued], JobStatus::Running),
            (vec![Succeeded, Paused], JobStatus::Succeeded),
            (vec![Succeeded, Failed], JobStatus::Partial),
            (vec![Partial], JobStatus::Partial),
            (vec![Failed, Paused], JobStatus::Failed),
        ] {
            let mut j = job(pairs
                .iter()
                .enumerate()
                .map(|(i, s)| pair(&format!("p{i}"), *s))
                .collect());
            j.settle();
            assert_eq!(j.status, want, "{pairs:?}");
        }
    }

    #[tokio::test]
    async fn recording_a_pair_settles_the_job_and_never_overwrites_a_final_outcome() {
        let store = crate::store::MemoryBlobStore::new();
        let j = job(vec![pair("a", PairStatus::Queued)]);
        create(&store, &j).await.expect("create");
        assert!(create(&store, &j).await.is_err(), "a job is created once");
        let done = record_pair(&store, &j.job_id, &pair("a", PairStatus::Succeeded))
            .await
            .expect("record");
        assert_eq!(done.status, JobStatus::Succeeded);
        let again = record_pair(&store, &j.job_id, &pair("a", PairStatus::Failed))
            .await
            .expect("record");
        assert_eq!(again.pairs[0].status, PairStatus::Succeeded);
        let missing = record_pair(&store, "nope", &pair("a", PairStatus::Failed)).await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
        assert!(is_job_id(&j.job_id) && !is_job_id("../x") && !is_job_id(""));
    }
}
