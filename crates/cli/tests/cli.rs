//! The `joule` binary end to end: outputs users and scripts rely on, and bad input giving a
//! one-line error that names the file and node, with exit code 2.

mod common;

use common::{fails, joule, stdout_json};
use std::path::PathBuf;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx")
        .join(name);
    assert!(
        path.exists(),
        "missing fixture {}: run scripts/test.sh",
        path.display()
    );
    path.display().to_string()
}

#[test]
fn zoo_lists_every_model() {
    let out = joule().arg("zoo").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "lenet5",
        "lenet300",
        "alexnet",
        "vgg16",
        "googlenet",
        "resnet50",
        "mobilenet",
        "squeezenet",
        "mobilenetv2-28",
        "mobilenetv3-28",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[test]
fn stats_json_is_the_documented_interface() {
    let v = stdout_json(&["stats", "alexnet", "--json"]);
    assert_eq!(v["model"], "alexnet");
    let conv1 = &v["layers"][0];
    assert_eq!(conv1["name"], "conv1");
    assert_eq!(conv1["kind"], "conv");
    assert_eq!(conv1["weights"], 34_848);
    assert_eq!(conv1["macs"], 105_415_200u64);
    assert_eq!(conv1["input_activations"], 3 * 227 * 227);
    assert_eq!(conv1["output_activations"], 96 * 55 * 55);
    assert_eq!(v["total"]["weights"], 60_954_656u64);
    assert_eq!(v["total"]["macs"], 724_406_816u64);
    assert_eq!(v["total"]["conv"]["weights"], 2_332_704u64);
    assert_eq!(v["total"]["fc"]["macs"], 58_621_952u64);
}

#[test]
fn stats_csv_has_the_json_rows() {
    let out = joule()
        .args(["stats", "alexnet", "--csv"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("layer,kind,output,weights"));
    let layers = stdout_json(&["stats", "alexnet", "--json"])["layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(lines.len(), 1 + layers, "{text}");
    assert!(lines[1].starts_with("conv1,conv,1x96x55x55,34848,96,105415200"));
    let fc3 = lines.iter().find(|l| l.starts_with("fc3,")).unwrap();
    assert!(
        fc3.starts_with("fc3,fc,1x1000x1x1,4096000,1000,4096000"),
        "{fc3}"
    );
}

#[test]
fn stats_reads_onnx_and_honours_input_shape() {
    let v = stdout_json(&["stats", &fixture("tiny_cnn.onnx"), "--json"]);
    assert_eq!(v["total"]["macs"], 2960);
    let v = stdout_json(&[
        "stats",
        &fixture("symbolic.onnx"),
        "--input-shape",
        "1,3,10,10",
        "--json",
    ]);
    assert_eq!(v["total"]["macs"], 4 * 100 * 27);
    let v = stdout_json(&["stats", "lenet5", "--input-shape", "8,1,28,28", "--json"]);
    assert_eq!(v["total"]["macs"], 8 * 416_520);
}

#[test]
fn bad_inputs_fail_with_one_line() {
    let missing = fails(&["stats", "no/such/model.onnx"]);
    assert!(missing.contains("no/such/model.onnx"), "{missing}");
    assert_eq!(
        missing.matches("os error 2").count(),
        1,
        "cause repeated: {missing}"
    );
    let checkpoint = fails(&["stats", "no/such/model.safetensors"]);
    assert_eq!(
        checkpoint.matches("os error 2").count(),
        1,
        "cause repeated: {checkpoint}"
    );

    let unknown = fails(&["stats", "alexnett"]);
    assert!(unknown.contains("alexnett"), "{unknown}");

    // A holdout as large as the training split leaves nothing to train on.
    let holdout = fails(&[
        "train",
        "--model",
        "lenet5",
        "--data",
        "mnist",
        "--holdout",
        "999999",
        "--out",
        "unused.safetensors",
        "--data-dir",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"),
    ]);
    assert!(
        holdout.contains("--holdout") && holdout.contains("8000"),
        "{holdout}"
    );

    // An unknown dataflow is a clap argument error (exit 2) that lists the valid names.
    let out = joule()
        .args(["energy", "alexnet", "--dataflow", "ws-isca"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("ws-isca16") && !text.contains("panicked"),
        "{text}"
    );

    let op = fails(&["stats", &fixture("unsupported_op.onnx")]);
    assert!(
        op.contains("Selu") && op.contains("mystery_activation"),
        "{op}"
    );
    assert!(op.contains("unsupported_op.onnx"), "{op}");
    assert_eq!(op.matches("Selu").count(), 1, "cause printed twice: {op}");

    let concat = fails(&["stats", &fixture("concat_mismatch.onnx")]);
    assert!(
        concat.contains("bad_concat") && concat.contains("concat_mismatch.onnx"),
        "{concat}"
    );

    let shape = fails(&["stats", &fixture("symbolic.onnx")]);
    assert!(
        shape.contains("--input-shape") && shape.contains("symbolic"),
        "{shape}"
    );

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, "definitely not protobuf\n").unwrap();
    let msg = fails(&["stats", garbage.to_str().unwrap()]);
    assert!(
        msg.contains("garbage.onnx") && msg.contains("not a valid ONNX"),
        "{msg}"
    );

    let bytes = std::fs::read(fixture("tiny_cnn.onnx")).unwrap();
    let cut = dir.path().join("truncated.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let msg = fails(&["stats", cut.to_str().unwrap()]);
    assert!(msg.contains("truncated.onnx"), "{msg}");

    let bad_shape = fails(&[
        "stats",
        &fixture("symbolic.onnx"),
        "--input-shape",
        "1,4,10,10",
    ]);
    assert!(bad_shape.contains("conv"), "{bad_shape}");
}
