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
