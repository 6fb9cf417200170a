//! The flags of `joule adapt`, turned into the library's [`AdaptOptions`].

use crate::args::{DataArgs, MachineArgs, TimingArgs};
use anyhow::Result;
use clap::ValueEnum;
use joule_lab::adapt::AdaptOptions;
use joule_lab::{AdaptConfig, Budget, Selection};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A trained model: a .safetensors checkpoint (or zoo name / .onnx with weights).
    #[arg(long)]
    model: String,
    #[command(flatten)]
    dataset: DataArgs,
    /// kind=value: latency=0.5x, energy=0.4x, macs=200000, weights=0.3x (repeatable).
    #[arg(long, required = true)]
    budget: Vec<String>,
    /// Output folder: every iteration's network, history, summary.json, plots.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out after an interruption.
    #[arg(long)]
    resume: bool,
    /// A latency table (default: built into <out>/lut.json when latency is budgeted or measured).
    #[arg(long)]
    lut: Option<PathBuf>,
    /// Build the uniform width-multiplier baseline (every prunable layer shrunk by one factor,
    /// fine-tuned like the final network, matched to it on measured latency, else on the first
    /// budget). Default: on when a latency budget is given.
    #[arg(long, conflicts_with = "no_baseline")]
    baseline: bool,
    /// Also fine-tune the uniform network of every width (the baseline's accuracy-latency
    /// curve; implies --baseline).
    #[arg(long, conflicts_with = "no_baseline")]
    baseline_curve: bool,
    /// Skip the baseline even with a latency budget.
    #[arg(long)]
    no_baseline: bool,
    /// Do not measure each family member's real latency.
    #[arg(long)]
    no_measure: bool,
    /// The machine of energy budgets and reported energies (default: eyeriss).
    #[command(flatten)]
    machine: MachineArgs,
    /// Filter counts per prunable layer in the channel grid of the latency table.
    #[arg(long, default_value_t = 8)]
    levels: usize,
    /// Training images used (0: all of the training split minus the holdout).
    #[arg(long, default_value_t = 0)]
    train_samples: usize,
    /// Holdout images carved from the training split (never the test split).
    #[arg(long, default_value_t = 2000)]
    holdout: usize,
    /// Most NetAdapt iterations.
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// r0: first resource reduction, as a fraction of the original.
    #[arg(long, default_value_t = 0.1)]
    initial_reduction: f64,
    /// Per-iteration decay of the reduction (target = current - r0 * decay^i).
    #[arg(long, default_value_t = 0.96)]
    decay: f64,
    /// Mini-batches of short-term fine-tuning per candidate.
    #[arg(long, default_value_t = 20)]
    short_term_batches: usize,
    /// Epochs of long-term fine-tuning of the final network.
    #[arg(long, default_value_t = 1)]
    long_term_epochs: usize,
    /// Fine-tuning batch size.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Fine-tuning learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// How the iteration's candidate is chosen.
    #[arg(long, default_value = "accuracy")]
    selection: SelectionArg,
    /// Seed of every random choice (holdout split, shuffling).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads for training (default: all cores; --threads sets the measured engine's).
    #[arg(long)]
    pub train_threads: Option<usize>,
    #[command(flatten)]
    timing: TimingArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum SelectionArg {
    Accuracy,
    DropPerResource,
}

impl Args {
    /// The validated library configuration.
    pub fn options(&self) -> Result<AdaptOptions> {
        let args = self;
        let budgets = args
            .budget
            .iter()
            .map(|b| Budget::parse(b))
            .collect::<Result<Vec<_>, _>>()?;
        let latency = budgets.iter().any(|b| b.resource.name() == "latency");
        let config = AdaptConfig {
            model: args.model.clone(),
            data: args.dataset.data.clone(),
            budgets,
            initial_reduction: args.initial_reduction,
            decay: args.decay,
            max_iterations: args.iterations,
            levels: args.levels,
            short_term_batches: args.short_term_batches,
            long_term_epochs: args.long_term_epochs,
            batch_size: args.batch_size,
            learning_rate: args.lr,
            selection: match args.selection {
                SelectionArg::Accuracy => Selection::Accuracy,
                SelectionArg::DropPerResource => Selection::DropPerResource,
            },
            seed: args.seed,
            baseline_curve: args.baseline_curve,
            baseline: args.baseline || args.baseline_curve || (!args.no_baseline && latency),
        };
        let options = AdaptOptions {
            config,
            data: args.dataset.spec(),
            out: args.out.clone(),
            resume: args.resume,
            lut: args.lut.clone(),
            measure: !args.no_measure,
            hw: args.machine.name(),
            train_samples: args.train_samples,
            holdout: args.holdout,
            timing: args.timing.timing(),
        };
        Ok(options)
    }
}
