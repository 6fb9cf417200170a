//! `joule prune`: magnitude or energy-aware pruning of a trained model on real data, with a
//! checkpoint per step and `--resume`; the outputs are documented in docs/prune.md.

use crate::args::MachineArgs;
use crate::output::outln;
use anyhow::{bail, Result};
use clap::ValueEnum;
use joule_lab::prune::{self, PruneEvent, PruneOptions, PruneOutcome, PruneStart};
use joule_lab::{DataSpec, Method, RunConfig};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    method: Option<MethodArg>,
    /// A trained checkpoint (.safetensors), an .onnx file with weights, or a zoo name (trained
    /// first with its recipe).
    #[arg(long)]
    model: Option<String>,
    /// mnist or fashion-mnist.
    #[arg(long)]
    data: Option<String>,
    /// Folder holding the datasets (default: $JOULE_DATA, else data/).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    machine: MachineArgs,
    /// Largest accuracy drop accepted, in points of validation accuracy.
    #[arg(long, default_value_t = 1.0)]
    max_drop: f64,
    /// Holdout images carved from the training split (never the test split): the validation
    /// split the sensitivity analysis and every accept/reject read; fine-tuning uses the rest.
    #[arg(long, default_value_t = 2000)]
    holdout: usize,
    /// Output directory (must not hold a run yet).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last finished step (its settings are
    /// stored; only --data-dir, --stop-after, --compare and --threads may be given).
    #[arg(long, conflicts_with_all = ["method", "model", "out", "data", "hw", "seed", "threshold",
        "rounds", "finetune_epochs", "lr", "target_energy", "train_samples", "max_drop", "holdout"])]
    resume: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// EAP: relative output-error threshold of the first pass.
    #[arg(long)]
    threshold: Option<f64>,
    /// Passes (EAP) or levels (magnitude).
    #[arg(long)]
    rounds: Option<usize>,
    /// Epochs of each global fine-tuning / retraining.
    #[arg(long)]
    finetune_epochs: Option<usize>,
    /// Learning rate of fine-tuning.
    #[arg(long)]
    lr: Option<f32>,
    /// Stop once energy is at most this fraction of the original (an error if not reached).
    #[arg(long)]
    target_energy: Option<f64>,
    /// Use only the first N training images left after the holdout (fine-tuning and
    /// calibration).
    #[arg(long)]
    train_samples: Option<usize>,
    /// Another run's directory to draw on the same accuracy-energy chart and table.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Stop after this many steps (the run can be resumed).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    Eap,
    Magnitude,
}

pub fn run(args: Args) -> Result<()> {
    joule_lab::init_threads(args.threads)?;
    let start = match args.resume.clone() {
        Some(dir) => PruneStart::Resume {
            dir,
            data_dir: args.data_dir.clone(),
        },
        None => new_run(&args)?,
    };
    let outcome = prune::prune(
        &start,
        args.stop_after,
        args.compare.as_deref(),
        |e| match e {
            PruneEvent::Training { epochs } => {
                eprintln!(
                    "the model has no weights: training it first ({epochs} epochs, its recipe)"
                )
            }
            PruneEvent::Resuming { step } => eprintln!("resuming at step {step}"),
            PruneEvent::Step(line) => eprintln!("{line}"),
        },
    )?;
    match outcome {
        PruneOutcome::Paused { steps, dir } => eprintln!(
            "stopped after {steps} steps as asked; continue with `joule prune --resume {}`",
            dir.display()
        ),
        PruneOutcome::Finished(summary) => {
            let other = args
                .compare
                .as_deref()
                .map(prune::PruneSummary::load)
                .transpose()?;
            outln!("{}", prune::poster_table(&summary, other.as_ref()));
            eprintln!("{}", prune::timings_line(&summary.timings));
        }
    }
    Ok(())
}

fn new_run(args: &Args) -> Result<PruneStart> {
    let (Some(method), Some(model), Some(data), Some(out)) =
        (args.method, &args.model, &args.data, &args.out)
    else {
        bail!("--method, --model, --data and --out are required (or --resume <dir>)");
    };
    let mut config = RunConfig::new(match method {
        MethodArg::Eap => Method::Eap,
        MethodArg::Magnitude => Method::Magnitude,
    });
    config.seed = args.seed;
    config.max_drop = args.max_drop;
    config.holdout = args.holdout;
    config.target_energy = args.target_energy;
    config.eap.threshold = args.threshold.unwrap_or(config.eap.threshold);
    config.max_rounds = args.rounds.unwrap_or(config.max_rounds);
    config.finetune_epochs = args.finetune_epochs.unwrap_or(config.finetune_epochs);
    config.finetune_learning_rate = args.lr.unwrap_or(config.finetune_learning_rate);
    Ok(PruneStart::New {
        options: Box::new(PruneOptions {
            config,
            model: model.clone(),
            data: DataSpec::new(data, args.data_dir.as_deref()),
            hw: args.machine.name(),
            train_samples: args.train_samples,
        }),
        out: out.clone(),
    })
}
