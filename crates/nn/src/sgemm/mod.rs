//! The product under every dense convolution, `C = A * B` with the filters as `A` (`M x K`)
//! and the lowered ifmap as `B` (`K x N`), on our own kernels where the CPU has AVX-512
//! (16-lane FMAs; the `gemm` crate's AVX-512 kernels need a nightly compiler) or AVX2 with
//! FMA (8 lanes: the AMD EPYC machines, where the `gemm` crate packed both operands on
//! every call), else on the `gemm` crate.
//!
//! Every output is summed in one order whatever the shape of the call: from zero, `k`
//! ascending, one fused multiply-add a term, in blocks of [`KC`] added to the running
//! value. So a split of `M` (the batch-1 split over two cores) or of `N` (samples lowered
//! side by side) leaves every bit as it was, and both kernels give the same bits.

use crate::kernels::{matmul, plain};

/// Steps of `k` per pass: a packed `KC x NR` panel of `B` (48 KiB) stays in L1/L2 while
/// every packed row panel of `A` streams past it.
pub(crate) const KC: usize = 256;
/// Rows of `A` (and `C`) per packed panel: AVX-512 runs 8 x 3 accumulators, 3 loads of `B`
/// a step; AVX2 tiles of 6 x 2 that may straddle two panels.
const MR: usize = 8;
/// Columns of `B` per packed panel: three 16-lane vectors (six 8-lane ones).
const NR: usize = 48;

/// The instruction set our kernels run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Avx512,
    /// AVX2 with FMA.
    Avx2,
}

