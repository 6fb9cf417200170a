//! Training's batch norm, ReLU and 2x2 max pooling as one pass over the batch-norm input.
//!
//! Run node by node, each of the three reads and writes the whole activation tensor in
//! forward and backward: in vgg-small at batch 64 they were 17 ms of a 54 ms step (2
//! threads), memory-bound at 10-13 GB/s. Fused, the forward pass reads the batch-norm input
//! twice (statistics, then the outputs) and writes only the pooled output and its argmax;
//! the backward pass writes the ReLU's input gradient in one pass (the pooled gradient at
//! its argmax, masked where the output is positive), which batch norm's backward reads
//! (under a pooling, never written whole: see [`batch_norm_relu_pool_backward`]).
//! Neither the batch norm's nor the ReLU's output is kept. Without a batch norm before, a
//! ReLU and its pooling run the same way ([`relu_pool_train`], [`relu_pool_backward`]).
//!
//! Every value is computed by the same operations as the node-by-node layers, in the same
//! order: the results are the same bits (tests compare them), but for the batch norm's
//! gradient sums under a pooling, which add the same terms in another order (over the
//! pooled tensors, [`batch_norm_relu_pool_backward`]): the gradients there are within a few
//! roundings of the layers', and the same on any number of threads.

use super::norm::{
    batch_norm_backward_planes, batch_norm_train_planes, channel_sums, normalise, BatchNormCache,
    InputGradient, PLANES_PER_TASK,
};
use super::pool::max_two_by_two_at;
use super::ELEMENTS_A_TASK;
use crate::buffers;
use crate::kernels::wide;
use joule_model::Shape;
use rayon::prelude::*;

/// A training batch norm's parameters: `scale`, `bias` and its running statistics, which a
/// forward pass updates in place.
pub struct BatchNormParams<'a> {
    pub eps: f32,
    pub scale: &'a [f32],
    pub bias: &'a [f32],
    pub running: (&'a mut [f32], &'a mut [f32]),
}

/// `y = relu(batch_norm(x))` with the batch statistics, which it returns.
pub fn batch_norm_relu_train(
    shape: Shape,
    bn: BatchNormParams,
    x: &[f32],
    y: &mut [f32],
) -> BatchNormCache {
    let planes = y.chunks_mut(shape.h * shape.w).collect();
    let (scale, bias) = (bn.scale, bn.bias);
    batch_norm_train_planes(shape, bn.eps, bn.running, x, planes, |c, x, m, k, y, _| {
        let (s, b) = (scale[c], bias[c]);
        wide(
            #[inline(always)]
            || {
                for (x, y) in x.iter().zip(y.iter_mut()) {
                    *y = normalise(*x, m, k, s, b).max(0.0);
                }
            },
        )
    })
}

/// What [`batch_norm_relu_pool_train`] keeps for the backward pass besides the batch
/// statistics: per pooled output, the index of its maximum in the sample (as
/// [`super::pool_forward`] returns it) and the batch norm's input there. With the latter the
/// backward pass sums the gradient against the normalised input from pooled-size tensors
/// alone: the input gradient is zero but at the maxima.
#[derive(Clone, Debug, PartialEq)]
pub struct PooledCache {
    pub argmax: Vec<u32>,
    pub x_at: Vec<f32>,
}

/// `y = max_pool_2x2(relu(batch_norm(x)))` with the batch statistics, over whole 2x2 blocks
/// (`pooled` is `y`'s shape; the last row and column of an odd plane are dropped). Returns
/// the statistics and the maxima's places and inputs ([`PooledCache`]).
pub fn batch_norm_relu_pool_train(
    shape: Shape,
    pooled: Shape,
    bn: BatchNormParams,
    x: &[f32],
    y: &mut [f32],
) -> (BatchNormCache, PooledCache) {
    let (hw, pq) = (shape.h * shape.w, pooled.h * pooled.w);
    let mut argmax = vec![0u32; y.len()];
    let mut x_at = buffers::overwritten(y.len());
    let planes = y
        .chunks_mut(pq)
        .zip(argmax.chunks_mut(pq))
        .zip(x_at.chunks_mut(pq))
        .collect();
    let (scale, bias) = (bn.scale, bn.bias);
    let cache = batch_norm_train_planes(
        shape,
        bn.eps,
        bn.running,
        x,
        planes,
        |c, x, m, k, ((y, at), x_at), relu| {
            let (s, b) = (scale[c], bias[c]);
            wide(
                #[inline(always)]
                || {
                    for (x, r) in x.iter().zip(relu.iter_mut()) {
                        *r = normalise(*x, m, k, s, b).max(0.0);
                    }
                },
            );
            let (out, also) = ((&mut **y, &mut **at), Some((x, &mut **x_at)));
            max_two_by_two_at(relu, shape.w, pooled.w, c * hw, out, also);
        },
    );
    (cache, PooledCache { argmax, x_at })
}

