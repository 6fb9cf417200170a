//! Max, average and global pooling, forward and backward. Max pooling remembers the index
//! of each window's maximum for the backward pass.

use crate::kernels::CHANNELS;
use joule_model::ops::{Pool, PoolKind};
use joule_model::Shape;
use rayon::prelude::*;

/// Forward windowed pooling; returns the argmax indices (into the sample's ifmap) for max
/// pooling, empty for average pooling.
pub fn pool_forward(
    pool: &Pool,
    x_shape: Shape,
    y_shape: Shape,
    x: &[f32],
    y: &mut [f32],
) -> Vec<u32> {
    let max = pool.kind == PoolKind::Max;
    let mut argmax = vec![0u32; if max { y.len() } else { 0 }];
    let windows = Windows::new(pool, x_shape, y_shape);
    let (in_len, out_len) = (x_shape.per_sample(), y_shape.per_sample());
    if max {
        y.par_chunks_mut(out_len)
            .zip(x.par_chunks(in_len))
            .zip(argmax.par_chunks_mut(out_len))
            .for_each(|((yi, xi), ai)| windows.sample(pool, xi, yi, Some(ai)));
    } else {
        pool_inference(pool, x_shape, y_shape, x, y);
    }
    argmax
}

/// Forward windowed pooling without the bookkeeping the backward pass needs.
pub fn pool_inference(pool: &Pool, x_shape: Shape, y_shape: Shape, x: &[f32], y: &mut [f32]) {
    let windows = Windows::new(pool, x_shape, y_shape);
    // Planes a task: a sample's planes in several tasks, so that a batch of one runs on
    // every core (resnet18's pooling after its first layer ran on one core of two).
    let (hw, pq) = (x_shape.h * x_shape.w, y_shape.h * y_shape.w);
    let planes = (POOL_TASK_OUTPUTS / pq.max(1)).clamp(1, x_shape.c.max(1));
    y.par_chunks_mut(planes * pq)
        .zip(x.par_chunks(planes * hw))
        .for_each(|(yi, xi)| windows.sample(pool, xi, yi, None));
}

/// Outputs a pooling task computes at least.
const POOL_TASK_OUTPUTS: usize = 1 << 14;

/// [`pool_inference`] of a max pooling on channel blocks ([`crate::kernels::blocks`]): `x`
/// and `y` both in blocks of [`CHANNELS`]. Each output's comparisons are the planes' (the
/// window in rows and columns order, a select of the larger each), 8 channels at a time:
/// the same values, NaN and signed zeros included.
///
/// # Panics
/// Where the pooling is not a max pooling, or the channels are not whole blocks.
pub(crate) fn pool_inference_blocks(
    pool: &Pool,
    x_shape: Shape,
    y_shape: Shape,
    x: &[f32],
    y: &mut [f32],
) {
    assert!(pool.kind == PoolKind::Max && x_shape.c.is_multiple_of(CHANNELS));
    let windows = Windows::new(pool, x_shape, y_shape);
    let (hw, pq) = (x_shape.h * x_shape.w, y_shape.h * y_shape.w);
    let (x_block, y_block) = (hw * CHANNELS, pq * CHANNELS);
    let blocks = (POOL_TASK_OUTPUTS / y_block.max(1)).max(1);
    y[..y_shape.elements() as usize]
        .par_chunks_mut(y_block * blocks)
        .zip(x[..x_shape.elements() as usize].par_chunks(x_block * blocks))
        .for_each(|(yt, xt)| {
            for (yb, xb) in yt.chunks_exact_mut(y_block).zip(xt.chunks_exact(x_block)) {
                windows.max_block(xb, yb);
            }
        });
}

/// Global pooling ([`global_pool_forward`]'s values, no argmax) of an ifmap in channel
/// blocks into planes (`N x C`): each channel's values in the planes' order, so the same
/// sums and the same maximum.
pub(crate) fn global_pool_blocks(kind: PoolKind, x_shape: Shape, x: &[f32], y: &mut [f32]) {
    let hw = x_shape.h * x_shape.w;
    assert!(x_shape.c.is_multiple_of(CHANNELS));
    if hw == 0 {
        return;
    }
    let (x, y) = (
        &x[..x_shape.elements() as usize],
        &mut y[..x_shape.n * x_shape.c],
    );
    // Blocks a task: a few thousand values each (a task a block took 50 us on resnet18's
    // last 512 x 4 x 4, against 5 on planes).
    let blocks = (super::ELEMENTS_A_TASK / (hw * CHANNELS)).max(1);
    y.par_chunks_mut(CHANNELS)
        .zip(x.par_chunks(hw * CHANNELS))
        .with_min_len(blocks)
        .for_each(|(out, block)| {
            // A pixel's 8 lanes at a time (a pass a lane, strided, took 5x onnxruntime's
            // time on mobilenet_v2's last map); each lane's values in the order of the
            // planes' `sum` (from -0.0) and fold.
            let pixels = block.chunks_exact(CHANNELS);
            let lanes: [f32; CHANNELS] = match kind {
                PoolKind::Average => pixels.fold([-0.0; CHANNELS], |mut acc, pixel| {
                    acc.iter_mut().zip(pixel).for_each(|(a, v)| *a += v);
                    acc
                }),
                PoolKind::Max => pixels.fold([f32::NEG_INFINITY; CHANNELS], |mut acc, pixel| {
                    for (a, &v) in acc.iter_mut().zip(pixel) {
                        *a = if v > *a { v } else { *a };
                    }
                    acc
                }),
            };
            for (out, lane) in out.iter_mut().zip(lanes) {
                *out = match kind {
                    PoolKind::Average => lane / hw as f32,
                    PoolKind::Max => lane,
                };
            }
        });
}

