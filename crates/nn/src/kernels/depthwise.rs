//! The depthwise kernels on the zero-bordered copy of a plane ([`ConvGeometry::pad`]).

use super::blocks::Finish;
#[cfg(target_arch = "x86_64")]
use super::blocks::Lanes;
use super::ConvGeometry;

#[cfg(target_arch = "x86_64")]
mod in_place;

impl ConvGeometry {
    /// Rows and columns of the zero-bordered copy of a plane that
    /// [`depthwise_avx512`](Self::depthwise_avx512) reads: every tap of every output (16
    /// columns at a time, the last group rounded up; 32 loaded a step at stride 2) lands
    /// inside it.
    pub(crate) fn padded_plane(&self) -> (usize, usize) {
        let rows = (self.p - 1) * self.stride_h + (self.r - 1) * self.dilation_h + 1;
        let last = self.q.div_ceil(16) * 16 - 1;
        let columns = last * self.stride_w + (self.s - 1) * self.dilation_w + 1;
        (rows, columns + 16 * (self.stride_w - 1))
    }

    /// [`depthwise`](Self::depthwise) for strides 1 and 2 along rows: the plane copied once
    /// into a zero border, so that every tap of 16 output columns is one unmasked load (two
    /// and a lane permutation at stride 2) and one fused multiply-add, with no bounds to
    /// test (the spans and masks per tap cost more than the arithmetic on small maps).
    /// Padding adds `filter x 0`, which leaves every sum as the unpadded one.
    ///
    /// # Safety
    /// AVX-512F; `stride_w <= 2`; `y` holds `P x Q` values and `padded` the plane padded by
    /// [`pad`](Self::pad) ([`padded_plane`](Self::padded_plane), `wp` columns a row).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn depthwise_avx512(
        &self,
        filter: &[f32],
        padded: &[f32],
        wp: usize,
        y: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let q = self.q;
        let (sw, dw) = (self.stride_w, self.dilation_w);
        // Even lanes of two vectors: columns 0, 2, .., 30 of 32 loaded at stride 2.
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let src = padded.as_ptr();
        for p in 0..self.p {
            let line = y.as_mut_ptr().add(p * q);
            for j0 in (0..q).step_by(16) {
                let mut acc = _mm512_setzero_ps();
                for r in 0..self.r {
                    let row = src.add((p * self.stride_h + r * self.dilation_h) * wp + j0 * sw);
                    for s in 0..self.s {
                        let at = row.add(s * dw);
                        let v = if sw == 1 {
                            _mm512_loadu_ps(at)
                        } else {
                            let (lo, hi) = (_mm512_loadu_ps(at), _mm512_loadu_ps(at.add(16)));
                            _mm512_permutex2var_ps(lo, even, hi)
                        };
                        acc = _mm512_fmadd_ps(_mm512_set1_ps(filter[r * self.s + s]), v, acc);
                    }
                }
                let lanes = q - j0;
                let mask = if lanes >= 16 {
                    u16::MAX
                } else {
                    (1u16 << lanes) - 1
                };
                _mm512_mask_storeu_ps(line.add(j0), mask, acc);
            }
        }
    }

    /// The plane `x` copied into `padded` ([`padded_plane`](Self::padded_plane), `wp` columns
    /// a row) inside a zero border. Only the border is zeroed: filling the whole plane first
    /// wrote it twice (a memset and a copy of every plane were 4% of mobilenet_v2's time).
    pub(crate) fn pad(&self, x: &[f32], padded: &mut [f32], wp: usize) {
        let hp = padded.len() / wp;
        let (top, left) = (self.pad_top.min(hp), self.pad_left.min(wp));
        let rows = self.h.min(hp - top);
        let n = self.w.min(wp - left);
        padded[..top * wp].fill(0.0);
        let inside = &mut padded[top * wp..(top + rows) * wp];
        for (line, dst) in x.chunks_exact(self.w).zip(inside.chunks_exact_mut(wp)) {
            dst[..left].fill(0.0);
            dst[left..left + n].copy_from_slice(&line[..n]);
            dst[left + n..].fill(0.0);
        }
        padded[(top + rows) * wp..].fill(0.0);
    }

    /// [`depthwise_avx512`](Self::depthwise_avx512) 8 lanes wide, for CPUs with AVX2 but
    /// not AVX-512 (the AMD EPYC machines). Every output is the AVX-512 kernel's sum in its
    /// order (fused multiply-adds from zero, `r` then `s`), so the same bits.
    ///
    /// Outputs go in blocks of up to four vectors (of columns, or of columns and rows on maps
    /// of 16 columns or fewer), each its own accumulator: one accumulator a step chained all
    /// of an output's taps through the FMA latency, and this kernel was a fifth of
    /// mobilenet_v2's time. The taps of 3 x 3 and 5 x 5 filters are constants of the loop.
    ///
    /// # Safety
    /// AVX2 and FMA; the rest as [`depthwise_avx512`](Self::depthwise_avx512) (the padded
    /// plane, sized for 16 lanes, holds every tap of 8).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn depthwise_avx2(
        &self,
        filter: &[f32],
        padded: &[f32],
        wp: usize,
        y: &mut [f32],
    ) {
        let plane = Plane {
            g: self,
            src: padded.as_ptr(),
            wp,
            y: y.as_mut_ptr(),
        };
        match (self.r, self.s) {
            (3, 3) => plane.run::<3, 3>(filter),
            (5, 5) => plane.run::<5, 5>(filter),
            _ => plane.run::<0, 0>(filter),
        }
    }
}

