//! The product under every dense convolution, `C = A * B` with the filters as `A` (`M x K`)
//! and the lowered ifmap as `B` (`K x N`), on AVX-512 where the CPU has it (16-lane FMAs;
//! the `gemm` crate's AVX-512 kernels need a nightly compiler, so on stable it runs 8-lane
//! AVX2 ones), else on the `gemm` crate.
//!
//! Every output is summed in one order whatever the shape of the call: from zero, `k`
//! ascending, one fused multiply-add a term, in blocks of [`KC`] added to the running
//! value. So a split of `M` (the batch-1 split over two cores) or of `N` (samples lowered
//! side by side) leaves every bit as it was.

use crate::kernels::{matmul, plain};

/// Steps of `k` per pass: a packed `KC x NR` panel of `B` (48 KiB) stays in L1/L2 while
/// every packed row panel of `A` streams past it.
const KC: usize = 256;
/// Rows of `A` (and `C`) per microkernel: 8 x 3 accumulators, 3 loads of `B` a step.
const MR: usize = 8;
/// Columns of `C` per microkernel: three 16-lane vectors.
const NR: usize = 48;

thread_local! {
    /// The packed panels of `A` and `B`, kept per thread between calls.
    static PACKED: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `A` (`m x k`, the filters) packed once for [`product_packed`]: a layer's weights do not
/// change between inference passes, and packing them on every call cost a third of
/// resnet18's batch-1 time. Layout: for each block of [`KC`] steps of `k` (starting at `k0`,
/// at `panels * MR * k0`), the `ceil(m / MR)` row panels, each `kc x MR` (rows past `m` zero).
#[derive(Clone, Debug)]
pub(crate) struct PackedFilters {
    m: usize,
    k: usize,
    data: Vec<f32>,
}

impl PackedFilters {
    /// `None` where [`product`] does not run its own kernel (no AVX-512).
    pub(crate) fn new(m: usize, k: usize, a: &[f32]) -> Option<PackedFilters> {
        assert!(a.len() >= m * k);
        #[cfg(target_arch = "x86_64")]
        if k > 0 && m > 0 && std::arch::is_x86_feature_detected!("avx512f") {
            let mut data = vec![0.0; m.div_ceil(MR) * MR * k];
            // SAFETY: the CPU has AVX-512F (and so AVX); `data` holds the packed layout.
            unsafe { avx512::pack(m, k, a, &mut data) };
            return Some(PackedFilters { m, k, data });
        }
        None
    }

    /// Rows of `A`.
    pub(crate) fn rows(&self) -> usize {
        self.m
    }

    /// Columns of `A` (steps of `k`).
    pub(crate) fn depth(&self) -> usize {
        self.k
    }
}

/// Rows of `A` per packed panel: a split of the rows for [`product_packed`] starts at a
/// multiple of this.
pub(crate) const PANEL_ROWS: usize = MR;

/// `c (rows x n) = a[rows] * b (k x n)`: rows `rows` of the packed `a` (starting at a
/// multiple of [`PANEL_ROWS`]), `c` holding just those rows. Every bit as [`product`] gives.
pub(crate) fn product_packed(
    a: &PackedFilters,
    rows: std::ops::Range<usize>,
    n: usize,
    b: &[f32],
    c: &mut [f32],
) {
    packed_product(a, rows, n, b, false, c)
}

/// [`product_packed`] on a right-hand side already packed by [`pack_columns`]: when several
/// products read one (the two halves of a batch-1 convolution), it is packed once.
pub(crate) fn product_columns(
    a: &PackedFilters,
    rows: std::ops::Range<usize>,
    n: usize,
    columns: &[f32],
    c: &mut [f32],
) {
    packed_product(a, rows, n, columns, true, c)
}

fn packed_product(
    a: &PackedFilters,
    rows: std::ops::Range<usize>,
    n: usize,
    b: &[f32],
    b_packed: bool,
    c: &mut [f32],
) {
    assert!(rows.start.is_multiple_of(MR) && rows.start <= rows.end && rows.end <= a.m);
    let b_len = if b_packed {
        columns_len(a.k, n)
    } else {
        a.k * n
    };
    assert!(b.len() >= b_len && c.len() >= rows.len() * n);
    if rows.is_empty() || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let mut pb = PACKED.take();
        if !b_packed && pb.len() < KC * NR {
            pb.resize(KC * NR, 0.0);
        }
        let (m, k) = (a.m, a.k);
        // SAFETY: `a` exists only where the CPU has AVX-512F; the asserts bound every
        // element read or written; `pb` holds a panel of B where B is packed here.
        unsafe {
            avx512::run(
                m,
                &a.data,
                rows,
                n,
                k,
                b,
                b_packed,
                false,
                c.as_mut_ptr(),
                &mut pb,
            )
        };
        PACKED.set(pb);
    }
}

