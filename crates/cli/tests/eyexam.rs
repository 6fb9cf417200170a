//! `joule eyexam` end to end: on zoo models, an ONNX file made by the `onnx` package and a
//! PyTorch export, the last step's cycles are what `joule energy` reports; bad machines are
//! one-line errors with exit code 2.

mod common;

use common::{fails, stdout_json, succeeds};
use serde_json::Value;
use std::path::PathBuf;

fn fixture(dir: &str, name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(dir)
        .join(name);
    assert!(
        path.exists(),
        "missing {}: run scripts/test.sh (it makes the fixtures)",
        path.display()
    );
    path.display().to_string()
}

/// Checks the steps of `eyexam` against `energy` for the same arguments.
fn agrees_with_energy(model: &str, extra: &[&str]) -> Value {
    let mut args = vec!["eyexam", model, "--json"];
    args.extend(extra);
    let exam = stdout_json(&args);
    args[0] = "energy";
    let energy = stdout_json(&args);
    let total = exam["total"].as_array().unwrap();
    assert_eq!(total.len(), 8);
    let names: Vec<&str> = total.iter().map(|b| b["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "peak",
            "dataflow",
            "array_shape",
            "fit",
            "storage",
            "mapping",
            "bandwidth",
            "sparsity"
        ]
    );
    for w in total.windows(2) {
        let (a, b) = (
            w[0]["macs_per_cycle"].as_f64().unwrap(),
            w[1]["macs_per_cycle"].as_f64().unwrap(),
        );
        assert!(b <= a * (1.0 + 1e-12), "{model}: {w:?}");
    }
    let last = total[7]["cycles"].as_f64().unwrap();
    let cycles = energy["total"]["cycles"].as_f64().unwrap();
    assert!(
        (last / cycles - 1.0).abs() < 1e-9,
        "{model}: {last} vs {cycles}"
    );
    let layers = exam["layers"].as_array().unwrap();
    assert_eq!(layers.len(), energy["layers"].as_array().unwrap().len());
    exam
}

#[test]
fn eyexam_ends_at_the_energy_cycles() {
    let exam = agrees_with_energy("alexnet", &["--hw", "eyeriss"]);
    assert_eq!(exam["total"][0]["macs_per_cycle"], 168.0);
    agrees_with_energy(
        "mobilenet",
        &["--hw", "isca16", "--batch", "4", "--dataflow", "nlr"],
    );
    agrees_with_energy(&fixture("onnx", "mobile_block.onnx"), &["--hw", "eyeriss"]);
    agrees_with_energy(
        &fixture("torch", "mobilenet_v2-op17-init.onnx"),
        &["--hw", "eyeriss"],
    );
    let text = succeeds(&["eyexam", "alexnet", "--hw", "eyeriss"]);
    assert!(
        text.contains("largest loss") && text.contains("conv1"),
        "{text}"
    );
}

#[test]
fn eyexam_rejects_machines_it_cannot_examine() {
    let err = fails(&["eyexam", "alexnet", "--hw", "pim-128"]);
    assert!(err.contains("pim-128") && err.contains("digital"), "{err}");
    let err = fails(&["eyexam", "alexnet", "--hw", "horowitz45"]);
    assert!(
        err.contains("horowitz45") && err.contains("dataflow model"),
        "{err}"
    );
    let err = fails(&["eyexam", "alexnet", "--hw", "no/such.yaml"]);
    assert!(err.contains("no/such.yaml"), "{err}");
}