/// Most taps whose filter values [`Plane`] holds as vectors (a 5 x 5 filter); larger
/// filters broadcast each value where it is used.
#[cfg(target_arch = "x86_64")]
const HELD: usize = 25;

/// One channel's padded plane and output for the AVX2 depthwise kernel.
#[cfg(target_arch = "x86_64")]
struct Plane<'a> {
    g: &'a ConvGeometry,
    src: *const f32,
    wp: usize,
    y: *mut f32,
}

#[cfg(target_arch = "x86_64")]
impl Plane<'_> {
    /// The whole output; `R x S` taps (`0 x 0`: the geometry's, read at run time).
    ///
    /// # Safety
    /// As [`ConvGeometry::depthwise_avx2`].
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const R: usize, const S: usize>(&self, filter: &[f32]) {
        use std::arch::x86_64::*;
        let g = self.g;
        let taps = g.r * g.s;
        let held: [__m256; HELD] =
            std::array::from_fn(|t| _mm256_set1_ps(if t < taps { filter[t] } else { 0.0 }));
        let f = Filter {
            held: &held,
            all: filter,
        };
        let vectors = g.q.div_ceil(8);
        // Rows at a time: four accumulators in all.
        let rows = match vectors {
            1 => 4,
            2 => 2,
            _ => 1,
        };
        let mut p = 0;
        while p < g.p {
            let rw = rows.min(g.p - p);
            let mut v0 = 0;
            while v0 < vectors {
                let v = (vectors - v0).min(4);
                match (v, rw) {
                    (1, 4) => self.block::<R, S, 1, 4>(&f, p, v0),
                    (1, 3) => self.block::<R, S, 1, 3>(&f, p, v0),
                    (1, 2) => self.block::<R, S, 1, 2>(&f, p, v0),
                    (2, 2) => self.block::<R, S, 2, 2>(&f, p, v0),
                    (1, _) => self.block::<R, S, 1, 1>(&f, p, v0),
                    (2, _) => self.block::<R, S, 2, 1>(&f, p, v0),
                    (3, _) => self.block::<R, S, 3, 1>(&f, p, v0),
                    _ => self.block::<R, S, 4, 1>(&f, p, v0),
                }
                v0 += v;
            }
            p += rw;
        }
    }

    /// Outputs of rows `p..p + W` and vectors of columns `v0..v0 + V`.
    ///
    /// # Safety
    /// As [`ConvGeometry::depthwise_avx2`]; the block lies in the output.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block<const R: usize, const S: usize, const V: usize, const W: usize>(
        &self,
        f: &Filter,
        p: usize,
        v0: usize,
    ) {
        use std::arch::x86_64::*;
        let g = self.g;
        let (kr, ks) = if R > 0 { (R, S) } else { (g.r, g.s) };
        let (sw, dw) = (g.stride_w, g.dilation_w);
        let j0 = v0 * 8;
        let mut acc = [[_mm256_setzero_ps(); V]; W];
        for r in 0..kr {
            for s in 0..ks {
                let k = f.tap(r * ks + s);
                for (i, lane) in acc.iter_mut().enumerate() {
                    let row = (p + i) * g.stride_h + r * g.dilation_h;
                    let at = self.src.add(row * self.wp + j0 * sw + s * dw);
                    for (v, x) in lane.iter_mut().enumerate() {
                        *x = _mm256_fmadd_ps(k, load(at.add(v * 8 * sw), sw), *x);
                    }
                }
            }
        }
        let q = g.q;
        for (i, lane) in acc.iter().enumerate() {
            let line = self.y.add((p + i) * q);
            for (v, x) in lane.iter().enumerate() {
                let j = j0 + v * 8;
                let lanes = q - j;
                if lanes >= 8 {
                    _mm256_storeu_ps(line.add(j), *x);
                } else {
                    _mm256_maskstore_ps(line.add(j), first_lanes(lanes), *x);
                }
            }
        }
    }
}

