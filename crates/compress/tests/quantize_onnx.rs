//! QDQ export judged by onnxruntime (from .venv): LeNet-5 trained on real MNIST, quantized
//! (int8 QDQ at 8/8; 4-bit activations through the clipped uint8 path; power-of-two weights
//! past int8 as exact floats; 12-bit activations in float ops), exported, and run over the
//! whole test split: the same accuracy within 0.1 points, and logits that agree up to the
//! odd rounding flip.

#[path = "../../onnx/tests/common/mod.rs"]
mod common;

use joule_compress::metrics::calibration_batch;
use joule_compress::quantize::{self, Config, LayerWidths};
use joule_model::{zoo, Shape};
use joule_nn::quant::WeightScheme;
use joule_nn::{evaluate, train, DataSource, FeatureMap, Network, Split, TrainConfig};
use joule_onnx::proto::ModelProto;
use prost::Message;
use std::path::PathBuf;

#[test]
fn qdq_exports_have_joules_accuracy_in_onnxruntime() {
    let data = std::env::var_os("JOULE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join("data"));
    let load = |split| {
        DataSource::Mnist
            .load(&data, split)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (train_set, test_set) = (load(Split::Train), load(Split::Test));
    let mut float = Network::new(zoo::build("lenet5").unwrap(), 5).unwrap();
    let tc = TrainConfig {
        seed: 5,
        ..TrainConfig::default()
    };
    train(&mut float, &train_set, &tc, |_| {}).unwrap();
    let all: Vec<usize> = (0..test_set.len()).collect();
    let (images, labels) = test_set.batch(&all);
    let input = FeatureMap::new(
        Shape {
            n: test_set.len(),
            ..test_set.sample
        },
        images,
    )
    .unwrap();
    let calibration = calibration_batch(&train_set, 256, 1).unwrap();

    let eight = Config::new(8, 8);
    let mut low = Config::new(4, 4);
    low.first_last = quantize::FirstLast::Same;
    let mut pow2 = Config::new(5, 8);
    pow2.scheme = WeightScheme::PowerOfTwo;
    pow2.layers.insert(
        "fc1".into(),
        LayerWidths {
            weight: None,
            activation: Some(12),
        },
    );
    let mut ternary = Config::new(4, 6);
    ternary.scheme = WeightScheme::Ternary;
    for (what, config) in [
        ("8/8", eight),
        ("4/4", low),
        ("pow2", pow2),
        ("ternary", ternary),
    ] {
        let plan = quantize::plan(float.graph(), &config).unwrap();
        let quants = quantize::calibrate(&float, &plan, &calibration, config.calibration).unwrap();
        let mut net = float.clone();
        quantize::apply(&mut net, &quants).unwrap();
        net.bake_weights();
        let ours = evaluate(&net, &test_set, 500).unwrap().accuracy;
        let logits = net.forward(&input).unwrap();
        let bytes = quantize::export_qdq(&net).unwrap();
        let model = ModelProto::decode(bytes.as_slice()).unwrap();
        let ops: Vec<&str> = model
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .map(|n| n.op_type.as_str())
            .collect();
        let count = |op: &str| ops.iter().filter(|o| **o == op).count();
        match what {
            // Every layer's weights in int8 and every input through a uint8 pair.
            "8/8" | "4/4" | "ternary" => {
                assert_eq!(count("QuantizeLinear"), 5, "{what}: {ops:?}");
                assert_eq!(count("DequantizeLinear"), 10, "{what}: {ops:?}");
            }
            // 5-bit power-of-two codes reach 2^14: float weights in three layers; fc1's
            // 12-bit input in float ops (Round).
            _ => {
                assert_eq!(count("QuantizeLinear"), 4, "{what}: {ops:?}");
                assert_eq!(count("DequantizeLinear"), 4 + 2, "{what}: {ops:?}");
                assert_eq!(count("Round"), 1, "{what}: {ops:?}");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.onnx");
        std::fs::write(&path, &bytes).unwrap();
        let theirs = common::onnxruntime(&path, &input, dir.path());
        let classes = logits.data.len() / test_set.len();
        let correct = theirs
            .chunks_exact(classes)
            .zip(&labels)
            .filter(|(row, &label)| joule_nn::train::argmax(row) == label as usize)
            .count();
        let theirs_accuracy = correct as f64 / test_set.len() as f64;
        eprintln!(
            "{what}: joule {:.2}%, onnxruntime {:.2}%, max |diff| {}",
            100.0 * ours,
            100.0 * theirs_accuracy,
            common::max_abs_diff(&logits.data, &theirs)
        );
        assert!(
            (theirs_accuracy - ours).abs() <= 0.001,
            "{what}: joule {ours} vs onnxruntime {theirs_accuracy}"
        );
        // Logits agree to float rounding, except where a sum landing on a rounding boundary
        // moved an activation code by one step in one runtime and not the other: allow a
        // few such flips (each moves a logit by a small fraction of its range).
        let scale = logits.data.iter().fold(0f32, |m, v| m.max(v.abs()));
        let far = logits
            .data
            .iter()
            .zip(&theirs)
            .filter(|(a, b)| (*a - *b).abs() > 1e-4 * scale)
            .count();
        assert!(
            far * 100 <= logits.data.len(),
            "{what}: {far} logits differ"
        );
        let worst = common::max_abs_diff(&logits.data, &theirs);
        assert!(
            worst <= 1e-2 * scale,
            "{what}: max |diff| {worst} of {scale}"
        );
    }
}
