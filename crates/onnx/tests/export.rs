//! Export checked two ways: a round trip through joule's importer must reproduce the IR
//! bit for bit, and onnxruntime (an independent runtime, from .venv) must compute the same
//! outputs as joule's engine within 1e-4.

mod common;

use common::{fixture, max_abs_diff, onnxruntime, random_input, root};
use joule_model::{zoo, Graph, Shape};
use joule_nn::{FeatureMap, Network};
use joule_onnx::{export_bytes, export_file, import_bytes, import_file};
use std::path::PathBuf;

fn check_against_onnxruntime(graph: Graph, batch: usize) {
    let name = graph.name.clone();
    let network = Network::new(graph, 7).unwrap();
    let shape = Shape {
        n: batch,
        ..network.graph().input_shape.unwrap()
    };
    let input = random_input(shape, 11);
    let ours = network.forward(&input).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join(format!("{name}.onnx"));
    export_file(network.graph(), &model).unwrap();
    let theirs = onnxruntime(&model, &input, dir.path());
    assert_eq!(ours.data.len(), theirs.len(), "{name}: output sizes");
    let worst = max_abs_diff(&ours.data, &theirs);
    assert!(worst <= 1e-4, "{name}: max |joule - onnxruntime| = {worst}");
}

#[test]
fn zoo_networks_match_onnxruntime() {
    // The MobileNet-style pair brings depthwise CONV, ReLU6, residual adds, SE's
    // broadcasting Mul and hard swish (written as x * HardSigmoid(x) in opset 13).
    for name in ["lenet5", "lenet300", "mobilenetv2-28", "mobilenetv3-28"] {
        check_against_onnxruntime(zoo::build(name).unwrap(), 4);
    }
}

#[test]
fn imported_fixtures_match_onnxruntime() {
    // Batch norm, grouped/dilated/depthwise CONV, LRN, average and ceil-mode pooling,
    // Concat, Add, Clip: every op the exporter writes.
    for name in ["tiny_cnn.onnx", "branches.onnx", "mlp_matmul.onnx"] {
        let graph = import_file(&fixture(name)).unwrap();
        // A batch the file fixes stays fixed in the export; a symbolic one is run at 3.
        let batch = graph.input_spec.as_ref().unwrap().dims[0].unwrap_or(3);
        check_against_onnxruntime(graph, batch);
    }
}

/// The N-d ops of imported models (attention, layer norm, broadcasting arithmetic, Split,
/// Gather, Expand, Pad, Slice, channel shuffle, SE) run in joule's engine as onnxruntime runs
/// the file: within 1e-5 of the largest output. The ViT block runs at batch 3 (its file's
/// batch is symbolic and its computed shapes scale).
#[test]
fn imported_nd_ops_match_onnxruntime() {
    for (name, batch) in [
        ("attention.onnx", 3),
        ("attention.onnx", 1),
        ("mobile_block.onnx", 1),
        ("products.onnx", 2),
    ] {
        let error = common::relative_error_against_onnxruntime(&fixture(name), batch);
        assert!(
            error <= 1e-5,
            "{name} at batch {batch}: relative error {error}"
        );
    }
    // They train too (backward passes in crates/nn/tests/gradients.rs): the attention
    // block (layer norm, no batch norm or dropout) computes the same in a training pass.
    let mut network = Network::new(import_file(&fixture("attention.onnx")).unwrap(), 1).unwrap();
    let input = random_input(Shape::new(1, 3, 8, 8), 2);
    let want = network.forward(&input).unwrap();
    let trace = network
        .forward_train(&input, &mut joule_nn::Rng::new(1))
        .unwrap();
    let got = trace.output(network.graph().output().unwrap());
    assert!(max_abs_diff(&got.data, &want.data) <= 1e-5);
}

#[test]
fn round_trip_is_bit_exact() {
    for name in ["tiny_cnn.onnx", "branches.onnx", "mlp_matmul.onnx"] {
        let original = import_file(&fixture(name)).unwrap();
        let again = import_bytes(&export_bytes(&original).unwrap(), "again").unwrap();
        assert_eq!(original, again, "{name}");
    }
    let trained = Network::new(zoo::build("lenet5").unwrap(), 3)
        .unwrap()
        .into_graph();
    let mut again = import_bytes(&export_bytes(&trained).unwrap(), "again").unwrap();
    // The file declares its input (symbolic batch); the zoo graph has no declaration.
    let spec = again.input_spec.take().unwrap();
    assert_eq!((spec.name.as_str(), spec.dims.len()), ("input", 4));
    assert!(spec.dynamic_batch());
    assert_eq!(trained, again);
}

#[test]
fn exporting_a_model_without_weights_names_the_node() {
    let err = export_bytes(&zoo::build("alexnet").unwrap()).unwrap_err();
    assert!(err.to_string().contains("\"conv1\""), "{err}");
}

/// A LeNet-5 trained on real MNIST, exported, and run by onnxruntime over the whole test
/// split: the same logits within 1e-4 and the same accuracy.
#[test]
fn trained_lenet5_has_the_same_accuracy_in_onnxruntime() {
    use joule_nn::{evaluate, train, DataSource, Split, TrainConfig};
    let data = std::env::var_os("JOULE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("data"));
    let load = |split| {
        DataSource::Mnist
            .load(&data, split)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (train_set, test_set) = (load(Split::Train), load(Split::Test));
    let mut network = Network::new(zoo::build("lenet5").unwrap(), 5).unwrap();
    let config = TrainConfig {
        seed: 5,
        ..TrainConfig::default()
    };
    train(&mut network, &train_set, &config, |_| {}).unwrap();
    let ours = evaluate(&network, &test_set, 500).unwrap();
    assert!(ours.accuracy > 0.9, "training failed: {}", ours.accuracy);

    let all: Vec<usize> = (0..test_set.len()).collect();
    let (images, labels) = test_set.batch(&all);
    let shape = Shape {
        n: test_set.len(),
        ..test_set.sample
    };
    let input = FeatureMap::new(shape, images).unwrap();
    let logits = network.forward(&input).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("lenet5.onnx");
    export_file(network.graph(), &model).unwrap();
    let theirs = onnxruntime(&model, &input, dir.path());
    let worst = max_abs_diff(&logits.data, &theirs);
    assert!(worst <= 1e-4, "max |joule - onnxruntime| = {worst}");
    let classes = logits.data.len() / test_set.len();
    let correct = theirs
        .chunks_exact(classes)
        .zip(&labels)
        .filter(|(row, &label)| joule_nn::train::argmax(row) == label as usize)
        .count();
    let theirs_accuracy = correct as f64 / test_set.len() as f64;
    assert_eq!(theirs_accuracy, ours.accuracy as f64, "accuracy differs");
}
