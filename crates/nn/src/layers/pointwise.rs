//! Element-wise activations, softmax over channels, and the softmax cross-entropy loss.

use super::ELEMENTS_A_TASK;
use crate::kernels::wide;
use joule_model::ops::Activation;
use joule_model::Shape;
use rayon::prelude::*;

/// The activation of one value.
#[inline]
pub fn activate(act: Activation, v: f32) -> f32 {
    match act {
        Activation::Relu => v.max(0.0),
        Activation::Relu6 => relu6(v),
        Activation::Clip { min, max } => v.max(min).min(max),
        Activation::LeakyRelu { alpha } => {
            if v > 0.0 {
                v
            } else {
                alpha * v
            }
        }
        Activation::Sigmoid => sigmoid(v),
        Activation::Tanh => v.tanh(),
        Activation::HardSigmoid { alpha, beta } => (alpha * v + beta).clamp(0.0, 1.0),
        Activation::HardSwish => hard_swish(v),
        Activation::Gelu => 0.5 * v * (1.0 + erf(v / std::f32::consts::SQRT_2)),
        Activation::Erf => erf(v),
        Activation::Sqrt => v.sqrt(),
    }
}

/// The error function, to about 1e-7 (Abramowitz and Stegun 7.1.26, evaluated in f64).
pub fn erf(v: f32) -> f32 {
    let x = (v as f64).abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    (if v < 0.0 { -y } else { y }) as f32
}

#[inline(always)]
fn relu6(v: f32) -> f32 {
    v.clamp(0.0, 6.0)
}

#[inline(always)]
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + exp(-v))
}

#[inline(always)]
fn hard_swish(v: f32) -> f32 {
    v * (v + 3.0).clamp(0.0, 6.0) / 6.0
}

/// `e^v` in f32 arithmetic that vectorises (`f32::exp` is a libm call per value: sigmoid
/// and SiLU were a quarter of efficientnet_b0's time): `2^i e^r` with `i = round(v log2 e)`
/// and `e^r`, `|r| <= ln 2 / 2`, from Cephes' degree-7 polynomial; within 2 ulp of
/// `f32::exp` over `[-87.3, 88.72]` (the normal range), 0 below and infinity above, NaN
/// as NaN.
#[inline(always)]
pub fn exp(v: f32) -> f32 {
    let (lo, hi) = (-87.3, 88.72);
    let x = v.clamp(lo, hi);
    let t = x * std::f32::consts::LOG2_E + 0.5;
    // SAFETY: |t| < 128 after the clamp, so the truncation fits an i32.
    let i = unsafe { t.to_int_unchecked::<i32>() };
    // Truncation rounds toward zero: one less below zero (floor without a libm call).
    let i = i - (t < i as f32) as i32;
    let n = i as f32;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^i as two powers of two: 2^128 (near the top) has no f32 of its own.
    let half = i >> 1;
    let power = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = e * power(half) * power(i - half);
    if v.is_nan() {
        v
    } else if v < lo {
        0.0
    } else if v > hi {
        f32::INFINITY
    } else {
        y
    }
}

/// `y[i] = f(x[i])` as its own loop for each activation (a match per value kept the
/// compiler from vectorising any of them), 16 lanes wide where the CPU has AVX-512, 8 with AVX2 (the
/// same operations, so the same bits, as the 4-lane build).
pub fn activation_forward(act: Activation, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    y[..n]
        .par_chunks_mut(ELEMENTS_A_TASK)
        .zip(x[..n].par_chunks(ELEMENTS_A_TASK))
        .for_each(|(y, x)| {
            wide(
                #[inline(always)]
                || activation_loops(act, x, y),
            )
        })
}

#[inline(always)]
fn activation_loops(act: Activation, x: &[f32], y: &mut [f32]) {
    #[inline(always)]
    fn each(x: &[f32], y: &mut [f32], f: impl Fn(f32) -> f32) {
        x.iter().zip(y.iter_mut()).for_each(|(x, y)| *y = f(*x));
    }
    match act {
        Activation::Relu => each(x, y, |v| v.max(0.0)),
        Activation::Relu6 => each(x, y, relu6),
        Activation::Sigmoid => each(x, y, sigmoid),
        Activation::HardSwish => each(x, y, hard_swish),
        Activation::Clip { min, max } => each(x, y, |v| v.max(min).min(max)),
        Activation::HardSigmoid { alpha, beta } => {
            each(x, y, |v| (alpha * v + beta).clamp(0.0, 1.0))
        }
        _ => each(x, y, |v| activate(act, v)),
    }
}

