//! datashare-dr: disaster recovery for Azure Data Share, shipped as an Azure Functions custom handler.
//!
//! Layout (see docs/CONTRACTS.md for the names other parts rely on):
//! - [`host`]: the Functions custom-handler wire format (edge only).
//! - [`handlers`]: one module per Function, decode → one domain call → encode.
//! - [`config`]: runtime settings from env and the DR topology TOML.
//! - [`arm`]: typed Data Share ARM client.
//! - [`store`]: queue and blob adapters (Azure Storage / Azurite, and in-memory twins).
//! - [`reconcile`]: replicate share configuration primary → secondary.
//! - [`readiness`]: readiness checks and reports.
//! - [`failover`]: alerts, runs and queue-chained stages.
//! - [`notify`]: notification channels (webhook, Teams card): queue messages per channel, delivery.
//! - [`pair_state`]: `pairs/{pair}.json` — who serves, the failover phase, what the tool created.
//! - [`sim`]: an ARM-faithful Data Share simulator for tests, drills and benchmarks.
//! - [`startup`], [`telemetry`], [`cli`]: process wiring.
//! - [`bench`]: benchmarks (`datashare-dr bench`).

pub mod arm;
pub mod bench;
pub mod cli;
pub mod config;
pub mod failover;
pub mod handlers;
pub mod host;
pub mod notify;
pub mod pair_state;
pub mod readiness;
pub mod reconcile;
pub mod sim;
pub mod startup;
pub mod store;
pub mod telemetry;
