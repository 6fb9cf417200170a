//! Training and evaluation on real data: the zoo recipe with the user's overrides, the
//! seeded holdout left out, the checkpoint written atomically.

use crate::data::DataSpec;
use crate::error::LabError;
use crate::model::Model;
use joule_nn::train::Event;
use joule_nn::{checkpoint, evaluate, recipe, train, Evaluation, OptimizerConfig};
use std::path::PathBuf;

/// The optimiser, with the recipe's other settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optimizer {
    /// SGD with momentum 0.9.
    Sgd,
    Adam,
}

/// A training run: the model's recipe, each `Some` overriding it.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub model: String,
    pub data: DataSpec,
    pub seed: u64,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f32>,
    pub optimizer: Option<Optimizer>,
    pub weight_decay: Option<f32>,
    /// Training images left out (the holdout NetAdapt scores on, same seed).
    pub holdout: usize,
    pub out: PathBuf,
}

/// What a training run ended with.
#[derive(Clone, Debug)]
pub struct Trained {
    pub data: &'static str,
    pub test: Evaluation,
    pub checkpoint: PathBuf,
}

/// Trains `options.model` and saves the checkpoint; `on_event` sees every batch and epoch,
/// with the number of epochs.
pub fn run(
    options: &TrainOptions,
    mut on_event: impl FnMut(&Event, usize),
) -> Result<Trained, LabError> {
    let model = Model::load(&options.model)?;
    let data = options.data.load()?;
    let mut train_set = data.train.clone();
    if options.holdout > 0 {
        if options.holdout >= train_set.len() {
            return Err(LabError::config(
                "holdout",
                format!(
                    "{} must be below the training split's {} images",
                    options.holdout,
                    train_set.len()
                ),
            ));
        }
        train_set = train_set.split_holdout(options.holdout, options.seed).0;
    }
    if let Some(parent) = options.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(LabError::config(
                "out",
                format!("{}: folder does not exist", parent.display()),
            ));
        }
    }
    let mut config = recipe::recipe(&options.model, data.source);
    config.seed = options.seed;
    if let Some(epochs) = options.epochs {
        config.epochs = epochs;
    }
    if let Some(batch) = options.batch_size {
        config.batch_size = batch;
    }
    if let Some(lr) = options.learning_rate {
        config.learning_rate = lr;
    }
    let decay = options.weight_decay.unwrap_or(match config.optimizer {
        OptimizerConfig::Sgd { weight_decay, .. } | OptimizerConfig::Adam { weight_decay, .. } => {
            weight_decay
        }
    });
    config.optimizer = match options.optimizer {
        None => config.optimizer,
        Some(Optimizer::Sgd) => OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: decay,
        },
        Some(Optimizer::Adam) => OptimizerConfig::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: decay,
        },
    };
    let (OptimizerConfig::Sgd { weight_decay, .. } | OptimizerConfig::Adam { weight_decay, .. }) =
        &mut config.optimizer;
    *weight_decay = decay;
    let mut network = model.network(options.seed)?;
    let epochs = config.epochs;
    train(&mut network, &train_set, &config, |e| on_event(e, epochs))?;
    let test = evaluate(&network, &data.test, 256)?;
    checkpoint::save(&network, &options.out)?;
    Ok(Trained {
        data: data.source.name(),
        test,
        checkpoint: options.out.clone(),
    })
}

/// Test accuracy and confusion matrix of a trained model.
pub fn evaluate_model(
    model: &str,
    data: &DataSpec,
    batch_size: usize,
) -> Result<Evaluation, LabError> {
    let test = data.load_test()?;
    // A zoo name has no trained weights: scoring its random initialisation would print a
    // meaningless accuracy, so that is an error naming the untrained layer.
    let network = Model::load(model)?.weighted_network()?;
    Ok(evaluate(&network, &test, batch_size)?)
}
