//! Constant folding: nodes whose inputs are all known at import time (initializers,
//! `Constant`s, and the shapes of activations) are evaluated here instead of becoming IR
//! nodes. Exporters compute `Reshape` and `Expand` targets this way (`Shape`, `Gather`,
//! `Unsqueeze`, `Concat`, arithmetic, `Cast`), and derive constants such as attention's
//! `1 / sqrt(d)`.

use crate::node::NodeCtx;
use crate::tensor::Constant;
use crate::ImportError;
use joule_model::{broadcast, broadcast_indices as indices, normalize_axis, Dims};

/// Whether `op_type` can be evaluated on constant inputs.
pub(crate) fn foldable(op_type: &str) -> bool {
    matches!(
        op_type,
        "Constant"
            | "Identity"
            | "Cast"
            | "Gather"
            | "Unsqueeze"
            | "Squeeze"
            | "Reshape"
            | "Flatten"
            | "Concat"
            | "Slice"
            | "Add"
            | "Sub"
            | "Mul"
            | "Div"
            | "Pow"
            | "Mod"
            | "Equal"
            | "Less"
            | "Greater"
            | "Min"
            | "Max"
            | "Where"
            | "Sqrt"
            | "Neg"
            | "Abs"
            | "Reciprocal"
            | "Floor"
            | "Ceil"
            | "ConstantOfShape"
            | "Expand"
            | "Range"
            | "Transpose"
            | "Shape"
            | "ScatterND"
            | "Not"
            | "Exp"
            | "Clip"
    )
}

