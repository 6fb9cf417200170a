//! The op set of the IR, grouped by family. Each op knows its output shape, its parameter
//! shapes and (for CONV/FC) its loop nest: the hooks that statistics, the energy engine and
//! the training engine build on.

mod activation;
mod conv;
mod elementwise;
mod layout;
mod matmul;
mod pool;

pub use activation::{Activation, BatchNorm, Lrn};
pub use conv::{Conv, FullyConnected, LoopNest, Padding};
pub use elementwise::{Binary, BinaryKind, ConstantOperand, LayerNorm, Reduce, ReduceKind, Side};
pub use layout::{Expand, Extent, Gather, Pad, Reshape, Slice, SliceAxis, Transpose};
pub use pool::{Pool, PoolKind};

use crate::{Dims, Shape};
use serde::{Deserialize, Serialize};

/// The IR's ops. The first group (CONV to Dropout) is the NCHW vocabulary of the zoo and the
/// training engine; the rest are N-d ops that imported models (transformers, squeeze-and-
/// excitation, channel shuffles) need. Every op has an output [`Dims`]; see
/// [`Op::output_dims`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Conv(Conv),
    /// Flattens each sample (`[N, ...] -> [N, K]`) and multiplies by an `M x K` matrix.
    FullyConnected(FullyConnected),
    Pool(Pool),
    GlobalPool {
        kind: PoolKind,
    },
    Activation(Activation),
    /// Batch normalisation over axis 1.
    BatchNorm(BatchNorm),
    Lrn(Lrn),
    /// Element-wise sum of two or more tensors of one shape (residual connections).
    Add,
    /// Concatenation along `axis`: 1 (channels; tokens for `[N, T, D]`) in the zoo and the
    /// training engine; any axis in imported models (Swin's shifted windows roll H and W by
    /// slicing and concatenating).
    Concat {
        #[serde(default = "channel_axis")]
        axis: i64,
    },
    /// `[N, ...] -> [N, K]`.
    Flatten,
    /// Softmax over one axis (1: the channels, or the classes of `[N, K]`).
    Softmax {
        #[serde(default = "channel_axis")]
        axis: i64,
    },
    /// Identity at inference.
    Dropout {
        ratio: f32,
    },
    /// An `M x K` matrix applied to the last axis: `[..., K] -> [..., M]` (a transformer's
    /// projections, ConvNeXt's pointwise layers on NHWC).
    Linear(FullyConnected),
    /// Matrix product of two activations with broadcast batch axes (attention).
    MatMul,
    /// Element-wise arithmetic with broadcasting.
    Binary(Binary),
    Reduce(Reduce),
    LayerNorm(LayerNorm),
    Reshape(Reshape),
    Transpose(Transpose),
    Slice(Slice),
    Gather(Gather),
    Squeeze {
        axes: Vec<i64>,
    },
    Unsqueeze {
        axes: Vec<i64>,
    },
    Pad(Pad),
    /// Broadcast of the input to a target shape.
    Expand(Expand),
    /// A constant tensor (`params[0]`, of shape `dims`) broadcast to `target`: a learned
    /// token (ViT's class token) that enters the graph beside the activations.
    Constant {
        dims: Vec<usize>,
        target: Vec<Extent>,
    },
}

fn channel_axis() -> i64 {
    1
}

/// Coarse classification used for the CONV/FC split in statistics and the energy engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerClass {
    Conv,
    Fc,
    /// A product of two activations (attention): MACs, but no weights.
    MatMul,
    Other,
}

