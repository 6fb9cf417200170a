//! Direct convolution for layers with few input channels (the first layer on grey images:
//! LeNet-5's and the 28x28 zoo's `conv1`), on AVX2 and AVX-512 (16 pixels a vector there:
//! [`wide`]): each output is read from zero-bordered copies of the input planes by every
//! tap, six filters sharing each load, so the ifmap is never lowered. im2col's lowered
//! matrix for such a layer is R x S times the ifmap and does not fit in cache; its stores
//! were a third of LeNet-5's time on the AVX2 machine.
//!
//! Each output is summed as the product on the lowered matrix sums it (from zero, `k = (c,
//! r, s)` ascending, one fused multiply-add a term, one block of `k`), so both give the
//! same bits.

use super::conv::Epilogue;
use crate::kernels::{with_scratch, ConvGeometry};
use rayon::prelude::*;

/// Filters a pass computes together (12 accumulators: 6 filters x 16 columns).
const FILTERS: usize = 6;

/// Largest `C R S` taken: the product sums deeper ones in blocks of its `KC` steps, which
/// this does not.
const MAX_DEPTH: usize = crate::sgemm::KC;

/// Whether [`forward`] runs this layer (`m` filters) here: stride 1 along rows, one group,
/// shallow enough, few channels; on AVX2 machines, and on AVX-512 ones where the filters
/// fill less than one 16-lane vector of the blocked kernel (an Intel Xeon ran LeNet-5
/// faster on the lowered product, session 5: batch 64 1.07 against 1.23 ms; on a Zen 5,
/// alternating processes, 2 threads, LeNet-5 took 0.63 of the blocked kernel's time at
/// batch 64 and 0.73 at batch 1, while vgg-small, whose first layer has 32 filters, took
/// 0.95 and 1.33 with it).
pub(crate) fn applies(g: &ConvGeometry, groups: usize, m: usize) -> bool {
    let here = runs(g) || (crate::sgemm::avx512() && m < 16 && kernel_runs(g));
    here && groups == 1 && g.c <= 3 && g.col_rows() <= MAX_DEPTH
}

/// Whether inference runs this kernel on this one-group layer whatever its filters (AVX2
/// without AVX-512, stride 1 along rows).
fn runs(g: &ConvGeometry) -> bool {
    crate::sgemm::avx2_only() && kernel_runs(g)
}

/// Whether [`forward`] can run this one-group layer at all: AVX2 or AVX-512, stride 1
/// along rows. The training passes run it wherever it can (summed in one chain of any
/// depth, its bits are the product's only where [`applies`] holds): on the Zen 5 with
/// AVX-512, where the blocked kernel or the product took them before, LeNet-5's epochs
/// took 0.56 of the time at batch 256 and 0.67 at batch 64 (with the blocked weight
/// gradient of conv2 at 16 filters a vector; alternating processes, 2 threads, 2026-12-02).
fn kernel_runs(g: &ConvGeometry) -> bool {
    (crate::sgemm::avx2_only() || crate::sgemm::avx512()) && g.stride_w == 1 && g.p > 0 && g.q > 0
}

