//! CONV (grouped and depthwise included) and FC: forward and backward on im2col + gemm,
//! rayon over the samples of the batch.

use super::activation_in_place;
use crate::kernels::{matmul, plain, transposed, with_scratch, ConvGeometry};
use joule_model::ops::{Activation, Conv};
use joule_model::LoopNest;
use rayon::prelude::*;

/// Samples per unit of parallel work in the backward pass.
const SAMPLES_PER_CHUNK: usize = 8;

fn geometry(conv: &Conv, nest: &LoopNest) -> ConvGeometry {
    ConvGeometry {
        c: nest.c,
        h: nest.h,
        w: nest.w,
        p: nest.p,
        q: nest.q,
        r: nest.r,
        s: nest.s,
        stride_h: nest.stride_h,
        stride_w: nest.stride_w,
        pad_top: conv.padding.top,
        pad_left: conv.padding.left,
        dilation_h: nest.dilation_h,
        dilation_w: nest.dilation_w,
    }
}

/// What follows a CONV or FC in the same pass over its ofmap, in this order: the bias, an
/// inference-mode batch norm as its per-channel affine map `v * scale + shift`
/// ([`batch_norm_affine`](super::batch_norm_affine)), an activation. Each step rounds as the
/// separate layer would, so fusing does not change a bit.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub affine: Option<(&'a [f32], &'a [f32])>,
    pub activation: Option<Activation>,
}

impl Epilogue<'_> {
    /// Applies the epilogue to the values of output channel `channel`.
    fn channel(&self, channel: usize, values: &mut [f32]) {
        if let Some(bias) = self.bias {
            let b = bias[channel];
            values.iter_mut().for_each(|v| *v += b);
        }
        if let Some((scale, shift)) = self.affine {
            let (k, b) = (scale[channel], shift[channel]);
            values.iter_mut().for_each(|v| *v = *v * k + b);
        }
        if let Some(act) = self.activation {
            activation_in_place(act, values);
        }
    }
}

/// `y = epilogue(conv(x, filter))` for the whole batch (`nest.n` samples).
pub fn conv_forward(
    conv: &Conv,
    nest: &LoopNest,
    x: &[f32],
    filter: &[f32],
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    let g = geometry(conv, nest);
    let (groups, m, pq) = (nest.groups, nest.m, nest.p * nest.q);
    let in_len = groups * g.c * g.h * g.w;
    let out_len = groups * m * pq;
    let filter_len = m * g.col_rows();
    let col_len = if g.is_pointwise() { 0 } else { g.col_len() };
    y.par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .for_each(|(yi, xi)| {
            with_scratch(col_len, |col| {
                for group in 0..groups {
                    let xg = &xi[group * g.c * g.h * g.w..(group + 1) * g.c * g.h * g.w];
                    let lowered: &[f32] = if g.is_pointwise() {
                        xg
                    } else {
                        g.im2col(xg, col);
                        col
                    };
                    let wg = &filter[group * filter_len..(group + 1) * filter_len];
                    let yg = &mut yi[group * m * pq..(group + 1) * m * pq];
                    matmul(
                        m,
                        pq,
                        g.col_rows(),
                        plain(wg),
                        plain(lowered),
                        yg,
                        false,
                        false,
                    );
                }
            });
            for (c, channel) in yi.chunks_mut(pq).enumerate() {
                epilogue.channel(c, channel);
            }
        });
}

