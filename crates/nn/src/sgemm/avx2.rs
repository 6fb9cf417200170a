//! The AVX2 kernels (8-lane FMAs, 16 vector registers; the AMD EPYC machines this project
//! also runs on have no AVX-512). They read the same packed layouts as the AVX-512 ones
//! and sum every output the same way (from zero, `k` ascending, one fused multiply-add a
//! term, blocks of `KC` added to the running value), so the product gives the same bits on
//! both; only the blocking of `C` into register tiles differs.

use super::{KC, MR, NR};
use std::arch::x86_64::*;

/// Lanes of a vector.
const L: usize = 8;

/// A lane mask of the first `lanes` lanes (all of them from 8 on).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn first_lanes(lanes: usize) -> __m256i {
    let index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes.min(L) as i32), index)
}

/// `y (m) = w (m x k) * x (k)`: each output summed in 16 lanes as two 8-lane halves (lane
/// `j` takes the terms `k = j mod 16`, as the AVX-512 kernel's lanes do), four rows at a time
/// sharing each load of `x`, the halves then added pairwise.
///
/// # Safety
/// AVX2 and FMA; `w` holds `m * k` values, `x` `k`, `y` `m`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gemv(m: usize, k: usize, w: &[f32], x: &[f32], y: &mut [f32]) {
    const ROWS: usize = 4;
    let tail = k % 16;
    let masks = [first_lanes(tail), first_lanes(tail.saturating_sub(L))];
    let mut i = 0;
    while i < m {
        let rows = ROWS.min(m - i);
        let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
        let row = |r: usize| w.as_ptr().add((i + r.min(rows - 1)) * k);
        let mut j = 0;
        while j + 16 <= k {
            let xv = [
                _mm256_loadu_ps(x.as_ptr().add(j)),
                _mm256_loadu_ps(x.as_ptr().add(j + L)),
            ];
            for (r, a) in acc.iter_mut().enumerate() {
                for h in 0..2 {
                    let wv = _mm256_loadu_ps(row(r).add(j + h * L));
                    a[h] = _mm256_fmadd_ps(wv, xv[h], a[h]);
                }
            }
            j += 16;
        }
        if j < k {
            // Masked lanes read nothing and add zero products.
            let xv = [
                _mm256_maskload_ps(x.as_ptr().add(j), masks[0]),
                _mm256_maskload_ps(x.as_ptr().wrapping_add(j + L), masks[1]),
            ];
            for (r, a) in acc.iter_mut().enumerate() {
                for h in 0..2 {
                    let wv = _mm256_maskload_ps(row(r).wrapping_add(j + h * L), masks[h]);
                    a[h] = _mm256_fmadd_ps(wv, xv[h], a[h]);
                }
            }
        }
        for (r, a) in acc.iter().enumerate().take(rows) {
            // Halves, then quarters, then pairs, then the last two lanes.
            let eight = _mm256_add_ps(a[0], a[1]);
            let four = _mm_add_ps(
                _mm256_castps256_ps128(eight),
                _mm256_extractf128_ps::<1>(eight),
            );
            let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
            y[i + r] = _mm_cvtss_f32(two) + _mm_cvtss_f32(_mm_shuffle_ps::<1>(two, two));
        }
        i += rows;
    }
}

/// `c = A[rows] * b` on `A` packed by [`super::pack::pack`] (`m` rows in all); `c` points
/// at the first of `rows`, `n` apart. The same contract as the AVX-512 kernel's `run`.
///
/// # Safety
/// AVX2 and FMA; `pa` holds the packed `m x k`, `b` `k * n` values, `c` `rows.len() * n`;
/// `rows.start` is a multiple of `MR`, `rows.end <= m`; `b` is packed by
/// [`super::pack_columns`] when `b_packed`, else `pb` holds `KC * NR` values. With
/// `accumulate` the products are added to `c`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run(
    m: usize,
    pa: &[f32],
    rows: std::ops::Range<usize>,
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
        for n0 in (0..n).step_by(NR) {
            let nr = NR.min(n - n0);
            // As in the AVX-512 kernel: B packed once, packed here for three or more row
            // panels, read in place for fewer (then its last vector is a masked load).
            let (bp, ldb, in_place) = if b_packed {
                (b.as_ptr().add(n0 * k + k0 * NR), NR, false)
            } else if last - first > 2 {
                for kk in 0..kc {
                    let src = &b[(k0 + kk) * n + n0..(k0 + kk) * n + n0 + nr];
                    let dst = &mut pb[kk * NR..(kk + 1) * NR];
                    copy_panel_row(src, dst);
                }
                (pb.as_ptr(), NR, false)
            } else {
                (b.as_ptr().add(k0 * n + n0), n, true)
            };
            let vectors = nr.div_ceil(L);
            // Tiles of 6 rows x 2 vectors (12 accumulators, 2 loads of B and 6 broadcasts a
            // step, 15 registers: 4 x 2 left too few accumulators to hide the FMA latency,
            // 4 x 3 no spare register, and the compiler spilled one every step). Six rows
            // do not divide a panel of 8, so a tile may take its last rows from the next
            // panel: `split` rows from this one.
            let end = last * MR;
            let mut g = first * MR;
            while g < end {
                let (p, o) = (g / MR, g % MR);
                let rows_here = (end - g).min(6);
                let split = (MR - o).min(rows_here);
                let at = |panel: usize| block.as_ptr().add(panel * MR * kc);
                let mut v0 = 0;
                while v0 < vectors {
                    let width = (vectors - v0).min(2);
                    let t = Tile {
                        kc,
                        a: at(p).add(o),
                        next: if split < rows_here { at(p + 1) } else { at(p) },
                        b: bp.wrapping_add(v0 * L),
                        ldb,
                        c: c.add((g - first * MR) * n + n0 + v0 * L),
                        ldc: n,
                        rows: rows.end.saturating_sub(g).min(rows_here),
                        lanes: std::array::from_fn(|v| nr.saturating_sub((v0 + v) * L).min(L)),
                        add: k0 > 0 || accumulate,
                        masked_last: in_place && v0 + width == vectors && !nr.is_multiple_of(L),
                    };
                    match (rows_here, split, width) {
                        (6, 6, 2) => t.run::<6, 6, 2>(),
                        (6, 4, 2) => t.run::<6, 4, 2>(),
                        (6, 2, 2) => t.run::<6, 2, 2>(),
                        (4, 4, 2) => t.run::<4, 4, 2>(),
                        (2, 2, 2) => t.run::<2, 2, 2>(),
                        (6, 6, _) => t.run::<6, 6, 1>(),
                        (6, 4, _) => t.run::<6, 4, 1>(),
                        (6, 2, _) => t.run::<6, 2, 1>(),
                        (4, 4, _) => t.run::<4, 4, 1>(),
                        _ => t.run::<2, 2, 1>(),
                    }
                    v0 += width;
                }
                g += rows_here;
            }
        }
    }
}

