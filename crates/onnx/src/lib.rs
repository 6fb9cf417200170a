//! ONNX front end for joule's IR.
//!
//! [`export_file`] writes an IR graph with its weights as an opset-13 ONNX model;
//! [`qdq::export_qdq_bytes`] the same with QuantizeLinear/DequantizeLinear around quantized layers.
//! [`import_file`] reads a `.onnx` file into a [`joule_model::Graph`] with its weights as
//! node parameters. The wire format is decoded by prost from message types declared in
//! [`proto`] (the subset of `onnx.proto` joule needs); the op table maps each supported op
//! type to an IR op, and anything else is reported with its op type and node name.
//!
//! Supported ops: Conv, Gemm, MatMul (x W as FC or Linear, + Add as its bias; x y of two
//! activations as MatMul), BatchNormalization, LayerNormalization, Relu, Clip, LeakyRelu,
//! Sigmoid, HardSigmoid, HardSwish, Tanh, Erf, Sqrt, Gelu, MaxPool, AveragePool,
//! GlobalAveragePool, GlobalMaxPool, Concat (any axis), Add, Sub, Mul, Div, Pow (broadcasting),
//! ReduceMean, ReduceSum, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Gather, Slice,
//! Split, Pad, Expand, Softmax (any axis from opset 13), Dropout, LRN, Identity, Cast (to
//! float), Constant, ScatterND, Not, Exp, ReduceL2. Nodes whose inputs are all known at import (initializers, constants,
//! activations' shapes) are folded: Shape, Gather, Unsqueeze, Concat, Slice, Cast,
//! arithmetic, Where, ConstantOfShape, Range and the like, so computed Reshape targets
//! resolve. A size computed from a dynamic batch axis becomes a multiple of the batch.
//!
//! Einsum is read where it is a batched matrix product, operands possibly transposed.
//! Weights in external data files (the exporters' format past protobuf's 2 GB) are read from
//! beside the model by [`import_file`].
//!
//! ```no_run
//! let graph = joule_onnx::import_file("model.onnx".as_ref()).unwrap();
//! println!("{} nodes", graph.len());
//! ```

mod error;
mod export;
mod fold;
mod fuse;
mod import;
mod node;
mod ops;
pub mod proto;
pub mod qdq;
mod tensor;

pub use error::{ImportError, OnnxError};
pub use export::{export_bytes, export_file, ExportError, OPSET};

use joule_model::Graph;
use prost::Message;
use std::path::Path;

/// Imports an ONNX file. Errors name the file and the node, tensor or attribute at fault.
pub fn import_file(path: &Path) -> Result<Graph, OnnxError> {
    let wrap = |error| OnnxError {
        path: path.to_path_buf(),
        error: Box::new(error),
    };
    let bytes = std::fs::read(path).map_err(|e| wrap(e.into()))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let mut model = proto::ModelProto::decode(bytes.as_slice())
        .map_err(|e| wrap(ImportError::Decode(e.to_string())))?;
    drop(bytes);
    let dir = path.parent().unwrap_or(Path::new("."));
    tensor::load_external(&mut model, dir).map_err(wrap)?;
    import::import_model(&model, stem).map_err(wrap)
}

/// Imports an ONNX model from memory; `name` is used when the graph has none.
pub fn import_bytes(bytes: &[u8], name: &str) -> Result<Graph, ImportError> {
    let model = proto::ModelProto::decode(bytes).map_err(|e| ImportError::Decode(e.to_string()))?;
    import::import_model(&model, name)
}
