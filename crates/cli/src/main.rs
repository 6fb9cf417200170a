//! `joule`: a thin command-line layer over joule's library crates. Each subcommand lives in
//! its own module under `commands/` and turns validated arguments into library calls.

mod commands;
mod load;
mod output;

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "joule",
    version,
    about = "Hardware-aware efficient DNN design: estimate energy, shrink networks, prove it on real data"
)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the whole context chain, outermost first.
            eprintln!("joule: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
