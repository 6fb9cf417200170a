//! Weights in external data files, the format exporters switch to past protobuf's 2 GB
//! (torch.onnx.export writes one file per tensor beside the model; onnx's `save_model` can
//! put them all in one file at offsets). The judges: the graph the file was made from, and
//! onnxruntime reading the same files.

mod common;

use common::{max_abs_diff, onnxruntime, random_input};
use joule_model::{zoo, Shape};
use joule_nn::Network;
use joule_onnx::proto::{ModelProto, StringStringEntryProto};
use joule_onnx::{export_bytes, import_bytes, import_file};
use prost::Message;
use std::path::Path;

fn entry(key: &str, value: impl ToString) -> StringStringEntryProto {
    StringStringEntryProto {
        key: key.into(),
        value: value.to_string(),
    }
}

/// `model` with every initializer moved out: the first into a file of its own (no offset or
/// length, as torch writes them), the rest one after another into `shared.bin`.
fn externalise(model: &mut ModelProto, dir: &Path) {
    let mut shared = Vec::new();
    let graph = model.graph.as_mut().unwrap();
    for (i, t) in graph.initializer.iter_mut().enumerate() {
        let raw = std::mem::take(&mut t.raw_data);
        assert!(!raw.is_empty(), "{}: the exporter writes raw data", t.name);
        t.data_location = 1;
        if i == 0 {
            std::fs::write(dir.join("first.weight"), &raw).unwrap();
            t.external_data = vec![entry("location", "first.weight")];
        } else {
            t.external_data = vec![
                entry("location", "shared.bin"),
                entry("offset", shared.len()),
                entry("length", raw.len()),
            ];
            shared.extend(raw);
        }
    }
    std::fs::write(dir.join("shared.bin"), shared).unwrap();
}

#[test]
fn external_weights_import_as_if_inside() {
    let graph = Network::new(zoo::build("lenet5").unwrap(), 5)
        .unwrap()
        .into_graph();
    let bytes = export_bytes(&graph).unwrap();
    let inside = import_bytes(&bytes, "lenet5").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut model = ModelProto::decode(bytes.as_slice()).unwrap();
    externalise(&mut model, dir.path());
    let path = dir.path().join("lenet5.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();

    let outside = import_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inside, outside);

    // onnxruntime reads the same files to the same outputs.
    let network = Network::new(outside, 0).unwrap();
    let input = random_input(
        Shape {
            n: 2,
            ..network.graph().input_shape.unwrap()
        },
        3,
    );
    let ours = network.forward(&input).unwrap();
    let theirs = onnxruntime(&path, &input, dir.path());
    assert!(max_abs_diff(&ours.data, &theirs) < 1e-5);

    // From memory there is no folder to read them from: an error naming the tensor.
    let err = import_bytes(&model.encode_to_vec(), "lenet5").unwrap_err();
    assert!(err.to_string().contains("external file"), "{err}");
}

#[test]
fn external_data_errors_name_the_tensor() {
    let graph = zoo::build("lenet5").unwrap();
    let graph = Network::new(graph, 1).unwrap().into_graph();
    let bytes = export_bytes(&graph).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let with = |t_location: &str, extra: Vec<StringStringEntryProto>| {
        let mut model = ModelProto::decode(bytes.as_slice()).unwrap();
        externalise(&mut model, dir.path());
        let t = &mut model.graph.as_mut().unwrap().initializer[1];
        t.external_data = [vec![entry("location", t_location)], extra].concat();
        let name = t.name.clone();
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        (name, import_file(&path).unwrap_err().to_string())
    };
    for (location, extra, says) in [
        ("../outside.bin", vec![], "leaves the model's folder"),
        ("/etc/passwd", vec![], "leaves the model's folder"),
        ("missing.bin", vec![], "missing.bin"),
        (
            "shared.bin",
            vec![entry("offset", "lots")],
            "not a byte count",
        ),
        (
            "shared.bin",
            vec![entry("offset", 0), entry("length", 1u64 << 40)],
            "which holds",
        ),
    ] {
        let (name, msg) = with(location, extra);
        assert!(
            msg.contains(&format!("{name:?}")) && msg.contains(says),
            "{msg}"
        );
    }
}