/// `src` (at most [`NR`] values) into the first lanes of `dst` ([`NR`] values), zeros after:
/// six vector moves, where a library call per row of a panel was an eighth of vgg-small's
/// time.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn copy_panel_row(src: &[f32], dst: &mut [f32]) {
    debug_assert!(src.len() <= NR && dst.len() == NR);
    let (from, to) = (src.as_ptr(), dst.as_mut_ptr());
    for v in 0..NR / L {
        let lanes = src.len().saturating_sub(v * L).min(L);
        let value = if lanes == L {
            _mm256_loadu_ps(from.add(v * L))
        } else {
            // Masked lanes read nothing; they are stored as zero.
            _mm256_maskload_ps(from.wrapping_add(v * L), first_lanes(lanes))
        };
        _mm256_storeu_ps(to.add(v * L), value);
    }
}

/// One `R x 8V` block of `C` over `kc` steps of `k`: its first `S` rows from one packed
/// panel, the rest from the start of the next.
struct Tile {
    kc: usize,
    /// The tile's first row in its packed panel (`kc x MR`).
    a: *const f32,
    /// The next panel's first row (read from row `S` of the tile on).
    next: *const f32,
    /// `kc` rows of `B`, `ldb` apart, from the tile's first column.
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    /// Rows of `C` to store (at most `R`; the rest is padding or another tile's).
    rows: usize,
    /// Columns of `C` in each vector (8 but in the last one).
    lanes: [usize; 2],
    /// Add to `C` (a later block of `k`) rather than overwrite it.
    add: bool,
    /// `B`'s last vector is read with a mask (read in place, past the end of a row).
    masked_last: bool,
}

impl Tile {
    /// # Safety
    /// AVX2 and FMA; both panels hold `kc` steps; rows `..S` lie in the first, `S..R` in
    /// the next; every stored lane lies in `C`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const R: usize, const S: usize, const V: usize>(&self) {
        if self.masked_last {
            self.steps::<R, S, V, true>()
        } else {
            self.steps::<R, S, V, false>()
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn steps<const R: usize, const S: usize, const V: usize, const MASKED: bool>(&self) {
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        let last = first_lanes(self.lanes[V - 1]);
        let (mut a, mut next, mut b) = (self.a, self.next, self.b);
        for _ in 0..self.kc {
            let mut bv = [_mm256_setzero_ps(); V];
            for (v, x) in bv.iter_mut().enumerate() {
                let at = b.wrapping_add(L * v);
                *x = if MASKED && v == V - 1 {
                    _mm256_maskload_ps(at, last)
                } else {
                    _mm256_loadu_ps(at)
                };
            }
            for (i, lane) in acc.iter_mut().enumerate() {
                let row = if i < S { a.add(i) } else { next.add(i - S) };
                let av = _mm256_broadcast_ss(&*row);
                for (x, bx) in lane.iter_mut().zip(&bv) {
                    *x = _mm256_fmadd_ps(av, *bx, *x);
                }
            }
            a = a.add(MR);
            next = next.add(MR);
            b = b.wrapping_add(self.ldb);
        }
        for (i, lane) in acc.iter().enumerate().take(self.rows) {
            let out = self.c.add(i * self.ldc);
            for (v, x) in lane.iter().enumerate() {
                let p = out.add(L * v);
                if self.lanes[v] == L {
                    let value = if self.add {
                        _mm256_add_ps(_mm256_loadu_ps(p), *x)
                    } else {
                        *x
                    };
                    _mm256_storeu_ps(p, value);
                } else {
                    // Lanes past the last column: never read, never written (masked stores
                    // are slow on AMD, so only a partial vector takes one).
                    let mask = first_lanes(self.lanes[v]);
                    let value = if self.add {
                        _mm256_add_ps(_mm256_maskload_ps(p, mask), *x)
                    } else {
                        *x
                    };
                    _mm256_maskstore_ps(p, mask, value);
                }
            }
        }
    }
}
