//! New outgoing weights for the kept neurons (the seed's Eq. 6), and the baseline.
//!
//! The next layer computes `W X + b` from the full layer (`W`: `m x n`, `X`: `n x K`). With only
//! the kept neurons `S` it computes `W' X_S + b`, and `W'` (`m x p`) solves
//! `min ||X_S^T W'^T - X^T W^T||_F`: least squares over the training samples, bias unchanged.
//!
//! `K` (samples) is much larger than `n`, so [`Reconstructor`] factors `X^T = Q R` once (faer's
//! QR) and solves every `p` on the small `R` instead: since `Q` has orthonormal columns,
//! `||Q (R_S W'^T - R W^T)|| = ||R_S W'^T - R W^T||`, an `n x p` problem. The small problem is
//! solved with faer's SVD as a pseudo-inverse that ignores singular values below the rank
//! tolerance of [`super::selection`], so dependent kept neurons (possible when `p` exceeds the
//! rank, or in the baseline) get the minimum-norm solution instead of huge weights.
//!
//! With [`Reconstructor::with_bias_refit`] a constant neuron (always 1) joins every kept set,
//! and its solved weight is added to the next layer's bias: the bias then absorbs the mean
//! contribution of the dropped neurons. This departs from the seed (which keeps the bias) and
//! is off unless asked for.

use super::selection::rank_tolerance;
use super::EliminateError;
use faer::linalg::solvers::{Qr, Svd};
use faer::Mat;

/// A layer's activations reduced to `R` (with `R^T R = X X^T`) and the next layer's full
/// contribution `R W^T`.
#[derive(Clone, Debug)]
pub struct Reconstructor {
    /// `r x n`, `r = min(n, K)`.
    r: Mat<f64>,
    /// `r x m`.
    target: Mat<f64>,
    /// `||X^T W^T||_F`.
    target_norm: f64,
    /// Whether column `n` of `r` is the constant neuron.
    bias: bool,
}

/// Outgoing weights for a kept set and how well they reproduce the next layer's input.
#[derive(Clone, Debug)]
pub struct Solution {
    /// `m x p`: column `j` multiplies kept neuron `kept[j]`.
    pub weights: Mat<f64>,
    /// Added to the next layer's bias (`m`; zeros unless the bias is refitted).
    pub bias_shift: Vec<f64>,
    /// `||X_S^T W'^T - X^T W^T||_F / ||X^T W^T||_F` over the samples (0 when exact).
    pub relative_error: f64,
}

impl Reconstructor {
    /// `x`: activations (`n x K`); `next`: the next layer's weights (`m x n`).
    pub fn new(
        x: &Mat<f64>,
        next: &Mat<f64>,
        layer: &str,
    ) -> Result<Reconstructor, EliminateError> {
        Self::build(x, next, layer, false)
    }

    /// As [`Reconstructor::new`], also refitting the next layer's bias (see the module docs).
    pub fn with_bias_refit(
        x: &Mat<f64>,
        next: &Mat<f64>,
        layer: &str,
    ) -> Result<Reconstructor, EliminateError> {
        Self::build(x, next, layer, true)
    }

    fn build(
        x: &Mat<f64>,
        next: &Mat<f64>,
        layer: &str,
        bias: bool,
    ) -> Result<Reconstructor, EliminateError> {
        if next.ncols() != x.nrows() {
            return Err(EliminateError::Activations {
                layer: layer.to_string(),
                message: format!(
                    "{} neurons but the next layer reads {} inputs",
                    x.nrows(),
                    next.ncols()
                ),
            });
        }
        let n = x.nrows();
        let xt = Mat::from_fn(x.ncols(), n + bias as usize, |k, j| {
            if j < n {
                x[(j, k)]
            } else {
                1.0
            }
        });
        let next = Mat::from_fn(next.nrows(), xt.ncols(), |i, j| {
            if j < n {
                next[(i, j)]
            } else {
                0.0
            }
        });
        let r = if xt.nrows() >= xt.ncols() {
            Qr::new(xt.as_ref()).thin_R().to_owned()
        } else {
            // Fewer samples than neurons: X^T itself is already small.
            xt
        };
        let target = &r * next.transpose();
        let target_norm = target.norm_l2();
        Ok(Reconstructor {
            r,
            target,
            target_norm,
            bias,
        })
    }

