//! The readiness layer's error type: one variant per failed operation, carrying the pair or
//! resource it was about and the cause. Messages are lower-case and never contain secrets (the
//! webhook URL is never part of an error).

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReadinessError {
    #[error("could not store the readiness report of pair {pair} at {path}")]
    StoreReport {
        pair: String,
        path: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("could not load the readiness report of pair {pair}")]
    LoadReport {
        pair: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("could not update the readiness state of pair {pair}")]
    UpdateState {
        pair: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("could not send the readiness notification of pair {pair} to queue {queue}")]
    SendNotification {
        pair: String,
        queue: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("could not encode the readiness notification of pair {pair}")]
    EncodeNotification {
        pair: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("notification webhook for pair {pair} failed after {attempts} attempts: {reason}")]
    Webhook {
        pair: String,
        attempts: u32,
        reason: String,
    },
    #[error("could not observe {resource_id} for pair {pair}")]
    Observe {
        pair: String,
        resource_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("pair {pair} is not in the DR config")]
    UnknownPair { pair: String },
}

impl ReadinessError {
    /// Whether retrying later may succeed (storage hiccups, webhook outages, ARM transients).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::StoreReport { source, .. }
            | Self::LoadReport { source, .. }
            | Self::UpdateState { source, .. }
            | Self::SendNotification { source, .. } => source.is_transient(),
            Self::Webhook { .. } | Self::Observe { .. } => true,
            Self::EncodeNotification { .. } | Self::UnknownPair { .. } => false,
        }
    }
}