/// Backward through [`batch_norm_relu_train`]: `y` is what it wrote, `dy` the gradient of `y`;
/// `dx` (when the input wants one) written, `d_scale` and `d_bias` accumulated. The ReLU's
/// input gradient is masked by `y > 0` (where the batch norm's output is positive) in one
/// pass, then the batch norm's backward runs on it.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_relu_backward(
    shape: Shape,
    scale: &[f32],
    cache: &BatchNormCache,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    d_scale: &mut [f32],
    d_bias: &mut [f32],
) {
    let mut dz = buffers::overwritten(dy.len());
    dz.par_chunks_mut(ELEMENTS_A_TASK)
        .zip(dy.par_chunks(ELEMENTS_A_TASK))
        .zip(y.par_chunks(ELEMENTS_A_TASK))
        .for_each(|((dz, dy), y)| {
            wide(
                #[inline(always)]
                || {
                    for ((d, g), y) in dz.iter_mut().zip(dy).zip(y) {
                        *d = g * (*y > 0.0) as u8 as f32;
                    }
                },
            )
        });
    batch_norm_backward_planes(shape, scale, cache, x, &dz, dx, d_scale, d_bias);
    buffers::recycle(dz);
}

/// Backward through [`batch_norm_relu_pool_train`]: `y` and `kept` are what it returned,
/// `dy` the gradient of `y`; otherwise as [`batch_norm_relu_backward`]. The gradient of the
/// batch norm's output is each pooled output's gradient where its maximum lay (onto zero,
/// as [`super::pool_backward`] adds it), masked by the ReLU where `y > 0`, and zero
/// elsewhere; it is never written whole. The batch norm's sums run over the pooled tensors
/// (with `kept`'s inputs at the maxima), and its input gradient is written a plane at a
/// time, everywhere as for a zero gradient, then again at the maxima. Through the whole
/// gradient, at batch 256 vgg-small's first layer wrote 26 MB and read 77 MB more.
///
/// The sums add the same terms as the layers' (those of the zero gradient are zero) in
/// another order: `dx`, `d_scale` and `d_bias` differ from theirs in the last bits, and
/// are the same on any number of threads.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_relu_pool_backward(
    shape: Shape,
    pooled: Shape,
    scale: &[f32],
    cache: &BatchNormCache,
    x: &[f32],
    y: &[f32],
    kept: &PooledCache,
    dy: &[f32],
    dx: Option<&mut [f32]>,
    d_scale: &mut [f32],
    d_bias: &mut [f32],
) {
    let (hw, pq) = (shape.h * shape.w, pooled.h * pooled.w);
    let len = pooled.elements() as usize;
    assert!(dy.len() >= len && y.len() >= len && x.len() >= shape.elements() as usize);
    assert!(kept.argmax.len() >= len && kept.x_at.len() >= len);
    let (mean, inv_std) = (&cache.mean, &cache.inv_std);
    let sums = channel_sums(shape, pq, |c, i, lanes| {
        let at = i * pq..(i + 1) * pq;
        let (dy, y, x) = (&dy[at.clone()], &y[at.clone()], &kept.x_at[at]);
        pooled_gradient_sums((dy, y, x), mean[c], inv_std[c], lanes)
    });
    for (c, (sum_dy, sum_dy_xhat)) in sums.iter().enumerate() {
        d_scale[c] += sum_dy_xhat;
        d_bias[c] += sum_dy;
    }
    let Some(dx) = dx else { return };
    let count = (shape.n * hw) as f32;
    dx[..shape.elements() as usize]
        .par_chunks_mut(hw)
        .zip(x.par_chunks(hw))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each(|(i, (dxc, xc))| {
            let c = i % shape.c;
            let dx = InputGradient::of(c, scale, cache, count, &sums);
            let at = i * pq..(i + 1) * pq;
            let (dy, y, argmax) = (&dy[at.clone()], &y[at.clone()], &kept.argmax[at]);
            let base = c * hw;
            wide(
                #[inline(always)]
                || {
                    // For a zero output gradient first, then at the maxima.
                    for (x, d) in xc.iter().zip(dxc.iter_mut()) {
                        *d = dx.at(0.0, *x);
                    }
                    for ((g, y), a) in dy.iter().zip(y).zip(argmax) {
                        let j = *a as usize - base;
                        dxc[j] = dx.at(masked(*g, *y), xc[j]);
                    }
                },
            )
        });
}

