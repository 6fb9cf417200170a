//! What every pruning step is measured by: validation accuracy (what judges it), test
//! accuracy (the record), non-zero weights, non-skipped MACs and estimated energy.
//!
//! Densities are measured, not assumed: a calibration batch of real images runs through the
//! network ([`joule_nn::Network::trace`]) and the fraction of non-zero values of each CONV/FC
//! layer's ifmap becomes the workload's `density.ifmap`; `density.weight` comes from the
//! weights themselves ([`joule_energy::workload::from_graph`]). Non-skipped MACs are counted
//! exactly on the same batch: a MAC is skipped when its weight or its ifmap value (padding
//! included) is zero.

use crate::CompressError;
use joule_energy::{workload, Dataflow, Machine, Objective};
use joule_model::{LayerClass, Op, Shape, Value};
use joule_nn::{evaluate, Dataset, FeatureMap, Network, Rng, Trace};
use serde::{Deserialize, Serialize};

/// One CONV/FC layer's measured cost (per image).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerMetrics {
    pub name: String,
    pub class: LayerClass,
    pub weights: usize,
    pub nonzero_weights: usize,
    pub macs: u64,
    pub nonskipped_macs: f64,
    pub ifmap_density: f64,
    pub energy: f64,
}

/// A network's metrics; energies and MACs per image, energy in the hardware's unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Fraction of the test split classified correctly (reported only).
    pub accuracy: f64,
    /// Fraction of the validation split classified correctly: what pruning selects by
    /// (`None` where no validation split was given, and in runs saved before one existed).
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
    pub energy: f64,
    pub nonzero_weights: usize,
    pub nonskipped_macs: f64,
    pub layers: Vec<LayerMetrics>,
}

/// Picks `n` training images (seeded, without replacement) as the calibration batch.
pub fn calibration_batch(data: &Dataset, n: usize, seed: u64) -> Result<FeatureMap, CompressError> {
    if n == 0 || data.is_empty() {
        return Err(CompressError::config(
            "calibration",
            "needs at least one image",
        ));
    }
    let mut order: Vec<usize> = (0..data.len()).collect();
    Rng::new(seed).shuffle(&mut order);
    order.truncate(n.min(data.len()));
    let (images, _) = data.batch(&order);
    let shape = Shape {
        n: order.len(),
        ..data.sample
    };
    Ok(FeatureMap::new(shape, images)?)
}

/// The CONV/FC layers that have weights, by node index.
pub fn weighted_layers(network: &Network) -> Vec<usize> {
    network
        .graph()
        .weighted_layers()
        .filter(|(_, n)| !n.params.is_empty())
        .map(|(id, _)| id.0)
        .collect()
}

/// The input a node reads in `trace` (the calibration batch for the graph input).
pub fn node_input(
    network: &Network,
    trace: &Trace,
    calibration: &FeatureMap,
    node: usize,
) -> FeatureMap {
    match network.graph().nodes()[node].inputs[0] {
        Value::Input => calibration.clone(),
        Value::Node(id) => trace.output(id),
    }
}

/// Per-layer densities, non-skipped MACs and energy on `hw` (no accuracy).
pub fn measure_layers(
    network: &Network,
    calibration: &FeatureMap,
    hw: &Machine,
) -> Result<Vec<LayerMetrics>, CompressError> {
    measure_layers_at(network, calibration, hw, &workload::LayerBitwidths::new())
}

/// [`measure_layers`] with per-layer operand widths (a quantized network's): the energy of
/// pruning and quantization together (`joule quantize` on a pruned checkpoint).
pub fn measure_layers_at(
    network: &Network,
    calibration: &FeatureMap,
    hw: &Machine,
    bits: &workload::LayerBitwidths,
) -> Result<Vec<LayerMetrics>, CompressError> {
    let graph = network.graph();
    let trace = network.trace(calibration)?;
    let mut workloads = workload::from_graph(graph, None, 1)?;
    workload::apply_bitwidths(&mut workloads, bits, "plan")?;
    let mut layers = Vec::new();
    for index in weighted_layers(network) {
        let node = &graph.nodes()[index];
        let input = node_input(network, &trace, calibration, index);
        let nonzero = input.data.iter().filter(|v| **v != 0.0).count();
        let density = nonzero as f64 / input.data.len().max(1) as f64;
        let w = &node.params[0];
        let workload = workloads
            .iter_mut()
            .find(|w| w.name == node.name)
            .expect("from_graph lists every weighted layer");
        // The engine needs a positive density; an all-zero ifmap costs (almost) nothing.
        workload.density.ifmap = density.max(1e-6);
        layers.push(LayerMetrics {
            name: node.name.clone(),
            class: node.op.class(),
            weights: w.len(),
            nonzero_weights: w.data.iter().filter(|v| **v != 0.0).count(),
            macs: workload.nest.macs(),
            nonskipped_macs: nonskipped_macs(&node.op, &w.data, &w.shape, &input),
            ifmap_density: density,
            energy: 0.0,
        });
    }
    if layers.is_empty() {
        return Err(CompressError::NoWeightedLayers {
            model: graph.name.clone(),
        });
    }
    let cost = hw.evaluate(&graph.name, &workloads, Dataflow::Rs, Objective::Energy)?;
    for layer in &mut layers {
        layer.energy = cost.layer(&layer.name).map_or(0.0, |c| c.energy.total);
    }
    Ok(layers)
}

