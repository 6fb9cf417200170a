//! The channel-blocked depthwise kernel on AVX-512 machines, reading the block of channels
//! where it lies instead of from a zero-bordered copy.
//!
//! The copy ([`super::Interleaved`]) wrote every input pixel once more and read it back:
//! mobilenet_v2 spent a tenth of its time at batch 16 in that `memmove` (Zen 5,
//! 2026-12-03), as much as on the depthwise arithmetic. Here a tap that falls outside the
//! map is skipped (a row outside it) or loaded as zero through a lane mask (a column
//! outside it), which leaves every sum as the padded one: a sum from `+0.0` is never
//! `-0.0`, so adding `filter x 0` to it changes no bit.
//!
//! A 16-lane vector holds two neighbouring output pixels of the block's 8 channels (at
//! stride 2 their inputs are two loads merged through masks); a tile is `V` such vectors in
//! each of `W` rows, one accumulator a vector, enough of them (up to 8) to cover the fused
//! multiply-add's latency.

use super::super::blocks::Lanes;
use super::super::ConvGeometry;
use super::CHANNELS;
use std::arch::x86_64::*;

const L: usize = CHANNELS;

/// One block's depthwise convolution read in place ([`ConvGeometry::depthwise_channels`]).
pub(super) struct InPlace<'a> {
    pub g: &'a ConvGeometry,
    /// Tap `t` of the 8 channels at `t * 8`.
    pub taps: &'a [f32],
    /// The block: `H x W` pixels of 8 channels.
    pub src: *const f32,
    /// `P x Q` pixels of 8 channels.
    pub out: *mut f32,
    /// The epilogue's vectors for the block.
    pub finish: Option<Lanes>,
}

/// A tile kernel of [`InPlace`]: [`Three`] for 3 taps a row, [`Any`] for any filter; a
/// walk instantiates only its own kernel's 20 tile shapes.
trait Kernel {
    /// Whether a tile of `v` vectors from `at` at stride `sw` loads nothing outside the map.
    fn inside(k: &InPlace, at: At, v: usize, sw: usize) -> bool;

    /// The tile of `W` rows of `V` vectors from `at`.
    ///
    /// # Safety
    /// As [`InPlace::tile`].
    unsafe fn tile<const SW: usize, const V: usize, const W: usize, const MASKED: bool>(
        k: &InPlace,
        at: At,
    );
}

/// [`InPlace::tile3`].
struct Three;

/// [`InPlace::tile`].
struct Any;

impl Kernel for Three {
    #[inline]
    fn inside(k: &InPlace, at: At, v: usize, sw: usize) -> bool {
        k.inside3(at, v, sw)
    }

    #[inline]
    unsafe fn tile<const SW: usize, const V: usize, const W: usize, const MASKED: bool>(
        k: &InPlace,
        at: At,
    ) {
        k.tile3::<SW, V, W, MASKED>(at)
    }
}

impl Kernel for Any {
    #[inline]
    fn inside(k: &InPlace, at: At, v: usize, _: usize) -> bool {
        k.inside(at, v)
    }

    #[inline]
    unsafe fn tile<const SW: usize, const V: usize, const W: usize, const MASKED: bool>(
        k: &InPlace,
        at: At,
    ) {
        k.tile::<SW, V, W, MASKED>(at)
    }
}

/// The output pixel at a tile's top left.
#[derive(Clone, Copy)]
struct At {
    p: usize,
    q: usize,
}