    /// Least-squares outgoing weights for the neurons `kept`.
    pub fn solve(&self, kept: &[usize]) -> Solution {
        let columns = self.columns(kept);
        let m = self.target.ncols();
        if columns.is_empty() {
            return self.scored(kept, Mat::zeros(m, 0));
        }
        let a = Mat::from_fn(self.r.nrows(), columns.len(), |i, j| {
            self.r[(i, columns[j])]
        });
        let y = pseudo_solve(&a, &self.target);
        let p = kept.len();
        let weights = Mat::from_fn(m, p, |i, j| y[(j, i)]);
        let bias_shift: Vec<f64> = if self.bias {
            (0..m).map(|i| y[(p, i)]).collect()
        } else {
            vec![0.0; m]
        };
        self.residual(&columns, weights, bias_shift)
    }

    /// The error of given outgoing weights (`m x p`) for `kept`, bias unchanged, without
    /// solving.
    pub fn scored(&self, kept: &[usize], weights: Mat<f64>) -> Solution {
        let m = self.target.ncols();
        self.residual(&self.columns(kept), weights, vec![0.0; m])
    }

    /// Columns of `r` in play: the kept neurons, then the constant neuron if refitting.
    fn columns(&self, kept: &[usize]) -> Vec<usize> {
        let mut columns = kept.to_vec();
        if self.bias {
            columns.push(self.r.ncols() - 1);
        }
        columns
    }

    fn residual(&self, columns: &[usize], weights: Mat<f64>, bias_shift: Vec<f64>) -> Solution {
        let (m, p) = (weights.nrows(), weights.ncols());
        // Coefficients per column of r: the weights, then the bias shift for the constant.
        let y = Mat::from_fn(columns.len(), m, |j, i| {
            if j < p {
                weights[(i, j)]
            } else {
                bias_shift[i]
            }
        });
        let a = Mat::from_fn(self.r.nrows(), columns.len(), |i, j| {
            self.r[(i, columns[j])]
        });
        let residual = &a * &y - &self.target;
        let norm = residual.norm_l2();
        Solution {
            weights,
            bias_shift,
            relative_error: if self.target_norm > 0.0 {
                norm / self.target_norm
            } else {
                norm
            },
        }
    }
}

/// `argmin ||A Y - B||` by the SVD pseudo-inverse of `A`, dropping singular values below the
/// rank tolerance.
fn pseudo_solve(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    let svd = match Svd::new_thin(a.as_ref()) {
        Ok(svd) => svd,
        // Non-convergence only happens for non-finite input, which the caller has checked.
        Err(_) => return Mat::zeros(a.ncols(), b.ncols()),
    };
    let s = svd.S().column_vector();
    let s_max = if s.nrows() > 0 { s[0] } else { 0.0 };
    let tol = rank_tolerance(s_max, a.nrows(), a.ncols());
    let mut ut_b = svd.U().transpose() * b;
    for i in 0..ut_b.nrows() {
        let scale = if s[i] > tol { 1.0 / s[i] } else { 0.0 };
        for j in 0..ut_b.ncols() {
            ut_b[(i, j)] *= scale;
        }
    }
    svd.V() * ut_b
}

/// The baseline's choice: the `p` neurons with the largest outgoing-weight norm (columns of
/// `next`, `m x n`), in decreasing norm (ties to the lower index).
pub fn largest_outgoing(next: &Mat<f64>, p: usize) -> Vec<usize> {
    let norms: Vec<f64> = (0..next.ncols()).map(|j| next.col(j).norm_l2()).collect();
    let mut order: Vec<usize> = (0..next.ncols()).collect();
    order.sort_by(|&a, &b| norms[b].total_cmp(&norms[a]).then(a.cmp(&b)));
    order.truncate(p);
    order
}

/// The columns `kept` of `next`: the baseline's unchanged outgoing weights.
pub fn restrict(next: &Mat<f64>, kept: &[usize]) -> Mat<f64> {
    Mat::from_fn(next.nrows(), kept.len(), |i, j| next[(i, kept[j])])
}

#[cfg(test)]
mod tests {
    use super::super::selection::tests::noise;
    use super::super::selection::Decomposition;
    use super::*;

