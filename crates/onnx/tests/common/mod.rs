//! Helpers shared by the tests that use onnxruntime (from .venv) as the judge.

#![allow(dead_code)] // each test binary uses its own subset

use joule_model::Shape;
use joule_nn::{FeatureMap, Rng};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(name: &str) -> PathBuf {
    let path = root().join("tests/fixtures/onnx").join(name);
    assert!(
        path.exists(),
        "missing {}: run scripts/test.sh",
        path.display()
    );
    path
}

pub fn python() -> PathBuf {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "missing {}: run scripts/python-env.sh (scripts/test.sh does)",
        python.display()
    );
    python
}

/// Runs the exported model in onnxruntime on `input`.
pub fn onnxruntime(model: &Path, input: &FeatureMap, dir: &Path) -> Vec<f32> {
    let (x, y) = (dir.join("x.bin"), dir.join("y.bin"));
    let bytes: Vec<u8> = input.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&x, bytes).unwrap();
    let s = input.shape;
    let status = Command::new(python())
        .arg(root().join("scripts/ort-run.py"))
        .args([model, &x])
        .arg(format!("{},{},{},{}", s.n, s.c, s.h, s.w))
        .arg(&y)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "onnxruntime failed on {}",
        model.display()
    );
    std::fs::read(&y)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

pub fn random_input(shape: Shape, seed: u64) -> FeatureMap {
    let mut rng = Rng::new(seed);
    let data = (0..shape.elements())
        .map(|_| rng.uniform() * 2.0 - 1.0)
        .collect();
    FeatureMap::new(shape, data).unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs an imported model in joule's engine and the file itself in onnxruntime on one seeded
/// input of batch `batch`; returns the largest difference relative to the largest output.
pub fn relative_error_against_onnxruntime(file: &Path, batch: usize) -> f32 {
    let graph = joule_onnx::import_file(file).unwrap_or_else(|e| panic!("{e}"));
    let network = joule_nn::Network::new(graph, 7).unwrap();
    let shape = Shape {
        n: batch,
        ..network.graph().input_shape.unwrap()
    };
    let input = random_input(shape, 11);
    let ours = network.forward(&input).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let theirs = onnxruntime(file, &input, dir.path());
    assert_eq!(
        ours.data.len(),
        theirs.len(),
        "{}: output sizes",
        file.display()
    );
    let scale = theirs.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    max_abs_diff(&ours.data, &theirs) / scale
}
