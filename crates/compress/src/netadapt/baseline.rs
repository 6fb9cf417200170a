//! The uniform width-multiplier baseline (issue 6, experiment 1): every prunable layer keeps
//! the same fraction `k / levels` of its filters (`ceil(m * k / levels)`, a point of the
//! channel grid, so the latency table answers it), the filters with the smallest L2 norm
//! removed by [`joule_nn::prune::remove_filters`] exactly as NetAdapt removes them. The
//! factor is the one whose network is nearest NetAdapt's final network on the matching
//! resource (measured latency when a timer is given, else the first budget's resource);
//! ties go to the larger factor. The chosen network is then fine-tuned exactly like
//! NetAdapt's final network (same epochs, batch size, learning rate, schedule and seed).

use super::budget::{Estimator, Resource};
use super::search::{filter_norms, weakest_filters};
use crate::lut::{self, filters, prunable_layers, LayerTimer, MeasureConfig};
use crate::CompressError;
use joule_nn::{prune, Network};
use serde::{Deserialize, Serialize};

/// The baseline's entry in `state.json` and `summary.json`: a [`super::Record`] (flattened)
/// plus the width multiplier and what it was matched on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineRecord {
    /// The fraction of filters every prunable layer keeps (`k / levels`).
    pub width_multiplier: f64,
    /// `latency_measured_ms`, or the resource name of the first budget.
    pub matched_on: String,
    /// The final NetAdapt network's value of `matched_on`.
    pub matched_target: f64,
    /// Every factor tried: `(width_multiplier, value of matched_on)`, before fine-tuning.
    pub tried: Vec<(f64, f64)>,
    #[serde(flatten)]
    pub record: super::Record,
}

/// `network` with every prunable layer cut to `ceil(m * k / levels)` filters (`m` its count in
/// `network`), weakest filters (L2 norm) first, layer by layer in graph order.
pub fn uniform(network: &Network, k: usize, levels: usize) -> Result<Network, CompressError> {
    check_width(k, levels)?;
    narrowed(network, levels, |_| k)
}

fn check_width(k: usize, levels: usize) -> Result<(), CompressError> {
    if levels == 0 || k == 0 || k > levels {
        return Err(CompressError::config(
            "baseline",
            format!("width multiplier {k}/{levels} must be in (0, 1]"),
        ));
    }
    Ok(())
}

/// [`uniform`] with each prunable layer's own `k` (`width(layer name)`, in `1..=levels`),
/// asked in graph order: the members of a channel grid that are not uniform.
pub fn narrowed(
    network: &Network,
    levels: usize,
    mut width: impl FnMut(&str) -> usize,
) -> Result<Network, CompressError> {
    let originals: Vec<(String, usize)> = prunable_layers(network.graph())
        .into_iter()
        .map(|id| {
            let node = network.graph().node(id);
            (node.name.clone(), filters(&node.op).unwrap_or(1))
        })
        .collect();
    let mut current = network.clone();
    for (name, m) in originals {
        let k = width(&name);
        check_width(k, levels)?;
        let keep = (m * k).div_ceil(levels).max(1);
        let node = current.graph().find(&name).ok_or_else(|| {
            CompressError::config(
                "baseline",
                format!("layer {name:?} vanished during surgery"),
            )
        })?;
        let now = filters(&current.graph().node(node).op).unwrap_or(keep);
        if now > keep {
            let norms = filter_norms(&current, node);
            current = prune::remove_filters(&current, node, &weakest_filters(&norms, now - keep))?;
        }
    }
    Ok(current)
}

/// What the factor is matched on.
pub enum Match<'a> {
    /// Measured whole-network latency (ms per image, batch 1).
    Measured(&'a dyn LayerTimer, &'a MeasureConfig),
    /// An estimated resource.
    Estimated(&'a Estimator, Resource),
}

impl Match<'_> {
    pub fn name(&self) -> String {
        match self {
            Match::Measured(..) => "latency_measured_ms".into(),
            Match::Estimated(_, r) => r.name().into(),
        }
    }

    pub fn value(&self, network: &Network) -> Result<f64, CompressError> {
        match self {
            Match::Measured(timer, config) => {
                Ok(lut::measure_network(network, 1, *timer, config)?.median_ms)
            }
            Match::Estimated(estimator, r) => Ok(estimator.estimate(network.graph())?.get(*r)),
        }
    }
}

/// The width [`choose`] picked.
pub struct Choice {
    /// The factor: every prunable layer keeps `k / levels` of its filters.
    pub k: usize,
    /// The uniform network (not yet fine-tuned).
    pub network: Network,
    /// Every `(k / levels, value of the matched resource)` tried, widest first.
    pub tried: Vec<(f64, f64)>,
}