/// The input gradient of a stride-1 layer into few channels (`g` its forward geometry, `m`
/// filters): `dY` convolved with the filters flipped ([`super::implicit::input_gradient`])
/// here, the `C` channels as this kernel's filters, its pixels on the lanes. `false` where
/// it does not run or does not pay: the blocked kernel puts channels on the lanes and a
/// single block of them fills its tile poorly. LeNet-5's conv2 (6 channels, 400 taps): its
/// backward pass took 0.85-0.92 of the time it took with the lowered product and col2im
/// (alternating processes, batch 64, 1 thread), which took 0.76-0.86 of the blocked one's.
pub(crate) fn input_gradient(
    g: &ConvGeometry,
    n: usize,
    m: usize,
    filter: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> bool {
    let transposed = super::implicit::input_gradient(g, m).filter(kernel_runs);
    let Some(t) = transposed.filter(|_| g.c <= super::blocked::BLOCK) else {
        return false;
    };
    let flipped = super::implicit::flipped_filters(g, m, filter);
    forward(&t, n, g.c, dy, &flipped, &Epilogue::default(), dx);
    true
}

/// `y = epilogue(conv(x, filter))` for `n` samples, one (sample, block of filters) a task.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    g: &ConvGeometry,
    n: usize,
    m: usize,
    x: &[f32],
    filter: &[f32],
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    assert!(kernel_runs(g));
    let (plane, pq, crs) = (g.h * g.w, g.p * g.q, g.col_rows());
    let (in_len, out_len) = (g.c * plane, m * pq);
    assert!(x.len() >= n * in_len && y.len() >= n * out_len && filter.len() >= m * crs);
    let (hp, wp) = g.padded_plane();
    y[..n * out_len]
        .par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .for_each(|(yi, xi)| {
            with_scratch(g.c * hp * wp, |padded| {
                for (xc, pc) in xi.chunks_exact(plane).zip(padded.chunks_exact_mut(hp * wp)) {
                    g.pad(xc, pc, wp);
                }
                for f0 in (0..m).step_by(FILTERS) {
                    let filters = FILTERS.min(m - f0);
                    let out = &mut yi[f0 * pq..(f0 + filters) * pq];
                    let taps = &filter[f0 * crs..(f0 + filters) * crs];
                    // SAFETY: `applies` checked AVX2 and FMA; the planes are padded for
                    // every tap of 16 columns (`padded_plane`); `out` holds `filters` planes.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        if crate::sgemm::avx512() {
                            wide::block(g, filters, padded, hp * wp, wp, taps, out)
                        } else {
                            avx2::block(g, filters, padded, hp * wp, wp, taps, out)
                        }
                    };
                }
            });
            for (c, channel) in yi.chunks_mut(pq).enumerate() {
                epilogue.channel(c, channel);
            }
        });
}

/// Lanes of the weight gradient's accumulators on AVX2 ([`weight_gradient_sample`]).
const LANES: usize = 8;

/// Whether [`weight_gradient_sample`] takes this layer's weight gradient (`m` filters): as
/// [`applies`] but of any depth, into a single block of filters. There the blocked kernel
/// (filters on the lanes) runs tiles of 1 block x 6 taps, load-bound, with lanes empty past
/// `m`, and turns each sample's gradient into blocks first: LeNet-5's first layer (6
/// filters, 25 taps) took 1.28-1.70 ms a step there and 0.96-1.27 here (batch 256, 2
/// threads, alternating epochs in one process, three runs). With two blocks or more it keeps them:
/// vgg-small's first layer (32 filters, 9 taps) took 0.77 ms there and 0.97 here.
pub(crate) fn weight_gradient_applies(g: &ConvGeometry, groups: usize, m: usize) -> bool {
    kernel_runs(g) && groups == 1 && g.c <= 3 && m <= super::blocked::BLOCK
}

/// Values of [`weight_gradient_sample`]'s accumulators for `m` filters of `k` taps (and the
/// bias gradient's, `m` more after them).
pub(crate) fn weight_gradient_len(m: usize, k: usize) -> usize {
    m * (k + 1) * crate::sgemm::vector_lanes()
}

/// Values of scratch [`weight_gradient_sample`] needs: the padded ifmap, `dY`'s rows padded
/// to whole vectors.
pub(crate) fn weight_gradient_scratch(g: &ConvGeometry, m: usize) -> usize {
    let (hp, wp) = g.padded_plane();
    let lanes = crate::sgemm::vector_lanes();
    g.c * hp * wp + m * g.p * g.q.div_ceil(lanes) * lanes
}

