use joule_model::ModelError;
use std::path::PathBuf;
use thiserror::Error;

/// Why an ONNX model could not be imported; every variant names the node, tensor or
/// attribute at fault.
#[derive(Debug, Error)]
pub enum ImportError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a valid ONNX model (protobuf decoding failed: {0})")]
    Decode(String),
    #[error("the model holds no graph")]
    NoGraph,
    #[error("graph input: {0}")]
    Input(String),
    #[error("node {node:?}: unsupported op type {op_type:?}")]
    Unsupported { node: String, op_type: String },
    #[error("node {node:?} ({op_type}): attribute {attribute:?}: {detail}")]
    Attribute {
        node: String,
        op_type: String,
        attribute: String,
        detail: String,
    },
    #[error("node {node:?} ({op_type}): input {input:?}: {detail}")]
    NodeInput {
        node: String,
        op_type: String,
        input: String,
        detail: String,
    },
    #[error("node {node:?} ({op_type}): output {output:?} is already produced by an earlier node, an initializer or the graph input (an ONNX value is assigned once)")]
    DuplicateOutput {
        node: String,
        op_type: String,
        output: String,
    },
    #[error("tensor {name:?}: {detail}")]
    Tensor { name: String, detail: String },
    #[error("graph output {0:?} is not produced by any node")]
    Output(String),
    #[error("{0}")]
    Model(#[from] ModelError),
}

/// An [`ImportError`] with the file it came from: `path: what went wrong`. The message
/// already holds the cause, so it is not also exposed as `source()` (which would print it
/// twice in an error chain).
#[derive(Debug, Error)]
#[error("{}: {error}", path.display())]
pub struct OnnxError {
    pub path: PathBuf,
    pub error: Box<ImportError>,
}
