//! The op table: one small builder per ONNX op type, reading attributes with the
//! specification's defaults and mapping the node onto an IR op.

mod elementwise;
mod layout;

use crate::node::NodeCtx;
use crate::tensor::Constant;
use crate::ImportError;
pub(crate) use elementwise::constant_operand;
use elementwise::{binary, layer_norm, reduce, softmax};
use joule_model::ops::{
    Activation, BatchNorm, BinaryKind, Conv, Expand, FullyConnected, Lrn, Padding, Pool, PoolKind,
    ReduceKind,
};
use joule_model::{Op, Tensor};
use layout::{concat, flatten, gather, pad, reshape, slice, split, squeeze, transpose_op};

/// What an ONNX node becomes.
pub(crate) enum Mapping {
    /// An IR node reading some of the node's inputs as activations.
    Layer(Layer),
    /// No IR node: the output is the first input (Identity, a Cast to float).
    Alias,
    /// `x + constant`: the bias of the preceding bias-free FC or Linear layer (MatMul then
    /// Add) where there is one, else a broadcasting add of a constant.
    Bias { data_input: usize, bias: Constant },
    /// One IR node per output, each reading the first input (Split).
    PerOutput(Vec<Op>),
    /// Several IR nodes in order, the last giving the output: an Einsum product whose
    /// operands must be transposed first.
    Steps(Vec<Step>),
}

/// One IR node of [`Mapping::Steps`].
pub(crate) struct Step {
    pub op: Op,
    pub inputs: Vec<Operand>,
}

/// What a [`Step`] reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Operand {
    /// The ONNX node's input of this index.
    Input(usize),
    /// The output of an earlier step.
    Step(usize),
}

pub(crate) struct Layer {
    pub op: Op,
    pub params: Vec<Tensor>,
    /// The ONNX inputs the IR node reads, in order; a constant among them enters the graph
    /// as an `Op::Constant` node.
    pub inputs: Vec<usize>,
    /// For flattening Reshapes to `(N, K)`: K, checked once shapes are known.
    pub flatten_to: Option<usize>,
}

fn layer(op: Op, params: Vec<Tensor>) -> Mapping {
    Mapping::Layer(Layer {
        op,
        params,
        inputs: vec![0],
        flatten_to: None,
    })
}

fn reads(op: Op, inputs: Vec<usize>) -> Mapping {
    Mapping::Layer(Layer {
        op,
        params: vec![],
        inputs,
        flatten_to: None,
    })
}

fn activation(a: Activation) -> Result<Mapping, ImportError> {
    Ok(layer(Op::Activation(a), vec![]))
}

type Builder = fn(&NodeCtx) -> Result<Mapping, ImportError>;

