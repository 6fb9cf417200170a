//! `joule train` and `joule eval` end to end on the MNIST digits that scripts/fetch-data.sh
//! fetches (scripts/test.sh runs it first; missing data fails, naming the script).

mod common;

use common::joule;

#[test]
fn trains_saves_and_evaluates_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("lenet300.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let out = joule()
        .args([
            "train", "--model", "lenet300", "--data", "mnist", "--epochs", "2", "--seed", "3",
            "--out", ckpt,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = joule()
        .args(["eval", "--model", ckpt, "--data", "mnist", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["samples"], 2000);
    let accuracy = v["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9, "{accuracy}");
    let confusion = v["confusion"].as_array().unwrap();
    assert_eq!(confusion.len(), 10);
    let diagonal: u64 = (0..10).map(|i| confusion[i][i].as_u64().unwrap()).sum();
    assert_eq!(diagonal as f64 / 2000.0, accuracy);
    // The checkpoint is a model like any other.
    let out = joule().args(["stats", ckpt, "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_data_names_the_fetch_script() {
    let out = joule()
        .args([
            "eval",
            "--model",
            "lenet5",
            "--data",
            "mnist",
            "--data-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("scripts/fetch-data.sh") && stderr.lines().count() == 1,
        "{stderr}"
    );
}
