//! `joule eliminate`: bad arguments give a one-line error naming the argument, exit code 2,
//! before any data is read (so these need no dataset).

mod common;

use common::{fails, succeeds};

const BASE: [&str; 7] = [
    "eliminate",
    "--model",
    "lenet300",
    "--data",
    "mnist",
    "--out",
    "/nonexistent/x",
];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    BASE.iter().copied().chain(extra.iter().copied()).collect()
}

#[test]
fn bad_arguments_name_the_argument() {
    let e = fails(&with(&["--max-drop", "-1"]));
    assert!(e.contains("--max-drop") && e.contains("-1"), "{e}");
    let e = fails(&with(&["--layer", "fc9"]));
    assert!(e.contains("--layer fc9") && e.contains("fc1, fc2"), "{e}");
    let e = fails(&with(&["--layer", "flatten"]));
    assert!(
        e.contains("--layer flatten") && e.contains("not fully connected"),
        "{e}"
    );
    let e = fails(&with(&["--layer", "fc3"]));
    assert!(
        e.contains("--layer fc3") && e.contains("output layer"),
        "{e}"
    );
    let e = fails(&with(&["--hw", "nosuchchip"]));
    assert!(e.contains("--hw nosuchchip"), "{e}");
    // A zoo name has no trained weights.
    let e = fails(&with(&[]));
    assert!(
        e.contains("--model lenet300") && e.contains("no trained weights"),
        "{e}"
    );
}

/// Train one epoch, eliminate fc2's neurons, and check the output folder against itself and
/// against `joule eval` of the exported model (real MNIST from scripts/fetch-data.sh).
#[test]
fn eliminates_a_trained_layer_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let ckpt = path("lenet300.safetensors");
    succeeds(&[
        "train", "--model", "lenet300", "--data", "mnist", "--epochs", "1", "--seed", "2", "--out",
        &ckpt,
    ]);
    let out = path("elim");
    succeeds(&[
        "eliminate",
        "--model",
        &ckpt,
        "--data",
        "mnist",
        "--layer",
        "fc2",
        "--max-drop",
        "0.5",
        "--samples",
        "500",
        "--hw",
        "horowitz45",
        "--out",
        &out,
    ]);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("elim/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["data"], "mnist");
    // The threshold reads the validation split (2,000 training images held out, seed 1).
    assert_eq!(
        (summary["holdout"].as_u64(), summary["seed"].as_u64()),
        (Some(2000), Some(1))
    );
    let original = summary["original"]["validation_accuracy"].as_f64().unwrap();
    assert_eq!(summary["original"]["params"], 266_610);
    let points = summary["layers"]["fc2"].as_array().unwrap();
    let rank = summary["layer_info"]["fc2"]["rank"].as_u64().unwrap();
    assert!(rank > 50 && rank <= 100, "rank {rank}");
    assert_eq!(points[0]["kept"].as_u64(), Some(rank));
    // Parameters: fc2 keeps p of 100 rows (300 + 1 each), fc3 p of 100 columns (10 each).
    for p in points {
        let kept = p["kept"].as_u64().unwrap() as i64;
        assert_eq!(p["params"].as_i64().unwrap(), 266_610 - (100 - kept) * 311);
        assert_eq!(p["energy"][0]["hardware"], "horowitz45");
    }
    // The exported model is the best point: within the threshold on the validation split,
    // with the test accuracy `joule eval` measures.
    let best = summary["layer_info"]["fc2"]["best"].as_u64().unwrap();
    let point = points
        .iter()
        .find(|p| p["kept"].as_u64() == Some(best))
        .unwrap();
    let validation = point["validation_accuracy"].as_f64().unwrap();
    assert!(100.0 * (original - validation) <= 0.5 + 1e-9);
    let accuracy = point["accuracy"].as_f64().unwrap();
    let eval = succeeds(&[
        "eval",
        "--model",
        &path("elim/fc2.onnx"),
        "--data",
        "mnist",
        "--json",
    ]);
    let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
    assert_eq!(eval["accuracy"].as_f64(), Some(accuracy));
    for file in ["tables.md", "curves-horowitz45.svg", "simplified.onnx"] {
        assert!(dir.path().join("elim").join(file).is_file(), "{file}");
    }
    let tables = std::fs::read_to_string(dir.path().join("elim/tables.md")).unwrap();
    assert!(
        tables.contains(&format!("| fc2 | 100 | {rank} | {best} |")),
        "{tables}"
    );
}
