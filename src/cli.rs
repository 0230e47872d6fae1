//! Command line: parses arguments and hands each subcommand to the module that owns it.
//!
//! Subcommand, flag names and exit codes are operator interfaces (runbooks call them): add, never
//! rename. Every `run` function returns the process exit code; errors are printed once by `main`.

pub mod progress;
pub mod suggest;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit code for usage and configuration errors (BSD `EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "datashare-dr",
    version,
    about = "Disaster recovery for Azure Data Share"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as the Azure Functions custom handler (the host starts this).
    Serve,
    /// Run the Data Share ARM simulator.
    Sim(SimArgs),
    /// Show what replicate would change (like `terraform plan`).
    Plan(PlanArgs),
    /// Replicate share configuration from primary to secondary.
    Replicate(ReplicateArgs),
    /// Evaluate readiness of every pair (exit 0 Ready, 1 Degraded, 2 NotReady, 3 cannot assess).
    Check(CheckArgs),
    /// Start, inspect, approve or cancel failover / drill / failback runs.
    #[command(subcommand)]
    Failover(FailoverCommand),
    /// Offline drill: simulator, replicate, readiness, region outage, alert, failover, report.
    Drill(DrillArgs),
    /// Benchmarks against the built-in simulator; prints a results table.
    Bench(BenchArgs),
    /// Internal: the bare std::net listener the cold-start benchmark compares `serve` with
    /// (binds 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT, answers every request with 404).
    #[command(hide = true, name = "bench-baseline-listener")]
    BenchBaselineListener,
    /// Internal: the child process of `bench readiness` (one check of the config named by
    /// `DSDR_BENCH_READINESS_CONFIG`; prints its time and its own peak RSS as one JSON line).
    #[command(hide = true, name = "bench-readiness-probe")]
    BenchReadinessProbe,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on (loopback only), e.g. 127.0.0.1:0.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Probability (0..1) of answering 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    pub fault_429: f64,
    /// Probability (0..1) of answering a 5xx.
    #[arg(long, default_value_t = 0.0)]
    pub fault_5xx: f64,
    /// Seed for repeatable fault injection and generated estates.
    #[arg(long)]
    pub seed: Option<u64>,
    /// ARM throttling emulation: on or off.
    #[arg(long, default_value = "on")]
    pub throttle: String,
    /// Page size for list operations (nextLink paging).
    #[arg(long)]
    pub page_size: Option<usize>,
    /// Delay before async operations report Succeeded, in milliseconds.
    #[arg(long)]
    pub lro_delay_ms: Option<u64>,
    /// Generate an estate: shares=S,datasets=D,consumers=C.
    #[arg(long)]
    pub populate: Option<String>,
    /// Write a DR config TOML describing the simulated pair.
    #[arg(long)]
    pub write_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// DR config TOML (defaults to $DR_CONFIG_PATH).
    #[arg(long, env = "DR_CONFIG_PATH")]
    pub config: PathBuf,
    /// Only this pair.
    #[arg(long)]
    pub pair: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Include deletion of extra secondary items.
    #[arg(long)]
    pub prune: bool,
    /// Record every ARM exchange into this directory as sanitised SessionRecords JSON
    /// (evidence of how your tenant's Data Share behaves; docs/recording.md).
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// With --record: keep tenant and subscription ids (tokens, SAS signatures and e-mail
    /// addresses are always sanitised).
    #[arg(long, requires = "record")]
    pub record_keep_ids: bool,
}

#[derive(Debug, Args)]
pub struct ReplicateArgs {
    /// DR config TOML (defaults to $DR_CONFIG_PATH).
    #[arg(long, env = "DR_CONFIG_PATH")]
    pub config: PathBuf,
    /// Only this pair.
    #[arg(long)]
    pub pair: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Delete extra secondary items (default: report only).
    #[arg(long)]
    pub prune: bool,
    /// Exit 0 even when some changes failed or were skipped.
    #[arg(long)]
    pub allow_partial: bool,
    /// With --prune: apply the listed deletes (never prompts; without it deletes exit 64).
    #[arg(long)]
    pub yes: bool,
    /// Run in this process without the run store (no lock taken, no pair state read), also
    /// against a non-loopback ARM endpoint.
    #[arg(long)]
    pub local: bool,
    /// Record every ARM exchange into this directory as sanitised SessionRecords JSON
    /// (evidence of how your tenant's Data Share behaves; docs/recording.md).
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// With --record: keep tenant and subscription ids (tokens, SAS signatures and e-mail
    /// addresses are always sanitised).
    #[arg(long, requires = "record")]
    pub record_keep_ids: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// DR config TOML (defaults to $DR_CONFIG_PATH).
    #[arg(long, env = "DR_CONFIG_PATH")]
    pub config: PathBuf,
    /// Only this pair.
    #[arg(long)]
    pub pair: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Also write the HTML status page (the page `ReadinessStatus` serves) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Record every ARM exchange into this directory as sanitised SessionRecords JSON
    /// (evidence of how your tenant's Data Share behaves; docs/recording.md).
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// With --record: keep tenant and subscription ids (tokens, SAS signatures and e-mail
    /// addresses are always sanitised).
    #[arg(long, requires = "record")]
    pub record_keep_ids: bool,
}

#[derive(Debug, Subcommand)]
pub enum FailoverCommand {
    /// Start a run.
    Start(FailoverStartArgs),
    /// Show a run.
    Status(FailoverRunArgs),
    /// Approve a run waiting for approval.
    Approve(FailoverDecisionArgs),
    /// Cancel a run before its next stage.
    Cancel(FailoverDecisionArgs),
    /// List the runs in the run store, newest first.
    List(FailoverListArgs),
    /// Clear a pair's failover state back to `normal` (audited; after a run failed mid-way).
    #[command(name = "reset-state")]
    ResetState(ResetStateArgs),
}

#[derive(Debug, Args)]
pub struct FailoverStartArgs {
    /// DR config TOML (defaults to $DR_CONFIG_PATH).
    #[arg(long, env = "DR_CONFIG_PATH")]
    pub config: PathBuf,
    /// Pair name.
    #[arg(long)]
    pub pair: String,
    /// failover | drill | failback
    #[arg(long, default_value = "failover")]
    pub mode: String,
    /// Wait until the run ends.
    #[arg(long)]
    pub wait: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Return the stage plan without side effects.
    #[arg(long)]
    pub dry_run: bool,
    /// Proceed even when preflight says NotReady.
    #[arg(long)]
    pub force: bool,
    /// Why (recorded in the audit trail).
    #[arg(long, default_value = "runbook")]
    pub reason: String,
    /// Run in this process without the run store (no lock taken, no pair state read), also
    /// against a non-loopback ARM endpoint.
    #[arg(long)]
    pub local: bool,
    /// Record every ARM exchange into this directory as sanitised SessionRecords JSON
    /// (evidence of how your tenant's Data Share behaves; docs/recording.md).
    #[arg(long, value_name = "DIR", requires = "local")]
    pub record: Option<PathBuf>,
    /// With --record: keep tenant and subscription ids (tokens, SAS signatures and e-mail
    /// addresses are always sanitised).
    #[arg(long, requires = "record")]
    pub record_keep_ids: bool,
}

#[derive(Debug, Args)]
pub struct ResetStateArgs {
    /// DR config TOML (defaults to $DR_CONFIG_PATH).
    #[arg(long, env = "DR_CONFIG_PATH")]
    pub config: PathBuf,
    /// Pair name.
    #[arg(long)]
    pub pair: String,
    /// Why (recorded in the pair state's audit trail).
    #[arg(long)]
    pub reason: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FailoverRunArgs {
    /// DR config TOML (defaults to $DR_CONFIG_PATH).
    #[arg(long, env = "DR_CONFIG_PATH")]
    pub config: PathBuf,
    /// Run id.
    pub run_id: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// `failover approve|cancel`: a run and why.
#[derive(Debug, Args)]
pub struct FailoverDecisionArgs {
    #[command(flatten)]
    pub run: FailoverRunArgs,
    /// Why (recorded on the run's approval or cancellation, for the audit trail).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct FailoverListArgs {
    /// DR config TOML (defaults to $DR_CONFIG_PATH).
    #[arg(long, env = "DR_CONFIG_PATH")]
    pub config: PathBuf,
    /// Only the runs of this pair.
    #[arg(long)]
    pub pair: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Generated estate size: shares=S,datasets=D,consumers=C.
    #[arg(long, default_value = "shares=5,datasets=3,consumers=2")]
    pub populate: String,
    /// Simulated ARM latency in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Machine-readable report.
    #[arg(long)]
    pub json: bool,
    /// Whose side to drill: `provider` (the pair's failover) or `consumer` (the generated
    /// consumer's failover: accept the invitation on its secondary account, map data sets to
    /// its secondary sinks, create triggers).
    #[arg(long, default_value = "provider", value_parser = ["provider", "consumer"])]
    pub role: String,
}

/// The names `bench` accepts (`table` = `all`); anything else is a usage error (64).
pub const BENCHMARKS: [&str; 7] = [
    "all",
    "table",
    "cold-start",
    "arm-reads",
    "replicate",
    "readiness",
    "failover",
];

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark: all, cold-start, arm-reads, readiness, replicate, failover.
    #[arg(default_value = "all", value_parser = BENCHMARKS)]
    pub which: String,
    /// Simulated ARM latency in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Smaller, faster variant (for CI smoke runs).
    #[arg(long)]
    pub quick: bool,
}