/// The factor `k` (1..levels-1) whose uniform network is nearest `target` on `matching`
/// (ties: the larger `k`), with that network and every `(k / levels, value)` tried.
pub fn choose(
    network: &Network,
    levels: usize,
    matching: &Match<'_>,
    target: f64,
) -> Result<Choice, CompressError> {
    let mut best: Option<(usize, Network, f64)> = None;
    let mut tried = Vec::new();
    for k in (1..levels).rev() {
        let candidate = uniform(network, k, levels)?;
        let value = matching.value(&candidate)?;
        tried.push((k as f64 / levels as f64, value));
        let distance = (value - target).abs();
        if best.as_ref().is_none_or(|(_, _, d)| distance < *d) {
            best = Some((k, candidate, distance));
        }
    }
    let (k, network, _) = best.ok_or_else(|| {
        CompressError::config("baseline", "needs at least 2 levels in the channel grid")
    })?;
    Ok(Choice { k, network, tried })
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::zoo;

    #[test]
    fn every_layer_keeps_the_same_fraction_and_the_strongest_filters() {
        let network = Network::new(zoo::build("lenet5").unwrap(), 2).unwrap();
        // lenet5: conv1 6, conv2 16, fc1 120, fc2 84 (fc3 makes the logits).
        let half = uniform(&network, 4, 8).unwrap();
        let g = half.graph();
        let count = |n: &str| filters(&g.node(g.find(n).unwrap()).op).unwrap();
        assert_eq!(
            [count("conv1"), count("conv2"), count("fc1"), count("fc2")],
            [3, 8, 60, 42]
        );
        assert_eq!(count("fc3"), 10);
        // conv1 is cut first, from the original weights: the 3 strongest filters stay.
        let conv1 = network.graph().find("conv1").unwrap();
        let norms = filter_norms(&network, conv1);
        let kept: Vec<usize> = (0..6)
            .filter(|f| !weakest_filters(&norms, 3).contains(f))
            .collect();
        let old = &network.graph().node(conv1).params[0];
        let new = &g.node(conv1).params[0];
        for (row, &f) in kept.iter().enumerate() {
            assert_eq!(
                new.data[row * 25..(row + 1) * 25],
                old.data[f * 25..(f + 1) * 25]
            );
        }
        // Full width changes nothing; 0 or more than full is refused in one line.
        assert_eq!(uniform(&network, 8, 8).unwrap().graph(), network.graph());
        let err = uniform(&network, 9, 8).unwrap_err().to_string();
        assert!(err.contains("9/8") && !err.contains('\n'), "{err}");
    }

    /// Per-layer widths: each layer asked once, in graph order, by name; counts by hand.
    #[test]
    fn narrowed_gives_each_layer_its_own_width() {
        let network = Network::new(zoo::build("lenet5").unwrap(), 2).unwrap();
        let mut asked = Vec::new();
        let net = narrowed(&network, 8, |name| {
            asked.push(name.to_string());
            match name {
                "conv1" => 1,
                "conv2" => 8,
                "fc1" => 3,
                _ => 5,
            }
        })
        .unwrap();
        assert_eq!(asked, ["conv1", "conv2", "fc1", "fc2"]);
        let g = net.graph();
        let count = |n: &str| filters(&g.node(g.find(n).unwrap()).op).unwrap();
        // ceil(6/8) = 1, 16, ceil(360/8) = 45, ceil(420/8) = 53.
        assert_eq!(
            [count("conv1"), count("conv2"), count("fc1"), count("fc2")],
            [1, 16, 45, 53]
        );
        let err = narrowed(&network, 8, |_| 0).unwrap_err().to_string();
        assert!(err.contains("0/8"), "{err}");
    }

    #[test]
    fn the_factor_nearest_the_target_is_chosen() {
        let network = Network::new(zoo::build("lenet5").unwrap(), 2).unwrap();
        let estimator = Estimator::new(None, None);
        let matching = Match::Estimated(&estimator, Resource::Macs);
        let half = matching.value(&uniform(&network, 4, 8).unwrap()).unwrap();
        let Choice {
            k,
            network: chosen,
            tried,
        } = choose(&network, 8, &matching, half + 1.0).unwrap();
        assert_eq!(k, 4);
        assert_eq!(matching.value(&chosen).unwrap(), half);
        assert_eq!(tried.len(), 7);
        assert_eq!(tried[0].0, 7.0 / 8.0);
        // MACs fall as the factor falls.
        assert!(tried.windows(2).all(|w| w[1].1 < w[0].1), "{tried:?}");
    }
}
