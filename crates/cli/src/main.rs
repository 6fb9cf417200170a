//! `joule`: a thin command-line layer over `joule_lab`. Each subcommand lives in its own
//! module under `commands/`: clap arguments in, a validated library configuration, one
//! library call, output.

mod args;
mod commands;
mod output;
mod progress;

use clap::Parser;
use std::process::ExitCode;

/// The engine's buffers on cache lines ([`joule_lab::CacheAligned`] says why).
#[global_allocator]
static ALLOC: joule_lab::CacheAligned = joule_lab::CacheAligned;

#[derive(Parser)]
#[command(
    name = "joule",
    version,
    about = "Hardware-aware efficient DNN design: estimate energy, shrink networks, prove it on real data"
)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
    /// Load models whose weights hold NaN or infinity (refused by default: such a model
    /// predicts nothing).
    #[arg(long, global = true)]
    allow_non_finite: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            eprintln!("joule: {}", usage_error(&err.to_string()));
            return ExitCode::from(2);
        }
    };
    joule_lab::allow_non_finite(cli.allow_non_finite);
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("joule: error: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

/// clap's usage error on one line: the error, its possible values and tip, without the
/// usage block and the `--help` hint.
fn usage_error(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The whole error chain on one line, outermost first, with library configuration fields
/// named as the flags that set them. Library errors often spell out their cause in their
/// own message and also expose it as `source()`; a cause already quoted is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = flag_for_field(cause).unwrap_or_else(|| cause.to_string());
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
}

/// A configuration error of the library, its field spelled as the CLI flag.
/// (The machine's message already names its file, so `source` is printed here.)
fn flag_for_field(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    match cause.downcast_ref::<joule_lab::LabError>()? {
        joule_lab::LabError::Config { field, message } => {
            Some(format!("{}: {message}", flag(field)))
        }
        joule_lab::LabError::Setting {
            field,
            value,
            message,
        } => Some(format!("{} {value}: {message}", flag(field))),
        joule_lab::LabError::Machine { name, source } => Some(format!("--hw {name}: {source}")),
        joule_lab::LabError::NonFinite { source } => {
            Some(format!("{source} (--allow-non-finite loads it anyway)"))
        }
        _ => None,
    }
}

/// The flag that sets a configuration field (`max_drop` -> `--max-drop`).
fn flag(field: &str) -> String {
    let name = match field {
        "layers" => "layer",
        "eap.threshold" => "threshold",
        "max_rounds" => "rounds",
        "finetune_learning_rate" => "lr",
        "finetune" => "finetune-epochs",
        // NetAdapt's stored settings, named on a contradicting resume.
        "budgets" => "budget",
        "max_iterations" => "iterations",
        "learning_rate" => "lr",
        other => other,
    };
    format!("--{}", name.replace('_', "-"))
}
