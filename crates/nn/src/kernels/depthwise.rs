//! The depthwise kernels on the zero-bordered copy of a plane ([`ConvGeometry::pad`]).

use super::ConvGeometry;

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
                    let index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), index);
                    _mm256_maskstore_ps(line.add(j), mask, *x);
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