/// The windows of a pooling layer, computed once per call: for every output row and column,
/// the ifmap span it covers and its size counting padding.
struct Windows {
    h: usize,
    w: usize,
    rows: Vec<(usize, usize, usize)>,
    columns: Vec<(usize, usize, usize)>,
}

impl Windows {
    fn new(pool: &Pool, x_shape: Shape, y_shape: Shape) -> Windows {
        let (h, w) = (x_shape.h, x_shape.w);
        let rows = (0..y_shape.h)
            .map(|oy| {
                span(
                    oy,
                    pool.stride_h,
                    pool.padding.top,
                    pool.padding.bottom,
                    pool.kernel_h,
                    h,
                )
            })
            .collect();
        let columns = (0..y_shape.w)
            .map(|ox| {
                span(
                    ox,
                    pool.stride_w,
                    pool.padding.left,
                    pool.padding.right,
                    pool.kernel_w,
                    w,
                )
            })
            .collect();
        Windows {
            h,
            w,
            rows,
            columns,
        }
    }

    /// Whether every window is a whole 2x2 block of the ifmap (kernel 2, stride 2, no
    /// padding reached).
    fn is_two_by_two(&self, pool: &Pool) -> bool {
        let whole = |spans: &[(usize, usize, usize)]| {
            spans
                .iter()
                .enumerate()
                .all(|(o, &(a, b, padded))| a == 2 * o && b == a + 2 && padded == 2)
        };
        pool.kernel_h == 2 && pool.kernel_w == 2 && whole(&self.rows) && whole(&self.columns)
    }

