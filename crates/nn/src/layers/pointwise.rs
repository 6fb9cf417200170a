//! Element-wise activations, softmax over channels, and the softmax cross-entropy loss.

use joule_model::ops::Activation;
use joule_model::Shape;

/// The activation of one value.
#[inline]
pub fn activate(act: Activation, v: f32) -> f32 {
    match act {
        Activation::Relu => v.max(0.0),
        Activation::Relu6 => v.clamp(0.0, 6.0),
        Activation::Clip { min, max } => v.max(min).min(max),
        Activation::LeakyRelu { alpha } => {
            if v > 0.0 {
                v
            } else {
                alpha * v
            }
        }
        Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        Activation::Tanh => v.tanh(),
        Activation::HardSigmoid { alpha, beta } => (alpha * v + beta).clamp(0.0, 1.0),
        Activation::HardSwish => v * (v + 3.0).clamp(0.0, 6.0) / 6.0,
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

pub fn activation_forward(act: Activation, x: &[f32], y: &mut [f32]) {
    match act {
        Activation::Relu => x
            .iter()
            .zip(y.iter_mut())
            .for_each(|(x, y)| *y = x.max(0.0)),
        _ => x
            .iter()
            .zip(y.iter_mut())
            .for_each(|(x, y)| *y = activate(act, *x)),
    }
}

/// The activation applied in place (the epilogue of a fused CONV or FC).
pub fn activation_in_place(act: Activation, values: &mut [f32]) {
    match act {
        Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
        _ => values.iter_mut().for_each(|v| *v = activate(act, *v)),
    }
}

/// `dx = dy * f'(x)`, with `y = f(x)` at hand for sigmoid and tanh.
pub fn activation_backward(act: Activation, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for (((x, y), g), d) in x.iter().zip(y).zip(dy).zip(dx.iter_mut()) {
        let slope = match act {
            Activation::Relu => (*x > 0.0) as u8 as f32,
            Activation::Relu6 => (*x > 0.0 && *x < 6.0) as u8 as f32,
            Activation::Clip { min, max } => (*x > min && *x < max) as u8 as f32,
            Activation::LeakyRelu { alpha } => {
                if *x > 0.0 {
                    1.0
                } else {
                    alpha
                }
            }
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
            Activation::HardSigmoid { alpha, beta } => {
                let z = alpha * x + beta;
                if z > 0.0 && z < 1.0 {
                    alpha
                } else {
                    0.0
                }
            }
            Activation::HardSwish => {
                if *x < -3.0 {
                    0.0
                } else if *x > 3.0 {
                    1.0
                } else {
                    (2.0 * x + 3.0) / 6.0
                }
            }
            Activation::Gelu => {
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f32::consts::PI).sqrt();
                0.5 * (1.0 + erf(x / std::f32::consts::SQRT_2)) + x * pdf
            }
            Activation::Erf => 2.0 / std::f32::consts::PI.sqrt() * (-x * x).exp(),
            Activation::Sqrt => 0.5 / y,
        };
        *d = g * slope;
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
