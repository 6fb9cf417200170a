//! One module per subcommand; each exposes `Args` (clap) and `run(args)`.

mod stats;
mod zoo;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Command {
    /// List the built-in models.
    Zoo(zoo::Args),
    /// Per-layer and total weights, MACs and activations of a model.
    Stats(stats::Args),
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Zoo(args) => zoo::run(args),
        Command::Stats(args) => stats::run(args),
    }
}