/// The node's output (first output) for constant `inputs` (absent optional inputs `None`).
pub(crate) fn fold(ctx: &NodeCtx, inputs: &[Option<&Constant>]) -> Result<Constant, ImportError> {
    let input = |i: usize| -> Result<&Constant, ImportError> {
        inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| ctx.input_error(i, "missing input"))
    };
    let err = |detail: String| ctx.input_error(0, detail);
    let op = ctx.proto.op_type.as_str();
    Ok(match op {
        "Constant" => constant(ctx)?,
        "Identity" => input(0)?.clone(),
        // The shape of a constant (Swin's attention takes that of its relative-position
        // bias); the shape of an activation is read from the followed dims, in import.rs.
        "Shape" => {
            let x = input(0)?;
            let (start, end) = (ctx.int("start", 0)?, ctx.int("end", i64::MAX)?);
            let v: Vec<i64> = x.dims[shape_range(x.dims.len(), start, end)]
                .iter()
                .map(|&d| d as i64)
                .collect();
            Constant::int(vec![v.len()], v)
        }
        "Cast" => {
            let x = input(0)?;
            // FLOAT, FLOAT16, DOUBLE, BFLOAT16 stay real; every other type is an integer.
            match ctx.int("to", 1)? {
                1 | 10 | 11 | 16 => Constant::float(x.dims.clone(), x.values.clone()),
                9 => Constant::int(
                    x.dims.clone(),
                    x.values.iter().map(|&v| (v != 0.0) as i64).collect(),
                ),
                _ => Constant::int(x.dims.clone(), x.as_ints()),
            }
        }
        "Gather" => {
            let (x, idx) = (input(0)?, input(1)?);
            gather(x, idx, ctx.int("axis", 0)?).map_err(err)?
        }
        "Unsqueeze" | "Squeeze" => {
            let x = input(0)?;
            let axes = axes(ctx, inputs)?;
            let d = Dims::new(x.dims.clone());
            let dims = if op == "Unsqueeze" {
                unsqueeze_dims(&d, &axes)
            } else {
                squeeze_dims(&d, &axes)
            }
            .map_err(err)?;
            Constant { dims, ..x.clone() }
        }
        "Reshape" => {
            let x = input(0)?;
            let target = input(1)?.as_ints();
            let dims = reshape_dims(&x.dims, &target, ctx.int("allowzero", 0)? != 0)
                .map_err(|e| ctx.input_error(1, e))?;
            Constant { dims, ..x.clone() }
        }
        "Flatten" => {
            let x = input(0)?;
            let axis = normalize_axis(ctx.int("axis", 1)?, x.dims.len() + 1).map_err(err)?;
            let outer = x.dims[..axis].iter().product();
            let inner = x.dims[axis..].iter().product();
            Constant {
                dims: vec![outer, inner],
                ..x.clone()
            }
        }
        "Concat" => {
            let parts: Vec<&Constant> = inputs.iter().flatten().copied().collect();
            concat(&parts, ctx.int("axis", 0)?).map_err(err)?
        }
        "Slice" => slice(ctx, inputs)?,
        // Swin builds its shifted-window mask by assigning to regions of a zero tensor.
        "ScatterND" => {
            if ctx.string("reduction", "none")? != "none" {
                return Err(ctx.attr_error("reduction", "only plain assignment is folded"));
            }
            scatter_nd(input(0)?, input(1)?, input(2)?).map_err(err)?
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Mod" | "Equal" | "Less" | "Greater" | "Min"
        | "Max" => {
            let (a, b) = (input(0)?, input(1)?);
            let fmod = ctx.int("fmod", 0)? != 0;
            binary(op, a, b, fmod).map_err(err)?
        }
        "Where" => {
            let (c, a, b) = (input(0)?, input(1)?, input(2)?);
            let out = broadcast(&c.dims, &a.dims)
                .and_then(|d| broadcast(&d, &b.dims))
                .and_then(|d| bounded(&d).map(|()| d))
                .map_err(err)?;
            let (ic, ia, ib) = (
                indices(&c.dims, &out),
                indices(&a.dims, &out),
                indices(&b.dims, &out),
            );
            let cond = c.as_ints();
            let pick = |k: usize| cond[ic[k]] != 0;
            match (&a.ints, &b.ints) {
                (Some(x), Some(y)) => Constant::int(
                    out.to_vec(),
                    (0..ic.len())
                        .map(|k| if pick(k) { x[ia[k]] } else { y[ib[k]] })
                        .collect(),
                ),
                _ => Constant::float(
                    out.to_vec(),
                    (0..ic.len())
                        .map(|k| {
                            if pick(k) {
                                a.values[ia[k]]
                            } else {
                                b.values[ib[k]]
                            }
                        })
                        .collect(),
                ),
            }
        }
        // Swin turns its constant window mask into booleans (`mask != 0`).
        "Not" => {
            let x = input(0)?;
            Constant::int(
                x.dims.clone(),
                x.as_ints().iter().map(|&v| (v == 0) as i64).collect(),
            )
        }
        // Swin V2's attention scale, exp(min(logit_scale, ln 100)), is a function of weights.
        "Clip" => {
            let x = input(0)?;
            let bound = |i: usize, attr: &str, default: f32| -> Result<f32, ImportError> {
                match inputs.get(i).copied().flatten() {
                    Some(c) if c.len() == 1 => Ok(c.values[0]),
                    Some(_) => Err(ctx.input_error(i, "must be a scalar")),
                    None => ctx.float(attr, default),
                }
            };
            let (lo, hi) = (bound(1, "min", f32::MIN)?, bound(2, "max", f32::MAX)?);
            Constant::float(
                x.dims.clone(),
                x.values.iter().map(|&v| v.max(lo).min(hi)).collect(),
            )
        }
        "Sqrt" | "Neg" | "Abs" | "Reciprocal" | "Floor" | "Ceil" | "Exp" => {
            let x = input(0)?;
            let f = |v: f32| match op {
                "Sqrt" => v.sqrt(),
                "Exp" => v.exp(),
                "Neg" => -v,
                "Abs" => v.abs(),
                "Reciprocal" => 1.0 / v,
                "Floor" => v.floor(),
                _ => v.ceil(),
            };
            match (&x.ints, op) {
                (Some(v), "Neg" | "Abs") => Constant::int(
                    x.dims.clone(),
                    v.iter()
                        .map(|&i| if op == "Neg" { -i } else { i.abs() })
                        .collect(),
                ),
                _ => Constant::float(x.dims.clone(), x.values.iter().map(|&v| f(v)).collect()),
            }
        }
        "ConstantOfShape" => {
            let shape = input(0)?.as_ints();
            let dims = sizes(&shape).map_err(err)?;
            bounded(&dims).map_err(err)?;
            let len = dims.iter().product();
            let value = ctx
                .tensor("value")?
                .unwrap_or_else(|| Constant::float(vec![1], vec![0.0]));
            if value.values.is_empty() {
                return Err(ctx.attr_error("value", "holds no value"));
            }
            match &value.ints {
                Some(v) => Constant::int(dims, vec![v[0]; len]),
                None => Constant::float(dims, vec![value.values[0]; len]),
            }
        }
        "Expand" => {
            let x = input(0)?;
            let shape = sizes(&input(1)?.as_ints()).map_err(err)?;
            let out = broadcast(&x.dims, &shape).map_err(err)?;
            bounded(&out).map_err(err)?;
            let idx = indices(&x.dims, &out);
            gather_flat(x, out.to_vec(), &idx)
        }
        "Range" => {
            let (start, limit, delta) = (input(0)?, input(1)?, input(2)?);
            if [start, limit, delta].iter().any(|c| c.len() != 1) {
                return Err(err("start, limit and delta must be scalars".into()));
            }
            if let (Some(s), Some(l), Some(d)) = (&start.ints, &limit.ints, &delta.ints) {
                let (s, l, d) = (s[0], l[0], d[0]);
                if d == 0 {
                    return Err(ctx.input_error(2, "delta must not be 0"));
                }
                let n = ((l - s) as f64 / d as f64).ceil().max(0.0) as i64;
                bounded(&[n as usize]).map_err(err)?;
                Constant::int(vec![n as usize], (0..n).map(|i| s + i * d).collect())
            } else {
                let (s, l, d) = (start.values[0], limit.values[0], delta.values[0]);
                let n = ((l - s) / d).ceil().max(0.0) as usize;
                bounded(&[n]).map_err(err)?;
                Constant::float(vec![n], (0..n).map(|i| s + i as f32 * d).collect())
            }
        }
        "Transpose" => {
            let x = input(0)?;
            let rank = x.dims.len();
            let perm: Vec<usize> = match ctx.ints("perm")? {
                Some(p) => p
                    .iter()
                    .map(|&a| normalize_axis(a, rank))
                    .collect::<Result<_, _>>()
                    .map_err(err)?,
                None => (0..rank).rev().collect(),
            };
            transpose(x, &perm).map_err(err)?
        }
        _ => return Err(err(format!("{op} cannot be folded"))),
    })
}

