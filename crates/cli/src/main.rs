//! `joule`: a thin command-line layer over joule's library crates. Each subcommand lives in
//! its own module under `commands/` and turns validated arguments into library calls.

mod commands;
mod data_args;
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
            eprintln!("joule: error: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

/// The whole error chain on one line, outermost first. Library errors often spell out their
/// cause in their own message and also expose it as `source()`; a cause already quoted by the
/// message before it is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
}
