//! Max, average and global pooling, forward and backward. Max pooling remembers the index
//! of each window's maximum for the backward pass.

use joule_model::ops::{Pool, PoolKind};
use joule_model::Shape;
use rayon::prelude::*;

/// Forward windowed pooling; returns the argmax indices (into the sample's ifmap) for max
/// pooling, empty for average pooling.
pub fn pool_forward(
    pool: &Pool,
    x_shape: Shape,
    y_shape: Shape,
    x: &[f32],
    y: &mut [f32],
) -> Vec<u32> {
    let max = pool.kind == PoolKind::Max;
    let mut argmax = vec![0u32; if max { y.len() } else { 0 }];
    let windows = Windows::new(pool, x_shape, y_shape);
    let (in_len, out_len) = (x_shape.per_sample(), y_shape.per_sample());
    if max {
        y.par_chunks_mut(out_len)
            .zip(x.par_chunks(in_len))
            .zip(argmax.par_chunks_mut(out_len))
            .for_each(|((yi, xi), ai)| windows.sample(pool, xi, yi, Some(ai)));
    } else {
        pool_inference(pool, x_shape, y_shape, x, y);
    }
    argmax
}

/// Forward windowed pooling without the bookkeeping the backward pass needs.
pub fn pool_inference(pool: &Pool, x_shape: Shape, y_shape: Shape, x: &[f32], y: &mut [f32]) {
    let windows = Windows::new(pool, x_shape, y_shape);
    let (in_len, out_len) = (x_shape.per_sample(), y_shape.per_sample());
    y.par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .for_each(|(yi, xi)| windows.sample(pool, xi, yi, None));
}

/// The windows of a pooling layer, computed once per call: for every output row and column,
/// the ifmap span it covers and its size counting padding.
struct Windows {
    channels: usize,
    h: usize,
    w: usize,
    rows: Vec<(usize, usize, usize)>,
    columns: Vec<(usize, usize, usize)>,
}

impl Windows {
    fn new(pool: &Pool, x_shape: Shape, y_shape: Shape) -> Windows {
        let (h, w) = (x_shape.h, x_shape.w);
        let rows = (0..y_shape.h)
            .map(|oy| {
                span(
                    oy,
                    pool.stride_h,
                    pool.padding.top,
                    pool.padding.bottom,
                    pool.kernel_h,
                    h,
                )
            })
            .collect();
        let columns = (0..y_shape.w)
            .map(|ox| {
                span(
                    ox,
                    pool.stride_w,
                    pool.padding.left,
                    pool.padding.right,
                    pool.kernel_w,
                    w,
                )
            })
            .collect();
        Windows {
            channels: x_shape.c,
            h,
            w,
            rows,
            columns,
        }
    }

    /// Whether every window is a whole 2x2 block of the ifmap (kernel 2, stride 2, no
    /// padding reached).
    fn is_two_by_two(&self, pool: &Pool) -> bool {
        let whole = |spans: &[(usize, usize, usize)]| {
            spans
                .iter()
                .enumerate()
                .all(|(o, &(a, b, padded))| a == 2 * o && b == a + 2 && padded == 2)
        };
        pool.kernel_h == 2 && pool.kernel_w == 2 && whole(&self.rows) && whole(&self.columns)
    }

    /// Max pooling over whole 2x2 blocks, without argmax: the same comparisons in the same
    /// order as the general loop, as selects.
    fn max_two_by_two(&self, xi: &[f32], yi: &mut [f32]) {
        let (h, w) = (self.h, self.w);
        let q = self.columns.len();
        let larger = |best: f32, v: f32| if v > best { v } else { best };
        for (plane, out) in xi
            .chunks_exact(h * w)
            .zip(yi.chunks_exact_mut(self.rows.len() * q))
        {
            for (oy, out_row) in out.chunks_exact_mut(q).enumerate() {
                let top = &plane[2 * oy * w..2 * oy * w + 2 * q];
                let bottom = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * q];
                for ((v, t), b) in out_row
                    .iter_mut()
                    .zip(top.chunks_exact(2))
                    .zip(bottom.chunks_exact(2))
                {
                    let best = larger(larger(f32::NEG_INFINITY, t[0]), t[1]);
                    *v = larger(larger(best, b[0]), b[1]);
                }
            }
        }
    }

    /// Pools one sample `xi` into `yi`, recording each window's first maximum in `ai` when
    /// given.
    fn sample(&self, pool: &Pool, xi: &[f32], yi: &mut [f32], mut ai: Option<&mut [u32]>) {
        let (h, w) = (self.h, self.w);
        let (p, q) = (self.rows.len(), self.columns.len());
        let outer = |(y0, y1, _): (usize, usize, usize), (x0, x1, _): (usize, usize, usize)| {
            (y0, y1.max(y0), x0, x1.max(x0))
        };
        if ai.is_none() && pool.kind == PoolKind::Max && self.is_two_by_two(pool) {
            self.max_two_by_two(xi, yi);
            return;
        }
        for c in 0..self.channels {
            let plane = &xi[c * h * w..(c + 1) * h * w];
            for (oy, &row) in self.rows.iter().enumerate() {
                let out_row = &mut yi[(c * p + oy) * q..(c * p + oy + 1) * q];
                for (ox, (out, &column)) in out_row.iter_mut().zip(&self.columns).enumerate() {
                    let (y0, y1, x0, x1) = outer(row, column);
                    if pool.kind == PoolKind::Max {
                        let mut best = f32::NEG_INFINITY;
                        let mut at = y0 * w + x0;
                        for iy in y0..y1 {
                            for (ix, &v) in plane[iy * w + x0..iy * w + x1].iter().enumerate() {
                                if v > best {
                                    best = v;
                                    at = iy * w + x0 + ix;
                                }
                            }
                        }
                        *out = best;
                        if let Some(ai) = ai.as_deref_mut() {
                            ai[(c * p + oy) * q + ox] = (c * h * w + at) as u32;
                        }
                    } else {
                        let mut sum = 0.0;
                        for iy in y0..y1 {
                            for &v in &plane[iy * w + x0..iy * w + x1] {
                                sum += v;
                            }
                        }
                        let count = if pool.count_include_pad {
                            row.2 * column.2
                        } else {
                            (y1 - y0) * (x1 - x0)
                        };
                        *out = sum / count.max(1) as f32;
                    }
                }
            }
        }
    }
}

