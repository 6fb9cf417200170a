//! One module per subcommand; each exposes `Args` (clap) and `run(args)`.

mod eval;
mod export;
mod stats;
mod train;
mod zoo;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Command {
    /// List the built-in models.
    Zoo(zoo::Args),
    /// Per-layer and total weights, MACs and activations of a model.
    Stats(stats::Args),
    /// Train a model on a dataset and save a safetensors checkpoint.
    Train(train::Args),
    /// Test accuracy and confusion matrix of a trained model.
    Eval(eval::Args),
    /// Write a model with its weights as ONNX.
    Export(export::Args),
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Zoo(args) => zoo::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
    }
}