/// One sample's weight gradient added into `acc` (filter `f`, tap `t`, lane `l` at `(f K +
/// t) LANES + l`) with the output pixels on the lanes: `acc[f][t][l] += dY[f][x] *
/// ifmap[tap t of x]` over the pixels `x` of columns `l` mod 8, `dY`'s rows padded with
/// zeros to whole vectors. Tiles of 6 filters x 2 taps; every load whole (8 pixels of a
/// row), none of the lowered matrix. The bias gradient too (`acc[M K + f][l] += dY[f][x]`),
/// from the padded rows while they are in cache: a pass of its own read `dY` again from
/// memory. [`add_lanes`] sums the lanes into the gradients.
pub(crate) fn weight_gradient_sample(
    g: &ConvGeometry,
    m: usize,
    x: &[f32],
    dy: &[f32],
    scratch: &mut [f32],
    acc: &mut [f32],
) {
    let (hp, wp) = g.padded_plane();
    let lanes = crate::sgemm::vector_lanes();
    let (plane, k, qv) = (g.h * g.w, g.col_rows(), g.q.div_ceil(lanes) * lanes);
    assert!(kernel_runs(g) && x.len() >= g.c * plane && dy.len() >= m * g.p * g.q);
    assert!(acc.len() >= weight_gradient_len(m, k));
    let (padded, rows) = scratch[..weight_gradient_scratch(g, m)].split_at_mut(g.c * hp * wp);
    for (xc, pc) in x.chunks_exact(plane).zip(padded.chunks_exact_mut(hp * wp)) {
        g.pad(xc, pc, wp);
    }
    for (src, dst) in dy[..m * g.p * g.q]
        .chunks_exact(g.q)
        .zip(rows.chunks_exact_mut(qv))
    {
        dst[..g.q].copy_from_slice(src);
        dst[g.q..].fill(0.0);
    }
    let bias = &mut acc[m * k * lanes..m * (k + 1) * lanes];
    for (filter, sums) in rows
        .chunks_exact(g.p * qv)
        .zip(bias.chunks_exact_mut(lanes))
    {
        for values in filter.chunks_exact(lanes) {
            for (l, v) in sums.iter_mut().zip(values) {
                *l += v;
            }
        }
    }
    // Where each tap of the first output pixel lies in the padded planes.
    let taps: Vec<usize> = (0..g.c)
        .flat_map(|c| {
            (0..g.r).flat_map(move |r| {
                (0..g.s).map(move |s| c * hp * wp + r * g.dilation_h * wp + s * g.dilation_w)
            })
        })
        .collect();
    // Every tap of every vector of every row lies in the planes.
    let last = (g.p - 1) * g.stride_h * wp + qv;
    assert!(taps.iter().all(|t| t + last <= padded.len()));
    // Taps a tile: AVX-512's 32 registers hold 6 x 4 accumulators.
    let per_tile = if lanes == LANES { 2 } else { 4 };
    #[cfg(target_arch = "x86_64")]
    for f0 in (0..m).step_by(FILTERS) {
        for t0 in (0..k).step_by(per_tile) {
            let tile = LaneTile {
                g,
                wp,
                qv,
                filters: f0..(f0 + FILTERS).min(m),
                taps: &taps[t0..(t0 + per_tile).min(k)],
                first_tap: t0,
                k,
            };
            // SAFETY: AVX2 and FMA (`kernel_runs`), AVX-512 where the lanes are 16; every
            // load lies in `padded` (asserted) or `rows` (the tile's filters' rows); `acc`
            // holds every filter's taps.
            unsafe {
                if lanes == LANES {
                    tile.run_any(padded, rows, acc)
                } else {
                    tile.run_wide_any(padded, rows, acc)
                }
            };
        }
    }
}

/// Adds to `dw` (`M x K` weights, then the `M` biases when `bias`) each accumulator's lanes
/// summed in order: the gradients of the samples [`weight_gradient_sample`] added into
/// `acc`.
pub(crate) fn add_lanes(m: usize, k: usize, bias: bool, acc: &[f32], dw: &mut [f32]) {
    let values = m * (k + usize::from(bias));
    assert!(acc.len() >= weight_gradient_len(m, k) && dw.len() >= values);
    for (d, lanes) in dw[..values]
        .iter_mut()
        .zip(acc.chunks_exact(crate::sgemm::vector_lanes()))
    {
        *d += lanes.iter().fold(0.0, |s, v| s + v);
    }
}

