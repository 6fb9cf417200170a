//! The op set of the IR, grouped by family. Each op knows its output shape, its parameter
//! shapes and (for CONV/FC) its loop nest: the hooks that statistics, the energy engine and
//! the training engine build on.

mod activation;
mod conv;
mod pool;

pub use activation::{Activation, BatchNorm, Lrn};
pub use conv::{Conv, FullyConnected, LoopNest, Padding};
pub use pool::{Pool, PoolKind};

use crate::Shape;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Conv(Conv),
    FullyConnected(FullyConnected),
    Pool(Pool),
    GlobalPool {
        kind: PoolKind,
    },
    Activation(Activation),
    BatchNorm(BatchNorm),
    Lrn(Lrn),
    /// Element-wise sum of two or more tensors of one shape (residual connections).
    Add,
    /// Concatenation along channels (inception and fire modules).
    Concat,
    /// `N x C x H x W -> N x CHW x 1 x 1`.
    Flatten,
    /// Softmax over channels.
    Softmax,
    /// Identity at inference.
    Dropout {
        ratio: f32,
    },
}

/// Coarse classification used for the CONV/FC split in statistics and the energy engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerClass {
    Conv,
    Fc,
    Other,
}

impl Op {
    /// Short stable name, used in tables and the JSON `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv(c) if c.groups > 1 => "conv_grouped",
            Op::Conv(_) => "conv",
            Op::FullyConnected(_) => "fc",
            Op::Pool(p) => match p.kind {
                PoolKind::Max => "maxpool",
                PoolKind::Average => "avgpool",
            },
            Op::GlobalPool { kind } => match kind {
                PoolKind::Max => "global_maxpool",
                PoolKind::Average => "global_avgpool",
            },
            Op::Activation(a) => a.name(),
            Op::BatchNorm(_) => "batchnorm",
            Op::Lrn(_) => "lrn",
            Op::Add => "add",
            Op::Concat => "concat",
            Op::Flatten => "flatten",
            Op::Softmax => "softmax",
            Op::Dropout { .. } => "dropout",
        }
    }

    pub fn class(&self) -> LayerClass {
        match self {
            Op::Conv(_) => LayerClass::Conv,
            Op::FullyConnected(_) => LayerClass::Fc,
            _ => LayerClass::Other,
        }
    }

    /// Whether the op passes its input through unchanged at inference (for looking through
    /// reshapes when an FC layer's spatial input is wanted).
    pub(crate) fn is_reshape_only(&self) -> bool {
        matches!(self, Op::Flatten | Op::Dropout { .. })
    }

    /// Number of inputs the op accepts: `(min, max)`.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Op::Add => (2, usize::MAX),
            Op::Concat => (1, usize::MAX),
            _ => (1, 1),
        }
    }

    /// Output shape from the input shapes (already checked for arity).
    pub fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let x = inputs[0];
        match self {
            Op::Conv(conv) => {
                let nest = conv.loop_nest(x)?;
                Ok(Shape::new(x.n, conv.filters, nest.p, nest.q))
            }
            Op::FullyConnected(fc) => {
                fc.loop_nest(x)?;
                Ok(Shape::new(x.n, fc.outputs, 1, 1))
            }
            Op::Pool(pool) => pool.output_shape(x),
            Op::GlobalPool { .. } => Ok(Shape::new(x.n, x.c, 1, 1)),
            Op::Activation(_)
            | Op::BatchNorm(_)
            | Op::Lrn(_)
            | Op::Softmax
            | Op::Dropout { .. } => Ok(x),
            Op::Flatten => Ok(Shape::new(x.n, x.per_sample(), 1, 1)),
            Op::Add => {
                if let Some(other) = inputs.iter().find(|s| **s != x) {
                    return Err(format!("Add inputs differ in shape: {x} vs {other}"));
                }
                Ok(x)
            }
            Op::Concat => {
                let mut channels = 0;
                for s in inputs {
                    if (s.n, s.h, s.w) != (x.n, x.h, x.w) {
                        return Err(format!(
                            "Concat inputs differ outside the channel axis: {x} vs {s}"
                        ));
                    }
                    channels += s.c;
                }
                Ok(Shape::new(x.n, channels, x.h, x.w))
            }
        }
    }

    /// Shapes of the learned tensors, in the order nodes store them:
    /// CONV `[filter (M, C/groups, R, S), bias (M)]`, FC `[weight (M, C*H*W), bias (M)]`,
    /// batch norm `[scale, bias, mean, variance]`, each of `C`. Biases only where enabled.
    pub fn param_shapes(&self, input: Shape) -> Vec<Vec<usize>> {
        match self {
            Op::Conv(conv) => {
                let mut shapes = vec![vec![
                    conv.filters,
                    input.c / conv.groups.max(1),
                    conv.r,
                    conv.s,
                ]];
                if conv.bias {
                    shapes.push(vec![conv.filters]);
                }
                shapes
            }
            Op::FullyConnected(fc) => {
                let mut shapes = vec![vec![fc.outputs, input.per_sample()]];
                if fc.bias {
                    shapes.push(vec![fc.outputs]);
                }
                shapes
            }
            Op::BatchNorm(_) => vec![vec![input.c]; 4],
            _ => Vec::new(),
        }
    }
}
