//! Sampled input patches of one layer and the normal-equation form of its output error.
//!
//! For a filter `m` of a group, a patch `x` (the `C/groups x R x S` ifmap window under one
//! output position, or an FC layer's whole input, plus a constant 1 for the bias) gives the
//! output `y_m = w_m . x`. Over `P` sampled patches with the reference outputs `Y`, the
//! squared output error of weights `w_m` is
//!
//! `e_m(w) = |y_m|^2 - 2 w . c_m + w' G w`, with `G = X'X` and `c_m = X'y_m`,
//!
//! so removal, restore and least squares all work on the small `G` and `C` instead of on
//! the patches.

use faer::Mat;
use joule_model::Op;
use joule_nn::{FeatureMap, Rng};

/// The output-error problem of one group of filters.
#[derive(Clone, Debug)]
pub struct GroupProblem {
    /// First filter (output channel) of the group.
    pub first_filter: usize,
    pub filters: usize,
    /// Weights per filter (`C/groups * R * S`, or the FC input size).
    pub weights_per_filter: usize,
    /// Whether a bias column (always kept, never pruned) follows the weights.
    pub bias: bool,
    /// `X'X`, of size `k x k` with `k = weights_per_filter + bias`.
    pub gram: Mat<f64>,
    /// `X'Y`: column `j` belongs to filter `first_filter + j`.
    pub cross: Mat<f64>,
    /// `|y_m|^2` per filter.
    pub target_sq: Vec<f64>,
}

impl GroupProblem {
    /// Columns of the patch matrix (weights plus the bias column).
    pub fn columns(&self) -> usize {
        self.weights_per_filter + self.bias as usize
    }

    /// Squared output error of filter `j` of the group with (full, bias-extended) weights `w`.
    pub fn error_sq(&self, j: usize, w: &[f64]) -> f64 {
        let k = self.columns();
        let nz: Vec<usize> = (0..k).filter(|&i| w[i] != 0.0).collect();
        let mut e = self.target_sq[j];
        for &a in &nz {
            e -= 2.0 * w[a] * self.cross[(a, j)];
            let mut row = 0.0;
            for &b in &nz {
                row += self.gram[(a, b)] * w[b];
            }
            e += w[a] * row;
        }
        e.max(0.0)
    }
}

/// Builds the problem of a CONV/FC layer from its current input `input`, the reference
/// output `target` (the layer's output in the reference network) and up to `max_patches`
/// output positions drawn with `rng` (every image is one patch for FC).
pub fn build(
    op: &Op,
    w_shape: &[usize],
    bias: bool,
    input: &FeatureMap,
    target: &FeatureMap,
    max_patches: usize,
    rng: &mut Rng,
) -> Vec<GroupProblem> {
    let x = input.shape;
    let y = target.shape;
    match op {
        Op::FullyConnected(_) => {
            let (m, k) = (w_shape[0], w_shape[1]);
            let rows: Vec<usize> = (0..x.n).collect();
            let patch = |n: usize, out: &mut [f64]| {
                for (o, v) in out.iter_mut().zip(&input.data[n * k..(n + 1) * k]) {
                    *o = *v as f64;
                }
            };
            let targets = |n: usize, f: usize| target.data[n * m + f] as f64;
            vec![assemble(0, m, k, bias, &rows, patch, targets)]
        }
        Op::Conv(conv) => {
            let (m, cg, r, s) = (w_shape[0], w_shape[1], w_shape[2], w_shape[3]);
            let groups = conv.groups.max(1);
            let m_per = m / groups;
            let positions = y.n * y.h * y.w;
            let mut chosen: Vec<usize> = (0..positions).collect();
            if positions > max_patches {
                rng.shuffle(&mut chosen);
                chosen.truncate(max_patches);
                chosen.sort_unstable();
            }
            (0..groups)
                .map(|g| {
                    let patch = |pos: usize, out: &mut [f64]| {
                        let (n, rest) = (pos / (y.h * y.w), pos % (y.h * y.w));
                        let (p, q) = (rest / y.w, rest % y.w);
                        let mut i = 0;
                        for ci in 0..cg {
                            let c = g * cg + ci;
                            let plane = &input.data[(n * x.c + c) * x.h * x.w..][..x.h * x.w];
                            for ri in 0..r {
                                let row = (p * conv.stride_h + ri * conv.dilation_h) as isize
                                    - conv.padding.top as isize;
                                for si in 0..s {
                                    let col = (q * conv.stride_w + si * conv.dilation_w) as isize
                                        - conv.padding.left as isize;
                                    let inside = row >= 0
                                        && row < x.h as isize
                                        && col >= 0
                                        && col < x.w as isize;
                                    out[i] = if inside {
                                        plane[row as usize * x.w + col as usize] as f64
                                    } else {
                                        0.0
                                    };
                                    i += 1;
                                }
                            }
                        }
                    };
                    let targets = |pos: usize, f: usize| {
                        let (n, rest) = (pos / (y.h * y.w), pos % (y.h * y.w));
                        target.data[(n * y.c + f) * y.h * y.w + rest] as f64
                    };
                    assemble(g * m_per, m_per, cg * r * s, bias, &chosen, patch, targets)
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

fn assemble(
    first_filter: usize,
    filters: usize,
    weights_per_filter: usize,
    bias: bool,
    rows: &[usize],
    patch: impl Fn(usize, &mut [f64]),
    target: impl Fn(usize, usize) -> f64,
) -> GroupProblem {
    let k = weights_per_filter + bias as usize;
    let mut xs = Mat::<f64>::zeros(rows.len(), k);
    let mut ys = Mat::<f64>::zeros(rows.len(), filters);
    let mut buffer = vec![0.0; weights_per_filter];
    for (i, &row) in rows.iter().enumerate() {
        patch(row, &mut buffer);
        for (j, v) in buffer.iter().enumerate() {
            xs[(i, j)] = *v;
        }
        if bias {
            xs[(i, weights_per_filter)] = 1.0;
        }
        for f in 0..filters {
            ys[(i, f)] = target(row, first_filter + f);
        }
    }
    let gram = xs.transpose() * &xs;
    let cross = xs.transpose() * &ys;
    let target_sq = (0..filters)
        .map(|f| (0..rows.len()).map(|i| ys[(i, f)] * ys[(i, f)]).sum())
        .collect();
    GroupProblem {
        first_filter,
        filters,
        weights_per_filter,
        bias,
        gram,
        cross,
        target_sq,
    }
}
