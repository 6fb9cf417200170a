//! `joule train`: fits a model (zoo name, ONNX file or checkpoint) to a dataset and saves a
//! safetensors checkpoint.

use crate::data_args::DataArgs;
use crate::load;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use joule_nn::train::Event;
use joule_nn::{checkpoint, evaluate, recipe, train, Network, OptimizerConfig, Split};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A zoo name (lenet5, lenet300, vgg-small, ...), an .onnx file or a .safetensors checkpoint.
    #[arg(long)]
    model: String,
    #[command(flatten)]
    dataset: DataArgs,
    /// Epochs (default: the model's recipe).
    #[arg(long)]
    epochs: Option<usize>,
    /// Seed of initialisation, shuffling, dropout and augmentation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Base learning rate (default: the recipe's).
    #[arg(long)]
    lr: Option<f32>,
    /// sgd (momentum 0.9) or adam (default: the recipe's optimiser).
    #[arg(long)]
    optimizer: Option<String>,
    /// Weight decay (default: the recipe's).
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Leave out this many training images, the holdout `joule adapt --holdout N` carves
    /// with the same --seed, so NetAdapt scores the model on images it never trained on.
    #[arg(long, default_value_t = 0)]
    holdout: usize,
    /// Where to write the checkpoint (.safetensors).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let source = args.dataset.source()?;
    init_threads(args.threads)?;
    let dir = args.dataset.dir();
    let mut train_set = source.load(&dir, Split::Train)?;
    if args.holdout > 0 {
        if args.holdout >= train_set.len() {
            bail!(
                "--holdout: {} must be below the training split's {} images",
                args.holdout,
                train_set.len()
            );
        }
        train_set = train_set.split_holdout(args.holdout, args.seed).0;
    }
    let test_set = source.load(&dir, Split::Test)?;
    let mut config = recipe::recipe(&args.model, source);
    config.seed = args.seed;
    if let Some(epochs) = args.epochs {
        config.epochs = epochs;
    }
    if let Some(batch) = args.batch_size {
        config.batch_size = batch;
    }
    if let Some(lr) = args.lr {
        config.learning_rate = lr;
    }
    let decay = args.weight_decay.unwrap_or(match config.optimizer {
        OptimizerConfig::Sgd { weight_decay, .. } | OptimizerConfig::Adam { weight_decay, .. } => {
            weight_decay
        }
    });
    config.optimizer = match args.optimizer.as_deref() {
        None => config.optimizer,
        Some("sgd") => OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: decay,
        },
        Some("adam") => OptimizerConfig::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: decay,
        },
        Some(other) => bail!("--optimizer: unknown optimiser {other:?} (expected sgd or adam)"),
    };
    let (OptimizerConfig::Sgd { weight_decay, .. } | OptimizerConfig::Adam { weight_decay, .. }) =
        &mut config.optimizer;
    *weight_decay = decay;
    let mut network = load_network(&args.model, args.seed)?;
    let batches = train_set.len().div_ceil(config.batch_size.max(1)) as u64;
    let bar = ProgressBar::new(batches * config.epochs as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} batches, {msg} ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    train(&mut network, &train_set, &config, |event| match event {
        Event::Batch { epoch, loss, .. } => {
            bar.set_prefix(format!("epoch {}/{}", epoch + 1, config.epochs));
            bar.set_message(format!("loss {loss:.4}"));
            bar.inc(1);
        }
        Event::Epoch {
            epoch,
            mean_loss,
            seconds,
        } => {
            let line = format!(
                "epoch {}: mean loss {mean_loss:.4}, {seconds:.1} s",
                epoch + 1
            );
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
    })?;
    bar.finish_and_clear();
    let eval = evaluate(&network, &test_set, 256)?;
    checkpoint::save(&network, &args.out)?;
    println!(
        "{} on {}: test accuracy {:.2}% ({} of {}); checkpoint {}",
        args.model,
        source.name(),
        100.0 * eval.accuracy,
        eval.correct,
        eval.samples,
        args.out.display()
    );
    Ok(())
}

pub(crate) fn init_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .context("--threads")?;
    }
    Ok(())
}

/// A checkpoint keeps its masks; a zoo or ONNX model is (re)initialised where it has no
/// weights.
pub(crate) fn load_network(spec: &str, seed: u64) -> Result<Network> {
    if spec.ends_with(".safetensors") {
        return Ok(checkpoint::load(std::path::Path::new(spec))?);
    }
    let graph = load::model(spec)?;
    Network::new(graph, seed).with_context(|| spec.to_string())
}
