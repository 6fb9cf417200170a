//! Where elimination acts in a graph: the layer whose neurons go, the ops after it, and the
//! next layer whose weights absorb them; collecting `X` and writing the simplified graph.
//!
//! A fully connected layer is eliminable when its output reaches exactly one fully connected
//! layer through single-consumer, per-neuron ops (activations, dropout, flatten): dropping
//! neuron `j` drops row `j` of `X`, row `j` (and bias `j`) of the layer's weights and column
//! `j` of the next layer's.
//!
//! A CONV layer (one group) is the same idea over spatial positions: its neurons are output
//! channels, `X` has one row per channel and one column per (sample, position) after the
//! per-channel ops (activations, dropout, pooling, flatten), and the next layer (CONV with one
//! group, or fully connected after flatten) is seen through its *channel view*: a matrix with
//! one column per input channel and one row per (output, tap), where a tap is a kernel
//! position (CONV) or a spatial position of the flattened input (FC). Least squares on that
//! view reproduces every tap's contribution at every position, which reproduces the next
//! layer's input exactly when the dropped channels are combinations of the kept ones.
//!
//! A batch norm between the layer and the next one is per-neuron too (inference mode: one
//! scale and shift per channel), so `X` is read after it and dropping neuron `j` also drops
//! entry `j` of its four vectors; this is what makes the head of a MobileNet eliminable.

use super::EliminateError;
use faer::Mat;
use joule_model::{Graph, NodeId, Op, Shape, Tensor};
use joule_nn::{Dataset, FeatureMap, Network};

/// An eliminable layer and its surroundings in a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub layer: NodeId,
    pub name: String,
    /// The node whose output is `X` (the layer itself or its last successor before `next`).
    pub activation: NodeId,
    /// Batch norms between the layer and `next`: their per-channel vectors lose the dropped
    /// neurons' entries too.
    pub norms: Vec<NodeId>,
    /// The layer that reads the neurons.
    pub next: NodeId,
    pub next_name: String,
    /// Neurons (output features or channels) of the layer.
    pub neurons: usize,
    /// Spatial positions per neuron in `X` (1 for a fully connected layer).
    pub positions: usize,
    /// Taps of the next layer per (output, neuron): kernel positions for CONV, flattened
    /// spatial positions for FC.
    pub taps: usize,
}

/// Finds `name` in `graph` and checks its structure allows simplifying it (weights are
/// checked by [`trained`]).
pub fn site(graph: &Graph, name: &str) -> Result<Site, EliminateError> {
    let layer = graph
        .find(name)
        .ok_or_else(|| EliminateError::UnknownLayer {
            layer: name.to_string(),
            known: eliminable_names(graph).join(", "),
        })?;
    let not = |reason: String| EliminateError::NotEliminable {
        layer: name.to_string(),
        reason,
    };
    let (neurons, conv) = match &graph.node(layer).op {
        Op::FullyConnected(fc) => (fc.outputs, false),
        Op::Conv(c) if c.groups <= 1 => (c.filters, true),
        Op::Conv(_) => return Err(not("is a grouped CONV layer".into())),
        other => {
            return Err(not(format!(
                "is a {} layer, not fully connected or CONV",
                other.kind()
            )))
        }
    };
    let mut current = layer;
    let mut norms = Vec::new();
    loop {
        let consumers = graph.consumers(current);
        let [consumer] = consumers.as_slice() else {
            return Err(not(if consumers.is_empty() {
                "is the output layer: no next layer can absorb its neurons".into()
            } else {
                format!(
                    "{} feeds {} layers; elimination needs exactly one reader",
                    graph.node(current).name,
                    consumers.len()
                )
            }));
        };
        let node = graph.node(*consumer);
        if node.inputs.len() != 1 {
            return Err(not(format!("{} has several inputs", node.name)));
        }
        let next = match &node.op {
            Op::Activation(_) | Op::Dropout { .. } | Op::Flatten => None,
            // One entry per neuron (not after a CONV layer's flatten, where it has one per
            // channel and position).
            Op::BatchNorm(_) if node.params.first().map(Tensor::len) == Some(neurons) => {
                norms.push(*consumer);
                None
            }
            Op::Pool(_) | Op::GlobalPool { .. } if conv => None,
            Op::FullyConnected(_) => Some(None),
            Op::Conv(c) if conv && c.groups <= 1 => Some(Some(c.r * c.s)),
            other => {
                return Err(not(format!(
                    "its neurons reach {} ({}), not a fully connected{} layer through \
                     per-neuron ops",
                    node.name,
                    other.kind(),
                    if conv { " or CONV" } else { "" }
                )))
            }
        };
        let Some(kernel_taps) = next else {
            current = *consumer;
            continue;
        };
        let positions = if conv {
            let shapes = graph
                .resolve_input(None)
                .and_then(|input| graph.infer(Shape { n: 1, ..input }))
                .map_err(|e| not(format!("has no inferable shape: {e}")))?;
            shapes[current.0].output.per_sample() / neurons.max(1)
        } else {
            1
        };
        return Ok(Site {
            layer,
            name: name.to_string(),
            activation: current,
            norms,
            next: *consumer,
            next_name: node.name.clone(),
            neurons,
            positions,
            taps: kernel_taps.unwrap_or(positions),
        });
    }
}