/// A tile of [`weight_gradient_sample`]: filters `filters` (at most [`FILTERS`]) by the taps
/// `first_tap..` (offsets `taps`, 1 or 2), over every output pixel.
#[cfg(target_arch = "x86_64")]
struct LaneTile<'a> {
    g: &'a ConvGeometry,
    wp: usize,
    qv: usize,
    filters: std::ops::Range<usize>,
    taps: &'a [usize],
    first_tap: usize,
    k: usize,
}

#[cfg(target_arch = "x86_64")]
impl LaneTile<'_> {
    /// # Safety
    /// As [`run`](Self::run).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_any(&self, padded: &[f32], rows: &[f32], acc: &mut [f32]) {
        match (self.filters.len(), self.taps.len()) {
            (6, 2) => self.run::<6, 2>(padded, rows, acc),
            (5, 2) => self.run::<5, 2>(padded, rows, acc),
            (4, 2) => self.run::<4, 2>(padded, rows, acc),
            (3, 2) => self.run::<3, 2>(padded, rows, acc),
            (2, 2) => self.run::<2, 2>(padded, rows, acc),
            (_, 2) => self.run::<1, 2>(padded, rows, acc),
            (6, _) => self.run::<6, 1>(padded, rows, acc),
            (5, _) => self.run::<5, 1>(padded, rows, acc),
            (4, _) => self.run::<4, 1>(padded, rows, acc),
            (3, _) => self.run::<3, 1>(padded, rows, acc),
            (2, _) => self.run::<2, 1>(padded, rows, acc),
            (_, _) => self.run::<1, 1>(padded, rows, acc),
        }
    }

    /// # Safety
    /// AVX2 and FMA; `F` filters' padded rows in `rows` (`P` rows of `qv` values each);
    /// every tap of every vector of every output row in `padded`; `acc` holds the tile's
    /// filters' taps.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const F: usize, const T: usize>(
        &self,
        padded: &[f32],
        rows: &[f32],
        acc: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let (g, qv, k) = (self.g, self.qv, self.k);
        let at = |f: usize, t: usize| ((self.filters.start + f) * k + self.first_tap + t) * LANES;
        let mut sums = [[_mm256_setzero_ps(); T]; F];
        for (f, lane) in sums.iter_mut().enumerate() {
            for (t, v) in lane.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(acc.as_ptr().add(at(f, t)));
            }
        }
        let dy: [*const f32; F] =
            std::array::from_fn(|f| rows.as_ptr().add((self.filters.start + f) * g.p * qv));
        let x: [*const f32; T] = std::array::from_fn(|t| padded.as_ptr().add(self.taps[t]));
        for i in 0..g.p {
            let (row, base) = (i * qv, i * g.stride_h * self.wp);
            for j in (0..qv).step_by(LANES) {
                let xs: [__m256; T] = std::array::from_fn(|t| _mm256_loadu_ps(x[t].add(base + j)));
                for f in 0..F {
                    let d = _mm256_loadu_ps(dy[f].add(row + j));
                    for t in 0..T {
                        sums[f][t] = _mm256_fmadd_ps(d, xs[t], sums[f][t]);
                    }
                }
            }
        }
        for (f, lane) in sums.iter().enumerate() {
            for (t, v) in lane.iter().enumerate() {
                _mm256_storeu_ps(acc.as_mut_ptr().add(at(f, t)), *v);
            }
        }
    }
}

/// `$call` with `F` the filter count (1 to [`FILTERS`]) and `S` the filters' columns (3 or 5,
/// else 0 for any) as constants: the accumulators stay in registers, and a row of 3 or 5
/// taps unrolls (LeNet-5's conv2 input gradient, 5x5: 0.93-0.97 of the time, alternating
/// epochs in one process).
#[cfg(target_arch = "x86_64")]
macro_rules! by_shape {
    ($filters:expr, $s:expr, |$f:ident, $c:ident| $call:expr) => {
        match $s {
            5 => super::by_shape!(@filters $filters, 5, |$f, $c| $call),
            3 => super::by_shape!(@filters $filters, 3, |$f, $c| $call),
            _ => super::by_shape!(@filters $filters, 0, |$f, $c| $call),
        }
    };
    (@filters $filters:expr, $s:literal, |$f:ident, $c:ident| $call:expr) => {{
        const $c: usize = $s;
        match $filters {
            6 => { const $f: usize = 6; $call }
            5 => { const $f: usize = 5; $call }
            4 => { const $f: usize = 4; $call }
            3 => { const $f: usize = 3; $call }
            2 => { const $f: usize = 2; $call }
            _ => { const $f: usize = 1; $call }
        }
    }};
}
#[cfg(target_arch = "x86_64")]
use by_shape;

