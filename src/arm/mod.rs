//! Typed Azure Resource Manager client for Azure Data Share.
//!
//! - [`id`]: resource-id newtypes (parse/print/compare case-insensitively/navigate).
//! - [`models`]: typed request/response bodies of the Data Share API (2021-08-01) plus the
//!   generic ARM resources the readiness checks read.
//!
//! Must not import reconcile, readiness, failover, handlers or host.

pub mod id;
pub mod models;