/// Checks that the layer and the next one of `site` carry trained weights.
pub fn trained(graph: &Graph, site: &Site) -> Result<(), EliminateError> {
    for id in [site.layer, site.next] {
        if graph.node(id).params.is_empty() {
            return Err(EliminateError::NotEliminable {
                layer: site.name.clone(),
                reason: format!("has no trained weights ({} has none)", graph.node(id).name),
            });
        }
    }
    Ok(())
}

/// Names of the layers of `graph` that [`site`] accepts.
pub fn eliminable_names(graph: &Graph) -> Vec<String> {
    graph
        .nodes()
        .iter()
        .filter(|n| site(graph, &n.name).is_ok())
        .map(|n| n.name.clone())
        .collect()
}

/// `X`: the activations after the layer, one row per neuron, one column per sample of
/// `data` (inference mode, in batches of `batch`).
pub fn activations(
    network: &Network,
    site: &Site,
    data: &Dataset,
    batch: usize,
) -> Result<Mat<f64>, EliminateError> {
    let samples = data.len();
    let (n, positions) = (site.neurons, site.positions);
    let mut x = Mat::<f64>::zeros(n, samples * positions);
    let indices: Vec<usize> = (0..samples).collect();
    let mut start = 0;
    for chunk in indices.chunks(batch.max(1)) {
        let (images, _) = data.batch(chunk);
        let shape = Shape {
            n: chunk.len(),
            ..data.sample
        };
        let input = FeatureMap::new(shape, images).map_err(|e| network_err(site, e))?;
        let trace = network.trace(&input).map_err(|e| network_err(site, e))?;
        let out = trace.output(site.activation);
        if out.shape.per_sample() != n * positions {
            return Err(EliminateError::Activations {
                layer: site.name.clone(),
                message: format!(
                    "{} values per sample after the layer, expected {n} x {positions}",
                    out.shape.per_sample(),
                ),
            });
        }
        // NCHW (or its flattening): neuron j's positions are contiguous within a sample.
        for (k, sample) in out.data.chunks(n * positions).enumerate() {
            for (j, values) in sample.chunks(positions).enumerate() {
                for (t, &v) in values.iter().enumerate() {
                    x[(j, (start + k) * positions + t)] = v as f64;
                }
            }
        }
        start += chunk.len();
    }
    Ok(x)
}

fn network_err(site: &Site, e: joule_nn::NnError) -> EliminateError {
    EliminateError::Network {
        layer: site.name.clone(),
        message: e.to_string(),
    }
}

/// The next layer's weights in its channel view: one column per neuron of the layer, one row
/// per (output, tap) (`m * taps x n`; for fully connected layers simply `W`, `m x n`).
pub fn next_weights(graph: &Graph, site: &Site) -> Mat<f64> {
    let w = &graph.node(site.next).params[0];
    let (m, n, taps) = (w.shape[0], site.neurons, site.taps);
    Mat::from_fn(m * taps, n, |row, c| {
        let (o, t) = (row / taps, row % taps);
        w.data[o * n * taps + c * taps + t] as f64
    })
}

/// The graph with only the neurons `kept` of the layer and `weights` (the next layer's
/// channel view, `m * taps x p`, column `j` for neuron `kept[j]`); `bias_shift` (`m`, or
/// empty) is added to the next layer's bias.
pub fn simplify(
    graph: &Graph,
    site: &Site,
    kept: &[usize],
    weights: &Mat<f64>,
    bias_shift: &[f64],
) -> Graph {
    let mut g = graph.clone();
    let p = kept.len();
    let node = g.node_mut(site.layer);
    match &mut node.op {
        Op::FullyConnected(fc) => fc.outputs = p,
        Op::Conv(conv) => conv.filters = p,
        _ => {}
    }
    let w = &node.params[0];
    let per_row = w.len() / site.neurons.max(1);
    let mut rows = Vec::with_capacity(p * per_row);
    for &j in kept {
        rows.extend_from_slice(&w.data[j * per_row..(j + 1) * per_row]);
    }
    let mut shape = w.shape.clone();
    shape[0] = p;
    node.params[0] = tensor(shape, rows);
    if let Some(bias) = node.params.get_mut(1) {
        *bias = tensor(vec![p], kept.iter().map(|&j| bias.data[j]).collect());
    }
    for &id in &site.norms {
        for v in &mut g.node_mut(id).params {
            *v = tensor(vec![p], kept.iter().map(|&j| v.data[j]).collect());
        }
    }
    let next = g.node_mut(site.next);
    let taps = site.taps;
    let m = weights.nrows() / taps;
    let mut data = vec![0.0f32; m * p * taps];
    for o in 0..m {
        for s in 0..p {
            for t in 0..taps {
                data[o * p * taps + s * taps + t] = weights[(o * taps + t, s)] as f32;
            }
        }
    }
    let mut shape = next.params[0].shape.clone();
    if shape.len() == 2 {
        shape[1] = p * taps;
    } else {
        shape[1] = p;
    }
    next.params[0] = tensor(shape, data);
    if let Some(bias) = next.params.get_mut(1) {
        for (b, shift) in bias.data.iter_mut().zip(bias_shift) {
            *b += *shift as f32;
        }
    }
    g
}
fn tensor(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    Tensor::new(shape, data).expect("shape and data built together")
}

/// Learned values of the whole graph (weights and biases of every node).
pub fn parameters(graph: &Graph) -> usize {
    graph
        .nodes()
        .iter()
        .flat_map(|n| n.params.iter())
        .map(Tensor::len)
        .sum()
}