/// `lanes[0][l] += g`, `lanes[1][l] += g ((x - mean) inv_std)` for the masked gradients `g =
/// (0 + dy) (y > 0)` and inputs `x` of one plane's pooled outputs at `l` mod 8 (as the
/// layers' sums do over the whole gradient, whose other values are zero).
fn pooled_gradient_sums(
    (dy, y, x): (&[f32], &[f32], &[f32]),
    mean: f32,
    inv_std: f32,
    [s, t]: &mut [[f32; 8]; 2],
) {
    wide(
        #[inline(always)]
        || {
            for ((dy, y), x) in dy.chunks(8).zip(y.chunks(8)).zip(x.chunks(8)) {
                for (l, ((g, y), x)) in dy.iter().zip(y).zip(x).enumerate() {
                    let g = masked(*g, *y);
                    s[l] += g;
                    t[l] += g * ((x - mean) * inv_std);
                }
            }
        },
    )
}

/// `y = max_pool_2x2(relu(x))` over whole 2x2 blocks (`pooled` is `y`'s shape; the last
/// row and column of an odd plane are dropped), with no batch norm before: each plane's
/// ReLU into scratch, pooled from there. Returns, per output, the index of its maximum in
/// the sample, as [`super::pool_forward`] does. The ReLU's output is not kept: node by node
/// it was two more passes over the whole tensor, forward and backward (LeNet-5's first
/// layer at batch 256: 4.8 MB).
pub fn relu_pool_train(shape: Shape, pooled: Shape, x: &[f32], y: &mut [f32]) -> Vec<u32> {
    let (hw, pq) = (shape.h * shape.w, pooled.h * pooled.w);
    assert!(x.len() >= shape.elements() as usize && y.len() >= pooled.elements() as usize);
    let mut argmax = vec![0u32; pooled.elements() as usize];
    y[..argmax.len()]
        .par_chunks_mut(pq)
        .zip(argmax.par_chunks_mut(pq))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each_init(
            || vec![0f32; hw],
            |relu, (i, (y, at))| {
                let x = &x[i * hw..(i + 1) * hw];
                wide(
                    #[inline(always)]
                    || {
                        for (x, r) in x.iter().zip(relu.iter_mut()) {
                            *r = x.max(0.0);
                        }
                    },
                );
                max_two_by_two_at(relu, shape.w, pooled.w, (i % shape.c) * hw, (y, at), None);
            },
        );
    argmax
}

/// Backward through [`relu_pool_train`]: `y` and `argmax` are what it returned, `dy` the
/// gradient of `y`; `dx` (the ReLU's input gradient) written whole, in one pass.
pub fn relu_pool_backward(
    shape: Shape,
    pooled: Shape,
    y: &[f32],
    argmax: &[u32],
    dy: &[f32],
    dx: &mut [f32],
) {
    route_to_argmax(shape, pooled, y, argmax, dy, dx)
}