    /// Max pooling over whole 2x2 blocks, without argmax: the same comparisons in the same
    /// order as the general loop, as selects.
    fn max_two_by_two(&self, xi: &[f32], yi: &mut [f32]) {
        let (h, w) = (self.h, self.w);
        let q = self.columns.len();
        let larger = |best: f32, v: f32| if v > best { v } else { best };
        for (plane, out) in xi
            .chunks_exact(h * w)
            .zip(yi.chunks_exact_mut(self.rows.len() * q))
        {
            for (oy, out_row) in out.chunks_exact_mut(q).enumerate() {
                let top = &plane[2 * oy * w..2 * oy * w + 2 * q];
                let bottom = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * q];
                for ((v, t), b) in out_row
                    .iter_mut()
                    .zip(top.chunks_exact(2))
                    .zip(bottom.chunks_exact(2))
                {
                    let best = larger(larger(f32::NEG_INFINITY, t[0]), t[1]);
                    *v = larger(larger(best, b[0]), b[1]);
                }
            }
        }
    }

    /// [`max_two_by_two`](Self::max_two_by_two) recording where each maximum lies (its
    /// index in the sample) in `ai`, plane by plane ([`max_two_by_two_at`]).
    fn max_two_by_two_at(&self, xi: &[f32], yi: &mut [f32], ai: &mut [u32]) {
        let (h, w) = (self.h, self.w);
        let pq = self.rows.len() * self.columns.len();
        for (c, (plane, (out, at))) in xi
            .chunks_exact(h * w)
            .zip(yi.chunks_exact_mut(pq).zip(ai.chunks_exact_mut(pq)))
            .enumerate()
        {
            max_two_by_two_at(plane, w, self.columns.len(), c * h * w, (out, at), None);
        }
    }

    /// Pools one sample `xi` into `yi`, recording each window's first maximum in `ai` when
    /// given.
    fn sample(&self, pool: &Pool, xi: &[f32], yi: &mut [f32], ai: Option<&mut [u32]>) {
        if pool.kind == PoolKind::Max && self.is_two_by_two(pool) {
            match ai {
                None => self.max_two_by_two(xi, yi),
                Some(ai) => self.max_two_by_two_at(xi, yi, ai),
            }
            return;
        }
        if pool.kind == PoolKind::Max && ai.is_none() {
            return crate::kernels::wide(
                #[inline(always)]
                || self.max_rows(pool, xi, yi),
            );
        }
        self.general(pool, xi, yi, ai)
    }

    /// Max pooling without argmax for any window: each output's comparisons in the general
    /// loop's order (window rows, then columns), as selects, a row of outputs at a time; the
    /// windows wholly inside a row 8 outputs a step ([`max_strided`]). resnet18's 3x3
    /// stride-2 pooling of 64 x 56 x 56 (1 thread, alone): 581 us one output at a time with
    /// a branch a value, 160 us here; onnxruntime's profile gives its own 57 us.
    #[inline(always)]
    fn max_rows(&self, pool: &Pool, xi: &[f32], yi: &mut [f32]) {
        let (h, w) = (self.h, self.w);
        let (p, q) = (self.rows.len(), self.columns.len());
        let (kw, sw) = (pool.kernel_w, pool.stride_w);
        // Outputs `inside` whose window covers `kw` columns of the row from `ox * sw - pad`.
        let whole = |ox: usize| {
            let (x0, x1, _) = self.columns[ox];
            x1 - x0 == kw && x0 + pool.padding.left == ox * sw
        };
        let first = (0..q).find(|&ox| whole(ox)).unwrap_or(q);
        let last = (first..q).find(|&ox| !whole(ox)).unwrap_or(q);
        let larger = select_larger;
        for (plane, out) in xi.chunks_exact(h * w).zip(yi.chunks_exact_mut(p * q)) {
            for (&(y0, y1, _), out_row) in self.rows.iter().zip(out.chunks_exact_mut(q)) {
                out_row.fill(f32::NEG_INFINITY);
                for iy in y0..y1.max(y0) {
                    let line = &plane[iy * w..(iy + 1) * w];
                    for (ox, out) in out_row.iter_mut().enumerate() {
                        if ox == first {
                            break;
                        }
                        let (x0, x1, _) = self.columns[ox];
                        for &v in &line[x0..x1.max(x0)] {
                            *out = larger(*out, v);
                        }
                    }
                    if first < last {
                        let x0 = self.columns[first].0;
                        let inside = &mut out_row[first..last];
                        for kx in 0..kw {
                            let from = &line[x0 + kx..];
                            let done = max_strided(inside, from, sw);
                            let from = from[done * sw..].iter().step_by(sw);
                            for (out, &v) in inside[done..].iter_mut().zip(from) {
                                *out = larger(*out, v);
                            }
                        }
                    }
                    for (ox, out) in out_row.iter_mut().enumerate().skip(last) {
                        let (x0, x1, _) = self.columns[ox];
                        for &v in &line[x0..x1.max(x0)] {
                            *out = larger(*out, v);
                        }
                    }
                }
            }
        }
    }

    /// [`sample`](Self::sample) for any window, one output at a time.
    fn general(&self, pool: &Pool, xi: &[f32], yi: &mut [f32], mut ai: Option<&mut [u32]>) {
        let (h, w) = (self.h, self.w);
        let (p, q) = (self.rows.len(), self.columns.len());
        let outer = |(y0, y1, _): (usize, usize, usize), (x0, x1, _): (usize, usize, usize)| {
            (y0, y1.max(y0), x0, x1.max(x0))
        };
        // The planes given: a whole sample's, or a run of them at inference.
        for c in 0..xi.len() / (h * w).max(1) {
            let plane = &xi[c * h * w..(c + 1) * h * w];
            for (oy, &row) in self.rows.iter().enumerate() {
                let out_row = &mut yi[(c * p + oy) * q..(c * p + oy + 1) * q];
                for (ox, (out, &column)) in out_row.iter_mut().zip(&self.columns).enumerate() {
                    let (y0, y1, x0, x1) = outer(row, column);
                    if pool.kind == PoolKind::Max {
                        let mut best = f32::NEG_INFINITY;
                        let mut at = y0 * w + x0;
                        for iy in y0..y1 {
                            for (ix, &v) in plane[iy * w + x0..iy * w + x1].iter().enumerate() {
                                if v > best {
                                    best = v;
                                    at = iy * w + x0 + ix;
                                }
                            }
                        }
                        *out = best;
                        if let Some(ai) = ai.as_deref_mut() {
                            ai[(c * p + oy) * q + ox] = (c * h * w + at) as u32;
                        }
                    } else {
                        let mut sum = 0.0;
                        for iy in y0..y1 {
                            for &v in &plane[iy * w + x0..iy * w + x1] {
                                sum += v;
                            }
                        }
                        let count = if pool.count_include_pad {
                            row.2 * column.2
                        } else {
                            (y1 - y0) * (x1 - x0)
                        };
                        *out = sum / count.max(1) as f32;
                    }
                }
            }
        }
    }
}

impl Windows {
    /// One block's max pooling: `xb` holds `H x W` pixels of [`CHANNELS`] channels, `yb`
    /// gets `P x Q` of them; each output's window in rows and columns order, a select of
    /// the larger a step (lane by lane [`select_larger`]'s).
    fn max_block(&self, xb: &[f32], yb: &mut [f32]) {
        let w = self.w;
        let mut at = 0;
        for &(y0, y1, _) in &self.rows {
            for &(x0, x1, _) in &self.columns {
                let mut best = [f32::NEG_INFINITY; CHANNELS];
                for iy in y0..y1.max(y0) {
                    for ix in x0..x1.max(x0) {
                        let v: &[f32; CHANNELS] = xb[(iy * w + ix) * CHANNELS..][..CHANNELS]
                            .try_into()
                            .expect("a pixel's channels");
                        best = select_larger_lanes(best, v);
                    }
                }
                yb[at..at + CHANNELS].copy_from_slice(&best);
                at += CHANNELS;
            }
        }
    }
}

