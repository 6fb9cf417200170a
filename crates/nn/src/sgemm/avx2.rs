//! The AVX2 kernels (8-lane FMAs, 16 vector registers; the AMD EPYC machines this project
//! also runs on have no AVX-512). They read the same packed layouts as the AVX-512 ones
//! and sum every output the same way (from zero, `k` ascending, one fused multiply-add a
//! term, blocks of `KC` added to the running value), so the product gives the same bits on
//! both; only the blocking of `C` into register tiles differs.

use super::{Rhs, KC, MR, NR};
use std::arch::x86_64::*;

/// Lanes of a vector.
const L: usize = 8;

/// How far ahead of its use a line of `B` read in place is fetched (floats: four lines).
///
/// The product reads the rows of `B` and writes those of `C` a row's stride apart: more
/// streams than the hardware prefetchers follow, so a 1x1 convolution's product with its
/// operands out of cache ran at a third of its in-cache speed. Fetching ahead (`B` in place
/// or being packed, and `C` where `k` is short), 16 samples in turn, alternating in one
/// process (AMD EPYC, 2026-12-01), time against none: 16x3136x32 0.73, 96x3136x16 0.53,
/// 24x784x144 0.83, 64x784x576 (by rows, as the implicit lowering) 0.84, 128x196x1152 and
/// 256x49x2304 0.96-1.0.
const AHEAD_IN_PLACE: usize = 64;

/// How far ahead of its use the packed `A` is fetched, on the first pass over a block of it
/// (floats: 64 steps of `k`, 32 lines).
///
/// A batch-1 layer's filters are read once, from L3 or memory (resnet18's are 45 MB), and
/// the tiles step through its packed panels faster than the hardware prefetchers fetch them.
/// Time with against without, batch 1, alternating pass by pass in one process (AMD EPYC,
/// 2026-12-01, 1 thread): resnet18 0.66-0.87, mobilenet_v2 0.78-0.94 (2 threads 0.90-0.93);
/// resnet18 at batch 16 0.73-0.87; vgg-small, LeNet-5 and mobilenet_v2 at batch 16-64
/// 0.96-1.0. 128 to 2048 floats ahead all won; 512 was never the worst.
const AHEAD_A: usize = 512;

/// How far ahead of its packing a row of `B` is fetched: two panels.
const AHEAD_PACKED: usize = 2 * NR;

/// Steps of `k` up to which a tile fetches the lines of `C` it writes next.
const SHORT_K: usize = 128;

/// A lane mask of the first `lanes` lanes (all of them from 8 on).
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn first_lanes(lanes: usize) -> __m256i {
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

/// `c = A[rows] * B` on `A` packed by [`super::pack::pack`] (`m` rows in all); `c` points
/// at the first of `rows`, `n` apart. The AVX-512 kernel's contract, with `B` also given by
/// its rows ([`Rhs::Rows`]).
///
/// # Safety
/// AVX2 and FMA; `pa` holds the packed `m x k`, `b` `k x n` values as its variant says, `c`
/// `rows.len() * n`; `rows.start` is a multiple of `MR`, `rows.end <= m`; `pb` holds
/// `KC * NR` values. With `accumulate` the products are added to `c`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run(
    m: usize,
    pa: &[f32],
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    n: usize,
    k: usize,
    b: Rhs,
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
            // As in the AVX-512 kernel: B packed once, packed here for three or more row
            // panels, read in place for fewer (only whole vectors and single values are
            // read, none past a row's end); given by its rows, packed here.
            let (bp, ldb) = match b {
                Rhs::Packed(b) => (b.as_ptr().add(n0 * k + k0 * NR), NR),
                Rhs::Plain(b) if last - first <= 2 => (b.as_ptr().add(k0 * n + n0), n),
                Rhs::Plain(b) => {
                    for kk in 0..kc {
                        let src = &b[(k0 + kk) * n + n0..][..nr];
                        fetch_row(src.as_ptr().wrapping_add(AHEAD_PACKED));
                        copy_panel_row(src, &mut pb[kk * NR..(kk + 1) * NR]);
                    }
                    (pb.as_ptr(), NR)
                }
                Rhs::Rows(b, offsets) => {
                    for kk in 0..kc {
                        let src = &b[offsets[k0 + kk] + n0..][..nr];
                        fetch_row(src.as_ptr().wrapping_add(AHEAD_PACKED));
                        copy_panel_row(src, &mut pb[kk * NR..(kk + 1) * NR]);
                    }
                    (pb.as_ptr(), NR)
                }
            };
            let panel = Panel {
                block: block.as_ptr(),
                kc,
                b: bp,
                ldb,
                c: c.add(n0),
                ldc: n,
                top: first * MR,
                end: last * MR,
                stored: rows.end,
                add: k0 > 0 || accumulate,
            };
            // Whole vectors of columns in tiles of 6 rows x 2 vectors (12 accumulators, 2
            // loads of B and 6 broadcasts a step, 15 registers: 4 x 2 left too few
            // accumulators to hide the FMA latency, 4 x 3 no spare register, and the
            // compiler spilled one every step). Column-outer: a tile's 16 columns of the
            // panel (`kc x 16`, 16 KiB) stay in L1 while the row panels of `A` stream past
            // from L2; row-outer read the whole 48 KiB panel from L2 for every tile (10%
            // slower on vgg-small's layers).
            let vectors = nr / L;
            // `B` read in place (its rows `n` apart): the top tile of each pair of vectors
            // fetches the columns ahead.
            let ahead = ldb != NR;
            for v0 in (0..vectors).step_by(2) {
                let width = (vectors - v0).min(2);
                for g in (panel.top..panel.end).step_by(6) {
                    panel.tile(g, v0, width, ahead && g == panel.top, n0 == 0 && v0 == 0);
                }
            }
            // The last `nr mod 8` columns with the rows as lanes: a 6 x 8 tile for one
            // column (a 7 x 7 layer's 49th) took half a full tile's time for a 48th of the
            // work.
            if !nr.is_multiple_of(L) {
                panel.last_columns(vectors * L, nr % L);
            }
        }
    }
}

