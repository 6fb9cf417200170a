//! QDQ export of a quantized network: the float export ([`crate::export_bytes`]) with
//! `QuantizeLinear` / `DequantizeLinear` pairs around the weights and the input activations
//! of the quantized CONV and FC layers, the form onnxruntime and TensorRT read as a
//! quantized model.
//!
//! * **Weights** whose codes fit a signed byte are stored as an int8 initializer with one
//!   step per output channel (`DequantizeLinear`, `axis = 0`, zero point 0); any other
//!   (power-of-two codes past 127) stay a float initializer holding `code x step` exactly.
//! * **Activations** of at most 8 bits go through `Clip` to the grid's range, then
//!   `QuantizeLinear` / `DequantizeLinear` in uint8 with the layer's scale and zero point
//!   (the clip makes a narrower width saturate at its own largest code, since uint8
//!   saturates at 255). Wider activations have no 8-bit carrier in opset 13, so the same
//!   arithmetic is written in float ops: `(Clip(Round(x / scale) + zp, 0, qmax) - zp) x
//!   scale`, `Round` rounding half to even as `QuantizeLinear` does.

use crate::export::{export_model, ExportError};
use crate::proto::{data_type, AttributeProto, NodeProto, TensorProto};
use joule_model::Graph;
use prost::Message;

/// `TensorProto.DataType` of the quantized carriers.
const UINT8: i32 = 2;
const INT8: i32 = 3;

/// A quantized layer's weights: `weight[i] = codes[i] x steps[channel of i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct QdqWeights {
    pub codes: Vec<i32>,
    /// One step per output channel.
    pub steps: Vec<f32>,
}

/// A quantized layer's input: `bits`-wide codes, `x' = (q - zero_point) x scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QdqInput {
    pub bits: u32,
    pub scale: f32,
    pub zero_point: f32,
}

/// What one CONV or FC node (by name) quantizes.
#[derive(Clone, Debug, PartialEq)]
pub struct QdqLayer {
    pub name: String,
    pub weights: Option<QdqWeights>,
    pub input: Option<QdqInput>,
}

/// Encodes `graph` with the QDQ pairs of `layers` as ONNX protobuf bytes.
pub fn export_qdq_bytes(graph: &Graph, layers: &[QdqLayer]) -> Result<Vec<u8>, ExportError> {
    let mut model = export_model(graph)?;
    let g = model.graph.as_mut().expect("export writes a graph");
    for layer in layers {
        let Some(at) = g
            .node
            .iter()
            .position(|n| n.name == layer.name && matches!(n.op_type.as_str(), "Conv" | "Gemm"))
        else {
            return Err(ExportError::Unsupported {
                node: layer.name.clone(),
                kind: "quantized layer (not a CONV or FC node of the export)",
            });
        };
        let mut before = Vec::new();
        if let Some(w) = &layer.weights {
            let weight_name = g.node[at].input[1].clone();
            let init = g
                .initializer
                .iter_mut()
                .find(|t| t.name == weight_name)
                .expect("the export names its weight initializer");
            if w.codes.iter().all(|c| (-127..=127).contains(c)) {
                let dims = init.dims.clone();
                let q = format!("{}.weight_quantized", layer.name);
                g.initializer.push(TensorProto {
                    name: q.clone(),
                    dims,
                    data_type: INT8,
                    raw_data: w.codes.iter().map(|&c| c as i8 as u8).collect(),
                    ..Default::default()
                });
                let (scale, zero) = (
                    format!("{}.weight_scale", layer.name),
                    format!("{}.weight_zero_point", layer.name),
                );
                g.initializer.push(floats(&scale, &w.steps));
                g.initializer.push(TensorProto {
                    name: zero.clone(),
                    dims: vec![w.steps.len() as i64],
                    data_type: INT8,
                    raw_data: vec![0; w.steps.len()],
                    ..Default::default()
                });
                g.initializer.retain(|t| t.name != weight_name);
                before.push(node(
                    "DequantizeLinear",
                    &format!("{}/weight_dequantize", layer.name),
                    vec![q, scale, zero],
                    &weight_name,
                    vec![attr_int("axis", 0)],
                ));
            } else {
                let per = w.codes.len() / w.steps.len().max(1);
                let values: Vec<f32> = w
                    .codes
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| c as f32 * w.steps[i / per.max(1)])
                    .collect();
                init.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            }
        }
        if let Some(a) = layer.input {
            let x = g.node[at].input[0].clone();
            let p = |s: &str| format!("{}.input_{s}", layer.name);
            let out = p("dequantized");
            let qmax = ((1u64 << a.bits) - 1) as f32;
            if a.bits <= 8 {
                let (lo, hi) = (
                    (0.0 - a.zero_point) * a.scale,
                    (qmax - a.zero_point) * a.scale,
                );
                g.initializer.push(floats(&p("min"), &[lo]));
                g.initializer.push(floats(&p("max"), &[hi]));
                g.initializer.push(floats(&p("scale"), &[a.scale]));
                g.initializer.push(TensorProto {
                    name: p("zero_point"),
                    data_type: UINT8,
                    raw_data: vec![a.zero_point as u8],
                    ..Default::default()
                });
                before.push(node(
                    "Clip",
                    &p("clip"),
                    vec![x, p("min"), p("max")],
                    &p("clipped"),
                    vec![],
                ));
                before.push(node(
                    "QuantizeLinear",
                    &p("quantize"),
                    vec![p("clipped"), p("scale"), p("zero_point")],
                    &p("quantized"),
                    vec![],
                ));
                before.push(node(
                    "DequantizeLinear",
                    &p("dequantize"),
                    vec![p("quantized"), p("scale"), p("zero_point")],
                    &out,
                    vec![],
                ));
            } else {
                for (name, v) in [
                    ("scale", a.scale),
                    ("zero_point", a.zero_point),
                    ("zero", 0.0),
                    ("qmax", qmax),
                ] {
                    g.initializer.push(floats(&p(name), &[v]));
                }
                let steps = [
                    ("Div", vec![x, p("scale")], "scaled"),
                    ("Round", vec![p("scaled")], "rounded"),
                    ("Add", vec![p("rounded"), p("zero_point")], "shifted"),
                    ("Clip", vec![p("shifted"), p("zero"), p("qmax")], "codes"),
                    ("Sub", vec![p("codes"), p("zero_point")], "centred"),
                    ("Mul", vec![p("centred"), p("scale")], "dequantized"),
                ];
                for (op, inputs, output) in steps {
                    before.push(node(op, &p(output), inputs, &p(output), vec![]));
                }
            }
            g.node[at].input[0] = out;
        }
        let tail = g.node.split_off(at);
        g.node.extend(before);
        g.node.extend(tail);
    }
    Ok(model.encode_to_vec())
}

fn floats(name: &str, values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        // A scalar for per-tensor parameters, 1-D for per-channel ones.
        dims: if values.len() == 1 && !name.ends_with(".weight_scale") {
            vec![]
        } else {
            vec![values.len() as i64]
        },
        data_type: data_type::FLOAT,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: crate::proto::attribute_type::INT,
        i,
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