/// [`select_larger`] lane by lane (`maxps v, best`: the same select).
#[inline(always)]
fn select_larger_lanes(best: [f32; CHANNELS], v: &[f32; CHANNELS]) -> [f32; CHANNELS] {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE is part of x86-64; each half is 4 of the 8 lanes.
        unsafe {
            let mut out = [0f32; CHANNELS];
            for h in 0..CHANNELS / 4 {
                let (b, x) = (
                    _mm_loadu_ps(best.as_ptr().add(4 * h)),
                    _mm_loadu_ps(v.as_ptr().add(4 * h)),
                );
                _mm_storeu_ps(out.as_mut_ptr().add(4 * h), _mm_max_ps(x, b));
            }
            out
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::array::from_fn(|l| select_larger(best[l], v[l]))
}

/// `if v > best { v } else { best }` without a branch (`maxss v, best` is that select, NaN
/// and signed zeros included): as a branch, mispredicted on pooled activations.
#[inline(always)]
fn select_larger(best: f32, v: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE is part of x86-64.
        unsafe { _mm_cvtss_f32(_mm_max_ss(_mm_set_ss(v), _mm_set_ss(best))) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    if v > best {
        v
    } else {
        best
    }
}

/// `out[o] = if v > out[o] { v } else { out[o] }` for `v = from[o * stride]`, 8 outputs a
/// step where AVX2 is there and stride is 1 or 2 (`maxps v, out` is that select, NaN and
/// signed zeros included; compiled from the scalar select it was a branch a value, and
/// mispredicted). Returns how many outputs it did (the rest are the caller's).
fn max_strided(out: &mut [f32], from: &[f32], stride: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    if (stride == 1 || stride == 2) && std::arch::is_x86_feature_detected!("avx2") {
        // Whole steps whose 8 (stride 1) or 16 (stride 2) values lie in `from`.
        let steps = (from.len() / (8 * stride)).min(out.len() / 8);
        // SAFETY: the CPU has AVX2; every step reads `from[8 s stride..8 (s + 1) stride]`
        // and writes `out[8 s..8 s + 8]`, inside both (`steps` above).
        unsafe {
            use std::arch::x86_64::*;
            #[target_feature(enable = "avx2")]
            unsafe fn run(out: &mut [f32], from: &[f32], stride: usize, steps: usize) {
                let (o, f) = (out.as_mut_ptr(), from.as_ptr());
                for s in 0..steps {
                    let v = if stride == 1 {
                        _mm256_loadu_ps(f.add(8 * s))
                    } else {
                        let (lo, hi) = (
                            _mm256_loadu_ps(f.add(16 * s)),
                            _mm256_loadu_ps(f.add(16 * s + 8)),
                        );
                        let even = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
                        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
                            even,
                        )))
                    };
                    let best = _mm256_loadu_ps(o.add(8 * s));
                    _mm256_storeu_ps(o.add(8 * s), _mm256_max_ps(v, best));
                }
            }
            run(out, from, stride, steps);
        }
        return steps * 8;
    }
    let _ = (out, from, stride);
    0
}

/// Whether every window of `pool` from `x_shape` to `y_shape` is a whole 2x2 block of the
/// ifmap: max pooling that [`max_two_by_two_at`] computes.
pub(crate) fn whole_two_by_two(pool: &Pool, x_shape: Shape, y_shape: Shape) -> bool {
    pool.kind == PoolKind::Max && Windows::new(pool, x_shape, y_shape).is_two_by_two(pool)
}

/// Max pooling of one plane (`w` columns) over whole 2x2 blocks into `out` (`q` columns),
/// recording in `at` where each maximum lies, as `base` plus its index in the plane: the
/// first of equals in the general loop's order (top row left to right, then the bottom
/// row), as training's general loop did in a tenth of LeNet-5's time. With `also = (values,
/// at_max)`, the values of another plane (`values`, laid out as
/// `plane`) where each maximum lies into `at_max`.
pub(crate) fn max_two_by_two_at(
    plane: &[f32],
    w: usize,
    q: usize,
    base: usize,
    (out, at): (&mut [f32], &mut [u32]),
    also: Option<(&[f32], &mut [f32])>,
) {
    let p = out.len().min(at.len()) / q.max(1);
    let rows = (2 * p).saturating_sub(1) * w + 2 * q;
    assert!(p == 0 || plane.len() >= rows && also.as_ref().is_none_or(|(v, _)| v.len() >= rows));
    assert!(also.as_ref().is_none_or(|(_, a)| a.len() >= p * q));
    #[cfg(target_arch = "x86_64")]
    if crate::sgemm::avx512() {
        // SAFETY: AVX-512 (with VL, as the kernels require); the rows read and the outputs
        // written lie inside the slices (asserted above; `p` rows of `q` outputs).
        return unsafe { max_two_by_two_at_avx512(plane, w, (p, q), base, (out, at), also) };
    }
    max_two_by_two_at_by_window(plane, w, q, base, out, at);
    if let Some((values, at_max)) = also {
        for (v, a) in at_max.iter_mut().zip(&at[..p * q]) {
            *v = values[*a as usize - base];
        }
    }
}

