//! joule's network compression: structure simplification of trained networks.
//!
//! * [`eliminate`]: neuron elimination without retraining (Zhang, Davoodi and Hu): the
//!   representative neurons of a layer are chosen by an SVD and a column-pivoted QR of its
//!   activations, and the next layer's weights are re-solved by least squares so that it sees
//!   almost the same input; every size is costed for accuracy, parameters and energy.

pub mod eliminate;
