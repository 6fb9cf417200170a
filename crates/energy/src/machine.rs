//! A machine to evaluate on: a digital accelerator ([`Hardware`]) or a processing-in-memory
//! one ([`PimHardware`]), loaded from one preset namespace or a YAML file (`model: pim`
//! selects the PIM schema), evaluated into the same [`NetworkCost`] report.

use crate::pim::{self, PimHardware};
use crate::search::Objective;
use crate::spec::{self, Hardware};
use crate::workload::Workload;
use crate::{network, Dataflow, EnergyError, NetworkCost};
use std::path::Path;

/// A digital or PIM machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Machine {
    Digital(Hardware),
    Pim(PimHardware),
}

impl Machine {
    pub fn name(&self) -> &str {
        match self {
            Machine::Digital(hw) => &hw.name,
            Machine::Pim(hw) => &hw.name,
        }
    }

    pub fn description(&self) -> &str {
        match self {
            Machine::Digital(hw) => &hw.description,
            Machine::Pim(hw) => &hw.description,
        }
    }

    /// The unit of every energy this machine reports (`pJ`, or `mac` for MAC-normalised
    /// specs).
    pub fn unit(&self) -> &'static str {
        match self {
            Machine::Digital(hw) => hw.energy.unit.as_str(),
            Machine::Pim(hw) => hw.energy.unit.as_str(),
        }
    }

    /// Whether a layer's cost depends on that layer alone, so callers may evaluate (and
    /// cache) layer by layer. Not on a PIM machine: whether weights stay resident depends on
    /// the whole network fitting its arrays.
    pub fn costs_per_layer(&self) -> bool {
        matches!(self, Machine::Digital(_))
    }

    /// Evaluates `layers` of `model`; a PIM machine ignores `dataflow` and `objective` (its
    /// mapping is fixed: weight stationary).
    pub fn evaluate(
        &self,
        model: &str,
        layers: &[Workload],
        dataflow: Dataflow,
        objective: Objective,
    ) -> Result<NetworkCost, EnergyError> {
        match self {
            Machine::Digital(hw) => network::evaluate(model, layers, hw, dataflow, objective),
            Machine::Pim(hw) => pim::evaluate(model, layers, hw),
        }
    }
}

/// Every preset name, digital first, then PIM.
pub fn preset_names() -> Vec<&'static str> {
    spec::PRESETS
        .iter()
        .chain(pim::spec::PRESETS.iter())
        .map(|(n, _)| *n)
        .collect()
}

/// Loads a preset by name.
pub fn preset(name: &str) -> Result<Machine, EnergyError> {
    if pim::spec::PRESETS.iter().any(|(n, _)| *n == name) {
        return pim::spec::preset(name).map(Machine::Pim);
    }
    if spec::PRESETS.iter().any(|(n, _)| *n == name) {
        return spec::preset(name).map(Machine::Digital);
    }
    Err(EnergyError::UnknownPreset {
        name: name.to_string(),
        known: preset_names().join(", "),
    })
}

/// Loads a preset name, or else a YAML file: `model: pim` selects the PIM schema.
pub fn load(spec_name: &str) -> Result<Machine, EnergyError> {
    let path = Path::new(spec_name);
    if preset_names().contains(&spec_name)
        || (path.extension().is_none() && !spec_name.contains(std::path::MAIN_SEPARATOR))
    {
        return preset(spec_name);
    }
    let text = EnergyError::read(path, spec_name)?;
    parse(&text, spec_name)
}

/// Parses a spec of either kind; `file` names the source in errors.
pub fn parse(text: &str, file: &str) -> Result<Machine, EnergyError> {
    let is_pim = serde_norway::from_str::<serde_norway::Value>(text)
        .ok()
        .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(|m| m == "pim"))
        .unwrap_or(false);
    if is_pim {
        pim::spec::parse(text, file).map(Machine::Pim)
    } else {
        spec::parse(text, file).map(Machine::Digital)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_of_both_kinds_load() {
        assert!(matches!(preset("eyeriss").unwrap(), Machine::Digital(_)));
        assert!(matches!(preset("pim-512").unwrap(), Machine::Pim(_)));
        assert_eq!(load("pim-256").unwrap().name(), "pim-256");
        let err = preset("pim-7").unwrap_err().to_string();
        assert!(err.contains("eyeriss") && err.contains("pim-4096"), "{err}");
    }

    #[test]
    fn model_pim_selects_the_pim_schema() {
        let text = pim::spec::PRESETS[0].1;
        assert!(matches!(parse(text, "a.yaml").unwrap(), Machine::Pim(_)));
        // A PIM spec with a digital field is rejected by the PIM schema, naming the field.
        let bad = format!("{text}rf: {{ words: 4 }}\n");
        let err = parse(&bad, "a.yaml").unwrap_err().to_string();
        assert!(err.starts_with("a.yaml: field `rf`"), "{err}");
        let digital = spec::PRESETS[0].1;
        assert!(matches!(
            parse(digital, "d.yaml").unwrap(),
            Machine::Digital(_)
        ));
    }
}
