//! Builders for arithmetic, reductions and normalisation: Add/Sub/Mul/Div/Pow with
//! broadcasting, ReduceMean/ReduceSum, LayerNormalization, Softmax.

use super::{layer, reads, Mapping};
use crate::node::NodeCtx;
use crate::ImportError;
use joule_model::ops::{Binary, BinaryKind, ConstantOperand, LayerNorm, Reduce, ReduceKind, Side};
use joule_model::Op;

/// Two activations: the n-ary `Add` of equal shapes where the shapes are known equal (or
/// unknown), else a broadcasting binary op. An activation and a constant: the constant is
/// kept as the op's parameter (an `Add` may instead become a bias, see [`Mapping::Bias`]).
pub(crate) fn binary(ctx: &NodeCtx, kind: BinaryKind) -> Result<Mapping, ImportError> {
    if ctx.proto.input.len() != 2 {
        return Err(ctx.input_error(0, "takes two inputs"));
    }
    let fixed = |i: usize| ctx.has_input(i) && ctx.consts.contains_key(&ctx.proto.input[i]);
    let constant_side = match (fixed(0), fixed(1)) {
        (true, false) => Some(0),
        (false, true) => Some(1),
        _ => None,
    };
    let Some(i) = constant_side else {
        let same = match (ctx.input_dims(0), ctx.input_dims(1)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        if kind == BinaryKind::Add && same && !ctx.is_constant(0) && !ctx.is_constant(1) {
            return Ok(reads(Op::Add, vec![0, 1]));
        }
        // Batch-dependent constants enter as nodes of their own.
        let op = Op::Binary(Binary {
            kind,
            constant: None,
        });
        return Ok(reads(op, vec![0, 1]));
    };
    let c = ctx.constant(i, "operand")?;
    if kind == BinaryKind::Add {
        return Ok(Mapping::Bias {
            data_input: 1 - i,
            bias: c.clone(),
        });
    }
    Ok(Mapping::Layer(super::Layer {
        op: constant_operand(kind, i, c.dims.clone()),
        params: vec![c.to_tensor()],
        inputs: vec![1 - i],
        flatten_to: None,
    }))
}

/// A binary op whose input `index` (0 left, 1 right) is a constant of shape `dims`.
pub(crate) fn constant_operand(kind: BinaryKind, index: usize, dims: Vec<usize>) -> Op {
    Op::Binary(Binary {
        kind,
        constant: Some(ConstantOperand {
            side: if index == 0 { Side::Left } else { Side::Right },
            dims,
        }),
    })
}

/// ReduceMean/ReduceSum: axes an attribute (ReduceMean before opset 18) or input 1.
pub(crate) fn reduce(ctx: &NodeCtx, kind: ReduceKind) -> Result<Mapping, ImportError> {
    let axes = match ctx.ints("axes")? {
        Some(a) => a,
        None => match ctx.optional_constant(1, "axes")? {
            Some(c) => c.as_ints(),
            None => Vec::new(),
        },
    };
    if axes.is_empty() && ctx.int("noop_with_empty_axes", 0)? != 0 {
        return Ok(Mapping::Alias);
    }
    let op = Op::Reduce(Reduce {
        kind,
        axes,
        keep_dims: ctx.int("keepdims", 1)? != 0,
    });
    Ok(layer(op, vec![]))
}

pub(crate) fn layer_norm(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let scale = ctx.constant(1, "scale")?;
    let mut params = vec![scale.to_tensor()];
    if let Some(b) = ctx.optional_constant(2, "bias B")? {
        if b.dims != scale.dims {
            return Err(ctx.input_error(
                2,
                format!("bias has dims {:?}, scale {:?}", b.dims, scale.dims),
            ));
        }
        params.push(b.to_tensor());
    }
    let op = Op::LayerNorm(LayerNorm {
        axis: ctx.int("axis", -1)?,
        epsilon: ctx.float("epsilon", 1e-5)?,
        bias: params.len() == 2,
    });
    Ok(layer(op, params))
}

/// From opset 13 a softmax over one axis. Before, the input is flattened to 2-D at `axis`,
/// which is a softmax over one axis when `axis` is the last (or only the class axis of an
/// `[N, K]` or `[N, K, 1, 1]` tensor is non-trivial).
pub(crate) fn softmax(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    if ctx.opset >= 13 {
        let axis = ctx.int("axis", -1)?;
        return Ok(layer(Op::Softmax { axis }, vec![]));
    }
    let axis = ctx.int("axis", 1)?;
    let rank = ctx.input_dims(0).map(|d| d.rank());
    let trailing_ones = ctx
        .input_dims(0)
        .is_some_and(|d| d.len() > 2 && d[2..].iter().all(|&x| x == 1));
    match (axis, rank) {
        (-1, _) => Ok(layer(Op::Softmax { axis: -1 }, vec![])),
        (a, Some(r)) if a == r as i64 - 1 => Ok(layer(Op::Softmax { axis: -1 }, vec![])),
        (1, None | Some(2)) => Ok(layer(Op::Softmax { axis: 1 }, vec![])),
        (1, Some(_)) if trailing_ones => Ok(layer(Op::Softmax { axis: 1 }, vec![])),
        (axis, _) => Err(ctx.attr_error(
            "axis",
            format!("a softmax over the axes from {axis} on (before opset 13) is not supported"),
        )),
    }
}
