//! The crate's error type: every variant names where the problem is (file, field, layer).

use thiserror::Error;

/// Errors of the energy engine.
#[derive(Debug, Error)]
pub enum EnergyError {
    /// A hardware spec file could not be read.
    #[error("{file}: {message}")]
    Io { file: String, message: String },
    /// A hardware spec is malformed or invalid; `field` is the path inside the document
    /// (`rf.words`, `energy.dram`, ...).
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
    #[error("model {model}: {message}")]
    Model { model: String, message: String },
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
