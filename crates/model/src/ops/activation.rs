//! Element-wise and normalisation ops: cost no MACs, but move activations.

use serde::{Deserialize, Serialize};

/// Pointwise non-linearities.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Activation {
    Relu,
    /// `min(max(x, 0), 6)`, MobileNet's activation.
    Relu6,
    /// General clamp (ONNX `Clip`); `Relu6` is the common special case.
    Clip {
        min: f32,
        max: f32,
    },
    LeakyRelu {
        alpha: f32,
    },
    Sigmoid,
    Tanh,
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * relu6(x + 3) / 6`, MobileNetV3's activation.
    HardSwish,
    /// `x * Phi(x)` with the normal distribution's CDF (the exact, erf-based GELU).
    Gelu,
    /// The error function (GELU's decomposition in ONNX opsets before 20).
    Erf,
    Sqrt,
}

impl Activation {
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::Clip { .. } => "clip",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::HardSigmoid { .. } => "hard_sigmoid",
            Activation::HardSwish => "hard_swish",
            Activation::Gelu => "gelu",
            Activation::Erf => "erf",
            Activation::Sqrt => "sqrt",
        }
    }
}

/// Batch normalisation at inference: per channel `scale * (x - mean) / sqrt(var + eps) + bias`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm {
    pub epsilon: f32,
}

impl Default for BatchNorm {
    fn default() -> Self {
        BatchNorm { epsilon: 1e-5 }
    }
}

/// Local response normalisation across channels (AlexNet, GoogLeNet).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lrn {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

impl Default for Lrn {
    fn default() -> Self {
        Lrn {
            size: 5,
            alpha: 1e-4,
            beta: 0.75,
            bias: 1.0,
        }
    }
}
