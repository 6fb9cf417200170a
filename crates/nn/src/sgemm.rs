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

/// Rows of `B` per pass: a `KC x 32` panel of `B` (48 KiB) stays in L1/L2 while every row
/// block of `A` streams past it.
const KC: usize = 384;
/// Rows of `A` (and `C`) per microkernel: 6 x 2 accumulators, 2 loads of `B` a step.
const MR: usize = 6;
/// Columns of `C` per microkernel: two 16-lane vectors.
const NR: usize = 32;

/// `c (m x n) = a (m x k) * b (k x n)`, all row-major and contiguous.
pub(crate) fn product(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    #[cfg(target_arch = "x86_64")]
    if k > 0 && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; the assert bounds every element the kernel reads or
        // writes (lanes past a row's end are masked off).
        unsafe { avx512::product(m, n, k, a.as_ptr(), b.as_ptr(), c.as_mut_ptr()) };
        return;
    }
    matmul(m, n, k, plain(a), plain(b), c, false, false);
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

    /// # Safety
    /// AVX-512F; `a`, `b`, `c` hold `m * k`, `k * n`, `m * n` values; `k > 0`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn product(
        m: usize,
        n: usize,
        k: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
    ) {
        let ones = |lanes: usize| -> u16 {
            if lanes >= 16 {
                u16::MAX
            } else {
                (1u16 << lanes) - 1
            }
        };
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            let add = k0 > 0;
            for n0 in (0..n).step_by(NR) {
                let nr = NR.min(n - n0);
                let masks = [ones(nr), ones(nr.saturating_sub(16))];
                for m0 in (0..m).step_by(MR) {
                    let t = Tile {
                        kc,
                        a: a.add(m0 * k + k0),
                        lda: k,
                        b: b.add(k0 * n + n0),
                        ldb: n,
                        c: c.add(m0 * n + n0),
                        ldc: n,
                        masks,
                        add,
                    };
                    match (MR.min(m - m0), nr > 16) {
                        (6, true) => t.run::<6, 2>(),
                        (5, true) => t.run::<5, 2>(),
                        (4, true) => t.run::<4, 2>(),
                        (3, true) => t.run::<3, 2>(),
                        (2, true) => t.run::<2, 2>(),
                        (1, true) => t.run::<1, 2>(),
                        (6, false) => t.run::<6, 1>(),
                        (5, false) => t.run::<5, 1>(),
                        (4, false) => t.run::<4, 1>(),
                        (3, false) => t.run::<3, 1>(),
                        (2, false) => t.run::<2, 1>(),
                        _ => t.run::<1, 1>(),
                    }
                }
            }
        }
    }

    /// One `R x 16V` block of `C` over `kc` steps of `k`.
    struct Tile {
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        masks: [u16; 2],
        /// Add to `C` (a later block of `k`) rather than overwrite it.
        add: bool,
    }

    impl Tile {
        /// # Safety
        /// AVX-512F; every unmasked lane lies inside its operand.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn run<const R: usize, const V: usize>(&self) {
            let mut acc = [[_mm512_setzero_ps(); V]; R];
            // Lanes past the last column are masked off: never read, never written.
            let col = |p: *const f32, v: usize| p.wrapping_add(16 * v);
            for kk in 0..self.kc {
                let row = self.b.add(kk * self.ldb);
                let mut bv = [_mm512_setzero_ps(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = _mm512_maskz_loadu_ps(self.masks[v], col(row, v));
                }
                for (i, lane) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*self.a.add(i * self.lda + kk));
                    for v in 0..V {
                        lane[v] = _mm512_fmadd_ps(av, bv[v], lane[v]);
                    }
                }
            }
            for (i, lane) in acc.iter().enumerate() {
                let out = self.c.add(i * self.ldc);
                for (v, x) in lane.iter().enumerate() {
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
    /// (rows past a multiple of 6, columns past 16 and 32, `k` past a multiple of [`KC`]);
    /// and a split of the rows or the columns changes no bit.
    #[test]
    fn product_matches_the_definition_and_splits_change_no_bit() {
        for (m, n, k) in [
            (1, 1, 1),
            (7, 33, 5),
            (6, 16, 9),
            (13, 47, 400),
            (12, 64, 800),
            (5, 3, 1),
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
                    let want: f64 = (0..k)
                        .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                        .sum();
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "{m}x{n}x{k} [{i},{j}]"
                    );
                }
            }
            if !has_avx512() {
                continue;
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
