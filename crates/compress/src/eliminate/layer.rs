//! Where elimination acts in a graph: the layer whose neurons go, the element-wise ops after
//! it, and the next layer whose weights absorb them; collecting `X` and writing the
//! simplified graph.
//!
//! A layer is eliminable when it is fully connected and its output reaches exactly one fully
//! connected layer through single-consumer, per-neuron ops only (activations, dropout,
//! flatten): then dropping neuron `j` drops row `j` of `X`, row `j` (and bias `j`) of the
//! layer's weights and column `j` of the next layer's.

use super::EliminateError;
use faer::Mat;
use joule_model::{Graph, NodeId, Op, Shape, Tensor};
use joule_nn::{Dataset, FeatureMap, Network};

/// An eliminable layer and its surroundings in a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub layer: NodeId,
    pub name: String,
    /// The node whose output is `X` (the layer itself or its last element-wise successor).
    pub activation: NodeId,
    /// The layer that reads the neurons.
    pub next: NodeId,
    pub next_name: String,
    /// Neurons (output features) of the layer.
    pub neurons: usize,
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
    let neurons = match &graph.node(layer).op {
        Op::FullyConnected(fc) => fc.outputs,
        Op::Conv(_) => {
            return Err(not(
                "CONV output channels are not supported yet (fully connected layers only)".into(),
            ))
        }
        other => {
            return Err(not(format!(
                "is a {} layer, not fully connected or CONV",
                other.kind()
            )))
        }
    };
    let mut current = layer;
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
        match &node.op {
            Op::Activation(_) | Op::Dropout { .. } | Op::Flatten => current = *consumer,
            Op::FullyConnected(_) => {
                return Ok(Site {
                    layer,
                    name: name.to_string(),
                    activation: current,
                    next: *consumer,
                    next_name: node.name.clone(),
                    neurons,
                });
            }
            other => {
                return Err(not(format!(
                    "its neurons reach {} ({}), not a fully connected layer through \
                     element-wise ops",
                    node.name,
                    other.kind()
                )))
            }
        }
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
    let mut x = Mat::<f64>::zeros(site.neurons, samples);
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
        if out.shape.per_sample() != site.neurons {
            return Err(EliminateError::Activations {
                layer: site.name.clone(),
                message: format!(
                    "{} values per sample after the layer, expected {}",
                    out.shape.per_sample(),
                    site.neurons
                ),
            });
        }
        for (k, row) in out.data.chunks(site.neurons).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                x[(j, start + k)] = v as f64;
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

/// The next layer's weights as a matrix (`m x n`).
pub fn next_weights(graph: &Graph, site: &Site) -> Mat<f64> {
    let w = &graph.node(site.next).params[0];
    let (m, n) = (w.shape[0], w.shape[1]);
    Mat::from_fn(m, n, |i, j| w.data[i * n + j] as f64)
}

/// The graph with only the neurons `kept` of the layer, and `weights` (`m x p`, column `j`
/// for neuron `kept[j]`) as the next layer's weights; `bias_shift` (`m`, or empty) is added
/// to the next layer's bias.
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
    if let Op::FullyConnected(fc) = &mut node.op {
        fc.outputs = p;
    }
    let w = &node.params[0];
    let inputs = w.shape[1];
    let mut rows = Vec::with_capacity(p * inputs);
    for &j in kept {
        rows.extend_from_slice(&w.data[j * inputs..(j + 1) * inputs]);
    }
    node.params[0] = tensor(vec![p, inputs], rows);
    if let Some(bias) = node.params.get_mut(1) {
        *bias = tensor(vec![p], kept.iter().map(|&j| bias.data[j]).collect());
    }
    let next = g.node_mut(site.next);
    let m = weights.nrows();
    let data = (0..m)
        .flat_map(|i| (0..p).map(move |j| weights[(i, j)] as f32))
        .collect();
    next.params[0] = tensor(vec![m, p], data);
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