/// Along one axis: the ifmap span `start..end` that output `o`'s window covers (clipped to the
/// ifmap; `end` may fall below `start` when the window lies in the padding) and the window's
/// size counting padding.
fn span(
    o: usize,
    stride: usize,
    pad: usize,
    pad_end: usize,
    k: usize,
    size: usize,
) -> (usize, usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let end = (start + k as isize).min((size + pad_end) as isize);
    let padded = (end - start) as usize;
    (
        start.max(0) as usize,
        (end.max(0) as usize).min(size),
        padded,
    )
}

/// The ifmap rows `y0..y1` and columns `x0..x1` that window (oy, ox) covers, and the size of
/// the window counting padding (clipped to the padded ifmap, as ONNX and PyTorch do).
fn window(
    pool: &Pool,
    oy: usize,
    ox: usize,
    h: usize,
    w: usize,
) -> (usize, usize, usize, usize, usize) {
    let (y0, y1, ph) = span(
        oy,
        pool.stride_h,
        pool.padding.top,
        pool.padding.bottom,
        pool.kernel_h,
        h,
    );
    let (x0, x1, pw) = span(
        ox,
        pool.stride_w,
        pool.padding.left,
        pool.padding.right,
        pool.kernel_w,
        w,
    );
    (y0, y1.max(y0), x0, x1.max(x0), ph * pw)
}

/// Backward windowed pooling: writes `dx` (zeroed here).
pub fn pool_backward(
    pool: &Pool,
    x_shape: Shape,
    y_shape: Shape,
    argmax: &[u32],
    dy: &[f32],
    dx: &mut [f32],
) {
    let (h, w, p, q) = (x_shape.h, x_shape.w, y_shape.h, y_shape.w);
    let in_len = x_shape.per_sample();
    let out_len = y_shape.per_sample();
    dx.par_chunks_mut(in_len)
        .zip(dy.par_chunks(out_len))
        .enumerate()
        .for_each(|(n, (dxi, dyi))| {
            dxi.fill(0.0);
            if pool.kind == PoolKind::Max {
                let ai = &argmax[n * out_len..(n + 1) * out_len];
                for (g, &at) in dyi.iter().zip(ai) {
                    dxi[at as usize] += g;
                }
                return;
            }
            for c in 0..x_shape.c {
                for oy in 0..p {
                    for ox in 0..q {
                        let (y0, y1, x0, x1, padded) = window(pool, oy, ox, h, w);
                        let count = if pool.count_include_pad {
                            padded
                        } else {
                            (y1 - y0) * (x1 - x0)
                        };
                        let g = dyi[c * p * q + oy * q + ox] / count.max(1) as f32;
                        for iy in y0..y1 {
                            for ix in x0..x1 {
                                dxi[c * h * w + iy * w + ix] += g;
                            }
                        }
                    }
                }
            }
        });
}

/// Global pooling over H x W; returns argmax (plane offsets) for max.
pub fn global_pool_forward(kind: PoolKind, x_shape: Shape, x: &[f32], y: &mut [f32]) -> Vec<u32> {
    let hw = x_shape.h * x_shape.w;
    let mut argmax = Vec::new();
    for (plane, out) in x.chunks(hw).zip(y.iter_mut()) {
        match kind {
            PoolKind::Average => *out = plane.iter().sum::<f32>() / hw as f32,
            PoolKind::Max => {
                let (at, best) =
                    plane
                        .iter()
                        .enumerate()
                        .fold(
                            (0, f32::NEG_INFINITY),
                            |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                        );
                *out = best;
                argmax.push(at as u32);
            }
        }
    }
    argmax
}

pub fn global_pool_backward(
    kind: PoolKind,
    x_shape: Shape,
    argmax: &[u32],
    dy: &[f32],
    dx: &mut [f32],
) {
    let hw = x_shape.h * x_shape.w;
    for (i, (plane, g)) in dx.chunks_mut(hw).zip(dy).enumerate() {
        match kind {
            PoolKind::Average => plane.iter_mut().for_each(|v| *v = g / hw as f32),
            PoolKind::Max => {
                plane.fill(0.0);
                plane[argmax[i] as usize] = *g;
            }
        }
    }
}
