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
