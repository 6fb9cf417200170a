//! Pruning primitives.
//!
//! - Unstructured: [`magnitude_mask`] builds a weight mask; [`Network::set_mask`] installs it
//!   and training keeps masked weights at zero (gradients masked, weights re-zeroed after every
//!   optimiser step).
//! - Structural: [`remove_filters`] cuts output filters of a CONV (or outputs of an FC) and
//!   the matching input channels of every consumer, following the channels through
//!   channel-wise ops (activations, batch norm, pooling, dropout, LRN), depthwise CONVs,
//!   Concat (shifted by the concat offset), Flatten (whole `H x W` blocks of FC columns) and
//!   Add (every branch into the sum loses the same channels), producing a smaller dense graph.

use crate::{Network, NnError};
use joule_model::{Graph, NodeId, NodeShapes, Op, Shape, Tensor, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A mask that prunes the `fraction` of `weights` with the smallest magnitude (ties broken
/// by position, so the result is deterministic).
pub fn magnitude_mask(weights: &[f32], fraction: f64) -> Vec<f32> {
    let prune = ((weights.len() as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        weights[a]
            .abs()
            .total_cmp(&weights[b].abs())
            .then(a.cmp(&b))
    });
    let mut mask = vec![1.0; weights.len()];
    for &i in &order[..prune] {
        mask[i] = 0.0;
    }
    mask
}

/// Output channels (filters) of `node` whose weights and bias are all zero: the ones
/// [`remove_filters`] can cut without changing the network's function (before any batch norm).
pub fn zero_filters(graph: &Graph, node: NodeId) -> Vec<usize> {
    let n = graph.node(node);
    let Some(w) = n.params.first() else {
        return Vec::new();
    };
    let m = w.shape[0];
    let per = w.len() / m.max(1);
    (0..m)
        .filter(|&f| w.data[f * per..(f + 1) * per].iter().all(|v| *v == 0.0))
        .filter(|&f| n.params.get(1).is_none_or(|b| b.data[f] == 0.0))
        .collect()
}

/// Removes `filters` (output channels) of CONV/FC `node` and every channel that depends on
/// them, returning the smaller network. Masks do not carry over.
pub fn remove_filters(
    network: &Network,
    node: NodeId,
    filters: &[usize],
) -> Result<Network, NnError> {
    let graph = network.graph();
    let input = graph.resolve_input(None)?;
    let shapes = graph.infer(Shape { n: 1, ..input })?;
    let mut plan = Plan {
        graph,
        shapes: &shapes,
        cut: BTreeMap::new(),
        in_cut: BTreeMap::new(),
    };
    let seed_node = graph.node(node);
    if !matches!(seed_node.op, Op::Conv(_) | Op::FullyConnected(_)) {
        return Err(surgery(
            graph,
            node,
            "only CONV and FC layers have filters to remove",
        ));
    }
    let set: BTreeSet<usize> = filters.iter().copied().collect();
    if let Some(&f) = set.iter().find(|&&f| f >= shapes[node.0].output.c) {
        return Err(surgery(graph, node, &format!("has no filter {f}")));
    }
    if set.len() == shapes[node.0].output.c {
        return Err(surgery(graph, node, "cannot remove every filter"));
    }
    plan.produce(node, set)?;
    let mut out = graph.clone();
    for (&id, set) in &plan.cut {
        cut_outputs(&mut out, id, set);
    }
    for (&id, columns) in &plan.in_cut {
        cut_inputs(&mut out, id, columns);
    }
    out.infer(Shape { n: 1, ..input })?;
    Network::new(out, 0)
}

fn surgery(graph: &Graph, id: NodeId, detail: &str) -> NnError {
    NnError::Surgery {
        node: graph.node(id).name.clone(),
        detail: detail.to_string(),
    }
}

struct Plan<'a> {
    graph: &'a Graph,
    shapes: &'a [NodeShapes],
    /// Channels removed from each node's output.
    cut: BTreeMap<NodeId, BTreeSet<usize>>,
    /// Input channels (CONV) or columns (FC) removed from consumers.
    in_cut: BTreeMap<NodeId, BTreeSet<usize>>,
}

impl Plan<'_> {
    /// Channels `set` disappear from `id`'s output; follow them to the consumers.
    fn produce(&mut self, id: NodeId, set: BTreeSet<usize>) -> Result<(), NnError> {
        let known = self.cut.entry(id).or_default();
        let new: BTreeSet<usize> = set.difference(known).copied().collect();
        if new.is_empty() {
            return Ok(());
        }
        known.extend(new.iter().copied());
        if Some(id) == self.graph.output() {
            return Err(surgery(
                self.graph,
                id,
                "its channels are the network output",
            ));
        }
        for consumer in self.graph.consumers(id) {
            let node = self.graph.node(consumer);
            let position = node
                .inputs
                .iter()
                .position(|v| *v == Value::Node(id))
                .unwrap();
            let in_shape = self.shapes[consumer.0].inputs[position];
            match &node.op {
                Op::Conv(conv) if conv.groups == 1 => {
                    self.in_cut
                        .entry(consumer)
                        .or_default()
                        .extend(new.iter().copied());
                }
                Op::Conv(conv) if conv.groups == in_shape.c => {
                    let per = conv.filters / conv.groups;
                    let out: BTreeSet<usize> =
                        new.iter().flat_map(|c| c * per..(c + 1) * per).collect();
                    self.produce(consumer, out)?;
                }
                Op::Conv(_) => {
                    return Err(surgery(
                        self.graph,
                        consumer,
                        "grouped CONV (neither dense nor depthwise) cannot lose input channels",
                    ))
                }
                Op::FullyConnected(_) => {
                    let hw = in_shape.h * in_shape.w;
                    let columns = new.iter().flat_map(|c| c * hw..(c + 1) * hw);
                    self.in_cut.entry(consumer).or_default().extend(columns);
                }
                Op::Flatten => {
                    let hw = in_shape.h * in_shape.w;
                    self.produce(
                        consumer,
                        new.iter().flat_map(|c| c * hw..(c + 1) * hw).collect(),
                    )?;
                }
                Op::Concat { axis: 1 } => {
                    let offset: usize = self.shapes[consumer.0].inputs[..position]
                        .iter()
                        .map(|s| s.c)
                        .sum();
                    self.produce(consumer, new.iter().map(|c| c + offset).collect())?;
                }
                Op::Add => {
                    for other in node.inputs.clone() {
                        self.require(other, &new, consumer)?;
                    }
                    self.produce(consumer, new.clone())?;
                }
                Op::Activation(_)
                | Op::BatchNorm(_)
                | Op::Pool(_)
                | Op::GlobalPool { .. }
                | Op::Lrn(_)
                | Op::Dropout { .. } => {
                    self.produce(consumer, new.clone())?;
                }
                Op::Softmax { .. } => {
                    return Err(surgery(
                        self.graph,
                        consumer,
                        "softmax over channels cannot lose channels",
                    ))
                }
                other => {
                    return Err(surgery(
                        self.graph,
                        consumer,
                        &format!("channel surgery through {} is not supported", other.kind()),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The branch `value` into Add `at` must lose channels `set` too: find the layer that
    /// makes them and cut it.
    fn require(&mut self, value: Value, set: &BTreeSet<usize>, at: NodeId) -> Result<(), NnError> {
        let Value::Node(id) = value else {
            return Err(surgery(
                self.graph,
                at,
                "a branch of the sum is the network input, whose channels cannot be cut",
            ));
        };
        if self.cut.get(&id).is_some_and(|known| set.is_subset(known)) {
            return Ok(());
        }
        let node = self.graph.node(id);
        match &node.op {
            Op::Conv(conv)
                if conv.groups == 1
                    || conv.groups == self.shapes[id.0].inputs[0].c
                        && conv.filters == conv.groups =>
            {
                if conv.groups > 1 {
                    // Depthwise: its channels come from its input.
                    self.require(node.inputs[0], set, at)?;
                }
                self.produce(id, set.clone())
            }
            Op::FullyConnected(_) => self.produce(id, set.clone()),
            Op::Activation(_)
            | Op::BatchNorm(_)
            | Op::Pool(_)
            | Op::GlobalPool { .. }
            | Op::Lrn(_)
            | Op::Dropout { .. }
            | Op::Add => {
                for input in node.inputs.clone() {
                    self.require(input, set, at)?;
                }
                Ok(())
            }
            Op::Concat { axis: 1 } => {
                let mut offset = 0;
                for (input, shape) in node
                    .inputs
                    .clone()
                    .into_iter()
                    .zip(self.shapes[id.0].inputs.clone())
                {
                    let part: BTreeSet<usize> = set
                        .iter()
                        .filter(|&&c| c >= offset && c < offset + shape.c)
                        .map(|c| c - offset)
                        .collect();
                    if !part.is_empty() {
                        self.require(input, &part, at)?;
                    }
                    offset += shape.c;
                }
                Ok(())
            }
            _ => Err(surgery(
                self.graph,
                id,
                "feeds a sum whose channels are being cut, and cannot lose channels itself",
            )),
        }
    }
}

fn keep(len: usize, drop: &BTreeSet<usize>) -> Vec<usize> {
    (0..len).filter(|i| !drop.contains(i)).collect()
}

/// Keeps rows `rows` of a tensor whose first dimension is the cut one.
fn select_rows(t: &Tensor, rows: &[usize]) -> Tensor {
    let per = t.len() / t.shape[0].max(1);
    let mut data = Vec::with_capacity(rows.len() * per);
    for &r in rows {
        data.extend_from_slice(&t.data[r * per..(r + 1) * per]);
    }
    let mut shape = t.shape.clone();
    shape[0] = rows.len();
    Tensor { shape, data }
}

fn cut_outputs(graph: &mut Graph, id: NodeId, set: &BTreeSet<usize>) {
    let node = graph.node_mut(id);
    match &mut node.op {
        Op::Conv(conv) => {
            let rows = keep(conv.filters, set);
            if conv.groups > 1 {
                // Depthwise: groups follow the channels.
                conv.groups -= set.len() / (conv.filters / conv.groups);
            }
            conv.filters = rows.len();
            node.params = node.params.iter().map(|t| select_rows(t, &rows)).collect();
        }
        Op::FullyConnected(fc) => {
            let rows = keep(fc.outputs, set);
            fc.outputs = rows.len();
            node.params = node.params.iter().map(|t| select_rows(t, &rows)).collect();
        }
        Op::BatchNorm(_) => {
            let rows = keep(node.params[0].len(), set);
            node.params = node.params.iter().map(|t| select_rows(t, &rows)).collect();
        }
        _ => {}
    }
}

fn cut_inputs(graph: &mut Graph, id: NodeId, set: &BTreeSet<usize>) {
    let node = graph.node_mut(id);
    let w = &node.params[0];
    // CONV filter (M, C, R, S): cut axis 1 in blocks of R*S; FC weight (M, K): columns.
    let (m, c) = (w.shape[0], w.shape[1]);
    let block = w.len() / (m * c);
    let kept = keep(c, set);
    let mut data = Vec::with_capacity(m * kept.len() * block);
    for f in 0..m {
        for &k in &kept {
            let at = (f * c + k) * block;
            data.extend_from_slice(&w.data[at..at + block]);
        }
    }
    let mut shape = w.shape.clone();
    shape[1] = kept.len();
    node.params[0] = Tensor { shape, data };
}