/// [`max_two_by_two_at`] one window at a time.
fn max_two_by_two_at_by_window(
    plane: &[f32],
    w: usize,
    q: usize,
    base: usize,
    out: &mut [f32],
    at: &mut [u32],
) {
    crate::kernels::wide(
        #[inline(always)]
        || {
            for (oy, (out_row, at_row)) in out
                .chunks_exact_mut(q)
                .zip(at.chunks_exact_mut(q))
                .enumerate()
            {
                let top = &plane[2 * oy * w..2 * oy * w + 2 * q];
                let bottom = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * q];
                let row = (base + 2 * oy * w) as u32;
                for (ox, (((v, a), t), b)) in out_row
                    .iter_mut()
                    .zip(at_row.iter_mut())
                    .zip(top.chunks_exact(2))
                    .zip(bottom.chunks_exact(2))
                    .enumerate()
                {
                    // Selects, not branches: which value wins is data, and mispredicted
                    // branches made pooling cost more than the ReLU before it.
                    let (mut best, mut at) = (f32::NEG_INFINITY, 0u32);
                    for (v, k) in [(t[0], 0), (t[1], 1), (b[0], w as u32), (b[1], w as u32 + 1)] {
                        let larger = v > best;
                        best = if larger { v } else { best };
                        at = if larger { k } else { at };
                    }
                    *v = best;
                    *a = row + 2 * ox as u32 + at;
                }
            }
        },
    )
}

/// [`max_two_by_two_at`] 16 windows at a time: a row pair's even and odd columns
/// gathered into vectors, then the same four comparisons (`v > best`, the first of equals
/// kept, NaN never larger) as selects on lanes: the same maxima and places. One window at a
/// time, pooling was a third of the fused batch norm, ReLU and pooling pass in vgg-small's
/// training.
///
/// # Safety
/// AVX-512F; `plane` (and `also`'s values) hold rows `0..2p` of `w` values (the last one
/// `2q` at least), `out`, `at` (and `also`'s maxima) `p q` values each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_two_by_two_at_avx512(
    plane: &[f32],
    w: usize,
    (p, q): (usize, usize),
    base: usize,
    (out, at): (&mut [f32], &mut [u32]),
    mut also: Option<(&[f32], &mut [f32])>,
) {
    use std::arch::x86_64::*;
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    let lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let columns = _mm512_add_epi32(lanes, lanes);
    let (src, dst, places) = (plane.as_ptr(), out.as_mut_ptr(), at.as_mut_ptr());
    for oy in 0..p {
        let (top, bottom) = (src.add(2 * oy * w), src.add((2 * oy + 1) * w));
        let row = base + 2 * oy * w;
        let mut ox = 0;
        while ox < q {
            let k = (q - ox).min(16);
            let (first, second): (__mmask16, __mmask16) = if k == 16 {
                (!0, !0)
            } else {
                let values = 2 * k as u32;
                (
                    ((1u32 << values.min(16)) - 1) as u16,
                    ((1u32 << values.saturating_sub(16)) - 1) as u16,
                )
            };
            // The row pair's 2k values from column 2 ox: even columns, then odd.
            let split = |line: *const f32| {
                let a = _mm512_maskz_loadu_ps(first, line.add(2 * ox));
                let b = _mm512_maskz_loadu_ps(second, line.add(2 * ox + 16));
                (
                    _mm512_permutex2var_ps(a, even, b),
                    _mm512_permutex2var_ps(a, odd, b),
                )
            };
            let (t0, t1) = split(top);
            let (b0, b1) = split(bottom);
            // The other plane's values in the same lanes, selected alongside.
            let zero = _mm512_setzero_ps();
            let [u0, u1, v0, v1] = match &also {
                Some((values, _)) => {
                    let (line, below) = (values.as_ptr().add(2 * oy * w), values.as_ptr());
                    let ((u0, u1), (v0, v1)) = (split(line), split(below.add((2 * oy + 1) * w)));
                    [u0, u1, v0, v1]
                }
                None => [zero; 4],
            };
            let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
            let mut place = _mm512_setzero_si512();
            // Where no value is larger than -inf, the place stays the first: so does this.
            let mut with = u0;
            let candidates = [
                (t0, 0, u0),
                (t1, 1, u1),
                (b0, w as i32, v0),
                (b1, w as i32 + 1, v1),
            ];
            for (v, offset, other) in candidates {
                let larger = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best);
                best = _mm512_mask_mov_ps(best, larger, v);
                place = _mm512_mask_mov_epi32(place, larger, _mm512_set1_epi32(offset));
                with = _mm512_mask_mov_ps(with, larger, other);
            }
            let place = _mm512_add_epi32(
                place,
                _mm512_add_epi32(columns, _mm512_set1_epi32((row + 2 * ox) as i32)),
            );
            let store: __mmask16 = if k == 16 { !0 } else { (1 << k) - 1 };
            _mm512_mask_storeu_ps(dst.add(oy * q + ox), store, best);
            _mm512_mask_storeu_epi32(places.add(oy * q + ox).cast(), store, place);
            if let Some((_, at_max)) = also.as_mut() {
                let v = with;
                _mm512_mask_storeu_ps(at_max.as_mut_ptr().add(oy * q + ox), store, v);
            }
            ox += k;
        }
    }
}

