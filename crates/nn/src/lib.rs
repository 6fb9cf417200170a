//! joule's training and inference engine.
//!
//! A [`Network`] runs an IR [`joule_model::Graph`] (from the zoo, an ONNX file or a
//! checkpoint) forward and backward on kernels written over the `gemm` crate (im2col + gemm,
//! rayon over the batch). [`Network::forward`] is the inference path (CONV/FC fused with the
//! batch norm and activation after them, buffers reused); [`Network::trace`] keeps every
//! node's output for a backward pass. [`train()`](train::train) fits it to a [`Dataset`]
//! loaded from IDX files with [`Sgd`] or [`Adam`]; [`prune`] holds weight masks and filter
//! surgery; [`checkpoint`] saves and loads safetensors files that carry the graph in their
//! metadata.
//!
//! ```
//! use joule_model::zoo;
//! use joule_nn::{FeatureMap, Network};
//! use joule_model::Shape;
//!
//! let network = Network::new(zoo::build("lenet5").unwrap(), 42).unwrap();
//! let batch = FeatureMap::new(Shape::new(2, 1, 28, 28), vec![0.5; 2 * 28 * 28]).unwrap();
//! let logits = network.forward(&batch).unwrap();
//! assert_eq!(logits.shape, Shape::new(2, 10, 1, 1));
//! ```

pub mod alloc;
mod buffers;
mod chain;
pub mod checkpoint;
pub mod data;
mod error;
mod infer;
mod kernels;
pub mod layers;
mod network;
mod optim;
pub mod prune;
pub mod quant;
pub mod recipe;
mod rng;
mod sgemm;
pub mod threads;
pub mod train;

pub use alloc::CacheAligned;
pub use buffers::poison_reused_buffers;
pub use data::{DataSource, Dataset, Split};
pub use error::NnError;
pub use infer::fused_into;
pub use network::{trainable, FeatureMap, Gradients, Network, Trace};
pub use optim::{Adam, Optimizer, OptimizerConfig, Sgd};
pub use rng::Rng;
pub use train::{evaluate, train, Evaluation, TrainConfig};
