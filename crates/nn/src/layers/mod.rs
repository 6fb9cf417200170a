//! Forward and backward kernels, one file per op family. Each works on NCHW `f32` slices and
//! the shapes that [`joule_model::Graph::infer`] gives; `tensor` holds the forward kernels of
//! the N-d ops of imported models.

mod conv;
mod norm;
mod pointwise;
mod pool;
mod tensor;

pub use conv::{conv_backward, conv_forward, fc_backward, fc_forward, Epilogue};
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
    binary_forward, broadcast_forward, concat_forward, gather_forward, layer_norm_forward,
    matmul_forward, pad_forward, reduce_forward, slice_forward, transpose_forward,
};
