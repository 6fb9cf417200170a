//! Batch normalisation (training with batch statistics, inference with running statistics)
//! and local response normalisation across channels.

use crate::kernels::wide;
use joule_model::ops::Lrn;
use joule_model::Shape;

/// Momentum of the running statistics, as PyTorch's default.
pub const RUNNING_MOMENTUM: f32 = 0.1;

/// What the batch-norm backward pass needs from the forward pass besides its input: the
/// batch statistics, from which it recomputes the normalised input (`(x - mean) inv_std`,
/// the same bits). Keeping that as well was a fresh tensor a layer and step, zeroed and
/// faulted in, and a third stream of writes: a twentieth of vgg-small's training time.
#[derive(Clone, Debug, Default)]
pub struct BatchNormCache {
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
}

/// Inference: `scale * (x - mean) / sqrt(var + eps) + bias` with the stored statistics.
pub fn batch_norm_inference(shape: Shape, eps: f32, params: [&[f32]; 4], x: &[f32], y: &mut [f32]) {
    let (k, b) = batch_norm_affine(eps, params);
    let hw = shape.h * shape.w;
    for (i, (xc, yc)) in x.chunks(hw).zip(y.chunks_mut(hw)).enumerate() {
        let c = i % shape.c;
        xc.iter().zip(yc).for_each(|(x, y)| *y = x * k[c] + b[c]);
    }
}

/// Inference-mode batch norm as the per-channel affine map `x * k + b` that
/// [`batch_norm_inference`] applies: `(k, b)`.
pub fn batch_norm_affine(eps: f32, params: [&[f32]; 4]) -> (Vec<f32>, Vec<f32>) {
    let [scale, bias, mean, var] = params;
    let k: Vec<f32> = scale
        .iter()
        .zip(var)
        .map(|(s, v)| s / (v + eps).sqrt())
        .collect();
    let b = bias
        .iter()
        .zip(mean)
        .zip(&k)
        .map(|((b, m), k)| b - m * k)
        .collect();
    (k, b)
}

/// Planes (one sample's channel) per rayon task in the element-wise passes.
pub(crate) const PLANES_PER_TASK: usize = 8;

/// Per channel `c`, the pair of sums `plane` adds up over every sample's plane of it (plane
/// `i = n C + c`) into 8 lanes each, the lanes then
/// added in order: channels in parallel, each summed in a fixed order (samples ascending,
/// lane `l` taking the values at `l` mod 8), so that the result does not depend on the
/// thread count. The per-value loop chained every add through one register: batch norm was
/// a fifth of vgg-small's training time.
/// `run` is how many values of each tensor `plane` reads.
pub(crate) fn channel_sums<T>(
    shape: Shape,
    run: usize,
    plane: impl Fn(usize, usize, &mut [[T; 8]; 2]) + Sync,
) -> Vec<(T, T)>
where
    T: Copy + Default + std::ops::Add<Output = T> + Send,
{
    use rayon::prelude::*;
    // Neighbouring channels in one task, so that it reads runs of at least a few KiB: a
    // task reading one small plane a sample (vgg-small's 7x7) waited on memory for each.
    let group = (1024 / run.max(1)).clamp(1, 16);
    let groups: Vec<usize> = (0..shape.c).step_by(group).collect();
    groups
        .into_par_iter()
        .map(|first| {
            let channels = first..(first + group).min(shape.c);
            let mut lanes = vec![[[T::default(); 8]; 2]; channels.len()];
            for n in 0..shape.n {
                for (c, lanes) in channels.clone().zip(lanes.iter_mut()) {
                    plane(c, n * shape.c + c, lanes);
                }
            }
            lanes
                .into_iter()
                .map(|[s, t]| (lanes_sum(s), lanes_sum(t)))
                .collect::<Vec<_>>()
        })
        .flatten()
        .collect()
}

/// The sum of 8 lanes, in order.
fn lanes_sum<T: Copy + Default + std::ops::Add<Output = T>>(lanes: [T; 8]) -> T {
    lanes.into_iter().fold(T::default(), |x, y| x + y)
}

/// `lanes[0][l] += v`, `lanes[1][l] += v * v` in f64 for the values `v` of `x` at `l` mod 8.
fn moments(x: &[f32], lanes: &mut [[f64; 8]; 2]) {
    let whole = x.len() / 8 * 8;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        unsafe { moments_avx2(&x[..whole], lanes) };
    } else {
        moments_scalar(&x[..whole], lanes);
    }
    #[cfg(not(target_arch = "x86_64"))]
    moments_scalar(&x[..whole], lanes);
    moments_scalar(&x[whole..], lanes);
}

