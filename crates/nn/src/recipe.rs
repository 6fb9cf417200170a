//! The training recipes behind the reference models: the hyper-parameters `joule train`
//! uses unless told otherwise, chosen per model and dataset (docs/training.md has the
//! measured accuracies).

use crate::train::Schedule;
use crate::{DataSource, OptimizerConfig, TrainConfig};

/// The default recipe for `model` (a zoo name) on `data`.
pub fn recipe(model: &str, data: DataSource) -> TrainConfig {
    let sgd = |weight_decay| OptimizerConfig::Sgd {
        momentum: 0.9,
        weight_decay,
    };
    let base = TrainConfig {
        epochs: 10,
        batch_size: 64,
        learning_rate: 0.05,
        schedule: Schedule::Cosine,
        optimizer: sgd(5e-4),
        seed: 1,
        shift: 0,
    };
    match (model, data) {
        // 8,000 digits: random shifts of up to 2 pixels stand in for more data.
        ("lenet5", DataSource::Mnist) => TrainConfig {
            epochs: 20,
            shift: 2,
            ..base
        },
        ("lenet300", DataSource::Mnist) => TrainConfig {
            epochs: 20,
            shift: 1,
            ..base
        },
        ("vgg-small", _) => TrainConfig { epochs: 12, ..base },
        // Three epochs: what fitted the session that added them (issue 17), on two cores
        // shared with other jobs; more epochs are untried.
        ("mobilenetv2-28" | "mobilenetv3-28", _) => TrainConfig { epochs: 3, ..base },
        _ => base,
    }
}
