//! The one hardware loader: a preset name (`joule energy --list-hw`) or a YAML spec file,
//! digital or processing-in-memory (`model: pim`). Every estimator and compressor takes the
//! [`Machine`] it returns.

use crate::error::LabError;
pub use joule_energy::machine::{preset_names, Machine};

/// Loads a preset or a YAML spec file.
pub fn machine(name: &str) -> Result<Machine, LabError> {
    joule_energy::machine::load(name).map_err(|source| LabError::Machine {
        name: name.to_string(),
        source: Box::new(source),
    })
}

/// Every preset with its description, digital first, then PIM.
pub fn presets() -> Result<Vec<Machine>, LabError> {
    preset_names()
        .into_iter()
        .map(|n| Ok(joule_energy::machine::preset(n)?))
        .collect()
}
