//! Choosing the representative neurons of a layer (the seed's Algorithm 2).
//!
//! `X` holds a layer's activations, one row per neuron and one column per training sample
//! (`n x K`). Its SVD `X = U S V^T` gives the numerical rank and the dominant left singular
//! vectors; a QR factorisation with column pivoting of `U_p^T` (`p x n`, one column per
//! neuron) picks, greedily, the `p` neurons whose rows of `X` best span the top-`p` subspace
//! (Chan's rank-revealing QR). faer does the SVD and the pivoted QR.
//!
//! # Rank tolerance
//!
//! A singular value counts towards the rank when it exceeds
//! `s_max * max(n, K) * f32::EPSILON`: the usual `matrix_rank` rule, with the epsilon of the
//! data rather than of the `f64` arithmetic, because the activations come from an `f32`
//! forward pass. Exactly duplicated or dead (all-zero) neurons give singular values at the
//! `f64` round-off level, far below it; two neurons that differ only by `f32` noise count
//! once.

use super::EliminateError;
use faer::linalg::solvers::{ColPivQr, Svd};
use faer::Mat;

/// The SVD of a layer's activation matrix, reused for every `p`.
#[derive(Clone, Debug)]
pub struct Decomposition {
    /// `n x min(n, K)`: left singular vectors, by decreasing singular value.
    u: Mat<f64>,
    /// Singular values, decreasing.
    pub singular_values: Vec<f64>,
    /// Numerical rank (see the module docs for the tolerance).
    pub rank: usize,
    /// The tolerance the rank was measured with.
    pub tolerance: f64,
}

/// The rank tolerance for singular values of an `n x k` matrix whose largest is `s_max`.
pub fn rank_tolerance(s_max: f64, n: usize, k: usize) -> f64 {
    s_max * n.max(k) as f64 * f32::EPSILON as f64
}

impl Decomposition {
    /// Decomposes `x` (neurons x samples). `layer` names the layer in errors.
    pub fn new(x: &Mat<f64>, layer: &str) -> Result<Decomposition, EliminateError> {
        let (n, k) = (x.nrows(), x.ncols());
        if n == 0 || k == 0 {
            return Err(EliminateError::Activations {
                layer: layer.to_string(),
                message: format!("activation matrix is {n} x {k}"),
            });
        }
        if x.col_iter().flat_map(|c| c.iter()).any(|v| !v.is_finite()) {
            return Err(EliminateError::Activations {
                layer: layer.to_string(),
                message: "activations contain NaN or infinity".into(),
            });
        }
        let svd = Svd::new_thin(x.as_ref()).map_err(|e| EliminateError::Activations {
            layer: layer.to_string(),
            message: format!("SVD did not converge: {e:?}"),
        })?;
        let s = svd.S().column_vector();
        let singular_values: Vec<f64> = (0..s.nrows()).map(|i| s[i]).collect();
        let s_max = singular_values.first().copied().unwrap_or(0.0);
        let tolerance = rank_tolerance(s_max, n, k);
        let rank = singular_values.iter().filter(|&&v| v > tolerance).count();
        Ok(Decomposition {
            u: svd.U().to_owned(),
            singular_values,
            rank,
            tolerance,
        })
    }

    /// Number of neurons (rows of `X`).
    pub fn neurons(&self) -> usize {
        self.u.nrows()
    }

    /// The `p` representative neurons: the first `p` column pivots of a QR of `U_p^T`,
    /// in pivot order (most representative first). `p` is clamped to `1..=neurons`.
    pub fn representatives(&self, p: usize) -> Vec<usize> {
        let n = self.neurons();
        let p = p.clamp(1, n.min(self.u.ncols()));
        let u_p_t = self.u.get(.., ..p).transpose().to_owned();
        let qr = ColPivQr::new(u_p_t.as_ref());
        let (forward, _) = qr.P().arrays();
        forward[..p].to_vec()
    }
}

/// Representative rows of `x` for `p` (Algorithm 2 in one call).
pub fn representative_rows(
    x: &Mat<f64>,
    p: usize,
    layer: &str,
) -> Result<Vec<usize>, EliminateError> {
    Ok(Decomposition::new(x, layer)?.representatives(p))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix (xorshift), values in [-1, 1).
    pub(crate) fn noise(rows: usize, cols: usize, seed: u64) -> Mat<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Mat::from_fn(rows, cols, |_, _| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
    }

    #[test]
    fn rank_deficient_x_gives_p_equal_to_rank() {
        // 6 neurons built from 3 independent ones: rank 3.
        let base = noise(3, 50, 7);
        let mix = [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [2.0, -1.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.0, 3.0, -2.0],
        ];
        let x = Mat::from_fn(6, 50, |i, j| (0..3).map(|k| mix[i][k] * base[(k, j)]).sum());
        let d = Decomposition::new(&x, "fc1").unwrap();
        assert_eq!(d.rank, 3);
        assert!(d.singular_values[2] > 100.0 * d.tolerance);
        assert!(d.singular_values[3] < d.tolerance);
    }

    #[test]
    fn full_rank_and_zero_rows() {
        let mut x = noise(5, 40, 3);
        assert_eq!(Decomposition::new(&x, "l").unwrap().rank, 5);
        // A dead neuron (all zeros) does not count.
        for j in 0..40 {
            x[(2, j)] = 0.0;
        }
        let d = Decomposition::new(&x, "l").unwrap();
        assert_eq!(d.rank, 4);
        assert!(
            !d.representatives(4).contains(&2),
            "a dead neuron is never representative"
        );
    }

    #[test]
    fn pivots_pick_independent_neurons() {
        // Rows 0..3 independent; row 3 = row 0, row 4 = row 1 + row 2, row 5 = 0.
        let base = noise(3, 30, 11);
        let x = Mat::from_fn(6, 30, |i, j| match i {
            0..=2 => base[(i, j)],
            3 => base[(0, j)],
            4 => base[(1, j)] + base[(2, j)],
            _ => 0.0,
        });
        let d = Decomposition::new(&x, "fc").unwrap();
        assert_eq!(d.rank, 3);
        let kept = d.representatives(3);
        assert_eq!(kept.len(), 3);
        // The kept rows must span the row space: their 3x3 Gram determinant is non-zero.
        let rows = Mat::from_fn(3, 30, |i, j| x[(kept[i], j)]);
        let s = Decomposition::new(&rows, "kept").unwrap();
        assert_eq!(s.rank, 3, "kept {kept:?} are dependent");
        // Never both a row and its duplicate.
        assert!(!(kept.contains(&0) && kept.contains(&3)), "kept {kept:?}");
        assert!(!kept.contains(&5));
    }

    #[test]
    fn pivots_rank_a_dominant_neuron_first() {
        // One neuron with far larger, independent activity than the others.
        let mut x = noise(4, 25, 5);
        for j in 0..25 {
            x[(2, j)] *= 100.0;
        }
        let d = Decomposition::new(&x, "fc").unwrap();
        assert_eq!(d.representatives(1), vec![2]);
    }

    #[test]
    fn empty_and_non_finite_activations_are_errors_naming_the_layer() {
        let e = Decomposition::new(&Mat::zeros(0, 3), "fc9").unwrap_err();
        assert!(e.to_string().contains("fc9"), "{e}");
        let mut x = noise(2, 3, 1);
        x[(1, 1)] = f64::NAN;
        let e = Decomposition::new(&x, "fc2").unwrap_err().to_string();
        assert!(e.contains("fc2") && e.contains("NaN"), "{e}");
    }
}
