//! Thin entry point: parse the command line, hand over to the owning module, exit with its code.
//!
//! Exit codes: 64 for usage/configuration errors (a missing or bad setting, named in the
//! message), 1 for other failures, else what the subcommand returns.

use clap::{CommandFactory as _, Parser as _};
use datashare_dr::cli::{Cli, Command, EXIT_USAGE, suggest};
use datashare_dr::config::Config;
use datashare_dr::startup::{self, App, StartupError};
use datashare_dr::{bench, telemetry};

fn main() {
    startup::install_crypto_provider();
    // Usage errors exit 64, not clap's 2: `check` uses 2 for NotReady, and a runbook must not
    // read a mistyped flag as a verdict. --help / --version still exit 0.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            // A mistyped subcommand, flag or value gets "a similar … exists: '…'".
            let e = suggest::with_suggestion(e, &Cli::command(), &args);
            let _ = e.print();
            std::process::exit(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let code = match cli.command {
        Command::Serve => serve(),
        Command::Sim(args) => datashare_dr::sim::run_cli(args),
        Command::Bench(args) => report(bench::run(&args)),
        Command::Check(args) => report(datashare_dr::readiness::cli::run_check(&args)),
        Command::BenchBaselineListener => bench::cold_start::baseline_listener(),
        Command::BenchReadinessProbe => report(bench::readiness::probe_main()),
        Command::Plan(args) => report(datashare_dr::reconcile::cli::run_plan(&args)),
        Command::Replicate(args) => report(datashare_dr::reconcile::cli::run_replicate(&args)),
        Command::Failover(cmd) => report(datashare_dr::failover::cli::run_failover(&cmd)),
        Command::Drill(args) => report(datashare_dr::failover::cli::run_drill(&args)),
    };
    std::process::exit(code);
}

/// Prints an `anyhow` error (with its causes) once and maps it to exit code 1.
fn report(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            1
        }
    }
}

/// `serve`: config from env (fail fast naming the key), JSON telemetry, bind, serve until SIGTERM.
fn serve() -> i32 {
    let config = match Config::from_env().and_then(|c| c.require_serve().map(|_| c)) {
        Ok(c) => c,
        Err(err) => {
            eprintln!("error: {err}");
            return EXIT_USAGE;
        }
    };
    if let Err(err) = telemetry::init(config.log_filter.as_deref()) {
        eprintln!("error: {err}");
        return EXIT_USAGE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return 1;
        }
    };
    runtime.block_on(async {
        let app = match App::build(config).await {
            Ok(app) => app,
            Err(err) => {
                eprintln!("error: {err}");
                return match err {
                    StartupError::Config(_) | StartupError::LoadDrConfig { .. } => EXIT_USAGE,
                    _ => 1,
                };
            }
        };
        match app.run_until_stopped().await {
            Ok(()) => 0,
            Err(err) => {
                tracing::error!(error = %err, "custom handler stopped with an error");
                eprintln!("error: {err}");
                1
            }
        }
    })
}
