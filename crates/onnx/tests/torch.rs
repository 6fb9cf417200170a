//! ONNX files exported by PyTorch (`scripts/make-torch-fixtures.py`, run by scripts/test.sh):
//! torchvision's classification models at opsets 13 and 17, untrained (equal tensors
//! de-duplicated into `Identity` nodes, as in users' files) and with every tensor perturbed.
//! Each must import, and its MACs must equal PyTorch's own count of the same forward pass
//! (module hooks on Conv2d/Linear plus patched matrix products, cross-checked by the script
//! against `torch.utils.flop_counter`), split into CONV, FC/Linear and activation MatMul.

use joule_model::{ModelError, NetworkStats, Shape};
use joule_onnx::import_file;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/torch")
}

/// The script's manifest: file name -> PyTorch's counts.
fn manifest() -> serde_json::Map<String, Value> {
    let path = dir().join("macs.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "missing {} ({e}): run scripts/make-torch-fixtures.sh (scripts/test.sh does)",
            path.display()
        )
    });
    let Value::Object(map) = serde_json::from_str(&text).unwrap() else {
        panic!("{} is not a JSON object", path.display());
    };
    map
}

fn count(entry: &Value, key: &str) -> u64 {
    entry[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {entry}"))
}

/// Imports the four files of `model` and compares every count with PyTorch's.
fn check(model: &str) {
    let manifest = manifest();
    let mut checked = 0;
    for opset in [13, 17] {
        for variant in ["init", "perturbed"] {
            let file = format!("{model}-op{opset}-{variant}.onnx");
            let entry = manifest.get(&file).unwrap_or_else(|| {
                panic!("{file} is not in macs.json: rerun scripts/make-torch-fixtures.sh")
            });
            let path = dir().join(&file);
            assert!(
                path.exists(),
                "missing {}: rerun scripts/make-torch-fixtures.sh",
                path.display()
            );
            let graph = import_file(&path).unwrap_or_else(|e| panic!("{e}"));
            let stats = NetworkStats::of(&graph, None).unwrap_or_else(|e| panic!("{file}: {e}"));
            let t = &stats.total;
            let ours = [t.macs, t.conv.macs, t.fc.macs, t.matmul.macs];
            let theirs = ["macs", "conv", "linear", "matmul"].map(|k| count(entry, k));
            assert_eq!(
                ours, theirs,
                "{file}: joule's [total, conv, fc/linear, matmul] MACs vs PyTorch's"
            );
            let input: Vec<usize> = entry["input"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(stats.input_shape.to_vec(), input, "{file}");
            let dynamic = entry["dynamic_batch"].as_bool().unwrap();
            let spec = graph
                .input_spec
                .as_ref()
                .expect("an imported graph has its spec");
            assert_eq!(spec.dynamic_batch(), dynamic, "{file}");
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}

macro_rules! torchvision {
    ($($name:ident),* $(,)?) => {
        const MODELS: &[&str] = &[$(stringify!($name)),*];

        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*

        /// Every model the script exports has a test here.
        #[test]
        fn every_exported_model_is_tested() {
            let tested = MODELS;
            let mut exported: Vec<String> = manifest()
                .keys()
                .map(|f| f.split("-op").next().unwrap().to_string())
                .collect();
            exported.dedup();
            for model in &exported {
                assert!(tested.contains(&model.as_str()), "{model} has no test");
            }
            assert_eq!(exported.len(), tested.len(), "{exported:?}");
        }
    };
}

torchvision!(
    alexnet,
    vgg16,
    resnet18,
    resnet50,
    squeezenet1_0,
    squeezenet1_1,
    densenet121,
    googlenet,
    inception_v3,
    mobilenet_v2,
    mobilenet_v3_small,
    mobilenet_v3_large,
    efficientnet_b0,
    regnet_y_400mf,
    mnasnet0_5,
    shufflenet_v2_x0_5,
    convnext_tiny,
    vit_b_16,
    shufflenet_v2_x0_5_dynamic,
    swin_t,
    swin_v2_t,
    maxvit_t,
    regnet_x_400mf,
);

/// Attention's products of two activations are counted: ViT-B/16 at 224x224 has 12 layers
/// of 12 heads, each `Q K^T` and `A V` over 197 tokens of 64 values.
#[test]
fn vit_attention_macs_by_hand() {
    let graph = import_file(&dir().join("vit_b_16-op17-perturbed.onnx")).unwrap();
    let stats = NetworkStats::of(&graph, None).unwrap();
    assert_eq!(stats.total.matmul.macs, 12 * 12 * 2 * 197 * 197 * 64);
    assert_eq!(stats.total.matmul.layers, 24);
    assert_eq!(stats.total.matmul.weights, 0);
    // Element operations are reported beside, not inside, the MACs.
    assert!(stats.total.element_ops > 0);
    let tokens = stats
        .layers
        .iter()
        .find(|l| l.kind == "layernorm")
        .expect("opset 17 keeps LayerNormalization");
    assert_eq!(tokens.output_dims, vec![1, 197, 768]);
    assert_eq!(tokens.element_ops, 197 * 768);
}

/// A dynamic batch axis: shapes computed from it (the channel shuffle's reshape) scale with
/// the batch size that is asked for.
#[test]
fn dynamic_batch_scales_computed_shapes() {
    let manifest = manifest();
    for opset in [13, 17] {
        let file = format!("shufflenet_v2_x0_5_dynamic-op{opset}-perturbed.onnx");
        let graph = import_file(&dir().join(&file)).unwrap();
        assert!(graph.input_spec.as_ref().unwrap().dynamic_batch());
        let one = count(&manifest[&file], "macs");
        let stats = NetworkStats::of(&graph, Some(Shape::new(3, 3, 112, 112))).unwrap();
        assert_eq!(stats.total.macs, 3 * one, "{file}");
        assert_eq!(stats.layers.last().unwrap().output_dims, vec![3, 1000]);
    }
}

/// An input shape that contradicts what the file fixes is an error naming the input.
#[test]
fn input_shape_must_agree_with_fixed_dimensions() {
    let graph = import_file(&dir().join("resnet18-op17-init.onnx")).unwrap();
    for wrong in [Shape::new(2, 3, 112, 112), Shape::new(1, 3, 224, 224)] {
        let err = NetworkStats::of(&graph, Some(wrong)).unwrap_err();
        assert!(matches!(err, ModelError::InputContradicts { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("\"input\"") && msg.contains("1x3x112x112"),
            "{msg}"
        );
    }
    assert!(NetworkStats::of(&graph, Some(Shape::new(1, 3, 112, 112))).is_ok());
    let dynamic = import_file(&dir().join("shufflenet_v2_x0_5_dynamic-op13-init.onnx")).unwrap();
    let err = NetworkStats::of(&dynamic, Some(Shape::new(2, 3, 64, 64))).unwrap_err();
    assert!(err.to_string().contains("?x3x112x112"), "{err}");
}

mod common;

/// Every torchvision export runs in joule's engine as onnxruntime runs the file (both
/// opsets, perturbed weights, batch 1; batch 2 for the dynamic-batch file): within 1e-5 of
/// the largest logit.
#[test]
fn torch_exports_match_onnxruntime() {
    let mut worst = Vec::new();
    for model in MODELS {
        for opset in [13, 17] {
            let batch = if model.ends_with("dynamic") { 2 } else { 1 };
            let file = dir().join(format!("{model}-op{opset}-perturbed.onnx"));
            let error = common::relative_error_against_onnxruntime(&file, batch);
            worst.push((format!("{model} opset {opset}"), error));
        }
    }
    let bad: Vec<_> = worst.iter().filter(|(_, e)| *e > 1e-5).collect();
    assert!(bad.is_empty(), "relative errors above 1e-5: {bad:?}");
}

/// Before opset 17 the exporter writes layer norm out (ReduceMean, Sub, Pow, ReduceMean,
/// Add, Sqrt, Div, Mul, Add); the importer fuses it, so both opsets give the same layer norms.
#[test]
fn decomposed_layer_norm_is_fused() {
    for (model, count) in [("vit_b_16", 25), ("convnext_tiny", 23)] {
        let kinds = |opset: u32| -> Vec<(String, u64)> {
            let file = dir().join(format!("{model}-op{opset}-perturbed.onnx"));
            let graph = import_file(&file).unwrap();
            let stats = NetworkStats::of(&graph, None).unwrap();
            stats
                .layers
                .iter()
                .filter(|l| l.kind == "layernorm")
                .map(|l| (l.kind.clone(), l.element_ops))
                .collect()
        };
        let (old, new) = (kinds(13), kinds(17));
        assert_eq!(old.len(), count, "{model} at opset 13");
        assert_eq!(old, new, "{model}");
    }
}