fn moments_scalar(x: &[f32], [s, t]: &mut [[f64; 8]; 2]) {
    for chunk in x.chunks(8) {
        for (l, v) in chunk.iter().enumerate() {
            let v = *v as f64;
            s[l] += v;
            t[l] += v * v;
        }
    }
}

/// [`moments_scalar`]'s operations 4 lanes at a time (no fused multiply-add: the same bits).
///
/// # Safety
/// AVX2; `x` holds whole chunks of 8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn moments_avx2(x: &[f32], [s, t]: &mut [[f64; 8]; 2]) {
    use std::arch::x86_64::*;
    let (mut s0, mut s1) = (
        _mm256_loadu_pd(s.as_ptr()),
        _mm256_loadu_pd(s.as_ptr().add(4)),
    );
    let (mut t0, mut t1) = (
        _mm256_loadu_pd(t.as_ptr()),
        _mm256_loadu_pd(t.as_ptr().add(4)),
    );
    for chunk in x.chunks_exact(8) {
        let v = _mm256_loadu_ps(chunk.as_ptr());
        let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        let hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_add_pd(s0, lo);
        s1 = _mm256_add_pd(s1, hi);
        t0 = _mm256_add_pd(t0, _mm256_mul_pd(lo, lo));
        t1 = _mm256_add_pd(t1, _mm256_mul_pd(hi, hi));
    }
    _mm256_storeu_pd(s.as_mut_ptr(), s0);
    _mm256_storeu_pd(s.as_mut_ptr().add(4), s1);
    _mm256_storeu_pd(t.as_mut_ptr(), t0);
    _mm256_storeu_pd(t.as_mut_ptr().add(4), t1);
}

/// `lanes[0][l] += g`, `lanes[1][l] += g ((x - mean) inv_std)` for the values of `dy` and
/// `x` at `l` mod 8 (the gradient's sums against the normalised input, recomputed).
fn gradient_sums(dy: &[f32], x: &[f32], mean: f32, inv_std: f32, lanes: &mut [[f32; 8]; 2]) {
    let whole = dy.len().min(x.len()) / 8 * 8;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        unsafe { gradient_sums_avx2(&dy[..whole], &x[..whole], mean, inv_std, lanes) };
    } else {
        gradient_sums_scalar(&dy[..whole], &x[..whole], mean, inv_std, lanes);
    }
    #[cfg(not(target_arch = "x86_64"))]
    gradient_sums_scalar(&dy[..whole], &x[..whole], mean, inv_std, lanes);
    gradient_sums_scalar(&dy[whole..], &x[whole..], mean, inv_std, lanes);
}

fn gradient_sums_scalar(
    dy: &[f32],
    x: &[f32],
    mean: f32,
    inv_std: f32,
    [s, t]: &mut [[f32; 8]; 2],
) {
    for (g, x) in dy.chunks(8).zip(x.chunks(8)) {
        for (l, (g, x)) in g.iter().zip(x).enumerate() {
            s[l] += g;
            t[l] += g * ((x - mean) * inv_std);
        }
    }
}

/// [`gradient_sums_scalar`]'s operations on 8 lanes (no fused multiply-add: the same bits).
/// Against the same loop left to the compiler's vectoriser, vgg-small's batch-norm
/// backward passes took 0.70-0.74 of the time (alternating epochs in one process, batch
/// 64, 1 and 2 threads).
///
/// # Safety
/// AVX2; `dy` and `x` hold whole chunks of 8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gradient_sums_avx2(
    dy: &[f32],
    x: &[f32],
    mean: f32,
    inv_std: f32,
    [s, t]: &mut [[f32; 8]; 2],
) {
    use std::arch::x86_64::*;
    let (m, k) = (_mm256_set1_ps(mean), _mm256_set1_ps(inv_std));
    let (mut sv, mut tv) = (_mm256_loadu_ps(s.as_ptr()), _mm256_loadu_ps(t.as_ptr()));
    for (g, x) in dy.chunks_exact(8).zip(x.chunks_exact(8)) {
        let g = _mm256_loadu_ps(g.as_ptr());
        let h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x.as_ptr()), m), k);
        sv = _mm256_add_ps(sv, g);
        tv = _mm256_add_ps(tv, _mm256_mul_ps(g, h));
    }
    _mm256_storeu_ps(s.as_mut_ptr(), sv);
    _mm256_storeu_ps(t.as_mut_ptr(), tv);
}

