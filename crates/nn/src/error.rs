use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong while loading data, building, training or saving a network.
/// Variants carry the file, node or field to fix.
#[derive(Debug, Error)]
pub enum NnError {
    #[error("{path}: dataset not found; fetch it with `scripts/fetch-data.sh` (or point JOULE_DATA / --data-dir at a folder with the IDX files)")]
    MissingData { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {field}: {detail}")]
    BadFile {
        path: PathBuf,
        field: String,
        detail: String,
    },
    #[error(transparent)]
    Model(#[from] joule_model::ModelError),
    #[error("node {node:?} ({kind}): {detail}")]
    Unsupported {
        node: String,
        kind: &'static str,
        detail: String,
    },
    #[error("input: {0}")]
    Input(String),
    #[error("surgery on node {node:?}: {detail}")]
    Surgery { node: String, detail: String },
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// Training produced a NaN or infinite loss or weight (epoch and batch from 1).
    #[error(
        "training diverged at epoch {epoch}, batch {batch}: {what} (try a lower learning rate)"
    )]
    Diverged {
        epoch: usize,
        batch: usize,
        what: String,
    },
    /// A network whose weights hold NaN or infinity, where they would be used or saved as if
    /// they were good; `place` is the file or what was being done.
    #[error("{place}: tensor {tensor} holds {value} at index {index}: the weights are not finite")]
    NonFiniteWeights {
        place: String,
        tensor: String,
        index: usize,
        value: f32,
    },
}

impl NnError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> NnError {
        NnError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bad_file(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        detail: impl Into<String>,
    ) -> NnError {
        NnError::BadFile {
            path: path.into(),
            field: field.into(),
            detail: detail.into(),
        }
    }
}
