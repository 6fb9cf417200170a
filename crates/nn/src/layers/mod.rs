//! Forward and backward kernels, one file per op family. Each works on NCHW `f32` slices and
//! the shapes that [`joule_model::Graph::infer`] gives; `tensor` holds the kernels of the N-d
//! ops of imported models.

mod conv;
mod direct;
mod implicit;
mod norm;
mod pointwise;
mod pool;
mod tensor;
mod winograd;

pub use conv::{conv_backward, conv_forward, fc_backward, fc_forward, Epilogue};
pub(crate) use conv::{conv_forward_prepared, fc_forward_prepared, prepare_filters, Filters};
pub use norm::{
    batch_norm_affine, batch_norm_backward, batch_norm_inference, batch_norm_train, lrn_backward,
    lrn_forward, BatchNormCache, RUNNING_MOMENTUM,
};
pub use pointwise::{
    activate, activation_backward, activation_forward, activation_in_place, softmax_backward,
    softmax_cross_entropy, softmax_forward,
};
pub use pool::{
    global_pool_backward, global_pool_forward, pool_backward, pool_forward, pool_inference,
};
pub use tensor::{
    binary_backward, binary_forward, broadcast_backward, broadcast_forward, concat_backward,
    concat_forward, gather_backward, gather_forward, layer_norm_backward, layer_norm_forward,
    matmul_backward, matmul_forward, pad_backward, pad_forward, reduce_backward, reduce_forward,
    slice_backward, slice_forward, transpose_backward, transpose_forward,
};

/// What the direct and implicit convolutions are checked against, bit for bit.
#[cfg(test)]
mod lowered {
    use crate::kernels::ConvGeometry;
    use crate::sgemm::product;

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
}