/// The axes `Shape` reports: `start..end`, negative positions counted from the end, both
/// clamped to the rank (an empty range where `end` precedes `start`).
pub(crate) fn shape_range(rank: usize, start: i64, end: i64) -> std::ops::Range<usize> {
    let rank = rank as i64;
    let clamp = |p: i64| (if p < 0 { p + rank } else { p }).clamp(0, rank) as usize;
    clamp(start)..clamp(end).max(clamp(start))
}

/// The largest tensor folding creates (a broadcast, `ConstantOfShape`, `Range`): shape
/// arithmetic needs a few values, and a damaged file must not allocate without bound. 2^24
/// values (128 MB of i64): at 2^26 a fuzzed file chained folds of 2^26 values and took 0.9 s
/// and 400 MB to refuse (6.6 s in the fuzz build: a libFuzzer timeout); every torch
/// fixture (crates/onnx/tests/torch.rs) imports under 2^24.
const MAX_FOLDED: u128 = 1 << 24;

fn bounded(dims: &[usize]) -> Result<(), String> {
    let len = dims.iter().map(|&d| d as u128).product::<u128>();
    if len > MAX_FOLDED {
        return Err(format!(
            "folding a constant of {len} values is not supported"
        ));
    }
    Ok(())
}

/// A `Constant` node's value.
fn constant(ctx: &NodeCtx) -> Result<Constant, ImportError> {
    if let Some(t) = ctx.tensor("value")? {
        return Ok(t);
    }
    if let Some(v) = ctx.ints("value_ints")? {
        return Ok(Constant::int(vec![v.len()], v));
    }
    if let Some(v) = ctx.floats("value_floats")? {
        return Ok(Constant::float(vec![v.len()], v));
    }
    if ctx.proto.attribute.iter().any(|a| a.name == "value_int") {
        return Ok(Constant::int(vec![], vec![ctx.int("value_int", 0)?]));
    }
    if ctx.proto.attribute.iter().any(|a| a.name == "value_float") {
        return Ok(Constant::float(
            vec![],
            vec![ctx.float("value_float", 0.0)?],
        ));
    }
    Err(ctx.attr_error("value", "no supported value attribute"))
}

