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
    }
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
