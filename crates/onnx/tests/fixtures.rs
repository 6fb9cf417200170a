//! Import of ONNX files made by the Python `onnx` package (scripts/make-onnx-fixtures.py,
//! run by scripts/test.sh): stats against hand-computed counts, shapes against onnx's own
//! shape inference, weights against the generating formula.

use joule_model::{Dims, NetworkStats, Op, Shape};
use joule_onnx::{import_file, ImportError};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "missing fixture {}: run scripts/test.sh (or .venv/bin/python scripts/make-onnx-fixtures.py tests/fixtures/onnx)",
        path.display()
    );
    path
}

/// The generator's weight formula: ((i * 31) % 17 - 8) / 10 over the flat index.
fn pattern(i: usize, zero_every: usize) -> f32 {
    if zero_every > 0 && i.is_multiple_of(zero_every) {
        return 0.0;
    }
    (((i * 31) % 17) as f32 - 8.0) / 10.0
}

/// Density of the formula's values over `len` entries (it is zero at i % 17 == 9 too).
fn pattern_density(len: usize, zero_every: usize) -> f64 {
    (0..len).filter(|&i| pattern(i, zero_every) != 0.0).count() as f64 / len as f64
}

#[test]
fn tiny_cnn_stats_by_hand() {
    let g = import_file(&fixture("tiny_cnn.onnx")).unwrap();
    // Symbolic batch is taken as 1.
    assert_eq!(g.input_shape, Some(Shape::new(1, 1, 8, 8)));
    let s = NetworkStats::of(&g, None).unwrap();
    let conv1 = s.layer("conv1").unwrap();
    assert_eq!(
        (conv1.weights, conv1.biases, conv1.macs),
        (36, 4, 4 * 8 * 8 * 9)
    );
    // Grouped: 8 filters of 2 channels (4 input channels / 2 groups) on a 4x4 ifmap -> 2x2.
    let conv2 = s.layer("conv2").unwrap();
    assert_eq!(conv2.kind, "conv_grouped");
    assert_eq!(
        (conv2.weights, conv2.biases, conv2.macs),
        (144, 0, 8 * 2 * 2 * 2 * 9)
    );
    assert_eq!(s.layer("fc").unwrap().macs, 80);
    assert_eq!(s.total.weights, 36 + 144 + 80);
    assert_eq!(s.total.macs, 2304 + 576 + 80);
    assert_eq!(s.layer("bn1").unwrap().parameters, 8);
    assert_eq!(
        g.node(g.find("relu6").unwrap()).op,
        Op::Activation(joule_model::ops::Activation::Relu6)
    );
    // Weight sparsity is visible to the energy engine: conv2 zeroes every 4th weight.
    let w2 = &g.node(g.find("conv2").unwrap()).params[0];
    assert_eq!(w2.shape, vec![8, 2, 3, 3]);
    assert_eq!(w2.density(), pattern_density(144, 4));
    assert!(w2.density() < 0.75);
    let bn = g.node(g.find("bn1").unwrap());
    assert!(matches!(&bn.op, Op::BatchNorm(b) if (b.epsilon - 1e-3).abs() < 1e-9));
}

#[test]
fn matmul_weights_are_transposed_and_bias_folded() {
    let g = import_file(&fixture("mlp_matmul.onnx")).unwrap();
    let fc1 = g.node(g.find("fc1").unwrap());
    assert!(matches!(&fc1.op, Op::FullyConnected(fc) if fc.bias && fc.outputs == 32));
    let w = &fc1.params[0];
    assert_eq!(w.shape, vec![32, 784]);
    // ONNX's MatMul weight is K x M; joule stores M x K.
    for (k, m) in [(0, 0), (5, 3), (783, 31), (100, 7)] {
        assert_eq!(w.data[m * 784 + k], pattern(k * 32 + m, 2), "w[{m}][{k}]");
    }
    assert_eq!(w.density(), pattern_density(784 * 32, 2));
    assert_eq!(fc1.params[1].data[3], pattern(3, 0));
    // Add(b2, h2) with the constant first also folds.
    let fc2 = g.node(g.find("fc2").unwrap());
    assert!(matches!(&fc2.op, Op::FullyConnected(fc) if fc.bias));
    let s = NetworkStats::of(&g, None).unwrap();
    assert_eq!(s.total.weights, 784 * 32 + 32 * 10);
    assert_eq!(s.total.biases, 42);
    assert_eq!(s.total.macs, 784 * 32 + 320);
    // Identity and the Add nodes vanish; the Reshape becomes a Flatten.
    let kinds: Vec<&str> = g.nodes().iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["flatten", "fc", "relu", "dropout", "fc"]);
    // The FC's loop nest sees the 1x28x28 ifmap through the flatten.
    let shapes = g.infer(Shape::new(1, 1, 28, 28)).unwrap();
    let nest = shapes[1].loop_nest.unwrap();
    assert_eq!((nest.c, nest.r, nest.s, nest.m), (1, 28, 28, 32));
}

