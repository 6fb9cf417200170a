//! Runs inference on a zoo network repeatedly, for profilers (callgrind, perf) and quick
//! timings of the engine alone.
//!
//! `cargo run --release -p joule-nn --example infer_profile -- MODEL BATCH REPEATS`
//! prints the median seconds per batch.

use joule_model::{zoo, Shape};
use joule_nn::{FeatureMap, Network};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("lenet5", String::as_str);
    let batch: usize = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let repeats: usize = args.get(3).map_or(Ok(100), |s| s.parse())?;
    let network = Network::new(zoo::build(name)?, 1)?;
    let sample = network.input_shape()?;
    let shape = Shape { n: batch, ..sample };
    let input = FeatureMap::new(shape, vec![0.5; shape.elements() as usize])?;
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(network.forward(&input).unwrap());
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{name} {batch} {:.6}", times[times.len() / 2]);
    Ok(())
}
