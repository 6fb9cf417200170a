//! Inference speed of joule's engine on LeNet-5 and vgg-small: latency per image at batch 1
//! and throughput at batch 64. Writes each model as ONNX next to the numbers so that
//! scripts/bench-infer.sh can time onnxruntime on exactly the same network.
//!
//! `cargo run --release -p joule-onnx --example bench_infer -- OUT_DIR`
//! prints `model batch seconds_per_batch` lines (median of repeated runs after a warm-up).

use joule_model::{zoo, Shape};
use joule_nn::{FeatureMap, Network};
use std::time::Instant;

fn median_seconds(mut run: impl FnMut(), repeats: usize) -> f64 {
    for _ in 0..repeats.div_ceil(5) {
        run();
    }
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    std::fs::create_dir_all(&out)?;
    for name in ["lenet5", "vgg-small"] {
        let network = Network::new(zoo::build(name)?, 1)?;
        joule_onnx::export_file(network.graph(), &out.join(format!("{name}.onnx")))?;
        let sample = network
            .graph()
            .input_shape
            .ok_or("model without input shape")?;
        for (batch, repeats) in [(1, 200), (64, 20)] {
            let shape = Shape { n: batch, ..sample };
            let input = FeatureMap::new(shape, vec![0.5; shape.elements() as usize])?;
            let seconds = median_seconds(
                || {
                    network.forward(&input).unwrap();
                },
                repeats,
            );
            println!("{name} {batch} {seconds:.6}");
        }
    }
    Ok(())
}
