//! Per-layer and total statistics: weights, biases, MACs and activations, with the CONV/FC
//! split of the Sze et al. tutorial tables.
//!
//! The serialised form of [`NetworkStats`] is the documented JSON interface of
//! `joule stats --json` (see `docs/stats-json.md`): add fields, never rename or remove them.

use crate::ops::{LayerClass, Op};
use crate::{Dims, Graph, ModelError, Shape};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    pub name: String,
    pub kind: String,
    pub class: LayerClass,
    /// Output shape `[N, C, H, W]` (the NCHW view of other ranks, see `output_dims`).
    pub output_shape: [usize; 4],
    /// Output dimensions at the tensor's own rank (`[N, 197, 768]` for ViT's tokens).
    pub output_dims: Vec<usize>,
    /// Filter weights of CONV/FC layers (biases not included).
    pub weights: u64,
    pub biases: u64,
    /// Every learned value: weights, biases and batch-norm scale and shift.
    pub parameters: u64,
    /// Multiply-accumulates for the whole batch.
    pub macs: u64,
    /// Element operations (not MACs) of element-wise and normalisation ops, whole batch:
    /// one per element of the larger of the output and the largest input (activations,
    /// arithmetic, batch/layer norm, softmax, LRN, reductions). 0 for CONV/FC/MatMul, pooling
    /// and layout ops.
    pub element_ops: u64,
    /// Elements read from all inputs, whole batch.
    pub input_activations: u64,
    /// Elements written, whole batch.
    pub output_activations: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassTotals {
    pub layers: u64,
    pub weights: u64,
    pub biases: u64,
    pub macs: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub weights: u64,
    pub biases: u64,
    pub parameters: u64,
    pub macs: u64,
    /// Sum of [`LayerStats::element_ops`].
    pub element_ops: u64,
    /// Sum of the output activations of every layer.
    pub activations: u64,
    pub conv: ClassTotals,
    /// FC and Linear layers.
    pub fc: ClassTotals,
    /// Products of two activations (attention); no weights.
    pub matmul: ClassTotals,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkStats {
    pub model: String,
    pub input_shape: [usize; 4],
    pub layers: Vec<LayerStats>,
    pub total: Totals,
}

fn dims(s: Shape) -> [usize; 4] {
    [s.n, s.c, s.h, s.w]
}

impl NetworkStats {
    /// Computes the statistics of `graph` for `input` (or the graph's own input shape).
    pub fn of(graph: &Graph, input: Option<Shape>) -> Result<NetworkStats, ModelError> {
        let input = graph.resolve_input(input)?;
        let shapes = graph.infer(input)?;
        let mut layers = Vec::with_capacity(graph.len());
        let mut total = Totals::default();
        for (node, shape) in graph.nodes().iter().zip(&shapes) {
            let (weights, biases) = match (&node.op, &shape.loop_nest) {
                (Op::Conv(conv), Some(nest)) => (
                    nest.weights(),
                    if conv.bias { conv.filters as u64 } else { 0 },
                ),
                (Op::FullyConnected(fc) | Op::Linear(fc), Some(nest)) => {
                    (nest.weights(), if fc.bias { fc.outputs as u64 } else { 0 })
                }
                _ => (0, 0),
            };
            let parameters = match node.op {
                Op::BatchNorm(_) => 2 * shape.inputs[0].c as u64,
                // Layer norm's scale and shift, a learned operand (ViT's position embedding,
                // ConvNeXt's layer scale), a learned token.
                Op::LayerNorm(_) | Op::Binary(_) | Op::Constant { .. } => node
                    .op
                    .param_dims(&shape.input_dims)
                    .iter()
                    .map(|d| d.iter().product::<usize>() as u64)
                    .sum(),
                _ => weights + biases,
            };
            let macs = shape.loop_nest.map_or(0, |n| n.macs());
            let element_ops = if node.op.is_elementwise() {
                shape
                    .input_dims
                    .iter()
                    .map(Dims::elements)
                    .chain([shape.output_dims.elements()])
                    .max()
                    .unwrap_or(0)
            } else {
                0
            };
            let stats = LayerStats {
                name: node.name.clone(),
                kind: node.op.kind().to_string(),
                class: node.op.class(),
                output_shape: dims(shape.output),
                output_dims: shape.output_dims.to_vec(),
                weights,
                biases,
                parameters,
                macs,
                element_ops,
                input_activations: shape.inputs.iter().map(Shape::elements).sum(),
                output_activations: shape.output.elements(),
            };
            total.weights += weights;
            total.biases += biases;
            total.parameters += parameters;
            total.macs += macs;
            total.element_ops += element_ops;
            total.activations += stats.output_activations;
            let class_total = match stats.class {
                LayerClass::Conv => Some(&mut total.conv),
                LayerClass::Fc => Some(&mut total.fc),
                LayerClass::MatMul => Some(&mut total.matmul),
                LayerClass::Other => None,
            };
            if let Some(t) = class_total {
                t.layers += 1;
                t.weights += weights;
                t.biases += biases;
                t.macs += macs;
            }
            layers.push(stats);
        }
        Ok(NetworkStats {
            model: graph.name.clone(),
            input_shape: dims(input),
            layers,
            total,
        })
    }

    pub fn layer(&self, name: &str) -> Option<&LayerStats> {
        self.layers.iter().find(|l| l.name == name)
    }
}
