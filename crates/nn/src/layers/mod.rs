//! Forward and backward kernels, one file per op family. Each works on NCHW `f32` slices and
//! the shapes that [`joule_model::Graph::infer`] gives; `tensor` holds the kernels of the N-d
//! ops of imported models.

mod blocked;
mod conv;
mod direct;
mod fused;
mod implicit;
mod norm;
mod pointwise;
mod pool;
mod tensor;
mod winograd;

pub(crate) use conv::{
    adds_residual, channel_blocks, conv_forward_blocks, conv_forward_prepared, conv_pool_forward,
    fc_forward_prepared, pools_in_tile, prepare_fc, prepare_filters, reads_channel_blocks,
    writes_channel_blocks, Filters,
};
pub use conv::{conv_backward, conv_forward, fc_backward, fc_forward, Epilogue};
pub use fused::{
    batch_norm_relu_backward, batch_norm_relu_pool_backward, batch_norm_relu_pool_train,
    batch_norm_relu_train, relu_pool_backward, relu_pool_train, BatchNormParams, PooledCache,
};
pub use norm::{
    batch_norm_affine, batch_norm_backward, batch_norm_inference, batch_norm_train, lrn_backward,
    lrn_forward, BatchNormCache, RUNNING_MOMENTUM,
};
pub use pointwise::{
    activate, activation_backward, activation_forward, activation_in_place, add_forward,
    add_residual, softmax_backward, softmax_cross_entropy, softmax_forward, Residual,
};
pub use pool::{
    global_pool_backward, global_pool_forward, pool_backward, pool_forward, pool_inference,
};
pub(crate) use pool::{global_pool_blocks, pool_inference_blocks, whole_two_by_two};
pub use tensor::{
    binary_backward, binary_forward, broadcast_backward, broadcast_forward, concat_backward,
    concat_forward, gather_backward, gather_forward, layer_norm_backward, layer_norm_forward,
    matmul_backward, matmul_forward, pad_backward, pad_forward, reduce_backward, reduce_forward,
    slice_backward, slice_forward, transpose_backward, transpose_forward,
};

/// Values an element-wise task takes at least: element-wise layers (sigmoid, SiLU's product,
/// squeeze-and-excitation's gate, global pooling) ran on one core, a third of
/// efficientnet_b0's time at batch 16 on two threads. Each value is computed as alone, so
/// the split changes no bit.
pub(crate) const ELEMENTS_A_TASK: usize = 1 << 14;

/// `lanes[l] += v` for the values `v` of `values` at `l` mod 8: a sum in 8 independent
/// chains that vectorises (one chain waits on every add).
pub(crate) fn add_lanes(values: &[f32], lanes: &mut [f32; 8]) {
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    crate::kernels::wide(
        #[inline(always)]
        || {
            for chunk in chunks {
                for l in 0..8 {
                    lanes[l] += chunk[l];
                }
            }
        },
    );
    for (l, v) in rest.iter().enumerate() {
        lanes[l] += v;
    }
}

/// What the direct and implicit convolutions are checked against, bit for bit.
#[cfg(test)]
mod lowered {
    use crate::kernels::ConvGeometry;
    use crate::sgemm::product;

    /// Whether this machine runs the AVX2-only kernels (direct, implicit, the blocked weight
    /// gradient) the tests compare; where it does not, it must be an AVX-512 machine, which
    /// runs other kernels, so that a test returning early skips nothing that runs here.
    /// `scripts/test.sh` runs these tests there once more with `JOULE_ISA=avx2`, where they
    /// run.
    pub(super) fn avx2_kernels() -> bool {
        if crate::sgemm::avx2_only() {
            return true;
        }
        assert!(
            std::arch::is_x86_feature_detected!("avx512f"),
            "no AVX2 kernel"
        );
        false
    }

    /// A stride-1 layer: `c` channels of `h x w`, `r x s` taps, paddings (top, left, bottom,
    /// right), one dilation both ways.
    pub(super) fn stride_one(
        c: usize,
        (r, s): (usize, usize),
        (pt, pl, pb, pr): (usize, usize, usize, usize),
        dil: usize,
        (h, w): (usize, usize),
    ) -> ConvGeometry {
        ConvGeometry {
            c,
            h,
            w,
            p: h + pt + pb - dil * (r - 1),
            q: w + pl + pr - dil * (s - 1),
            r,
            s,
            stride_h: 1,
            stride_w: 1,
            pad_top: pt,
            pad_left: pl,
            dilation_h: dil,
            dilation_w: dil,
        }
    }