/// The builder for an op type, or `None` if joule cannot map it.
pub(crate) fn builder(op_type: &str) -> Option<Builder> {
    Some(match op_type {
        "Conv" => conv,
        "Gemm" => gemm,
        "MatMul" => matmul,
        "Einsum" => einsum,
        "BatchNormalization" => batch_norm,
        "LayerNormalization" => layer_norm,
        "Relu" => |_| activation(Activation::Relu),
        "Sigmoid" => |_| activation(Activation::Sigmoid),
        "Tanh" => |_| activation(Activation::Tanh),
        "HardSwish" => |_| activation(Activation::HardSwish),
        "Erf" => |_| activation(Activation::Erf),
        "Sqrt" => |_| activation(Activation::Sqrt),
        "HardSigmoid" => |ctx| {
            activation(Activation::HardSigmoid {
                alpha: ctx.float("alpha", 0.2)?,
                beta: ctx.float("beta", 0.5)?,
            })
        },
        "Gelu" => |ctx| match ctx.string("approximate", "none")?.as_str() {
            "none" => activation(Activation::Gelu),
            other => Err(ctx.attr_error(
                "approximate",
                format!("{other:?} is not supported (only the exact GELU)"),
            )),
        },
        "LeakyRelu" => |ctx| {
            activation(Activation::LeakyRelu {
                alpha: ctx.float("alpha", 0.01)?,
            })
        },
        "Clip" => clip,
        "MaxPool" => |ctx| pool(ctx, PoolKind::Max),
        "AveragePool" => |ctx| pool(ctx, PoolKind::Average),
        "GlobalAveragePool" => |_| {
            Ok(layer(
                Op::GlobalPool {
                    kind: PoolKind::Average,
                },
                vec![],
            ))
        },
        "GlobalMaxPool" => |_| {
            Ok(layer(
                Op::GlobalPool {
                    kind: PoolKind::Max,
                },
                vec![],
            ))
        },
        "Concat" => concat,
        "Add" => |ctx| binary(ctx, BinaryKind::Add),
        "Sub" => |ctx| binary(ctx, BinaryKind::Sub),
        "Mul" => |ctx| binary(ctx, BinaryKind::Mul),
        "Div" => |ctx| binary(ctx, BinaryKind::Div),
        "Pow" => |ctx| binary(ctx, BinaryKind::Pow),
        "ReduceMean" => |ctx| reduce(ctx, ReduceKind::Mean),
        "ReduceSum" => |ctx| reduce(ctx, ReduceKind::Sum),
        "ReduceL2" => |ctx| reduce(ctx, ReduceKind::L2),
        "Flatten" => flatten,
        "Reshape" => reshape,
        "Transpose" => transpose_op,
        "Squeeze" => |ctx| squeeze(ctx, false),
        "Unsqueeze" => |ctx| squeeze(ctx, true),
        "Gather" => gather,
        "Slice" => slice,
        "Split" => split,
        "Pad" => pad,
        "Expand" => |ctx| {
            let target = ctx.extents(1, "target shape", false)?;
            Ok(layer(Op::Expand(Expand { target }), vec![]))
        },
        "Softmax" => softmax,
        "Dropout" => dropout,
        "LRN" => lrn,
        "Identity" => |_| Ok(Mapping::Alias),
        "Cast" => |ctx| match ctx.int("to", 1)? {
            1 => Ok(Mapping::Alias),
            to => Err(ctx.attr_error(
                "to",
                format!("casting an activation to data type {to} is not supported"),
            )),
        },
        _ => return None,
    })
}

/// ONNX `pads` are `[top, left, bottom, right]` for 2-D ops.
fn padding(ctx: &NodeCtx) -> Result<Padding, ImportError> {
    let auto_pad = ctx.string("auto_pad", "NOTSET")?;
    if auto_pad != "NOTSET" && auto_pad != "VALID" {
        return Err(ctx.attr_error(
            "auto_pad",
            format!("{auto_pad} is not supported; export the model with explicit pads"),
        ));
    }
    match ctx.ints("pads")? {
        None => Ok(Padding::default()),
        Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => Ok(Padding {
            top: p[0] as usize,
            left: p[1] as usize,
            bottom: p[2] as usize,
            right: p[3] as usize,
        }),
        Some(p) => {
            Err(ctx.attr_error("pads", format!("expected 4 non-negative values, got {p:?}")))
        }
    }
}

fn conv(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let w = ctx.constant(1, "filter W")?;
    if w.dims.len() != 4 {
        return Err(ctx.input_error(
            1,
            format!(
                "only 2-D convolution is supported (W has dims {:?})",
                w.dims
            ),
        ));
    }
    let (m, r, s) = (w.dims[0], w.dims[2], w.dims[3]);
    let kernel = ctx.sizes("kernel_shape", 2, 0);
    if let Ok(k) = &kernel {
        if k != &[0, 0] && k != &[r, s] {
            return Err(ctx.attr_error("kernel_shape", format!("{k:?} disagrees with W's {r}x{s}")));
        }
    }
    kernel?;
    let stride = ctx.sizes("strides", 2, 1)?;
    let dilation = ctx.sizes("dilations", 2, 1)?;
    let groups = ctx.int("group", 1)?;
    if groups < 1 {
        return Err(ctx.attr_error("group", format!("must be positive, got {groups}")));
    }
    let mut params = vec![w.to_tensor()];
    if let Some(b) = ctx.optional_constant(2, "bias B")? {
        if b.len() != m {
            return Err(ctx.input_error(2, format!("bias has {} values for {m} filters", b.len())));
        }
        params.push(b.reshaped(vec![m]));
    }
    let op = Op::Conv(Conv {
        filters: m,
        r,
        s,
        stride_h: stride[0],
        stride_w: stride[1],
        padding: padding(ctx)?,
        dilation_h: dilation[0],
        dilation_w: dilation[1],
        groups: groups as usize,
        bias: params.len() == 2,
    });
    Ok(layer(op, params))
}