/// Accuracy on `test` plus [`measure_layers`].
pub fn measure(
    network: &Network,
    calibration: &FeatureMap,
    test: &Dataset,
    hw: &Machine,
) -> Result<Metrics, CompressError> {
    let layers = measure_layers(network, calibration, hw)?;
    let accuracy = evaluate(network, test, 256)?.accuracy;
    Ok(Metrics::from_layers(accuracy, layers))
}

impl Metrics {
    pub fn from_layers(accuracy: f64, layers: Vec<LayerMetrics>) -> Metrics {
        Metrics {
            accuracy,
            validation_accuracy: None,
            energy: layers.iter().map(|l| l.energy).sum(),
            nonzero_weights: layers.iter().map(|l| l.nonzero_weights).sum(),
            nonskipped_macs: layers.iter().map(|l| l.nonskipped_macs).sum(),
            layers,
        }
    }
}

/// Non-skipped MACs per image of a CONV/FC layer with weights `w` on the batch `input`:
/// pairs (weight, ifmap value) that are both non-zero, averaged over the batch.
pub fn nonskipped_macs(op: &Op, w: &[f32], w_shape: &[usize], input: &FeatureMap) -> f64 {
    let x = input.shape;
    let images = x.n.max(1) as f64;
    match op {
        Op::FullyConnected(_) => {
            let (m, k) = (w_shape[0], w_shape[1]);
            // Non-zero weights per input column.
            let mut per_column = vec![0u64; k];
            for f in 0..m {
                for (j, v) in w[f * k..(f + 1) * k].iter().enumerate() {
                    per_column[j] += (*v != 0.0) as u64;
                }
            }
            let mut total = 0u64;
            for sample in input.data.chunks(k) {
                for (j, v) in sample.iter().enumerate() {
                    if *v != 0.0 {
                        total += per_column[j];
                    }
                }
            }
            total as f64 / images
        }
        Op::Conv(conv) => {
            let (m, cg, r, s) = (w_shape[0], w_shape[1], w_shape[2], w_shape[3]);
            let groups = conv.groups.max(1);
            let m_per = m / groups;
            let eff_r = (r - 1) * conv.dilation_h + 1;
            let eff_s = (s - 1) * conv.dilation_w + 1;
            let padded_h = x.h + conv.padding.top + conv.padding.bottom;
            let padded_w = x.w + conv.padding.left + conv.padding.right;
            let p_out = (padded_h - eff_r) / conv.stride_h + 1;
            let q_out = (padded_w - eff_s) / conv.stride_w + 1;
            let mut total = 0u64;
            for g in 0..groups {
                for ci in 0..cg {
                    let c = g * cg + ci;
                    for ri in 0..r {
                        for si in 0..s {
                            let nnz = (g * m_per..(g + 1) * m_per)
                                .filter(|&f| w[((f * cg + ci) * r + ri) * s + si] != 0.0)
                                .count() as u64;
                            if nnz == 0 {
                                continue;
                            }
                            let mut hits = 0u64;
                            for n in 0..x.n {
                                let plane = &input.data[(n * x.c + c) * x.h * x.w..][..x.h * x.w];
                                for p in 0..p_out {
                                    let row = (p * conv.stride_h + ri * conv.dilation_h) as isize
                                        - conv.padding.top as isize;
                                    if row < 0 || row >= x.h as isize {
                                        continue;
                                    }
                                    let line = &plane[row as usize * x.w..][..x.w];
                                    for q in 0..q_out {
                                        let col = (q * conv.stride_w + si * conv.dilation_w)
                                            as isize
                                            - conv.padding.left as isize;
                                        if col >= 0
                                            && col < x.w as isize
                                            && line[col as usize] != 0.0
                                        {
                                            hits += 1;
                                        }
                                    }
                                }
                            }
                            total += nnz * hits;
                        }
                    }
                }
            }
            total as f64 / images
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::ops::Conv;

    #[test]
    fn nonskipped_macs_count_pairs_of_nonzeros() {
        // 1 filter 1x2x2 over a 1x3x3 ifmap, no padding: 4 output positions x 4 weights.
        let conv = Conv::new(1, 2, 1, 0);
        let input = FeatureMap::new(
            Shape::new(1, 1, 3, 3),
            vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        )
        .unwrap();
        // Dense weights: count the non-zero ifmap values under each window.
        let dense = nonskipped_macs(&Op::Conv(conv.clone()), &[1.0; 4], &[1, 1, 2, 2], &input);
        // Windows: (0,0): 1,0,0,0 -> 1; (0,1): 0,1,0,0 -> 1; (1,0): 0,0,1,1 -> 2; (1,1): 0,0,1,1 -> 2.
        assert_eq!(dense, 6.0);
        // Only the top-left weight: the top-left value of each window.
        let sparse = nonskipped_macs(
            &Op::Conv(conv),
            &[1.0, 0.0, 0.0, 0.0],
            &[1, 1, 2, 2],
            &input,
        );
        assert_eq!(sparse, 1.0 + 0.0 + 0.0 + 0.0);
    }
}
