//! The pieces of one NetAdapt iteration: per prunable layer, the filter count that meets the
//! constraint and the filters with the smallest L2 norm removed (with the matching input
//! channels of the consumers, by [`joule_nn::prune::remove_filters`]); joule's own
//! short-term fine-tuning and holdout accuracy of the candidates (in parallel, rayon); and
//! the pick of the best. [`super::plan::Planner`] strings them into ask/tell.

use super::budget::{Estimator, Resource, Resources};
use super::plan::Proposal;
use super::AdaptConfig;
use crate::lut::{filters, ChannelGrid};
use crate::CompressError;
use joule_model::NodeId;
use joule_nn::train::Schedule;
use joule_nn::{evaluate, prune, train, Dataset, Network, Rng, TrainConfig};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How the best candidate of an iteration is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// Highest holdout accuracy.
    Accuracy,
    /// Smallest accuracy drop per unit of (relative) resource saved, on the first budget.
    DropPerResource,
}

/// L2 norm of every filter (output channel) of a CONV/FC node's weights.
pub fn filter_norms(network: &Network, node: NodeId) -> Vec<f64> {
    let w = &network.graph().node(node).params[0];
    let m = w.shape[0];
    let per = w.len() / m.max(1);
    (0..m)
        .map(|f| {
            w.data[f * per..(f + 1) * per]
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// The `count` filters with the smallest L2 norm (ties: lower index first), ascending.
pub fn weakest_filters(norms: &[f64], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..norms.len()).collect();
    order.sort_by(|&a, &b| norms[a].total_cmp(&norms[b]).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = order.into_iter().take(count).collect();
    chosen.sort_unstable();
    chosen
}

/// The largest grid count of `layer` that brings every constrained resource within its
/// target, with the network that has it (not yet fine-tuned). `None` if no count does.
pub fn shrink_to_target(
    network: &Network,
    layer: &str,
    grid: &ChannelGrid,
    estimator: &Estimator,
    targets: &[(Resource, f64)],
) -> Result<Option<(usize, Network, Resources)>, CompressError> {
    let node = network.graph().find(layer).ok_or_else(|| {
        CompressError::config("layer", format!("no layer {layer:?} in the network"))
    })?;
    let current = filters(&network.graph().node(node).op).ok_or_else(|| {
        CompressError::config("layer", format!("{layer:?} is not a CONV or FC layer"))
    })?;
    let norms = filter_norms(network, node);
    for count in grid.below(layer, current) {
        let smaller =
            prune::remove_filters(network, node, &weakest_filters(&norms, current - count))?;
        let resources = estimator.estimate(smaller.graph())?;
        if targets
            .iter()
            .all(|&(r, t)| resources.get(r) <= t * (1.0 + 1e-12))
        {
            return Ok(Some((count, smaller, resources)));
        }
    }
    Ok(None)
}

/// A seeded random subset of `n` samples (all of them if `n` is larger).
pub fn subset(data: &Dataset, n: usize, rng: &mut Rng) -> Dataset {
    let mut order: Vec<usize> = (0..data.len()).collect();
    rng.shuffle(&mut order);
    order.truncate(n.min(data.len()));
    let (images, labels) = data.batch(&order);
    Dataset {
        sample: data.sample,
        images,
        labels,
        classes: data.classes,
    }
}

/// Fine-tunes `network` on `batches` mini-batches drawn (seeded) from `train_set`.
pub fn short_term(
    network: &mut Network,
    train_set: &Dataset,
    config: &AdaptConfig,
    seed: u64,
) -> Result<(), CompressError> {
    if config.short_term_batches == 0 {
        return Ok(());
    }
    let mut rng = Rng::new(seed);
    let data = subset(
        train_set,
        config.short_term_batches * config.batch_size,
        &mut rng,
    );
    let train_config = TrainConfig {
        epochs: 1,
        batch_size: config.batch_size,
        learning_rate: config.learning_rate,
        schedule: Schedule::Constant,
        seed,
        ..TrainConfig::default()
    };
    train(network, &data, &train_config, |_| {})?;
    Ok(())
}

/// Short-term fine-tunes every candidate network (in parallel) with its proposal's seed and
/// scores it on the holdout: joule's own answer to the proposals of an iteration.
pub fn fine_tune(
    networks: Vec<Network>,
    proposals: &[Proposal],
    train_set: &Dataset,
    holdout: &Dataset,
    config: &AdaptConfig,
) -> Result<Vec<(Network, f64)>, CompressError> {
    networks
        .into_par_iter()
        .zip(proposals.par_iter())
        .map(|(mut network, proposal)| {
            short_term(&mut network, train_set, config, proposal.seed)?;
            let accuracy = evaluate(&network, holdout, 256)?.accuracy;
            Ok((network, accuracy))
        })
        .collect()
}

/// The index of the best proposal by its told `accuracies`; ties go to the earlier layer.
/// `accuracy` and `resources` are the current network's, `original` the original network's
/// value of `resource` (the first budget's).
pub fn pick(
    proposals: &[Proposal],
    accuracies: &[f64],
    selection: Selection,
    accuracy: f64,
    resources: &Resources,
    resource: Resource,
    original: f64,
) -> Option<usize> {
    let score = |i: usize| match selection {
        Selection::Accuracy => accuracies[i],
        Selection::DropPerResource => {
            let saved = (resources.get(resource) - proposals[i].resources.get(resource)) / original;
            -(accuracy - accuracies[i]) / saved.max(1e-12)
        }
    };
    let mut best: Option<usize> = None;
    for i in 0..proposals.len().min(accuracies.len()) {
        if best.is_none_or(|b| score(i) > score(b)) {
            best = Some(i);
        }
    }
    best
}
