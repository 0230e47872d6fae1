//! Typed Azure Resource Manager client for Azure Data Share (api-version 2021-08-01).
//!
//! - [`id`]: resource-id newtypes (parse/print/compare case-insensitively/navigate).
//! - [`models`]: typed request/response bodies plus the generic ARM resources the readiness
//!   checks read.
//! - [`auth`]: credential selection, the loopback rule, token cache, [`auth::Secret`].
//! - [`limiter`]: ARM-mirroring token buckets, retry policy, `Retry-After` parsing.
//! - [`error`]: [`ArmError`], the one error type; `is_transient()` decides retries.
//! - [`fault`]: what a failed call means — tool fault, unavailable, resource missing — and
//!   the pair-level verdict (region unreachable only beside an answering region).
//! - [`client`]: [`ArmClient`] — retries, rate limiting, LROs, paging, counters.
//! - [`ops`]: the Data Share operations as `ArmClient` methods.
//! - [`record`]: sanitised SessionRecords recordings of every exchange (`--record DIR`).
//!
//! Must not import reconcile, readiness, failover, handlers or host.

pub mod auth;
pub mod client;
pub mod error;
pub mod fault;
pub mod id;
pub mod limiter;
pub mod models;
pub mod ops;
pub mod record;

pub use auth::{AuthMode, Secret};
pub use client::{
    ArmClient, ArmSettings, ArmStats, CallLog, CallRecord, LroHandle, LroStart, LroStatus,
};
pub use error::{ArmError, ArmResultExt};
pub use limiter::{OpKind, RateLimits, RetryPolicy};
pub use ops::ListQuery;
pub use record::Recorder;
