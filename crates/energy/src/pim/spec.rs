//! The PIM architecture: a YAML spec with presets `pim-128` ... `pim-4096`, parsed and
//! validated once, then immutable.
//!
//! # Schema
//!
//! ```yaml
//! name: pim-128                   # required
//! description: free text          # optional
//! model: pim                      # required: selects this spec type
//! array:
//!   rows: 128                     # crossbar rows (inputs), > 0
//!   cols: 128                     # crossbar columns (outputs), > 0
//!   count: 16128                  # optional: arrays on the chip; absent = as many as needed
//!   cell_bits: 2                  # bits stored per cell, 1..=8
//!   cycle_ns: 100                 # one array read (one input bit-step), > 0
//! word_bits: 16                   # default ifmap/filter/psum width, 1..=32
//! dac: { bits: 1, energy: 0.00039 }   # input bits per conversion; energy per conversion
//! adc: { bits: 8, energy: 1.56 }      # resolution (informative); energy per conversion
//! buffer: { bytes: 11010048 }     # global buffer (or `words:`), >= one word
//! energy:
//!   unit: pJ                      # pJ | mac, as in the digital specs
//!   cell: 0.00183                 # one activated cell in one array read (one analog MAC slice)
//!   digital: 0.039                # one shift-add or cross-array accumulation
//!   buffer: 2                     # one word read or written in the global buffer
//!   dram: 320                     # one word read or written in DRAM
//!   write: 10                     # programming one cell
//! ```
//!
//! Unknown fields are rejected; every error names the file and the field's path.

use crate::spec::{check_energy, check_storage, EnergyUnit, MAX_ARRAY_SIDE};
use crate::EnergyError;
use serde::{Deserialize, Serialize};

/// Most arrays on one chip: 2^32.
pub const MAX_ARRAY_COUNT: u64 = 1 << 32;

/// Longest array read, in ns (one second).
pub const MAX_CYCLE_NS: f64 = 1e9;

/// The crossbar arrays.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PimArray {
    pub rows: u64,
    pub cols: u64,
    /// Arrays on the chip; `None`: as many as the model needs (weights always resident).
    pub count: Option<u64>,
    pub cell_bits: u32,
    pub cycle_ns: f64,
}

impl PimArray {
    pub fn cells(&self) -> u64 {
        self.rows * self.cols
    }
}

/// A converter: bits per conversion and energy per conversion.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Converter {
    pub bits: u32,
    pub energy: f64,
}

/// Energies in `unit`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PimEnergy {
    pub unit: EnergyUnit,
    /// One activated cell in one array read.
    pub cell: f64,
    /// One digital shift-add or accumulation.
    pub digital: f64,
    /// One global-buffer word access.
    pub buffer: f64,
    /// One DRAM word access.
    pub dram: f64,
    /// Programming one cell.
    pub write: f64,
}

/// A validated PIM accelerator description.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PimHardware {
    pub name: String,
    pub description: String,
    pub array: PimArray,
    pub word_bits: u32,
    pub dac: Converter,
    pub adc: Converter,
    /// Global buffer capacity in words.
    pub buffer_words: u64,
    pub energy: PimEnergy,
}

impl PimHardware {
    /// Array operations per microsecond, so that `cycles / clock_mhz` is microseconds.
    pub fn clock_mhz(&self) -> f64 {
        1000.0 / self.array.cycle_ns
    }
}

/// The built-in PIM presets: `(name, YAML)`.
pub const PRESETS: [(&str, &str); 6] = [
    ("pim-128", include_str!("../../presets/pim-128.yaml")),
    ("pim-256", include_str!("../../presets/pim-256.yaml")),
    ("pim-512", include_str!("../../presets/pim-512.yaml")),
    ("pim-1024", include_str!("../../presets/pim-1024.yaml")),
    ("pim-2048", include_str!("../../presets/pim-2048.yaml")),
    ("pim-4096", include_str!("../../presets/pim-4096.yaml")),
];

