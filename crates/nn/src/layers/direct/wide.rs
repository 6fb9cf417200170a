//! The direct kernel's tile on AVX-512 machines: 16 output pixels a vector. A tile is
//! [`FILTERS`] filters by two runs of 16 pixels, each run a row's 16 columns from a
//! multiple of 16 (the next run the same row's next 16, or the next row's first): LeNet-5's
//! 28-column rows fill two runs, its conv2 input gradient's 14-column rows one each (the
//! AVX2 tile's two 8-lane vectors, a row's 16 columns, leave a vector's lanes idle there as
//! well). Each output is summed as the AVX2 tile sums it (from zero, `k = (c, r, s)`
//! ascending, one fused multiply-add a term): the same bits.

use super::{LaneTile, FILTERS};
use crate::kernels::ConvGeometry;
use std::arch::x86_64::*;

/// Pixels a run (a vector's lanes).
pub(super) const LANES: usize = 16;

/// As [`super::avx2::block`], two runs of 16 pixels at a time.
///
/// # Safety
/// AVX-512F; `padded` holds `C` planes padded by `ConvGeometry::pad` (every tap of every
/// run of 16 columns inside them: `padded_plane`); `taps` holds `filters x C R S` weights,
/// `out` `filters x P Q` values.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn block(
    g: &ConvGeometry,
    filters: usize,
    padded: &[f32],
    stride: usize,
    wp: usize,
    taps: &[f32],
    out: &mut [f32],
) {
    let runs = g.p * g.q.div_ceil(LANES);
    let mut first = 0;
    while first < runs {
        let tile = Tile {
            g,
            padded,
            stride,
            wp,
            taps,
            first,
        };
        if runs - first >= 2 {
            super::by_shape!(filters, g.s, |F, S| tile.run::<F, S, 2>(out));
        } else {
            super::by_shape!(filters, g.s, |F, S| tile.run::<F, S, 1>(out));
        }
        first += 2;
    }
}

/// Runs `first..first + V` of a plane's (row `i / per_row`, columns `i % per_row` 16 on).
struct Tile<'a> {
    g: &'a ConvGeometry,
    padded: &'a [f32],
    stride: usize,
    wp: usize,
    taps: &'a [f32],
    first: usize,
}

impl Tile<'_> {
    /// `F` filters' outputs on `V` runs; `S` the filters' columns when not 0 (else `g.s`).
    ///
    /// # Safety
    /// As [`block`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run<const F: usize, const S: usize, const V: usize>(&self, out: &mut [f32]) {
        let g = self.g;
        let (q, pq, crs) = (g.q, g.p * g.q, g.col_rows());
        assert!(F <= FILTERS && self.taps.len() >= F * crs && out.len() >= F * pq);
        let per_row = q.div_ceil(LANES);
        let runs: [(usize, usize); V] = std::array::from_fn(|v| {
            let i = self.first + v;
            (i / per_row, i % per_row * LANES)
        });
        let mut acc = [[_mm512_setzero_ps(); V]; F];
        for c in 0..g.c {
            for r in 0..g.r {
                let lines: [*const f32; V] = std::array::from_fn(|v| {
                    let (p, j0) = runs[v];
                    let row = (p * g.stride_h + r * g.dilation_h) * self.wp + j0;
                    self.padded.as_ptr().add(c * self.stride + row)
                });
                for s in 0..if S > 0 { S } else { g.s } {
                    let x: [__m512; V] =
                        std::array::from_fn(|v| _mm512_loadu_ps(lines[v].add(s * g.dilation_w)));
                    let k = (c * g.r + r) * g.s + s;
                    for (f, a) in acc.iter_mut().enumerate() {
                        let w = _mm512_set1_ps(*self.taps.as_ptr().add(f * crs + k));
                        for v in 0..V {
                            a[v] = _mm512_fmadd_ps(w, x[v], a[v]);
                        }
                    }
                }
            }
        }
        for (f, a) in acc.iter().enumerate() {
            for (v, value) in a.iter().enumerate() {
                let (p, j0) = runs[v];
                let dst = out.as_mut_ptr().add(f * pq + p * q + j0);
                let lanes = (q - j0).min(LANES);
                if lanes == LANES {
                    _mm512_storeu_ps(dst, *value);
                } else {
                    _mm512_mask_storeu_ps(dst, ((1u32 << lanes) - 1) as __mmask16, *value);
                }
            }
        }
    }
}

/// The weight gradient's tile with 16 pixels a vector: `F` filters by `T` taps (up to 6 x
/// 4: 24 of the 32 registers), the AVX2 tile's sums (`acc[f][t][l]` over the pixels of
/// columns `l` mod 16).
impl LaneTile<'_> {
    /// # Safety
    /// As [`run_wide`](Self::run_wide).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run_wide_any(&self, padded: &[f32], rows: &[f32], acc: &mut [f32]) {
        macro_rules! by_taps {
            ($f:literal) => {
                match self.taps.len() {
                    4 => self.run_wide::<$f, 4>(padded, rows, acc),
                    3 => self.run_wide::<$f, 3>(padded, rows, acc),
                    2 => self.run_wide::<$f, 2>(padded, rows, acc),
                    _ => self.run_wide::<$f, 1>(padded, rows, acc),
                }
            };
        }
        match self.filters.len() {
            6 => by_taps!(6),
            5 => by_taps!(5),
            4 => by_taps!(4),
            3 => by_taps!(3),
            2 => by_taps!(2),
            _ => by_taps!(1),
        }
    }

    /// # Safety
    /// AVX-512F; `F` filters' padded rows in `rows` (`P` rows of `qv` values each, a
    /// multiple of 16); every tap of every vector of every output row in `padded`; `acc`
    /// holds the tile's filters' taps in 16 lanes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run_wide<const F: usize, const T: usize>(
        &self,
        padded: &[f32],
        rows: &[f32],
        acc: &mut [f32],
    ) {
        let (g, qv, k) = (self.g, self.qv, self.k);
        assert!(qv.is_multiple_of(LANES) && T <= self.taps.len());
        let at = |f: usize, t: usize| ((self.filters.start + f) * k + self.first_tap + t) * LANES;
        let mut sums = [[_mm512_setzero_ps(); T]; F];
        for (f, lane) in sums.iter_mut().enumerate() {
            for (t, v) in lane.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(acc.as_ptr().add(at(f, t)));
            }
        }
        let dy: [*const f32; F] =
            std::array::from_fn(|f| rows.as_ptr().add((self.filters.start + f) * g.p * qv));
        let x: [*const f32; T] = std::array::from_fn(|t| padded.as_ptr().add(self.taps[t]));
        for i in 0..g.p {
            let (row, base) = (i * qv, i * g.stride_h * self.wp);
            for j in (0..qv).step_by(LANES) {
                let xs: [__m512; T] = std::array::from_fn(|t| _mm512_loadu_ps(x[t].add(base + j)));
                for f in 0..F {
                    let d = _mm512_loadu_ps(dy[f].add(row + j));
                    for t in 0..T {
                        sums[f][t] = _mm512_fmadd_ps(d, xs[t], sums[f][t]);
                    }
                }
            }
        }
        for (f, lane) in sums.iter().enumerate() {
            for (t, v) in lane.iter().enumerate() {
                _mm512_storeu_ps(acc.as_mut_ptr().add(at(f, t)), *v);
            }
        }
    }
}
