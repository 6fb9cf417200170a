//! Direct convolution for layers with few input channels (the first layer on grey images:
//! LeNet-5's and the 28x28 zoo's `conv1`), on AVX2: each output is read from zero-bordered
//! copies of the input planes by every tap, six filters sharing each load, so the ifmap is
//! never lowered. im2col's lowered matrix for such a layer is R x S times the ifmap and
//! does not fit in cache; its stores were a third of LeNet-5's time on the AVX2 machine.
//!
//! Each output is summed as the product on the lowered matrix sums it (from zero, `k = (c,
//! r, s)` ascending, one fused multiply-add a term, one block of `k`), so both give the
//! same bits.

use super::conv::Epilogue;
use crate::kernels::{with_scratch, ConvGeometry};
use rayon::prelude::*;

/// Filters a pass computes together (12 accumulators: 6 filters x 16 columns).
const FILTERS: usize = 6;

/// Largest `C R S` taken: the product sums deeper ones in blocks of its `KC` steps, which
/// this does not.
const MAX_DEPTH: usize = crate::sgemm::KC;

/// Whether [`forward`] runs this layer here: AVX2 without AVX-512 (the AVX-512 machines
/// were measured faster on the lowered product: session 5, LeNet-5 batch 64 1.07 against
/// 1.23 ms), stride 1 along rows, one group, shallow enough, few channels.
pub(crate) fn applies(g: &ConvGeometry, groups: usize) -> bool {
    crate::sgemm::avx2_only()
        && groups == 1
        && g.stride_w == 1
        && g.c <= 3
        && g.col_rows() <= MAX_DEPTH
        && g.p > 0
        && g.q > 0
}

/// `y = epilogue(conv(x, filter))` for `n` samples, one (sample, block of filters) a task.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    g: &ConvGeometry,
    n: usize,
    m: usize,
    x: &[f32],
    filter: &[f32],
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    assert!(applies(g, 1));
    let (plane, pq, crs) = (g.h * g.w, g.p * g.q, g.col_rows());
    let (in_len, out_len) = (g.c * plane, m * pq);
    assert!(x.len() >= n * in_len && y.len() >= n * out_len && filter.len() >= m * crs);
    let (hp, wp) = g.padded_plane();
    y[..n * out_len]
        .par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .for_each(|(yi, xi)| {
            with_scratch(g.c * hp * wp, |padded| {
                for (xc, pc) in xi.chunks_exact(plane).zip(padded.chunks_exact_mut(hp * wp)) {
                    g.pad(xc, pc, wp);
                }
                for f0 in (0..m).step_by(FILTERS) {
                    let filters = FILTERS.min(m - f0);
                    let out = &mut yi[f0 * pq..(f0 + filters) * pq];
                    let taps = &filter[f0 * crs..(f0 + filters) * crs];
                    // SAFETY: `applies` checked AVX2 and FMA; the planes are padded for
                    // every tap of 16 columns (`padded_plane`); `out` holds `filters` planes.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        avx2::block(g, filters, padded, hp * wp, wp, taps, out)
                    };
                }
            });
            for (c, channel) in yi.chunks_mut(pq).enumerate() {
                epilogue.channel(c, channel);
            }
        });
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::FILTERS;
    use crate::kernels::ConvGeometry;
    use std::arch::x86_64::*;

    /// `filters` (at most [`FILTERS`]) output planes from the padded input planes (`stride`
    /// apart, `wp` columns a row), 16 columns at a time.
    ///
    /// # Safety
    /// AVX2 and FMA; `padded` holds `C` planes padded by `ConvGeometry::pad`; `taps` holds
    /// `filters x C R S` weights, `out` `filters x P Q` values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block(
        g: &ConvGeometry,
        filters: usize,
        padded: &[f32],
        stride: usize,
        wp: usize,
        taps: &[f32],
        out: &mut [f32],
    ) {
        let (q, pq, crs) = (g.q, g.p * g.q, g.col_rows());
        assert!(filters <= FILTERS && taps.len() >= filters * crs && out.len() >= filters * pq);
        let index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for p in 0..g.p {
            for j0 in (0..q).step_by(16) {
                let mut acc = [[_mm256_setzero_ps(); 2]; FILTERS];
                for c in 0..g.c {
                    for r in 0..g.r {
                        let row = (p * g.stride_h + r * g.dilation_h) * wp + j0;
                        let line = padded.as_ptr().add(c * stride + row);
                        for s in 0..g.s {
                            let at = line.add(s * g.dilation_w);
                            let v = [_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(8))];
                            let k = (c * g.r + r) * g.s + s;
                            for (f, a) in acc.iter_mut().enumerate().take(filters) {
                                let w = _mm256_broadcast_ss(&*taps.as_ptr().add(f * crs + k));
                                a[0] = _mm256_fmadd_ps(w, v[0], a[0]);
                                a[1] = _mm256_fmadd_ps(w, v[1], a[1]);
                            }
                        }
                    }
                }
                // The last vector of a row spills into the next rows, which are written after
                // it; one that would spill past its plane stores only its own lanes.
                let lanes = (q - j0).min(16);
                for (f, a) in acc.iter().enumerate().take(filters) {
                    let dst = out.as_mut_ptr().add(f * pq + p * q + j0);
                    for (h, v) in a.iter().enumerate() {
                        let own = lanes.saturating_sub(8 * h);
                        if own == 0 {
                            break;
                        }
                        if own >= 8 || p * q + j0 + 8 * h + 8 <= pq {
                            _mm256_storeu_ps(dst.add(8 * h), *v);
                        } else {
                            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(own as i32), index);
                            _mm256_maskstore_ps(dst.add(8 * h), mask, *v);
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

    /// Against im2col and the product, bit for bit: grey and RGB inputs, padding, a
    /// dilation, stride 2 down the rows, rows shorter than a vector (whose stores spill into
    /// the next rows, never past the plane), filters not a multiple of the block, 2 samples.
    #[test]
    fn direct_equals_the_lowered_product_bit_for_bit() {
        if !crate::sgemm::avx2_only() {
            // Only the AVX-512 kernel runs here, which lowers every layer: nothing to compare.
            assert!(
                std::arch::is_x86_feature_detected!("avx512f"),
                "no AVX2 kernel"
            );
            return;
        }
        for (c, k, pad, stride_h, dil, h, w, m) in [
            (1, 5, 2, 1, 1, 28, 28, 6),
            (1, 3, 1, 1, 1, 28, 28, 32),
            (3, 3, 1, 1, 1, 7, 7, 7),
            (1, 3, 0, 1, 1, 7, 7, 13),
            (1, 3, 0, 1, 1, 5, 5, 9),
            (2, 3, 1, 2, 1, 9, 20, 5),
            (1, 3, 2, 1, 2, 6, 17, 8),
        ] {
            let out =
                |size: usize, stride: usize| (size + 2 * pad - dil * (k - 1) - 1) / stride + 1;
            let g = ConvGeometry {
                c,
                h,
                w,
                p: out(h, stride_h),
                q: out(w, 1),
                r: k,
                s: k,
                stride_h,
                stride_w: 1,
                pad_top: pad,
                pad_left: pad,
                dilation_h: dil,
                dilation_w: dil,
            };
            assert!(applies(&g, 1));
            let case = format!("c {c} k {k} pad {pad} {h}x{w} m {m}");
            crate::layers::lowered::check_case(&g, 2, m, &case, &|g, n, m, x, f, y| {
                forward(g, n, m, x, f, &Epilogue::default(), y)
            });
        }
    }
}