/// A filter's values: the first [`HELD`] as vectors, every one in memory.
#[cfg(target_arch = "x86_64")]
struct Filter<'a> {
    held: &'a [std::arch::x86_64::__m256; HELD],
    all: &'a [f32],
}

#[cfg(target_arch = "x86_64")]
impl Filter<'_> {
    /// Tap `t` in every lane.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn tap(&self, t: usize) -> std::arch::x86_64::__m256 {
        if t < HELD {
            self.held[t]
        } else {
            std::arch::x86_64::_mm256_broadcast_ss(&self.all[t])
        }
    }
}

/// Eight columns from `at`, `stride` (1 or 2) apart.
///
/// # Safety
/// AVX2; `at` holds 8 values (16 at stride 2).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn load(at: *const f32, stride: usize) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    if stride == 1 {
        _mm256_loadu_ps(at)
    } else {
        // Columns 0, 2, .., 14 of 16: even lanes of each 128-bit half, then the 64-bit
        // quarters back in order.
        let (lo, hi) = (_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(8)));
        let even = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
            even,
        )))
    }
}

/// Channels the channel-blocked depthwise kernel computes at once, one a lane.
pub(crate) const CHANNELS: usize = 8;

/// Widest output map (in columns) the channel-blocked kernel takes. mobilenet_v2 at batch
/// 16, one thread, per layer, best of 6 alternating runs (AMD EPYC, 2026-12-01), plane at a
/// time against eight channels at once, in us: 4x4 1577 vs 708, 7x7 872 vs 570; but 14x14
/// 920-939 vs 1124-1132, though on a hot set of 8 planes the channels won there too
/// (3179 vs 2315 ns).
pub(crate) const CHANNELS_UP_TO: usize = 8;

impl ConvGeometry {
    /// Whether [`depthwise_channels`](Self::depthwise_channels) runs here and is the faster
    /// kernel: maps of at most [`CHANNELS_UP_TO`] columns, where a plane at a time fills a
    /// vector partly and pays its padded copy, its tasks and its epilogue call for a few
    /// dozen outputs (mobilenet_v2's 7x7 and 4x4 layers took 1.4-3x onnxruntime's time).
    pub(crate) fn channels_pay(&self) -> bool {
        self.q <= CHANNELS_UP_TO && self.channels_run()
    }