#[cfg(target_arch = "x86_64")]
mod wide;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::FILTERS;
    use crate::kernels::ConvGeometry;
    use std::arch::x86_64::*;

    /// `filters` (at most [`FILTERS`]) output planes from the padded input planes (`stride`
    /// apart, `wp` columns a row), 16 columns at a time.
    ///
    /// # Safety
    /// AVX2 and FMA; `padded` holds `C` planes padded by `ConvGeometry::pad`; `taps` holds
    /// `filters x C R S` weights, `out` `filters x P Q` values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block(
        g: &ConvGeometry,
        filters: usize,
        padded: &[f32],
        stride: usize,
        wp: usize,
        taps: &[f32],
        out: &mut [f32],
    ) {
        super::by_shape!(filters, g.s, |F, S| block_of::<F, S>(
            g, padded, stride, wp, taps, out
        ));
    }

    /// `S`: the filters' columns when not 0 (else `g.s`).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_of<const F: usize, const S: usize>(
        g: &ConvGeometry,
        padded: &[f32],
        stride: usize,
        wp: usize,
        taps: &[f32],
        out: &mut [f32],
    ) {
        let filters = F;
        let (q, pq, crs) = (g.q, g.p * g.q, g.col_rows());
        assert!(filters <= FILTERS && taps.len() >= filters * crs && out.len() >= filters * pq);
        let index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for p in 0..g.p {
            for j0 in (0..q).step_by(16) {
                let mut acc = [[_mm256_setzero_ps(); 2]; F];
                for c in 0..g.c {
                    for r in 0..g.r {
                        let row = (p * g.stride_h + r * g.dilation_h) * wp + j0;
                        let line = padded.as_ptr().add(c * stride + row);
                        for s in 0..if S > 0 { S } else { g.s } {
                            let at = line.add(s * g.dilation_w);
                            let v = [_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(8))];
                            let k = (c * g.r + r) * g.s + s;
                            for (f, a) in acc.iter_mut().enumerate() {
                                let w = _mm256_broadcast_ss(&*taps.as_ptr().add(f * crs + k));
                                a[0] = _mm256_fmadd_ps(w, v[0], a[0]);
                                a[1] = _mm256_fmadd_ps(w, v[1], a[1]);
                            }
                        }
                    }
                }
                // The last vector of a row spills into the next rows, which are written after
                // it; one that would spill past its plane stores only its own lanes.
                let lanes = (q - j0).min(16);
                for (f, a) in acc.iter().enumerate() {
                    let dst = out.as_mut_ptr().add(f * pq + p * q + j0);
                    for (h, v) in a.iter().enumerate() {
                        let own = lanes.saturating_sub(8 * h);
                        if own == 0 {
                            break;
                        }
                        if own >= 8 || p * q + j0 + 8 * h + 8 <= pq {
                            _mm256_storeu_ps(dst.add(8 * h), *v);
                        } else {
                            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(own as i32), index);
                            _mm256_maskstore_ps(dst.add(8 * h), mask, *v);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input gradient of stride-1 layers into few channels against its definition in
    /// f64 (`dX[c][y][x] = sum over f, r, s of W[f][c][r][s] dY[f][p][q]` where `p + r dil -
    /// pad = y`): LeNet-5's conv2, padding on some sides only, a dilation, rows wider than
    /// a tile of 16 columns, 8 channels (the most it takes) and 9 (left to the blocked
    /// kernel), 2 samples.
    #[test]
    fn input_gradient_matches_the_definition() {
        // (c, m, k, pad top, pad left, pad bottom, pad right, dilation, h, w)
        for (c, m, k, pt, pl, pb, pr, dil, h, w) in [
            (6, 16, 5, 0, 0, 0, 0, 1, 14, 14),
            (3, 5, 3, 1, 0, 2, 3, 2, 9, 21),
            (8, 7, 3, 1, 1, 1, 1, 1, 6, 17),
            (1, 4, 3, 2, 1, 0, 2, 1, 5, 5),
            (9, 4, 3, 1, 1, 1, 1, 1, 6, 6),
        ] {
            let g = crate::layers::lowered::stride_one(c, (k, k), (pt, pl, pb, pr), dil, (h, w));
            let (n, pq, crs) = (2, g.p * g.q, g.col_rows());
            let f: Vec<f32> = (0..m * crs)
                .map(|i| ((i * 11) % 13) as f32 / 5.0 - 1.2)
                .collect();
            let dy: Vec<f32> = (0..n * m * pq)
                .map(|i| ((i * 37) % 23) as f32 / 7.0 - 1.5)
                .collect();
            let mut dx = vec![f32::NAN; n * c * h * w];
            let ran = input_gradient(&g, n, m, &f, &dy, &mut dx);
            assert_eq!(ran, c <= 8, "c {c}");
            if !ran {
                continue;
            }
            for i in 0..n {
                let mut want = vec![0f64; c * h * w];
                let mut scale = vec![0f64; c * h * w];
                for fi in 0..m {
                    for ch in 0..c {
                        for r in 0..k {
                            for s in 0..k {
                                for p in 0..g.p {
                                    for q in 0..g.q {
                                        let y = (p + r * dil) as isize - pt as isize;
                                        let x = (q + s * dil) as isize - pl as isize;
                                        if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                                            continue;
                                        }
                                        let at = (ch * h + y as usize) * w + x as usize;
                                        let t = f[((fi * c + ch) * k + r) * k + s] as f64
                                            * dy[((i * m + fi) * g.p + p) * g.q + q] as f64;
                                        want[at] += t;
                                        scale[at] += t.abs();
                                    }
                                }
                            }
                        }
                    }
                }
                for (j, (wv, sc)) in want.iter().zip(&scale).enumerate() {
                    let got = dx[i * c * h * w + j] as f64;
                    assert!(
                        (got - wv).abs() <= 1e-6 * sc.max(1.0),
                        "c {c} m {m} k {k} sample {i} [{j}]: {got} against {wv}"
                    );
                }
            }
        }
    }

    /// The weight gradient with the pixels on the lanes against its definition in f64
    /// (`dW[f][c][r][s] += sum over samples and output pixels of dY[f][p][q] x[c][p sh + r
    /// dil - pad][q + s dil - pad]`) and of the bias, added to what they held: LeNet-5's first layer, RGB
    /// with padding on some sides only and a dilation, rows wider than two vectors, a row
    /// shorter than one, stride 2 down the rows, 1 to 8 filters, 3 samples.
    #[test]
    fn weight_gradient_matches_the_definition() {
        // (c, m, k, pad top, pad left, pad bottom, pad right, dilation, stride_h, h, w)
        for (c, m, k, pt, pl, pb, pr, dil, sh, h, w) in [
            (1, 6, 5, 2, 2, 2, 2, 1, 1, 28, 28),
            (3, 5, 3, 1, 0, 2, 3, 2, 1, 9, 21),
            (2, 8, 3, 1, 1, 1, 1, 1, 1, 6, 17),
            (1, 1, 3, 0, 0, 0, 0, 1, 1, 5, 5),
            (1, 7, 3, 1, 1, 1, 1, 1, 2, 11, 13),
        ] {
            let g = ConvGeometry {
                stride_h: sh,
                p: (h + pt + pb - dil * (k - 1) - 1) / sh + 1,
                ..crate::layers::lowered::stride_one(c, (k, k), (pt, pl, pb, pr), dil, (h, w))
            };
            assert!(weight_gradient_applies(&g, 1, m));
            let (n, pq, crs) = (3, g.p * g.q, g.col_rows());
            let x: Vec<f32> = (0..n * c * h * w)
                .map(|i| ((i * 37) % 23) as f32 / 7.0 - 1.5)
                .collect();
            let dy: Vec<f32> = (0..n * m * pq)
                .map(|i| ((i * 11) % 13) as f32 / 5.0 - 1.2)
                .collect();
            let mut scratch = vec![f32::NAN; weight_gradient_scratch(&g, m)];
            let mut acc = vec![0f32; weight_gradient_len(m, crs)];
            for (xi, dyi) in x.chunks(c * h * w).zip(dy.chunks(m * pq)) {
                weight_gradient_sample(&g, m, xi, dyi, &mut scratch, &mut acc);
            }
            let mut dw = vec![0.25f32; m * (crs + 1)];
            add_lanes(m, crs, true, &acc, &mut dw);
            // The bias gradient: every output gradient of the filter.
            for (f, got) in dw[m * crs..].iter().enumerate() {
                let values = dy.chunks(pq).skip(f).step_by(m).flatten();
                let want: f64 = 0.25 + values.clone().map(|v| *v as f64).sum::<f64>();
                let scale: f64 = 0.25 + values.map(|v| v.abs() as f64).sum::<f64>();
                assert!(
                    (*got as f64 - want).abs() <= 1e-6 * scale,
                    "bias {f}: {got} {want}"
                );
            }
            for (at, got) in dw[..m * crs].iter().enumerate() {
                let (f, tap) = (at / crs, at % crs);
                let (ch, r, s) = (tap / (k * k), tap / k % k, tap % k);
                let (mut want, mut scale) = (0.25f64, 0.25f64);
                for i in 0..n {
                    for p in 0..g.p {
                        for q in 0..g.q {
                            let y = (p * sh + r * dil) as isize - pt as isize;
                            let xx = (q + s * dil) as isize - pl as isize;
                            if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                                continue;
                            }
                            let t = dy[((i * m + f) * g.p + p) * g.q + q] as f64
                                * x[((i * c + ch) * h + y as usize) * w + xx as usize] as f64;
                            want += t;
                            scale += t.abs();
                        }
                    }
                }
                assert!(
                    (*got as f64 - want).abs() <= 1e-6 * scale,
                    "c {c} m {m} k {k} stride {sh} dW[{f}][{tap}]: {got} against {want}"
                );
            }
        }
    }

    /// Against im2col and the product, bit for bit: grey and RGB inputs, padding, a
    /// dilation, stride 2 down the rows, rows shorter than a vector (whose stores spill into
    /// the next rows, never past the plane), filters not a multiple of the block, 2 samples.
    #[test]
    fn direct_equals_the_lowered_product_bit_for_bit() {
        for (c, k, pad, stride_h, dil, h, w, m) in [
            (1, 5, 2, 1, 1, 28, 28, 6),
            (1, 3, 1, 1, 1, 28, 28, 32),
            (3, 3, 1, 1, 1, 7, 7, 7),
            (1, 3, 0, 1, 1, 7, 7, 13),
            (1, 3, 0, 1, 1, 5, 5, 9),
            (2, 3, 1, 2, 1, 9, 20, 5),
            (1, 3, 2, 1, 2, 6, 17, 8),
        ] {
            let out =
                |size: usize, stride: usize| (size + 2 * pad - dil * (k - 1) - 1) / stride + 1;
            let g = ConvGeometry {
                c,
                h,
                w,
                p: out(h, stride_h),
                q: out(w, 1),
                r: k,
                s: k,
                stride_h,
                stride_w: 1,
                pad_top: pad,
                pad_left: pad,
                dilation_h: dil,
                dilation_w: dil,
            };
            // Where it is chosen or not (AVX-512 machines: fewer than 16 filters), its bits.
            assert!(kernel_runs(&g) && g.c <= 3 && g.col_rows() <= MAX_DEPTH);
            assert_eq!(applies(&g, 1, m), crate::sgemm::avx2_only() || m < 16);
            let case = format!("c {c} k {k} pad {pad} {h}x{w} m {m}");
            crate::layers::lowered::check_case(&g, 2, m, &case, &|g, n, m, x, f, y| {
                forward(g, n, m, x, f, &Epilogue::default(), y)
            });
        }
    }
}
