//! The library layer's error: every variant names the model, file, machine or setting to
//! look at, and keeps the lower crate's error as its `source`.

use std::path::PathBuf;
use thiserror::Error;

/// Errors of the library layer.
#[derive(Debug, Error)]
pub enum LabError {
    /// A model argument that is neither a zoo name nor a model file.
    #[error("unknown model {spec:?}: not a zoo name (see `joule zoo`) and not a file path")]
    UnknownModel { spec: String },
    /// A file whose extension names no model format joule reads.
    #[error("{}: unsupported model file (expected a zoo name, a .onnx file or a .safetensors checkpoint)", path.display())]
    UnsupportedModelFile { path: PathBuf },
    /// An ONNX model given as bytes (`name` as the caller called it) that could not be
    /// imported.
    #[error("model {name:?} (ONNX bytes): {source}")]
    OnnxBytes {
        name: String,
        #[source]
        source: Box<joule_onnx::ImportError>,
    },
    /// A model whose weights hold NaN or infinity, loaded without
    /// [`crate::allow_non_finite`].
    #[error("{source} (allow_non_finite loads it anyway)")]
    NonFinite {
        #[source]
        source: Box<joule_nn::NnError>,
    },
    /// A setting out of range; `field` is the configuration field (the CLI names its flag).
    #[error("{field}: {message}")]
    Config { field: String, message: String },
    /// A setting whose value is wrong: `field` is the configuration field, `value` what was
    /// given.
    #[error("{field} {value}: {message}")]
    Setting {
        field: String,
        value: String,
        message: String,
    },
    /// A machine that could not be loaded (`name` as given: a preset or a file).
    #[error("hw {name}: {source}")]
    Machine {
        name: String,
        #[source]
        source: Box<joule_energy::EnergyError>,
    },
    /// What failed, and on what (a model on a machine, a file of a run).
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<LabError>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Onnx(#[from] joule_onnx::OnnxError),
    #[error(transparent)]
    Export(#[from] joule_onnx::ExportError),
    #[error(transparent)]
    Model(#[from] joule_model::ModelError),
    #[error(transparent)]
    Nn(#[from] joule_nn::NnError),
    #[error(transparent)]
    Energy(Box<joule_energy::EnergyError>),
    #[error(transparent)]
    Compress(joule_compress::CompressError),
    #[error(transparent)]
    Eliminate(joule_compress::eliminate::EliminateError),
    #[error(transparent)]
    Chart(#[from] joule_report::ChartError),
}

impl LabError {
    /// A setting out of range.
    pub fn config(field: &str, message: impl Into<String>) -> LabError {
        LabError::Config {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// This error, said to have happened while doing `context`.
    pub fn context(self, context: impl Into<String>) -> LabError {
        LabError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

impl From<joule_energy::EnergyError> for LabError {
    fn from(e: joule_energy::EnergyError) -> LabError {
        LabError::Energy(Box::new(e))
    }
}

impl From<joule_compress::CompressError> for LabError {
    /// A compressor's setting out of range stays a configuration error, so the CLI can name
    /// its flag.
    fn from(e: joule_compress::CompressError) -> LabError {
        match e {
            joule_compress::CompressError::Config { field, message } => {
                LabError::Config { field, message }
            }
            other => LabError::Compress(other),
        }
    }
}

impl From<joule_compress::eliminate::EliminateError> for LabError {
    /// Elimination's settings and layer choices stay configuration errors (the CLI names
    /// their flags).
    fn from(e: joule_compress::eliminate::EliminateError) -> LabError {
        use joule_compress::eliminate::EliminateError as E;
        match e {
            E::Argument { argument, message } => LabError::Config {
                field: argument,
                message,
            },
            E::UnknownLayer { layer, known } => LabError::Setting {
                field: "layers".into(),
                value: layer,
                message: format!("no such layer (eliminable layers: {known})"),
            },
            E::NotEliminable { layer, reason } => LabError::Setting {
                field: "layers".into(),
                value: layer,
                message: format!("cannot eliminate its neurons: it {reason}"),
            },
            other => LabError::Eliminate(other),
        }
    }
}

/// `.context(...)` on results of the library layer.
pub trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, LabError>;
}

impl<T, E: Into<LabError>> Context<T> for Result<T, E> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, LabError> {
        self.map_err(|e| e.into().context(context()))
    }
}
