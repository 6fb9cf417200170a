//! Filters packed into the row panels both kernels read ([`super::PackedFilters`]); 256-bit
//! AVX only, so AVX2 and AVX-512 machines pack alike.

use super::{KC, MR};
use std::arch::x86_64::*;

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
pub(crate) unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
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
