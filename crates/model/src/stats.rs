//! Per-layer and total statistics: weights, biases, MACs and activations, with the CONV/FC
//! split of the Sze et al. tutorial tables.
//!
//! The serialised form of [`NetworkStats`] is the documented JSON interface of
//! `joule stats --json` (see `docs/stats-json.md`): add fields, never rename or remove them.

use crate::ops::{LayerClass, Op};
use crate::{Graph, ModelError, Shape};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    pub name: String,
    pub kind: String,
    pub class: LayerClass,
    /// Output shape `[N, C, H, W]`.
    pub output_shape: [usize; 4],
    /// Filter weights of CONV/FC layers (biases not included).
    pub weights: u64,
    pub biases: u64,
    /// Every learned value: weights, biases and batch-norm scale and shift.
    pub parameters: u64,
    /// Multiply-accumulates for the whole batch.
    pub macs: u64,
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
    /// Sum of the output activations of every layer.
    pub activations: u64,
    pub conv: ClassTotals,
    pub fc: ClassTotals,
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
                (Op::FullyConnected(fc), Some(nest)) => {
                    (nest.weights(), if fc.bias { fc.outputs as u64 } else { 0 })
                }
                _ => (0, 0),
            };
            let parameters = match node.op {
                Op::BatchNorm(_) => 2 * shape.inputs[0].c as u64,
                _ => weights + biases,
            };
            let macs = shape.loop_nest.map_or(0, |n| n.macs());
            let stats = LayerStats {
                name: node.name.clone(),
                kind: node.op.kind().to_string(),
                class: node.op.class(),
                output_shape: dims(shape.output),
                weights,
                biases,
                parameters,
                macs,
                input_activations: shape.inputs.iter().map(Shape::elements).sum(),
                output_activations: shape.output.elements(),
            };
            total.weights += weights;
            total.biases += biases;
            total.parameters += parameters;
            total.macs += macs;
            total.activations += stats.output_activations;
            let class_total = match stats.class {
                LayerClass::Conv => Some(&mut total.conv),
                LayerClass::Fc => Some(&mut total.fc),
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