/// Training: normalise with the batch statistics, update the running ones in place.
pub fn batch_norm_train(
    shape: Shape,
    eps: f32,
    scale: &[f32],
    bias: &[f32],
    running: (&mut [f32], &mut [f32]),
    x: &[f32],
    y: &mut [f32],
) -> BatchNormCache {
    let planes = y.chunks_mut(shape.h * shape.w).collect();
    batch_norm_train_planes(shape, eps, running, x, planes, |c, x, m, k, y, _| {
        let (s, b) = (scale[c], bias[c]);
        wide(
            #[inline(always)]
            || {
                for (x, y) in x.iter().zip(y.iter_mut()) {
                    *y = normalise(*x, m, k, s, b);
                }
            },
        )
    })
}

/// Training batch norm's output for one value: `(x - mean) inv_std scale + bias`. The fused
/// passes ([`crate::layers::batch_norm_relu_train`]) call this too, for the same bits.
#[inline(always)]
pub(crate) fn normalise(x: f32, mean: f32, inv_std: f32, scale: f32, bias: f32) -> f32 {
    (x - mean) * inv_std * scale + bias
}

/// A training batch norm's forward pass: the batch statistics per channel (mean, and
/// `1 / sqrt(var + eps)`; the running ones updated in place), then planes in parallel,
/// `write(c, x, mean, inv_std, out, scratch)` for each plane `x` (of channel `c`) and its
/// output `outputs[i]`, with a plane's worth of scratch room.
pub(crate) fn batch_norm_train_planes<O: Send>(
    shape: Shape,
    eps: f32,
    running: (&mut [f32], &mut [f32]),
    x: &[f32],
    outputs: Vec<O>,
    write: impl Fn(usize, &[f32], f32, f32, &mut O, &mut [f32]) + Sync,
) -> BatchNormCache {
    use rayon::prelude::*;
    let hw = shape.h * shape.w;
    let count = (shape.n * hw) as f64;
    // In f64: the variance is E[x^2] - E[x]^2.
    let sums = channel_sums(shape, hw, |_, i, lanes| {
        moments(&x[i * hw..(i + 1) * hw], lanes)
    });
    let mut mean = vec![0f64; shape.c];
    let mut inv_std = vec![0f32; shape.c];
    for c in 0..shape.c {
        mean[c] = sums[c].0 / count;
        let var = (sums[c].1 / count - mean[c] * mean[c]).max(0.0);
        inv_std[c] = 1.0 / (var as f32 + eps).sqrt();
        let unbiased = if count > 1.0 {
            var * count / (count - 1.0)
        } else {
            var
        };
        running.0[c] = (1.0 - RUNNING_MOMENTUM) * running.0[c] + RUNNING_MOMENTUM * mean[c] as f32;
        running.1[c] = (1.0 - RUNNING_MOMENTUM) * running.1[c] + RUNNING_MOMENTUM * unbiased as f32;
    }
    let mean: Vec<f32> = mean.iter().map(|m| *m as f32).collect();
    outputs
        .into_par_iter()
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each_init(
            || vec![0f32; hw],
            |scratch, (i, mut out)| {
                let c = i % shape.c;
                let x = &x[i * hw..(i + 1) * hw];
                write(c, x, mean[c], inv_std[c], &mut out, scratch)
            },
        );
    BatchNormCache { mean, inv_std }
}

/// Backward through training-mode batch norm on its input `x`: `dx` written,
/// `d_scale`/`d_bias` accumulated.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    shape: Shape,
    scale: &[f32],
    cache: &BatchNormCache,
    x: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    d_scale: &mut [f32],
    d_bias: &mut [f32],
) {
    batch_norm_backward_planes(shape, scale, cache, x, dy, Some(dx), d_scale, d_bias)
}