/// Needs a four-dimensional NCHW input.
fn nchw(x: &Dims) -> Result<Shape, String> {
    if x.rank() != 4 {
        return Err(format!("expects an N x C x H x W input, got {x}"));
    }
    Ok(x.nchw())
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
            Op::Concat { .. } => "concat",
            Op::Flatten => "flatten",
            Op::Softmax { .. } => "softmax",
            Op::Dropout { .. } => "dropout",
            Op::Linear(_) => "linear",
            Op::MatMul => "matmul",
            Op::Binary(b) => match b.kind {
                BinaryKind::Add => "elementwise_add",
                BinaryKind::Sub => "sub",
                BinaryKind::Mul => "mul",
                BinaryKind::Div => "div",
                BinaryKind::Pow => "pow",
            },
            Op::Reduce(r) => match r.kind {
                ReduceKind::Mean => "reduce_mean",
                ReduceKind::Sum => "reduce_sum",
                ReduceKind::L2 => "reduce_l2",
            },
            Op::LayerNorm(_) => "layernorm",
            Op::Reshape(_) => "reshape",
            Op::Transpose(_) => "transpose",
            Op::Slice(_) => "slice",
            Op::Gather(_) => "gather",
            Op::Squeeze { .. } => "squeeze",
            Op::Unsqueeze { .. } => "unsqueeze",
            Op::Pad(_) => "pad",
            Op::Expand(_) => "expand",
            Op::Constant { .. } => "constant",
        }
    }

    pub fn class(&self) -> LayerClass {
        match self {
            Op::Conv(_) => LayerClass::Conv,
            Op::FullyConnected(_) | Op::Linear(_) => LayerClass::Fc,
            Op::MatMul => LayerClass::MatMul,
            _ => LayerClass::Other,
        }
    }

    /// Whether the op passes its input through unchanged at inference (for looking through
    /// reshapes when an FC layer's spatial input is wanted).
    pub(crate) fn is_reshape_only(&self) -> bool {
        matches!(self, Op::Flatten | Op::Dropout { .. })
    }

    /// Whether the op's cost is element operations (pointwise arithmetic, normalisation,
    /// reductions) rather than MACs or data movement: see [`crate::LayerStats::element_ops`].
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Activation(_)
                | Op::BatchNorm(_)
                | Op::Lrn(_)
                | Op::Add
                | Op::Softmax { .. }
                | Op::Binary(_)
                | Op::Reduce(_)
                | Op::LayerNorm(_)
        )
    }

    /// Number of activation inputs the op accepts: `(min, max)`.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Op::Add => (2, usize::MAX),
            Op::Concat { .. } => (1, usize::MAX),
            Op::MatMul => (2, 2),
            Op::Binary(b) if b.constant.is_none() => (2, 2),
            Op::Constant { .. } => (0, 0),
            _ => (1, 1),
        }
    }

    /// Output shape from the input shapes (already checked for arity); `batch` is the graph
    /// input's batch size, which [`Extent::Batch`] targets scale with.
    pub fn output_dims(&self, inputs: &[Dims], batch: usize) -> Result<Dims, String> {
        let Some(x) = inputs.first() else {
            return match self {
                Op::Constant { dims, target } => Expand {
                    target: target.clone(),
                }
                .output_dims(&Dims::new(dims.clone()), batch),
                _ => Err("has no input".into()),
            };
        };
        let with_n = |s: Shape| Ok(Dims::from(s));
        match self {
            Op::Conv(conv) => {
                let x = nchw(x)?;
                let nest = conv.loop_nest(x)?;
                with_n(Shape::new(x.n, conv.filters, nest.p, nest.q))
            }
            Op::FullyConnected(fc) => {
                if x.rank() < 2 {
                    return Err(format!("expects a batch axis, got {x}"));
                }
                fc.loop_nest(x.nchw())?;
                Ok(Dims::new([x[0], fc.outputs]))
            }
            Op::Pool(pool) => with_n(pool.output_shape(nchw(x)?)?),
            Op::GlobalPool { .. } => {
                let x = nchw(x)?;
                with_n(Shape::new(x.n, x.c, 1, 1))
            }
            Op::Activation(_) | Op::Dropout { .. } => Ok(x.clone()),
            Op::BatchNorm(_) => {
                if x.rank() < 2 {
                    return Err(format!("expects a channel axis, got {x}"));
                }
                Ok(x.clone())
            }
            Op::Lrn(_) => {
                nchw(x)?;
                Ok(x.clone())
            }
            Op::Softmax { axis } => {
                x.axis(*axis)?;
                Ok(x.clone())
            }
            Op::Flatten => {
                if x.is_empty() {
                    return Err("cannot flatten a scalar".into());
                }
                Ok(Dims::new([x[0], x[1..].iter().product()]))
            }
            Op::Add => {
                if let Some(other) = inputs.iter().find(|s| *s != x) {
                    return Err(format!("Add inputs differ in shape: {x} vs {other}"));
                }
                Ok(x.clone())
            }
            Op::Concat { axis } => {
                let a = x.axis(*axis)?;
                let mut out = x.clone();
                out.0[a] = 0;
                for s in inputs {
                    let same_rest =
                        s.rank() == x.rank() && s[..a] == x[..a] && s[a + 1..] == x[a + 1..];
                    if !same_rest {
                        return Err(format!("Concat inputs differ outside axis {a}: {x} vs {s}"));
                    }
                    out.0[a] += s[a];
                }
                Ok(out)
            }
            Op::Linear(fc) => fc.linear_dims(x),
            Op::MatMul => Ok(matmul::matmul(x, &inputs[1])?.0),
            Op::Binary(b) => b.output_dims(inputs),
            Op::Reduce(r) => r.output_dims(x),
            Op::LayerNorm(ln) => {
                ln.normalized(x)?;
                Ok(x.clone())
            }
            Op::Reshape(r) => r.output_dims(x, batch),
            Op::Transpose(t) => t.output_dims(x),
            Op::Slice(s) => s.output_dims(x),
            Op::Gather(g) => g.output_dims(x),
            Op::Squeeze { axes } => layout::squeeze(x, axes),
            Op::Unsqueeze { axes } => layout::unsqueeze(x, axes),
            Op::Pad(p) => p.output_dims(x),
            Op::Expand(e) => e.output_dims(x, batch),
            Op::Constant { .. } => Err("takes no input".into()),
        }
    }

    /// The NCHW view of [`Op::output_dims`] for NCHW inputs, as the CONV/FC path reads it.
    pub fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let dims: Vec<Dims> = inputs.iter().map(|&s| Dims::from(s)).collect();
        let batch = inputs.first().map_or(1, |s| s.n);
        Ok(self.output_dims(&dims, batch)?.nchw())
    }

    /// The loop nest of an op that does MACs (CONV, FC, Linear, MatMul), from its inputs.
    /// FC reads `spatial`, its input before any flattening, so its filter keeps the
    /// `C x H x W` extent of the ifmap it covers.
    pub(crate) fn loop_nest(
        &self,
        inputs: &[Dims],
        spatial: Shape,
    ) -> Result<Option<LoopNest>, String> {
        Ok(Some(match self {
            Op::Conv(conv) => conv.loop_nest(nchw(&inputs[0])?)?,
            Op::FullyConnected(fc) => fc.loop_nest(spatial)?,
            Op::Linear(fc) => fc.linear_nest(&inputs[0])?,
            Op::MatMul => matmul::matmul(&inputs[0], &inputs[1])?.1,
            _ => return Ok(None),
        }))
    }

    /// Shapes of the learned tensors, in the order nodes store them:
    /// CONV `[filter (M, C/groups, R, S), bias (M)]`, FC `[weight (M, C*H*W), bias (M)]`,
    /// Linear `[weight (M, K), bias (M)]`, batch norm `[scale, bias, mean, variance]`, each
    /// of `C`, layer norm `[scale, bias]` of the normalised shape, a binary op's constant
    /// operand, a constant's tensor. Biases only where enabled.
    pub fn param_dims(&self, inputs: &[Dims]) -> Vec<Vec<usize>> {
        let x = inputs.first();
        let per_sample = || x.map_or(0, |x| x.iter().skip(1).product());
        let with_bias = |mut shapes: Vec<Vec<usize>>, bias: bool, m: usize| {
            if bias {
                shapes.push(vec![m]);
            }
            shapes
        };
        match self {
            Op::Conv(conv) => {
                let c = x.map_or(0, |x| x.get(1).copied().unwrap_or(0));
                let filter = vec![conv.filters, c / conv.groups.max(1), conv.r, conv.s];
                with_bias(vec![filter], conv.bias, conv.filters)
            }
            Op::FullyConnected(fc) => {
                with_bias(vec![vec![fc.outputs, per_sample()]], fc.bias, fc.outputs)
            }
            Op::Linear(fc) => {
                let k = x.and_then(|x| x.last().copied()).unwrap_or(0);
                with_bias(vec![vec![fc.outputs, k]], fc.bias, fc.outputs)
            }
            Op::BatchNorm(_) => {
                vec![vec![x.map_or(0, |x| x.get(1).copied().unwrap_or(0))]; 4]
            }
            Op::LayerNorm(ln) => {
                let shape = x.and_then(|x| ln.normalized(x).ok()).unwrap_or_default();
                vec![shape; 1 + ln.bias as usize]
            }
            Op::Binary(Binary {
                constant: Some(c), ..
            }) => vec![c.dims.clone()],
            Op::Constant { dims, .. } => vec![dims.clone()],
            _ => Vec::new(),
        }
    }

    /// [`Op::param_dims`] for an NCHW input.
    pub fn param_shapes(&self, input: Shape) -> Vec<Vec<usize>> {
        self.param_dims(&[Dims::from(input)])
    }
}
