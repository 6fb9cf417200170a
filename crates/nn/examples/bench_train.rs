//! Training throughput of LeNet-5 (batch 64, SGD with momentum) on the 8,000 MNIST training
//! digits: `cargo run --release -p joule-nn --example bench_train -- [epochs]`. Prints one
//! line `joule <images/s>` per measured epoch after one warm-up epoch; scripts/bench-train.sh
//! compares it with PyTorch.

use joule_nn::train::{Event, Schedule};
use joule_nn::{data, train, DataSource, Network, OptimizerConfig, Split, TrainConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(3);
    let data = DataSource::Mnist.load(&data::data_dir(None), Split::Train)?;
    let mut network = Network::new(joule_model::zoo::build("lenet5")?, 1)?;
    let config = TrainConfig {
        epochs: epochs + 1,
        batch_size: 64,
        learning_rate: 0.01,
        schedule: Schedule::Constant,
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        seed: 1,
        shift: 0,
    };
    let threads = rayon::current_num_threads();
    train(&mut network, &data, &config, |e| {
        if let Event::Epoch { epoch, seconds, .. } = e {
            if *epoch > 0 {
                println!(
                    "joule {:.0} images/s ({seconds:.3} s/epoch, {threads} threads)",
                    data.len() as f64 / seconds
                );
            }
        }
    })?;
    Ok(())
}
