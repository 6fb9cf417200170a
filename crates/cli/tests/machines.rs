//! Every compressor targets any machine through `--hw`: energy-aware pruning and neuron
//! elimination on a processing-in-memory machine, NetAdapt against an energy budget on a
//! machine described by a YAML file (real MNIST digits, scripts/fetch-data.sh).

mod common;

use common::{joule, read_json, stderr, succeeds};
use serde_json::Value;
use std::path::Path;

/// LeNet-300-100 trained for one epoch: a small network every compressor can work on.
fn trained(dir: &Path) -> String {
    let ckpt = dir.join("lenet300.safetensors").display().to_string();
    succeeds(&[
        "train", "--model", "lenet300", "--data", "mnist", "--epochs", "1", "--out", &ckpt,
    ]);
    ckpt
}

/// The total energy `joule energy` reports for a model on a machine.
fn energy(model: &str, hw: &str) -> f64 {
    let report: Value =
        serde_json::from_str(&succeeds(&["energy", model, "--hw", hw, "--json"])).unwrap();
    report["total"]["energy"]["total"].as_f64().unwrap()
}

#[test]
fn pruning_and_elimination_target_a_pim_machine() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(dir.path());
    let out = dir.path().join("eap");
    succeeds(&[
        "prune",
        "--method",
        "eap",
        "--model",
        &ckpt,
        "--data",
        "mnist",
        "--hw",
        "pim-1024",
        "--max-drop",
        "5",
        "--rounds",
        "1",
        "--finetune-epochs",
        "1",
        "--train-samples",
        "1000",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["hardware"], "pim-1024");
    assert_eq!(summary["unit"], "pJ");
    // The original's energy is the PIM model's: what `joule energy` says of the checkpoint
    // (a PIM array does not skip zero activations, so measured densities do not enter).
    let original = summary["original"]["energy"].as_f64().unwrap();
    let expected = energy(&ckpt, "pim-1024");
    assert!(
        (original - expected).abs() <= 1e-9 * expected,
        "{original} vs {expected}"
    );
    let pruned = summary["final"]["energy"].as_f64().unwrap();
    assert!(pruned <= original, "{pruned} > {original}");
    assert!(out.join("pruned.onnx").exists() && out.join("tradeoff.svg").exists());

    let out = dir.path().join("elim");
    succeeds(&[
        "eliminate",
        "--model",
        &ckpt,
        "--data",
        "mnist",
        "--layer",
        "fc2",
        "--hw",
        "pim-1024",
        "--max-drop",
        "5",
        "--samples",
        "500",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["hardware"], serde_json::json!(["pim-1024"]));
    let e0 = &summary["original"]["energy"][0];
    assert_eq!(e0["unit"], "pJ");
    assert!((e0["total"].as_f64().unwrap() - expected).abs() <= 1e-9 * expected);
    let points = summary["layers"]["fc2"].as_array().unwrap();
    let smallest = points.last().unwrap()["energy"][0]["total"]
        .as_f64()
        .unwrap();
    assert!(smallest < expected, "fewer neurons cost less on PIM too");
    assert!(out.join("curves-pim-1024.svg").exists());
    // A run directory is never overwritten.
    let again = joule()
        .args([
            "eliminate",
            "--model",
            &ckpt,
            "--data",
            "mnist",
            "--layer",
            "fc2",
            "--hw",
            "pim-1024",
        ])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already holds a run"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn netadapt_meets_an_energy_budget_on_a_machine_from_a_yaml_file() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(dir.path());
    // Eyeriss with DRAM 4x dearer: a machine only this file describes.
    let preset = joule_energy::spec::PRESETS
        .iter()
        .find(|(name, _)| *name == "eyeriss")
        .unwrap()
        .1;
    assert!(
        preset.contains("dram: 200"),
        "the preset's DRAM cost moved: {preset}"
    );
    let yaml = dir.path().join("my.yaml");
    std::fs::write(&yaml, preset.replace("dram: 200", "dram: 800")).unwrap();
    let yaml = yaml.to_str().unwrap();
    assert!(
        energy(&ckpt, yaml) > 1.5 * energy(&ckpt, "eyeriss"),
        "the file is read"
    );
    let out = dir.path().join("adapt");
    succeeds(&[
        "adapt",
        "--model",
        &ckpt,
        "--data",
        "mnist",
        "--hw",
        yaml,
        "--budget",
        "energy=0.5x",
        "--no-measure",
        "--holdout",
        "500",
        "--train-samples",
        "2000",
        "--initial-reduction",
        "0.2",
        "--short-term-batches",
        "5",
        "--long-term-epochs",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["status"]["status"], "met");
    assert_eq!(summary["unit"], "mac");
    let family = summary["family"].as_array().unwrap();
    let e0 = family[0]["energy"].as_f64().unwrap();
    assert!(
        (e0 - energy(&ckpt, yaml)).abs() <= 1e-9 * e0,
        "energies come from my.yaml"
    );
    let last = family.last().unwrap()["energy"].as_f64().unwrap();
    assert!(last <= 0.5 * e0 * (1.0 + 1e-12), "{last} > half of {e0}");
    assert!(out.join("accuracy_vs_energy.svg").exists());
}
