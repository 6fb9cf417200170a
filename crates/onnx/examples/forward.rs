//! Runs an ONNX file through joule's importer and engine on a raw input and writes the output,
//! so a script can hold it against onnxruntime's (scripts/torchvision-family.py does, for
//! models too big to keep as test fixtures).
//!
//! `cargo run --release -p joule-onnx --example forward -- MODEL.onnx INPUT.bin OUTPUT.bin`
//!
//! INPUT.bin holds little-endian f32 values of the model's own input shape (batch 1); OUTPUT.bin
//! receives the output the same way. Exits 2 with the error when the file does not import or run.

use joule_nn::{FeatureMap, Network};

fn run(model: &str, input: &str, output: &str) -> Result<(), Box<dyn std::error::Error>> {
    let graph = joule_onnx::import_file(std::path::Path::new(model))?;
    // The seed only initialises weights the file lacks; an imported file carries all of them.
    let network = Network::new(graph, 0)?;
    let shape = network
        .graph()
        .input_shape
        .ok_or("the model has no input shape")?;
    let bytes = std::fs::read(input)?;
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let x = FeatureMap::new(shape, values)?;
    let y = network.forward(&x)?;
    let out: Vec<u8> = y.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    joule_model::fs::write_atomic(std::path::Path::new(output), &out)?;
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input, output] = args.as_slice() else {
        eprintln!("usage: forward MODEL.onnx INPUT.bin OUTPUT.bin");
        std::process::exit(2);
    };
    if let Err(e) = run(model, input, output) {
        eprintln!("forward: {model}: {e}");
        std::process::exit(2);
    }
}
