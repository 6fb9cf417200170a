//! Builders for ops that move elements: Concat, Flatten, Reshape, Transpose, Squeeze,
//! Unsqueeze, Gather, Slice, Split, Pad.

use super::{layer, reads, Layer, Mapping};
use crate::fold;
use crate::node::NodeCtx;
use crate::tensor::Constant;
use crate::ImportError;
use joule_model::ops::{Extent, Gather, Pad, Reshape, Slice, SliceAxis, Transpose};
use joule_model::{normalize_axis, Op};

/// Concatenation along axis 1 (channels, or tokens of `[N, T, D]`).
pub(crate) fn concat(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let axis = ctx.int("axis", i64::MIN)?;
    if axis == i64::MIN {
        return Err(ctx.attr_error("axis", "is required"));
    }
    // A known rank makes the axis non-negative, so a channel concatenation written as -3
    // stays the zoo's channel concatenation (which pruning and training understand).
    let rank = (0..ctx.proto.input.len()).find_map(|i| ctx.input_dims(i).map(|d| d.rank()));
    let axis = match rank {
        Some(r) => normalize_axis(axis, r).map_err(|e| ctx.attr_error("axis", e))? as i64,
        None => axis,
    };
    Ok(reads(
        Op::Concat { axis },
        (0..ctx.proto.input.len()).collect(),
    ))
}

pub(crate) fn flatten(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    match ctx.int("axis", 1)? {
        1 => Ok(layer(Op::Flatten, vec![])),
        axis => match ctx.input_dims(0) {
            Some(d) => {
                let axis = d.axis(axis).map_err(|e| ctx.attr_error("axis", e))?;
                let outer = d[..axis].iter().product();
                let inner = d[axis..].iter().product();
                let target = vec![Extent::Fixed(outer), Extent::Fixed(inner)];
                Ok(layer(Op::Reshape(Reshape { target }), vec![]))
            }
            None => Err(ctx.attr_error(
                "axis",
                format!("axis {axis} needs the input's shape, which the file leaves symbolic"),
            )),
        },
    }
}

/// A flattening reshape to `(N, K)` stays a Flatten (so an FC after it keeps the ifmap's
/// `C x H x W` extent); any other target is a general Reshape.
pub(crate) fn reshape(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let target = match ctx.opset {
        ..=4 => {
            let shape = ctx
                .ints("shape")?
                .ok_or_else(|| ctx.attr_error("shape", "is required"))?;
            shape
                .iter()
                .map(|&v| match v {
                    0 => Extent::Copy,
                    -1 => Extent::Infer,
                    v => Extent::Fixed(v.max(0) as usize),
                })
                .collect()
        }
        _ => ctx.extents(1, "target shape", ctx.int("allowzero", 0)? == 0)?,
    };
    let general = Op::Reshape(Reshape {
        target: target.clone(),
    });
    if let Some(d) = ctx.input_dims(0) {
        // Known shapes: a Flatten exactly when the result is [N, rest].
        let batch = ctx.batches.first().copied().unwrap_or(1);
        let out = general
            .output_dims(std::slice::from_ref(d), batch)
            .map_err(|e| ctx.input_error(1, e))?;
        let flattens = d.rank() >= 2 && out.rank() == 2 && out[0] == d[0];
        return Ok(layer(if flattens { Op::Flatten } else { general }, vec![]));
    }
    let flatten_to = match target.as_slice() {
        [Extent::Copy | Extent::Infer | Extent::Fixed(_) | Extent::Batch(1), k] => match *k {
            Extent::Infer => None,
            Extent::Fixed(k) if k > 0 => Some(k),
            _ => return Ok(layer(general, vec![])),
        },
        _ => return Ok(layer(general, vec![])),
    };
    Ok(Mapping::Layer(Layer {
        op: Op::Flatten,
        params: vec![],
        inputs: vec![0],
        flatten_to,
    }))
}

pub(crate) fn transpose_op(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let perm = match ctx.ints("perm")? {
        Some(p) => p,
        None => {
            let rank = ctx.input_dims(0).map(|d| d.rank()).ok_or_else(|| {
                ctx.attr_error("perm", "the default (reversal) needs the input's rank")
            })?;
            (0..rank as i64).rev().collect()
        }
    };
    let perm = perm
        .iter()
        .map(|&p| usize::try_from(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ctx.attr_error("perm", format!("negative axis in {perm:?}")))?;
    Ok(layer(Op::Transpose(Transpose { perm }), vec![]))
}

fn constants<'a>(ctx: &'a NodeCtx) -> Vec<Option<&'a Constant>> {
    (0..ctx.proto.input.len())
        .map(|i| {
            ctx.has_input(i)
                .then(|| ctx.consts.get(&ctx.proto.input[i]))
                .flatten()
        })
        .collect()
}

