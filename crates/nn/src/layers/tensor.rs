//! Forward and backward kernels of the N-d ops that imported models bring: matrix
//! products of two activations, broadcasting arithmetic, reductions, layer norm and the
//! layout ops. Shapes are the [`Dims`] that [`joule_model::Graph::infer`] gives.

use super::ELEMENTS_A_TASK;
use crate::kernels::{matmul, plain};
use joule_model::ops::{BinaryKind, Gather, Pad, Reduce, ReduceKind, SliceAxis};
use joule_model::{broadcast_indices, row_major_strides, strided_indices, Dims};
use rayon::prelude::*;

/// `y = a op b` with numpy broadcasting to `out`.
pub fn binary_forward(
    kind: BinaryKind,
    (a, a_dims): (&[f32], &[usize]),
    (b, b_dims): (&[f32], &[usize]),
    out: &[usize],
    y: &mut [f32],
) {
    // Each kind as its own loop body (the same arithmetic as `BinaryKind::apply`), so that
    // the runs below vectorise.
    match kind {
        BinaryKind::Add => broadcast_runs(|a, b| a + b, (a, a_dims), (b, b_dims), out, y),
        BinaryKind::Sub => broadcast_runs(|a, b| a - b, (a, a_dims), (b, b_dims), out, y),
        BinaryKind::Mul => broadcast_runs(|a, b| a * b, (a, a_dims), (b, b_dims), out, y),
        BinaryKind::Div => broadcast_runs(|a, b| a / b, (a, a_dims), (b, b_dims), out, y),
        BinaryKind::Pow => broadcast_runs(f32::powf, (a, a_dims), (b, b_dims), out, y),
    }
}

/// Per axis of `out`, the step in `src` (row-major, broadcast to `out` as numpy does; 0
/// along a broadcast axis).
fn broadcast_strides(src: &[usize], out: &[usize]) -> Vec<usize> {
    let offset = out.len() - src.len();
    let mut strides = vec![0usize; out.len()];
    let mut stride = 1;
    for i in (0..src.len()).rev() {
        strides[offset + i] = if src[i] == 1 { 0 } else { stride };
        stride *= src[i];
    }
    strides
}

/// `y = f(a, b)` broadcast to `out`, as runs over the innermost axes along which each operand
/// either steps by one or stays put: a whole same-shape tensor is one run, a per-channel
/// gate (squeeze-and-excitation's `[N, C, H, W] x [N, C, 1, 1]`) one run of `H W` a
/// channel. Index vectors only for the outer axes (the element-wise index walk was a
/// quarter of efficientnet_b0's time).
fn broadcast_runs(
    f: impl Fn(f32, f32) -> f32 + Sync,
    (a, a_dims): (&[f32], &[usize]),
    (b, b_dims): (&[f32], &[usize]),
    out: &[usize],
    y: &mut [f32],
) {
    if y.is_empty() {
        return;
    }
    let (sa, sb) = (
        broadcast_strides(a_dims, out),
        broadcast_strides(b_dims, out),
    );
    let inner = (0..out.len()).rev().find(|&i| out[i] > 1);
    let (step_a, step_b) = inner.map_or((0, 0), |i| (sa[i].min(1), sb[i].min(1)));
    let (mut axis, mut len) = (out.len(), 1);
    while axis > 0 {
        let i = axis - 1;
        let fits = |stride: usize, step: usize| stride == step * len;
        if out[i] > 1 && !(fits(sa[i], step_a) && fits(sb[i], step_b)) {
            break;
        }
        len *= out[i];
        axis -= 1;
    }
    let outer_a = strided_indices(&out[..axis], &sa[..axis]);
    let outer_b = strided_indices(&out[..axis], &sb[..axis]);
    // A run of `y` from `a[i..]` and `b[j..]` (each stepping by its step).
    let run = |y: &mut [f32], i: usize, j: usize| {
        let len = y.len();
        match (step_a, step_b) {
            (1, 1) => {
                let (a, b) = (&a[i..i + len], &b[j..j + len]);
                for ((y, a), b) in y.iter_mut().zip(a).zip(b) {
                    *y = f(*a, *b);
                }
            }
            (1, _) => {
                let b = b[j];
                for (y, a) in y.iter_mut().zip(&a[i..i + len]) {
                    *y = f(*a, b);
                }
            }
            (_, 1) => {
                let a = a[i];
                for (y, b) in y.iter_mut().zip(&b[j..j + len]) {
                    *y = f(a, *b);
                }
            }
            _ => y.fill(f(a[i], b[j])),
        }
    };
    let runs = y
        .par_chunks_exact_mut(len)
        .zip(outer_a.par_iter().zip(&outer_b));
    if len >= ELEMENTS_A_TASK {
        // Long runs (a whole same-shape tensor is one): each in pieces.
        runs.for_each(|(y, (&i, &j))| {
            y.par_chunks_mut(ELEMENTS_A_TASK)
                .enumerate()
                .for_each(|(p, y)| {
                    let o = p * ELEMENTS_A_TASK;
                    run(y, i + o * step_a, j + o * step_b)
                })
        });
    } else {
        runs.with_min_len(ELEMENTS_A_TASK / len)
            .for_each(|(y, (&i, &j))| run(y, i, j));
    }
}