/// Squeeze/Unsqueeze axes: an attribute before opset 13, an input from 13 on.
pub(crate) fn axes(ctx: &NodeCtx, inputs: &[Option<&Constant>]) -> Result<Vec<i64>, ImportError> {
    if let Some(a) = ctx.ints("axes")? {
        return Ok(a);
    }
    Ok(inputs
        .get(1)
        .copied()
        .flatten()
        .map(Constant::as_ints)
        .unwrap_or_default())
}

fn sizes(shape: &[i64]) -> Result<Vec<usize>, String> {
    shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative size {d} in {shape:?}")))
        .collect()
}

fn unsqueeze_dims(x: &Dims, axes: &[i64]) -> Result<Vec<usize>, String> {
    let rank = x.rank() + axes.len();
    let axes: Vec<usize> = axes
        .iter()
        .map(|&a| normalize_axis(a, rank))
        .collect::<Result<_, _>>()?;
    let mut source = x.iter();
    Ok((0..rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                *source.next().unwrap_or(&1)
            }
        })
        .collect())
}

fn squeeze_dims(x: &Dims, axes: &[i64]) -> Result<Vec<usize>, String> {
    let axes: Vec<usize> = axes.iter().map(|&a| x.axis(a)).collect::<Result<_, _>>()?;
    Ok(x.iter()
        .enumerate()
        .filter(|&(i, &d)| {
            if axes.is_empty() {
                d != 1
            } else {
                !axes.contains(&i)
            }
        })
        .map(|(_, &d)| d)
        .collect())
}

/// ONNX Reshape's target: `0` copies the input's size (unless `allowzero`), `-1` is inferred.
pub(crate) fn reshape_dims(
    input: &[usize],
    target: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, String> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut free = None;
    for (i, &t) in target.iter().enumerate() {
        out.push(match t {
            0 if !allowzero => *input
                .get(i)
                .ok_or_else(|| format!("target {target:?} copies axis {i} the input lacks"))?,
            -1 if free.is_none() => {
                free = Some(i);
                1
            }
            t if t >= 0 => t as usize,
            _ => return Err(format!("invalid target shape {target:?}")),
        });
    }
    let known: usize = out.iter().product();
    if let Some(i) = free {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} to {target:?}"));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(format!("cannot reshape {input:?} to {target:?}"));
    }
    Ok(out)
}

fn gather_flat(x: &Constant, dims: Vec<usize>, idx: &[usize]) -> Constant {
    match &x.ints {
        Some(v) => Constant::int(dims, idx.iter().map(|&i| v[i]).collect()),
        None => Constant::float(dims, idx.iter().map(|&i| x.values[i]).collect()),
    }
}

fn gather(x: &Constant, idx: &Constant, axis: i64) -> Result<Constant, String> {
    let axis = normalize_axis(axis, x.dims.len())?;
    let size = x.dims[axis] as i64;
    let outer: usize = x.dims[..axis].iter().product();
    let inner: usize = x.dims[axis + 1..].iter().product();
    let picks = idx.as_ints();
    let mut flat = Vec::with_capacity(outer * picks.len() * inner);
    for o in 0..outer {
        for &p in &picks {
            if p < -size || p >= size {
                return Err(format!("index {p} is out of range for an axis of {size}"));
            }
            let p = if p < 0 { p + size } else { p } as usize;
            let base = (o * size as usize + p) * inner;
            flat.extend(base..base + inner);
        }
    }
    let mut dims = x.dims[..axis].to_vec();
    dims.extend(&idx.dims);
    dims.extend(&x.dims[axis + 1..]);
    Ok(gather_flat(x, dims, &flat))
}