/// The ReLU's input gradient under a whole-2x2 max pooling, written whole into `dz`: each
/// pooled output's gradient goes to where its maximum lay (onto zero, as
/// [`super::pool_backward`] adds it), masked by the ReLU where `y > 0` (`y` is the ReLU's
/// output there).
fn route_to_argmax(
    shape: Shape,
    pooled: Shape,
    y: &[f32],
    argmax: &[u32],
    dy: &[f32],
    dz: &mut [f32],
) {
    let (h, w, p, q) = (shape.h, shape.w, pooled.h, pooled.w);
    let planes = shape.elements() as usize / (h * w).max(1);
    assert!(dz.len() >= planes * h * w && dy.len() >= planes * p * q);
    assert!(y.len() >= planes * p * q && argmax.len() >= planes * p * q);
    dz[..planes * h * w]
        .par_chunks_mut(h * w)
        .zip(dy.par_chunks(p * q))
        .zip(y.par_chunks(p * q))
        .zip(argmax.par_chunks(p * q))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each(|(i, (((dz, dy), y), argmax))| {
            let base = (i % shape.c) * h * w;
            // Rows and columns no window reads (the last of an odd plane) have no gradient.
            dz[2 * p * w..].fill(0.0);
            for oy in 0..p {
                let (top, bottom) = dz[2 * oy * w..(2 * oy + 2) * w].split_at_mut(w);
                top[2 * q..].fill(0.0);
                bottom[2 * q..].fill(0.0);
                let row = base + 2 * oy * w;
                let outputs = oy * q..(oy + 1) * q;
                let windows = dy[outputs.clone()]
                    .iter()
                    .zip(&y[outputs.clone()])
                    .zip(&argmax[outputs])
                    .zip(top.chunks_exact_mut(2).zip(bottom.chunks_exact_mut(2)))
                    .enumerate();
                for (ox, (((g, y), at), (top, bottom))) in windows {
                    let g = masked(*g, *y);
                    let at = *at as usize - row - 2 * ox;
                    let pick = |k: usize| if at == k { g } else { 0.0 };
                    top.copy_from_slice(&[pick(0), pick(1)]);
                    bottom.copy_from_slice(&[pick(w), pick(w + 1)]);
                }
            }
        });
}

