//! `joule train`: fits a model (zoo name, ONNX file or checkpoint) to a dataset and saves a
//! safetensors checkpoint.

use crate::args::DataArgs;
use crate::output::outln;
use crate::progress::{bar, say};
use anyhow::Result;
use clap::ValueEnum;
use joule_lab::train::{self, Optimizer, TrainOptions};
use joule_lab::TrainEvent as Event;
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
    /// The optimiser (default: the recipe's); sgd has momentum 0.9.
    #[arg(long)]
    optimizer: Option<OptimizerArg>,
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

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Sgd,
    Adam,
}

pub fn run(args: Args) -> Result<()> {
    joule_lab::init_threads(args.threads)?;
    let options = TrainOptions {
        model: args.model.clone(),
        data: args.dataset.spec(),
        seed: args.seed,
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        optimizer: args.optimizer.map(|o| match o {
            OptimizerArg::Sgd => Optimizer::Sgd,
            OptimizerArg::Adam => Optimizer::Adam,
        }),
        weight_decay: args.weight_decay,
        holdout: args.holdout,
        out: args.out,
    };
    let progress = bar(
        0,
        "{prefix} [{bar:30}] {pos}/{len} batches, {msg} ({elapsed}, eta {eta})",
    );
    let trained = train::run(&options, |event, epochs| match event {
        Event::Batch {
            epoch,
            batches,
            loss,
            ..
        } => {
            progress.set_length((*batches * epochs) as u64);
            progress.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
            progress.set_message(format!("loss {loss:.4}"));
            progress.inc(1);
        }
        Event::Epoch {
            epoch,
            mean_loss,
            seconds,
        } => say(
            &progress,
            format!(
                "epoch {}: mean loss {mean_loss:.4}, {seconds:.1} s",
                epoch + 1
            ),
        ),
    })?;
    progress.finish_and_clear();
    outln!(
        "{} on {}: test accuracy {:.2}% ({} of {}); checkpoint {}",
        args.model,
        trained.data,
        100.0 * trained.test.accuracy,
        trained.test.correct,
        trained.test.samples,
        trained.checkpoint.display()
    );
    Ok(())
}