/// Fetches the [`NR`] values of a row of `B` from `at` (three lines) into L2 (a panel ahead
/// is `kc x 3` lines, more than L1 holds): a hint, which never faults, even past the end of
/// `B`.
#[inline]
fn fetch_row(at: *const f32) {
    let at = at as *const i8;
    for line in 0..3 {
        // SAFETY: a prefetch reads nothing architecturally.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(at.wrapping_add(64 * line)) };
    }
}

/// `src` (at most [`NR`] values) into the first lanes of `dst` ([`NR`] values), zeros after:
/// six vector moves, where a library call per row of a panel was an eighth of vgg-small's
/// time.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn copy_panel_row(src: &[f32], dst: &mut [f32]) {
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

/// One panel of `B` (`kc` steps of up to [`NR`] columns) against the packed row panels of
/// `A` from row `top` to `end`.
struct Panel {
    block: *const f32,
    kc: usize,
    /// The panel's first column of `B`, rows `ldb` apart.
    b: *const f32,
    ldb: usize,
    /// `C` at row `top`, the panel's first column.
    c: *mut f32,
    ldc: usize,
    top: usize,
    end: usize,
    /// Rows of `C` before this one are stored; later ones are padding.
    stored: usize,
    /// Add to `C` (a later block of `k`) rather than overwrite it.
    add: bool,
}

impl Panel {
    /// Packed row panel `p` of `A`.
    fn a(&self, p: usize) -> *const f32 {
        self.block.wrapping_add(p * MR * self.kc)
    }

    /// Rows `g..` (at most 6) and `width` whole vectors of columns from vector `v0` on. Six
    /// rows do not divide a panel of 8, so a tile may take its last rows from the next
    /// panel: `split` rows from this one.
    /// `ahead`: fetch `B`'s columns ahead; `first`: the first pass over this block of `A`,
    /// fetched ahead too.
    ///
    /// # Safety
    /// AVX2 and FMA; the tile lies in the panel.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile(&self, g: usize, v0: usize, width: usize, ahead: bool, first: bool) {
        let (p, o) = (g / MR, g % MR);
        let rows = (self.end - g).min(6);
        let split = (MR - o).min(rows);
        let t = Tile {
            kc: self.kc,
            a: self.a(p).add(o),
            next: if split < rows {
                self.a(p + 1)
            } else {
                self.a(p)
            },
            b: self.b.wrapping_add(v0 * L),
            ldb: self.ldb,
            c: self.c.add((g - self.top) * self.ldc + v0 * L),
            ldc: self.ldc,
            rows: self.stored.saturating_sub(g).min(rows),
            add: self.add,
            ahead,
            fetch_a: first,
        };
        match (rows, split, width) {
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
    }

