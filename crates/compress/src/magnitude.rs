//! Magnitude pruning (Han, Pool, Tran and Dally, NeurIPS 2015), the baseline.
//!
//! A sensitivity analysis prunes each CONV/FC layer alone to a grid of sparsities and
//! measures the accuracy; a layer's sparsity at "level" `d` is the largest sparsity whose
//! drop stays within `d` points (sensitive layers get less pruning). Pruning then walks up
//! the levels: at each, every layer is pruned by magnitude to its sparsity (masks only grow),
//! and the network is retrained with the masks fixed ([`crate::run`] drives this).

use crate::metrics::weighted_layers;
use crate::CompressError;
use joule_model::NodeId;
use joule_nn::prune::magnitude_mask;
use joule_nn::{evaluate, Dataset, Network};
use serde::{Deserialize, Serialize};

/// Settings of magnitude pruning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MagnitudeConfig {
    /// Sparsities tried in the sensitivity analysis.
    pub grid: Vec<f64>,
    /// Accuracy drops (points, before retraining) that define the successive levels.
    pub levels: Vec<f64>,
    /// Test samples used by the sensitivity analysis.
    pub sensitivity_samples: usize,
}

impl Default for MagnitudeConfig {
    fn default() -> Self {
        let mut grid: Vec<f64> = (1..=19).map(|i| i as f64 * 0.05).collect();
        grid.extend([0.97, 0.98, 0.99]);
        MagnitudeConfig {
            grid,
            levels: vec![0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
            sensitivity_samples: 2000,
        }
    }
}

/// Accuracy of the network with one layer pruned to each sparsity of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sensitivity {
    pub layer: String,
    pub node: usize,
    pub base_accuracy: f64,
    pub sparsity: Vec<f64>,
    pub accuracy: Vec<f64>,
}

impl Sensitivity {
    /// The largest sparsity such that it and every smaller one on the grid lose at most
    /// `drop` points (0 when even the smallest loses more).
    pub fn sparsity_for(&self, drop: f64) -> f64 {
        let mut best = 0.0;
        for (s, a) in self.sparsity.iter().zip(&self.accuracy) {
            if (self.base_accuracy - a) * 100.0 > drop {
                break;
            }
            best = *s;
        }
        best
    }
}

/// The sensitivity analysis of every CONV/FC layer on `data`.
pub fn sensitivity(
    network: &Network,
    data: &Dataset,
    grid: &[f64],
) -> Result<Vec<Sensitivity>, CompressError> {
    let base_accuracy = evaluate(network, data, 256)?.accuracy;
    let mut out = Vec::new();
    for node in weighted_layers(network) {
        let mut accuracy = Vec::new();
        for &s in grid {
            let mut trial = network.clone();
            prune_to(&mut trial, node, s)?;
            accuracy.push(evaluate(&trial, data, 256)?.accuracy);
        }
        out.push(Sensitivity {
            layer: network.graph().nodes()[node].name.clone(),
            node,
            base_accuracy,
            sparsity: grid.to_vec(),
            accuracy,
        });
    }
    Ok(out)
}

/// Prunes node `node` by magnitude to `sparsity` (fraction of its weights at zero), keeping
/// every weight its current mask already prunes.
pub fn prune_to(network: &mut Network, node: usize, sparsity: f64) -> Result<(), CompressError> {
    let id = NodeId(node);
    let weights = &network.graph().nodes()[node].params[0].data;
    let mut mask = magnitude_mask(weights, sparsity);
    if let Some(old) = network.mask(id) {
        mask.iter_mut().zip(old).for_each(|(m, o)| *m *= o);
    }
    network.set_mask(id, mask)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparsity_for_stops_at_the_first_drop_past_the_level() {
        let s = Sensitivity {
            layer: "fc1".into(),
            node: 0,
            base_accuracy: 0.90,
            sparsity: vec![0.5, 0.7, 0.9],
            accuracy: vec![0.899, 0.88, 0.895],
        };
        assert_eq!(s.sparsity_for(0.5), 0.5);
        // 0.9 alone would qualify, but 0.7 already lost 2 points.
        assert_eq!(s.sparsity_for(1.0), 0.5);
        assert_eq!(s.sparsity_for(2.5), 0.9);
        assert_eq!(s.sparsity_for(0.05), 0.0);
    }
}