/// `y = x0 + x1 + ..` (the inputs added in order), then `act` where given: one pass over
/// the values, a task's worth at a time while they are in cache, in place of an addition
/// and then an activation over the whole map (ResNet's `relu(bn(conv) + skip)`: the two
/// passes, serial, were 3% of resnet18's time at batch 16). Each value is the serial
/// addition's and then [`activation_in_place`]'s, bit for bit.
///
/// # Panics
/// Without inputs, or where one is shorter than `y`.
pub fn add_forward(inputs: &[&[f32]], act: Option<Activation>, y: &mut [f32]) {
    let (first, rest) = inputs.split_first().expect("an addition has inputs");
    let n = y.len();
    assert!(
        inputs.iter().all(|x| x.len() >= n),
        "an input shorter than the sum"
    );
    y.par_chunks_mut(ELEMENTS_A_TASK)
        .enumerate()
        .for_each(|(i, y)| {
            let at = i * ELEMENTS_A_TASK;
            let range = at..at + y.len();
            y.copy_from_slice(&first[range.clone()]);
            for other in rest {
                y.iter_mut()
                    .zip(&other[range.clone()])
                    .for_each(|(a, b)| *a += b);
            }
            if let Some(act) = act {
                wide(
                    #[inline(always)]
                    || in_place_loops(act, y),
                )
            }
        })
}

/// A residual connection's values added to a CONV's output in its step
/// ([`crate::infer`]): the other operand of the addition that alone reads the layer's
/// output, in the output's shape and layout.
#[derive(Clone, Copy, Debug)]
pub struct Residual<'a> {
    pub values: &'a [f32],
    /// Whether the residual is the addition's first operand (`r + y`, else `y + r`).
    pub first: bool,
}

/// `y = r + y` (or `y + r`: [`Residual::first`]) and then `act`, in one pass a task's worth
/// at a time: what [`add_forward`] gives for the two operands, bit for bit, with `y` already
/// holding the layer's output.
///
/// # Panics
/// Where the residual is shorter than `y`.
pub fn add_residual(y: &mut [f32], residual: Residual, act: Option<Activation>) {
    let r = residual.values;
    assert!(r.len() >= y.len(), "a residual shorter than the sum");
    y.par_chunks_mut(ELEMENTS_A_TASK)
        .zip(r.par_chunks(ELEMENTS_A_TASK))
        .for_each(|(y, r)| {
            wide(
                #[inline(always)]
                || {
                    if residual.first {
                        // `r + y`, not `y += r`: which NaN a sum of two NaNs keeps.
                        #[allow(clippy::assign_op_pattern)]
                        y.iter_mut().zip(r).for_each(|(a, b)| *a = *b + *a);
                    } else {
                        y.iter_mut().zip(r).for_each(|(a, b)| *a += b);
                    }
                    if let Some(act) = act {
                        in_place_loops(act, y)
                    }
                },
            )
        })
}

/// The activation applied in place (the epilogue of a fused CONV or FC); wide as
/// [`activation_forward`].
pub fn activation_in_place(act: Activation, values: &mut [f32]) {
    values.par_chunks_mut(ELEMENTS_A_TASK).for_each(|values| {
        wide(
            #[inline(always)]
            || in_place_loops(act, values),
        )
    })
}

#[inline(always)]
fn in_place_loops(act: Activation, values: &mut [f32]) {
    #[inline(always)]
    fn each(values: &mut [f32], f: impl Fn(f32) -> f32) {
        values.iter_mut().for_each(|v| *v = f(*v));
    }
    match act {
        Activation::Relu => each(values, |v| v.max(0.0)),
        Activation::Relu6 => each(values, relu6),
        Activation::Sigmoid => each(values, sigmoid),
        Activation::HardSwish => each(values, hard_swish),
        Activation::Clip { min, max } => each(values, |v| v.max(min).min(max)),
        Activation::HardSigmoid { alpha, beta } => {
            each(values, |v| (alpha * v + beta).clamp(0.0, 1.0))
        }
        _ => each(values, |v| activate(act, v)),
    }
}

/// `dx = dy * f'(x)`, with `y = f(x)` at hand for sigmoid and tanh: one loop per kind (as
/// [`activation_forward`], so that it vectorises; 16 lanes wide on AVX-512, 8 on AVX2).
pub fn activation_backward(act: Activation, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
    wide(
        #[inline(always)]
        || backward_loops(act, x, y, dy, dx),
    )
}

