//! The AVX-512 kernels: 16-lane FMAs, an `8 x 48` block of `C` from one packed panel of `A`
//! (or three panels on one 16-lane vector of columns).

use super::{KC, MR, NR};
use std::arch::x86_64::*;

fn ones(lanes: usize) -> u16 {
    if lanes >= 16 {
        u16::MAX
    } else {
        (1u16 << lanes) - 1
    }
}

/// # Safety
/// AVX-512F; `w` holds `m * k` values, `x` `k`, `y` `m`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gemv(m: usize, k: usize, w: &[f32], x: &[f32], y: &mut [f32]) {
    const ROWS: usize = 4;
    let tail = ones(k % 16);
    let mut i = 0;
    while i < m {
        let rows = ROWS.min(m - i);
        let mut acc = [_mm512_setzero_ps(); ROWS];
        let row = |r: usize| w.as_ptr().add((i + r.min(rows - 1)) * k);
        let mut j = 0;
        while j + 16 <= k {
            let xv = _mm512_loadu_ps(x.as_ptr().add(j));
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(_mm512_loadu_ps(row(r).add(j)), xv, *a);
            }
            j += 16;
        }
        if j < k {
            let xv = _mm512_maskz_loadu_ps(tail, x.as_ptr().add(j));
            for (r, a) in acc.iter_mut().enumerate() {
                let wv = _mm512_maskz_loadu_ps(tail, row(r).add(j));
                *a = _mm512_fmadd_ps(wv, xv, *a);
            }
        }
        for (r, a) in acc.iter().enumerate().take(rows) {
            y[i + r] = _mm512_reduce_add_ps(*a);
        }
        i += rows;
    }
}

/// `c = A[rows] * b` on `A` packed by [`super::pack::pack`] (`m` rows in all); `c` points at the first
/// of `rows`, `n` apart.
///
/// # Safety
/// AVX-512F; `pa` holds the packed `m x k`, `b` `k * n` values, `c` `rows.len() * n`;
/// `rows.start` is a multiple of `MR`, `rows.end <= m`; `b` is packed by
/// [`super::pack_columns`] when `b_packed`, else `pb` holds `KC * NR` values. With
/// `accumulate` the products are added to `c`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run(
    m: usize,
    pa: &[f32],
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    n: usize,
    k: usize,
    b: &[f32],
    b_packed: bool,
    accumulate: bool,
    c: *mut f32,
    pb: &mut [f32],
) {
    let panels = m.div_ceil(MR);
    let (first, last) = (rows.start / MR, rows.end.div_ceil(MR));
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        let block = &pa[panels * MR * k0..];
        for n0 in cols.clone().step_by(NR) {
            let nr = NR.min(cols.end - n0);
            let masks = [
                ones(nr),
                ones(nr.saturating_sub(16)),
                ones(nr.saturating_sub(32)),
            ];
            // With few row panels to share it, packing B would copy as many values as
            // the panels multiply (LeNet-5's 6 and 16 filters): read it in place.
            let (bp, ldb) = if b_packed {
                (b.as_ptr().add(n0 * k + k0 * NR), NR)
            } else if last - first > 2 {
                // B's columns n0.. of these kc rows, NR apart, zero past n.
                for kk in 0..kc {
                    let src = &b[(k0 + kk) * n + n0..(k0 + kk) * n + n0 + nr];
                    let dst = &mut pb[kk * NR..(kk + 1) * NR];
                    dst[..nr].copy_from_slice(src);
                    dst[nr..].fill(0.0);
                }
                (pb.as_ptr(), NR)
            } else {
                (b.as_ptr().add(k0 * n + n0), n)
            };
            let mut p = first;
            while p < last {
                // One vector of columns: three panels at once, else 8 accumulators
                // could not hide the FMA latency (the loop ran at about half speed).
                let together = if nr <= 16 { 3.min(last - p) } else { 1 };
                let t = Tile {
                    kc,
                    a: block.as_ptr().add(p * MR * kc),
                    b: bp,
                    ldb,
                    c: c.add((p - first) * MR * n + n0),
                    ldc: n,
                    rows: (together * MR).min(rows.end - p * MR),
                    masks,
                    add: k0 > 0 || accumulate,
                };
                match (nr.div_ceil(16), together) {
                    (1, 3) => t.run::<1, 3>(),
                    (1, 2) => t.run::<1, 2>(),
                    (1, _) => t.run::<1, 1>(),
                    (2, _) => t.run::<2, 1>(),
                    _ => t.run::<3, 1>(),
                }
                p += together;
            }
        }
    }
}

/// One `P MR x 16V` block of `C` over `kc` steps of `k`, on `P` consecutive packed panels.
struct Tile {
    kc: usize,
    /// The first of the `P` panels, each `kc x MR`, row-panel packed, `MR * kc` apart.
    a: *const f32,
    /// `kc` rows of `B`, `ldb` apart (packed: `NR`).
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    /// Rows of `C` to store (the rest of the panels is padding).
    rows: usize,
    masks: [u16; 3],
    /// Add to `C` (a later block of `k`) rather than overwrite it.
    add: bool,
}

impl Tile {
    /// # Safety
    /// AVX-512F; the panels hold `kc` steps; every stored lane lies inside `C`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run<const V: usize, const P: usize>(&self) {
        let mut acc = [[[_mm512_setzero_ps(); V]; MR]; P];
        let (mut a, mut b) = (self.a, self.b);
        let panel = MR * self.kc;
        for _ in 0..self.kc {
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, x) in bv.iter_mut().enumerate() {
                // Lanes past the last column are masked off (zero).
                *x = _mm512_maskz_loadu_ps(self.masks[v], b.wrapping_add(16 * v));
            }
            for (j, rows) in acc.iter_mut().enumerate() {
                for (i, lane) in rows.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a.add(j * panel + i));
                    for (x, bx) in lane.iter_mut().zip(&bv) {
                        *x = _mm512_fmadd_ps(av, *bx, *x);
                    }
                }
            }
            a = a.add(MR);
            b = b.wrapping_add(self.ldb);
        }
        let rows = acc.iter().flatten();
        for (i, lane) in rows.enumerate().take(self.rows) {
            let out = self.c.add(i * self.ldc);
            for (v, x) in lane.iter().enumerate() {
                // Lanes past the last column are masked off: never read, never written.
                let p = out.wrapping_add(16 * v);
                let value = if self.add {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(self.masks[v], p), *x)
                } else {
                    *x
                };
                _mm512_mask_storeu_ps(p, self.masks[v], value);
            }
        }
    }
}