/// `data` with the slices that `indices` (`[..., k]`, each row a position on the first `k`
/// axes) name replaced by the matching slices of `updates`, in order.
fn scatter_nd(data: &Constant, indices: &Constant, updates: &Constant) -> Result<Constant, String> {
    let k = *indices
        .dims
        .last()
        .ok_or("indices must have at least one axis")?;
    if k > data.dims.len() {
        return Err(format!(
            "index rows of {k} for data of rank {}",
            data.dims.len()
        ));
    }
    let rows: usize = indices.dims[..indices.dims.len() - 1].iter().product();
    let slice: usize = data.dims[k..].iter().product();
    let expected: Vec<usize> = [&indices.dims[..indices.dims.len() - 1], &data.dims[k..]].concat();
    if updates.dims != expected {
        return Err(format!(
            "updates of shape {:?}, expected {expected:?}",
            updates.dims
        ));
    }
    let strides = joule_model::row_major_strides(&data.dims);
    let idx = indices.as_ints();
    let mut out = data.clone();
    let update_ints = updates.as_ints();
    for r in 0..rows {
        let mut base = 0;
        for (axis, &i) in idx[r * k..(r + 1) * k].iter().enumerate() {
            let size = data.dims[axis] as i64;
            if i < -size || i >= size {
                return Err(format!("index {i} is out of range for an axis of {size}"));
            }
            base += (if i < 0 { i + size } else { i }) as usize * strides[axis];
        }
        let span = base..base + slice;
        out.values[span.clone()].copy_from_slice(&updates.values[r * slice..(r + 1) * slice]);
        if let Some(ints) = out.ints.as_mut() {
            ints[span].copy_from_slice(&update_ints[r * slice..(r + 1) * slice]);
        }
    }
    Ok(out)
}

fn concat(parts: &[&Constant], axis: i64) -> Result<Constant, String> {
    let first = parts.first().ok_or("Concat of nothing")?;
    let rank = first.dims.len();
    let axis = normalize_axis(axis, rank)?;
    let outer: usize = first.dims[..axis].iter().product();
    let mut dims = first.dims.clone();
    dims[axis] = 0;
    for p in parts {
        if p.dims.len() != rank
            || p.dims[..axis] != first.dims[..axis]
            || p.dims[axis + 1..] != first.dims[axis + 1..]
        {
            return Err(format!(
                "cannot concatenate {:?} and {:?}",
                first.dims, p.dims
            ));
        }
        dims[axis] += p.dims[axis];
    }
    let all_int = parts.iter().all(|p| p.ints.is_some());
    let mut ints = Vec::new();
    let mut values = Vec::new();
    for o in 0..outer {
        for p in parts {
            let chunk: usize = p.dims[axis..].iter().product();
            let range = o * chunk..(o + 1) * chunk;
            if all_int {
                ints.extend_from_slice(&p.as_ints()[range]);
            } else {
                values.extend_from_slice(&p.values[range]);
            }
        }
    }
    Ok(if all_int {
        Constant::int(dims, ints)
    } else {
        Constant::float(dims, values)
    })
}

fn slice(ctx: &NodeCtx, inputs: &[Option<&Constant>]) -> Result<Constant, ImportError> {
    let x = inputs[0].ok_or_else(|| ctx.input_error(0, "missing input"))?;
    let spec = slice_spec(ctx, inputs)?;
    let mut dims = x.dims.clone();
    let mut ranges = Vec::new();
    for a in &spec {
        let axis = normalize_axis(a.axis, dims.len()).map_err(|e| ctx.input_error(0, e))?;
        let (start, count) = a.range(x.dims[axis]).map_err(|e| ctx.input_error(0, e))?;
        dims[axis] = count;
        ranges.push((axis, start, a.step));
    }
    // Walk the output, mapping each position to the input's.
    let total: usize = dims.iter().product();
    let rank = dims.len();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * x.dims[i + 1];
    }
    let mut counter = vec![0usize; rank];
    let mut idx = Vec::with_capacity(total);
    for _ in 0..total {
        let mut flat = 0i64;
        for axis in 0..rank {
            let pos = match ranges.iter().find(|r| r.0 == axis) {
                Some(&(_, start, step)) => start as i64 + counter[axis] as i64 * step,
                None => counter[axis] as i64,
            };
            flat += pos * strides[axis] as i64;
        }
        idx.push(flat as usize);
        for axis in (0..rank).rev() {
            counter[axis] += 1;
            if counter[axis] < dims[axis] {
                break;
            }
            counter[axis] = 0;
        }
    }
    Ok(gather_flat(x, dims, &idx))
}