/// Values [`pack_columns`] writes for a `k x n` matrix.
pub(crate) fn columns_len(k: usize, n: usize) -> usize {
    n.div_ceil(NR) * NR * k
}

/// `b` (`k x n`, row-major) in panels of [`NR`] columns, as [`product_columns`] reads it:
/// panel `j` (at `j * NR * k`) holds columns `j NR..` of every row, `NR` apart, zero past
/// `n`.
pub(crate) fn pack_columns(k: usize, n: usize, b: &[f32], out: &mut [f32]) {
    use rayon::prelude::*;
    assert!(b.len() >= k * n && out.len() >= columns_len(k, n));
    if k == 0 {
        return;
    }
    // Panels in parallel (a batch-1 layer's packing kept one core waiting).
    out[..columns_len(k, n)]
        .par_chunks_exact_mut(NR * k)
        .enumerate()
        .with_min_len(4)
        .for_each(|(j, panel)| {
            let (n0, nr) = (j * NR, NR.min(n - j * NR));
            for (row, dst) in b.chunks_exact(n).zip(panel.chunks_exact_mut(NR)) {
                dst[..nr].copy_from_slice(&row[n0..n0 + nr]);
                dst[nr..].fill(0.0);
            }
        });
}

/// `c (m x n) = a (m x k) * b (k x n)`, all row-major and contiguous.
pub(crate) fn product(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    product_into(m, n, k, a, b, c, false)
}

/// `c (m x n) += a (m x k) * b (k x n)`: [`product`]'s sums added to `c` block by block of
/// `k` (a weight gradient summed over the samples of a chunk in place).
pub(crate) fn product_add(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    product_into(m, n, k, a, b, c, true)
}

fn product_into(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    #[cfg(target_arch = "x86_64")]
    if k > 0 && m > 0 && n > 0 && std::arch::is_x86_feature_detected!("avx512f") {
        let mut packed = PACKED.take();
        let pa_len = m.div_ceil(MR) * MR * k;
        if packed.len() < pa_len + KC * NR {
            packed.resize(pa_len + KC * NR, 0.0);
        }
        let (pa, pb) = packed.split_at_mut(pa_len);
        // SAFETY: the CPU has AVX-512F; the assert bounds every element the kernel reads or
        // writes (lanes past a row's end are masked off); `pa` holds the packed layout and
        // `pb` one packed panel of B.
        unsafe {
            avx512::pack(m, k, a, pa);
            avx512::run(m, pa, 0..m, n, k, b, false, accumulate, c.as_mut_ptr(), pb);
        }
        PACKED.set(packed);
        return;
    }
    matmul(m, n, k, plain(a), plain(b), c, accumulate, false);
}

/// `y (m) = w (m x k, row-major) * x (k)`: one sample through an FC layer. Each output is
/// summed in 16 lanes (`k` ascending in each, lanes added pairwise at the end), four rows
/// at a time sharing each load of `x`; the weights stream through once, which is the cost
/// (the `gemm` crate ran it as a 1-column product: a fifth of vgg-small's batch-1 time).
pub(crate) fn gemv(m: usize, k: usize, w: &[f32], x: &[f32], y: &mut [f32]) {
    assert!(w.len() >= m * k && x.len() >= k && y.len() >= m);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; the assert bounds every element read or written.
        unsafe { avx512::gemv(m, k, w, x, y) };
        return;
    }
    matmul(m, 1, k, plain(w), plain(x), y, false, false);
}