/// Row-major transpose of a `rows x cols` matrix.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = values[i * cols + j];
        }
    }
    out
}

/// An FC layer from a `K x M` (or, with `transposed`, `M x K`) weight matrix.
fn fully_connected(
    ctx: &NodeCtx,
    b: &Constant,
    transposed: bool,
    alpha: f32,
) -> Result<(usize, Tensor), ImportError> {
    if b.dims.len() != 2 {
        return Err(ctx.input_error(1, format!("weight must be 2-D, has dims {:?}", b.dims)));
    }
    let (m, k, data) = if transposed {
        (b.dims[0], b.dims[1], b.values.clone())
    } else {
        (
            b.dims[1],
            b.dims[0],
            transpose(&b.values, b.dims[0], b.dims[1]),
        )
    };
    let data = data.into_iter().map(|v| v * alpha).collect();
    Ok((
        m,
        Tensor {
            shape: vec![m, k],
            data,
        },
    ))
}

fn gemm(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    if ctx.int("transA", 0)? != 0 {
        return Err(ctx.attr_error("transA", "a transposed data input is not supported"));
    }
    let alpha = ctx.float("alpha", 1.0)?;
    let beta = ctx.float("beta", 1.0)?;
    if !ctx.is_constant(1) {
        return activation_product(ctx, alpha);
    }
    let b = ctx.constant(1, "weight B")?;
    let (m, weight) = fully_connected(ctx, b, ctx.int("transB", 0)? != 0, alpha)?;
    let mut params = vec![weight];
    if let Some(c) = ctx.optional_constant(2, "bias C")? {
        if c.len() != m {
            return Err(ctx.input_error(2, format!("bias has {} values for {m} outputs", c.len())));
        }
        params.push(Tensor {
            shape: vec![m],
            data: c.values.iter().map(|v| v * beta).collect(),
        });
    }
    let bias = params.len() == 2;
    Ok(layer(
        Op::FullyConnected(FullyConnected { outputs: m, bias }),
        params,
    ))
}

/// Gemm of two activations: their MatMul, where no transposed B, scaling or C asks for more.
fn activation_product(ctx: &NodeCtx, alpha: f32) -> Result<Mapping, ImportError> {
    if ctx.int("transB", 0)? != 0 {
        return Err(ctx.attr_error("transB", "a transposed activation B is not supported"));
    }
    if alpha != 1.0 {
        return Err(ctx.attr_error("alpha", "scaling a product of activations is not supported"));
    }
    if ctx.has_input(2) {
        return Err(ctx.input_error(2, "C with a product of activations is not supported"));
    }
    Ok(reads(Op::MatMul, vec![0, 1]))
}

/// Einsum as a batched matrix product, `...ij,...jk->...ik` with the same batch letters,
/// either operand possibly stored transposed (`...ji`, `...kj`: MaxViT's `Q K^T` is
/// `BGHID,BGHJD->BGHIJ`), which becomes a Transpose before the MatMul.
fn einsum(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let equation: String = ctx
        .string("equation", "")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let unsupported = || {
        ctx.attr_error(
            "equation",
            format!(
                "{equation:?} is not supported (only batched matrix products ...ij,...jk->...ik, \
                 operands possibly transposed)"
            ),
        )
    };
    let (inputs, output) = equation.split_once("->").ok_or_else(unsupported)?;
    let (a, b) = inputs.split_once(',').ok_or_else(unsupported)?;
    let (a, b, out): (Vec<char>, Vec<char>, Vec<char>) = (
        a.chars().collect(),
        b.chars().collect(),
        output.chars().collect(),
    );
    let rank = a.len();
    let letters_ok = [&a, &b, &out]
        .iter()
        .all(|t| t.iter().all(|c| c.is_ascii_alphabetic()));
    if !letters_ok || rank < 2 || b.len() != rank || out.len() != rank {
        return Err(unsupported());
    }
    let plan = einsum_plan(&a, &b, &out).ok_or_else(unsupported)?;
    if ctx.is_constant(0) || ctx.is_constant(1) {
        return Err(unsupported());
    }
    let mut steps = Vec::new();
    let mut operand = |input: usize, transposed: bool| {
        if !transposed {
            return Operand::Input(input);
        }
        let mut perm: Vec<usize> = (0..rank).collect();
        perm.swap(rank - 2, rank - 1);
        steps.push(Step {
            op: Op::Transpose(joule_model::ops::Transpose { perm }),
            inputs: vec![Operand::Input(input)],
        });
        Operand::Step(steps.len() - 1)
    };
    let (x, y) = (operand(0, plan.0), operand(1, plan.1));
    steps.push(Step {
        op: Op::MatMul,
        inputs: vec![x, y],
    });
    Ok(match steps.as_slice() {
        [_] => reads(Op::MatMul, vec![0, 1]),
        _ => Mapping::Steps(steps),
    })
}