/// Slice's starts, ends, axes and steps: attributes before opset 10, inputs from 10 on.
pub(crate) fn slice_spec(
    ctx: &NodeCtx,
    inputs: &[Option<&Constant>],
) -> Result<Vec<joule_model::ops::SliceAxis>, ImportError> {
    let list = |i: usize, attr: &str| -> Result<Option<Vec<i64>>, ImportError> {
        if ctx.opset < 10 {
            return ctx.ints(attr);
        }
        Ok(inputs.get(i).copied().flatten().map(Constant::as_ints))
    };
    let starts = list(1, "starts")?.ok_or_else(|| ctx.input_error(1, "missing starts"))?;
    let ends = list(2, "ends")?.ok_or_else(|| ctx.input_error(2, "missing ends"))?;
    let axes = list(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = list(4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
    if [ends.len(), axes.len(), steps.len()]
        .iter()
        .any(|&l| l != starts.len())
    {
        return Err(ctx.input_error(1, "starts, ends, axes and steps differ in length"));
    }
    Ok((0..starts.len())
        .map(|i| joule_model::ops::SliceAxis {
            axis: axes[i],
            start: starts[i],
            end: ends[i],
            step: steps[i],
        })
        .collect())
}

fn binary(op: &str, a: &Constant, b: &Constant, fmod: bool) -> Result<Constant, String> {
    let out = broadcast(&a.dims, &b.dims)?;
    bounded(&out)?;
    let (ia, ib) = (indices(&a.dims, &out), indices(&b.dims, &out));
    let compare = matches!(op, "Equal" | "Less" | "Greater");
    if let (Some(x), Some(y)) = (&a.ints, &b.ints) {
        let f = |p: i64, q: i64| -> Result<i64, String> {
            Ok(match op {
                "Add" => p.checked_add(q).ok_or("integer overflow")?,
                "Sub" => p.checked_sub(q).ok_or("integer overflow")?,
                "Mul" => p.checked_mul(q).ok_or("integer overflow")?,
                "Div" if q == 0 => return Err("integer division by zero".into()),
                "Div" => p.checked_div(q).ok_or("integer overflow")?,
                "Mod" if q == 0 => return Err("integer modulo by zero".into()),
                "Mod" if fmod => p.checked_rem(q).ok_or("integer overflow")?,
                "Mod" => {
                    // Python's sign convention: the result takes the divisor's sign.
                    let r = p.checked_rem(q).ok_or("integer overflow")?;
                    if r != 0 && (r < 0) != (q < 0) {
                        r + q
                    } else {
                        r
                    }
                }
                "Pow" => u32::try_from(q)
                    .ok()
                    .and_then(|q| p.checked_pow(q))
                    .ok_or("integer power out of range")?,
                "Equal" => (p == q) as i64,
                "Less" => (p < q) as i64,
                "Greater" => (p > q) as i64,
                "Min" => p.min(q),
                _ => p.max(q),
            })
        };
        let v = (0..ia.len())
            .map(|k| f(x[ia[k]], y[ib[k]]))
            .collect::<Result<_, _>>()?;
        return Ok(Constant::int(out.to_vec(), v));
    }
    let f = |p: f32, q: f32| match op {
        "Add" => p + q,
        "Sub" => p - q,
        "Mul" => p * q,
        "Div" => p / q,
        "Mod" => p % q,
        "Pow" => p.powf(q),
        "Equal" => (p == q) as u8 as f32,
        "Less" => (p < q) as u8 as f32,
        "Greater" => (p > q) as u8 as f32,
        "Min" => p.min(q),
        _ => p.max(q),
    };
    let v: Vec<f32> = (0..ia.len())
        .map(|k| f(a.values[ia[k]], b.values[ib[k]]))
        .collect();
    Ok(if compare {
        Constant::int(out.to_vec(), v.iter().map(|&x| x as i64).collect())
    } else {
        Constant::float(out.to_vec(), v)
    })
}

fn transpose(x: &Constant, perm: &[usize]) -> Result<Constant, String> {
    let rank = x.dims.len();
    if perm.len() != rank {
        return Err(format!("permutation {perm:?} for rank {rank}"));
    }
    let dims: Vec<usize> = perm.iter().map(|&p| x.dims[p]).collect();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * x.dims[i + 1];
    }
    let total: usize = dims.iter().product();
    let mut counter = vec![0usize; rank];
    let mut idx = Vec::with_capacity(total);
    for _ in 0..total {
        idx.push((0..rank).map(|i| counter[i] * strides[perm[i]]).sum());
        for axis in (0..rank).rev() {
            counter[axis] += 1;
            if counter[axis] < dims[axis] {
                break;
            }
            counter[axis] = 0;
        }
    }
    Ok(gather_flat(x, dims, &idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_targets() {
        assert_eq!(reshape_dims(&[2, 3, 4], &[0, -1], false), Ok(vec![2, 12]));
        assert_eq!(
            reshape_dims(&[2, 3, 4], &[4, 0, 2], false),
            Ok(vec![4, 3, 2])
        );
        assert!(reshape_dims(&[2, 3, 4], &[5, -1], false).is_err());
        assert!(reshape_dims(&[2, 3, 4], &[-1, -1], false).is_err());
    }

    #[test]
    fn scatter_nd_assigns_regions() {
        // A 3 x 2 zero mask; row 1 becomes [5, 6], element (2, 0) becomes 7.
        let zeros = Constant::float(vec![3, 2], vec![0.0; 6]);
        let rows = scatter_nd(
            &zeros,
            &Constant::int(vec![1, 1], vec![1]),
            &Constant::float(vec![1, 2], vec![5., 6.]),
        )
        .unwrap();
        assert_eq!(rows.values, [0., 0., 5., 6., 0., 0.]);
        let one = scatter_nd(
            &rows,
            &Constant::int(vec![1, 2], vec![-1, 0]),
            &Constant::float(vec![1], vec![7.]),
        )
        .unwrap();
        assert_eq!(one.values, [0., 0., 5., 6., 7., 0.]);
        let wrong = Constant::float(vec![1, 3], vec![1.; 3]);
        assert!(scatter_nd(&zeros, &Constant::int(vec![1, 1], vec![0]), &wrong).is_err());
        let pair = Constant::float(vec![1, 2], vec![1.; 2]);
        assert!(scatter_nd(&zeros, &Constant::int(vec![1, 1], vec![3]), &pair).is_err());
    }

    #[test]
    fn shape_ranges() {
        assert_eq!(shape_range(4, 0, i64::MAX), 0..4);
        assert_eq!(shape_range(4, -2, i64::MAX), 2..4);
        assert_eq!(shape_range(4, 1, -1), 1..3);
        assert_eq!(shape_range(4, 3, 1), 3..3);
        assert_eq!(shape_range(4, -9, 9), 0..4);
    }

    #[test]
    fn gather_concat_transpose_binary() {
        let shape = Constant::int(vec![4], vec![1, 768, 14, 14]);
        let n = gather(&shape, &Constant::int(vec![], vec![0]), 0).unwrap();
        assert_eq!((n.dims.clone(), n.ints.clone()), (vec![], Some(vec![1])));
        let hw = gather(&shape, &Constant::int(vec![2], vec![2, -1]), 0).unwrap();
        assert_eq!(hw.ints, Some(vec![14, 14]));
        let c = concat(&[&n.clone_with(vec![1]), &hw], 0).unwrap();
        assert_eq!(c.ints, Some(vec![1, 14, 14]));
        let m = Constant::float(vec![2, 3], vec![0., 1., 2., 3., 4., 5.]);
        let t = transpose(&m, &[1, 0]).unwrap();
        assert_eq!(
            (t.dims, t.values),
            (vec![3, 2], vec![0., 3., 1., 4., 2., 5.])
        );
        let d = binary("Div", &shape, &Constant::int(vec![], vec![2]), false).unwrap();
        assert_eq!(d.ints, Some(vec![0, 384, 7, 7]));
        let md = binary(
            "Mod",
            &Constant::int(vec![], vec![-3]),
            &Constant::int(vec![], vec![2]),
            false,
        )
        .unwrap();
        assert_eq!(md.ints, Some(vec![1]));
    }

    impl Constant {
        fn clone_with(&self, dims: Vec<usize>) -> Constant {
            Constant {
                dims,
                ..self.clone()
            }
        }
    }
}
