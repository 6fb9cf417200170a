//! The crate's error type: every variant names the model, layer, step or file to look at.

use std::path::PathBuf;
use thiserror::Error;

/// Errors of pruning runs.
#[derive(Debug, Error)]
pub enum CompressError {
    #[error(transparent)]
    Nn(#[from] joule_nn::NnError),
    #[error(transparent)]
    Energy(#[from] joule_energy::EnergyError),
    #[error(transparent)]
    Model(#[from] joule_model::ModelError),
    /// The model has nothing to prune.
    #[error("model {model:?} has no CONV or FC layer with weights to prune")]
    NoWeightedLayers { model: String },
    /// A setting is out of range; `field` is the option to fix.
    #[error("{field}: {message}")]
    Config { field: String, message: String },
    /// The requested target cannot be met within the accuracy budget.
    #[error("target cannot be met: {0}")]
    Unreachable(String),
    /// Fine-tuning produced a non-finite or exploding loss; the last good checkpoint stays.
    #[error("step {step} ({what}): training diverged: {detail}; the last good checkpoint is {checkpoint}")]
    Diverged {
        step: usize,
        what: String,
        detail: String,
        checkpoint: String,
    },
    /// A least-squares refit could not be solved.
    #[error("layer {layer:?}: least squares failed for filter {filter}: {detail}")]
    LeastSquares {
        layer: String,
        filter: usize,
        detail: String,
    },
    /// A file of the run directory could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A latency table's CSV file could not be read or written.
    #[error("{}: {source}", path.display())]
    LatencyCsv {
        path: PathBuf,
        #[source]
        source: crate::lut::CsvError,
    },
    /// The run directory holds a different run than the one asked for.
    #[error("{}: cannot resume: {message}", path.display())]
    Resume { path: PathBuf, message: String },
}

impl CompressError {
    pub fn config(field: &str, message: impl Into<String>) -> CompressError {
        CompressError::Config {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A file error, keeping its cause (an I/O, JSON or ONNX error, or a message).
    pub(crate) fn file(
        path: impl Into<PathBuf>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> CompressError {
        CompressError::File {
            path: path.into(),
            source: source.into(),
        }
    }
}
