//! The one error type of the ARM layer, and the one place that decides retryability.
//!
//! Every variant carries the spec operation name (`Shares_Create`, ...) and the resource id
//! (or URL) it was acting on; API errors also carry the HTTP status, ARM error code/message
//! and the `x-ms-correlation-request-id` / `x-ms-request-id` of the answer.
//!
//! Must not import reconcile, readiness, failover, handlers or host.

use std::time::Duration;

use super::auth::AuthError;
use super::id::IdError;
use super::models::{ErrorInfo, OperationStatus};

/// An error answer from ARM or the resource provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub operation: String,
    pub resource: String,
    pub status: u16,
    pub code: String,
    pub message: String,
    /// `error.details` of the body, if any.
    pub details: Vec<ErrorInfo>,
    pub correlation_id: Option<String>,
    pub request_id: Option<String>,
    /// `Retry-After` / `x-ms-retry-after-ms` of the answer, if any.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on `{}` failed: HTTP {} {}: {} (correlation id {})",
            self.operation,
            self.resource,
            self.status,
            self.code,
            self.message,
            self.correlation_id.as_deref().unwrap_or("-")
        )
    }
}

/// A long-running operation that ended `Failed` or `Canceled`.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationFailure {
    pub operation: String,
    pub resource: String,
    pub status: OperationStatus,
    pub code: String,
    pub message: String,
    pub correlation_id: Option<String>,
}

impl std::fmt::Display for OperationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on `{}` ended {}: {}: {} (correlation id {})",
            self.operation,
            self.resource,
            self.status,
            self.code,
            self.message,
            self.correlation_id.as_deref().unwrap_or("-")
        )
    }
}

/// Errors of ARM calls.
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// ARM (or the resource provider) answered with a non-success status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The request did not complete (connect, TLS, timeout, reset).
    #[error("{operation} on `{resource}` failed: transport error")]
    Transport {
        operation: String,
        resource: String,
        #[source]
        source: reqwest::Error,
    },
    /// The call's overall deadline passed (including retries and throttling waits).
    #[error("{operation} on `{resource}` did not finish within {deadline:?} ({attempts} attempts)")]
    Deadline {
        operation: String,
        resource: String,
        deadline: Duration,
        attempts: u32,
        #[source]
        last: Option<Box<ArmError>>,
    },
    /// A success answer whose body does not decode into the model.
    #[error("{operation} on `{resource}`: cannot decode the response body (HTTP {status})")]
    Decode {
        operation: String,
        resource: String,
        status: u16,
        correlation_id: Option<String>,
        #[source]
        source: serde_json::Error,
    },
    /// A long-running operation ended `Failed` or `Canceled`.
    #[error("{0}")]
    OperationFailed(Box<OperationFailure>),
    /// The service broke the LRO or paging protocol (missing header, foreign poll URL,
    /// nextLink loop, too many pages).
    #[error("{operation} on `{resource}`: {reason}")]
    Protocol {
        operation: String,
        resource: String,
        reason: String,
    },
    /// Authentication failed (building the credential or getting a token).
    #[error("{operation} on `{resource}`: authentication failed")]
    Auth {
        operation: String,
        resource: String,
        #[source]
        source: Box<AuthError>,
    },
    /// A resource id could not be built or parsed.
    #[error("{operation}: bad resource id")]
    BadId {
        operation: String,
        #[source]
        source: IdError,
    },
    /// A request body could not be encoded.
    #[error("{operation} on `{resource}`: cannot encode the request body")]
    Encode {
        operation: String,
        resource: String,
        #[source]
        source: serde_json::Error,
    },
    /// The client settings are invalid (endpoint/auth combination, bad URL).
    #[error("invalid ARM client settings")]
    Settings {
        #[source]
        source: Box<AuthError>,
    },
    /// The client settings are invalid (other reasons).
    #[error("invalid ARM client settings: {reason}")]
    BadSettings { reason: String },
    /// A long-running operation did not finish within the client's hand-off budget
    /// ([`ArmClient::with_lro_handoff`](super::client::ArmClient::with_lro_handoff)): the
    /// operation runs on in ARM, and the caller keeps the handle to poll it later (a failover
    /// stage stores it on the run and re-enqueues instead of sleeping).
    #[error("{} on `{}` is still running (handed over to be polled later)", handle.operation, handle.resource)]
    LroPending {
        handle: Box<super::client::LroHandle>,
    },
}

