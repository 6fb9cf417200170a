//! Hostile ONNX files: a valid export edited the way a fuzzer or a careless tool would (a
//! value written twice, pads of 2^62, a tensor declaring 2^64 values) is an error naming the
//! node or tensor, never a panic, a wrapped number or a silently dropped layer.

use joule_model::ops::{Conv, FullyConnected};
use joule_model::{Graph, NetworkStats, Op, Shape, Tensor, Value};
use joule_onnx::proto::ModelProto;
use prost::Message;

/// A conv, a flatten and an FC with zero weights, exported to ONNX and decoded again.
fn exported() -> ModelProto {
    let mut g = Graph::new("small", Some(Shape::new(1, 1, 8, 8)));
    let x = g.push("conv", Op::Conv(Conv::new(2, 3, 1, 1)), &[Value::Input]);
    let x = g.push("flat", Op::Flatten, &[x]);
    let fc = FullyConnected {
        outputs: 4,
        bias: true,
    };
    g.push("fc", Op::FullyConnected(fc), &[x]);
    let shapes = g.infer(Shape::new(1, 1, 8, 8)).unwrap();
    for (i, shape) in shapes.iter().enumerate() {
        let node = g.node_mut(joule_model::NodeId(i));
        node.params = node
            .op
            .param_dims(&shape.input_dims)
            .into_iter()
            .map(Tensor::zeros)
            .collect();
    }
    ModelProto::decode(joule_onnx::export_bytes(&g).unwrap().as_slice()).unwrap()
}

fn import(model: &ModelProto) -> Result<Graph, String> {
    joule_onnx::import_bytes(&model.encode_to_vec(), "edited").map_err(|e| e.to_string())
}

#[test]
fn the_unedited_export_imports() {
    let graph = import(&exported()).unwrap();
    assert_eq!(
        NetworkStats::of(&graph, None).unwrap().total.macs,
        2 * 9 * 64 + 128 * 4
    );
}

#[test]
fn two_nodes_writing_one_output_is_an_error() {
    let mut model = exported();
    let graph = model.graph.as_mut().unwrap();
    let conv_out = graph.node[0].output[0].clone();
    let last = graph.node.len() - 1;
    graph.node[last].output[0] = conv_out.clone();
    let err = import(&model).unwrap_err();
    assert!(
        err.contains(&format!("output {conv_out:?} is already produced")),
        "{err}"
    );
}

#[test]
fn pads_of_2_pow_62_are_refused() {
    let mut model = exported();
    let graph = model.graph.as_mut().unwrap();
    let conv = graph.node.iter_mut().find(|n| n.op_type == "Conv").unwrap();
    let pads = conv
        .attribute
        .iter_mut()
        .find(|a| a.name == "pads")
        .unwrap();
    pads.ints = vec![1 << 62; 4];
    let err = import(&model).unwrap_err();
    assert!(err.contains("pads of 4611686018427387904"), "{err}");
    assert!(err.contains("conv"), "{err}");
}

#[test]
fn a_tensor_declaring_2_pow_64_values_is_refused() {
    let mut model = exported();
    let graph = model.graph.as_mut().unwrap();
    let weight = &mut graph.initializer[0];
    let name = weight.name.clone();
    weight.dims = vec![1 << 32, 1 << 32];
    weight.raw_data.clear();
    weight.float_data.clear();
    let err = import(&model).unwrap_err();
    assert!(err.contains(&format!("tensor {name:?}")), "{err}");
    assert!(err.contains("64 bits") || err.contains("maximum"), "{err}");
}

#[test]
fn a_huge_input_is_refused_not_wrapped() {
    let mut model = exported();
    let graph = model.graph.as_mut().unwrap();
    let dims = &mut graph.input[0]
        .r#type
        .as_mut()
        .unwrap()
        .tensor_type
        .as_mut()
        .unwrap()
        .shape
        .as_mut()
        .unwrap()
        .dim;
    dims[2].dim_value = Some(1 << 32);
    dims[3].dim_value = Some(1 << 32);
    let err = import(&model).unwrap_err();
    assert!(
        err.contains("the input") || err.contains("maximum"),
        "{err}"
    );
}

/// Found by `scripts/fuzz.sh` (a libFuzzer timeout): a mutated attention export whose shape
/// arithmetic folds a constant past the folding limit is refused, naming the node, after
/// folding no more than the limit.
#[test]
fn a_fold_past_the_limit_is_refused() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/hostile/expand-bomb.onnx"
    );
    let err = joule_onnx::import_file(std::path::Path::new(path))
        .unwrap_err()
        .to_string();
    assert!(err.contains("folding a constant of"), "{err}");
    assert!(err.contains("expand-bomb.onnx"), "{err}");
    assert!(err.contains("node \""), "{err}");
}

/// Found by `scripts/fuzz.sh` (a panic): a `Shape` node without its input is an error naming
/// the node, not an index out of bounds.
#[test]
fn a_shape_node_without_input_is_refused() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/hostile/shape-without-input.onnx"
    );
    let err = joule_onnx::import_file(std::path::Path::new(path))
        .unwrap_err()
        .to_string();
    assert!(err.contains("shape-without-input.onnx"), "{err}");
    assert!(
        err.contains("(Shape)") && err.contains("is missing"),
        "{err}"
    );
}