    /// Columns `j0..j0 + t` (`t < 8`) of every row: `P` row panels at a time, each an
    /// 8-lane vector a step, times `T` broadcast values of `B`. `P` keeps `P T` accumulators
    /// (at least 8, to hide the FMA latency), `T` broadcasts and one load within the 16
    /// registers; 6 and 7 columns run as 3 + 3 and 4 + 3.
    ///
    /// # Safety
    /// AVX2 and FMA; the columns lie in the panel.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn last_columns(&self, j0: usize, t: usize) {
        match t {
            6 => {
                self.columns(j0, 3);
                self.columns(j0 + 3, 3)
            }
            7 => {
                self.columns(j0, 4);
                self.columns(j0 + 4, 3)
            }
            _ => self.columns(j0, t),
        }
    }

    /// [`last_columns`](Self::last_columns) for `t <= 5` columns.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn columns(&self, j0: usize, t: usize) {
        let (first, last) = (self.top / MR, self.end / MR);
        let most = match t {
            1 => 12,
            2 => 6,
            3 => 4,
            _ => 2,
        };
        let mut p = first;
        while p < last {
            let panels = (last - p).min(most);
            let cols = Columns {
                panel: self,
                p,
                j0,
                rows: self.stored.saturating_sub(p * MR),
            };
            macro_rules! shapes {
                ($($t:literal: $($p:literal)*;)*) => {
                    match (t, panels) {
                        $($(($t, $p) => cols.run::<$p, $t>(),)*)*
                        _ => unreachable!("{t} columns, {panels} panels"),
                    }
                };
            }
            shapes! {
                1: 1 2 3 4 5 6 7 8 9 10 11 12;
                2: 1 2 3 4 5 6;
                3: 1 2 3 4;
                4: 1 2;
                5: 1 2;
            }
            p += panels;
        }
    }
}

/// A few last columns of a [`Panel`] for `P` row panels from `p` on.
struct Columns<'a> {
    panel: &'a Panel,
    p: usize,
    j0: usize,
    /// Rows to store from the first panel's first row (the rest is padding).
    rows: usize,
}

impl Columns<'_> {
    /// # Safety
    /// AVX2 and FMA; `P` panels from `p` lie in the packed block, `T` columns from `j0` in
    /// the panel of `B`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const P: usize, const T: usize>(&self) {
        let panel = self.panel;
        let mut acc = [[_mm256_setzero_ps(); T]; P];
        let mut a = panel.a(self.p);
        let mut b = panel.b.add(self.j0);
        let stride = MR * panel.kc;
        for _ in 0..panel.kc {
            let bv: [__m256; T] = std::array::from_fn(|t| _mm256_broadcast_ss(&*b.add(t)));
            for (i, lane) in acc.iter_mut().enumerate() {
                let av = _mm256_loadu_ps(a.add(i * stride));
                for (x, bx) in lane.iter_mut().zip(&bv) {
                    *x = _mm256_fmadd_ps(av, *bx, *x);
                }
            }
            a = a.add(MR);
            b = b.add(panel.ldb);
        }
        let c = panel.c.add((self.p * MR - panel.top) * panel.ldc + self.j0);
        for (i, lane) in acc.iter().enumerate() {
            for (t, x) in lane.iter().enumerate() {
                let mut values = [0f32; L];
                _mm256_storeu_ps(values.as_mut_ptr(), *x);
                for (r, v) in values
                    .iter()
                    .enumerate()
                    .take(self.rows.saturating_sub(i * MR))
                {
                    let out = c.add((i * MR + r) * panel.ldc + t);
                    *out = if panel.add { *out + v } else { *v };
                }
            }
        }
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
    /// Add to `C` (a later block of `k`) rather than overwrite it.
    add: bool,
    /// Fetch the columns of `B` ahead (read in place).
    ahead: bool,
    /// Fetch the packed filters ahead: this block of `A` is read for the first time.
    fetch_a: bool,
}

impl Tile {
    /// # Safety
    /// AVX2 and FMA; both panels hold `kc` steps; rows `..S` lie in the first, `S..R` in
    /// the next; the tile's columns are whole vectors of `C`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const R: usize, const S: usize, const V: usize>(&self) {
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        let (mut a, mut next, mut b) = (self.a, self.next, self.b);
        for _ in 0..self.kc {
            let bv: [__m256; V] = std::array::from_fn(|v| _mm256_loadu_ps(b.add(L * v)));
            if self.ahead {
                _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(AHEAD_IN_PLACE) as *const i8);
            }
            if self.fetch_a {
                _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(AHEAD_A) as *const i8);
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
            b = b.add(self.ldb);
        }
        for (i, lane) in acc.iter().enumerate().take(self.rows) {
            let out = self.c.add(i * self.ldc);
            // The same line of the next panel, for writing, where the writes are most of the
            // work (a short `k`): `C`'s rows are as many streams as the tile has rows (half
            // the time of a 1x1 convolution of 96 filters over 16 channels of 56x56, out of
            // cache). With a long `k` the lines fetched ahead only crowd L1 (resnet18's 3x3
            // layers were 10-30% slower).
            if self.kc <= SHORT_K {
                _mm_prefetch::<_MM_HINT_ET0>(out.wrapping_add(NR) as *const i8);
            }
            for (v, x) in lane.iter().enumerate() {
                let p = out.add(L * v);
                let value = if self.add {
                    _mm256_add_ps(_mm256_loadu_ps(p), *x)
                } else {
                    *x
                };
                _mm256_storeu_ps(p, value);
            }
        }
    }
}