/// Whether the operands of the Einsum `a,b->out` (letters, one rank) are stored transposed
/// relative to `...ij,...jk->...ik`; `None` when it is no batched matrix product.
fn einsum_plan(a: &[char], b: &[char], out: &[char]) -> Option<(bool, bool)> {
    let rank = out.len();
    if rank < 2 || a.len() != rank || b.len() != rank {
        return None;
    }
    let batch = &out[..rank - 2];
    let (i, k) = (out[rank - 2], out[rank - 1]);
    // The summed letter: in a's last two, not in the output.
    let j = *a[rank - 2..].iter().find(|c| !out.contains(c))?;
    let distinct = i != j && j != k && i != k && ![i, j, k].iter().any(|c| batch.contains(c));
    let same_batch = a[..rank - 2] == *batch && b[..rank - 2] == *batch;
    let a_t = match a[rank - 2..] {
        [x, y] if [x, y] == [i, j] => false,
        [x, y] if [x, y] == [j, i] => true,
        _ => return None,
    };
    let b_t = match b[rank - 2..] {
        [x, y] if [x, y] == [j, k] => false,
        [x, y] if [x, y] == [k, j] => true,
        _ => return None,
    };
    (distinct && same_batch).then_some((a_t, b_t))
}

/// `x W` with a constant `W`: an FC layer on a matrix, a Linear layer (last axis) on a
/// higher-rank input; the product of two activations is a MatMul layer.
fn matmul(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    if !ctx.is_constant(1) {
        if ctx.is_constant(0) {
            return Err(ctx.input_error(
                0,
                "a constant left operand of MatMul is not supported (only x W and x y)",
            ));
        }
        return Ok(reads(Op::MatMul, vec![0, 1]));
    }
    let b = ctx.constant(1, "weight B")?;
    let (m, weight) = fully_connected(ctx, b, false, 1.0)?;
    let fc = FullyConnected {
        outputs: m,
        bias: false,
    };
    // A constant left operand has no followed dims but its own (Swin V2's position-bias MLP
    // runs on a constant table of coordinates, N x H x W x 2).
    let rank = match ctx.input_dims(0) {
        Some(d) => Some(d.rank()),
        None if ctx.is_constant(0) => Some(ctx.constant(0, "A")?.dims.len()),
        None => None,
    };
    let op = match rank {
        Some(r) if r != 2 => Op::Linear(fc),
        _ => Op::FullyConnected(fc),
    };
    Ok(layer(op, vec![weight]))
}

fn batch_norm(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    if ctx.int("training_mode", 0)? != 0 {
        return Err(ctx.attr_error(
            "training_mode",
            "only inference-mode batch norm is supported",
        ));
    }
    let epsilon = ctx.float("epsilon", 1e-5)?;
    let names = ["scale", "bias B", "mean", "var"];
    let mut params = Vec::with_capacity(4);
    for (i, what) in names.iter().enumerate() {
        let t = ctx.constant(i + 1, what)?;
        params.push(t.reshaped(vec![t.len()]));
    }
    let channels = params[0].len();
    if let Some(i) = params.iter().position(|p| p.len() != channels) {
        return Err(ctx.input_error(
            i + 1,
            format!("has {} values, scale has {channels}", params[i].len()),
        ));
    }
    Ok(layer(Op::BatchNorm(BatchNorm { epsilon }), params))
}

