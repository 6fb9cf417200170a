//! `joule stats` on models exported by PyTorch (tests/fixtures/torch, made by
//! scripts/make-torch-fixtures.sh): attention MACs and element operations in the output, a
//! dynamic batch reported once, an input shape that contradicts the file rejected.

mod common;

use common::{joule, stderr};
use std::path::PathBuf;

fn onnx_fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx")
        .join(name);
    assert!(
        path.exists(),
        "missing {}: run scripts/test.sh",
        path.display()
    );
    path.display().to_string()
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/torch")
        .join(name);
    assert!(
        path.exists(),
        "missing {}: run scripts/make-torch-fixtures.sh (scripts/test.sh does)",
        path.display()
    );
    path.display().to_string()
}

#[test]
fn vit_stats_report_attention_and_element_ops() {
    let out = joule()
        .args(["stats", &fixture("vit_b_16-op13-init.onnx"), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "a fixed batch needs no note");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"]["matmul"]["macs"], 12 * 12 * 2 * 197 * 197 * 64);
    assert_eq!(v["total"]["matmul"]["layers"], 24);
    assert!(v["total"]["element_ops"].as_u64().unwrap() > 0);
    let text = joule()
        .args(["stats", &fixture("vit_b_16-op13-init.onnx")])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("MatMul") && text.contains("element ops"),
        "{text}"
    );
}

#[test]
fn dynamic_batch_is_noted_once() {
    let file = fixture("shufflenet_v2_x0_5_dynamic-op17-init.onnx");
    let out = joule().args(["stats", &file, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let note = stderr(&out);
    assert_eq!(note.lines().count(), 1, "{note}");
    assert!(
        note.contains("batch 1 assumed") && note.contains(&file),
        "{note}"
    );
    let given = joule()
        .args(["stats", &file, "--input-shape", "2,3,112,112", "--json"])
        .output()
        .unwrap();
    assert!(given.status.success(), "{}", stderr(&given));
    assert_eq!(stderr(&given), "");
}

#[test]
fn contradicting_input_shape_is_one_line_exit_2() {
    let file = fixture("resnet18-op17-init.onnx");
    let out = joule()
        .args(["stats", &file, "--input-shape", "1,3,224,224"])
        .output()
        .unwrap();
    let msg = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert_eq!(msg.trim_end().lines().count(), 1, "{msg}");
    assert!(
        msg.contains(&file) && msg.contains("input \"input\"") && !msg.contains("panicked"),
        "{msg}"
    );
}

/// Energy of an imported transformer block: attention's products are workloads of their own
/// (class matmul) with the MACs counted by hand; element-wise ops are not on the PE array.
#[test]
fn energy_maps_attention_and_skips_elementwise_ops() {
    let out = joule()
        .args([
            "energy",
            &onnx_fixture("attention.onnx"),
            "--hw",
            "eyeriss",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = v["layers"].as_array().unwrap();
    let find = |name: &str| layers.iter().find(|l| l["name"] == name);
    for name in ["scores", "attend"] {
        let l = find(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(
            (l["class"].as_str(), l["macs"].as_u64()),
            (Some("matmul"), Some(400))
        );
        assert!(l["energy"]["total"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(find("qkv").unwrap()["class"], "fc");
    assert!(find("softmax").is_none() && find("ln1").is_none());
    assert_eq!(
        v["total"]["macs"],
        3072 + 3840 + 400 + 400 + 1280 + 2560 + 2560 + 160
    );
}