/// A pooled output's gradient as it reaches its maximum: onto zero (as
/// [`super::pool_backward`] adds it), masked by the ReLU where its output `y` is positive.
#[inline(always)]
fn masked(g: f32, y: f32) -> f32 {
    (0.0 + g) * (y > 0.0) as u8 as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{
        activation_backward, activation_forward, batch_norm_backward, batch_norm_train,
        pool_backward, pool_forward,
    };
    use joule_model::ops::{Activation, Pool};

    /// Values in steps of 0.25 around zero, so that a quarter of the batch norm's outputs
    /// are negative and windows hold equal values (the first of equals must win).
    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 23) as f32 * 0.25 - 1.5)
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The node-by-node layers' results: batch norm (with its cache and running statistics),
    /// ReLU, then 2x2 max pooling when `pooled` is given; backward from `dy`.
    struct Unfused {
        y: Vec<f32>,
        argmax: Vec<u32>,
        cache: BatchNormCache,
        running: (Vec<f32>, Vec<f32>),
        dx: Vec<f32>,
        d_scale: Vec<f32>,
        d_bias: Vec<f32>,
    }

    fn unfused(
        shape: Shape,
        pooled: Option<Shape>,
        scale: &[f32],
        bias: &[f32],
        x: &[f32],
        dy: &[f32],
    ) -> Unfused {
        let (mut mean, mut var) = (vec![0.5; shape.c], vec![2.0; shape.c]);
        let mut z = vec![0.0; x.len()];
        let cache = batch_norm_train(shape, 1e-5, scale, bias, (&mut mean, &mut var), x, &mut z);
        let mut r = vec![0.0; x.len()];
        activation_forward(Activation::Relu, &z, &mut r);
        let pool = Pool::max(2, 2, 0);
        let (y, argmax, dr) = match pooled {
            Some(p) => {
                let mut y = vec![0.0; p.elements() as usize];
                let argmax = pool_forward(&pool, shape, p, &r, &mut y);
                let mut dr = vec![f32::NAN; x.len()];
                pool_backward(&pool, shape, p, &argmax, dy, &mut dr);
                (y, argmax, dr)
            }
            None => (r.clone(), Vec::new(), dy.to_vec()),
        };
        let mut dz = vec![0.0; x.len()];
        activation_backward(Activation::Relu, &z, &r, &dr, &mut dz);
        let mut dx = vec![0.0; x.len()];
        let (mut d_scale, mut d_bias) = (vec![0.5; shape.c], vec![-0.5; shape.c]);
        batch_norm_backward(
            shape,
            scale,
            &cache,
            x,
            &dz,
            &mut dx,
            &mut d_scale,
            &mut d_bias,
        );
        Unfused {
            y,
            argmax,
            cache,
            running: (mean, var),
            dx,
            d_scale,
            d_bias,
        }
    }

    /// The fused passes give the node-by-node layers' bits: outputs, argmax, statistics,
    /// running statistics and every gradient (within a few roundings, and the same on any
    /// thread count, through the pooling, whose sums run in another order); on odd planes (a row and a column no window
    /// reads), even ones, planes smaller and larger than a vector, more planes than a task.
    #[test]
    fn fused_passes_equal_the_layers_bit_for_bit() {
        for (n, c, h, w) in [(3, 5, 7, 7), (2, 3, 6, 8), (2, 17, 2, 2), (4, 2, 28, 28)] {
            let shape = Shape::new(n, c, h, w);
            let pooled = Shape::new(n, c, h / 2, w / 2);
            let len = shape.elements() as usize;
            let x = values(len, 1);
            let scale: Vec<f32> = (0..c).map(|i| 0.5 + 0.25 * i as f32).collect();
            let bias: Vec<f32> = (0..c).map(|i| 0.125 * (i % 4) as f32 - 0.75).collect();
            for pool in [true, false] {
                let out = if pool { pooled } else { shape };
                let dy = values(out.elements() as usize, 2);
                let want = unfused(shape, pool.then_some(pooled), &scale, &bias, &x, &dy);
                let (mut mean, mut var) = (vec![0.5; c], vec![2.0; c]);
                let bn = BatchNormParams {
                    eps: 1e-5,
                    scale: &scale,
                    bias: &bias,
                    running: (&mut mean, &mut var),
                };
                let mut y = vec![f32::NAN; out.elements() as usize];
                let (cache, kept) = if pool {
                    batch_norm_relu_pool_train(shape, pooled, bn, &x, &mut y)
                } else {
                    let kept = PooledCache {
                        argmax: Vec::new(),
                        x_at: Vec::new(),
                    };
                    (batch_norm_relu_train(shape, bn, &x, &mut y), kept)
                };
                let argmax = &kept.argmax;
                let what = format!("{shape} pooled {pool}");
                assert_eq!(bits(&y), bits(&want.y), "{what}");
                assert_eq!(*argmax, want.argmax, "{what}");
                // The inputs at the maxima: what the pooled positions hold in `x`.
                for (k, (at, v)) in kept.argmax.iter().zip(&kept.x_at).enumerate() {
                    let sample = k / (out.elements() as usize / n);
                    let want = x[sample * (c * h * w) + *at as usize];
                    assert_eq!(v.to_bits(), want.to_bits(), "{what}: output {k}");
                }
                assert_eq!(bits(&cache.mean), bits(&want.cache.mean), "{what}");
                assert_eq!(bits(&cache.inv_std), bits(&want.cache.inv_std), "{what}");
                assert_eq!(bits(&mean), bits(&want.running.0), "{what}");
                assert_eq!(bits(&var), bits(&want.running.1), "{what}");
                // Some outputs are zero (the mask matters), and not all.
                let zeros = y.iter().filter(|v| **v == 0.0).count();
                assert!(zeros > 0 && zeros < y.len(), "{what}: {zeros} zeros");

                let mut dx = vec![f32::NAN; len];
                let (mut d_scale, mut d_bias) = (vec![0.5; c], vec![-0.5; c]);
                let grads = (Some(&mut dx[..]), &mut d_scale[..], &mut d_bias[..]);
                if pool {
                    batch_norm_relu_pool_backward(
                        shape, pooled, &scale, &cache, &x, &y, &kept, &dy, grads.0, grads.1,
                        grads.2,
                    );
                } else {
                    batch_norm_relu_backward(
                        shape, &scale, &cache, &x, &y, &dy, grads.0, grads.1, grads.2,
                    );
                }
                if pool {
                    // The sums in another order: within a few roundings of the layers'.
                    let close = |got: &[f32], want: &[f32], what: &str| {
                        let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                        for (k, (g, w)) in got.iter().zip(want).enumerate() {
                            let err = (g - w).abs();
                            assert!(err <= 2e-6 * scale, "{what}[{k}]: {g} against {w}");
                        }
                    };
                    close(&dx, &want.dx, &format!("{what} dx"));
                    close(&d_scale, &want.d_scale, &format!("{what} d_scale"));
                    close(&d_bias, &want.d_bias, &format!("{what} d_bias"));
                    // ... and the same bits on one thread as on several.
                    let one = rayon::ThreadPoolBuilder::new()
                        .num_threads(1)
                        .build()
                        .unwrap();
                    let mut dx1 = vec![f32::NAN; len];
                    let (mut s1, mut b1) = (vec![0.5; c], vec![-0.5; c]);
                    one.install(|| {
                        batch_norm_relu_pool_backward(
                            shape,
                            pooled,
                            &scale,
                            &cache,
                            &x,
                            &y,
                            &kept,
                            &dy,
                            Some(&mut dx1),
                            &mut s1,
                            &mut b1,
                        )
                    });
                    assert_eq!(bits(&dx1), bits(&dx), "{what}");
                    assert_eq!((bits(&s1), bits(&b1)), (bits(&d_scale), bits(&d_bias)));
                } else {
                    assert_eq!(bits(&dx), bits(&want.dx), "{what}");
                    assert_eq!(bits(&d_scale), bits(&want.d_scale), "{what}");
                    assert_eq!(bits(&d_bias), bits(&want.d_bias), "{what}");
                }

                // Without an input gradient, the same parameter gradients.
                let (mut s2, mut b2) = (vec![0.5; c], vec![-0.5; c]);
                if pool {
                    batch_norm_relu_pool_backward(
                        shape, pooled, &scale, &cache, &x, &y, &kept, &dy, None, &mut s2, &mut b2,
                    );
                } else {
                    batch_norm_relu_backward(
                        shape, &scale, &cache, &x, &y, &dy, None, &mut s2, &mut b2,
                    );
                }
                assert_eq!((bits(&s2), bits(&b2)), (bits(&d_scale), bits(&d_bias)));
            }
        }
    }

    /// ReLU and 2x2 max pooling fused (no batch norm) give the layers' bits: the pooled
    /// output, argmax and the ReLU's input gradient, on the same planes; inputs around zero,
    /// so that whole windows are negative (their maximum the first zero) and equal values
    /// tie.
    #[test]
    fn relu_pool_equals_the_layers_bit_for_bit() {
        for (n, c, h, w) in [(3, 5, 7, 7), (2, 3, 6, 8), (2, 17, 2, 2), (4, 2, 28, 28)] {
            let shape = Shape::new(n, c, h, w);
            let pooled = Shape::new(n, c, h / 2, w / 2);
            let len = shape.elements() as usize;
            // Mostly negative: whole windows of them.
            let x: Vec<f32> = values(len, 3).iter().map(|v| v - 2.5).collect();
            let dy = values(pooled.elements() as usize, 4);
            let mut r = vec![0.0; len];
            activation_forward(Activation::Relu, &x, &mut r);
            let pool = Pool::max(2, 2, 0);
            let mut want_y = vec![0.0; pooled.elements() as usize];
            let want_argmax = pool_forward(&pool, shape, pooled, &r, &mut want_y);
            let mut dr = vec![f32::NAN; len];
            pool_backward(&pool, shape, pooled, &want_argmax, &dy, &mut dr);
            let mut want_dx = vec![f32::NAN; len];
            activation_backward(Activation::Relu, &x, &r, &dr, &mut want_dx);

            let mut y = vec![f32::NAN; pooled.elements() as usize];
            let argmax = relu_pool_train(shape, pooled, &x, &mut y);
            let what = format!("{shape}");
            assert_eq!(bits(&y), bits(&want_y), "{what}");
            assert_eq!(argmax, want_argmax, "{what}");
            let zeros = y.iter().filter(|v| **v == 0.0).count();
            assert!(zeros > 0 && zeros < y.len(), "{what}: {zeros} zeros");
            let mut dx = vec![f32::NAN; len];
            relu_pool_backward(shape, pooled, &y, &argmax, &dy, &mut dx);
            assert_eq!(bits(&dx), bits(&want_dx), "{what}");
        }
    }
}
