//! Neuron elimination without retraining (seed 003: Zhang, Davoodi and Hu, "Exploring energy
//! and accuracy tradeoff in structure simplification of trained deep neural networks").
//!
//! For a trained network and a fully connected layer (or a CONV layer, whose neurons are its
//! output channels observed at every spatial position: see [`layer`]):
//!
//! 1. [`layer::activations`] collects `X`, the layer's outputs after its activation, one row
//!    per neuron and one column per training sample;
//! 2. [`selection::Decomposition`] takes the SVD of `X` (its numerical rank, with the
//!    tolerance documented in [`selection`]) and, for each `p`, picks the `p` representative
//!    neurons by a column-pivoted QR of `U_p^T` (the seed's Algorithm 2);
//! 3. [`reconstruction::Reconstructor`] solves the next layer's weights on the kept neurons by
//!    least squares, so that it sees almost the same input (bias unchanged);
//! 4. [`sweep::Eliminator`] runs the seed's Algorithm 1: `p` from `rank(X)` down, recording
//!    test accuracy (no retraining), parameters and energy on each hardware model, until the
//!    accuracy drop passes the threshold; the baseline that keeps the neurons with the largest
//!    outgoing weights, unchanged, is scored at every `p` beside it.
//!
//! ```
//! use joule_compress::eliminate::{reconstruction::Reconstructor, selection::Decomposition};
//! use faer::Mat;
//!
//! // Neuron 2 is the sum of neurons 0 and 1: two neurons carry everything.
//! let x = Mat::from_fn(3, 4, |i, k| match i { 0 => k as f64, 1 => (k * k) as f64, _ => (k + k * k) as f64 });
//! let next = Mat::from_fn(1, 3, |_, j| 1.0 + j as f64);
//! let d = Decomposition::new(&x, "fc1").unwrap();
//! assert_eq!(d.rank, 2);
//! let kept = d.representatives(d.rank);
//! let solution = Reconstructor::new(&x, &next, "fc1").unwrap().solve(&kept);
//! assert!(solution.relative_error < 1e-9);
//! ```

pub mod layer;
pub mod pareto;
pub mod reconstruction;
pub mod selection;
pub mod sweep;

pub use sweep::{Config, Eliminator, LayerSweep, Point};

use thiserror::Error;

/// Errors of neuron elimination; each names the layer or setting at fault (settings by their
/// configuration field: `max_drop`, `hw`, `refit_bias`, `layers`).
#[derive(Debug, Error)]
pub enum EliminateError {
    #[error("{argument}: {message}")]
    Argument { argument: String, message: String },
    #[error("layers {layer}: no such layer (eliminable layers: {known})")]
    UnknownLayer { layer: String, known: String },
    #[error("layers {layer}: cannot eliminate its neurons: it {reason}")]
    NotEliminable { layer: String, reason: String },
    #[error("layer {layer}: {message}")]
    Activations { layer: String, message: String },
    #[error("layer {layer}: running the network: {message}")]
    Network { layer: String, message: String },
    #[error("hardware {hardware}: {message}")]
    Energy { hardware: String, message: String },
}