/// `y` = `x` broadcast to `out` (Expand, a constant entering the graph).
pub fn broadcast_forward(x: &[f32], x_dims: &[usize], out: &[usize], y: &mut [f32]) {
    for (y, i) in y.iter_mut().zip(broadcast_indices(x_dims, out)) {
        *y = x[i];
    }
}

/// A batched product's sizes, and for every output matrix the A and B matrices it reads
/// (batch axes broadcast; 1-D operands promoted as numpy does).
struct MatMulGeometry {
    m: usize,
    k: usize,
    n: usize,
    ia: Vec<usize>,
    ib: Vec<usize>,
}

impl MatMulGeometry {
    fn of(a_dims: &Dims, b_dims: &Dims) -> MatMulGeometry {
        let promote = |d: &Dims, row: bool| -> Vec<usize> {
            match (d.rank(), row) {
                (1, true) => vec![1, d[0]],
                (1, false) => vec![d[0], 1],
                _ => d.to_vec(),
            }
        };
        let (a2, b2) = (promote(a_dims, true), promote(b_dims, false));
        let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
        let n = b2[b2.len() - 1];
        let (a_batch, b_batch) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
        let batch = joule_model::broadcast(a_batch, b_batch).expect("shape inference checked");
        MatMulGeometry {
            m,
            k,
            n,
            ia: broadcast_indices(a_batch, &batch),
            ib: broadcast_indices(b_batch, &batch),
        }
    }
}

/// `A [.., M, K] x B [.., K, N]` with broadcast batch axes (1-D operands promoted as numpy
/// does); `out` is the product's shape.
pub fn matmul_forward(a: &[f32], a_dims: &Dims, b: &[f32], b_dims: &Dims, y: &mut [f32]) {
    let MatMulGeometry { m, k, n, ia, ib } = MatMulGeometry::of(a_dims, b_dims);
    for ((out, &i), &j) in y.chunks_mut(m * n).zip(&ia).zip(&ib) {
        let lhs = &a[i * m * k..(i + 1) * m * k];
        let rhs = &b[j * k * n..(j + 1) * k * n];
        matmul(m, n, k, plain(lhs), plain(rhs), out, false, false);
    }
}

/// Mean or sum over some axes.
pub fn reduce_forward(reduce: &Reduce, x: &[f32], x_dims: &Dims, y: &mut [f32]) {
    let axes = reduce.axes_of(x_dims).expect("shape inference checked");
    // Each input element adds into the output element with the reduced axes at 0.
    let kept: Vec<usize> = (0..x_dims.rank())
        .map(|i| if axes.contains(&i) { 1 } else { x_dims[i] })
        .collect();
    let out_strides = row_major_strides(&kept);
    let strides: Vec<usize> = (0..x_dims.rank())
        .map(|i| if axes.contains(&i) { 0 } else { out_strides[i] })
        .collect();
    y.fill(0.0);
    let square = reduce.kind == ReduceKind::L2;
    for (&v, o) in x.iter().zip(strided_indices(x_dims, &strides)) {
        y[o] += if square { v * v } else { v };
    }
    match reduce.kind {
        ReduceKind::Mean => {
            let count: usize = axes.iter().map(|&a| x_dims[a]).product();
            y.iter_mut().for_each(|v| *v /= count.max(1) as f32);
        }
        ReduceKind::L2 => y.iter_mut().for_each(|v| *v = v.sqrt()),
        ReduceKind::Sum => {}
    }
}

