//! The channel grid a table is built for, and every layer variant that the grid can produce.
//!
//! NetAdapt only proposes filter counts on the grid, so a table that holds every variant
//! answers every network the search can reach: each prunable layer's output counts times
//! the counts its producer can give it as input channels.

use super::LayerKey;
use crate::CompressError;
use joule_model::{Graph, NodeId, Op, Shape, Value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Filter counts each prunable layer may take, by layer name (ascending).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelGrid {
    pub layers: BTreeMap<String, Vec<usize>>,
}

/// The CONV (dense) and FC layers whose filters can be removed: every one but the layer
/// that makes the logits (the last node, or the input of a final softmax) and those whose
/// single filters filter surgery refuses to remove (a channel shuffle downstream takes only
/// whole-group cuts; an op that cannot lose channels reads them).
pub fn prunable_layers(graph: &Graph) -> Vec<NodeId> {
    let shapes = graph
        .resolve_input(None)
        .and_then(|input| graph.infer(Shape { n: 1, ..input }))
        .ok();
    let mut logits = graph.output();
    if let Some(last) = logits {
        let node = graph.node(last);
        if let (Op::Softmax { .. }, [Value::Node(id)]) = (&node.op, node.inputs.as_slice()) {
            logits = Some(*id);
        }
    }
    graph
        .nodes()
        .iter()
        .enumerate()
        .filter(|(i, n)| {
            Some(NodeId(*i)) != logits
                && match &n.op {
                    Op::Conv(c) => c.groups == 1,
                    Op::FullyConnected(_) => true,
                    _ => false,
                }
                && shapes.as_ref().is_none_or(|shapes| {
                    joule_nn::prune::check_removal(graph, shapes, NodeId(*i), &[0]).is_ok()
                })
        })
        .map(|(i, _)| NodeId(i))
        .collect()
}

/// Number of filters (CONV) or outputs (FC) of a node, if it has any.
pub fn filters(op: &Op) -> Option<usize> {
    match op {
        Op::Conv(c) => Some(c.filters),
        Op::FullyConnected(f) => Some(f.outputs),
        _ => None,
    }
}

impl ChannelGrid {
    /// `levels` evenly spaced counts per prunable layer: `ceil(m * k / levels)`, k = 1..=levels.
    pub fn even(graph: &Graph, levels: usize) -> Result<ChannelGrid, CompressError> {
        if levels == 0 {
            return Err(CompressError::config("levels", "must be at least 1"));
        }
        let mut layers = BTreeMap::new();
        for id in prunable_layers(graph) {
            let node = graph.node(id);
            let m = filters(&node.op).unwrap_or(1);
            let counts: BTreeSet<usize> = (1..=levels)
                .map(|k| (m * k).div_ceil(levels).max(1))
                .collect();
            layers.insert(node.name.clone(), counts.into_iter().collect());
        }
        Ok(ChannelGrid { layers })
    }

    /// The grid counts of `layer` below `current`, largest first.
    pub fn below(&self, layer: &str, current: usize) -> Vec<usize> {
        self.layers
            .get(layer)
            .map(|v| v.iter().rev().copied().filter(|&c| c < current).collect())
            .unwrap_or_default()
    }
}

/// One layer variant to measure: the op (with its filter count set), the ops the engine
/// fuses into it (batch norm, activation) and its input shapes.
#[derive(Clone, Debug)]
pub struct Variant {
    pub key: LayerKey,
    pub op: Op,
    pub fused: Vec<Op>,
    pub inputs: Vec<Shape>,
}

/// Every distinct layer variant the grid can produce for `graph` at batch `batch`.
pub fn variants(
    graph: &Graph,
    grid: &ChannelGrid,
    batch: usize,
) -> Result<Vec<Variant>, CompressError> {
    Ok(variant_steps(graph, grid, batch)?.0)
}

/// [`variants`], and for every step of `graph` in graph order (every node not fused into
/// another) the indices of its variants: a streamed table ([`super::Context::Streamed`])
/// runs them in the network's order. A variant two steps share is listed under both.
pub fn variant_steps(
    graph: &Graph,
    grid: &ChannelGrid,
    batch: usize,
) -> Result<(Vec<Variant>, Vec<Vec<usize>>), CompressError> {
    let input = graph.resolve_input(None)?;
    let input = Shape { n: batch, ..input };
    let shapes = graph.infer(input)?;
    let nodes = graph.nodes();
    let (followers, is_fused) = super::fusion(graph);
    // Possible output channel counts of every node.
    let mut choices: Vec<BTreeSet<usize>> = Vec::with_capacity(graph.len());
    let mut found: BTreeMap<LayerKey, Variant> = BTreeMap::new();
    let mut step_keys: Vec<Vec<LayerKey>> = Vec::new();
    let value_choices = |v: &Value, choices: &[BTreeSet<usize>]| match v {
        Value::Input => BTreeSet::from([input.c]),
        Value::Node(id) => choices[id.0].clone(),
    };
    for (i, node) in graph.nodes().iter().enumerate() {
        let base = &shapes[i];
        let mut out = BTreeSet::new();
        let first = value_choices(&node.inputs[0], &choices);
        let combos: Vec<Vec<usize>> = match &node.op {
            Op::Add => first.iter().map(|&c| vec![c; node.inputs.len()]).collect(),
            Op::Concat { axis: 1 } => {
                let mut combos = vec![Vec::new()];
                for v in &node.inputs {
                    let set = value_choices(v, &choices);
                    combos = combos
                        .into_iter()
                        .flat_map(|p| set.iter().map(move |&c| [p.clone(), vec![c]].concat()))
                        .collect();
                    if combos.len() > 4096 {
                        return Err(CompressError::config(
                            "levels",
                            format!(
                                "layer {:?}: too many concat variants; use fewer levels",
                                node.name
                            ),
                        ));
                    }
                }
                combos
            }
            // A two-operand element-wise op (MobileNet-V3's squeeze-excitation scale, x * s):
            // an operand with the first one's channels follows them; one that broadcasts
            // over channels keeps its own count.
            Op::Binary(b) if b.constant.is_none() => first
                .iter()
                .map(|&c| {
                    base.inputs
                        .iter()
                        .map(|s| if s.c == base.inputs[0].c { c } else { s.c })
                        .collect()
                })
                .collect(),
            _ => first.iter().map(|&c| vec![c]).collect(),
        };
        let own: Option<&Vec<usize>> = grid.layers.get(&node.name);
        // A fused node is timed inside its CONV/FC's step; it only passes channels on.
        let fused: Vec<Op> = followers[i].iter().map(|&j| nodes[j].op.clone()).collect();
        let fused_refs: Vec<&Op> = fused.iter().collect();
        let mut keys = Vec::new();
        for combo in combos {
            let inputs: Vec<Shape> = combo
                .iter()
                .zip(&base.inputs)
                .map(|(&c, s)| Shape { c, ..*s })
                .collect();
            let ops: Vec<Op> = match (&node.op, own) {
                (Op::Conv(conv), Some(counts)) => counts
                    .iter()
                    .map(|&m| {
                        Op::Conv(joule_model::ops::Conv {
                            filters: m,
                            ..conv.clone()
                        })
                    })
                    .collect(),
                (Op::FullyConnected(fc), Some(counts)) => counts
                    .iter()
                    .map(|&m| {
                        Op::FullyConnected(joule_model::ops::FullyConnected {
                            outputs: m,
                            ..fc.clone()
                        })
                    })
                    .collect(),
                (Op::Conv(conv), None) if conv.groups > 1 && conv.groups == base.inputs[0].c => {
                    let per = conv.filters / conv.groups;
                    vec![Op::Conv(joule_model::ops::Conv {
                        groups: inputs[0].c,
                        filters: inputs[0].c * per,
                        ..conv.clone()
                    })]
                }
                (op, _) => vec![op.clone()],
            };
            for op in ops {
                let output = op
                    .output_shape(&inputs)
                    .map_err(|detail| CompressError::Config {
                        field: format!("layer {:?}", node.name),
                        message: detail,
                    })?;
                out.insert(output.c);
                if is_fused[i] {
                    continue;
                }
                let key = LayerKey::step(&op, &fused_refs, &inputs, output);
                if !keys.contains(&key) {
                    keys.push(key.clone());
                }
                found.entry(key.clone()).or_insert(Variant {
                    key,
                    op,
                    fused: fused.clone(),
                    inputs: inputs.clone(),
                });
            }
        }
        if !is_fused[i] {
            step_keys.push(keys);
        }
        choices.push(out);
    }
    let index: BTreeMap<&LayerKey, usize> = found.keys().enumerate().map(|(i, k)| (k, i)).collect();
    let steps = step_keys
        .iter()
        .map(|keys| keys.iter().map(|k| index[k]).collect())
        .collect();
    Ok((found.into_values().collect(), steps))
}