/// Loads a PIM preset by name.
pub fn preset(name: &str) -> Result<PimHardware, EnergyError> {
    let (_, text) =
        PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| EnergyError::UnknownPreset {
                name: name.to_string(),
                known: PRESETS.map(|(n, _)| n).join(", "),
            })?;
    parse(text, &format!("preset {name}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    #[serde(default)]
    description: String,
    model: RawModel,
    array: RawArray,
    word_bits: u32,
    dac: Converter,
    adc: Converter,
    buffer: RawBuffer,
    energy: PimEnergy,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawModel {
    Pim,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArray {
    rows: u64,
    cols: u64,
    #[serde(default)]
    count: Option<u64>,
    cell_bits: u32,
    cycle_ns: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuffer {
    bytes: Option<u64>,
    words: Option<u64>,
}

/// Parses and validates a PIM spec; `file` names the source in errors.
pub fn parse(text: &str, file: &str) -> Result<PimHardware, EnergyError> {
    let raw: RawSpec = EnergyError::parse_yaml(text, file)?;
    validate(raw, file)
}

fn validate(raw: RawSpec, file: &str) -> Result<PimHardware, EnergyError> {
    let RawModel::Pim = raw.model;
    let err = |field: &str, message: String| EnergyError::Spec {
        file: file.to_string(),
        field: field.to_string(),
        message,
    };
    if raw.name.trim().is_empty() {
        return Err(err("name", "must not be empty".into()));
    }
    let a = &raw.array;
    for (field, v) in [
        ("array.rows", a.rows),
        ("array.cols", a.cols),
        ("array.count", a.count.unwrap_or(1)),
    ] {
        if v == 0 {
            return Err(err(field, "must be at least 1".into()));
        }
    }
    for (field, v) in [("array.rows", a.rows), ("array.cols", a.cols)] {
        if v > MAX_ARRAY_SIDE {
            return Err(err(
                field,
                format!("{v} is above the maximum {MAX_ARRAY_SIDE}"),
            ));
        }
    }
    if let Some(count) = a.count.filter(|&c| c > MAX_ARRAY_COUNT) {
        return Err(err(
            "array.count",
            format!("{count} arrays is above the maximum {MAX_ARRAY_COUNT}"),
        ));
    }
    for (field, value, bytes) in [
        ("buffer.bytes", raw.buffer.bytes, true),
        ("buffer.words", raw.buffer.words, false),
    ] {
        if let Some(v) = value {
            check_storage(v, bytes).map_err(|m| err(field, m))?;
        }
    }
    if !(1..=8).contains(&a.cell_bits) {
        return Err(err(
            "array.cell_bits",
            format!("must be 1..=8, got {}", a.cell_bits),
        ));
    }
    if !(1e-6..=MAX_CYCLE_NS).contains(&a.cycle_ns) {
        return Err(err(
            "array.cycle_ns",
            format!("must be 1e-6 to {MAX_CYCLE_NS:e} ns, got {}", a.cycle_ns),
        ));
    }
    if !(1..=32).contains(&raw.word_bits) {
        return Err(err(
            "word_bits",
            format!("must be 1..=32, got {}", raw.word_bits),
        ));
    }
    for (name, c, max) in [("dac", raw.dac, 16), ("adc", raw.adc, 24)] {
        if c.bits == 0 || c.bits > max {
            return Err(err(
                &format!("{name}.bits"),
                format!("must be 1..={max}, got {}", c.bits),
            ));
        }
        check_energy(c.energy).map_err(|m| err(&format!("{name}.energy"), m))?;
    }
    let e = &raw.energy;
    for (field, v) in [
        ("energy.cell", e.cell),
        ("energy.digital", e.digital),
        ("energy.buffer", e.buffer),
        ("energy.dram", e.dram),
        ("energy.write", e.write),
    ] {
        check_energy(v).map_err(|m| err(field, m))?;
    }
    let word_bytes = raw.word_bits as f64 / 8.0;
    let (buffer_words, field) = match (raw.buffer.bytes, raw.buffer.words) {
        (Some(b), None) => ((b as f64 / word_bytes) as u64, "buffer.bytes"),
        (None, Some(w)) => (w, "buffer.words"),
        _ => {
            return Err(err(
                "buffer",
                "give exactly one of `bytes` or `words`".into(),
            ))
        }
    };
    if buffer_words == 0 {
        return Err(err(
            field,
            format!("the buffer is smaller than one {}-bit word", raw.word_bits),
        ));
    }
    Ok(PimHardware {
        name: raw.name,
        description: raw.description,
        array: PimArray {
            rows: a.rows,
            cols: a.cols,
            count: a.count,
            cell_bits: a.cell_bits,
            cycle_ns: a.cycle_ns,
        },
        word_bits: raw.word_bits,
        dac: raw.dac,
        adc: raw.adc,
        buffer_words,
        energy: raw.energy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: t\nmodel: pim\n\
        array: {rows: 128, cols: 128, cell_bits: 2, cycle_ns: 100}\nword_bits: 16\n\
        dac: {bits: 1, energy: 0.5}\nadc: {bits: 8, energy: 2}\nbuffer: {bytes: 1024}\n\
        energy: {unit: pJ, cell: 0.002, digital: 0.04, buffer: 2, dram: 320, write: 10}\n";

    fn field_of(text: &str) -> String {
        let err = parse(text, "pim.yaml").unwrap_err();
        match err.field() {
            Some(field) => field.to_string(),
            None => panic!("unexpected error {err}"),
        }
    }

    #[test]
    fn presets_load_with_their_numbers() {
        let mut rows = Vec::new();
        for (name, _) in PRESETS {
            let hw = preset(name).unwrap();
            assert_eq!(hw.name, name);
            assert_eq!(format!("pim-{}", hw.array.rows), name);
            assert_eq!(hw.array.rows, hw.array.cols);
            rows.push(hw.array.rows);
        }
        assert_eq!(rows, [128, 256, 512, 1024, 2048, 4096]);
        let isaac = preset("pim-128").unwrap();
        assert_eq!(
            (isaac.array.cell_bits, isaac.dac.bits, isaac.adc.bits),
            (2, 1, 8)
        );
        assert_eq!(isaac.clock_mhz(), 10.0);
        // Each doubling of the rows adds one ADC bit and doubles the conversion energy.
        let big = preset("pim-4096").unwrap();
        assert_eq!(big.adc.bits, 13);
        assert!((big.adc.energy / isaac.adc.energy - 32.0).abs() < 1e-9);
        assert!(matches!(
            preset("pim-64"),
            Err(EnergyError::UnknownPreset { .. })
        ));
    }

    #[test]
    fn numbers_beyond_the_limits_are_refused() {
        for (from, to, field) in [
            ("rows: 128", "rows: 1000000000000", "array.rows"),
            ("cycle_ns: 100", "cycle_ns: 1e-320", "array.cycle_ns"),
            ("cell: 0.002", "cell: 1e308", "energy.cell"),
        ] {
            let text = GOOD.replace(from, to);
            assert_ne!(text, GOOD, "{from}");
            assert_eq!(field_of(&text), field, "{to}");
        }
    }

    #[test]
    fn bad_specs_name_the_field() {
        assert!(parse(GOOD, "pim.yaml").is_ok());
        assert_eq!(
            field_of(&GOOD.replace("rows: 128", "rows: 0")),
            "array.rows"
        );
        assert_eq!(
            field_of(&GOOD.replace("cell_bits: 2", "cell_bits: 9")),
            "array.cell_bits"
        );
        assert_eq!(
            field_of(&GOOD.replace("cycle_ns: 100", "cycle_ns: 0")),
            "array.cycle_ns"
        );
        assert_eq!(
            field_of(&GOOD.replace("energy: 2}", "energy: -2}")),
            "adc.energy"
        );
        assert_eq!(field_of(&GOOD.replace("bits: 1,", "bits: 0,")), "dac.bits");
        assert_eq!(
            field_of(&GOOD.replace("write: 10", "write: -1")),
            "energy.write"
        );
        assert_eq!(
            field_of(&GOOD.replace("write: 10", "write: x")),
            "energy.write"
        );
        assert_eq!(
            field_of(&GOOD.replace("cycle_ns: 100", "cycle_ns: 100, count: 0")),
            "array.count"
        );
        assert_eq!(
            field_of(&GOOD.replace("cycle_ns: 100", "cycle_ns: 100, depth: 2")),
            "array.depth"
        );
        assert_eq!(
            field_of(&GOOD.replace("model: pim", "model: dataflow")),
            "model"
        );
        assert_eq!(
            field_of(&GOOD.replace("bytes: 1024", "bytes: 1")),
            "buffer.bytes"
        );
        let err = parse(&GOOD.replace("dram: 320", "dram: -1"), "pim.yaml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("pim.yaml: field `energy.dram`"), "{text}");
    }
}
