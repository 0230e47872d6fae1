//! An ARM-faithful Azure Data Share simulator for tests, drills and benchmarks.
//!
//! Spec-driven: routes, long-running/paging flags and request validation come from the embedded
//! `DataShare.json` (2021-08-01); resources are `serde_json::Value`s shaped by that spec. On top of
//! the Data Share API it serves the minimum of other ARM resources the DR tool checks (storage
//! accounts incl. ADLS Gen2, SQL servers/databases, Synapse workspaces/SQL pools, Kusto
//! clusters/databases, role assignments) and ARM's cross-cutting behaviour: bearer auth, api-version
//! checks, token-bucket throttling, request/correlation ids, async operations, nextLink paging,
//! injected latency/faults and regional outages.
//!
//! Identities: the bearer token names the caller. `sim` is the admin principal
//! (`admin@contoso.example`, may do everything); `sim:<name>` is a named principal
//! (`sim:alice@fabrikam.example`, or `sim:alice` = `alice@alice.example`) whose tenant is the
//! e-mail domain. The first tenant that writes into a subscription owns it; other non-admin tenants
//! get 403 `AuthorizationFailed` there.
//!
//! Control API (no auth; the listener is loopback-only): `/_sim/...`, listed in `server.rs`'s
//! module docs and mirrored by the methods of [`SimHandle`].
//!
//! Invariants: listens on loopback only; never contacts the network; deterministic for a given
//! seed (generated ids, injected faults, generated estate). Depends on nothing of ours outside
//! `sim` (CONTRACTS.md).

mod populate;
mod server;
pub mod spec;
mod state;
mod throttle;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use populate::{
    AccountInfo, ConsumerInfo, Estate, PopulateSpec, StoreKind, StorePair, write_config,
    write_consumer_config,
};
pub use server::{FaultSettings, Faults, OpStats, RequestLogEntry, SimHandle, SimStats, spawn};
pub use state::{ADMIN_EMAIL, Principal, det_uuid, roles};

/// Options for [`spawn`].
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Listen address; must be loopback (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Added latency per request (async sleep), milliseconds.
    pub latency_ms: u64,
    /// Probability (0..1) of an injected 429 with `Retry-After`.
    pub fault_429: f64,
    /// Probability (0..1) of an injected 500/503.
    pub fault_5xx: f64,
    /// Seed for generated ids, injected faults and generated estates.
    pub seed: u64,
    /// ARM token-bucket throttling (on by default).
    pub throttle: bool,
    /// Items per list page (small by default so paging is exercised).
    pub page_size: usize,
    /// Time before async operations report `Succeeded`, milliseconds.
    pub lro_delay_ms: u64,
    /// Entries kept in the `/_sim/requests` ring buffer.
    pub log_capacity: usize,
    /// Creating a data set requires the account's managed identity to hold a data role on the
    /// store (Storage Blob Data Reader/Contributor/Owner on Blob/ADLS, Reader or above on SQL and
    /// Synapse, Contributor or Owner on Kusto), else 403 (off by default).
    pub store_data_roles: bool,
    /// A `CopyBased` share accepts only Blob/ADLS/SQL/Synapse data sets and an `InPlace` share
    /// only Kusto ones, else 400 `InvalidDataSetKind` (off by default).
    pub share_kind_rules: bool,
    /// A role assignment takes effect this many milliseconds after it was created: a data set
    /// PUT whose only data role on the store is younger answers 403 (0 = at once, the default).
    pub role_propagation_ms: u64,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency_ms: 0,
            fault_429: 0.0,
            fault_5xx: 0.0,
            seed: 1,
            throttle: true,
            page_size: 5,
            lro_delay_ms: 50,
            log_capacity: 10_000,
            store_data_roles: false,
            share_kind_rules: false,
            role_propagation_ms: 0,
        }
    }
}

