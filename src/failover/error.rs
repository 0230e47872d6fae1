//! The failover layer's error: one enum, variants named after the failed operation, each
//! carrying the run / pair / resource it concerns and its `#[source]`.
//!
//! [`FailoverError::is_transient`] is the single classification the handlers and the
//! in-process runner use (STYLE #8): storage hiccups, ETag races and ARM 429/5xx are transient;
//! a missing run, an unknown pair or an ARM 4xx are permanent.

use crate::arm::error::ArmError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error("read run {run_id}")]
    ReadRun {
        run_id: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("list the runs in the run store")]
    ListRuns {
        #[source]
        source: Box<StoreError>,
    },
    #[error("write run {run_id}")]
    WriteRun {
        run_id: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("run {run_id} does not exist")]
    RunNotFound { run_id: String },
    #[error("take the lock of pair {pair}")]
    Lock {
        pair: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("pair {pair:?} is not configured (known: {known})")]
    UnknownPair { pair: String, known: String },
    #[error("run {run_id}: {reason}")]
    InvalidState { run_id: String, reason: String },
    #[error("enqueue stage {stage} of run {run_id}")]
    Enqueue {
        run_id: String,
        stage: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("record alert {key}")]
    RecordAlert {
        key: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("{stage} of run {run_id}: {operation} {resource}")]
    Arm {
        run_id: String,
        stage: String,
        operation: String,
        resource: String,
        #[source]
        source: Box<ArmError>,
    },
    #[error("{stage} of run {run_id}: {reason}")]
    Stage {
        run_id: String,
        stage: String,
        reason: String,
        transient: bool,
    },
    /// The stage's claim on the run record was taken over (its lease ran out, or the watchdog
    /// or another delivery replaced it): the stage stops before its next write and leaves the
    /// result to the new claimant.
    #[error("{stage} of run {run_id}: the stage claim was lost to another delivery")]
    ClaimLost { run_id: String, stage: String },
    #[error("build the ARM client")]
    ArmClient(#[source] Box<ArmError>),
}

impl FailoverError {
    /// Whether the same call may succeed later (the queue handler then answers non-2xx).
    pub fn is_transient(&self) -> bool {
        match self {
            FailoverError::ReadRun { source, .. }
            | FailoverError::WriteRun { source, .. }
            | FailoverError::Lock { source, .. }
            | FailoverError::Enqueue { source, .. }
            | FailoverError::RecordAlert { source, .. }
            | FailoverError::ListRuns { source } => {
                source.is_transient()
                    || matches!(
                        source.as_ref(),
                        StoreError::PreconditionFailed { .. } | StoreError::UpdateConflict { .. }
                    )
            }
            FailoverError::Arm { source, .. } => source.is_transient(),
            FailoverError::Stage { transient, .. } => *transient,
            FailoverError::RunNotFound { .. }
            | FailoverError::UnknownPair { .. }
            | FailoverError::InvalidState { .. }
            | FailoverError::ClaimLost { .. }
            | FailoverError::ArmClient(_) => false,
        }
    }
}
