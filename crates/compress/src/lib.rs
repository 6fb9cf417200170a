//! joule's network compression: structure simplification of trained networks.
//!
//! * [`eliminate`]: neuron elimination without retraining (Zhang, Davoodi and Hu): the
//!   representative neurons of a layer are chosen by an SVD and a column-pivoted QR of its
//!   activations, and the next layer's weights are re-solved by least squares so that it sees
//!   almost the same input; every size is costed for accuracy, parameters and energy.
//! * [`magnitude`]: magnitude pruning (Han et al. 2015), the baseline: per-layer sparsities
//!   from a sensitivity analysis, retraining with the masks fixed.
//! * [`eap`]: energy-aware pruning (Yang, Chen and Sze, CVPR 2017): layers in order of
//!   estimated energy, weights chosen by the output-feature-map error they cause, closed-form
//!   local fine-tuning by least squares, global fine-tuning with the sparsity fixed.
//! * [`metrics`]: accuracy, non-zero weights, non-skipped MACs and energy with measured
//!   densities; [`run`]: the step-by-step driver with history, checkpoints and resume.
//! * [`lut`]: per-layer latency lookup tables measured with joule's inference engine;
//!   [`netadapt`]: NetAdapt (Yang et al., ECCV 2018) under latency, energy, MAC or weight budgets.
//! * [`quantize`]: post-training quantization and quantization-aware fine-tuning (per-layer
//!   widths 2 to 16 bits; uniform, power-of-two, ternary and binary weights).

pub mod eap;
pub mod eliminate;
mod error;
pub mod lut;
pub mod magnitude;
pub mod metrics;
pub mod netadapt;
pub mod quantize;
pub mod run;
pub mod rundir;

pub use error::CompressError;
pub use metrics::Metrics;
pub use run::{Method, Run, RunConfig};
pub use rundir::RunDir;
