//! The dense kernels under every layer: matrix products on the `gemm` crate, and the
//! im2col / col2im lowering that turns a convolution into one.

use gemm::Parallelism;

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
#[derive(Clone, Copy, Debug)]
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

    /// For every (kernel row or column offset, output index): the ifmap index or `None` in the
    /// padding.
    fn source(
        &self,
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        dil: usize,
        size: usize,
    ) -> Option<usize> {
        let pos = (out * stride + k * dil) as isize - pad as isize;
        (pos >= 0 && (pos as usize) < size).then_some(pos as usize)
    }

    /// Lowers `x` (`C x H x W`) into `col` (`CRS x PQ`).
    pub fn im2col(&self, x: &[f32], col: &mut [f32]) {
        let pq = self.p * self.q;
        for c in 0..self.c {
            let plane = &x[c * self.h * self.w..(c + 1) * self.h * self.w];
            for r in 0..self.r {
                for s in 0..self.s {
                    let row = ((c * self.r + r) * self.s + s) * pq;
                    let dst = &mut col[row..row + pq];
                    for p in 0..self.p {
                        let line = &mut dst[p * self.q..(p + 1) * self.q];
                        match self.source(
                            p,
                            r,
                            self.stride_h,
                            self.pad_top,
                            self.dilation_h,
                            self.h,
                        ) {
                            None => line.fill(0.0),
                            Some(y) => {
                                let src = &plane[y * self.w..(y + 1) * self.w];
                                for (q, v) in line.iter_mut().enumerate() {
                                    *v = match self.source(
                                        q,
                                        s,
                                        self.stride_w,
                                        self.pad_left,
                                        self.dilation_w,
                                        self.w,
                                    ) {
                                        Some(x) => src[x],
                                        None => 0.0,
                                    };
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds the lowered gradient `col` (`CRS x PQ`) back into `dx` (`C x H x W`).
    pub fn col2im(&self, col: &[f32], dx: &mut [f32]) {
        let pq = self.p * self.q;
        for c in 0..self.c {
            let plane = &mut dx[c * self.h * self.w..(c + 1) * self.h * self.w];
            for r in 0..self.r {
                for s in 0..self.s {
                    let row = ((c * self.r + r) * self.s + s) * pq;
                    let src = &col[row..row + pq];
                    for p in 0..self.p {
                        let Some(y) =
                            self.source(p, r, self.stride_h, self.pad_top, self.dilation_h, self.h)
                        else {
                            continue;
                        };
                        let line = &src[p * self.q..(p + 1) * self.q];
                        for (q, v) in line.iter().enumerate() {
                            if let Some(x) = self.source(
                                q,
                                s,
                                self.stride_w,
                                self.pad_left,
                                self.dilation_w,
                                self.w,
                            ) {
                                plane[y * self.w + x] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
