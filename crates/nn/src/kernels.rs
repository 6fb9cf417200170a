//! The dense kernels under every layer: matrix products on the `gemm` crate, and the
//! im2col / col2im lowering that turns a convolution into one.

use gemm::Parallelism;
use std::cell::Cell;

pub(crate) mod blocks;
mod depthwise;
pub(crate) mod pointwise;
pub(crate) use depthwise::{interleave_taps, CHANNELS};

thread_local! {
    /// One scratch buffer per thread (im2col's lowered matrix), kept between calls.
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Values of scratch buffer a thread keeps between calls (16 MiB); a larger one, for a big
/// network's early layers, is freed after use.
const SCRATCH_KEPT: usize = 4 << 20;

/// Runs `f` on this thread's scratch buffer cut to `len` values (their contents are
/// whatever an earlier call left). A nested call gets a fresh buffer.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buffer = SCRATCH.take();
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    let result = f(&mut buffer[..len]);
    if buffer.len() <= SCRATCH_KEPT {
        SCRATCH.set(buffer);
    }
    result
}

/// Runs `f` compiled for AVX-512 where the CPU has it, else for AVX2 (the loops inside then
/// vectorise 16 or 8 lanes wide instead of the baseline's 4; the same operations, so the
/// same bits: Rust never fuses a multiply and an add on its own). `f` must be an
/// `#[inline(always)]` closure: one compiled on its own is baseline code.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            #[target_feature(enable = "avx512f")]
            #[inline]
            unsafe fn run<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: the CPU has AVX-512F.
            return unsafe { run(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            #[inline]
            unsafe fn run<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: the CPU has AVX2.
            return unsafe { run(f) };
        }
    }
    f()
}

/// Row-major matrix operand: `data` holds `rows x cols` (or its transpose when `transposed`).
#[derive(Clone, Copy)]
pub(crate) struct Operand<'a> {
    pub data: &'a [f32],
    pub transposed: bool,
}

pub(crate) fn plain(data: &[f32]) -> Operand<'_> {
    Operand {
        data,
        transposed: false,
    }
}

pub(crate) fn transposed(data: &[f32]) -> Operand<'_> {
    Operand {
        data,
        transposed: true,
    }
}