    /// Whether [`depthwise_channels`](Self::depthwise_channels) runs on this CPU (AVX2 and
    /// FMA) for this geometry.
    pub(crate) fn channels_run(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.c == 1
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Depthwise convolution of [`CHANNELS`] channels at once, with the channels as the lanes
    /// of a vector: `x` holds their planes (`H x W` each, one after another), `filter` their
    /// filters (`R x S` each), `y` their outputs (`P x Q` each). The planes are interleaved
    /// into one zero-bordered copy (a pixel's channels side by side), every tap of an output
    /// pixel is one load and one fused multiply-add for all the channels, and the outputs
    /// are spread back into planes. Each output is the sum of the plane-at-a-time kernels,
    /// in their order (from zero, `r` then `s`), so the same bits.
    ///
    /// `x_blocks`, `y_blocks`: `x` or `y` holds the block of channels in the channel-block
    /// layout ([`super::blocks`]) rather than as planes; the block is then copied in
    /// without a transpose, or the outputs computed where they belong, through `finish`
    /// (the epilogue and the block's first channel) when given.
    ///
    /// # Panics
    /// Without AVX2 and FMA ([`channels_run`](Self::channels_run) says), on short slices, or
    /// with `finish` for planes.
    pub(crate) fn depthwise_channels(
        &self,
        x: &[f32],
        (filter, taps): (&[f32], Option<&[f32]>),
        y: &mut [f32],
        (x_blocks, y_blocks): (bool, bool),
        finish: Option<(&Finish, usize)>,
    ) {
        assert!(
            y_blocks || finish.is_none(),
            "the epilogue runs in the kernel on blocks only"
        );
        let (hw, pq, rs) = (self.h * self.w, self.p * self.q, self.r * self.s);
        assert!(x.len() >= CHANNELS * hw && filter.len() >= CHANNELS * rs);
        assert!(y.len() >= CHANNELS * pq && self.c == 1);
        assert!(
            self.channels_run(),
            "the channel-blocked kernel needs AVX2 and FMA"
        );
        let rows = (self.p - 1) * self.stride_h + (self.r - 1) * self.dilation_h + 1;
        let columns = (self.q - 1) * self.stride_w + (self.s - 1) * self.dilation_w + 1;
        // A block is read where it lies on AVX-512 machines ([`in_place`]).
        #[cfg(target_arch = "x86_64")]
        let in_place =
            x_blocks && crate::sgemm::avx512() && std::arch::is_x86_feature_detected!("avx512vl");
        #[cfg(not(target_arch = "x86_64"))]
        let in_place = false;
        // The outputs interleaved, rounded up to whole groups of 8 pixels.
        let input = if in_place {
            0
        } else {
            rows * columns * CHANNELS
        };
        let output = if y_blocks {
            0
        } else {
            pq.div_ceil(8) * 8 * CHANNELS
        };
        assert!(
            taps.is_none_or(|t| t.len() >= CHANNELS * rs),
            "prepared taps of 8 channels"
        );
        // The taps interleaved here where not prepared.
        let gathered = if taps.is_some() { 0 } else { CHANNELS * rs };
        super::with_scratch(input + output + gathered, |scratch| {
            let (padded, rest) = scratch.split_at_mut(input);
            let (out, gathered) = rest.split_at_mut(output);
            let plane = Interleaved {
                g: self,
                rows,
                columns,
            };
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 and FMA (asserted), and AVX-512F for `in_place`; the
            // buffers are sized above and the slices asserted.
            unsafe {
                let to = if y_blocks {
                    &mut y[..CHANNELS * pq]
                } else {
                    &mut *out
                };
                let taps = match taps {
                    Some(taps) => taps,
                    None => {
                        interleave_into(&filter[..CHANNELS * rs], rs, gathered);
                        gathered
                    }
                };
                if in_place {
                    let kernel = in_place::InPlace {
                        g: self,
                        taps,
                        src: x.as_ptr(),
                        out: to.as_mut_ptr(),
                        finish: finish.map(|(finish, first)| finish.lanes(first)),
                    };
                    kernel.run();
                } else {
                    plane.interleave(x, x_blocks, padded);
                    plane.compute_all(taps, padded, to, finish);
                }
                if !y_blocks {
                    plane.spread(out, y);
                }
            };
        })
    }
}

/// Every whole block of 8 channels' filters (`rs` values a channel, one channel after
/// another) interleaved as [`ConvGeometry::depthwise_channels`] reads them: block `b`'s tap
/// `t` of its 8 channels side by side at `(b * rs + t) * 8`. Channels past the last whole
/// block are left out.
pub(crate) fn interleave_taps(filter: &[f32], rs: usize) -> Vec<f32> {
    let block = CHANNELS * rs;
    let mut taps = vec![0.0; filter.len() / block.max(1) * block];
    interleave_into(filter, rs, &mut taps);
    taps
}

/// [`interleave_taps`] into `taps`, as many blocks as it holds.
fn interleave_into(filter: &[f32], rs: usize, taps: &mut [f32]) {
    let block = CHANNELS * rs;
    for (t, f) in taps.chunks_exact_mut(block).zip(filter.chunks_exact(block)) {
        for (i, v) in t.iter_mut().enumerate() {
            *v = f[(i % CHANNELS) * rs + i / CHANNELS];
        }
    }
}

/// The zero-bordered interleaved copy of [`CHANNELS`] planes
/// ([`ConvGeometry::depthwise_channels`]): `rows x columns` pixels, a pixel's channels side
/// by side.
struct Interleaved<'a> {
    g: &'a ConvGeometry,
    rows: usize,
    columns: usize,
}

