//! Batch normalisation (training with batch statistics, inference with running statistics)
//! and local response normalisation across channels.

use joule_model::ops::Lrn;
use joule_model::Shape;

/// Momentum of the running statistics, as PyTorch's default.
pub const RUNNING_MOMENTUM: f32 = 0.1;

/// What the batch-norm backward pass needs from the forward pass.
#[derive(Clone, Debug, Default)]
pub struct BatchNormCache {
    pub x_hat: Vec<f32>,
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
    let hw = shape.h * shape.w;
    let count = (shape.n * hw) as f64;
    let mut mean = vec![0f64; shape.c];
    let mut sq = vec![0f64; shape.c];
    for (i, xc) in x.chunks(hw).enumerate() {
        let c = i % shape.c;
        for &v in xc {
            mean[c] += v as f64;
            sq[c] += (v as f64) * (v as f64);
        }
    }
    let mut inv_std = vec![0f32; shape.c];
    for c in 0..shape.c {
        mean[c] /= count;
        let var = (sq[c] / count - mean[c] * mean[c]).max(0.0);
        inv_std[c] = 1.0 / (var as f32 + eps).sqrt();
        let unbiased = if count > 1.0 {
            var * count / (count - 1.0)
        } else {
            var
        };
        running.0[c] = (1.0 - RUNNING_MOMENTUM) * running.0[c] + RUNNING_MOMENTUM * mean[c] as f32;
        running.1[c] = (1.0 - RUNNING_MOMENTUM) * running.1[c] + RUNNING_MOMENTUM * unbiased as f32;
    }
    let mut x_hat = vec![0f32; x.len()];
    for (i, ((xc, hc), yc)) in x
        .chunks(hw)
        .zip(x_hat.chunks_mut(hw))
        .zip(y.chunks_mut(hw))
        .enumerate()
    {
        let c = i % shape.c;
        let m = mean[c] as f32;
        for ((x, h), y) in xc.iter().zip(hc.iter_mut()).zip(yc.iter_mut()) {
            *h = (x - m) * inv_std[c];
            *y = *h * scale[c] + bias[c];
        }
    }
    BatchNormCache { x_hat, inv_std }
}

/// Backward through training-mode batch norm: `dx` written, `d_scale`/`d_bias` accumulated.
pub fn batch_norm_backward(
    shape: Shape,
    scale: &[f32],
    cache: &BatchNormCache,
    dy: &[f32],
    dx: &mut [f32],
    d_scale: &mut [f32],
    d_bias: &mut [f32],
) {
    let hw = shape.h * shape.w;
    let count = (shape.n * hw) as f32;
    let mut sum_dy = vec![0f32; shape.c];
    let mut sum_dy_xhat = vec![0f32; shape.c];
    for (i, (dyc, hc)) in dy.chunks(hw).zip(cache.x_hat.chunks(hw)).enumerate() {
        let c = i % shape.c;
        for (g, h) in dyc.iter().zip(hc) {
            sum_dy[c] += g;
            sum_dy_xhat[c] += g * h;
        }
    }
    for c in 0..shape.c {
        d_scale[c] += sum_dy_xhat[c];
        d_bias[c] += sum_dy[c];
    }
    for (i, ((dyc, hc), dxc)) in dy
        .chunks(hw)
        .zip(cache.x_hat.chunks(hw))
        .zip(dx.chunks_mut(hw))
        .enumerate()
    {
        let c = i % shape.c;
        let k = scale[c] * cache.inv_std[c] / count;
        for ((g, h), d) in dyc.iter().zip(hc).zip(dxc.iter_mut()) {
            *d = k * (count * g - sum_dy[c] - h * sum_dy_xhat[c]);
        }
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