/// Errors of the simulator layer.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the listen address '{addr}' is not a valid socket address")]
    ParseListenAddress {
        addr: String,
        #[source]
        source: std::net::AddrParseError,
    },
    #[error("refusing to listen on non-loopback address {addr}: the simulator is loopback-only")]
    RefuseNonLoopback { addr: SocketAddr },
    #[error("could not listen on {addr}")]
    BindListener {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid --populate value '{spec}': {reason}")]
    ParsePopulateSpec { spec: String, reason: String },
    #[error("invalid sim option {option}: {reason}")]
    ParseOption {
        option: &'static str,
        reason: String,
    },
    #[error("could not write the DR config to {path}")]
    WriteConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not load the embedded Data Share spec")]
    LoadSpec(#[source] spec::SpecError),
    #[error("estate generation failed at {id}: {status} {code}: {message}")]
    Populate {
        id: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("could not start the async runtime")]
    StartRuntime(#[source] std::io::Error),
}

/// `datashare-dr sim`: start the simulator, optionally generate an estate and write a DR config,
/// print `listening on http://127.0.0.1:PORT` as the first stdout line, serve until SIGTERM or
/// Ctrl-C. Returns the process exit code.
pub fn run_cli(args: crate::cli::SimArgs) -> i32 {
    match run_cli_inner(args) {
        Ok(()) => 0,
        Err(e) => {
            let mut msg = format!("error: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("{msg}");
            match e {
                SimError::ParseListenAddress { .. }
                | SimError::RefuseNonLoopback { .. }
                | SimError::ParsePopulateSpec { .. }
                | SimError::ParseOption { .. } => crate::cli::EXIT_USAGE,
                _ => 1,
            }
        }
    }
}

fn run_cli_inner(args: crate::cli::SimArgs) -> Result<(), SimError> {
    let listen: SocketAddr =
        args.listen
            .parse()
            .map_err(|source| SimError::ParseListenAddress {
                addr: args.listen.clone(),
                source,
            })?;
    let throttle = match args.throttle.as_str() {
        "on" => true,
        "off" => false,
        other => {
            return Err(SimError::ParseOption {
                option: "--throttle",
                reason: format!("'{other}' is not 'on' or 'off'"),
            });
        }
    };
    for (name, p) in [
        ("--fault-429", args.fault_429),
        ("--fault-5xx", args.fault_5xx),
    ] {
        if !(0.0..=1.0).contains(&p) {
            return Err(SimError::ParseOption {
                option: name,
                reason: format!("{p} is not a probability in 0..1"),
            });
        }
    }
    let defaults = SimOptions::default();
    let opts = SimOptions {
        listen,
        latency_ms: args.latency_ms,
        fault_429: args.fault_429,
        fault_5xx: args.fault_5xx,
        seed: args.seed.unwrap_or(defaults.seed),
        throttle,
        page_size: args.page_size.unwrap_or(defaults.page_size).max(1),
        lro_delay_ms: args.lro_delay_ms.unwrap_or(defaults.lro_delay_ms),
        log_capacity: defaults.log_capacity,
        ..defaults
    };
    let pop = args
        .populate
        .as_deref()
        .map(PopulateSpec::parse)
        .transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(SimError::StartRuntime)?;
    rt.block_on(async move {
        let handle = spawn(opts).await?;
        let estate = match pop {
            Some(p) => Some(handle.populate(&p)?),
            None => None,
        };
        if let Some(path) = &args.write_config {
            let estate = match &estate {
                Some(e) => e.clone(),
                None => handle.populate(&PopulateSpec::default())?,
            };
            let text = write_config(&estate, &handle.base_url);
            std::fs::write(path, text).map_err(|source| SimError::WriteConfig {
                path: path.clone(),
                source,
            })?;
        }
        let term = term_signal();
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {}", handle.base_url);
            let _ = out.flush();
        }
        wait_for_shutdown(term).await;
        handle.shutdown().await;
        Ok(())
    })
}

#[cfg(unix)]
type TermSignal = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type TermSignal = ();

/// Install the SIGTERM listener (before announcing readiness, so an early SIGTERM is not lost).
fn term_signal() -> TermSignal {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()
    }
}

async fn wait_for_shutdown(term: TermSignal) {
    #[cfg(unix)]
    {
        match term {
            Some(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = term;
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Generate an estate into a running simulator (same as [`SimHandle::populate`]).
pub fn populate(handle: &SimHandle, spec: &PopulateSpec) -> Result<Estate, SimError> {
    handle.populate(spec)
}