/// `c (m x n) = [c +] a (m x k) * b (k x n)`, all row-major. `parallel` lets `gemm` split the
/// product over rayon's threads (used for FC layers, whose batch is one product).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: Operand,
    b: Operand,
    c: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    assert!(a.data.len() >= m * k && b.data.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // (row stride, column stride) of each operand.
    let (a_rs, a_cs) = if a.transposed { (1, m) } else { (k, 1) };
    let (b_rs, b_cs) = if b.transposed { (1, k) } else { (n, 1) };
    let parallelism = if parallel && m * n * k >= 1 << 16 && rayon::current_num_threads() > 1 {
        Parallelism::Rayon(rayon::current_num_threads())
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above guarantee every index the strides reach lies inside the
    // slices; `c` is borrowed mutably so it does not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.data.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Geometry of one convolution group on one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub p: usize,
    pub q: usize,
    pub r: usize,
    pub s: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
}

impl ConvGeometry {
    /// Rows of the lowered matrix: `C * R * S`.
    pub fn col_rows(&self) -> usize {
        self.c * self.r * self.s
    }

    pub fn col_len(&self) -> usize {
        self.col_rows() * self.p * self.q
    }

    /// Whether the ifmap already is its lowered matrix (1x1, stride 1, no padding).
    pub fn is_pointwise(&self) -> bool {
        self.r == 1
            && self.s == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && self.p == self.h
            && self.q == self.w
    }

    /// Lowers `x` (`C x H x W`) into `col` (`CRS x PQ`). Rows and columns that fall in the
    /// padding are zero; the rest are copied a line at a time.
    pub fn im2col(&self, x: &[f32], col: &mut [f32]) {
        self.im2col_strided(x, col, self.p * self.q);
    }

    /// [`im2col`](Self::im2col) into rows `row_stride` values apart: row `k` of the lowered
    /// matrix is `col[k * row_stride..][..PQ]`, so that several samples lowered side by side
    /// (each from its own offset) form one wide matrix for a single product.
    pub fn im2col_strided(&self, x: &[f32], col: &mut [f32], row_stride: usize) {
        let (q, pq) = (self.q, self.p * self.q);
        assert!(row_stride >= pq && col.len() >= (self.col_rows() - 1) * row_stride + pq);
        for c in 0..self.c {
            let plane = &x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for r in 0..self.r {
                let rows = self.rows(r);
                for s in 0..self.s {
                    let columns = self.columns(s);
                    let row = ((c * self.r + r) * self.s + s) * row_stride;
                    let dst = &mut col[row..row + pq];
                    zero(&mut dst[..rows.lo * q]);
                    zero(&mut dst[rows.hi * q..]);
                    if self.stride_h == 1
                        && self.stride_w == 1
                        && !rows.is_empty()
                        && !columns.is_empty()
                    {
                        // Consecutive lines read consecutive ifmap rows.
                        let lines = &mut dst[rows.lo * q..rows.hi * q];
                        let sources = &plane[rows.source(rows.lo) * self.w..];
                        copy_lines(lines, q, sources, self.w, &columns);
                        continue;
                    }
                    for p in rows.lo..rows.hi {
                        let line = &mut dst[p * q..(p + 1) * q];
                        zero(&mut line[..columns.lo]);
                        zero(&mut line[columns.hi..]);
                        if columns.is_empty() {
                            continue;
                        }
                        let y = rows.source(p);
                        let src = &plane[y * self.w..(y + 1) * self.w];
                        let x0 = columns.source(columns.lo);
                        let inside = &mut line[columns.lo..columns.hi];
                        if self.stride_w == 1 {
                            inside.copy_from_slice(&src[x0..x0 + inside.len()]);
                        } else {
                            for (v, x) in inside.iter_mut().zip((x0..).step_by(self.stride_w)) {
                                *v = src[x];
                            }
                        }
                    }
                }
            }
        }
    }

    /// The spans of every kernel row and column, computed once per layer for
    /// [`depthwise`](Self::depthwise).
    pub fn taps(&self) -> Taps {
        Taps {
            rows: (0..self.r).map(|r| self.rows(r)).collect(),
            columns: (0..self.s).map(|s| self.columns(s)).collect(),
        }
    }

    /// Depthwise convolution of one channel, computed directly: `y` (`P x Q`) = `x` (`H x W`)
    /// correlated with `filter` (`R x S`), each output the sum over `r`, then `s`, of
    /// `filter[r][s] * x[..]` (padding contributes nothing). One output row at a time stays
    /// in L1 while every kernel tap adds its shifted input line into it; no lowered matrix
    /// (im2col of a single channel feeds a 1-row product, mostly overhead).
    pub fn depthwise(&self, taps: &Taps, x: &[f32], filter: &[f32], y: &mut [f32]) {
        debug_assert!(self.c == 1 && filter.len() == self.r * self.s);
        assert!(x.len() >= self.h * self.w && y.len() >= self.p * self.q);
        #[cfg(target_arch = "x86_64")]
        if self.stride_w <= 2 {
            let avx512 = std::arch::is_x86_feature_detected!("avx512f");
            if avx512
                || std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            {
                let (hp, wp) = self.padded_plane();
                // Nested inside another scratch user, this gets (and frees) a buffer of its own.
                with_scratch(hp * wp, |padded| {
                    self.pad(x, padded, wp);
                    // SAFETY: the CPU has AVX-512F, or AVX2 and FMA; the assert bounds the
                    // planes; `padded` holds the padded plane.
                    unsafe {
                        if avx512 {
                            self.depthwise_avx512(filter, padded, wp, y)
                        } else {
                            self.depthwise_avx2(filter, padded, wp, y)
                        }
                    };
                });
                return;
            }
        }
        let q = self.q;
        let (rows, columns) = (&taps.rows, &taps.columns);
        for (p, line) in y[..self.p * q].chunks_exact_mut(q).enumerate() {
            line.fill(0.0);
            for (r, rs) in rows.iter().enumerate() {
                if p < rs.lo || p >= rs.hi {
                    continue;
                }
                let src = &x[rs.source(p) * self.w..][..self.w];
                for (s, cs) in columns.iter().enumerate() {
                    if cs.is_empty() {
                        continue;
                    }
                    let k = filter[r * self.s + s];
                    let x0 = cs.source(cs.lo);
                    let dst = &mut line[cs.lo..cs.hi];
                    if self.stride_w == 1 {
                        for (d, v) in dst.iter_mut().zip(&src[x0..]) {
                            *d += k * v;
                        }
                    } else {
                        for (d, v) in dst.iter_mut().zip(src[x0..].iter().step_by(self.stride_w)) {
                            *d += k * v;
                        }
                    }
                }
            }
        }
    }

    /// Adds the lowered gradient `col` (`CRS x PQ`) back into `dx` (`C x H x W`).
    pub fn col2im(&self, col: &[f32], dx: &mut [f32]) {
        let (q, pq) = (self.q, self.p * self.q);
        for c in 0..self.c {
            let plane = &mut dx[c * self.h * self.w..(c + 1) * self.h * self.w];
            for r in 0..self.r {
                let rows = self.rows(r);
                for s in 0..self.s {
                    let columns = self.columns(s);
                    if columns.is_empty() {
                        continue;
                    }
                    let row = ((c * self.r + r) * self.s + s) * pq;
                    let src = &col[row..row + pq];
                    for p in rows.lo..rows.hi {
                        let y = rows.source(p);
                        let line = &src[p * q + columns.lo..p * q + columns.hi];
                        let dst = &mut plane[y * self.w..(y + 1) * self.w];
                        let x0 = columns.source(columns.lo);
                        if self.stride_w == 1 {
                            // Contiguous: a loop the compiler vectorises.
                            for (d, v) in dst[x0..x0 + line.len()].iter_mut().zip(line) {
                                *d += v;
                            }
                        } else {
                            for (v, x) in line.iter().zip((x0..).step_by(self.stride_w)) {
                                dst[x] += v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The output rows whose ifmap row for kernel row `r` lies inside the ifmap.
    fn rows(&self, r: usize) -> Span {
        Span::new(
            self.p,
            r * self.dilation_h,
            self.stride_h,
            self.pad_top,
            self.h,
        )
    }

    /// The output columns whose ifmap column for kernel column `s` lies inside the ifmap.
    fn columns(&self, s: usize) -> Span {
        Span::new(
            self.q,
            s * self.dilation_w,
            self.stride_w,
            self.pad_left,
            self.w,
        )
    }
}

/// Per kernel row and column, the output rows and columns that read inside the ifmap.
pub(crate) struct Taps {
    rows: Vec<Span>,
    columns: Vec<Span>,
}

/// Fills `lines` (lines of `q` values) from consecutive rows of `sources` (rows of `w`
/// values): line `l`, columns `columns.lo..columns.hi`, reads row `l` from column
/// `columns.source(columns.lo)` on; the other columns are zero (padding).
fn copy_lines(lines: &mut [f32], q: usize, sources: &[f32], w: usize, columns: &Span) {
    let x0 = columns.source(columns.lo);
    let len = columns.hi - columns.lo;
    let count = lines.len() / q;
    assert!(columns.hi <= q && count > 0 && (count - 1) * w + x0 + len <= sources.len());
    #[cfg(target_arch = "x86_64")]
    if q <= 64 {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; the assert above bounds every source lane the
            // masks let through, and every store stays within `lines`.
            unsafe { copy_lines_avx512(lines, q, sources, w, columns.lo, columns.hi, x0) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above, with AVX2.
            unsafe { copy_lines_avx2(lines, q, sources, w, columns.lo, columns.hi, x0) };
            return;
        }
    }
    copy_lines_plain(lines, q, sources, w, columns)
}

/// [`copy_lines`] without vector instructions.
fn copy_lines_plain(lines: &mut [f32], q: usize, sources: &[f32], w: usize, columns: &Span) {
    let x0 = columns.source(columns.lo);
    let len = columns.hi - columns.lo;
    for (line, src) in lines.chunks_exact_mut(q).zip(sources.chunks(w)) {
        zero(&mut line[..columns.lo]);
        line[columns.lo..columns.hi].copy_from_slice(&src[x0..x0 + len]);
        zero(&mut line[columns.hi..]);
    }
}

/// [`copy_lines`] with masked 16-lane loads and stores: a line of up to 64 values is at most
/// four instruction pairs, padding zeros included, instead of a library call or two.
///
/// # Safety
/// The CPU supports AVX-512F; `q <= 64`; `lines.len()` is a multiple of `q`; every row `l`
/// of `sources` has the values `l * w + x0 .. l * w + x0 + (hi - lo)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_lines_avx512(
    lines: &mut [f32],
    q: usize,
    sources: &[f32],
    w: usize,
    lo: usize,
    hi: usize,
    x0: usize,
) {
    use std::arch::x86_64::{_mm512_mask_storeu_ps, _mm512_maskz_loadu_ps};
    let lanes = |from: usize, to: usize| -> u16 {
        // Bits `from..to` of a 16-lane mask (empty when to <= from).
        let ones = |n: usize| if n >= 16 { u16::MAX } else { (1u16 << n) - 1 };
        ones(to) & !ones(from)
    };
    let blocks = q.div_ceil(16);
    let mut store = [0u16; 4];
    let mut load = [0u16; 4];
    for b in 0..blocks {
        let start = 16 * b;
        store[b] = lanes(0, q - start);
        load[b] = lanes(lo.saturating_sub(start), hi.saturating_sub(start)) & store[b];
    }
    let dst = lines.as_mut_ptr();
    // Lane `j` of block `b` of line `l` reads sources[l * w + x0 - lo + 16 * b + j]; only
    // lanes with lo <= 16 * b + j < hi are loaded, so the offset is never negative for them.
    let base = sources.as_ptr().wrapping_add(x0).wrapping_sub(lo);
    for l in 0..lines.len() / q {
        let src = base.wrapping_add(l * w);
        let out = dst.add(l * q);
        for b in 0..blocks {
            let v = _mm512_maskz_loadu_ps(load[b], src.wrapping_add(16 * b));
            _mm512_mask_storeu_ps(out.add(16 * b), store[b], v);
        }
    }
}

/// [`copy_lines_avx512`] in 8-lane vectors: masked loads where a vector has lanes outside
/// the copied columns, and whole stores except at the end
/// of `lines` (AMD's masked stores are slow): a line's last vector spills zeros into the
/// start of the next lines, which are written after it.
///
/// # Safety
/// As [`copy_lines_avx512`], with AVX2 for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn copy_lines_avx2(
    lines: &mut [f32],
    q: usize,
    sources: &[f32],
    w: usize,
    lo: usize,
    hi: usize,
    x0: usize,
) {
    use std::arch::x86_64::*;
    /// Lanes `from..to` of a vector (none when to <= from). A function, not a closure: a
    /// closure is compiled without AVX2 and calls every intrinsic out of line.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn lanes(from: usize, to: usize) -> __m256i {
        let index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let (from, to) = (from.min(8) as i32, to.min(8) as i32);
        let above = _mm256_cmpgt_epi32(index, _mm256_set1_epi32(from - 1));
        _mm256_and_si256(above, _mm256_cmpgt_epi32(_mm256_set1_epi32(to), index))
    }
    let blocks = q.div_ceil(8);
    let mut load = [_mm256_setzero_si256(); 8];
    // Vectors whose lanes all lie in `lo..hi` take a plain load.
    let mut whole = [false; 8];
    for (b, mask) in load.iter_mut().enumerate().take(blocks) {
        let start = 8 * b;
        *mask = lanes(lo.saturating_sub(start), hi.min(q).saturating_sub(start));
        whole[b] = lo <= start && start + 8 <= hi.min(q);
    }
    let dst = lines.as_mut_ptr();
    // Lane `j` of block `b` of line `l` reads sources[l * w + x0 - lo + 8 * b + j], for the
    // lanes with lo <= 8 * b + j < hi only.
    let base = sources.as_ptr().wrapping_add(x0).wrapping_sub(lo);
    for l in 0..lines.len() / q {
        let src = base.wrapping_add(l * w);
        let out = dst.add(l * q);
        for (b, mask) in load.iter().enumerate().take(blocks) {
            let at = src.wrapping_add(8 * b);
            let v = if whole[b] {
                _mm256_loadu_ps(at)
            } else {
                _mm256_maskload_ps(at, *mask)
            };
            // Values of `lines` from this vector on (short lines: several lines a vector).
            let room = lines.len() - l * q - 8 * b;
            if room >= 8 {
                _mm256_storeu_ps(out.add(8 * b), v);
            } else {
                _mm256_maskstore_ps(out.add(8 * b), lanes(0, room), v);
            }
        }
    }
}

/// Zeroes `values`; most calls get none, and those skip the library call.
#[inline]
fn zero(values: &mut [f32]) {
    if !values.is_empty() {
        values.fill(0.0);
    }
}

/// The outputs `lo..hi` (along one axis) whose source `o * stride + offset - pad` lies inside
/// `0..size`; the others read padding.
#[derive(Clone, Copy, Debug)]
struct Span {
    lo: usize,
    hi: usize,
    offset: usize,
    stride: usize,
    pad: usize,
}

impl Span {
    fn new(outputs: usize, offset: usize, stride: usize, pad: usize, size: usize) -> Span {
        let lo = pad.saturating_sub(offset).div_ceil(stride).min(outputs);
        let hi = if size + pad > offset {
            ((size + pad - offset - 1) / stride + 1).min(outputs)
        } else {
            0
        };
        Span {
            lo,
            hi: hi.max(lo),
            offset,
            stride,
            pad,
        }
    }

    fn is_empty(&self) -> bool {
        self.lo == self.hi
    }

    /// The ifmap index that output `o` (in `lo..hi`) reads.
    fn source(&self, o: usize) -> usize {
        o * self.stride + self.offset - self.pad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// im2col by the definition, one element at a time.
    fn naive_im2col(g: &ConvGeometry, x: &[f32]) -> Vec<f32> {
        let mut col = vec![f32::NAN; g.col_len()];
        let source = |o: usize, k: usize, stride: usize, pad: usize, dil: usize, size: usize| {
            let pos = (o * stride + k * dil) as isize - pad as isize;
            (pos >= 0 && (pos as usize) < size).then_some(pos as usize)
        };
        for c in 0..g.c {
            for r in 0..g.r {
                for s in 0..g.s {
                    for p in 0..g.p {
                        for q in 0..g.q {
                            let y = source(p, r, g.stride_h, g.pad_top, g.dilation_h, g.h);
                            let xx = source(q, s, g.stride_w, g.pad_left, g.dilation_w, g.w);
                            let row = (c * g.r + r) * g.s + s;
                            col[row * g.p * g.q + p * g.q + q] = match (y, xx) {
                                (Some(y), Some(xx)) => x[(c * g.h + y) * g.w + xx],
                                _ => 0.0,
                            };
                        }
                    }
                }
            }
        }
        col
    }

    #[test]
    fn im2col_and_col2im_match_the_definition_for_padding_stride_and_dilation() {
        for (k, stride, pad, dil, size) in [
            (3, 1, 1, 1, 7),
            (5, 1, 2, 1, 6),
            (3, 2, 1, 1, 8),
            (3, 3, 4, 2, 5),
            (1, 1, 0, 1, 4),
            (2, 2, 0, 1, 5),
            (7, 1, 0, 1, 3),
        ] {
            let out = |size: usize| (size + 2 * pad).saturating_sub(dil * (k - 1) + 1) / stride + 1;
            let g = ConvGeometry {
                c: 2,
                h: size,
                w: size + 1,
                p: out(size),
                q: out(size + 1),
                r: k,
                s: k,
                stride_h: stride,
                stride_w: stride,
                pad_top: pad,
                pad_left: pad,
                dilation_h: dil,
                dilation_w: dil,
            };
            let x: Vec<f32> = (0..g.c * g.h * g.w).map(|i| i as f32 + 1.0).collect();
            let mut col = vec![f32::NAN; g.col_len()];
            g.im2col(&x, &mut col);
            assert_eq!(col, naive_im2col(&g, &x), "k {k} stride {stride} pad {pad}");
            // col2im is im2col's adjoint: <im2col(x), v> == <x, col2im(v)>.
            let v: Vec<f32> = (0..g.col_len()).map(|i| (i % 7) as f32 - 3.0).collect();
            let mut back = vec![0.0f32; x.len()];
            g.col2im(&v, &mut back);
            let lhs: f32 = col.iter().zip(&v).map(|(a, b)| a * b).sum();
            let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "k {k} stride {stride} pad {pad}");
        }
    }

    /// The vector copies of lines (masked loads; AVX2 stores that spill into the next line,
    /// several lines a vector when they are short) against the plain loop, for every line
    /// length they take and padding on either side; nothing past the lines is written.
    #[test]
    fn copied_lines_match_the_plain_copy() {
        for q in 1..=64usize {
            for (offset, pad) in [(0, 0), (0, 1), (2, 1), (0, 3), (1, 0)] {
                for w in [q, q + 2, q.saturating_sub(2).max(1)] {
                    let columns = Span::new(q, offset, 1, pad, w);
                    if columns.is_empty() {
                        continue;
                    }
                    for count in [1, 2, 5] {
                        let sources: Vec<f32> = (0..count * w).map(|i| i as f32 + 1.0).collect();
                        let mut want = vec![f32::NAN; count * q];
                        copy_lines_plain(&mut want, q, &sources, w, &columns);
                        let mut got = vec![f32::NAN; count * q + 9];
                        copy_lines(&mut got[..count * q], q, &sources, w, &columns);
                        let what = format!("q {q} offset {offset} pad {pad} w {w} lines {count}");
                        assert_eq!(got[..count * q], want, "{what}");
                        assert!(got[count * q..].iter().all(|v| v.is_nan()), "{what}: past");
                    }
                }
            }
        }
    }

    /// The depthwise kernel (the vector ones where the CPU has them) against the definition
    /// in f64: strides 1 and 2, padding, dilation, maps whose width is no multiple of 8 or
    /// 16.
    #[test]
    fn depthwise_matches_the_definition() {
        for (k, stride, pad, dil, h, w) in [
            (3, 1, 1, 1, 7, 7),
            (3, 2, 1, 1, 14, 14),
            (3, 2, 1, 1, 9, 23),
            (5, 1, 2, 1, 6, 17),
            (5, 2, 2, 1, 28, 28),
            (3, 1, 2, 2, 5, 33),
            (3, 1, 0, 1, 3, 3),
            (3, 2, 0, 1, 16, 40),
            (1, 1, 0, 1, 4, 9),
            // The AVX2 kernel's blocks: 9 vectors a row (4 + 4 + 1), 2 vectors in blocks of
            // two rows, 1 in blocks of four rows and the rest, 7 x 7 taps (past those it
            // holds in registers), stride 2 over 17 vectors.
            (3, 1, 1, 1, 6, 70),
            (3, 1, 1, 1, 9, 14),
            (3, 2, 1, 1, 11, 13),
            (7, 1, 3, 1, 9, 20),
            (3, 2, 1, 1, 11, 270),
            // Eight channels a vector: 4 x 4 and 7 x 7 outputs, stride 2 onto them, 5 x 5
            // and 7 x 7 taps, dilation, no padding.
            (3, 1, 1, 1, 4, 4),
            (3, 2, 1, 1, 7, 7),
            (5, 1, 2, 1, 7, 7),
            (7, 1, 3, 1, 5, 6),
            (3, 1, 2, 2, 6, 5),
            (3, 1, 0, 1, 9, 10),
            (3, 1, 1, 1, 14, 14),
            (5, 2, 2, 1, 9, 31),
            // Read in place (AVX-512): border pixels with no tap inside the map, one column,
            // a row of 8 vectors at stride 2 (two tiles, both masked), a map 2 pixels wide.
            (1, 1, 1, 1, 4, 5),
            (3, 1, 1, 1, 5, 1),
            (3, 2, 1, 1, 5, 32),
            (5, 1, 2, 1, 11, 2),
        ] {
            let out = |size: usize| (size + 2 * pad - dil * (k - 1) - 1) / stride + 1;
            let g = ConvGeometry {
                c: 1,
                h,
                w,
                p: out(h),
                q: out(w),
                r: k,
                s: k,
                stride_h: stride,
                stride_w: stride,
                pad_top: pad,
                pad_left: pad,
                dilation_h: dil,
                dilation_w: dil,
            };
            let x: Vec<f32> = (0..h * w)
                .map(|i| ((i * 37) % 17) as f32 / 8.0 - 1.0)
                .collect();
            let f: Vec<f32> = (0..k * k)
                .map(|i| ((i * 11) % 7) as f32 / 3.0 - 1.0)
                .collect();
            let mut y = vec![f32::NAN; g.p * g.q];
            g.depthwise(&g.taps(), &x, &f, &mut y);
            for (o, got) in y.iter().enumerate() {
                let (p, q) = (o / g.q, o % g.q);
                let mut want = 0f64;
                for r in 0..k {
                    for s in 0..k {
                        let (iy, ix) = (p * stride + r * dil, q * stride + s * dil);
                        if iy >= pad && ix >= pad && iy - pad < h && ix - pad < w {
                            want += f[r * k + s] as f64 * x[(iy - pad) * w + ix - pad] as f64;
                        }
                    }
                }
                let what = format!("k {k} stride {stride} pad {pad} {h}x{w} [{p},{q}]");
                assert!(
                    (*got as f64 - want).abs() <= 1e-5,
                    "{what}: {got} vs {want}"
                );
            }
            // Eight channels at once, from and to planes or channel blocks: each channel's
            // plane as the plane-at-a-time kernel gives it, bit for bit.
            assert!(g.channels_run(), "every machine here has AVX2 and FMA");
            let layouts = [(false, false), (true, false), (false, true), (true, true)];
            for ((x_blocks, y_blocks), prepared) in
                layouts.into_iter().zip([false, true, true, false])
            {
                let planes: Vec<f32> = (0..CHANNELS * h * w)
                    .map(|i| ((i * 29) % 31) as f32 / 15.0 - 1.0)
                    .collect();
                let filters: Vec<f32> = (0..CHANNELS * k * k)
                    .map(|i| ((i * 13) % 11) as f32 / 5.0 - 1.0)
                    .collect();
                let pq = g.p * g.q;
                let mut input = planes.clone();
                if x_blocks {
                    blocks::to_blocks(CHANNELS, h * w, &planes, &mut input);
                }
                let mut all = vec![f32::NAN; CHANNELS * pq];
                let taps = interleave_taps(&filters, k * k);
                let both = (&filters[..], prepared.then_some(&taps[..]));
                g.depthwise_channels(&input, both, &mut all, (x_blocks, y_blocks), None);
                if y_blocks {
                    let got = all.clone();
                    blocks::from_blocks(CHANNELS, pq, &got, &mut all);
                }
                for c in 0..CHANNELS {
                    let mut one = vec![f32::NAN; pq];
                    let (x, f) = (
                        &planes[c * h * w..][..h * w],
                        &filters[c * k * k..][..k * k],
                    );
                    g.depthwise(&g.taps(), x, f, &mut one);
                    assert_eq!(
                        all[c * pq..(c + 1) * pq],
                        one,
                        "channel {c} of 8, k {k} {h}x{w}, blocks {x_blocks} {y_blocks}"
                    );
                }
            }
        }
    }

    #[test]
    fn matmul_matches_the_definition_in_every_transposition() {
        let (m, n, k) = (3, 4, 5);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32).sin()).collect();
        let at: Vec<f32> = (0..m * k).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..k * n).map(|i| b[(i % k) * n + i / k]).collect();
        let mut want = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                want[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        for (aa, bb) in [
            (plain(&a), plain(&b)),
            (transposed(&at), plain(&b)),
            (plain(&a), transposed(&bt)),
            (transposed(&at), transposed(&bt)),
        ] {
            let mut c = vec![1.0f32; m * n];
            matmul(m, n, k, aa, bb, &mut c, true, false);
            for (got, want) in c.iter().zip(&want) {
                assert!((got - (want + 1.0)).abs() < 1e-4, "{got} vs {want}");
            }
        }
    }
}