/// Layer normalisation over the trailing `inner` values of each row.
pub fn layer_norm_forward(
    x: &[f32],
    inner: usize,
    epsilon: f32,
    scale: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    for (row, out) in x.chunks(inner).zip(y.chunks_mut(inner)) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / inner as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / inner as f64;
        let inv = 1.0 / (var + epsilon as f64).sqrt();
        for (j, (o, &v)) in out.iter_mut().zip(row).enumerate() {
            let shift = bias.map_or(0.0, |b| b[j]);
            *o = ((v as f64 - mean) * inv) as f32 * scale[j] + shift;
        }
    }
}

/// Axis permutation: output axis `i` is input axis `perm[i]`.
pub fn transpose_forward(x: &[f32], x_dims: &Dims, perm: &[usize], y: &mut [f32]) {
    let src = row_major_strides(x_dims);
    let out: Vec<usize> = perm.iter().map(|&p| x_dims[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
    for (y, i) in y.iter_mut().zip(strided_indices(&out, &strides)) {
        *y = x[i];
    }
}

/// Concatenation along `axis`: per index of the axes before it, each input's block in turn
/// (axis 1 of N x C x H x W: each sample's channels of every input).
pub fn concat_forward(inputs: &[&[f32]], dims: &[Dims], axis: usize, y: &mut [f32]) {
    let outer: usize = dims[0][..axis].iter().product();
    let blocks: Vec<usize> = dims.iter().map(|d| d[axis..].iter().product()).collect();
    let mut at = 0;
    for o in 0..outer {
        for (x, &block) in inputs.iter().zip(&blocks) {
            y[at..at + block].copy_from_slice(&x[o * block..(o + 1) * block]);
            at += block;
        }
    }
}

/// Strided ranges on some axes.
pub fn slice_forward(x: &[f32], x_dims: &Dims, axes: &[SliceAxis], out: &Dims, y: &mut [f32]) {
    let src = row_major_strides(x_dims);
    let mut offset = 0i64;
    let mut strides: Vec<i64> = src.iter().map(|&s| s as i64).collect();
    for a in axes {
        let axis = x_dims.axis(a.axis).expect("shape inference checked");
        let (start, _) = a.range(x_dims[axis]).expect("shape inference checked");
        offset += start as i64 * src[axis] as i64;
        strides[axis] = src[axis] as i64 * a.step;
    }
    // Signed strides: walk the output and step through the input.
    let rank = out.rank();
    let mut counter = vec![0usize; rank];
    let mut at = offset;
    for v in y.iter_mut() {
        *v = x[at as usize];
        for axis in (0..rank).rev() {
            counter[axis] += 1;
            at += strides[axis];
            if counter[axis] < out[axis] {
                break;
            }
            at -= strides[axis] * counter[axis] as i64;
            counter[axis] = 0;
        }
    }
}

/// Entries picked along one axis.
pub fn gather_forward(x: &[f32], x_dims: &Dims, gather: &Gather, y: &mut [f32]) {
    let axis = x_dims.axis(gather.axis).expect("shape inference checked");
    let size = x_dims[axis] as i64;
    let outer: usize = x_dims[..axis].iter().product();
    let inner: usize = x_dims[axis + 1..].iter().product();
    let mut out = y.chunks_mut(inner);
    for o in 0..outer {
        for &i in &gather.indices {
            let i = if i < 0 { i + size } else { i } as usize;
            let start = (o * size as usize + i) * inner;
            out.next()
                .expect("output sized by shape inference")
                .copy_from_slice(&x[start..start + inner]);
        }
    }
}

/// Constant padding.
pub fn pad_forward(x: &[f32], x_dims: &Dims, pad: &Pad, out: &Dims, y: &mut [f32]) {
    y.fill(pad.value);
    let strides = row_major_strides(out);
    let offset: usize = pad.begin.iter().zip(&strides).map(|(b, s)| b * s).sum();
    for (&v, o) in x.iter().zip(strided_indices(x_dims, &strides)) {
        y[offset + o] = v;
    }
}

/// Gradients of `y = a op b` (broadcast to `out`), added into `da` and `db` where asked:
/// each operand's gradient sums over the output elements it was broadcast to.
pub fn binary_backward(
    kind: BinaryKind,
    (a, a_dims): (&[f32], &[usize]),
    (b, b_dims): (&[f32], &[usize]),
    out: &[usize],
    dy: &[f32],
    mut da: Option<&mut [f32]>,
    mut db: Option<&mut [f32]>,
) {
    let (ia, ib) = (
        broadcast_indices(a_dims, out),
        broadcast_indices(b_dims, out),
    );
    for ((&g, &i), &j) in dy.iter().zip(&ia).zip(&ib) {
        let (x, w) = (a[i], b[j]);
        // d(a op b)/da and d(a op b)/db at this element.
        let (ga, gb) = match kind {
            BinaryKind::Add => (1.0, 1.0),
            BinaryKind::Sub => (1.0, -1.0),
            BinaryKind::Mul => (w, x),
            BinaryKind::Div => (1.0 / w, -x / (w * w)),
            // x^w: w x^(w-1) and x^w ln x (the latter defined for x > 0 only, 0 elsewhere,
            // as PyTorch does for x = 0).
            BinaryKind::Pow => (
                w * x.powf(w - 1.0),
                if x > 0.0 { x.powf(w) * x.ln() } else { 0.0 },
            ),
        };
        if let Some(da) = da.as_deref_mut() {
            da[i] += g * ga;
        }
        if let Some(db) = db.as_deref_mut() {
            db[j] += g * gb;
        }
    }
}

/// Gradient of a broadcast (Expand, a constant entering the graph): each source element
/// collects the gradients of the copies made of it.
pub fn broadcast_backward(x_dims: &[usize], out: &[usize], dy: &[f32], dx: &mut [f32]) {
    for (&g, i) in dy.iter().zip(broadcast_indices(x_dims, out)) {
        dx[i] += g;
    }
}

/// Gradients of `A [.., M, K] x B [.., K, N]` (as [`matmul_forward`]), added into `da` and
/// `db`: `dA = dY B^T`, `dB = A^T dY`, summed over broadcast batch entries.
pub fn matmul_backward(
    (a, a_dims): (&[f32], &Dims),
    (b, b_dims): (&[f32], &Dims),
    dy: &[f32],
    mut da: Option<&mut [f32]>,
    mut db: Option<&mut [f32]>,
) {
    let MatMulGeometry { m, k, n, ia, ib } = MatMulGeometry::of(a_dims, b_dims);
    for ((g, &i), &j) in dy.chunks(m * n).zip(&ia).zip(&ib) {
        let lhs = &a[i * m * k..(i + 1) * m * k];
        let rhs = &b[j * k * n..(j + 1) * k * n];
        for r in 0..m {
            for c in 0..n {
                let gv = g[r * n + c];
                if gv == 0.0 {
                    continue;
                }
                for t in 0..k {
                    if let Some(da) = da.as_deref_mut() {
                        da[i * m * k + r * k + t] += gv * rhs[t * n + c];
                    }
                    if let Some(db) = db.as_deref_mut() {
                        db[j * k * n + t * n + c] += gv * lhs[r * k + t];
                    }
                }
            }
        }
    }
}

/// Gradient of [`reduce_forward`], added into `dx`.
pub fn reduce_backward(
    reduce: &Reduce,
    x: &[f32],
    x_dims: &Dims,
    y: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) {
    let axes = reduce.axes_of(x_dims).expect("shape inference checked");
    let kept: Vec<usize> = (0..x_dims.rank())
        .map(|i| if axes.contains(&i) { 1 } else { x_dims[i] })
        .collect();
    let out_strides = row_major_strides(&kept);
    let strides: Vec<usize> = (0..x_dims.rank())
        .map(|i| if axes.contains(&i) { 0 } else { out_strides[i] })
        .collect();
    let count = axes.iter().map(|&a| x_dims[a]).product::<usize>().max(1) as f32;
    for ((d, &v), o) in dx.iter_mut().zip(x).zip(strided_indices(x_dims, &strides)) {
        *d += match reduce.kind {
            ReduceKind::Sum => dy[o],
            ReduceKind::Mean => dy[o] / count,
            // d sqrt(sum x^2) / dx = x / norm; the norm's subgradient at 0 is taken as 0.
            ReduceKind::L2 if y[o] > 0.0 => dy[o] * v / y[o],
            ReduceKind::L2 => 0.0,
        };
    }
}

/// Gradients of [`layer_norm_forward`]: `dx` (added), and the scale and bias gradients
/// (added into `d_scale`, `d_bias`), all rows accumulated in f64.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(
    x: &[f32],
    inner: usize,
    epsilon: f32,
    scale: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    d_scale: &mut [f32],
    d_bias: Option<&mut [f32]>,
) {
    let mut dx = dx;
    let mut d_bias = d_bias;
    for (r, (row, g)) in x.chunks(inner).zip(dy.chunks(inner)).enumerate() {
        let n = inner as f64;
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let inv = 1.0 / (var + epsilon as f64).sqrt();
        let xhat: Vec<f64> = row.iter().map(|&v| (v as f64 - mean) * inv).collect();
        for j in 0..inner {
            d_scale[j] += (g[j] as f64 * xhat[j]) as f32;
        }
        if let Some(db) = d_bias.as_deref_mut() {
            db.iter_mut().zip(g).for_each(|(d, v)| *d += v);
        }
        if let Some(dx) = dx.as_deref_mut() {
            // dx = inv (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy * scale.
            let dxhat: Vec<f64> = g
                .iter()
                .zip(scale)
                .map(|(&a, &s)| a as f64 * s as f64)
                .collect();
            let m1 = dxhat.iter().sum::<f64>() / n;
            let m2 = dxhat.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / n;
            let out = &mut dx[r * inner..(r + 1) * inner];
            for j in 0..inner {
                out[j] += (inv * (dxhat[j] - m1 - xhat[j] * m2)) as f32;
            }
        }
    }
}

/// Gradient of [`transpose_forward`], added into `dx`.
pub fn transpose_backward(x_dims: &Dims, perm: &[usize], dy: &[f32], dx: &mut [f32]) {
    let src = row_major_strides(x_dims);
    let out: Vec<usize> = perm.iter().map(|&p| x_dims[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
    for (&g, i) in dy.iter().zip(strided_indices(&out, &strides)) {
        dx[i] += g;
    }
}

/// Gradient of [`concat_forward`]: each input's block of `dy`, added into its `dx` where
/// one is asked for.
pub fn concat_backward(dims: &[Dims], axis: usize, dy: &[f32], dxs: &mut [Option<Vec<f32>>]) {
    let outer: usize = dims[0][..axis].iter().product();
    let blocks: Vec<usize> = dims.iter().map(|d| d[axis..].iter().product()).collect();
    let mut at = 0;
    for o in 0..outer {
        for (dx, &block) in dxs.iter_mut().zip(&blocks) {
            if let Some(dx) = dx {
                dx[o * block..(o + 1) * block]
                    .iter_mut()
                    .zip(&dy[at..at + block])
                    .for_each(|(d, g)| *d += g);
            }
            at += block;
        }
    }
}

/// Gradient of [`slice_forward`], added into `dx`: every output element returns its
/// gradient to the input element it was read from.
pub fn slice_backward(x_dims: &Dims, axes: &[SliceAxis], out: &Dims, dy: &[f32], dx: &mut [f32]) {
    // Walk the output as the forward pass does, stepping through the input.
    let src = row_major_strides(x_dims);
    let mut offset = 0i64;
    let mut strides: Vec<i64> = src.iter().map(|&s| s as i64).collect();
    for a in axes {
        let axis = x_dims.axis(a.axis).expect("shape inference checked");
        let (start, _) = a.range(x_dims[axis]).expect("shape inference checked");
        offset += start as i64 * src[axis] as i64;
        strides[axis] = src[axis] as i64 * a.step;
    }
    let rank = out.rank();
    let mut counter = vec![0usize; rank];
    let mut at = offset;
    for &g in dy {
        dx[at as usize] += g;
        for axis in (0..rank).rev() {
            counter[axis] += 1;
            at += strides[axis];
            if counter[axis] < out[axis] {
                break;
            }
            at -= strides[axis] * counter[axis] as i64;
            counter[axis] = 0;
        }
    }
}

/// Gradient of [`gather_forward`], added into `dx` (an index picked twice collects both
/// gradients).
pub fn gather_backward(x_dims: &Dims, gather: &Gather, dy: &[f32], dx: &mut [f32]) {
    let axis = x_dims.axis(gather.axis).expect("shape inference checked");
    let size = x_dims[axis] as i64;
    let outer: usize = x_dims[..axis].iter().product();
    let inner: usize = x_dims[axis + 1..].iter().product();
    let mut grads = dy.chunks(inner);
    for o in 0..outer {
        for &i in &gather.indices {
            let i = if i < 0 { i + size } else { i } as usize;
            let start = (o * size as usize + i) * inner;
            let g = grads.next().expect("gradient sized by shape inference");
            dx[start..start + inner]
                .iter_mut()
                .zip(g)
                .for_each(|(d, v)| *d += v);
        }
    }
}

/// Gradient of [`pad_forward`], added into `dx`: the gradient at the copied positions (the
/// padding is constant).
pub fn pad_backward(x_dims: &Dims, pad: &Pad, out: &Dims, dy: &[f32], dx: &mut [f32]) {
    let strides = row_major_strides(out);
    let offset: usize = pad.begin.iter().zip(&strides).map(|(b, s)| b * s).sum();
    for (d, o) in dx.iter_mut().zip(strided_indices(x_dims, &strides)) {
        *d += dy[offset + o];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::ops::Reduce;

    /// Every kind of broadcast the runs take apart (same shape, per-channel gate, scalar,
    /// a row against a column, broadcast in the middle, unit axes anywhere, rank
    /// promotion, empty) against the definition: each output reads the element numpy's
    /// broadcast picks. The last four are long enough to be split into tasks: runs cut in
    /// pieces (same shape, a scalar on either side) and many short runs (a gate).
    #[test]
    fn broadcasting_runs_equal_the_element_wise_definition() {
        let cases: [(&[usize], &[usize]); 14] = [
            (&[2, 3, 4, 5], &[2, 3, 4, 5]),
            (&[2, 3, 4, 5], &[2, 3, 1, 1]),
            (&[2, 3, 1, 1], &[2, 3, 4, 5]),
            (&[2, 3, 4, 5], &[1]),
            (&[4, 1], &[1, 5]),
            (&[2, 3, 4], &[2, 1, 4]),
            (&[3, 1, 4, 1], &[1, 2, 1, 5]),
            (&[1, 1, 7], &[7]),
            (&[2, 1, 1, 3], &[2, 4, 1, 1]),
            (&[2, 0, 3], &[1, 3]),
            (&[3, 20_001], &[3, 20_001]),
            (&[50_000], &[1]),
            (&[1], &[2, 40_000]),
            (&[4, 96, 11, 13], &[4, 96, 1, 1]),
        ];
        for (a_dims, b_dims) in cases {
            let out = joule_model::broadcast(a_dims, b_dims).unwrap().to_vec();
            let a: Vec<f32> = (0..a_dims.iter().product())
                .map(|i: usize| i as f32 * 0.5 + 1.0)
                .collect();
            let b: Vec<f32> = (0..b_dims.iter().product())
                .map(|i: usize| i as f32 * 0.25 + 2.0)
                .collect();
            let (ia, ib) = (
                broadcast_indices(a_dims, &out),
                broadcast_indices(b_dims, &out),
            );
            for kind in [BinaryKind::Sub, BinaryKind::Div, BinaryKind::Pow] {
                let mut y = vec![f32::NAN; out.iter().product()];
                binary_forward(kind, (&a, a_dims), (&b, b_dims), &out, &mut y);
                let want: Vec<f32> = ia
                    .iter()
                    .zip(&ib)
                    .map(|(&i, &j)| kind.apply(a[i], b[j]))
                    .collect();
                assert_eq!(y, want, "{a_dims:?} {kind:?} {b_dims:?}");
            }
        }
    }

    #[test]
    fn kernels_by_hand() {
        // [[0, 1, 2], [3, 4, 5]]
        let m: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let d = Dims::new([2, 3]);
        let mut t = vec![0.0; 6];
        transpose_forward(&m, &d, &[1, 0], &mut t);
        assert_eq!(t, [0., 3., 1., 4., 2., 5.]);
        // [[0, 1, 2], [3, 4, 5]] beside [[6], [7]] along the last axis, and below [[8, 9, 10]].
        let mut c = vec![0.0; 8];
        let dims = [d.clone(), Dims::new([2, 1])];
        concat_forward(&[&m, &[6., 7.]], &dims, 1, &mut c);
        assert_eq!(c, [0., 1., 2., 6., 3., 4., 5., 7.]);
        let mut r = vec![0.0; 9];
        let dims = [d.clone(), Dims::new([1, 3])];
        concat_forward(&[&m, &[8., 9., 10.]], &dims, 0, &mut r);
        assert_eq!(r, [0., 1., 2., 3., 4., 5., 8., 9., 10.]);
        let mut p = [0.0; 4];
        matmul_forward(&m, &d, &t, &Dims::new([3, 2]), &mut p);
        assert_eq!(p, [5., 14., 14., 50.]);
        let mut r = vec![0.0; 2];
        let mean = Reduce {
            kind: ReduceKind::Mean,
            axes: vec![-1],
            keep_dims: false,
        };
        reduce_forward(&mean, &m, &d, &mut r);
        assert_eq!(r, [1., 4.]);
        // Column norms of [[0, 1, 2], [3, 4, 5]]: sqrt(0 + 9), sqrt(1 + 16), sqrt(4 + 25).
        let mut l2 = vec![0.0; 3];
        let norm = Reduce {
            kind: ReduceKind::L2,
            axes: vec![0],
            keep_dims: true,
        };
        reduce_forward(&norm, &m, &d, &mut l2);
        assert_eq!(l2, [3., 17f32.sqrt(), 29f32.sqrt()]);
        let back = SliceAxis {
            axis: 1,
            start: -1,
            end: i64::MIN,
            step: -2,
        };
        let mut s4 = vec![0.0; 4];
        slice_forward(&m, &d, &[back], &Dims::new([2, 2]), &mut s4);
        assert_eq!(s4, [2., 0., 5., 3.]);
        let mut b = vec![0.0; 6];
        binary_forward(
            BinaryKind::Sub,
            (&m, &[2, 3]),
            (&[10., 20.], &[2, 1]),
            &[2, 3],
            &mut b,
        );
        assert_eq!(b, [-10., -9., -8., -17., -16., -15.]);
        let mut g = vec![0.0; 2];
        let pick = Gather {
            axis: 1,
            indices: vec![-1],
            scalar: true,
        };
        gather_forward(&m, &d, &pick, &mut g);
        assert_eq!(g, [2., 5.]);
        let mut padded = vec![0.0; 2 * 5];
        let pad = Pad {
            begin: vec![0, 1],
            end: vec![0, 1],
            value: -1.0,
        };
        pad_forward(&m, &d, &pad, &Dims::new([2, 5]), &mut padded);
        assert_eq!(padded, [-1., 0., 1., 2., -1., -1., 3., 4., 5., -1.]);
        let mut ln = vec![0.0; 3];
        layer_norm_forward(&[1., 2., 3.], 3, 0.0, &[1., 1., 2.], None, &mut ln);
        let z = 1.5f32.sqrt();
        assert!((ln[0] + z).abs() < 1e-6 && ln[1].abs() < 1e-6 && (ln[2] - 2.0 * z).abs() < 1e-5);
    }
}
