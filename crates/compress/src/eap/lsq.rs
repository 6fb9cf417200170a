//! Local fine-tuning in closed form: for each filter, the kept weights (and the bias) that
//! best reproduce the reference output feature map, by least squares on the normal
//! equations `G_SS w_S = c_S` (Cholesky from `faer`, with a small relative ridge).

use super::patches::GroupProblem;
use faer::linalg::solvers::Solve;
use faer::{Mat, Side};

/// Refits filter `j` of `problem`: `w` (weights then bias, `problem.columns()` long) gets the
/// least-squares values on the kept weights (`kept`, one flag per weight) and the bias; the
/// other weights become zero. `ridge` is relative to the mean diagonal of `G_SS`.
pub fn refit_filter(
    problem: &GroupProblem,
    j: usize,
    w: &mut [f64],
    kept: &[bool],
    ridge: f64,
) -> Result<(), String> {
    let mut support: Vec<usize> = (0..problem.weights_per_filter)
        .filter(|&i| kept[i])
        .collect();
    if problem.bias {
        support.push(problem.weights_per_filter);
    }
    for (i, v) in w.iter_mut().enumerate().take(problem.weights_per_filter) {
        if !kept[i] {
            *v = 0.0;
        }
    }
    if support.is_empty() {
        return Ok(());
    }
    let n = support.len();
    let mean_diag = support.iter().map(|&a| problem.gram[(a, a)]).sum::<f64>() / n as f64;
    if mean_diag <= 0.0 {
        // Every sampled input under the kept weights is zero: the output is the bias alone.
        return Ok(());
    }
    let rhs = Mat::<f64>::from_fn(n, 1, |a, _| problem.cross[(support[a], j)]);
    let mut lambda = ridge.max(0.0) * mean_diag;
    for _ in 0..4 {
        let a = Mat::<f64>::from_fn(n, n, |r, c| {
            problem.gram[(support[r], support[c])] + if r == c { lambda } else { 0.0 }
        });
        if let Ok(llt) = a.llt(Side::Lower) {
            let solution = llt.solve(&rhs);
            if solution.col(0).iter().all(|v| v.is_finite()) {
                for (a, &index) in support.iter().enumerate() {
                    w[index] = solution[(a, 0)];
                }
                return Ok(());
            }
        }
        lambda = (lambda * 1e3).max(1e-9 * mean_diag);
    }
    Err(format!(
        "normal equations of {n} unknowns are singular even with a ridge"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eap::patches;
    use joule_model::ops::FullyConnected;
    use joule_model::{Op, Shape};
    use joule_nn::{FeatureMap, Rng};

    #[test]
    fn refit_recovers_a_known_sparse_filter_exactly() {
        // y = 0.5 x0 - 2 x3 + 0.25 over random inputs; start from wrong weights on the same
        // support: least squares must reproduce y.
        let mut rng = Rng::new(3);
        let (n, k) = (64, 6);
        let data: Vec<f32> = (0..n * k).map(|_| rng.symmetric(1.0)).collect();
        let y: Vec<f32> = data
            .chunks(k)
            .map(|x| 0.5 * x[0] - 2.0 * x[3] + 0.25)
            .collect();
        let input = FeatureMap::new(Shape::new(n, k, 1, 1), data).unwrap();
        let target = FeatureMap::new(Shape::new(n, 1, 1, 1), y).unwrap();
        let op = Op::FullyConnected(FullyConnected {
            outputs: 1,
            bias: true,
        });
        let problems = patches::build(&op, &[1, k], true, &input, &target, 1000, &mut rng);
        let p = &problems[0];
        let mut w = vec![1.0, 9.0, 9.0, 1.0, 9.0, 9.0, 0.0];
        let kept = [true, false, false, true, false, false];
        refit_filter(p, 0, &mut w, &kept, 1e-12).unwrap();
        let want = [0.5, 0.0, 0.0, -2.0, 0.0, 0.0, 0.25];
        for (got, want) in w.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{w:?}");
        }
        assert!(p.error_sq(0, &w) < 1e-9 * p.target_sq[0]);
    }
}
