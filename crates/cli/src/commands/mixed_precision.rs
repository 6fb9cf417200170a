//! `joule mixed-precision`: the energy-guided search over per-layer weight and activation
//! widths, scored on a holdout carved from the training split, compared with every uniform
//! width. docs/quantize.md documents the output folder and `summary.json`.

use crate::args::{DataArgs, MachineArgs};
use crate::output::out;
use anyhow::Result;
use joule_lab::mixed::{self as lab, Event, MixedOptions, Operand};
use joule_lab::quantize as q;
use joule_lab::LabError;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A trained model: a .safetensors checkpoint (from `joule train`) or an .onnx file.
    #[arg(long)]
    model: String,
    #[command(flatten)]
    dataset: DataArgs,
    /// The machine whose energy the search lowers (default: eyeriss).
    #[command(flatten)]
    machine: MachineArgs,
    /// The most holdout accuracy may fall below float, in percentage points.
    #[arg(long, default_value_t = 0.5, allow_hyphen_values = true)]
    max_drop: f64,
    /// Stop once energy is at most this fraction of uniform 8/8's (e.g. 0.5x).
    #[arg(long)]
    energy_budget: Option<String>,
    /// The widths a step moves between, descending; the search starts at the first.
    #[arg(long, default_value = "8,6,5,4,3,2")]
    ladder: String,
    /// Uniform widths (W = A) to compare against.
    #[arg(long, default_value = "2,3,4,5,6,7,8")]
    uniform: String,
    /// Training images carved off to score candidates on; train the model with the same
    /// `--holdout` and `--seed` so that it never saw them.
    #[arg(long, default_value_t = 2000)]
    holdout: usize,
    /// Weight quantizer: uniform, power-of-two, ternary or binary.
    #[arg(long, default_value = "uniform")]
    scheme: String,
    /// Activation range calibration: mse or minmax.
    #[arg(long, default_value = "mse")]
    calibration: String,
    #[arg(long, default_value_t = 512)]
    calibration_images: usize,
    /// First and last layers: 8 (kept at 8 bits, not searched) or same (searched too).
    #[arg(long, default_value = "8")]
    first_last: String,
    /// Short QAT of every candidate on this many training images before scoring (0: PTQ).
    #[arg(long, default_value_t = 0)]
    fine_tune_images: usize,
    #[arg(long, default_value_t = 0.001)]
    lr: f32,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Output folder (created; must not hold a run yet unless --resume).
    #[arg(long)]
    out: PathBuf,
    /// Continue the search in --out after its last finished step.
    #[arg(long)]
    resume: bool,
}

fn options(args: &Args) -> Result<MixedOptions, LabError> {
    let mut o = MixedOptions::new(
        &args.model,
        args.dataset.spec(),
        &args.machine.name(),
        args.max_drop,
        args.out.clone(),
    );
    let c = &mut o.config;
    c.ladder = lab::parse_widths("ladder", &args.ladder)?;
    c.energy_budget = args
        .energy_budget
        .as_deref()
        .map(lab::parse_budget)
        .transpose()?;
    c.quant.scheme = q::parse_scheme(&args.scheme)?;
    c.quant.calibration = q::parse_calibration(&args.calibration)?;
    c.quant.calibration_images = args.calibration_images;
    c.quant.first_last = q::parse_first_last(&args.first_last)?;
    c.quant.seed = args.seed;
    c.fine_tune = (args.fine_tune_images > 0).then_some(joule_lab::mixed::FineTune {
        images: args.fine_tune_images,
        learning_rate: args.lr,
        batch_size: args.batch_size,
    });
    o.uniform = lab::parse_widths("uniform", &args.uniform)?;
    o.holdout = args.holdout;
    o.resume = args.resume;
    Ok(o)
}

fn describe(p: &joule_lab::mixed::Proposal) -> String {
    let what = match p.operand {
        Operand::Weight => "weights",
        Operand::Activation => "activations",
    };
    format!("{} {what} {} -> {}", p.layer, p.from, p.to)
}

pub fn run(args: Args) -> Result<()> {
    joule_lab::init_threads(args.threads)?;
    let options = options(&args)?;
    let summary = lab::mixed_precision(&options, |event| match event {
        Event::Start(m) => eprintln!(
            "start (uniform {}): energy {:.4e}, holdout {:.2}%",
            options.config.ladder[0],
            m.energy,
            100.0 * m.holdout_accuracy
        ),
        Event::Scored(p) => eprintln!(
            "  {:<32} energy {:.4e}, holdout {:.2}%",
            describe(p),
            p.energy.unwrap_or(f64::NAN),
            100.0 * p.accuracy.unwrap_or(f64::NAN)
        ),
        Event::Kept(m) => eprintln!(
            "step {}: kept {}: energy {:.4e}, holdout {:.2}%",
            m.step,
            m.change.as_ref().map(describe).unwrap_or_default(),
            m.energy,
            100.0 * m.holdout_accuracy
        ),
        Event::Stopped(status) => {
            eprintln!("search stopped: {status:?}; scoring on the test split")
        }
    })?;
    out!("{}", lab::report(&summary));
    Ok(())
}