impl ArmError {
    /// The API error answer, if this is one (also inside `Deadline`).
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(a) => Some(a),
            Self::Deadline { last: Some(l), .. } => l.api(),
            _ => None,
        }
    }

    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(a) => Some(a.status),
            Self::Decode { status, .. } => Some(*status),
            Self::Deadline { last: Some(l), .. } => l.status(),
            _ => None,
        }
    }

    /// The ARM error code (`ResourceNotFound`, `Conflict`, ...), for API and LRO errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(a) => Some(&a.code),
            Self::OperationFailed(o) => Some(&o.code),
            Self::Deadline { last: Some(l), .. } => l.code(),
            _ => None,
        }
    }

    /// `x-ms-correlation-request-id` of the failed answer, when there was one.
    pub fn correlation_id(&self) -> Option<&str> {
        match self {
            Self::Api(a) => a.correlation_id.as_deref(),
            Self::OperationFailed(o) => o.correlation_id.as_deref(),
            Self::Decode { correlation_id, .. } => correlation_id.as_deref(),
            Self::Deadline { last: Some(l), .. } => l.correlation_id(),
            _ => None,
        }
    }

    /// The operation name.
    pub fn operation(&self) -> &str {
        match self {
            Self::Api(a) => &a.operation,
            Self::OperationFailed(o) => &o.operation,
            Self::Transport { operation, .. }
            | Self::Deadline { operation, .. }
            | Self::Decode { operation, .. }
            | Self::Protocol { operation, .. }
            | Self::Auth { operation, .. }
            | Self::BadId { operation, .. }
            | Self::Encode { operation, .. } => operation,
            Self::LroPending { handle } => &handle.operation,
            Self::Settings { .. } | Self::BadSettings { .. } => "ArmClient_New",
        }
    }

    /// Whether the same call may succeed if retried later: 429, 408, 5xx, transport errors,
    /// an exceeded deadline, and token-fetch failures. Never other 4xx. This is the only
    /// place that decides retryability (the client's retry loop and callers such as queue
    /// stages both ask it).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api(a) => is_transient_status(a.status),
            Self::Transport { source, .. } => !source.is_builder() && !source.is_redirect(),
            Self::Deadline { .. } | Self::LroPending { .. } => true,
            Self::Auth { source, .. } => matches!(**source, AuthError::GetToken { .. }),
            Self::Decode { .. }
            | Self::OperationFailed(_)
            | Self::Protocol { .. }
            | Self::BadId { .. }
            | Self::Encode { .. }
            | Self::Settings { .. }
            | Self::BadSettings { .. } => false,
        }
    }

    /// The handle of a long-running operation handed over to the caller.
    pub fn pending_operation(&self) -> Option<&super::client::LroHandle> {
        match self {
            Self::LroPending { handle } => Some(handle),
            _ => None,
        }
    }

    /// 404 (resource or parent not found).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// 409 Conflict.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// 429 Too Many Requests.
    pub fn is_throttled(&self) -> bool {
        self.status() == Some(429)
    }
}

/// Statuses worth retrying: 408, 429 and every 5xx.
pub fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// `Result<T, ArmError>` helpers.
pub trait ArmResultExt<T> {
    /// Maps a 404 to `Ok(None)`.
    fn optional(self) -> Result<Option<T>, ArmError>;
}

impl<T> ArmResultExt<T> for Result<T, ArmError> {
    fn optional(self) -> Result<Option<T>, ArmError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> ArmError {
        ArmError::Api(Box::new(ApiError {
            operation: "Shares_Get".into(),
            resource: "/x".into(),
            status,
            code: "C".into(),
            message: "m".into(),
            details: vec![],
            correlation_id: Some("corr".into()),
            request_id: None,
            retry_after: None,
        }))
    }

    #[test]
    fn only_429_408_and_5xx_are_transient() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(api(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 412, 422] {
            assert!(!api(s).is_transient(), "{s}");
        }
    }

    #[test]
    fn api_error_message_names_operation_status_code_and_correlation_id() {
        let m = api(409).to_string();
        for part in ["Shares_Get", "/x", "409", "C", "corr"] {
            assert!(m.contains(part), "{m}");
        }
        assert!(api(409).is_conflict());
        assert!(api(404).is_not_found());
        let r: Result<(), ArmError> = Err(api(404));
        assert!(matches!(r.optional(), Ok(None)));
    }
}
