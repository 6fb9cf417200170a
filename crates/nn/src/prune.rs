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
//!   Squeeze-and-excitation blocks are followed too: a mean over the spatial axes
//!   (ReduceMean or global pooling) keeps the channels, reshapes that keep axes 0 and 1 (or
//!   flatten to `[N, K]`) carry them, and an element-wise op of two activations ties its
//!   operands' channels as Add does (`x * s[N, C, 1, 1]`: the excitation layer that makes
//!   `s` loses the gated channels), while an operand broadcast over the channels keeps its
//!   one. A channel shuffle (reshape `[N, C, H, W] -> [N, g, C/g, H, W]`, transpose
//!   `(0, 2, 1, 3, 4)`, reshape back) passes only a cut that removes the same channels from
//!   every group (the shuffled tensor stays `g` equal groups); other cuts are refused.

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
    let plan = plan(graph, &shapes, node, filters)?;
    let mut out = graph.clone();
    for (&id, set) in &plan.cut {
        cut_outputs(&mut out, &shapes, id, set, plan.reshapes.get(&id).copied());
    }
    for (&id, columns) in &plan.in_cut {
        cut_inputs(&mut out, id, columns);
    }
    out.infer(Shape { n: 1, ..input })?;
    Network::new(out, 0)
}

/// Whether [`remove_filters`] can remove `filters` of `node` (`shapes` from
/// [`Graph::infer`]), without touching any weights: the layers whose channels a shuffle or
/// an uncuttable consumer pins are refused with the reason.
pub fn check_removal(
    graph: &Graph,
    shapes: &[NodeShapes],
    node: NodeId,
    filters: &[usize],
) -> Result<(), NnError> {
    plan(graph, shapes, node, filters).map(|_| ())
}

fn plan<'a>(
    graph: &'a Graph,
    shapes: &'a [NodeShapes],
    node: NodeId,
    filters: &[usize],
) -> Result<Plan<'a>, NnError> {
    let mut plan = Plan {
        graph,
        shapes,
        cut: BTreeMap::new(),
        in_cut: BTreeMap::new(),
        reshapes: BTreeMap::new(),
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
    Ok(plan)
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
    /// Reshapes whose target shrinks: the axis, and how many cut entries make one unit of
    /// it (1, or the group count of a shuffle's split).
    reshapes: BTreeMap<NodeId, (usize, usize)>,
}

/// How a reshape (or squeeze / unsqueeze) moves channels.
enum Carry {
    /// Axes 0 and 1 unchanged: channel `c` stays channel `c`.
    Channels,
    /// `[N, C, ...] -> [N, K]`: channel `c` becomes columns `c * block .. (c + 1) * block`.
    Flatten(usize),
    /// A shuffle's split `[N, C, H, W] -> [N, g, C/g, H, W]`, with `g`.
    Split(usize),
    Other,
}