/// [`batch_norm_backward`] writing `dx` only when the input wants a gradient.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm_backward_planes(
    shape: Shape,
    scale: &[f32],
    cache: &BatchNormCache,
    x: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    d_scale: &mut [f32],
    d_bias: &mut [f32],
) {
    use rayon::prelude::*;
    let hw = shape.h * shape.w;
    let count = (shape.n * hw) as f32;
    let (mean, inv_std) = (&cache.mean, &cache.inv_std);
    let sums = channel_sums(shape, hw, |c, i, lanes| {
        let (dy, x) = (&dy[i * hw..(i + 1) * hw], &x[i * hw..(i + 1) * hw]);
        gradient_sums(dy, x, mean[c], inv_std[c], lanes)
    });
    for (c, (sum_dy, sum_dy_xhat)) in sums.iter().enumerate() {
        d_scale[c] += sum_dy_xhat;
        d_bias[c] += sum_dy;
    }
    let Some(dx) = dx else { return };
    dy.par_chunks(hw)
        .zip(x.par_chunks(hw))
        .zip(dx.par_chunks_mut(hw))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each(|(i, ((dyc, xc), dxc))| {
            let dx = InputGradient::of(i % shape.c, scale, cache, count, &sums);
            wide(
                #[inline(always)]
                || {
                    for ((g, x), d) in dyc.iter().zip(xc).zip(dxc.iter_mut()) {
                        *d = dx.at(*g, *x);
                    }
                },
            )
        });
}

/// A training batch norm's input gradient on one channel, once its sums over the batch
/// (`sum dy`, `sum dy x_hat`) are known.
#[derive(Clone, Copy)]
pub(crate) struct InputGradient {
    mean: f32,
    inv_std: f32,
    /// `scale inv_std / count`.
    k: f32,
    count: f32,
    sum_dy: f32,
    sum_dy_xhat: f32,
}

impl InputGradient {
    /// Channel `c`'s, for a batch of `count` values a channel and the sums of every channel.
    pub(crate) fn of(
        c: usize,
        scale: &[f32],
        cache: &BatchNormCache,
        count: f32,
        sums: &[(f32, f32)],
    ) -> InputGradient {
        let (mean, inv_std) = (cache.mean[c], cache.inv_std[c]);
        let (sum_dy, sum_dy_xhat) = sums[c];
        InputGradient {
            mean,
            inv_std,
            k: scale[c] * inv_std / count,
            count,
            sum_dy,
            sum_dy_xhat,
        }
    }

    /// `dx` for the output gradient `g` at an input `x`.
    #[inline(always)]
    pub(crate) fn at(&self, g: f32, x: f32) -> f32 {
        let h = (x - self.mean) * self.inv_std;
        self.k * (self.count * g - self.sum_dy - h * self.sum_dy_xhat)
    }
}

/// The channels `lo..=hi` in the window of channel `c` (ONNX: `c - floor((size-1)/2)` to
/// `c + ceil((size-1)/2)`).
fn lrn_window(lrn: &Lrn, c: usize, channels: usize) -> (usize, usize) {
    let before = (lrn.size - 1) / 2;
    let after = lrn.size - 1 - before;
    (c.saturating_sub(before), (c + after).min(channels - 1))
}

/// `y = x / (bias + alpha / size * sum over the window of x^2) ^ beta`; returns the
/// denominators' bases for the backward pass.
pub fn lrn_forward(lrn: &Lrn, shape: Shape, x: &[f32], y: &mut [f32]) -> Vec<f32> {
    let hw = shape.h * shape.w;
    let mut base = vec![0f32; x.len()];
    let k = lrn.alpha / lrn.size as f32;
    for n in 0..shape.n {
        let off = n * shape.c * hw;
        for c in 0..shape.c {
            let (lo, hi) = lrn_window(lrn, c, shape.c);
            for i in 0..hw {
                let sum: f32 = (lo..=hi).map(|j| x[off + j * hw + i].powi(2)).sum();
                let at = off + c * hw + i;
                base[at] = lrn.bias + k * sum;
                y[at] = x[at] * base[at].powf(-lrn.beta);
            }
        }
    }
    base
}