    /// `n` samples' convolution (`m` filters, stride along rows as `g` says) as im2col and
    /// the product compute it, as bit patterns.
    pub(super) fn conv_bits(
        g: &ConvGeometry,
        n: usize,
        m: usize,
        x: &[f32],
        f: &[f32],
    ) -> Vec<u32> {
        let (in_len, pq, crs) = (g.c * g.h * g.w, g.p * g.q, g.col_rows());
        let mut want = vec![0f32; n * m * pq];
        let mut col = vec![0f32; g.col_len()];
        for (xi, yi) in x.chunks(in_len).zip(want.chunks_mut(m * pq)) {
            g.im2col(xi, &mut col);
            product(m, pq, crs, f, &col, yi);
        }
        want.iter().map(|v| v.to_bits()).collect()
    }

    /// Runs `run(g, n, m, x, filters, y)` on stride-1 layers and checks `y` against im2col
    /// and the product, bit for bit: 3x3 and 5x5 taps, 1x3 and 3x1, paddings on one side
    /// only, a dilation, a map narrower than its padding, filter counts past a multiple of 8
    /// and of 16, two blocks of `k` (288 terms), one sample and two.
    pub(super) fn check_stride_one(
        run: impl Fn(&ConvGeometry, usize, usize, &[f32], &[f32], &mut [f32]),
    ) {
        // (c, r, s, pad top, pad left, pad bottom, pad right, dilation, h, w, m, n)
        for (c, r, s, pt, pl, pb, pr, dil, h, w, m, n) in [
            (32, 3, 3, 1, 1, 1, 1, 1, 14, 14, 64, 1),
            (5, 3, 3, 1, 1, 1, 1, 1, 7, 7, 13, 2),
            (4, 5, 5, 2, 2, 2, 2, 1, 9, 11, 7, 2),
            (6, 1, 3, 0, 1, 0, 1, 1, 5, 8, 20, 1),
            (6, 3, 1, 1, 0, 1, 0, 1, 8, 5, 9, 2),
            (4, 3, 3, 0, 0, 0, 0, 1, 6, 6, 17, 2),
            (4, 3, 3, 0, 2, 1, 0, 1, 6, 6, 17, 2),
            (4, 3, 3, 2, 2, 2, 2, 2, 7, 9, 24, 1),
            (3, 3, 3, 3, 3, 3, 3, 1, 2, 2, 8, 2),
            // More padding right than left; padding along a 1-wide kernel (Q > W + pad).
            (4, 3, 3, 1, 0, 1, 2, 1, 6, 6, 10, 1),
            (6, 3, 1, 1, 1, 1, 1, 1, 8, 5, 9, 2),
            // One output row.
            (4, 3, 3, 0, 1, 0, 1, 1, 3, 5, 8, 1),
            // Three blocks of 8 filters and a lone one, two samples; 40 filters at batch 1
            // (five blocks: halves of three and two).
            (16, 3, 3, 1, 1, 1, 1, 1, 10, 10, 25, 2),
            (8, 3, 3, 1, 1, 1, 1, 1, 9, 9, 40, 1),
        ] {
            let g = stride_one(c, (r, s), (pt, pl, pb, pr), dil, (h, w));
            let case = format!("c {c} {r}x{s} pads {pt},{pl},{pb},{pr} dil {dil} {h}x{w} m {m}");
            check_case(&g, n, m, &case, &run);
        }
    }

    /// Runs `run(g, n, m, x, filters, y)` on one layer of `n` samples and `m` filters and
    /// checks `y` against im2col and the product, bit for bit.
    pub(super) fn check_case(
        g: &ConvGeometry,
        n: usize,
        m: usize,
        case: &str,
        run: &impl Fn(&ConvGeometry, usize, usize, &[f32], &[f32], &mut [f32]),
    ) {
        let (in_len, pq, crs) = (g.c * g.h * g.w, g.p * g.q, g.col_rows());
        let x: Vec<f32> = (0..n * in_len)
            .map(|i| ((i * 37) % 23) as f32 / 7.0 - 1.5)
            .collect();
        let f: Vec<f32> = (0..m * crs)
            .map(|i| ((i * 11) % 13) as f32 / 5.0 - 1.2)
            .collect();
        let mut y = vec![f32::NAN; n * m * pq];
        run(g, n, m, &x, &f, &mut y);
        let want = conv_bits(g, n, m, &x, &f);
        let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, want, "{case}");
    }
}
