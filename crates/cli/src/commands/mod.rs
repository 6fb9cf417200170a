//! One module per subcommand; each exposes `Args` (clap) and `run(args)`.

mod adapt;
mod adapt_args;
mod compare;
mod dataflows;
mod docs_tables;
mod eliminate;
mod energy;
mod eval;
mod export;
mod eyexam;
mod lut;
mod mixed_precision;
mod prune;
mod quantize;
mod report;
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
    /// Prune a trained model (magnitude or energy-aware) on real data.
    Prune(prune::Args),
    /// Quantize a trained model (PTQ, optional QAT) and report its energy at the new widths.
    Quantize(quantize::Args),
    /// Energy-guided mixed precision: per-layer widths that lower energy within an accuracy drop.
    MixedPrecision(mixed_precision::Args),
    /// Per-layer energy, cycles and DRAM traffic on a hardware model (Eyeriss-style or PIM).
    Energy(energy::Args),
    /// Eyexam: the throughput bound after each architectural constraint, per layer.
    Eyexam(eyexam::Args),
    /// Networks side by side on several machines, digital or PIM: energy, latency, utilization.
    Compare(compare::Args),
    /// Compare the RS, WS, OS and NLR dataflows at equal storage area (ISCA'16).
    Dataflows(dataflows::Args),
    /// Per-layer latency lookup tables measured on this CPU (build, predict).
    #[command(subcommand)]
    Lut(lut::Args),
    /// NetAdapt: adapt a trained model to latency, energy, MAC or weight budgets.
    Adapt(adapt::Args),
    /// Eliminate redundant neurons of a trained model without retraining (SVD + pivoted QR).
    Eliminate(eliminate::Args),
    /// One self-contained HTML page: models on machines, dataflows, and run directories.
    Report(report::Args),
    /// The tables of docs/*.md, rendered from the committed run summaries.
    #[command(subcommand)]
    DocsTables(docs_tables::Args),
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Zoo(args) => zoo::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Energy(args) => energy::run(args),
        Command::Dataflows(args) => dataflows::run(args),
        Command::Eyexam(args) => eyexam::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Eliminate(args) => eliminate::run(args),
        Command::Export(args) => export::run(args),
        Command::Lut(args) => lut::run(args),
        Command::Adapt(args) => adapt::run(args),
        Command::Prune(args) => prune::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::MixedPrecision(args) => mixed_precision::run(args),
        Command::Report(args) => report::run(args),
        Command::DocsTables(args) => docs_tables::run(args),
    }
}
