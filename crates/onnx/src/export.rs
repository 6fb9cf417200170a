//! ONNX export: an IR graph with its weights as a standard ONNX model (opset 13) that other
//! runtimes (onnxruntime, PyTorch's importers) can run.

use crate::proto::{
    attribute_type, data_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};
use joule_model::ops::{Activation, Padding, PoolKind};
use joule_model::{Graph, ModelError, Op, Tensor, Value};
use prost::Message;
use std::path::Path;
use thiserror::Error;

pub const OPSET: i64 = 13;
const INPUT: &str = "input";

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("node {node:?} ({kind}) has no weights: train the model or load a checkpoint first")]
    MissingWeights { node: String, kind: &'static str },
    #[error("node {node:?} ({kind}): export of this op is not supported yet")]
    Unsupported { node: String, kind: &'static str },
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error("{path}: cannot write: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Writes `graph` as an ONNX file.
pub fn export_file(graph: &Graph, path: &Path) -> Result<(), ExportError> {
    let bytes = export_bytes(graph)?;
    joule_model::fs::write_atomic(path, &bytes).map_err(|source| ExportError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Encodes `graph` as ONNX protobuf bytes.
pub fn export_bytes(graph: &Graph) -> Result<Vec<u8>, ExportError> {
    Ok(export_model(graph)?.encode_to_vec())
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: ints.iter().map(|&v| v as i64).collect(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: attribute_type::FLOAT,
        ..Default::default()
    }
}

fn pads(p: &Padding) -> AttributeProto {
    attr_ints("pads", &[p.top, p.left, p.bottom, p.right])
}

fn initializer(name: String, t: &Tensor) -> TensorProto {
    TensorProto {
        name,
        dims: t.shape.iter().map(|&d| d as i64).collect(),
        data_type: data_type::FLOAT,
        raw_data: t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn scalar(name: String, v: f32) -> TensorProto {
    initializer(
        name,
        &Tensor {
            shape: vec![],
            data: vec![v],
        },
    )
}

/// A float tensor's declaration; the batch (first) axis is symbolic unless `fixed_batch`.
fn value_info(name: &str, dims: &[usize], fixed_batch: bool) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .enumerate()
                        .map(|(i, &d)| Dimension {
                            // The batch stays symbolic so any N runs.
                            dim_value: (i > 0 || fixed_batch).then_some(d as i64),
                            dim_param: (i == 0 && !fixed_batch).then(|| "N".to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
        ..Default::default()
    }
}

fn node(
    op_type: &str,
    name: &str,
    inputs: Vec<String>,
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs,
        output: vec![output.into()],
        name: name.into(),
        op_type: op_type.into(),
        attribute,
        ..Default::default()
    }
}

pub(crate) fn export_model(graph: &Graph) -> Result<ModelProto, ExportError> {
    let input_shape = graph.resolve_input(None)?;
    let shapes = graph.infer(input_shape)?;
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    // ONNX ranks: FC outputs and flattened tensors are N x F, the rest N x C x H x W.
    let mut flat = vec![false; graph.len()];
    // An imported graph keeps its input's name.
    let input_name = graph.input_spec.as_ref().map_or(INPUT, |s| s.name.as_str());
    let tensor_name = |v: &Value| match v {
        Value::Input => input_name.to_string(),
        Value::Node(id) => format!("{}:out", graph.node(*id).name),
    };
    for (i, n) in graph.nodes().iter().enumerate() {
        let out = format!("{}:out", n.name);
        let mut inputs: Vec<String> = n.inputs.iter().map(tensor_name).collect();
        let input_flat = matches!(n.inputs.first(), Some(Value::Node(id)) if flat[id.0]);
        let kind = n.op.kind();
        let need = |count: usize| -> Result<(), ExportError> {
            if n.params.len() < count {
                return Err(ExportError::MissingWeights {
                    node: n.name.clone(),
                    kind,
                });
            }
            Ok(())
        };
        let mut param = |index: usize, suffix: &str| {
            let name = format!("{}.{suffix}", n.name);
            inits.push(initializer(name.clone(), &n.params[index]));
            name
        };
        let (op_type, attrs): (&str, Vec<AttributeProto>) = match &n.op {
            Op::Conv(c) => {
                need(1 + c.bias as usize)?;
                inputs.push(param(0, "weight"));
                if c.bias {
                    inputs.push(param(1, "bias"));
                }
                (
                    "Conv",
                    vec![
                        attr_ints("kernel_shape", &[c.r, c.s]),
                        attr_ints("strides", &[c.stride_h, c.stride_w]),
                        attr_ints("dilations", &[c.dilation_h, c.dilation_w]),
                        pads(&c.padding),
                        attr_int("group", c.groups as i64),
                    ],
                )
            }
            Op::FullyConnected(fc) => {
                need(1 + fc.bias as usize)?;
                if !input_flat {
                    // Gemm takes N x F: flatten the spatial input first.
                    let flat_name = format!("{}:flat", n.name);
                    nodes.push(node(
                        "Flatten",
                        &format!("{}/flatten", n.name),
                        inputs.clone(),
                        &flat_name,
                        vec![attr_int("axis", 1)],
                    ));
                    inputs = vec![flat_name];
                }
                inputs.push(param(0, "weight"));
                if fc.bias {
                    inputs.push(param(1, "bias"));
                }
                flat[i] = true;
                ("Gemm", vec![attr_int("transB", 1)])
            }
            Op::Pool(p) => {
                let mut attrs = vec![
                    attr_ints("kernel_shape", &[p.kernel_h, p.kernel_w]),
                    attr_ints("strides", &[p.stride_h, p.stride_w]),
                    pads(&p.padding),
                    attr_int("ceil_mode", p.ceil_mode as i64),
                ];
                let op_type = match p.kind {
                    PoolKind::Max => "MaxPool",
                    PoolKind::Average => {
                        attrs.push(attr_int("count_include_pad", p.count_include_pad as i64));
                        "AveragePool"
                    }
                };
                (op_type, attrs)
            }
            Op::GlobalPool { kind } => match kind {
                PoolKind::Max => ("GlobalMaxPool", vec![]),
                PoolKind::Average => ("GlobalAveragePool", vec![]),
            },
            Op::Activation(a) => {
                flat[i] = input_flat;
                match *a {
                    Activation::Relu => ("Relu", vec![]),
                    Activation::Relu6 | Activation::Clip { .. } => {
                        let (min, max) = match *a {
                            Activation::Clip { min, max } => (min, max),
                            _ => (0.0, 6.0),
                        };
                        inits.push(scalar(format!("{}.min", n.name), min));
                        inits.push(scalar(format!("{}.max", n.name), max));
                        inputs.push(format!("{}.min", n.name));
                        inputs.push(format!("{}.max", n.name));
                        ("Clip", vec![])
                    }
                    Activation::LeakyRelu { alpha } => {
                        ("LeakyRelu", vec![attr_float("alpha", alpha)])
                    }
                    Activation::Sigmoid => ("Sigmoid", vec![]),
                    Activation::Tanh => ("Tanh", vec![]),
                    Activation::HardSigmoid { alpha, beta } => (
                        "HardSigmoid",
                        vec![attr_float("alpha", alpha), attr_float("beta", beta)],
                    ),
                    Activation::Erf => ("Erf", vec![]),
                    Activation::Sqrt => ("Sqrt", vec![]),
                    // HardSwish is an opset-14 op: opset 13 writes it as its definition,
                    // x * HardSigmoid(x) with alpha 1/6 and beta 0.5.
                    Activation::HardSwish => {
                        let gate = format!("{}:gate", n.name);
                        nodes.push(node(
                            "HardSigmoid",
                            &format!("{}/gate", n.name),
                            inputs.clone(),
                            &gate,
                            vec![attr_float("alpha", 1.0 / 6.0), attr_float("beta", 0.5)],
                        ));
                        inputs.push(gate);
                        ("Mul", vec![])
                    }
                    // GELU is an opset-20 op.
                    Activation::Gelu => {
                        return Err(ExportError::Unsupported {
                            node: n.name.clone(),
                            kind,
                        })
                    }
                }
            }
            Op::BatchNorm(bn) => {
                need(4)?;
                flat[i] = input_flat;
                for (index, suffix) in ["scale", "bias", "mean", "var"].iter().enumerate() {
                    inputs.push(param(index, suffix));
                }
                (
                    "BatchNormalization",
                    vec![attr_float("epsilon", bn.epsilon)],
                )
            }
            Op::Lrn(l) => (
                "LRN",
                vec![
                    attr_int("size", l.size as i64),
                    attr_float("alpha", l.alpha),
                    attr_float("beta", l.beta),
                    attr_float("bias", l.bias),
                ],
            ),
            Op::Add => {
                flat[i] = input_flat;
                ("Add", vec![])
            }
            Op::Concat { axis } => {
                flat[i] = input_flat;
                ("Concat", vec![attr_int("axis", *axis)])
            }
            Op::Flatten => {
                flat[i] = true;
                ("Flatten", vec![attr_int("axis", 1)])
            }
            Op::Softmax { axis } => {
                flat[i] = input_flat;
                ("Softmax", vec![attr_int("axis", *axis)])
            }
            Op::Dropout { ratio } => {
                flat[i] = input_flat;
                inits.push(scalar(format!("{}.ratio", n.name), *ratio));
                inputs.push(format!("{}.ratio", n.name));
                ("Dropout", vec![])
            }
            // Element-wise arithmetic (squeeze-and-excitation's x * s): the ONNX op of the
            // same name broadcasts as the IR does; a constant operand is an initializer.
            Op::Binary(b) => {
                flat[i] = input_flat;
                if let Some(c) = &b.constant {
                    need(1)?;
                    let name = param(0, "constant");
                    match c.side {
                        joule_model::ops::Side::Left => inputs.insert(0, name),
                        joule_model::ops::Side::Right => inputs.push(name),
                    }
                }
                let op_type = match b.kind {
                    joule_model::ops::BinaryKind::Add => "Add",
                    joule_model::ops::BinaryKind::Sub => "Sub",
                    joule_model::ops::BinaryKind::Mul => "Mul",
                    joule_model::ops::BinaryKind::Div => "Div",
                    joule_model::ops::BinaryKind::Pow => "Pow",
                };
                (op_type, vec![])
            }
            _ => {
                return Err(ExportError::Unsupported {
                    node: n.name.clone(),
                    kind,
                })
            }
        };
        nodes.push(node(op_type, &n.name, inputs, &out, attrs));
    }
    let last = graph.len() - 1;
    let s = shapes[last].output;
    let out_dims = if flat[last] {
        vec![s.n, s.c * s.h * s.w]
    } else {
        vec![s.n, s.c, s.h, s.w]
    };
    // A batch the imported file fixed stays fixed.
    let fixed_batch = graph
        .input_spec
        .as_ref()
        .is_some_and(|s| !s.dynamic_batch());
    let mut output = value_info(
        &format!("{}:out", graph.nodes()[last].name),
        &out_dims,
        fixed_batch,
    );
    output.doc_string = "network output".into();
    let input = value_info(input_name, &graph.input_dims(input_shape), fixed_batch);
    Ok(ModelProto {
        ir_version: 8,
        producer_name: "joule".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            node: nodes,
            name: graph.name.clone(),
            initializer: inits,
            input: vec![input],
            output: vec![output],
            ..Default::default()
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        ..Default::default()
    })
}