fn carry(input: &[usize], output: &[usize]) -> Carry {
    if input.len() >= 2 && output.len() >= 2 && input[..2] == output[..2] {
        Carry::Channels
    } else if input.len() >= 2 && output.len() == 2 && input[0] == output[0] {
        Carry::Flatten(input[2..].iter().product())
    } else if input.len() == 4
        && output.len() == 5
        && input[0] == output[0]
        && output[1] * output[2] == input[1]
        && output[3..] == input[2..]
    {
        Carry::Split(output[1])
    } else {
        Carry::Other
    }
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
                Op::Binary(binary) => {
                    let dims = &self.shapes[consumer.0].input_dims;
                    let out = &self.shapes[consumer.0].output_dims;
                    let aligned = |d: &[usize]| d.len() == out.len() && d.len() >= 2;
                    if let Some(c) = &binary.constant {
                        // A constant of channel extent 1 (or none) applies to every channel.
                        let at = (c.dims.len() + 1).checked_sub(out.len());
                        if at.and_then(|a| c.dims.get(a)).is_some_and(|&d| d != 1) {
                            return Err(surgery(
                                self.graph,
                                consumer,
                                "a per-channel constant operand cannot lose channels",
                            ));
                        }
                    } else {
                        if !dims.iter().all(|d| aligned(d)) {
                            return Err(surgery(
                                self.graph,
                                consumer,
                                "element-wise operands of different ranks cannot lose channels",
                            ));
                        }
                        // The operands with the full channel extent lose the same channels
                        // (like Add); one broadcast over the channels keeps its single one.
                        for (k, other) in node.inputs.clone().into_iter().enumerate() {
                            if dims[k][1] == out[1] {
                                self.require(other, &new, consumer)?;
                            }
                        }
                    }
                    self.produce(consumer, new.clone())?;
                }
                Op::Reduce(reduce) => {
                    let dims = &self.shapes[consumer.0].input_dims[0];
                    let axes = reduce.axes_of(dims).unwrap_or_default();
                    if axes.contains(&0) || axes.contains(&1) || dims.rank() < 2 {
                        return Err(surgery(
                            self.graph,
                            consumer,
                            "a reduction over the channel axis cannot lose channels",
                        ));
                    }
                    self.produce(consumer, new.clone())?;
                }
                Op::Transpose(t) if t.perm.len() >= 2 && t.perm[..2] == [0, 1] => {
                    self.produce(consumer, new.clone())?;
                }
                Op::Reshape(_) | Op::Squeeze { .. } | Op::Unsqueeze { .. } => {
                    let shapes = &self.shapes[consumer.0];
                    match carry(&shapes.input_dims[0], &shapes.output_dims) {
                        Carry::Channels => {
                            self.reshapes.insert(consumer, (1, 1));
                            self.produce(consumer, new.clone())?;
                        }
                        Carry::Flatten(block) => {
                            self.reshapes.insert(consumer, (1, 1));
                            self.produce(
                                consumer,
                                new.iter()
                                    .flat_map(|c| c * block..(c + 1) * block)
                                    .collect(),
                            )?;
                        }
                        Carry::Split(groups) => self.shuffle(consumer, groups)?,
                        Carry::Other => {
                            return Err(surgery(
                                self.graph,
                                consumer,
                                "a reshape that moves the channel axis cannot lose channels",
                            ))
                        }
                    }
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

    /// `split` begins a channel shuffle in `groups` groups and its input lost the channels
    /// in `self.cut`: check that the cut is the same in every group, and carry it through the
    /// transpose and the merging reshape (group member `j` of group `i`, channel
    /// `i * (C / g) + j`, comes out as channel `j * g + i`).
    fn shuffle(&mut self, split: NodeId, groups: usize) -> Result<(), NnError> {
        let refuse = |detail: &str| Err(surgery(self.graph, split, detail));
        let source = match self.graph.node(split).inputs[0] {
            Value::Node(id) => id,
            Value::Input => return refuse("the network input's channels cannot be cut"),
        };
        let set = self.cut.get(&source).cloned().unwrap_or_default();
        let dims = &self.shapes[split.0].output_dims;
        let per = dims[2];
        let members: BTreeSet<usize> = set.iter().map(|c| c % per).collect();
        let whole: BTreeSet<usize> = (0..groups)
            .flat_map(|i| members.iter().map(move |j| i * per + j))
            .collect();
        if whole != set {
            return refuse(&format!(
                "a channel shuffle of {groups} groups passes only cuts that remove the same                  channels from every group (here {members:?} of each group of {per})"
            ));
        }
        // The shuffle proper: this reshape's one consumer swaps the group axes, whose one
        // consumer merges them back to [N, C, H, W].
        let transpose = match self.graph.consumers(split).as_slice() {
            [t] if matches!(&self.graph.node(*t).op,
                Op::Transpose(p) if p.perm == [0, 2, 1, 3, 4]) =>
            {
                *t
            }
            _ => return refuse("a channel split not followed by the shuffle's transpose"),
        };
        let merge = match self.graph.consumers(transpose).as_slice() {
            [m] if matches!(&self.graph.node(*m).op, Op::Reshape(_))
                && self.shapes[m.0].output_dims[..] == self.shapes[split.0].input_dims[0][..] =>
            {
                *m
            }
            _ => return refuse("a channel shuffle not merged back to the channels it split"),
        };
        self.cut.insert(split, set);
        self.reshapes.insert(split, (2, groups));
        self.reshapes.insert(merge, (1, 1));
        let shuffled = (0..groups)
            .flat_map(|i| members.iter().map(move |j| j * groups + i))
            .collect();
        self.produce(merge, shuffled)
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
            // Channel-keeping reshapes (the unflatten of an excitation's gate) and
            // spatial reductions pass the requirement to their input.
            Op::Reshape(_) | Op::Squeeze { .. } | Op::Unsqueeze { .. }
                if matches!(
                    carry(
                        &self.shapes[id.0].input_dims[0],
                        &self.shapes[id.0].output_dims
                    ),
                    Carry::Channels
                ) =>
            {
                self.require(node.inputs[0], set, at)
            }
            Op::Reduce(reduce)
                if self.shapes[id.0].input_dims[0].rank() >= 2
                    && reduce
                        .axes_of(&self.shapes[id.0].input_dims[0])
                        .is_ok_and(|a| !a.contains(&0) && !a.contains(&1)) =>
            {
                self.require(node.inputs[0], set, at)
            }
            Op::Binary(binary) if binary.constant.is_none() => {
                let dims = &self.shapes[id.0].input_dims;
                let out = &self.shapes[id.0].output_dims;
                if !dims.iter().all(|d| d.len() == out.len() && d.len() >= 2) {
                    return Err(surgery(
                        self.graph,
                        id,
                        "element-wise operands of different ranks cannot lose channels",
                    ));
                }
                for (k, input) in node.inputs.clone().into_iter().enumerate() {
                    if dims[k][1] == out[1] {
                        self.require(input, set, at)?;
                    }
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

fn cut_outputs(
    graph: &mut Graph,
    shapes: &[NodeShapes],
    id: NodeId,
    set: &BTreeSet<usize>,
    reshape: Option<(usize, usize)>,
) {
    let node = graph.node_mut(id);
    match &mut node.op {
        Op::Reshape(r) => {
            // A fixed target extent on the cut axis shrinks; copied and inferred ones follow
            // the input by themselves.
            if let Some((axis, unit)) = reshape {
                if let Some(joule_model::ops::Extent::Fixed(k)) = r.target.get_mut(axis) {
                    *k = shapes[id.0].output_dims[axis] - set.len() / unit;
                }
            }
        }
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