fn clip(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    // Opset 11 moved min/max from attributes to optional constant inputs.
    let (min, max) = if ctx.opset >= 11 {
        let bound = |i: usize, what: &str, default: f32| -> Result<f32, ImportError> {
            match ctx.optional_constant(i, what)? {
                Some(c) if c.len() == 1 => Ok(c.values[0]),
                Some(_) => Err(ctx.input_error(i, format!("{what} must be a scalar"))),
                None => Ok(default),
            }
        };
        (
            bound(1, "min", f32::NEG_INFINITY)?,
            bound(2, "max", f32::INFINITY)?,
        )
    } else {
        (
            ctx.float("min", f32::NEG_INFINITY)?,
            ctx.float("max", f32::INFINITY)?,
        )
    };
    let act = if min == 0.0 && max == 6.0 {
        Activation::Relu6
    } else if min == 0.0 && max == f32::INFINITY {
        Activation::Relu
    } else {
        Activation::Clip { min, max }
    };
    Ok(layer(Op::Activation(act), vec![]))
}

fn pool(ctx: &NodeCtx, kind: PoolKind) -> Result<Mapping, ImportError> {
    if ctx.ints("kernel_shape")?.is_none() {
        return Err(ctx.attr_error("kernel_shape", "is required"));
    }
    let kernel = ctx.sizes("kernel_shape", 2, 1)?;
    let stride = ctx.sizes("strides", 2, 1)?;
    if ctx.sizes("dilations", 2, 1)? != [1, 1] {
        return Err(ctx.attr_error("dilations", "dilated pooling is not supported"));
    }
    let op = Op::Pool(Pool {
        kind,
        kernel_h: kernel[0],
        kernel_w: kernel[1],
        stride_h: stride[0],
        stride_w: stride[1],
        padding: padding(ctx)?,
        ceil_mode: ctx.int("ceil_mode", 0)? != 0,
        count_include_pad: ctx.int("count_include_pad", 0)? != 0,
    });
    Ok(layer(op, vec![]))
}

fn dropout(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let ratio = match ctx.optional_constant(1, "ratio")? {
        Some(c) if c.len() == 1 => c.values[0],
        Some(_) => return Err(ctx.input_error(1, "ratio must be a scalar")),
        None => ctx.float("ratio", 0.5)?,
    };
    Ok(layer(Op::Dropout { ratio }, vec![]))
}

fn lrn(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let size = ctx.int("size", 0)?;
    if size < 1 {
        return Err(ctx.attr_error("size", "is required and must be positive"));
    }
    Ok(layer(
        Op::Lrn(Lrn {
            size: size as usize,
            alpha: ctx.float("alpha", 1e-4)?,
            beta: ctx.float("beta", 0.75)?,
            bias: ctx.float("bias", 1.0)?,
        }),
        vec![],
    ))
}

#[cfg(test)]
mod tests {
    use super::einsum_plan;

    fn plan(equation: &str) -> Option<(bool, bool)> {
        let (inputs, out) = equation.split_once("->").unwrap();
        let (a, b) = inputs.split_once(',').unwrap();
        let letters = |s: &str| s.chars().collect::<Vec<_>>();
        einsum_plan(&letters(a), &letters(b), &letters(out))
    }

    #[test]
    fn einsum_products_and_their_transposes() {
        assert_eq!(plan("bij,bjk->bik"), Some((false, false)));
        // MaxViT: Q K^T with K stored as its rows, then the scores times V.
        assert_eq!(plan("BGHID,BGHJD->BGHIJ"), Some((false, true)));
        assert_eq!(plan("BGHIJ,BGHJD->BGHID"), Some((false, false)));
        assert_eq!(plan("bji,bjk->bik"), Some((true, false)));
        assert_eq!(plan("bji,bkj->bik"), Some((true, true)));
        // Not matrix products: an outer product, the output's letters swapped, batches that
        // differ, a letter of the output missing.
        assert_eq!(plan("bi,bk->bik"), None);
        assert_eq!(plan("bij,bjk->bki"), None);
        assert_eq!(plan("bij,cjk->bik"), None);
        assert_eq!(plan("bij,bjk->bij"), None);
        // A^T B, summed over the letter both operands store first.
        assert_eq!(plan("bij,bik->bjk"), Some((true, false)));
    }
}