/// Backward LRN: `dx_j = dy_j s_j^-beta - 2 beta alpha/size x_j sum_{i: j in win(i)} dy_i x_i s_i^(-beta-1)`.
pub fn lrn_backward(lrn: &Lrn, shape: Shape, x: &[f32], base: &[f32], dy: &[f32], dx: &mut [f32]) {
    let hw = shape.h * shape.w;
    let k = 2.0 * lrn.beta * lrn.alpha / lrn.size as f32;
    let before = (lrn.size - 1) / 2;
    let after = lrn.size - 1 - before;
    for n in 0..shape.n {
        let off = n * shape.c * hw;
        for j in 0..shape.c {
            // i has j in its window when i - before <= j <= i + after.
            let lo = j.saturating_sub(after);
            let hi = (j + before).min(shape.c - 1);
            for p in 0..hw {
                let at = off + j * hw + p;
                let sum: f32 = (lo..=hi)
                    .map(|i| {
                        let ai = off + i * hw + p;
                        dy[ai] * x[ai] * base[ai].powf(-lrn.beta - 1.0)
                    })
                    .sum();
                dx[at] = dy[at] * base[at].powf(-lrn.beta) - k * x[at] * sum;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Channels summed in groups (small planes) or alone (large ones) give each channel's
    /// sums in its own order: samples ascending, lanes by position, then the lanes in order.
    #[test]
    fn channel_sums_keep_each_channels_order() {
        for (n, c, h, w) in [(3, 37, 7, 7), (2, 5, 28, 28), (2, 3, 1, 1), (1, 40, 3, 5)] {
            let shape = Shape::new(n, c, h, w);
            let hw = h * w;
            let x: Vec<f32> = (0..n * c * hw)
                .map(|i| ((i * 29) % 31) as f32 / 3.0 - 4.7)
                .collect();
            let got = channel_sums(shape, shape.h * shape.w, |_, i, lanes| {
                moments(&x[i * hw..(i + 1) * hw], lanes)
            });
            for (ch, got) in got.iter().enumerate() {
                let mut lanes = [[0f64; 8]; 2];
                for s in 0..n {
                    let at = (s * c + ch) * hw;
                    moments_scalar(&x[at..at + hw], &mut lanes);
                }
                let want = (lanes_sum(lanes[0]), lanes_sum(lanes[1]));
                assert_eq!(
                    (got.0.to_bits(), got.1.to_bits()),
                    (want.0.to_bits(), want.1.to_bits()),
                    "{shape} channel {ch}"
                );
            }
        }
    }

    /// The vector gradient sums give the scalar loop's bits, with a remainder and onto
    /// lanes that already hold sums.
    #[test]
    fn gradient_sums_match_the_scalar_sums_bit_for_bit() {
        for len in [8, 13, 784, 49] {
            let dy: Vec<f32> = (0..len)
                .map(|i| ((i * 17) % 19) as f32 / 5.0 - 1.9)
                .collect();
            let x: Vec<f32> = (0..len)
                .map(|i| ((i * 29) % 31) as f32 / 3.0 - 4.7)
                .collect();
            let start = [[0.25f32; 8], [-1.5f32; 8]];
            let (mut fast, mut slow) = (start, start);
            gradient_sums(&dy, &x, 0.3, 1.7, &mut fast);
            gradient_sums_scalar(&dy, &x, 0.3, 1.7, &mut slow);
            let bits = |l: [[f32; 8]; 2]| l.map(|a| a.map(f32::to_bits));
            assert_eq!(bits(fast), bits(slow), "len {len}");
            assert_ne!(bits(fast), bits(start), "len {len}");
        }
    }

    /// The vector moments give the scalar loop's bits (lanes in f64, no fused
    /// multiply-add), on planes of whole chunks of 8 and with a remainder, added onto lanes
    /// that already hold sums; and the lanes hold what a per-lane f64 sum in order gives.
    #[test]
    fn moments_match_the_scalar_sums_bit_for_bit() {
        for len in [8, 13, 784, 49] {
            let x: Vec<f32> = (0..len)
                .map(|i| ((i * 29) % 31) as f32 / 3.0 - 4.7)
                .collect();
            let start = [[0.25f64; 8], [1.5f64; 8]];
            let (mut fast, mut slow) = (start, start);
            moments(&x, &mut fast);
            moments(&x, &mut fast);
            moments_scalar(&x, &mut slow);
            moments_scalar(&x, &mut slow);
            let bits = |l: [[f64; 8]; 2]| l.map(|a| a.map(f64::to_bits));
            assert_eq!(bits(fast), bits(slow), "len {len}");
            for l in 0..8 {
                let mut want = start.map(|a| a[l]);
                for _ in 0..2 {
                    for v in x.iter().skip(l).step_by(8) {
                        want[0] += *v as f64;
                        want[1] += *v as f64 * *v as f64;
                    }
                }
                assert_eq!([fast[0][l], fast[1][l]], want, "len {len} lane {l}");
            }
        }
    }
}