/// Whether [`product`] runs its own AVX-512 kernel here (else the `gemm` crate's).
#[cfg(test)]
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[allow(unreachable_code)]
    false
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
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

    /// Packs `a` (`m x k`) into the layout [`super::PackedFilters`] describes.
    ///
    /// # Safety
    /// AVX; `a` holds `m * k` values, `pa` `ceil(m / MR) * MR * k`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn pack(m: usize, k: usize, a: &[f32], pa: &mut [f32]) {
        let panels = m.div_ceil(MR);
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            for p in 0..panels {
                let panel = &mut pa[panels * MR * k0 + p * MR * kc..][..MR * kc];
                let rows = MR.min(m - p * MR);
                let row = |i: usize| &a[(p * MR + i) * k + k0..][..kc];
                let mut kk = 0;
                if rows == MR {
                    // Eight steps of k at a time: 8 rows x 8 values, transposed in registers
                    // (element-wise stores here compiled to scatters: a third of the time).
                    while kk + 8 <= kc {
                        let r: [__m256; 8] =
                            std::array::from_fn(|i| _mm256_loadu_ps(row(i).as_ptr().add(kk)));
                        for (j, v) in transpose8(r).into_iter().enumerate() {
                            _mm256_storeu_ps(panel.as_mut_ptr().add((kk + j) * MR), v);
                        }
                        kk += 8;
                    }
                }
                for kk in kk..kc {
                    for i in 0..MR {
                        panel[kk * MR + i] = if i < rows { row(i)[kk] } else { 0.0 };
                    }
                }
            }
        }
    }

    /// Rows of an 8 x 8 block as its columns.
    #[target_feature(enable = "avx")]
    #[inline]
    unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }

    /// `c = A[rows] * b` on `A` packed by [`pack`] (`m` rows in all); `c` points at the first
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the definition in f64, for shapes that hit every remainder of the blocking
    /// (rows past a multiple of 8, columns past 16, 32 and 48, `k` past a multiple of [`KC`]
    /// and of the 8-step transposes, `B` read in place for up to 16 rows and packed beyond);
    /// filters packed once give the same bits, whole or from a later panel; and a split of
    /// the rows or the columns changes no bit.
    #[test]
    fn product_matches_the_definition_and_splits_change_no_bit() {
        for (m, n, k) in [
            (1, 1, 1),
            (7, 33, 5),
            (6, 16, 9),
            (13, 47, 400),
            (12, 100, 800),
            (17, 3, 1),
            (30, 70, 300),
            (25, 49, 256),
            (40, 20, 523),
            (64, 16, 4608),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37) % 19) as f32 / 9.0 - 1.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53) % 23) as f32 / 11.0 - 1.0)
                .collect();
            let mut c = vec![f32::NAN; m * n];
            product(m, n, k, &a, &b, &mut c);
            for i in 0..m {
                for j in 0..n {
                    let terms = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64);
                    let want: f64 = terms.clone().sum();
                    // f32 rounding grows with the terms' magnitudes, not with the sum's.
                    let scale: f64 = terms.map(f64::abs).sum();
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - want).abs() <= 1e-6 * scale.max(1.0),
                        "{m}x{n}x{k} [{i},{j}]: {got} against {want}"
                    );
                }
            }
            if !has_avx512() {
                continue;
            }
            // Added to what `c` holds: c + a b, the sums in the same order.
            let mut twice = c.clone();
            product_add(m, n, k, &a, &b, &mut twice);
            for (t, v) in twice.iter().zip(&c) {
                assert!(
                    (t - 2.0 * v).abs() <= 1e-5 * v.abs().max(1.0),
                    "{m}x{n}x{k} add"
                );
            }
            // One column: the matrix-vector kernel, against the definition.
            let mut v = vec![f32::NAN; m];
            gemv(m, k, &a, &b[..k], &mut v);
            for (i, got) in v.iter().enumerate() {
                let terms = (0..k).map(|p| a[i * k + p] as f64 * b[p] as f64);
                let (want, scale) = (terms.clone().sum::<f64>(), terms.map(f64::abs).sum::<f64>());
                let err = (*got as f64 - want).abs();
                assert!(
                    err <= 1e-6 * scale.max(1.0),
                    "gemv {m}x{k} [{i}]: {got} against {want}"
                );
            }
            // Filters packed once, whole and from their second panel on.
            let packed = PackedFilters::new(m, k, &a).expect("AVX-512");
            assert_eq!((packed.rows(), packed.depth()), (m, k));
            let mut whole = vec![f32::NAN; m * n];
            product_packed(&packed, 0..m, n, &b, &mut whole);
            assert_eq!(whole, c, "{m}x{n}x{k} packed");
            let mut columns = vec![f32::NAN; columns_len(k, n)];
            pack_columns(k, n, &b, &mut columns);
            whole.fill(f32::NAN);
            product_columns(&packed, 0..m, n, &columns, &mut whole);
            assert_eq!(whole, c, "{m}x{n}x{k} both packed");
            if m > PANEL_ROWS {
                let mut tail = vec![f32::NAN; (m - PANEL_ROWS) * n];
                product_columns(&packed, PANEL_ROWS..m, n, &columns, &mut tail);
                assert_eq!(tail, c[PANEL_ROWS * n..], "{m}x{n}x{k} both packed, tail");
                product_packed(&packed, PANEL_ROWS..m, n, &b, &mut tail);
                assert_eq!(tail, c[PANEL_ROWS * n..], "{m}x{n}x{k} packed tail");
            }
            // Rows split: the lower half alone.
            let top = m / 2;
            let mut lower = vec![0f32; (m - top) * n];
            product(m - top, n, k, &a[top * k..], &b, &mut lower);
            assert_eq!(lower, c[top * n..], "{m}x{n}x{k} rows");
            // Columns split: the first column alone.
            let b0: Vec<f32> = (0..k).map(|p| b[p * n]).collect();
            let mut c0 = vec![0f32; m];
            product(m, 1, k, &a, &b0, &mut c0);
            let first: Vec<f32> = (0..m).map(|i| c[i * n]).collect();
            assert_eq!(c0, first, "{m}x{n}x{k} columns");
        }
    }
}