#[cfg(target_arch = "x86_64")]
impl Interleaved<'_> {
    /// Interleaves `x` (planes, or a block when `x_blocks`) into `padded`: the moves from
    /// planes go 8 x 8 at a time through a transpose in registers, a block's rows are
    /// copied.
    ///
    /// # Safety
    /// AVX2; the buffers as [`ConvGeometry::depthwise_channels`] sizes them.
    #[target_feature(enable = "avx2")]
    unsafe fn interleave(&self, x: &[f32], x_blocks: bool, padded: &mut [f32]) {
        use crate::sgemm::transpose8;
        use std::arch::x86_64::*;
        const L: usize = CHANNELS;
        let g = self.g;
        let hw = g.h * g.w;
        let columns = self.columns;
        let (dst, src) = (padded.as_mut_ptr(), x.as_ptr());
        let (rows, n) = (
            g.h.min(self.rows.saturating_sub(g.pad_top)),
            g.w.min(columns.saturating_sub(g.pad_left)),
        );
        // The border only: the inside is written once, below.
        let zero = |from: usize, to: usize| {
            for v in from..to {
                _mm256_storeu_ps(dst.add(v * L), _mm256_setzero_ps());
            }
        };
        zero(0, g.pad_top.min(self.rows) * columns);
        let left = g.pad_left.min(columns);
        for i in 0..rows {
            let line = (i + g.pad_top) * columns;
            zero(line, line + left);
            zero(line + left + n, line + columns);
        }
        zero((g.pad_top + rows) * columns, self.rows * columns);
        for i in 0..rows {
            let at = (i + g.pad_top) * columns + g.pad_left;
            if x_blocks {
                std::ptr::copy_nonoverlapping(src.add(i * g.w * L), dst.add(at * L), n * L);
                continue;
            }
            for x0 in (0..n).step_by(8) {
                let valid = (n - x0).min(8);
                let mask = first_lanes(valid);
                let lines: [__m256; 8] = std::array::from_fn(|c| {
                    _mm256_maskload_ps(src.add(c * hw + i * g.w + x0), mask)
                });
                for (j, pixel) in transpose8(lines).into_iter().enumerate().take(valid) {
                    _mm256_storeu_ps(dst.add((at + x0 + j) * L), pixel);
                }
            }
        }
    }

    /// Every output of the interleaved planes into `out` (pixels of 8 channels side by
    /// side), through `finish` (the epilogue and the block's first channel) when given.
    ///
    /// # Safety
    /// AVX2 and FMA; the buffers as [`ConvGeometry::depthwise_channels`] sizes them.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn compute_all(
        &self,
        taps: &[f32],
        padded: &[f32],
        out: &mut [f32],
        finish: Option<(&Finish, usize)>,
    ) {
        let g = self.g;
        let rows = Rows {
            g,
            columns: self.columns,
            taps,
            src: padded.as_ptr(),
            out: out.as_mut_ptr(),
            finish: finish.map(|(finish, first)| finish.lanes(first)),
        };
        match (g.r, g.s, g.stride_w) {
            (3, 3, 1) => rows.run::<3, 3, 1>(),
            (3, 3, 2) => rows.run::<3, 3, 2>(),
            (5, 5, 1) => rows.run::<5, 5, 1>(),
            (5, 5, 2) => rows.run::<5, 5, 2>(),
            _ => rows.run::<0, 0, 0>(),
        }
    }

    /// `out` (pixels of 8 channels side by side) spread into the planes of `y`, 8 x 8 at a
    /// time through a transpose in registers.
    ///
    /// # Safety
    /// AVX; the buffers as [`ConvGeometry::depthwise_channels`] sizes them.
    #[target_feature(enable = "avx")]
    unsafe fn spread(&self, out: &[f32], y: &mut [f32]) {
        use crate::sgemm::transpose8;
        use std::arch::x86_64::*;
        const L: usize = CHANNELS;
        let pq = self.g.p * self.g.q;
        let out = out.as_ptr();
        for o0 in (0..pq).step_by(8) {
            let valid = (pq - o0).min(8);
            let pixels: [__m256; 8] = std::array::from_fn(|b| {
                if b < valid {
                    _mm256_loadu_ps(out.add((o0 + b) * L))
                } else {
                    _mm256_setzero_ps()
                }
            });
            for (c, line) in transpose8(pixels).into_iter().enumerate() {
                store_first(y.as_mut_ptr().add(c * pq + o0), line, valid);
            }
        }
    }
}