#[inline(always)]
fn backward_loops(act: Activation, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
    #[inline(always)]
    fn each(x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32], slope: impl Fn(f32, f32) -> f32) {
        for (((x, y), g), d) in x.iter().zip(y).zip(dy).zip(dx.iter_mut()) {
            *d = g * slope(*x, *y);
        }
    }
    match act {
        Activation::Relu => each(x, y, dy, dx, |x, _| (x > 0.0) as u8 as f32),
        Activation::Relu6 => each(x, y, dy, dx, |x, _| (x > 0.0 && x < 6.0) as u8 as f32),
        Activation::Clip { min, max } => {
            each(x, y, dy, dx, |x, _| (x > min && x < max) as u8 as f32)
        }
        Activation::LeakyRelu { alpha } => {
            each(x, y, dy, dx, |x, _| if x > 0.0 { 1.0 } else { alpha })
        }
        Activation::Sigmoid => each(x, y, dy, dx, |_, y| y * (1.0 - y)),
        Activation::Tanh => each(x, y, dy, dx, |_, y| 1.0 - y * y),
        Activation::HardSigmoid { alpha, beta } => each(x, y, dy, dx, |x, _| {
            let z = alpha * x + beta;
            if z > 0.0 && z < 1.0 {
                alpha
            } else {
                0.0
            }
        }),
        Activation::HardSwish => each(x, y, dy, dx, |x, _| {
            if x < -3.0 {
                0.0
            } else if x > 3.0 {
                1.0
            } else {
                (2.0 * x + 3.0) / 6.0
            }
        }),
        Activation::Gelu => each(x, y, dy, dx, |x, _| {
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f32::consts::PI).sqrt();
            0.5 * (1.0 + erf(x / std::f32::consts::SQRT_2)) + x * pdf
        }),
        Activation::Erf => each(x, y, dy, dx, |x, _| {
            2.0 / std::f32::consts::PI.sqrt() * (-x * x).exp()
        }),
        Activation::Sqrt => each(x, y, dy, dx, |_, y| 0.5 / y),
    }
}

/// Softmax over the channels of each (n, h, w) position.
pub fn softmax_forward(shape: Shape, x: &[f32], y: &mut [f32]) {
    let hw = shape.h * shape.w;
    for n in 0..shape.n {
        let off = n * shape.c * hw;
        for p in 0..hw {
            let at = |c: usize| off + c * hw + p;
            let max = (0..shape.c)
                .map(|c| x[at(c)])
                .fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for c in 0..shape.c {
                y[at(c)] = (x[at(c)] - max).exp();
                sum += y[at(c)];
            }
            for c in 0..shape.c {
                y[at(c)] /= sum;
            }
        }
    }
}

pub fn softmax_backward(shape: Shape, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    let hw = shape.h * shape.w;
    for n in 0..shape.n {
        let off = n * shape.c * hw;
        for p in 0..hw {
            let at = |c: usize| off + c * hw + p;
            let dot: f32 = (0..shape.c).map(|c| y[at(c)] * dy[at(c)]).sum();
            for c in 0..shape.c {
                dx[at(c)] = y[at(c)] * (dy[at(c)] - dot);
            }
        }
    }
}

/// Mean softmax cross-entropy of `logits` (`N x classes`) against `labels`, and its gradient
/// with respect to the logits.
pub fn softmax_cross_entropy(logits: &[f32], classes: usize, labels: &[u8]) -> (f32, Vec<f32>) {
    let n = labels.len();
    let mut grad = vec![0f32; logits.len()];
    let mut loss = 0f64;
    for (i, (row, g)) in logits
        .chunks(classes)
        .zip(grad.chunks_mut(classes))
        .enumerate()
    {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
        let label = labels[i] as usize;
        loss += (sum.ln() - (row[label] - max)) as f64;
        for (c, (v, g)) in row.iter().zip(g.iter_mut()).enumerate() {
            let p = (v - max).exp() / sum;
            *g = (p - (c == label) as u8 as f32) / n as f32;
        }
    }
    ((loss / n as f64) as f32, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over 100,003 values (seven tasks, the last one short), both entry points give each
    /// value's own activation, bit for bit.
    #[test]
    fn activations_in_tasks_equal_each_value_alone() {
        let x: Vec<f32> = (0..100_003)
            .map(|i| (i % 2001) as f32 * 0.01 - 10.0)
            .collect();
        for act in [
            Activation::Sigmoid,
            Activation::Relu6,
            Activation::HardSwish,
            Activation::Tanh,
        ] {
            let want: Vec<u32> = x.iter().map(|v| activate(act, *v).to_bits()).collect();
            let mut y = vec![f32::NAN; x.len()];
            activation_forward(act, &x, &mut y);
            assert_eq!(
                y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want,
                "{act:?}"
            );
            let mut z = x.clone();
            activation_in_place(act, &mut z);
            assert_eq!(
                z.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want,
                "{act:?}"
            );
        }
    }

    /// Against f64's `exp` on a dense sweep of [-87.3, 88.72]: within 2 ulp (relative
    /// 2.4e-7);
    /// the ends, infinities and NaN as `f32::exp` gives them.
    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0f64;
        for i in 0..=1_760_200 {
            let v = -87.3 + i as f32 * 1e-4;
            let want = (v as f64).exp();
            let got = exp(v) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 2.4e-7, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        // Sigmoid stays in [0, 1] and is exact at 0.
        assert_eq!(activate(Activation::Sigmoid, 0.0), 0.5);
        assert_eq!(activate(Activation::Sigmoid, 200.0), 1.0);
        assert_eq!(activate(Activation::Sigmoid, -200.0), 0.0);
    }
}
