//! `joule prune` end to end on the MNIST digits (scripts/fetch-data.sh; missing data fails):
//! the documented outputs, resume from the command line, and one-line errors.

mod common;

use common::{joule, stderr};

#[test]
fn prunes_writes_the_documented_outputs_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("lenet5.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let out = joule()
        .args([
            "train", "--model", "lenet5", "--data", "mnist", "--epochs", "1", "--out", ckpt,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = |out_dir: &str, extra: &[&str]| {
        let mut args = vec![
            "prune",
            "--method",
            "eap",
            "--model",
            ckpt,
            "--data",
            "mnist",
            "--max-drop",
            "3",
            "--rounds",
            "1",
            "--finetune-epochs",
            "1",
            "--train-samples",
            "1000",
            "--out",
            out_dir,
        ];
        args.extend_from_slice(extra);
        joule().args(&args).output().unwrap()
    };
    let whole = dir.path().join("whole");
    let out = run(whole.to_str().unwrap(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("time per phase: energy estimation"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(whole.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["method"], "eap");
    assert_eq!(summary["hardware"], "eyeriss");
    // Selection read the default 2,000-image validation split; the test split is reported.
    assert_eq!(summary["config"]["holdout"], 2000);
    assert!(history_has_validation(&summary));
    for part in ["original", "final"] {
        for key in [
            "accuracy",
            "validation_accuracy",
            "energy",
            "nonzero_weights",
            "nonskipped_macs",
        ] {
            assert!(summary[part][key].is_number(), "{part}.{key}");
        }
    }
    let history = summary["history"].as_array().unwrap();
    assert_eq!(history.len(), 6, "5 layers + fine-tuning");
    assert!(history[0]["layer"].is_string() && history[0]["accuracy"].is_number());
    assert!(
        summary["final"]["nonzero_weights"].as_u64()
            < summary["original"]["nonzero_weights"].as_u64()
    );
    for file in [
        "pruned.onnx",
        "pruned.safetensors",
        "history.json",
        "tradeoff.svg",
        "layers.svg",
    ] {
        assert!(whole.join(file).is_file(), "{file}");
    }

    // Interrupted after two steps, then resumed: the same final network.
    let parts = dir.path().join("parts");
    let out = run(parts.to_str().unwrap(), &["--stop-after", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!parts.join("summary.json").exists());
    // The stored holdout is the run's: a resume cannot be given another one.
    let out = joule()
        .args([
            "prune",
            "--resume",
            parts.to_str().unwrap(),
            "--holdout",
            "500",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--holdout"), "{}", stderr(&out));
    let out = joule()
        .args(["prune", "--resume", parts.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let resumed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(parts.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(resumed["final"], summary["final"]);
    assert_eq!(
        std::fs::read(parts.join("pruned.safetensors")).unwrap(),
        std::fs::read(whole.join("pruned.safetensors")).unwrap()
    );
}

#[test]
fn bad_arguments_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let hw = dir.path().join("hw.yaml");
    std::fs::write(
        &hw,
        "name: x\narray: {rows: 2, cols: 2}\nrf: {words: 64}\nbuffer: {words: 1024}\nword_bits: 16\nenergy: {unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200, sram: 3}\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let cases: [(Vec<&str>, &str); 4] = [
        (vec!["--method", "eap", "--holdout", "0"], "holdout"),
        (
            vec!["--method", "eap", "--hw", hw.to_str().unwrap()],
            "sram",
        ),
        (vec!["--method", "eap", "--max-drop=-1"], "--max-drop"),
        (
            vec!["--method", "random"],
            "invalid value 'random' for '--method",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec![
            "prune",
            "--model",
            "lenet5",
            "--data",
            "mnist",
            "--out",
            out_dir.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = joule().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{needle}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

/// Every history entry carries the validation accuracy it was judged by.
fn history_has_validation(summary: &serde_json::Value) -> bool {
    summary["history"]
        .as_array()
        .is_some_and(|h| h.iter().all(|r| r["validation_accuracy"].is_number()))
}
