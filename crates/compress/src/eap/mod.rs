//! Energy-aware pruning (Yang, Chen and Sze, CVPR 2017).
//!
//! One pass prunes every CONV/FC layer once, in order of estimated energy (highest first,
//! measured with the real weight and ifmap densities, [`crate::metrics`]). For a layer:
//!
//! 1. sample input patches of real data and the layer's reference output
//!    ([`patches`]: the output of the network at the start of the pass);
//! 2. remove its smallest weights while the relative output error stays within
//!    `overshoot x threshold`, then restore removed weights greedily by how much they reduce
//!    the output-feature-map error until it is within the threshold ([`restore`]);
//! 3. local fine-tuning in closed form: per filter, least squares over the kept weights and
//!    the bias to reproduce the reference output ([`lsq`], faer);
//! 4. fix the layer's mask and go on.
//!
//! After the pass, global fine-tuning by backprop with the masks fixed; passes repeat with a
//! tighter threshold while accuracy stays within the target ([`crate::run`] drives this).

pub mod lsq;
pub mod patches;
pub mod restore;

use crate::metrics::node_input;
use crate::CompressError;
use joule_model::NodeId;
use joule_nn::{FeatureMap, Network, Rng};
use restore::{relative_error, LayerWeights, Selection};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Settings of energy-aware pruning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EapConfig {
    /// Relative output-error threshold of the first pass.
    pub threshold: f64,
    /// Factor on the threshold after every accepted pass (< 1: tighter).
    pub tighten: f64,
    /// Removal goes up to this multiple of the threshold before restoring.
    pub overshoot: f64,
    /// Output positions sampled per CONV layer (FC layers use every calibration image).
    pub max_patches: usize,
    /// Ridge of the least squares, relative to the mean diagonal of the normal matrix.
    pub ridge: f64,
}

impl Default for EapConfig {
    fn default() -> Self {
        EapConfig {
            threshold: 0.3,
            tighten: 0.8,
            overshoot: 2.0,
            max_patches: 4096,
            ridge: 1e-4,
        }
    }
}

/// What pruning one layer did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerStep {
    pub kept_before: usize,
    pub removed: usize,
    pub restored: usize,
    pub kept_after: usize,
    /// Relative output error: at the start, after removal, after restoring, after the
    /// least-squares refit.
    pub error_start: f64,
    pub error_removed: f64,
    pub error_restored: f64,
    pub error_refit: f64,
    pub restore_seconds: f64,
    pub lsq_seconds: f64,
}

/// Prunes CONV/FC node `node` of `network` against the outputs of `reference` (same
/// structure) on the `calibration` batch, with relative-error `threshold`.
pub fn prune_layer(
    network: &mut Network,
    reference: &Network,
    calibration: &FeatureMap,
    node: usize,
    threshold: f64,
    config: &EapConfig,
    rng: &mut Rng,
) -> Result<LayerStep, CompressError> {
    let start = Instant::now();
    let current = network.trace(calibration)?;
    let input = node_input(network, &current, calibration, node);
    drop(current);
    let target = reference.trace(calibration)?.output(NodeId(node));
    let graph_node = &network.graph().nodes()[node];
    let name = graph_node.name.clone();
    let w = &graph_node.params[0];
    let bias = graph_node.params.get(1).map(|b| b.data.clone());
    let problems = patches::build(
        &graph_node.op,
        &w.shape,
        bias.is_some(),
        &input,
        &target,
        config.max_patches,
        rng,
    );
    let m = w.shape[0];
    let per = w.len() / m;
    let mask = network.mask(NodeId(node)).map(|m| m.to_vec());
    let mut layer = LayerWeights {
        filters: (0..m)
            .map(|f| {
                let mut v: Vec<f64> = w.data[f * per..(f + 1) * per]
                    .iter()
                    .map(|&x| x as f64)
                    .collect();
                if let Some(b) = &bias {
                    v.push(b[f] as f64);
                }
                v
            })
            .collect(),
        kept: (0..m)
            .map(|f| match &mask {
                Some(mask) => mask[f * per..(f + 1) * per]
                    .iter()
                    .map(|&k| k != 0.0)
                    .collect(),
                None => vec![true; per],
            })
            .collect(),
    };
    let selection: Selection =
        restore::remove_and_restore(&problems, &mut layer, threshold, config.overshoot);
    let restore_seconds = start.elapsed().as_secs_f64();
    let lsq_start = Instant::now();
    let mut filter = 0;
    for p in &problems {
        for j in 0..p.filters {
            let f = p.first_filter + j;
            lsq::refit_filter(p, j, &mut layer.filters[f], &layer.kept[f], config.ridge).map_err(
                |detail| CompressError::LeastSquares {
                    layer: name.clone(),
                    filter: f,
                    detail,
                },
            )?;
            filter += 1;
        }
    }
    debug_assert_eq!(filter, m);
    let error_refit = relative_error(&problems, &layer.filters);
    let lsq_seconds = lsq_start.elapsed().as_secs_f64();
    let params = network.params_mut(NodeId(node));
    for (f, values) in layer.filters.iter().enumerate() {
        for (i, v) in values[..per].iter().enumerate() {
            params[0].data[f * per + i] = *v as f32;
        }
        if let Some(b) = params.get_mut(1) {
            b.data[f] = values[per] as f32;
        }
    }
    let new_mask: Vec<f32> = layer
        .kept
        .iter()
        .flat_map(|k| k.iter().map(|&k| k as u8 as f32))
        .collect();
    let kept_after = new_mask.iter().filter(|v| **v != 0.0).count();
    network.set_mask(NodeId(node), new_mask)?;
    Ok(LayerStep {
        kept_before: selection.kept_before,
        removed: selection.removed,
        restored: selection.restored,
        kept_after,
        error_start: selection.error_start,
        error_removed: selection.error_removed,
        error_restored: selection.error_restored,
        error_refit,
        restore_seconds,
        lsq_seconds,
    })
}