    #[test]
    fn dropped_linear_combinations_are_reproduced_exactly() {
        // 3 free neurons, 3 dependent ones; next layer 4 x 6.
        let base = noise(3, 80, 21);
        let x = Mat::from_fn(6, 80, |i, j| match i {
            0..=2 => base[(i, j)],
            3 => 2.0 * base[(0, j)] - base[(2, j)],
            4 => base[(1, j)],
            _ => 0.25 * base[(0, j)] + 0.75 * base[(1, j)],
        });
        let next = noise(4, 6, 9);
        let kept = Decomposition::new(&x, "fc").unwrap().representatives(3);
        let rec = Reconstructor::new(&x, &next, "fc").unwrap();
        let sol = rec.solve(&kept);
        assert!(sol.relative_error < 1e-10, "error {}", sol.relative_error);
        // Independently: the next layer's input on every sample, full vs simplified.
        let full = &next * &x;
        let x_kept = Mat::from_fn(3, 80, |i, j| x[(kept[i], j)]);
        let simplified = &sol.weights * &x_kept;
        let diff = (&full - &simplified).norm_max();
        assert!(diff < 1e-10 * full.norm_max(), "max difference {diff}");
    }

    #[test]
    fn known_answer_for_a_duplicated_neuron() {
        // Neuron 1 duplicates neuron 0: keeping 0, its new weight is the sum of both.
        let base = noise(2, 20, 4);
        let x = Mat::from_fn(3, 20, |i, j| {
            base[(if i == 1 { 0 } else { i - (i > 1) as usize }, j)]
        });
        let next = Mat::from_fn(2, 3, |i, j| (1 + i * 3 + j) as f64);
        let rec = Reconstructor::new(&x, &next, "fc").unwrap();
        let sol = rec.solve(&[0, 2]);
        let expected = [[1.0 + 2.0, 3.0], [4.0 + 5.0, 6.0]];
        for (i, row) in expected.iter().enumerate() {
            for (j, value) in row.iter().enumerate() {
                assert!(
                    (sol.weights[(i, j)] - value).abs() < 1e-10,
                    "{:?}",
                    sol.weights
                );
            }
        }
        assert!(sol.relative_error < 1e-12);
    }

    #[test]
    fn least_squares_beats_restriction_when_information_is_lost() {
        let x = noise(8, 100, 2);
        let next = noise(5, 8, 3);
        let kept = largest_outgoing(&next, 4);
        let rec = Reconstructor::new(&x, &next, "fc").unwrap();
        let solved = rec.solve(&kept);
        let restricted = rec.scored(&kept, restrict(&next, &kept));
        assert!(solved.relative_error > 0.0);
        assert!(solved.relative_error < restricted.relative_error);
        // Keeping everything is exact.
        let all: Vec<usize> = (0..8).collect();
        assert!(rec.solve(&all).relative_error < 1e-10);
    }

    #[test]
    fn bias_refit_absorbs_a_constant_dropped_neuron() {
        // Neuron 2 is always 3.0: dropping it costs 3 * W[:, 2], which the bias can absorb.
        let base = noise(2, 40, 6);
        let x = Mat::from_fn(3, 40, |i, k| if i < 2 { base[(i, k)] } else { 3.0 });
        let next = Mat::from_fn(2, 3, |i, j| (1 + i * 3 + j) as f64);
        let plain = Reconstructor::new(&x, &next, "fc").unwrap().solve(&[0, 1]);
        assert!(plain.relative_error > 0.1);
        assert_eq!(plain.bias_shift, vec![0.0, 0.0]);
        let refit = Reconstructor::with_bias_refit(&x, &next, "fc")
            .unwrap()
            .solve(&[0, 1]);
        assert!(refit.relative_error < 1e-10, "{}", refit.relative_error);
        assert!(
            (refit.bias_shift[0] - 9.0).abs() < 1e-9 && (refit.bias_shift[1] - 18.0).abs() < 1e-9
        );
        assert!((refit.weights[(1, 0)] - 4.0).abs() < 1e-9);
    }

    #[test]
    fn largest_outgoing_orders_by_column_norm() {
        let next = Mat::from_fn(2, 4, |i, j| {
            [[1.0, 0.0, 3.0, 1.0], [0.0, 0.5, 4.0, 1.0]][i][j]
        });
        assert_eq!(largest_outgoing(&next, 3), vec![2, 3, 0]);
    }

    #[test]
    fn fewer_samples_than_neurons() {
        let x = noise(6, 3, 8);
        let next = noise(2, 6, 1);
        let rec = Reconstructor::new(&x, &next, "fc").unwrap();
        let kept = Decomposition::new(&x, "fc").unwrap().representatives(3);
        assert!(rec.solve(&kept).relative_error < 1e-10);
    }

    #[test]
    fn mismatched_next_layer_is_an_error_naming_the_layer() {
        let e = Reconstructor::new(&noise(3, 5, 1), &noise(2, 4, 1), "fc7").unwrap_err();
        assert!(e.to_string().contains("fc7"), "{e}");
    }
}
