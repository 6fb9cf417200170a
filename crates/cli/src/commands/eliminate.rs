//! `joule eliminate`: neuron elimination without retraining (seed 003), per layer, with the
//! accuracy-energy trade-off on one or more machines. docs/eliminate.md documents the output
//! folder and `summary.json`.

use crate::args::{DataArgs, MachinesArgs};
use crate::output::out;
use anyhow::Result;
use joule_lab::eliminate::{self, EliminateEvent, EliminateOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A trained model: a .safetensors checkpoint (from `joule train`) or an .onnx file.
    #[arg(long)]
    model: String,
    #[command(flatten)]
    dataset: DataArgs,
    /// The layer whose neurons to eliminate (fully connected, or CONV channels), a comma-separated
    /// list, or `all` for every eliminable layer.
    #[arg(long, default_value = "all")]
    layer: String,
    /// Stop a layer's sweep once validation accuracy drops more than this many points.
    #[arg(long, allow_hyphen_values = true, default_value_t = 2.0)]
    max_drop: f64,
    /// Holdout images carved from the training split (never the test split): the validation
    /// split every threshold reads.
    #[arg(long, default_value_t = 2000)]
    holdout: usize,
    /// Seed of the holdout split (as `joule train --holdout N --seed S`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Default: horowitz45,eyeriss; the first orders the tables and picks `simplified.onnx`.
    #[command(flatten)]
    machines: MachinesArgs,
    /// Also refit the next layer's bias by least squares (the seed keeps it unchanged).
    #[arg(long)]
    refit_bias: bool,
    /// Training samples forming X (default: the whole training split less the holdout).
    #[arg(long)]
    samples: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Output folder (created; must not hold a run yet).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    joule_lab::init_threads(args.threads)?;
    let layers = match args.layer.as_str() {
        "all" => Vec::new(),
        list => list.split(',').map(|s| s.trim().to_string()).collect(),
    };
    let options = EliminateOptions {
        model: args.model.clone(),
        data: args.dataset.spec(),
        layers,
        max_drop: args.max_drop,
        holdout: args.holdout,
        seed: args.seed,
        hw: args.machines.names_or(&["horowitz45", "eyeriss"]),
        refit_bias: args.refit_bias,
        samples: args.samples,
        out: args.out,
    };
    let (_, tables) = eliminate::eliminate(&options, |event| {
        match event {
        EliminateEvent::Reference(r) => eprintln!(
            "{}: validation accuracy {}, test {:.2}%, {} parameters",
            args.model,
            pct(r.validation_accuracy),
            100.0 * r.accuracy,
            r.params
        ),
        EliminateEvent::Point { layer, point: p } => eprintln!(
            "{layer}: p = {:4}  validation {:>7}  test {:6.2}%  baseline {:6.2}%  params {:7}  error {:.4}",
            p.kept,
            pct(p.validation_accuracy),
            100.0 * p.accuracy,
            100.0 * p.baseline.accuracy,
            p.params,
            p.reconstruction_error
        ),
    }
    })?;
    out!("{tables}");
    Ok(())
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v))
}
