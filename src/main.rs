//! Thin entry point: parse the command line and hand over to the owning module.

use clap::Parser;
use datashare_dr::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Serve => 0,
        _ => {
            eprintln!("error: this subcommand is being built");
            1
        }
    };
    std::process::exit(code);
}