impl InPlace<'_> {
    /// Every output of the block.
    ///
    /// # Safety
    /// AVX-512F; `src` holds `H x W x 8` values, `out` `P x Q x 8`, `taps` `R x S x 8`.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn run(&self) {
        let g = self.g;
        match (g.stride_w, g.s, g.dilation_w) {
            (1, 3, 1) => self.walk::<1, Three>(),
            (2, 3, 1) => self.walk::<2, Three>(),
            (1, _, _) => self.walk::<1, Any>(),
            (2, _, _) => self.walk::<2, Any>(),
            _ => self.walk::<0, Any>(),
        }
    }

    /// The tiles: rows two at a time (four on maps of at most two vectors a row), vectors
    /// four at a time along a row. `R x S` taps at column stride `SW` (`0`: the geometry's,
    /// read at run time), each by `K`'s tile.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    #[inline]
    unsafe fn walk<const SW: usize, K: Kernel>(&self) {
        let g = self.g;
        let vectors = g.q.div_ceil(2);
        let rows = if vectors <= 2 { 4 } else { 2 };
        let mut p = 0;
        while p < g.p {
            let w = rows.min(g.p - p);
            self.prefetch(p + w, w);
            let mut v0 = 0;
            while v0 < vectors {
                let v = (vectors - v0).min(4);
                let at = At { p, q: 2 * v0 };
                let inside = K::inside(self, at, v, SW);
                macro_rules! tiles {
                    ($($w:literal: $($v:literal)*;)*) => {
                        match (w, v, inside) {
                            $($(
                                ($w, $v, true) => K::tile::<SW, $v, $w, false>(self, at),
                                ($w, $v, false) => K::tile::<SW, $v, $w, true>(self, at),
                            )*)*
                            _ => unreachable!("{w} rows of {v} vectors"),
                        }
                    };
                }
                tiles! {
                    1: 1 2 3 4;
                    2: 1 2 3 4;
                    3: 1 2;
                    4: 1 2;
                }
                v0 += v;
            }
            p += w;
        }
    }

    /// Asks for the input rows that the tiles of output rows `p..p + w` read and earlier
    /// rows do not, while this row's tiles compute: the block comes from memory or the
    /// last-level cache (the layer before wrote megabytes), and the kernel alone issued
    /// its loads too slowly to keep enough of them in flight.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    #[inline]
    unsafe fn prefetch(&self, p: usize, w: usize) {
        let g = self.g;
        let reach = (g.r - 1) * g.dilation_h + 1;
        let from = (p * g.stride_h + reach)
            .saturating_sub(g.pad_top + g.stride_h * w)
            .min(g.h);
        let to = (p * g.stride_h + reach).saturating_sub(g.pad_top).min(g.h);
        let start = self.src.wrapping_add(from * g.w * L);
        for line in (0..(to - from) * g.w * L).step_by(16) {
            _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(line) as *const i8);
        }
    }

    /// The start of the input row that tap row `r` of output row `p` reads, or `None` where
    /// that row lies outside the map (the tap is skipped: it adds `filter x 0`).
    #[inline]
    fn input_row(&self, p: usize, r: usize) -> Option<*const f32> {
        let g = self.g;
        let y = (p * g.stride_h + r * g.dilation_h).checked_sub(g.pad_top)?;
        (y < g.h).then(|| self.src.wrapping_add(y * g.w * L))
    }

    /// Whether input column `c` (after the padding is taken off) lies in the map.
    #[inline]
    fn column_in(&self, c: isize) -> bool {
        c >= 0 && (c as usize) < self.g.w
    }

    /// Whether every column a tile of `v` vectors from `at` reads lies in the map, and its
    /// last vector holds two output pixels: then no load needs a mask.
    #[inline]
    fn inside(&self, at: At, v: usize) -> bool {
        let g = self.g;
        let last = at.q + 2 * v - 1;
        last < g.q
            && at.q * g.stride_w >= g.pad_left
            && last * g.stride_w + (g.s - 1) * g.dilation_w < g.w + g.pad_left
    }

    /// Whether the pairs of columns [`tile3`](Self::tile3) loads a row from `at` at stride
    /// `sw` (`v + 1` at stride 1, `2 v + 1` at 2) lie in the map.
    #[inline]
    fn inside3(&self, at: At, v: usize, sw: usize) -> bool {
        let g = self.g;
        let first = at.q * sw;
        first >= g.pad_left && first - g.pad_left + 2 * (sw * v) + 1 < g.w
    }

    /// [`tile`](Self::tile) for 3 taps a row at stride `SW` (1 or 2): a row's pairs of
    /// input pixels (`V + 1` at stride 1, `2 V + 1` at 2) loaded once and each tap's pairs
    /// of inputs made from them by a lane shuffle, so that a row's 3 taps of `V` vectors
    /// take that many loads instead of `3 V` (`6 V` at stride 2, merged in pairs); the
    /// loads, half of them across cache lines, held [`tile`](Self::tile) to a fraction of
    /// the multiply-adds it could issue. Columns outside the map load as zero when
    /// `MASKED`; the sums are [`tile`](Self::tile)'s.
    ///
    /// # Safety
    /// As [`tile`](Self::tile), with `MASKED` unless [`inside3`](Self::inside3).
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    #[inline]
    unsafe fn tile3<const SW: usize, const V: usize, const W: usize, const MASKED: bool>(
        &self,
        at: At,
    ) {
        const MOST: usize = 9;
        let g = self.g;
        let loads = if SW == 1 { V + 1 } else { 2 * V + 1 };
        let first = (at.q * SW) as isize - g.pad_left as isize;
        let masks: [u16; MOST] = std::array::from_fn(|k| {
            let c = first + 2 * k as isize;
            let lanes = |c: isize, bits: u16| if self.column_in(c) { bits } else { 0 };
            lanes(c, 0x00ff) | lanes(c + 1, 0xff00)
        });
        let mut acc = [[_mm512_setzero_ps(); V]; W];
        for r in 0..g.r {
            let tap = |s: usize| {
                let k = _mm256_loadu_ps(self.taps.as_ptr().add((r * 3 + s) * L));
                _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(k)))
            };
            let k = [tap(0), tap(1), tap(2)];
            for (i, row) in acc.iter_mut().enumerate() {
                let Some(base) = self.input_row(at.p + i, r) else {
                    continue;
                };
                let mut pairs = [_mm512_setzero_ps(); MOST];
                for (kk, pair) in pairs.iter_mut().enumerate().take(loads) {
                    let at = base.wrapping_offset((first + 2 * kk as isize) * L as isize);
                    *pair = if MASKED {
                        _mm512_maskz_loadu_ps(masks[kk], at)
                    } else {
                        _mm512_loadu_ps(at)
                    };
                }
                for (j, a) in row.iter_mut().enumerate() {
                    // Two 256-bit halves each of two pairs: `0b01_00_11_10` the second of the
                    // first and the first of the second, `0b01_00_01_00` both firsts,
                    // `0b11_10_11_10` both seconds.
                    let x = if SW == 1 {
                        let (d0, d1) = (pairs[j], pairs[j + 1]);
                        [d0, _mm512_shuffle_f32x4::<0b01_00_11_10>(d0, d1), d1]
                    } else {
                        let (d0, d1, d2) = (pairs[2 * j], pairs[2 * j + 1], pairs[2 * j + 2]);
                        [
                            _mm512_shuffle_f32x4::<0b01_00_01_00>(d0, d1),
                            _mm512_shuffle_f32x4::<0b11_10_11_10>(d0, d1),
                            _mm512_shuffle_f32x4::<0b01_00_01_00>(d1, d2),
                        ]
                    };
                    for (k, x) in k.iter().zip(x) {
                        *a = _mm512_fmadd_ps(*k, x, *a);
                    }
                }
            }
        }
        self.store(at, &acc);
    }

    /// A tile's sums through the epilogue into the output, a vector's second pixel only
    /// where it lies in the row. Always inlined into the tiles (AVX-512 code there): as a
    /// function of its own LLVM kept it out of line, a call per tile, 4% of mobilenet_v2's
    /// batch-16 pass.
    #[inline(always)]
    unsafe fn store<const V: usize, const W: usize>(&self, at: At, acc: &[[__m512; V]; W]) {
        let g = self.g;
        for (i, row) in acc.iter().enumerate() {
            let to = self.out.add(((at.p + i) * g.q + at.q) * L);
            for (j, a) in row.iter().enumerate() {
                let upper = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(*a));
                let halves = [_mm512_castps512_ps256(*a), _mm256_castpd_ps(upper)];
                for (h, v) in halves.into_iter().enumerate() {
                    if at.q + 2 * j + h >= g.q {
                        break;
                    }
                    let v = match &self.finish {
                        Some(lanes) => lanes.apply(v),
                        None => v,
                    };
                    _mm256_storeu_ps(to.add((2 * j + h) * L), v);
                }
            }
        }
    }

    /// Output pixels `q..q + 2 V` of rows `p..p + W`: one accumulator a vector, taps in the
    /// order `r` then `s` from zero (the padded kernels' order), a row outside the map
    /// skipped, columns outside it (and a vector's second pixel past the row's end) masked
    /// to zero when `MASKED`.
    ///
    /// # Safety
    /// As [`run`](Self::run); `MASKED` unless [`inside`](Self::inside).
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    #[inline]
    unsafe fn tile<const SW: usize, const V: usize, const W: usize, const MASKED: bool>(
        &self,
        at: At,
    ) {
        let g = self.g;
        let (kr, ks) = (g.r, g.s);
        let sw = if SW > 0 { SW } else { g.stride_w };
        let dw = g.dilation_w;
        // Input column of each vector's first pixel at tap column 0 (before the padding).
        let column = |j: usize| ((at.q + 2 * j) * sw) as isize - g.pad_left as isize;
        // A pixel's 8 lanes where its input column lies in the map (and the pixel in the
        // output row).
        let lanes = |c: isize, pixel: usize, bits: u16| -> u16 {
            if pixel < g.q && self.column_in(c) {
                bits
            } else {
                0
            }
        };
        let mut acc = [[_mm512_setzero_ps(); V]; W];
        for r in 0..kr {
            for (i, row) in acc.iter_mut().enumerate() {
                let Some(base) = self.input_row(at.p + i, r) else {
                    continue;
                };
                for s in 0..ks {
                    let k = _mm256_loadu_ps(self.taps.as_ptr().add((r * ks + s) * L));
                    let k = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(k)));
                    for (j, a) in row.iter_mut().enumerate() {
                        let c = column(j) + (s * dw) as isize;
                        let first = base.wrapping_offset(c * L as isize);
                        let second = first.wrapping_add(sw * L);
                        let x = if MASKED {
                            let q = at.q + 2 * j;
                            let (m0, m1) =
                                (lanes(c, q, 0x00ff), lanes(c + sw as isize, q + 1, 0xff00));
                            if SW == 1 {
                                _mm512_maskz_loadu_ps(m0 | m1, first)
                            } else {
                                let lo = _mm256_maskz_loadu_ps((m0 & 0xff) as u8, first);
                                let hi = _mm256_maskz_loadu_ps((m1 >> 8) as u8, second);
                                pair(lo, hi)
                            }
                        } else if SW == 1 {
                            _mm512_loadu_ps(first)
                        } else {
                            pair(_mm256_loadu_ps(first), _mm256_loadu_ps(second))
                        };
                        *a = _mm512_fmadd_ps(k, x, *a);
                    }
                }
            }
        }
        self.store(at, &acc);
    }
}

/// Two pixels' 8 lanes in one vector.
#[target_feature(enable = "avx512f")]
#[inline]
fn pair(lo: __m256, hi: __m256) -> __m512 {
    let lo = _mm512_castps_pd(_mm512_castps256_ps512(lo));
    _mm512_castpd_ps(_mm512_insertf64x4::<1>(lo, _mm256_castps_pd(hi)))
}
