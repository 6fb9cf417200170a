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

/// `c (m x n) = a (m x k) * b (k x n)`, all row-major and contiguous.
pub(crate) fn product(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    #[cfg(target_arch = "x86_64")]
    if k > 0 && m > 0 && n > 0 && std::arch::is_x86_feature_detected!("avx512f") {
        let mut packed = PACKED.take();
        let len = m.div_ceil(MR) * MR * KC + KC * NR;
        if packed.len() < len {
            packed.resize(len, 0.0);
        }
        // SAFETY: the CPU has AVX-512F; the assert bounds every element the kernel reads or
        // writes (lanes past a row's end are masked off); `packed` holds `len` values.
        unsafe { avx512::product(m, n, k, a, b, c.as_mut_ptr(), &mut packed) };
        PACKED.set(packed);
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

    fn ones(lanes: usize) -> u16 {
        if lanes >= 16 {
            u16::MAX
        } else {
            (1u16 << lanes) - 1
        }
    }

    /// # Safety
    /// AVX-512F; `a`, `b` hold `m * k`, `k * n` values and `c` points at `m * n`; `k > 0`;
    /// `packed` holds `ceil(m / MR) * MR * KC + KC * NR` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn product(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        b: &[f32],
        c: *mut f32,
        packed: &mut [f32],
    ) {
        let panels = m.div_ceil(MR);
        let (pa, pb) = packed.split_at_mut(panels * MR * KC);
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            // A's rows in panels of MR, each step of k the MR values side by side (rows
            // past m are zero: computed, never stored).
            for p in 0..panels {
                let panel = &mut pa[p * MR * kc..(p + 1) * MR * kc];
                for i in 0..MR {
                    let row = p * MR + i;
                    if row < m {
                        let src = &a[row * k + k0..row * k + k0 + kc];
                        for (kk, v) in src.iter().enumerate() {
                            panel[kk * MR + i] = *v;
                        }
                    } else {
                        for kk in 0..kc {
                            panel[kk * MR + i] = 0.0;
                        }
                    }
                }
            }
            for n0 in (0..n).step_by(NR) {
                let nr = NR.min(n - n0);
                // With few row panels to share it, packing B would copy as many values as
                // the panels multiply (LeNet-5's 6 and 16 filters): read it in place.
                let (bp, ldb) = if panels > 2 {
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
                let masks = [
                    ones(nr),
                    ones(nr.saturating_sub(16)),
                    ones(nr.saturating_sub(32)),
                ];
                for p in 0..panels {
                    let t = Tile {
                        kc,
                        a: pa.as_ptr().add(p * MR * kc),
                        b: bp,
                        ldb,
                        c: c.add(p * MR * n + n0),
                        ldc: n,
                        rows: MR.min(m - p * MR),
                        masks,
                        add: k0 > 0,
                    };
                    match nr.div_ceil(16) {
                        1 => t.run::<1>(),
                        2 => t.run::<2>(),
                        _ => t.run::<3>(),
                    }
                }
            }
        }
    }

    /// One `MR x 16V` block of `C` over `kc` steps of `k`, on packed panels.
    struct Tile {
        kc: usize,
        /// `kc x MR`, row-panel packed.
        a: *const f32,
        /// `kc` rows of `B`, `ldb` apart (packed: `NR`).
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        /// Rows of `C` to store (the rest of the panel is padding).
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
        unsafe fn run<const V: usize>(&self) {
            let mut acc = [[_mm512_setzero_ps(); V]; MR];
            let (mut a, mut b) = (self.a, self.b);
            for _ in 0..self.kc {
                let mut bv = [_mm512_setzero_ps(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    // Lanes past the last column are masked off (zero).
                    *x = _mm512_maskz_loadu_ps(self.masks[v], b.wrapping_add(16 * v));
                }
                for (i, lane) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a.add(i));
                    for (x, bx) in lane.iter_mut().zip(&bv) {
                        *x = _mm512_fmadd_ps(av, *bx, *x);
                    }
                }
                a = a.add(MR);
                b = b.wrapping_add(self.ldb);
            }
            for (i, lane) in acc.iter().enumerate().take(self.rows) {
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
    /// (rows past a multiple of 8, columns past 16, 32 and 48, `k` past a multiple of [`KC`], `B`
    /// read in place for up to 16 rows and packed beyond);
    /// and a split of the rows or the columns changes no bit.
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