/// The outputs of [`Interleaved`] row by row: tiles of up to 8 pixels of a row (of two rows
/// on maps of 4 columns or fewer), one accumulator a pixel, one load of 8 channels and one
/// fused multiply-add a tap and pixel, at offsets known at compile time for the common
/// filters and strides. The pixels in any order crossing rows kept a base address each and
/// spilled them, at 4x the arithmetic's time.
#[cfg(target_arch = "x86_64")]
struct Rows<'a> {
    g: &'a ConvGeometry,
    columns: usize,
    /// Tap `t` of the 8 channels at `t * 8`.
    taps: &'a [f32],
    src: *const f32,
    out: *mut f32,
    /// The epilogue's vectors for the block, loaded once.
    finish: Option<Lanes>,
}

#[cfg(target_arch = "x86_64")]
impl Rows<'_> {
    /// `R x S` taps at column stride `SW` (`0`: the geometry's, read at run time).
    ///
    /// # Safety
    /// AVX2 and FMA; the buffers as [`ConvGeometry::depthwise_channels`] sizes them.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const R: usize, const S: usize, const SW: usize>(&self) {
        if SW == 1 && crate::sgemm::avx512() {
            return self.run_wide::<R, S>();
        }
        let g = self.g;
        let two = g.q <= 4;
        let mut p = 0;
        while p < g.p {
            let w = if two && p + 1 < g.p { 2 } else { 1 };
            let mut q = 0;
            while q < g.q {
                let b = (g.q - q).min(8);
                self.tile_any::<R, S, SW>((p, w), (q, b));
                q += b;
            }
            p += w;
        }
    }

    /// [`tile`](Self::tile) of `w` rows from `p` and `b` pixels from `q`.
    ///
    /// # Safety
    /// As [`tile`](Self::tile).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile_any<const R: usize, const S: usize, const SW: usize>(
        &self,
        (p, w): (usize, usize),
        (q, b): (usize, usize),
    ) {
        macro_rules! tiles {
            ($($w:literal: $($b:literal)*;)*) => {
                match (w, b) {
                    $($(($w, $b) => self.tile::<R, S, SW, $b, $w>(p, q),)*)*
                    _ => unreachable!("{w} rows of {b} pixels"),
                }
            };
        }
        tiles! {
            1: 1 2 3 4 5 6 7 8;
            2: 1 2 3 4;
        }
    }

    /// [`run`](Self::run) at stride 1 along rows on AVX-512 machines: an even number of a
    /// row's pixels two a 16-lane vector ([`tile_wide`](Self::tile_wide)), the rest as
    /// [`run`](Self::run) computes them. Compiled for AVX-512 as a whole, so that both
    /// tiles are inlined (a call a tile cost more than the wider tile saved at batch 1).
    ///
    /// # Safety
    /// AVX-512F; as [`run`](Self::run).
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run_wide<const R: usize, const S: usize>(&self) {
        let g = self.g;
        let two = g.q <= 4;
        let mut p = 0;
        while p < g.p {
            let w = if two && p + 1 < g.p { 2 } else { 1 };
            let mut q = 0;
            while q < g.q {
                let b = (g.q - q).min(8);
                // An odd row's last pixel on the 8-lane tile (7x7 maps: 3 vectors and 1).
                match (w, b) {
                    (_, 1) => {}
                    (1, 2 | 3) => self.tile_wide::<R, S, 1, 1>(p, q),
                    (1, 4 | 5) => self.tile_wide::<R, S, 2, 1>(p, q),
                    (1, 6 | 7) => self.tile_wide::<R, S, 3, 1>(p, q),
                    (1, _) => self.tile_wide::<R, S, 4, 1>(p, q),
                    (_, 2 | 3) => self.tile_wide::<R, S, 1, 2>(p, q),
                    (_, _) => self.tile_wide::<R, S, 2, 2>(p, q),
                }
                if b % 2 == 1 {
                    self.tile_any::<R, S, 1>((p, w), (q + b - 1, 1));
                }
                q += b;
            }
            p += w;
        }
    }

    /// Pixels `q..q + B` of rows `p..p + W`.
    ///
    /// # Safety
    /// As [`run`](Self::run); the tile lies in the output.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<
        const R: usize,
        const S: usize,
        const SW: usize,
        const B: usize,
        const W: usize,
    >(
        &self,
        p: usize,
        q: usize,
    ) {
        use std::arch::x86_64::*;
        const L: usize = CHANNELS;
        let g = self.g;
        let (kr, ks) = if R > 0 { (R, S) } else { (g.r, g.s) };
        let sw = if SW > 0 { SW } else { g.stride_w };
        let (dh, dw) = (g.dilation_h, g.dilation_w);
        let line = self.columns * L;
        let mut acc = [[_mm256_setzero_ps(); B]; W];
        for r in 0..kr {
            for s in 0..ks {
                let k = _mm256_loadu_ps(self.taps.as_ptr().add((r * ks + s) * L));
                for (i, row) in acc.iter_mut().enumerate() {
                    let at = self
                        .src
                        .add(((p + i) * g.stride_h + r * dh) * line + (q * sw + s * dw) * L);
                    for (j, a) in row.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(k, _mm256_loadu_ps(at.add(j * sw * L)), *a);
                    }
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            let to = self.out.add(((p + i) * g.q + q) * L);
            for (j, a) in row.iter().enumerate() {
                let v = match &self.finish {
                    Some(lanes) => lanes.apply(*a),
                    None => *a,
                };
                _mm256_storeu_ps(to.add(j * L), v);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Rows<'_> {
    /// [`tile`](Self::tile) at stride 1 along rows on AVX-512 machines: a pixel's right
    /// neighbour's 8 channels follow its own, so one 16-lane load holds two pixels and each
    /// tap's 8 values go in both halves; `V` vectors (`2 V` pixels) of rows `p..p + W`. Each
    /// output's sum is [`tile`](Self::tile)'s (taps in the same order, one fused
    /// multiply-add each), its epilogue [`Lanes::apply`] on each half: the same bits.
    ///
    /// # Safety
    /// AVX-512F; as [`tile`](Self::tile), with `SW` 1.
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    unsafe fn tile_wide<const R: usize, const S: usize, const V: usize, const W: usize>(
        &self,
        p: usize,
        q: usize,
    ) {
        use std::arch::x86_64::*;
        const L: usize = CHANNELS;
        let g = self.g;
        let (kr, ks) = if R > 0 { (R, S) } else { (g.r, g.s) };
        let (dh, dw) = (g.dilation_h, g.dilation_w);
        let line = self.columns * L;
        let mut acc = [[_mm512_setzero_ps(); V]; W];
        for r in 0..kr {
            for s in 0..ks {
                let k = _mm256_loadu_ps(self.taps.as_ptr().add((r * ks + s) * L));
                let k = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(k)));
                for (i, row) in acc.iter_mut().enumerate() {
                    let at = self
                        .src
                        .add(((p + i) * g.stride_h + r * dh) * line + (q + s * dw) * L);
                    for (j, a) in row.iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(k, _mm512_loadu_ps(at.add(2 * j * L)), *a);
                    }
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            let to = self.out.add(((p + i) * g.q + q) * L);
            for (j, a) in row.iter().enumerate() {
                let upper = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(*a));
                let halves = [_mm512_castps512_ps256(*a), _mm256_castpd_ps(upper)];
                for (h, v) in halves.into_iter().enumerate() {
                    let v = match &self.finish {
                        Some(lanes) => lanes.apply(v),
                        None => v,
                    };
                    _mm256_storeu_ps(to.add((2 * j + h) * L), v);
                }
            }
        }
    }
}

/// The first `lanes` lanes of `v` to `at`: a full store, or the lanes copied one by one
/// (eight masked stores in a row, one a plane, took a third of the channel-blocked kernel's
/// time on a 7x7 map).
///
/// # Safety
/// AVX; `at` holds `lanes.min(8)` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn store_first(at: *mut f32, v: std::arch::x86_64::__m256, lanes: usize) {
    use std::arch::x86_64::*;
    if lanes >= 8 {
        _mm256_storeu_ps(at, v);
    } else {
        let mut values = [0f32; 8];
        _mm256_storeu_ps(values.as_mut_ptr(), v);
        for (i, x) in values.iter().enumerate().take(lanes) {
            *at.add(i) = *x;
        }
    }
}

/// A lane mask of the first `lanes` lanes (at most 8).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn first_lanes(lanes: usize) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), index)
}
