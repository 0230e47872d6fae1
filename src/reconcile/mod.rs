//! Replicate share configuration from a primary Data Share account to its secondary.
//!
//! Pipeline: observe both accounts (lists only) → normalise to [`model::AccountModel`] → map
//! every data set through the pair's store rules ([`mapping`]) → [`diff::plan`] → ordered
//! [`plan::Plan`] → apply with bounded concurrency.
//!
//! Layering: [`model`], [`mapping`], [`diff`], [`plan`] and [`render`] are pure (no IO, no
//! `arm`/`config` imports) and carry the table-driven tests. [`convert`] translates between
//! the ARM models and the normalised model (pure, imports `arm::models`). Only observe/apply
//! touch ARM.
//!
//! Guarantees: level-triggered — each run observes afresh and depends on nothing remembered.
//! Never a second invitation for a target already holding a pending or accepted one; never a
//! data set pointed at a primary-region store; nothing deleted unless pruning was asked for.

pub mod apply;
pub mod cli;
pub mod convert;
pub mod diff;
pub mod guard;
pub mod invite;
pub mod job;
pub mod mapping;
pub mod model;
pub mod observe;
pub mod pair;
pub mod plan;
pub mod render;
pub mod report;
pub mod schedule;