#[test]
fn branches_stats_by_hand() {
    let g = import_file(&fixture("branches.onnx")).unwrap();
    let s = NetworkStats::of(&g, None).unwrap();
    let macs = |n: &str| s.layer(n).unwrap().macs;
    assert_eq!(macs("branch_1x1"), 8 * 196 * 16);
    assert_eq!(macs("branch_dilated"), 8 * 196 * 16 * 9);
    assert_eq!(macs("branch_dw"), 16 * 196 * 9);
    assert_eq!(macs("project"), 16 * 196 * 32);
    assert_eq!(macs("classifier"), 80);
    assert_eq!(s.total.weights, 128 + 1152 + 144 + 512 + 80);
    assert_eq!(s.layer("concat").unwrap().output_shape, [1, 32, 14, 14]);
    // Ceil mode: (14 - 3) / 2 rounds up to 6, plus one.
    assert_eq!(s.layer("pool").unwrap().output_shape, [1, 16, 7, 7]);
    // Gemm without transB: the K x M weight is transposed on import.
    let w = &g.node(g.find("classifier").unwrap()).params[0];
    assert_eq!(w.shape, vec![5, 16]);
    assert_eq!(w.data[2 * 16 + 7], pattern(7 * 5 + 2, 0));
}

#[test]
fn shapes_agree_with_onnx_shape_inference() {
    let text = std::fs::read_to_string(fixture("shapes.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut compared = 0;
    for (model, nodes) in reference.as_object().unwrap() {
        let g = import_file(&fixture(&format!("{model}.onnx"))).unwrap();
        let shapes = g.infer(g.input_shape.unwrap()).unwrap();
        for (node, dims) in nodes.as_object().unwrap() {
            let Some(id) = g.find(node) else {
                continue; // folded away (bias Adds, Identity, Constant)
            };
            let mut dims: Vec<usize> = dims
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            if dims[1..].contains(&0) {
                continue; // onnx's inference could not resolve it (a computed Reshape target)
            }
            if dims.first() == Some(&0) {
                dims[0] = 1; // symbolic batch
            }
            let ours = shapes[id.0].output_dims.to_vec();
            assert_eq!(ours, dims, "{model}/{node}");
            compared += 1;
        }
    }
    assert!(compared >= 70, "only {compared} shapes compared");
}

#[test]
fn symbolic_input_needs_a_shape() {
    let g = import_file(&fixture("symbolic.onnx")).unwrap();
    assert_eq!(g.input_shape, None);
    let err = NetworkStats::of(&g, None).unwrap_err();
    assert!(err.to_string().contains("--input-shape"), "{err}");
    let s = NetworkStats::of(&g, Some(Shape::new(2, 3, 16, 16))).unwrap();
    assert_eq!(s.total.macs, 2 * 4 * 16 * 16 * 27);
}

#[test]
fn unsupported_op_names_op_and_node() {
    let err = import_file(&fixture("unsupported_op.onnx")).unwrap_err();
    assert!(matches!(*err.error, ImportError::Unsupported { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("Selu") && msg.contains("mystery_activation"),
        "{msg}"
    );
    assert!(msg.contains("unsupported_op.onnx"), "{msg}");
}

#[test]
fn concat_mismatch_names_the_node() {
    let msg = import_file(&fixture("concat_mismatch.onnx"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("bad_concat") && msg.contains("concat_mismatch.onnx"),
        "{msg}"
    );
}

#[test]
fn truncated_and_garbage_files_are_rejected() {
    let dir = std::env::temp_dir().join(format!("joule-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(fixture("tiny_cnn.onnx")).unwrap();
    let cut = dir.join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = import_file(&cut).unwrap_err();
    assert!(
        err.to_string().starts_with(&cut.display().to_string()),
        "{err}"
    );
    let text = dir.join("text.onnx");
    std::fs::write(&text, "this is not a model\n").unwrap();
    assert!(import_file(&text).is_err());
    let empty = dir.join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        *import_file(&empty).unwrap_err().error,
        ImportError::NoGraph
    ));
    let missing = dir.join("missing.onnx");
    assert!(matches!(
        *import_file(&missing).unwrap_err().error,
        ImportError::Io(_)
    ));
    // Every prefix of a real model either imports or fails cleanly: never a panic.
    for len in (0..bytes.len()).step_by(7) {
        let _ = joule_onnx::import_bytes(&bytes[..len], "prefix");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A one-block vision transformer as torch.onnx writes it (computed Reshape target, class
/// token Expanded to a symbolic batch, packed QKV with Split, attention, layer norm in both
/// forms, GELU as Erf): MACs by hand, at batch 1 and batch 3.
#[test]
fn attention_block_stats_by_hand() {
    let g = import_file(&fixture("attention.onnx")).unwrap();
    assert!(g.input_spec.as_ref().unwrap().dynamic_batch());
    let per_sample = 3072 + 3840 + 400 + 400 + 1280 + 2560 + 2560 + 160;
    for n in [1, 3] {
        let s = NetworkStats::of(&g, Some(Shape::new(n, 3, 8, 8))).unwrap();
        assert_eq!(s.total.macs, n as u64 * per_sample, "batch {n}");
        assert_eq!(s.total.matmul.macs, n as u64 * 800);
        assert_eq!(s.total.matmul.layers, 2);
        assert_eq!(s.layer("scores").unwrap().output_dims, vec![n, 2, 5, 5]);
        assert_eq!(s.layer("qkv").unwrap().kind, "linear");
        assert_eq!(s.layer("qkv").unwrap().biases, 48);
        assert_eq!(s.layer("head").unwrap().output_dims, vec![n, 10]);
        // The class token enters as a constant broadcast to the batch.
        assert_eq!(s.layer("cls_n").unwrap().output_dims, vec![n, 1, 16]);
        // Element operations apart from MACs: softmax over 2 x 5 x 5 scores per sample.
        assert_eq!(s.layer("softmax").unwrap().element_ops, n as u64 * 50);
        assert_eq!(s.layer("ln1").unwrap().element_ops, n as u64 * 80);
    }
    // The decomposed layer norm (ReduceMean ... Add) is one LayerNorm, named by its last node.
    let kinds: Vec<&str> = g.nodes().iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "layernorm").count(), 2);
    assert!(g.find("ln2_shift").is_some() && g.find("ln2_mean").is_none());
    // The attention scale 1/sqrt(8) was folded from the shape of Q.
    let scaled = g.node(g.find("scaled").unwrap());
    assert_eq!(scaled.params[0].data, vec![8f32.sqrt()]);
}

/// Squeeze-and-excitation, HardSwish/HardSigmoid, SiLU, Pad/Slice and a channel shuffle.
#[test]
fn mobile_block_stats_by_hand() {
    let g = import_file(&fixture("mobile_block.onnx")).unwrap();
    let s = NetworkStats::of(&g, None).unwrap();
    assert_eq!(s.total.macs, 20736 + 32 + 32 + 24);
    assert_eq!(s.layer("shuffle").unwrap().output_dims, vec![1, 4, 2, 6, 6]);
    assert_eq!(s.layer("se_scale").unwrap().element_ops, 8 * 36);
    assert_eq!(s.layer("pad").unwrap().output_dims, vec![1, 8, 8, 8]);
    let shapes = g.infer(g.input_shape.unwrap()).unwrap();
    let crop = g.find("crop").unwrap();
    assert_eq!(shapes[crop.0].output_dims, Dims::new([1, 8, 6, 6]));
}

/// Damaged variants of the ViT block (each node removed in turn; each integer constant
/// replaced by odd values) import or fail with an error, never a panic.
#[test]
fn damaged_graphs_fail_cleanly() {
    use joule_onnx::proto::ModelProto;
    use prost::Message;
    let bytes = std::fs::read(fixture("attention.onnx")).unwrap();
    let model = ModelProto::decode(bytes.as_slice()).unwrap();
    let nodes = model.graph.as_ref().unwrap().node.len();
    let mut variants = Vec::new();
    for i in 0..nodes {
        let mut m = model.clone();
        m.graph.as_mut().unwrap().node.remove(i);
        variants.push((format!("without node {i}"), m));
    }
    for i in 0..nodes {
        for value in [
            vec![],
            vec![0],
            vec![-7],
            vec![i64::MIN, -1],
            vec![1 << 40, 3],
        ] {
            let mut m = model.clone();
            let node = &mut m.graph.as_mut().unwrap().node[i];
            let Some(t) = node.attribute.iter_mut().find_map(|a| a.t.as_mut()) else {
                continue;
            };
            if t.data_type != joule_onnx::proto::data_type::INT64 {
                continue;
            }
            t.raw_data.clear();
            t.dims = if value.len() == 1 {
                vec![]
            } else {
                vec![value.len() as i64]
            };
            t.int64_data = value.clone();
            variants.push((format!("node {i} holding {value:?}"), m));
        }
    }
    assert!(variants.len() > 80);
    for (what, m) in variants {
        let bytes = m.encode_to_vec();
        let outcome = std::panic::catch_unwind(|| {
            if let Ok(g) = joule_onnx::import_bytes(&bytes, "damaged") {
                let _ = NetworkStats::of(&g, Some(Shape::new(2, 3, 8, 8)));
            }
        });
        assert!(outcome.is_ok(), "panicked on the ViT block {what}");
    }
}

/// Einsum and Gemm of two activations are MatMul layers; MACs by hand at two batch sizes.
#[test]
fn einsum_and_gemm_of_activations_by_hand() {
    let g = import_file(&fixture("products.onnx")).unwrap();
    for n in [1u64, 2] {
        let s = NetworkStats::of(&g, Some(Shape::new(n as usize, 2, 4, 6))).unwrap();
        let (einsum, gemm) = (2 * n * 4 * 4 * 6, (8 * n) * (8 * n) * 4);
        assert_eq!(s.layer("einsum").unwrap().macs, einsum);
        assert_eq!(s.layer("gemm").unwrap().macs, gemm);
        assert_eq!(s.total.matmul.macs, einsum + gemm);
        assert_eq!(s.layers.last().unwrap().output_dims, vec![8 * n as usize]);
    }
}
