//! joule's side of scripts/bench-train.sh (driven by scripts/bench-train.py, which runs it and
//! PyTorch in alternating processes): trains a zoo network with SGD (momentum 0.9, learning
//! rate 0.01, seed 1) on the first SAMPLES MNIST training digits.
//!
//! `cargo run --release -p joule-nn --example bench_train -- MODEL BATCH SAMPLES EPOCHS`
//! runs one warm-up epoch, then EPOCHS timed ones, and prints `times <seconds per epoch>...`.
//! Threads: rayon's (`RAYON_NUM_THREADS`). Exits 2 with a one-line error on bad input.

use joule_nn::train::{Event, Schedule};
use joule_nn::{data, train, DataSource, Network, OptimizerConfig, Split, TrainConfig};

/// As the `joule` CLI runs: the engine's buffers on cache lines.
#[global_allocator]
static ALLOC: joule_nn::CacheAligned = joule_nn::CacheAligned;

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [model, batch, samples, epochs] = args else {
        return Err("usage: bench_train MODEL BATCH SAMPLES EPOCHS".into());
    };
    let number = |name: &str, v: &str| -> Result<usize, String> {
        v.parse().map_err(|e| format!("{name} {v:?}: {e}"))
    };
    let (batch, samples, epochs) = (
        number("BATCH", batch)?,
        number("SAMPLES", samples)?,
        number("EPOCHS", epochs)?,
    );
    let data = DataSource::Mnist
        .load(&data::data_dir(None), Split::Train)?
        .take(samples);
    let mut network = Network::new(joule_model::zoo::build(model)?, 1)?;
    let config = TrainConfig {
        epochs: epochs + 1,
        batch_size: batch,
        learning_rate: 0.01,
        schedule: Schedule::Constant,
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        seed: 1,
        shift: 0,
    };
    let mut times = Vec::new();
    train(&mut network, &data, &config, |e| {
        if let Event::Epoch { epoch, seconds, .. } = e {
            if *epoch > 0 {
                times.push(format!("{seconds:.5}"));
            }
        }
    })?;
    println!("times {}", times.join(" "));
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os("NOINIT").is_none() {
        // As the CLI runs the engine: this thread one of the pool's workers.
        if let Err(e) = joule_nn::threads::init(None) {
            eprintln!("bench_train: threads: {e}");
            std::process::exit(2);
        }
    }
    if let Err(e) = run(&args) {
        eprintln!("bench_train: {e}");
        std::process::exit(2);
    }
}
