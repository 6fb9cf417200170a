//! joule's side of scripts/bench-infer.sh (driven by scripts/bench-infer.py, which runs it and
//! onnxruntime in alternating processes on the same ONNX file and the same input).
//!
//! `bench_infer export DIR` writes the zoo's LeNet-5 and vgg-small as `DIR/lenet5.onnx` and
//! `DIR/vgg-small.onnx`.
//!
//! `bench_infer run MODEL.onnx BATCH INPUT.bin OUTPUT.bin SECONDS` imports the file, reads
//! `BATCH` samples of little-endian f32 from INPUT.bin, runs one forward pass and writes its
//! output to OUTPUT.bin (for the driver's equality check), runs one more untimed, then times
//! forward passes until SECONDS have gone by (at least 3, at most 500) and prints
//! `times <seconds per batch>...`. Threads: rayon's (`RAYON_NUM_THREADS`).
//! Exits 2 with a one-line error on bad input.

use joule_model::{zoo, Shape};
use joule_nn::{FeatureMap, Network};
use std::path::Path;
use std::time::Instant;

type Error = Box<dyn std::error::Error>;

/// As the `joule` CLI runs: the engine's buffers on cache lines.
#[global_allocator]
static ALLOC: joule_nn::CacheAligned = joule_nn::CacheAligned;

fn export(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir)?;
    for name in ["lenet5", "vgg-small"] {
        let network = Network::new(zoo::build(name)?, 1)?;
        joule_onnx::export_file(network.graph(), &dir.join(format!("{name}.onnx")))?;
    }
    Ok(())
}

fn run(model: &Path, batch: &str, input: &Path, output: &Path, seconds: &str) -> Result<(), Error> {
    let batch: usize = batch.parse().map_err(|e| format!("BATCH {batch:?}: {e}"))?;
    let seconds: f64 = seconds
        .parse()
        .map_err(|e| format!("SECONDS {seconds:?}: {e}"))?;
    let graph = joule_onnx::import_file(model)?;
    // The seed only initialises weights the file lacks; an imported file carries all of them.
    let network = Network::new(graph, 0)?;
    let sample = network.input_shape()?;
    let shape = Shape { n: batch, ..sample };
    let bytes = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    if values.len() != shape.elements() as usize {
        return Err(format!(
            "{}: {} values, the model takes {} for batch {batch}",
            input.display(),
            values.len(),
            shape.elements()
        )
        .into());
    }
    let x = FeatureMap::new(shape, values)?;
    let y = network.forward(&x)?;
    let out: Vec<u8> = y.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    joule_model::fs::write_atomic(output, &out)?;
    // Warm-up beyond the checked run: buffers and scratch reach their steady state.
    let mut out = y;
    network.forward_into(&x, &mut out)?;
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (start.elapsed().as_secs_f64() < seconds && times.len() < 500) {
        let t = Instant::now();
        network.forward_into(&x, &mut out)?;
        times.push(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&out);
    let list: Vec<String> = times.iter().map(|t| format!("{t:.7}")).collect();
    println!("times {}", list.join(" "));
    Ok(())
}

fn main() {
    if std::env::var_os("NOINIT").is_none() {
        // As the CLI runs the engine: this thread one of the pool's workers.
        if let Err(e) = joule_nn::threads::init(None) {
            eprintln!("bench_infer: threads: {e}");
            std::process::exit(2);
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, dir] if cmd == "export" => export(Path::new(dir)),
        [cmd, model, batch, input, output, seconds] if cmd == "run" => run(
            Path::new(model),
            batch,
            Path::new(input),
            Path::new(output),
            seconds,
        ),
        _ => {
            eprintln!(
                "usage: bench_infer export DIR | bench_infer run MODEL.onnx BATCH INPUT.bin \
                 OUTPUT.bin SECONDS"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("bench_infer: {e}");
        std::process::exit(2);
    }
}
