//! Which weights of a layer to prune: remove by magnitude past the error threshold, then
//! greedily restore the removed weights that most reduce the output-feature-map error until
//! the relative error is back under the threshold.
//!
//! The relative error of a layer is `sqrt(sum_m e_m / sum_m |y_m|^2)` over its filters (see
//! [`super::patches`]). Restoring removed weight `a` of filter `m` (back to its value
//! `v_a`) lowers `e_m` by `2 v_a (c_m - G w_m)_a - v_a^2 G_aa`, exactly; the search restores
//! the best gains first, a block at a time (one weight at a time for layers with up to 256
//! removed weights), recomputing the gains of the filters it touched.

use super::patches::GroupProblem;
use rayon::prelude::*;

/// A layer's weights in the form the search works on: per filter (all groups, in order),
/// the weights followed by the bias (when the layer has one).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    pub filters: Vec<Vec<f64>>,
    pub kept: Vec<Vec<bool>>,
}

/// What the search did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Selection {
    pub kept_before: usize,
    pub removed: usize,
    pub restored: usize,
    /// Relative output error before any change, after removal, after restoring.
    pub error_start: f64,
    pub error_removed: f64,
    pub error_restored: f64,
}

/// The group and index within it of every filter.
fn locate(problems: &[GroupProblem]) -> Vec<(usize, usize)> {
    problems
        .iter()
        .enumerate()
        .flat_map(|(g, p)| (0..p.filters).map(move |j| (g, j)))
        .collect()
}

/// Squared error of every filter.
fn errors(problems: &[GroupProblem], weights: &[Vec<f64>]) -> Vec<f64> {
    let at = locate(problems);
    weights
        .par_iter()
        .zip(at)
        .map(|(w, (g, j))| problems[g].error_sq(j, w))
        .collect()
}

/// `sum_m |y_m|^2`.
pub fn target_energy(problems: &[GroupProblem]) -> f64 {
    problems
        .iter()
        .flat_map(|p| &p.target_sq)
        .sum::<f64>()
        .max(1e-30)
}

/// The relative output error of `weights`.
pub fn relative_error(problems: &[GroupProblem], weights: &[Vec<f64>]) -> f64 {
    (errors(problems, weights).iter().sum::<f64>() / target_energy(problems)).sqrt()
}

/// Removes kept weights by magnitude while the relative error stays within
/// `overshoot * threshold`, then restores removed weights greedily by output error until it
/// is within `threshold` (or no restore helps). Updates `layer` in place.
pub fn remove_and_restore(
    problems: &[GroupProblem],
    layer: &mut LayerWeights,
    threshold: f64,
    overshoot: f64,
) -> Selection {
    let wpf: Vec<usize> = locate(problems)
        .iter()
        .map(|&(g, _)| problems[g].weights_per_filter)
        .collect();
    let original = layer.filters.clone();
    let mut order: Vec<(usize, usize)> = layer
        .kept
        .iter()
        .enumerate()
        .flat_map(|(f, kept)| (0..wpf[f]).filter(|&i| kept[i]).map(move |i| (f, i)))
        .collect();
    order.sort_by(|a, b| {
        original[a.0][a.1]
            .abs()
            .total_cmp(&original[b.0][b.1].abs())
            .then(a.cmp(b))
    });
    let total = target_energy(problems);
    let with_removed = |count: usize| {
        let mut w = original.clone();
        for &(f, i) in &order[..count] {
            w[f][i] = 0.0;
        }
        w
    };
    let error_start = relative_error(problems, &original);
    // Largest count whose error stays within the removal bound (error grows with count).
    let bound = overshoot * threshold;
    let (mut lo, mut hi) = (0usize, order.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if relative_error(problems, &with_removed(mid)) <= bound {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let removed = lo;
    let mut weights = with_removed(removed);
    let mut is_removed: Vec<Vec<bool>> = wpf.iter().map(|&k| vec![false; k]).collect();
    for &(f, i) in &order[..removed] {
        is_removed[f][i] = true;
    }
    let mut per_filter = errors(problems, &weights);
    let error_removed = (per_filter.iter().sum::<f64>() / total).sqrt();
    let at = locate(problems);
    let block = (removed / 256).max(1);
    let mut restored = 0;
    let mut gains: Vec<Vec<(f64, usize)>> = vec![Vec::new(); weights.len()];
    let mut dirty: Vec<bool> = vec![true; weights.len()];
    let limit = threshold * threshold * total;
    while per_filter.iter().sum::<f64>() > limit {
        gains
            .par_iter_mut()
            .enumerate()
            .filter(|(f, _)| dirty[*f])
            .for_each(|(f, out)| {
                let (g, j) = at[f];
                let p = &problems[g];
                let w = &weights[f];
                let nz: Vec<usize> = (0..p.columns()).filter(|&b| w[b] != 0.0).collect();
                out.clear();
                for a in (0..wpf[f]).filter(|&a| is_removed[f][a]) {
                    let v = original[f][a];
                    let mut residual = p.cross[(a, j)];
                    for &b in &nz {
                        residual -= p.gram[(a, b)] * w[b];
                    }
                    let gain = 2.0 * v * residual - v * v * p.gram[(a, a)];
                    if gain > 0.0 {
                        out.push((gain, a));
                    }
                }
            });
        dirty.iter_mut().for_each(|d| *d = false);
        let mut best: Vec<(f64, usize, usize)> = gains
            .iter()
            .enumerate()
            .flat_map(|(f, list)| list.iter().map(move |&(gain, a)| (gain, f, a)))
            .collect();
        if best.is_empty() {
            break;
        }
        let take = block.min(best.len());
        best.select_nth_unstable_by(take - 1, |x, y| {
            y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2))
        });
        for &(_, f, a) in &best[..take] {
            weights[f][a] = original[f][a];
            is_removed[f][a] = false;
            dirty[f] = true;
            restored += 1;
        }
        for f in 0..weights.len() {
            if dirty[f] {
                let (g, j) = at[f];
                per_filter[f] = problems[g].error_sq(j, &weights[f]);
            }
        }
    }
    let error_restored = (per_filter.iter().sum::<f64>() / total).sqrt();
    for (f, kept) in layer.kept.iter_mut().enumerate() {
        for (i, k) in kept.iter_mut().enumerate() {
            if is_removed[f][i] {
                *k = false;
            }
        }
    }
    layer.filters = weights;
    Selection {
        kept_before: order.len(),
        removed,
        restored,
        error_start,
        error_removed,
        error_restored,
    }
}