pub(crate) fn squeeze(ctx: &NodeCtx, unsqueeze: bool) -> Result<Mapping, ImportError> {
    let mut axes = fold::axes(ctx, &constants(ctx))?;
    if unsqueeze {
        return Ok(layer(Op::Unsqueeze { axes }, vec![]));
    }
    if axes.is_empty() {
        // Every axis of size 1, which the IR keeps explicit.
        let d = ctx.input_dims(0).ok_or_else(|| {
            ctx.attr_error("axes", "squeezing every unit axis needs the input's shape")
        })?;
        axes = (0..d.rank() as i64)
            .filter(|&i| d[i as usize] == 1)
            .collect();
    }
    Ok(layer(Op::Squeeze { axes }, vec![]))
}

pub(crate) fn gather(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let idx = ctx.constant(1, "indices")?;
    if idx.dims.len() > 1 {
        return Err(ctx.input_error(1, "indices of rank above 1 are not supported"));
    }
    let op = Op::Gather(Gather {
        axis: ctx.int("axis", 0)?,
        indices: idx.as_ints(),
        scalar: idx.dims.is_empty(),
    });
    Ok(layer(op, vec![]))
}

pub(crate) fn slice(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    for i in 1..ctx.proto.input.len() {
        if ctx.has_input(i) {
            ctx.constant(i, "slice bound")?;
        }
    }
    let axes = fold::slice_spec(ctx, &constants(ctx))?;
    Ok(layer(Op::Slice(Slice { axes }), vec![]))
}

/// Each output of a Split is a Slice of the input.
pub(crate) fn split(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let axis = ctx.int("axis", 0)?;
    let outputs = ctx.proto.output.len();
    let sizes: Vec<i64> = match ctx.ints("split")? {
        Some(s) => s,
        None => match ctx.optional_constant(1, "split")? {
            Some(c) => c.as_ints(),
            None => {
                let d = ctx.input_dims(0).ok_or_else(|| {
                    ctx.attr_error("split", "an even split needs the input's shape")
                })?;
                let size = d[d.axis(axis).map_err(|e| ctx.attr_error("axis", e))?] as i64;
                let parts = ctx.int("num_outputs", outputs as i64)?.max(1);
                let each = (size + parts - 1) / parts;
                (0..parts).map(|i| each.min(size - i * each)).collect()
            }
        },
    };
    if sizes.len() != outputs {
        return Err(ctx.attr_error(
            "split",
            format!("{} sizes for {outputs} outputs", sizes.len()),
        ));
    }
    let mut start = 0;
    let ops = sizes
        .iter()
        .map(|&len| {
            let op = Op::Slice(Slice {
                axes: vec![SliceAxis {
                    axis,
                    start,
                    end: start + len,
                    step: 1,
                }],
            });
            start += len;
            op
        })
        .collect();
    Ok(Mapping::PerOutput(ops))
}

/// Constant-mode padding; pads an attribute before opset 11, an input from 11 on.
pub(crate) fn pad(ctx: &NodeCtx) -> Result<Mapping, ImportError> {
    let mode = ctx.string("mode", "constant")?;
    if mode != "constant" {
        return Err(ctx.attr_error("mode", format!("{mode} padding is not supported")));
    }
    let (pads, value) = if ctx.opset < 11 {
        let pads = ctx
            .ints("pads")?
            .ok_or_else(|| ctx.attr_error("pads", "is required"))?;
        (pads, ctx.float("value", 0.0)?)
    } else {
        let pads = ctx.constant(1, "pads")?.as_ints();
        let value = match ctx.optional_constant(2, "constant_value")? {
            Some(c) if c.len() == 1 => c.values[0],
            Some(_) => return Err(ctx.input_error(2, "constant_value must be a scalar")),
            None => 0.0,
        };
        (pads, value)
    };
    if ctx.has_input(3) {
        return Err(ctx.input_error(3, "padding selected axes is not supported"));
    }
    if pads.iter().any(|&p| p < 0) || pads.len() % 2 != 0 {
        return Err(ctx.input_error(1, format!("unsupported pads {pads:?} (cropping)")));
    }
    let half = pads.len() / 2;
    let op = Op::Pad(Pad {
        begin: pads[..half].iter().map(|&p| p as usize).collect(),
        end: pads[half..].iter().map(|&p| p as usize).collect(),
        value,
    });
    Ok(layer(op, vec![]))
}