/// Along one axis: the ifmap span `start..end` that output `o`'s window covers (clipped to the
/// ifmap; `end` may fall below `start` when the window lies in the padding) and the window's
/// size counting padding.
fn span(
    o: usize,
    stride: usize,
    pad: usize,
    pad_end: usize,
    k: usize,
    size: usize,
) -> (usize, usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let end = (start + k as isize).min((size + pad_end) as isize);
    let padded = (end - start) as usize;
    (
        start.max(0) as usize,
        (end.max(0) as usize).min(size),
        padded,
    )
}

/// The ifmap rows `y0..y1` and columns `x0..x1` that window (oy, ox) covers, and the size of
/// the window counting padding (clipped to the padded ifmap, as ONNX and PyTorch do).
fn window(
    pool: &Pool,
    oy: usize,
    ox: usize,
    h: usize,
    w: usize,
) -> (usize, usize, usize, usize, usize) {
    let (y0, y1, ph) = span(
        oy,
        pool.stride_h,
        pool.padding.top,
        pool.padding.bottom,
        pool.kernel_h,
        h,
    );
    let (x0, x1, pw) = span(
        ox,
        pool.stride_w,
        pool.padding.left,
        pool.padding.right,
        pool.kernel_w,
        w,
    );
    (y0, y1.max(y0), x0, x1.max(x0), ph * pw)
}

/// Backward windowed pooling: writes `dx` (zeroed here).
pub fn pool_backward(
    pool: &Pool,
    x_shape: Shape,
    y_shape: Shape,
    argmax: &[u32],
    dy: &[f32],
    dx: &mut [f32],
) {
    let (h, w, p, q) = (x_shape.h, x_shape.w, y_shape.h, y_shape.w);
    let in_len = x_shape.per_sample();
    let out_len = y_shape.per_sample();
    dx.par_chunks_mut(in_len)
        .zip(dy.par_chunks(out_len))
        .enumerate()
        .for_each(|(n, (dxi, dyi))| {
            dxi.fill(0.0);
            if pool.kind == PoolKind::Max {
                let ai = &argmax[n * out_len..(n + 1) * out_len];
                for (g, &at) in dyi.iter().zip(ai) {
                    dxi[at as usize] += g;
                }
                return;
            }
            for c in 0..x_shape.c {
                for oy in 0..p {
                    for ox in 0..q {
                        let (y0, y1, x0, x1, padded) = window(pool, oy, ox, h, w);
                        let count = if pool.count_include_pad {
                            padded
                        } else {
                            (y1 - y0) * (x1 - x0)
                        };
                        let g = dyi[c * p * q + oy * q + ox] / count.max(1) as f32;
                        for iy in y0..y1 {
                            for ix in x0..x1 {
                                dxi[c * h * w + iy * w + ix] += g;
                            }
                        }
                    }
                }
            }
        });
}

/// Global pooling over H x W; returns argmax (plane offsets) for max.
pub fn global_pool_forward(kind: PoolKind, x_shape: Shape, x: &[f32], y: &mut [f32]) -> Vec<u32> {
    let hw = x_shape.h * x_shape.w;
    if hw == 0 {
        return Vec::new();
    }
    // Planes in parallel, each summed or searched as alone.
    let planes = x.par_chunks(hw).zip(y.par_iter_mut());
    let planes = planes.with_min_len(super::ELEMENTS_A_TASK.div_ceil(hw));
    match kind {
        PoolKind::Average => {
            planes.for_each(|(plane, out)| *out = plane.iter().sum::<f32>() / hw as f32);
            Vec::new()
        }
        PoolKind::Max => planes
            .map(|(plane, out)| {
                let (at, best) =
                    plane
                        .iter()
                        .enumerate()
                        .fold(
                            (0, f32::NEG_INFINITY),
                            |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                        );
                *out = best;
                at as u32
            })
            .collect(),
    }
}