/// Gradients of a convolution: accumulates into `d_filter` and `d_bias`, writes `dx` when
/// given (the first layer does not need it).
#[allow(clippy::too_many_arguments)]
pub fn conv_backward(
    conv: &Conv,
    nest: &LoopNest,
    x: &[f32],
    filter: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    d_filter: &mut [f32],
    d_bias: Option<&mut [f32]>,
) {
    let g = geometry(conv, nest);
    let (groups, m, pq) = (nest.groups, nest.m, nest.p * nest.q);
    let in_len = groups * g.c * g.h * g.w;
    let out_len = groups * m * pq;
    let filter_len = m * g.col_rows();
    let mut scratch_dx;
    let dx: &mut [f32] = match dx {
        Some(dx) => dx,
        None => {
            scratch_dx = Vec::new();
            &mut scratch_dx
        }
    };
    let want_dx = !dx.is_empty();
    let per_sample = |acc: &mut (Vec<f32>, Vec<f32>, Vec<f32>),
                      xi: &[f32],
                      dyi: &[f32],
                      dxi: Option<&mut [f32]>| {
        let (dw, col, dcol) = acc;
        let mut dxi = dxi;
        for group in 0..groups {
            let xg = &xi[group * g.c * g.h * g.w..(group + 1) * g.c * g.h * g.w];
            let dyg = &dyi[group * m * pq..(group + 1) * m * pq];
            let lowered: &[f32] = if g.is_pointwise() {
                xg
            } else {
                g.im2col(xg, col);
                col
            };
            let dwg = &mut dw[group * filter_len..(group + 1) * filter_len];
            // dW (M x CRS) += dY (M x PQ) * col^T (PQ x CRS)
            matmul(
                m,
                g.col_rows(),
                pq,
                plain(dyg),
                transposed(lowered),
                dwg,
                true,
                false,
            );
            if let Some(dxi) = dxi.as_deref_mut() {
                let wg = &filter[group * filter_len..(group + 1) * filter_len];
                let dxg = &mut dxi[group * g.c * g.h * g.w..(group + 1) * g.c * g.h * g.w];
                if g.is_pointwise() {
                    matmul(
                        g.col_rows(),
                        pq,
                        m,
                        transposed(wg),
                        plain(dyg),
                        dxg,
                        false,
                        false,
                    );
                } else {
                    // dcol (CRS x PQ) = W^T (CRS x M) * dY (M x PQ)
                    matmul(
                        g.col_rows(),
                        pq,
                        m,
                        transposed(wg),
                        plain(dyg),
                        dcol,
                        false,
                        false,
                    );
                    dxg.fill(0.0);
                    g.col2im(dcol, dxg);
                }
            }
        }
    };
    let init = || {
        let col = if g.is_pointwise() { 0 } else { g.col_len() };
        (
            vec![0.0f32; d_filter.len()],
            vec![0.0f32; col],
            vec![0.0f32; col],
        )
    };
    // Fixed chunks of samples, partial filter gradients summed in chunk order: the result
    // does not depend on how rayon schedules the chunks, so seeded runs repeat bit for bit.
    let partials: Vec<Vec<f32>> = if want_dx {
        dx.par_chunks_mut(in_len * SAMPLES_PER_CHUNK)
            .zip(x.par_chunks(in_len * SAMPLES_PER_CHUNK))
            .zip(dy.par_chunks(out_len * SAMPLES_PER_CHUNK))
            .map(|((dxc, xc), dyc)| {
                let mut acc = init();
                for ((dxi, xi), dyi) in dxc
                    .chunks_mut(in_len)
                    .zip(xc.chunks(in_len))
                    .zip(dyc.chunks(out_len))
                {
                    per_sample(&mut acc, xi, dyi, Some(dxi));
                }
                acc.0
            })
            .collect()
    } else {
        x.par_chunks(in_len * SAMPLES_PER_CHUNK)
            .zip(dy.par_chunks(out_len * SAMPLES_PER_CHUNK))
            .map(|(xc, dyc)| {
                let mut acc = init();
                for (xi, dyi) in xc.chunks(in_len).zip(dyc.chunks(out_len)) {
                    per_sample(&mut acc, xi, dyi, None);
                }
                acc.0
            })
            .collect()
    };
    for partial in &partials {
        for (a, b) in d_filter.iter_mut().zip(partial) {
            *a += b;
        }
    }
    if let Some(d_bias) = d_bias {
        for dyi in dy.chunks(out_len) {
            for (db, channel) in d_bias.iter_mut().zip(dyi.chunks(pq)) {
                *db += channel.iter().sum::<f32>();
            }
        }
    }
}

/// `y (N x M) = epilogue(x (N x K) * W^T)`, the epilogue's channels being the M outputs.
pub fn fc_forward(
    n: usize,
    k: usize,
    m: usize,
    x: &[f32],
    weight: &[f32],
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    matmul(n, m, k, plain(x), transposed(weight), y, false, true);
    for row in y.chunks_mut(m) {
        if let Some(bias) = epilogue.bias {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        }
        if let Some((scale, shift)) = epilogue.affine {
            row.iter_mut()
                .zip(scale.iter().zip(shift))
                .for_each(|(v, (k, b))| *v = *v * k + b);
        }
    }
    if let Some(act) = epilogue.activation {
        activation_in_place(act, y);
    }
}

/// FC gradients: `dW += dY^T x`, `db += sum dY`, `dx = dY W`.
#[allow(clippy::too_many_arguments)]
pub fn fc_backward(
    n: usize,
    k: usize,
    m: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    d_weight: &mut [f32],
    d_bias: Option<&mut [f32]>,
) {
    matmul(m, k, n, transposed(dy), plain(x), d_weight, true, true);
    if let Some(d_bias) = d_bias {
        for row in dy.chunks(m) {
            d_bias.iter_mut().zip(row).for_each(|(d, v)| *d += v);
        }
    }
    if let Some(dx) = dx {
        matmul(n, k, m, plain(dy), plain(weight), dx, false, true);
    }
}
