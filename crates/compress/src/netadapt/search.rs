//! One NetAdapt iteration: per prunable layer, the filter count that meets the constraint,
//! the filters with the smallest L2 norm removed (with the matching input channels of the
//! consumers, by [`joule_nn::prune::remove_filters`]), short-term fine-tuning and holdout
//! accuracy; the candidates run in parallel (rayon) and the best one is kept.

use super::budget::{Estimator, Resource, Resources};
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

/// A simplified network proposed for one layer.
pub struct Candidate {
    pub layer: String,
    pub filters: usize,
    pub network: Network,
    pub resources: Resources,
    pub accuracy: f64,
}

/// The largest grid count of `layer` that brings every constrained resource within its
/// target, with the network that has it (not yet fine-tuned). `None` if no count does.
pub fn shrink_to_target(
    network: &Network,
    layer: &str,
    grid: &ChannelGrid,
    estimator: &Estimator<'_>,
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

/// Every candidate of iteration `iteration`: one per layer that can meet the targets.
#[allow(clippy::too_many_arguments)]
pub fn candidates(
    network: &Network,
    layers: &[String],
    grid: &ChannelGrid,
    estimator: &Estimator<'_>,
    targets: &[(Resource, f64)],
    train_set: &Dataset,
    holdout: &Dataset,
    config: &AdaptConfig,
    iteration: usize,
) -> Result<Vec<Candidate>, CompressError> {
    let found: Vec<Result<Option<Candidate>, CompressError>> = layers
        .par_iter()
        .enumerate()
        .map(|(index, layer)| {
            let Some((filters, mut smaller, resources)) =
                shrink_to_target(network, layer, grid, estimator, targets)?
            else {
                return Ok(None);
            };
            let seed = Rng::new(config.seed)
                .fork(1 + (iteration * 1000 + index) as u64)
                .next_u64();
            short_term(&mut smaller, train_set, config, seed)?;
            let accuracy = evaluate(&smaller, holdout, 256)?.accuracy;
            Ok(Some(Candidate {
                layer: layer.clone(),
                filters,
                network: smaller,
                resources,
                accuracy,
            }))
        })
        .collect();
    let mut out = Vec::new();
    for c in found {
        out.extend(c?);
    }
    Ok(out)
}

/// The index of the best candidate; ties go to the earlier layer.
pub fn pick(
    candidates: &[Candidate],
    selection: Selection,
    accuracy: f64,
    resources: &Resources,
    resource: Resource,
    original: f64,
) -> Option<usize> {
    let score = |c: &Candidate| match selection {
        Selection::Accuracy => c.accuracy,
        Selection::DropPerResource => {
            let saved = (resources.get(resource) - c.resources.get(resource)) / original;
            -(accuracy - c.accuracy) / saved.max(1e-12)
        }
    };
    let mut best: Option<usize> = None;
    for (i, c) in candidates.iter().enumerate() {
        if best.is_none_or(|b| score(c) > score(&candidates[b])) {
            best = Some(i);
        }
    }
    best
}