pub fn global_pool_backward(
    kind: PoolKind,
    x_shape: Shape,
    argmax: &[u32],
    dy: &[f32],
    dx: &mut [f32],
) {
    let hw = x_shape.h * x_shape.w;
    for (i, (plane, g)) in dx.chunks_mut(hw).zip(dy).enumerate() {
        match kind {
            PoolKind::Average => plane.iter_mut().for_each(|v| *v = g / hw as f32),
            PoolKind::Max => {
                plane.fill(0.0);
                plane[argmax[i] as usize] = *g;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::blocks::{from_blocks, to_blocks};

    /// 2x2 max pooling with argmax in vectors (AVX-512 machines) gives the window-by-window
    /// loop's maxima and places (and another plane's values there): NaN (never larger), infinities, signed zeros and ties (the
    /// first wins), in planes whose rows hold fewer than one vector of windows, exactly one,
    /// one and a tail, several; odd and even widths.
    #[test]
    fn pooling_two_by_two_in_vectors_equals_window_by_window() {
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.0,
            1.0,
            1.0,
        ];
        for (h, w) in [(2, 2), (7, 7), (6, 8), (28, 28), (4, 32), (5, 35), (9, 67)] {
            let (p, q) = (h / 2, w / 2);
            let mut plane: Vec<f32> = (0..h * w)
                .map(|i| match i % 11 {
                    0..=6 => specials[(i / 11 + i) % 7],
                    k => (k as f32 - 8.0) * 0.5,
                })
                .collect();
            // A window with no value above -inf: its maximum's place is its first.
            for at in [0, 1, w, w + 1] {
                plane[at] = if at == w { f32::NEG_INFINITY } else { f32::NAN };
            }
            let base = 3 * h * w;
            let other: Vec<f32> = (0..h * w).map(|i| i as f32 * 0.5 - 3.0).collect();
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let run = |vector: bool| {
                let (mut out, mut at) = (vec![f32::NAN; p * q], vec![u32::MAX; p * q]);
                let mut also = vec![f32::NAN; p * q];
                if vector {
                    let outputs = (&mut out[..], &mut at[..]);
                    max_two_by_two_at(&plane, w, q, base, outputs, Some((&other, &mut also)));
                } else {
                    max_two_by_two_at_by_window(&plane, w, q, base, &mut out, &mut at);
                    for (v, a) in also.iter_mut().zip(&at) {
                        *v = other[*a as usize - base];
                    }
                }
                (bits(&out), at, bits(&also))
            };
            let (want, got) = (run(false), run(true));
            assert_eq!(got, want, "{h}x{w}");
            assert!(want.1.iter().all(|a| (*a as usize) < base + h * w));
        }
    }

    /// Max pooling and global pooling on channel blocks against the planes' functions, bit
    /// for bit, on values with NaN, infinities and signed zeros: windows with padding and
    /// clipped at the edge (3x3, stride 2, ceil), 2x2, several tasks of blocks.
    #[test]
    fn pooling_on_blocks_equals_pooling_on_planes() {
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0];
        // (pool, (n, c, h, w), (p, q))
        for (pool, (n, c, h, w), (p, q)) in [
            (Pool::max(3, 2, 1).ceil(), (2, 16, 7, 9), (4, 5)),
            (Pool::max(2, 2, 0), (3, 8, 6, 6), (3, 3)),
            (Pool::max(2, 2, 0), (1, 64, 28, 28), (14, 14)),
        ] {
            let x_shape = Shape::new(n, c, h, w);
            let y_shape = Shape::new(n, c, p, q);
            let x: Vec<f32> = (0..x_shape.elements() as usize)
                .map(|i| match i % 37 {
                    k @ 0..=4 => specials[k],
                    _ => ((i * 7919) % 101) as f32 / 13.0 - 3.0,
                })
                .collect();
            let (hw, pq) = (h * w, p * q);
            let mut xb = vec![0f32; x.len()];
            for (planes, blocks) in x.chunks(c * hw).zip(xb.chunks_mut(c * hw)) {
                to_blocks(c, hw, planes, blocks);
            }
            let mut want = vec![0f32; y_shape.elements() as usize];
            pool_inference(&pool, x_shape, y_shape, &x, &mut want);
            let mut yb = vec![f32::NAN; want.len()];
            pool_inference_blocks(&pool, x_shape, y_shape, &xb, &mut yb);
            let mut got = vec![0f32; want.len()];
            for (blocks, planes) in yb.chunks(c * pq).zip(got.chunks_mut(c * pq)) {
                from_blocks(c, pq, blocks, planes);
            }
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{pool:?} on {x_shape:?}");
            for kind in [PoolKind::Average, PoolKind::Max] {
                let mut want = vec![0f32; n * c];
                global_pool_forward(kind, x_shape, &x, &mut want);
                let mut got = vec![f32::NAN; n * c];
                global_pool_blocks(kind, x_shape, &xb, &mut got);
                // A NaN's sign and payload are not specified (the compiler may swap an
                // addition's operands, and x86 keeps the first NaN): NaN stands for any.
                let nan = |v: &[f32]| {
                    v.iter()
                        .map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() })
                        .collect::<Vec<_>>()
                };
                assert_eq!(nan(&got), nan(&want), "global {kind:?} on {x_shape:?}");
            }
        }
    }

    /// 3 x 64 planes of 20 x 21 (several tasks): each plane's mean, maximum and (first)
    /// position of the maximum as a sequential pass over it gives them.
    #[test]
    fn global_pooling_in_tasks_equals_each_plane_alone() {
        let shape = Shape::new(3, 64, 20, 21);
        let hw = 20 * 21;
        let x: Vec<f32> = (0..shape.elements() as usize)
            .map(|i| ((i * 7919) % 1009) as f32 * 0.01 - 5.0)
            .collect();
        let mut mean = vec![f32::NAN; 3 * 64];
        assert!(global_pool_forward(PoolKind::Average, shape, &x, &mut mean).is_empty());
        let mut max = vec![f32::NAN; 3 * 64];
        let at = global_pool_forward(PoolKind::Max, shape, &x, &mut max);
        for (p, plane) in x.chunks(hw).enumerate() {
            assert_eq!(mean[p], plane.iter().sum::<f32>() / hw as f32, "plane {p}");
            let best = plane.iter().fold(f32::NEG_INFINITY, |b, &v| b.max(v));
            assert_eq!(max[p], best, "plane {p}");
            let first = plane.iter().position(|&v| v == best).unwrap();
            assert_eq!(at[p] as usize, first, "plane {p}");
        }
    }

    /// The 2x2 paths against the general loop, on a map with ties, infinities and NaN:
    /// the same maxima, and the same (first) positions.
    /// Max pooling without argmax against the general loop, bit for bit, on windows with
    /// padding at both ends, clipped windows, strides 1 to 3, NaN, infinities and signed
    /// zeros.
    #[test]
    fn max_rows_equal_the_general_loop() {
        let special = [1.0, 1.0, f32::NEG_INFINITY, f32::NAN, -0.0, 0.0, 2.0, -3.5];
        for (k, stride, pad, h, w) in [
            (3, 2, 1, 11, 13),
            (3, 1, 1, 5, 9),
            (2, 3, 0, 8, 10),
            (5, 2, 2, 9, 7),
        ] {
            let mut pool = Pool::max(k, stride, pad);
            pool.padding.right = pad + 1;
            let out = |size: usize, end: usize| (size + pad + end - k) / stride + 1;
            let (x_shape, y_shape) = (
                Shape::new(1, 3, h, w),
                Shape::new(1, 3, out(h, pad), out(w, pad + 1)),
            );
            let windows = Windows::new(&pool, x_shape, y_shape);
            let x: Vec<f32> = (0..x_shape.elements() as usize)
                .map(|i| special[(i * 5 + i / 7) % special.len()])
                .collect();
            let len = y_shape.elements() as usize;
            let mut want = vec![0.0; len];
            windows.general(&pool, &x, &mut want, None);
            let mut got = vec![f32::NAN; len];
            windows.sample(&pool, &x, &mut got, None);
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "k {k} stride {stride} pad {pad}");
        }
    }

    /// Inference in tasks of a few planes (across samples: 3 planes of 5 a sample) equals
    /// the general loop on each whole sample, max and average.
    #[test]
    fn inference_in_tasks_of_planes_equals_each_sample_alone() {
        let (h, w) = (190, 170);
        let (x_shape, y_shape) = (Shape::new(2, 5, h, w), Shape::new(2, 5, 95, 85));
        assert_eq!((POOL_TASK_OUTPUTS / (95 * 85)).clamp(1, 5), 2);
        let x: Vec<f32> = (0..x_shape.elements() as usize)
            .map(|i| ((i * 37) % 101) as f32 - 50.0)
            .collect();
        for pool in [Pool::max(3, 2, 1), Pool::average(3, 2, 1)] {
            let windows = Windows::new(&pool, x_shape, y_shape);
            let len = y_shape.elements() as usize;
            let mut want = vec![0.0; len];
            for (xi, yi) in x.chunks(5 * h * w).zip(want.chunks_mut(5 * 95 * 85)) {
                windows.general(&pool, xi, yi, None);
            }
            let mut got = vec![f32::NAN; len];
            pool_inference(&pool, x_shape, y_shape, &x, &mut got);
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert!(bits(&got) == bits(&want), "{:?}", pool.kind);
        }
    }

    #[test]
    fn two_by_two_paths_equal_the_general_loop() {
        let pool = Pool::max(2, 2, 0);
        let (x_shape, y_shape) = (Shape::new(1, 3, 6, 8), Shape::new(1, 3, 3, 4));
        let windows = Windows::new(&pool, x_shape, y_shape);
        assert!(windows.is_two_by_two(&pool));
        let special = [1.0, 1.0, f32::NEG_INFINITY, f32::NAN, -0.0, 0.0, 2.0];
        let x: Vec<f32> = (0..x_shape.elements() as usize)
            .map(|i| special[(i * 5 + i / 7) % special.len()])
            .collect();
        let len = y_shape.elements() as usize;
        let (mut want, mut want_at) = (vec![0.0; len], vec![0u32; len]);
        windows.general(&pool, &x, &mut want, Some(&mut want_at));
        let (mut got, mut got_at) = (vec![0.0; len], vec![0u32; len]);
        windows.sample(&pool, &x, &mut got, Some(&mut got_at));
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
        assert_eq!(got_at, want_at);
        let mut plain = vec![0.0; len];
        windows.sample(&pool, &x, &mut plain, None);
        assert_eq!(bits(&plain), bits(&want));
    }
}
