//! `joule quantize`: post-training quantization and quantization-aware fine-tuning of a
//! trained model on real data, with its energy on a machine at the quantized widths.
//! docs/quantize.md documents the output folder and `summary.json`.

use crate::args::{DataArgs, MachineArgs};
use crate::output::out;
use anyhow::Result;
use joule_lab::quantize::{self as lab, QuantizeOptions};
use joule_lab::LabError;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A trained model: a .safetensors checkpoint (from `joule train`) or an .onnx file.
    #[arg(long)]
    model: String,
    #[command(flatten)]
    dataset: DataArgs,
    /// The machine whose energy is reported at the quantized widths (default: eyeriss).
    #[command(flatten)]
    machine: MachineArgs,
    /// Weight bits, 2 to 16 (ternary and binary weights store 2 and 1 bits). Read as text so
    /// that a bad value is the library's one-line error.
    #[arg(long, default_value = "8", allow_hyphen_values = true)]
    weight_bits: String,
    /// Activation bits, 2 to 16.
    #[arg(long, default_value = "8", allow_hyphen_values = true)]
    activation_bits: String,
    /// Per-layer widths over the defaults: `layer=W/A,...` (e.g. `conv2=4/4,fc1=2/`).
    #[arg(long, default_value = "")]
    layer_bits: String,
    /// Weight quantizer: uniform, power-of-two, ternary or binary.
    #[arg(long, default_value = "uniform")]
    scheme: String,
    /// Activation range calibration: mse (clip of least error) or minmax.
    #[arg(long, default_value = "mse")]
    calibration: String,
    /// Training images to calibrate activation ranges on.
    #[arg(long, default_value_t = 512)]
    calibration_images: usize,
    /// First and last layers: 8 (uniform, at least 8 bits) or same (like the others).
    #[arg(long, default_value = "8")]
    first_last: String,
    /// Quantization-aware fine-tuning epochs (0: post-training quantization only).
    #[arg(long, default_value_t = 0)]
    qat_epochs: usize,
    /// QAT base learning rate (SGD, momentum 0.9, cosine over the epochs).
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// QAT batch size.
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
    /// Continue the run in --out after its last finished epoch.
    #[arg(long)]
    resume: bool,
}

fn options(args: &Args) -> Result<QuantizeOptions, LabError> {
    let weight_bits = lab::parse_bits("weight_bits", &args.weight_bits)?;
    let activation_bits = lab::parse_bits("activation_bits", &args.activation_bits)?;
    let mut options = QuantizeOptions::new(
        &args.model,
        args.dataset.spec(),
        &args.machine.name(),
        weight_bits,
        activation_bits,
        args.out.clone(),
    );
    let c = &mut options.config;
    c.layers = lab::parse_layer_bits(&args.layer_bits)?;
    c.scheme = lab::parse_scheme(&args.scheme)?;
    c.calibration = lab::parse_calibration(&args.calibration)?;
    c.calibration_images = args.calibration_images;
    c.first_last = lab::parse_first_last(&args.first_last)?;
    c.qat = lab::qat(args.qat_epochs, args.lr, args.batch_size);
    c.seed = args.seed;
    options.resume = args.resume;
    Ok(options)
}

pub fn run(args: Args) -> Result<()> {
    joule_lab::init_threads(args.threads)?;
    let options = options(&args)?;
    let summary = lab::quantize(&options, |event| match event {
        lab::Event::Float { accuracy } => {
            eprintln!(
                "{}: float test accuracy {:.2}%",
                args.model,
                100.0 * accuracy
            )
        }
        lab::Event::Ptq { accuracy } => {
            eprintln!("post-training quantization: {:.2}%", 100.0 * accuracy)
        }
        lab::Event::Epoch(e) => eprintln!(
            "QAT epoch {}: lr {:.4}, loss {:.4}, test accuracy {:.2}%",
            e.epoch + 1,
            e.learning_rate,
            e.mean_loss,
            100.0 * e.accuracy
        ),
    })?;
    out!("{}", lab::report(&summary));
    Ok(())
}
