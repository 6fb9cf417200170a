//! joule's network IR.
//!
//! A [`Graph`] is a DAG of [`Node`]s in topological order, each holding an [`Op`] (CONV, FC,
//! pooling, activations, batch norm, LRN, Add, Concat, and the N-d ops of imported models:
//! Linear, MatMul, broadcasting arithmetic, reductions, layer norm, reshapes, transposes,
//! slices) and, optionally, its learned [`Tensor`]s. Shape inference ([`Graph::infer`]) gives
//! every node its input and output [`Dims`] (any rank), their NCHW [`Shape`] views and, for
//! CONV/FC/Linear/MatMul, the [`LoopNest`] bounds (N, M, C, P, Q, R, S) that the energy
//! engine maps onto hardware. [`NetworkStats`] counts weights, MACs and activations,
//! and [`zoo`] holds the canonical networks.
//!
//! ```
//! use joule_model::{zoo, NetworkStats};
//!
//! let alexnet = zoo::build("alexnet").unwrap();
//! let stats = NetworkStats::of(&alexnet, None).unwrap();
//! assert_eq!(stats.layer("conv1").unwrap().macs, 105_415_200);
//! assert_eq!(stats.total.fc.weights, 58_621_952);
//! ```

mod dims;
mod error;
pub mod fs;
mod graph;
pub mod limits;
pub mod ops;
mod shape;
mod stats;
mod tensor;
pub mod zoo;

pub use dims::{
    broadcast, broadcast_indices, normalize_axis, row_major_strides, strided_indices, Dims,
};
pub use error::ModelError;
pub use graph::{Graph, InputSpec, Node, NodeId, NodeShapes, NonFinite, Value};
pub use ops::{LayerClass, LoopNest, Op};
pub use shape::Shape;
pub use stats::{ClassTotals, LayerStats, NetworkStats, Totals};
pub use tensor::Tensor;
