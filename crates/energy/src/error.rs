//! The crate's error type: every variant names where the problem is (file, field, layer),
//! and keeps the underlying error (I/O, YAML, shape inference) as its `source()`. Messages are
//! one line and quote their cause, so `to_string()` alone says what went wrong.

use thiserror::Error;

/// Errors of the energy engine.
#[derive(Debug, Error)]
pub enum EnergyError {
    /// A hardware spec or density file could not be read.
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A YAML (or JSON) document is malformed or does not match the schema; `field` is the
    /// path of the offending field inside the document (`rf.colour`, `energy.mac`), `(root)`
    /// for the document itself.
    #[error("{file}: field `{field}`: {source}")]
    Yaml {
        file: String,
        field: String,
        #[source]
        source: serde_norway::Error,
    },
    /// A hardware spec is invalid; `field` is the path inside the document (`rf.words`,
    /// `energy.dram`, ...).
    #[error("{file}: field `{field}`: {message}")]
    Spec {
        file: String,
        field: String,
        message: String,
    },
    /// No preset of that name.
    #[error("unknown hardware preset {name:?} (presets: {known})")]
    UnknownPreset { name: String, known: String },
    /// The model could not be analysed (shape inference failed).
    #[error("model {model}: {source}")]
    Model {
        model: String,
        #[source]
        source: Box<joule_model::ModelError>,
    },
    /// A batch of zero images.
    #[error("model {model}: batch size must be at least 1")]
    EmptyBatch { model: String },
    /// No mapping of the layer fits the hardware under the dataflow.
    #[error("layer {layer:?}: no {dataflow} mapping fits {hardware}: {reason}")]
    NoMapping {
        layer: String,
        dataflow: String,
        hardware: String,
        reason: String,
    },
    /// A per-layer setting (density, bitwidth) is out of range.
    #[error("{source_name}: layer {layer:?}: field `{field}`: {message}")]
    Setting {
        source_name: String,
        layer: String,
        field: String,
        message: String,
    },
}

impl EnergyError {
    /// Reads `path` to a string; an error names the file.
    pub(crate) fn read(path: &std::path::Path, file: &str) -> Result<String, EnergyError> {
        std::fs::read_to_string(path).map_err(|source| EnergyError::Io {
            file: file.to_string(),
            source,
        })
    }

    /// Deserializes YAML `text` into `T`; an error names `file` and the field's path.
    pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
        text: &str,
        file: &str,
    ) -> Result<T, EnergyError> {
        let deserializer = serde_norway::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = e.path().to_string();
            EnergyError::Yaml {
                file: file.to_string(),
                field: if field == "." { "(root)".into() } else { field },
                // The YAML error ends in " at line L column C": kept, it helps.
                source: e.into_inner(),
            }
        })
    }

    /// The path of the field at fault inside the file, for errors that have one.
    pub fn field(&self) -> Option<&str> {
        match self {
            EnergyError::Yaml { field, .. }
            | EnergyError::Spec { field, .. }
            | EnergyError::Setting { field, .. } => Some(field),
            _ => None,
        }
    }
}