/// Our kernels' instruction set on this CPU, `None` where the `gemm` crate runs instead.
/// `JOULE_ISA=avx2` makes an AVX-512 machine choose as an AVX2 one (its kernels and their
/// choices), so that one machine tests both families (`scripts/test.sh` runs joule-nn's
/// tests both ways); outputs are the same bits either way except where the choices differ
/// (Winograd runs on AVX2 machines only).
fn isa() -> Option<Isa> {
    #[cfg(target_arch = "x86_64")]
    {
        static AVX2_WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let avx2_wanted =
            *AVX2_WANTED.get_or_init(|| std::env::var("JOULE_ISA").is_ok_and(|v| v == "avx2"));
        // Both are cached by the standard library after the first call.
        if std::arch::is_x86_feature_detected!("avx512f") && !avx2_wanted {
            return Some(Isa::Avx512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(Isa::Avx2);
        }
    }
    None
}

/// The right-hand side `B` (`k x n`) of a product.
#[derive(Clone, Copy)]
enum Rhs<'a> {
    /// Row-major.
    Plain(&'a [f32]),
    /// Packed by [`pack_columns`].
    Packed(&'a [f32]),
    /// Row `j` is the `n` values from `offsets[j]` on (a convolution's lowered ifmap read
    /// where it lies: [`product_rows`]).
    Rows(&'a [f32], &'a [usize]),
}

thread_local! {
    /// The packed panels of `A` and `B`, kept per thread between calls.
    static PACKED: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Whether the AVX2 kernels run here (AVX2 and FMA, no AVX-512): the convolution's choices
/// measured on those machines (the direct kernel for few input channels, no side-by-side
/// lowering) follow from it.
pub(crate) fn avx2_only() -> bool {
    isa() == Some(Isa::Avx2)
}

/// Whether the AVX-512 kernels run here.
pub(crate) fn avx512() -> bool {
    isa() == Some(Isa::Avx512)
}

/// `f32` lanes of the vectors the kernels run here: 16 on AVX-512 machines, else 8 (AVX2's,
/// which the scalar fallbacks' layouts follow too).
pub(crate) fn vector_lanes() -> usize {
    if avx512() {
        16
    } else {
        8
    }
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
    /// `None` where [`product`] does not run its own kernel (neither AVX-512 nor AVX2).
    pub(crate) fn new(m: usize, k: usize, a: &[f32]) -> Option<PackedFilters> {
        assert!(a.len() >= m * k);
        #[cfg(target_arch = "x86_64")]
        if k > 0 && m > 0 && isa().is_some() {
            let mut data = vec![0.0; m.div_ceil(MR) * MR * k];
            // SAFETY: the CPU has AVX-512F or AVX2 (and so AVX); `data` holds the layout.
            unsafe { pack::pack(m, k, a, &mut data) };
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

/// Columns of `B` per packed panel.
pub(crate) const PANEL_COLUMNS: usize = NR;

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
    let b = if b_packed {
        assert!(b.len() >= columns_len(a.k, n));
        Rhs::Packed(b)
    } else {
        assert!(b.len() >= a.k * n);
        Rhs::Plain(b)
    };
    run_packed(a, rows, n, b, c)
}

/// [`product_packed`] on a `B` given by its rows: row `j` is `b[offsets[j]..][..n]` (the
/// ifmap of a stride-1 convolution in zero-bordered planes, each tap's row a shifted window
/// of one plane: lowered without a copy of its own). Every bit as [`product_packed`] gives on
/// those rows gathered.
pub(crate) fn product_rows(
    a: &PackedFilters,
    rows: std::ops::Range<usize>,
    n: usize,
    b: &[f32],
    offsets: &[usize],
    c: &mut [f32],
) {
    assert!(offsets.len() == a.k);
    assert!(offsets.iter().all(|&o| o + n <= b.len()));
    if isa() == Some(Isa::Avx2) {
        return run_packed(a, rows, n, Rhs::Rows(b, offsets), c);
    }
    // The AVX-512 kernel reads B row-major: the rows gathered first.
    let mut gathered = vec![0.0; a.k * n];
    for (row, &o) in gathered.chunks_exact_mut(n.max(1)).zip(offsets) {
        row.copy_from_slice(&b[o..o + n]);
    }
    run_packed(a, rows, n, Rhs::Plain(&gathered), c)
}

fn run_packed(a: &PackedFilters, rows: std::ops::Range<usize>, n: usize, b: Rhs, c: &mut [f32]) {
    assert!(rows.start.is_multiple_of(MR) && rows.start <= rows.end && rows.end <= a.m);
    assert!(c.len() >= rows.len() * n);
    // SAFETY: `c` holds the rows' `n` columns.
    unsafe { run_columns(a, rows, 0..n, n, b, c.as_mut_ptr()) }
}

/// Columns `cols` of [`run_packed`]'s product (starting at a multiple of [`NR`]); `c` points
/// at the first of `rows`, `n` apart.
///
/// # Safety
/// `c` holds `rows.len() x n` values, of which this writes only columns `cols`; `b` holds
/// what its variant says for `a.k` steps and `n` columns; `rows` is as [`run_packed`] takes.
unsafe fn run_columns(
    a: &PackedFilters,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    n: usize,
    b: Rhs,
    c: *mut f32,
) {
    debug_assert!(cols.start.is_multiple_of(NR) && cols.end <= n);
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let mut pb = PACKED.take();
        if pb.len() < KC * NR {
            pb.resize(KC * NR, 0.0);
        }
        let (m, k) = (a.m, a.k);
        // SAFETY: `a` exists only where `isa` found one of them; the callers' asserts bound
        // every element of B read and of C written; `pb` holds a panel of B.
        unsafe {
            match (isa().expect("packed filters exist only with a kernel"), b) {
                (Isa::Avx512, Rhs::Plain(b)) => {
                    avx512::run(m, &a.data, rows, cols, n, k, b, false, false, c, &mut pb)
                }
                (Isa::Avx512, Rhs::Packed(b)) => {
                    avx512::run(m, &a.data, rows, cols, n, k, b, true, false, c, &mut pb)
                }
                (Isa::Avx512, Rhs::Rows(..)) => unreachable!("gathered for AVX-512"),
                (Isa::Avx2, b) => avx2::run(m, &a.data, rows, cols, n, k, b, false, c, &mut pb),
            }
        };
        PACKED.set(pb);
    }
}

/// [`product_columns`] on every row of `a`, its `n` columns in two halves (on a panel
/// boundary) that rayon may run on two cores; `finish(row, values)` then runs on each half's
/// part of each row (the epilogue). Same bits as [`product_columns`]: each output is summed
/// the same way, whichever half holds it.
pub(crate) fn product_columns_halves(
    a: &PackedFilters,
    n: usize,
    columns: &[f32],
    c: &mut [f32],
    finish: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    assert!(columns.len() >= columns_len(a.k, n) && c.len() >= a.m * n);
    /// `C`, whose halves of columns the two tasks write.
    struct Out(*mut f32);
    // SAFETY: the tasks write disjoint columns of `C`, borrowed mutably for both.
    unsafe impl Sync for Out {}
    let out = Out(c.as_mut_ptr());
    let half = (n.div_ceil(NR).div_ceil(2) * NR).min(n);
    let part = |cols: std::ops::Range<usize>| {
        let out = &out;
        // SAFETY: `c` holds `m x n` values (asserted); this task writes, and then lends to
        // `finish`, only its columns of each row, which the other task never touches.
        unsafe {
            run_columns(a, 0..a.m, cols.clone(), n, Rhs::Packed(columns), out.0);
            for row in 0..a.m {
                let at = out.0.add(row * n + cols.start);
                finish(row, std::slice::from_raw_parts_mut(at, cols.len()));
            }
        }
    };
    rayon::join(|| part(0..half), || part(half..n));
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
                copy_panel_row(&row[n0..n0 + nr], dst);
            }
        });
}

/// `src` (at most [`NR`] values) into the first lanes of `dst` ([`NR`] values), zeros after:
/// vector moves where AVX2 is there (a library call per row was 5% of mobilenet_v2's batch-1
/// time in [`pack_columns`]).
fn copy_panel_row(src: &[f32], dst: &mut [f32]) {
    assert!(src.len() <= NR && dst.len() == NR);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2; the lengths are asserted.
        unsafe { avx2::copy_panel_row(src, dst) };
        return;
    }
    dst[..src.len()].copy_from_slice(src);
    dst[src.len()..].fill(0.0);
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
    if let (true, Some(isa)) = (k > 0 && m > 0 && n > 0, isa()) {
        let mut packed = PACKED.take();
        let pa_len = m.div_ceil(MR) * MR * k;
        if packed.len() < pa_len + KC * NR {
            packed.resize(pa_len + KC * NR, 0.0);
        }
        let (pa, pb) = packed.split_at_mut(pa_len);
        let c = c.as_mut_ptr();
        // SAFETY: the CPU has the kernel's instruction set; the assert bounds every element
        // the kernel reads or writes (lanes past a row's end are masked off); `pa` holds the
        // packed layout and `pb` one packed panel of B.
        unsafe {
            pack::pack(m, k, a, pa);
            match isa {
                Isa::Avx512 => avx512::run(m, pa, 0..m, 0..n, n, k, b, false, accumulate, c, pb),
                Isa::Avx2 => avx2::run(m, pa, 0..m, 0..n, n, k, Rhs::Plain(b), accumulate, c, pb),
            }
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
    if let Some(isa) = isa() {
        // SAFETY: the CPU has the kernel's instruction set; the assert bounds every element
        // read or written.
        unsafe {
            match isa {
                Isa::Avx512 => avx512::gemv(m, k, w, x, y),
                Isa::Avx2 => avx2::gemv(m, k, w, x, y),
            }
        }
        return;
    }
    matmul(m, 1, k, plain(w), plain(x), y, false, false);
}

/// Whether [`product`] runs its own kernel here (else the `gemm` crate's).
pub(crate) fn has_kernel() -> bool {
    isa().is_some()
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod pack;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::first_lanes;
#[cfg(target_arch = "x86_64")]
pub(crate) use pack::transpose8;

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the definition in f64, for shapes that hit every remainder of the blocking
    /// (rows past a multiple of 8, columns past 8, 16, 32 and 48 by 1 to 7, `k` past a multiple of [`KC`]
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
            // Thirteen row panels: the last columns (1, 2, 3 and 5 past whole vectors) in
            // every group of panels the AVX2 kernel takes them in, and a last lone row; 7 as
            // 4 + 3.
            (97, 9, 520),
            (100, 23, 40),
            (100, 26, 300),
            (100, 11, 300),
            (100, 45, 30),
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
            // Every machine this project runs on has one (x86-64 with AVX2 or AVX-512).
            assert!(
                has_kernel(),
                "no AVX2 or AVX-512: the `gemm` crate's product only"
            );
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
            let packed = PackedFilters::new(m, k, &a).expect("a kernel");
            assert_eq!((packed.rows(), packed.depth()), (m, k));
            let mut whole = vec![f32::NAN; m * n];
            product_packed(&packed, 0..m, n, &b, &mut whole);
            assert_eq!(whole, c, "{m}x{n}x{k} packed");
            let mut columns = vec![f32::NAN; columns_len(k, n)];
            pack_columns(k, n, &b, &mut columns);
            whole.fill(f32::NAN);
            product_columns(&packed, 0..m, n, &columns, &mut whole);
            assert_eq!(whole, c, "{m}x{n}x{k} both packed");
            // Columns in halves, each half of a row finished (here: plus its row) once.
            whole.fill(f32::NAN);
            let finish =
                |row: usize, values: &mut [f32]| values.iter_mut().for_each(|v| *v += row as f32);
            product_columns_halves(&packed, n, &columns, &mut whole, &finish);
            let finished: Vec<f32> = c
                .iter()
                .enumerate()
                .map(|(i, v)| v + (i / n) as f32)
                .collect();
            assert_eq!(whole, finished, "{m}x{n}x{k} columns in halves");
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
