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
