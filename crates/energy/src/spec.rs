//! The architecture: a hardware spec, parsed from YAML, validated once, then immutable.
//!
//! # Schema
//!
//! ```yaml
//! name: isca16                 # required
//! description: free text       # optional
//! model: dataflow              # optional: dataflow (default) | weight_fetch
//! array: { rows: 16, cols: 16 }            # PE array, both > 0
//! rf: { bytes: 512 }                       # per-PE register file shared by all data types,
//! # rf: { words: 256 }                     #   in bytes or words, or split per data type in
//! # rf: { ifmap: 12, filter: 224, psum: 24 }   # words (Eyeriss' scratchpads)
//! buffer: { bytes: 131072 }                # global buffer (or `words:`), >= one word
//! dram: { bandwidth: 16 }                  # optional, words per cycle; unlimited if absent
//! word_bits: 16                            # data word width, 1..=64
//! clock_mhz: 200                           # optional, default 200
//! energy:                                  # energy per access of one word, and per MAC
//!   unit: mac                              # mac (normalized to one MAC) | pJ
//!   mac: 1
//!   rf: 1
//!   array: 2                               # inter-PE / array network delivery
//!   buffer: 6
//!   dram: 200
//! arithmetic:                              # optional (horowitz45): per-op energies
//!   precision: fp32                        # int8 | int16 | int32 | fp16 | fp32: the MAC
//!   int8_add: 0.03                         #   energy becomes <precision>_mult + _add
//!   fp32_mult: 3.7                         # ... any of int8/16/32 and fp16/32 _add/_mult
//! mac_scaling:                             # optional: how energy.mac scales with widths
//!   multiplier: 0.939                      #   share of energy.mac in the multiplier, 0..=1
//!   accumulator_bits: 16                   #   accumulator width energy.mac was given at
//! bit_serial: false                        # optional: ifmaps fed bit-serially (Stripes)
//! # buffer: { bytes: 131072, bandwidth: 32 } # optional: buffer words per cycle
//! noc: { bandwidth: 64 }                   # optional: array network words per cycle
//! # skip_zeros: { ifmap: true, weight: true, cycles: true }  # cycles: skipped in time too
//! area: { node_nm: 65 }                    # optional: the area model (crate::area)
//! ```
//!
//! # MAC energy at reduced precision
//!
//! `energy.mac` is the energy of one MAC at the reference widths: `word_bits`-bit ifmap and
//! filter operands and a `mac_scaling.accumulator_bits`-bit accumulator. At other widths
//! ([`Hardware::mac_energy`]) the multiplier's share scales with the product of the operand
//! widths and the adder's share with the accumulator (psum) width:
//!
//! ```text
//! e_MAC(b_ifmap, b_filter, b_psum) = energy.mac x ( m x b_ifmap b_filter / word_bits^2
//!                                                + (1 - m) x b_psum / accumulator_bits )
//! ```
//!
//! The source is Horowitz (ISSCC 2014, 45 nm): integer multiply 0.2 pJ at 8 bits, 3.1 pJ at
//! 32 bits (0.2 / 8^2 = 0.0031 and 3.1 / 32^2 = 0.0030 pJ per bit^2: quadratic in the width),
//! integer add 0.03 / 0.05 / 0.1 pJ at 8 / 16 / 32 bits (linear). Least squares through the
//! origin over those points gives 0.003028 pJ per bit^2 for the multiplier and 0.003155 pJ per
//! bit for the adder, so a 16 x 16-bit multiply with a 16-bit add is 0.775 + 0.050 pJ: the
//! multiplier is `m = 0.939` of the MAC, the value the 16-bit presets declare. Without
//! `mac_scaling`, a spec with an `arithmetic` table takes `m` from the table's chosen precision
//! (`horowitz45`, fp32: 3.7 / (3.7 + 0.9)), and any other spec keeps joule's earlier rule,
//! `m = 1` (the whole MAC scales with the operand product), so existing specs cost the same.
//! At the reference widths every spec costs exactly `energy.mac` per MAC.
//!
//! With `bit_serial: true` the PEs take one ifmap bit per cycle, as Stripes (Judd et al.,
//! MICRO 2016) does, with `word_bits` times the lanes so that at full width they match a
//! bit-parallel array: compute cycles scale by `b_ifmap / word_bits`. Energy is unchanged
//! (the MAC model above already scales with the ifmap width).
//!
//! Unknown fields are rejected, and every error names the field's path (`energy.dram`,
//! `rf.psum`, `array.rows`).
//!
//! # Limits
//!
//! Numbers beyond these are refused, so that the mapper's search (whose time grows with the
//! array) stays short and no total can overflow or become infinite:
//! [`MAX_ARRAY_SIDE`] PEs per array row or column, [`MAX_STORAGE_WORDS`] words (or
//! `8 * MAX_STORAGE_WORDS` bytes) per storage level, [`MAX_ENERGY`] per access or MAC in
//! either unit, `clock_mhz` within [`CLOCK_MHZ`], `dram.bandwidth` within [`BANDWIDTH`].

use crate::access::PerTensor;
use crate::EnergyError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which cost model a spec is meant for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostModelKind {
    /// The Eyeriss-style mapping model with the four memory levels (the default).
    Dataflow,
    /// The simple model: every MAC fetches its weight from the buffer or DRAM.
    WeightFetch,
}

/// The unit of the energy numbers in a spec and in every report built from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnergyUnit {
    /// Normalized to the energy of one MAC.
    #[serde(rename = "mac")]
    Mac,
    /// Picojoules.
    #[serde(rename = "pJ")]
    PicoJoule,
}

impl EnergyUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            EnergyUnit::Mac => "mac",
            EnergyUnit::PicoJoule => "pJ",
        }
    }
}

/// Most PEs in one row or column of the array (and rows or columns of a PIM crossbar).
pub const MAX_ARRAY_SIDE: u64 = 4096;

/// Most words of one storage level (per-PE RF, global buffer): 2^40.
pub const MAX_STORAGE_WORDS: u64 = 1 << 40;

/// Largest energy of one access or MAC, in the spec's unit. Counts fit in 64 bits (below
/// 1.9e19), so every total stays below 1.9e28, far from infinity.
pub const MAX_ENERGY: f64 = 1e9;

/// Accepted clock frequencies, in MHz.
pub const CLOCK_MHZ: std::ops::RangeInclusive<f64> = 1e-3..=1e6;

/// Accepted DRAM bandwidths, in words per cycle.
pub const BANDWIDTH: std::ops::RangeInclusive<f64> = 1e-6..=1e12;

/// Checks an energy against `0..=MAX_ENERGY` (NaN and infinity refused).
pub(crate) fn check_energy(v: f64) -> Result<(), String> {
    if (0.0..=MAX_ENERGY).contains(&v) {
        Ok(())
    } else {
        Err(format!(
            "energy must be a non-negative number up to {MAX_ENERGY:e}, got {v}"
        ))
    }
}

/// Checks a storage size given in `words` or `bytes` against [`MAX_STORAGE_WORDS`].
pub(crate) fn check_storage(v: u64, bytes: bool) -> Result<(), String> {
    let max = if bytes {
        MAX_STORAGE_WORDS * 8
    } else {
        MAX_STORAGE_WORDS
    };
    if v <= max {
        Ok(())
    } else {
        let unit = if bytes { "bytes" } else { "words" };
        Err(format!("{v} {unit} is above the maximum {max}"))
    }
}

/// The PE array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Array {
    pub rows: u64,
    pub cols: u64,
}

impl Array {
    pub fn pes(&self) -> u64 {
        self.rows * self.cols
    }
}

/// Per-PE register-file capacity, in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RfCapacity {
    /// One RF shared by ifmaps, filters and psums.
    Shared(u64),
    /// Separate scratchpads (Eyeriss).
    Split { ifmap: u64, filter: u64, psum: u64 },
}

impl RfCapacity {
    pub fn total_words(&self) -> u64 {
        match *self {
            RfCapacity::Shared(w) => w,
            RfCapacity::Split {
                ifmap,
                filter,
                psum,
            } => ifmap + filter + psum,
        }
    }

    /// Whether per-PE footprints (words per tensor) fit.
    pub fn fits(&self, words: PerTensor<f64>) -> bool {
        match *self {
            RfCapacity::Shared(w) => words.iter().sum::<f64>() <= w as f64 + 1e-9,
            RfCapacity::Split {
                ifmap,
                filter,
                psum,
            } => {
                words.ifmap <= ifmap as f64 + 1e-9
                    && words.filter <= filter as f64 + 1e-9
                    && words.psum <= psum as f64 + 1e-9
            }
        }
    }
}

/// Energy per access of one word at each level, and per MAC, in `unit`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EnergyCosts {
    pub unit: EnergyUnit,
    pub mac: f64,
    pub rf: f64,
    pub array: f64,
    pub buffer: f64,
    pub dram: f64,
}

/// A validated hardware description.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hardware {
    pub name: String,
    pub description: String,
    pub model: CostModelKind,
    pub array: Array,
    pub rf: RfCapacity,
    /// Global buffer capacity in words.
    pub buffer_words: u64,
    /// DRAM bandwidth in words per cycle; `None` is unlimited.
    pub dram_bandwidth: Option<f64>,
    pub word_bits: u32,
    pub clock_mhz: f64,
    pub energy: EnergyCosts,
    /// Which zero operands the PEs detect and skip (the MAC and the RF reads it would need).
    pub skip_zeros: ZeroSkipping,
    /// How `energy.mac` scales with operand and accumulator widths.
    pub mac_scaling: MacScaling,
    /// Whether the PEs process ifmaps bit-serially (cycles scale with ifmap bits).
    pub bit_serial: bool,
    /// Global buffer bandwidth in words per cycle (reads and writes together); `None` is
    /// unlimited.
    pub buffer_bandwidth: Option<f64>,
    /// Array network (NoC) bandwidth in words per cycle, deliveries and PE-to-PE hops
    /// together; `None` is unlimited.
    pub noc_bandwidth: Option<f64>,
    /// Chip area per unit and per byte of storage (see [`crate::area`]).
    pub area: crate::area::AreaModel,
}

/// How the MAC energy splits between multiplier and adder at the reference widths (see the
/// module docs for the rule and its source).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MacScaling {
    /// Share of `energy.mac` spent in the multiplier, in [0, 1].
    pub multiplier: f64,
    /// The accumulator width at which `energy.mac` is given.
    pub accumulator_bits: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMacScaling {
    multiplier: f64,
    #[serde(default)]
    accumulator_bits: Option<u32>,
}

/// Zero skipping in the PEs. Eyeriss gates zero ifmaps only (the default); the energy model
/// of energy-aware pruning (Yang et al., CVPR 2017) also skips zero weights, so that pruning
/// CONV weights saves computation and not only compressed weight traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroSkipping {
    #[serde(default = "yes")]
    pub ifmap: bool,
    #[serde(default)]
    pub weight: bool,
    /// Whether skipped MACs also save their cycles (compressed-domain processing, as in
    /// Eyeriss v2), not only their energy (clock gating, as in Eyeriss v1: the default).
    #[serde(default)]
    pub cycles: bool,
}

fn yes() -> bool {
    true
}

impl Default for ZeroSkipping {
    fn default() -> Self {
        ZeroSkipping {
            ifmap: true,
            weight: false,
            cycles: false,
        }
    }
}

impl Hardware {
    /// Bytes of one word.
    pub fn word_bytes(&self) -> f64 {
        self.word_bits as f64 / 8.0
    }

    /// Energy of one MAC with operands of `bits.ifmap` and `bits.filter` bits accumulated
    /// into `bits.psum` bits: the multiplier's share scales with the operand product, the
    /// adder's with the accumulator width (module docs). `energy.mac` at the reference widths.
    pub fn mac_energy(&self, bits: PerTensor<f64>) -> f64 {
        let word = self.word_bits as f64;
        let m = self.mac_scaling.multiplier;
        let multiplier = self.energy.mac * m * bits.ifmap * bits.filter / (word * word);
        if m == 1.0 {
            // The earlier rule, evaluated exactly as before.
            return multiplier;
        }
        multiplier
            + self.energy.mac * (1.0 - m) * bits.psum / self.mac_scaling.accumulator_bits as f64
    }

    /// Compute cycles scale by this for ifmaps of `ifmap_bits` bits: `ifmap_bits / word_bits`
    /// on bit-serial hardware, 1 otherwise.
    pub fn compute_scale(&self, ifmap_bits: f64) -> f64 {
        if self.bit_serial {
            ifmap_bits / self.word_bits as f64
        } else {
            1.0
        }
    }
}

/// The built-in presets: `(name, YAML)`.
pub const PRESETS: [(&str, &str); 7] = [
    ("eyeriss", include_str!("../presets/eyeriss.yaml")),
    (
        "eyeriss-sparse",
        include_str!("../presets/eyeriss-sparse.yaml"),
    ),
    ("isca16", include_str!("../presets/isca16.yaml")),
    ("horowitz45", include_str!("../presets/horowitz45.yaml")),
    (
        "eyeriss-v2-like",
        include_str!("../presets/eyeriss-v2-like.yaml"),
    ),
    ("systolic-256", include_str!("../presets/systolic-256.yaml")),
    ("nvdla-like", include_str!("../presets/nvdla-like.yaml")),
];

/// Loads a preset by name.
pub fn preset(name: &str) -> Result<Hardware, EnergyError> {
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

/// Loads a preset name, or else a YAML file.
pub fn load(spec: &str) -> Result<Hardware, EnergyError> {
    if PRESETS.iter().any(|(n, _)| *n == spec) {
        return preset(spec);
    }
    let path = Path::new(spec);
    if path.extension().is_none() && !spec.contains(std::path::MAIN_SEPARATOR) {
        return preset(spec);
    }
    let text = EnergyError::read(path, spec)?;
    parse(&text, spec)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    model: Option<CostModelKind>,
    array: RawArray,
    rf: RawRf,
    buffer: RawBuffer,
    #[serde(default)]
    dram: Option<RawDram>,
    word_bits: u32,
    #[serde(default)]
    clock_mhz: Option<f64>,
    energy: RawEnergy,
    #[serde(default)]
    arithmetic: Option<RawArithmetic>,
    #[serde(default)]
    skip_zeros: ZeroSkipping,
    #[serde(default)]
    mac_scaling: Option<RawMacScaling>,
    #[serde(default)]
    bit_serial: bool,
    #[serde(default)]
    noc: Option<RawNoc>,
    #[serde(default)]
    area: Option<crate::area::RawArea>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoc {
    bandwidth: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArray {
    rows: u64,
    cols: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRf {
    bytes: Option<u64>,
    words: Option<u64>,
    ifmap: Option<u64>,
    filter: Option<u64>,
    psum: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuffer {
    bytes: Option<u64>,
    words: Option<u64>,
    #[serde(default)]
    bandwidth: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDram {
    bandwidth: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnergy {
    unit: EnergyUnit,
    mac: f64,
    rf: f64,
    array: f64,
    buffer: f64,
    dram: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArithmetic {
    precision: String,
    int8_add: Option<f64>,
    int16_add: Option<f64>,
    int32_add: Option<f64>,
    int8_mult: Option<f64>,
    int16_mult: Option<f64>,
    int32_mult: Option<f64>,
    fp16_add: Option<f64>,
    fp16_mult: Option<f64>,
    fp32_add: Option<f64>,
    fp32_mult: Option<f64>,
}

impl RawArithmetic {
    fn get(&self, key: &str) -> Option<f64> {
        match key {
            "int8_add" => self.int8_add,
            "int16_add" => self.int16_add,
            "int32_add" => self.int32_add,
            "int8_mult" => self.int8_mult,
            "int16_mult" => self.int16_mult,
            "int32_mult" => self.int32_mult,
            "fp16_add" => self.fp16_add,
            "fp16_mult" => self.fp16_mult,
            "fp32_add" => self.fp32_add,
            "fp32_mult" => self.fp32_mult,
            _ => None,
        }
    }
}

/// Parses and validates a spec; `file` names the source in errors.
pub fn parse(text: &str, file: &str) -> Result<Hardware, EnergyError> {
    let raw: RawSpec = EnergyError::parse_yaml(text, file)?;
    validate(raw, file)
}

fn validate(raw: RawSpec, file: &str) -> Result<Hardware, EnergyError> {
    let err = |field: &str, message: String| EnergyError::Spec {
        file: file.to_string(),
        field: field.to_string(),
        message,
    };
    if raw.name.trim().is_empty() {
        return Err(err("name", "must not be empty".into()));
    }
    if raw.word_bits == 0 || raw.word_bits > 64 {
        return Err(err(
            "word_bits",
            format!("must be 1..=64, got {}", raw.word_bits),
        ));
    }
    let word_bytes = raw.word_bits as f64 / 8.0;
    for (field, v) in [
        ("array.rows", raw.array.rows),
        ("array.cols", raw.array.cols),
    ] {
        if v == 0 {
            return Err(err(field, "the PE array needs at least one PE".into()));
        }
        if v > MAX_ARRAY_SIDE {
            return Err(err(
                field,
                format!("{v} PEs is above the maximum {MAX_ARRAY_SIDE}"),
            ));
        }
    }
    for (field, value, bytes) in [
        ("rf.bytes", raw.rf.bytes, true),
        ("rf.words", raw.rf.words, false),
        ("rf.ifmap", raw.rf.ifmap, false),
        ("rf.filter", raw.rf.filter, false),
        ("rf.psum", raw.rf.psum, false),
        ("buffer.bytes", raw.buffer.bytes, true),
        ("buffer.words", raw.buffer.words, false),
    ] {
        if let Some(v) = value {
            check_storage(v, bytes).map_err(|m| err(field, m))?;
        }
    }
    let model = raw.model.unwrap_or(CostModelKind::Dataflow);
    let rf = match (
        &raw.rf.bytes,
        &raw.rf.words,
        &raw.rf.ifmap,
        &raw.rf.filter,
        &raw.rf.psum,
    ) {
        (Some(b), None, None, None, None) => RfCapacity::Shared((*b as f64 / word_bytes) as u64),
        (None, Some(w), None, None, None) => RfCapacity::Shared(*w),
        (None, None, Some(i), Some(f), Some(p)) => RfCapacity::Split {
            ifmap: *i,
            filter: *f,
            psum: *p,
        },
        _ => {
            return Err(err(
                "rf",
                "give exactly one of `bytes`, `words`, or all of `ifmap`, `filter`, `psum`".into(),
            ))
        }
    };
    if model == CostModelKind::Dataflow {
        if let RfCapacity::Shared(0) = rf {
            // A dataflow model may have no RF (NLR hardware); that is allowed.
        }
        if let RfCapacity::Split {
            ifmap,
            filter,
            psum,
        } = rf
        {
            for (field, v) in [
                ("rf.ifmap", ifmap),
                ("rf.filter", filter),
                ("rf.psum", psum),
            ] {
                if v == 0 {
                    return Err(err(
                        field,
                        "a split RF needs at least one word per type".into(),
                    ));
                }
            }
        }
        if let (Some(b), RfCapacity::Shared(0)) = (raw.rf.bytes, rf) {
            if b > 0 {
                return Err(err(
                    "rf.bytes",
                    format!("{b} bytes is smaller than one {}-bit word", raw.word_bits),
                ));
            }
        }
    }
    let (buffer_words, buffer_field) = match (raw.buffer.bytes, raw.buffer.words) {
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
            buffer_field,
            format!("the buffer is smaller than one {}-bit word", raw.word_bits),
        ));
    }
    let dram_bandwidth = match raw.dram.and_then(|d| d.bandwidth) {
        Some(bw) if !BANDWIDTH.contains(&bw) => {
            return Err(err(
                "dram.bandwidth",
                format!(
                    "must be {:e} to {:e} words per cycle, got {bw}",
                    BANDWIDTH.start(),
                    BANDWIDTH.end()
                ),
            ))
        }
        other => other,
    };
    let mut bandwidths = [None, None];
    for (slot, field, value) in [
        (0, "buffer.bandwidth", raw.buffer.bandwidth),
        (
            1,
            "noc.bandwidth",
            raw.noc.as_ref().and_then(|n| n.bandwidth),
        ),
    ] {
        if let Some(bw) = value {
            if !(bw > 0.0 && bw.is_finite()) {
                return Err(err(
                    field,
                    format!("must be a positive number of words per cycle, got {bw}"),
                ));
            }
        }
        bandwidths[slot] = value;
    }
    let [buffer_bandwidth, noc_bandwidth] = bandwidths;
    let area = crate::area::AreaModel::from_raw(raw.area.as_ref(), file)?;
    let clock_mhz = raw.clock_mhz.unwrap_or(200.0);
    if !CLOCK_MHZ.contains(&clock_mhz) {
        return Err(err(
            "clock_mhz",
            format!(
                "must be {:e} to {:e} MHz, got {clock_mhz}",
                CLOCK_MHZ.start(),
                CLOCK_MHZ.end()
            ),
        ));
    }
    let e = &raw.energy;
    for (field, v) in [
        ("energy.mac", e.mac),
        ("energy.rf", e.rf),
        ("energy.array", e.array),
        ("energy.buffer", e.buffer),
        ("energy.dram", e.dram),
    ] {
        check_energy(v).map_err(|m| err(field, m))?;
    }
    let mut mac = e.mac;
    let mut multiplier = 1.0;
    if let Some(arith) = &raw.arithmetic {
        let precision = arith.precision.as_str();
        if !["int8", "int16", "int32", "fp16", "fp32"].contains(&precision) {
            return Err(err(
                "arithmetic.precision",
                format!("expected int8, int16, int32, fp16 or fp32, got {precision:?}"),
            ));
        }
        for op in ["add", "mult"] {
            let key = format!("{precision}_{op}");
            match arith.get(&key) {
                Some(v) => check_energy(v).map_err(|m| err(&format!("arithmetic.{key}"), m))?,
                None => {
                    return Err(err(
                        &format!("arithmetic.{key}"),
                        format!("needed for precision {precision}, but missing"),
                    ))
                }
            }
        }
        let add = arith.get(&format!("{precision}_add")).unwrap_or(0.0);
        let mult = arith.get(&format!("{precision}_mult")).unwrap_or(0.0);
        mac = add + mult;
        if mac > 0.0 {
            multiplier = mult / mac;
        }
    }
    let mut accumulator_bits = raw.word_bits;
    if let Some(scaling) = &raw.mac_scaling {
        if !(0.0..=1.0).contains(&scaling.multiplier) {
            return Err(err(
                "mac_scaling.multiplier",
                format!("must be a share in [0, 1], got {}", scaling.multiplier),
            ));
        }
        multiplier = scaling.multiplier;
        if let Some(bits) = scaling.accumulator_bits {
            if bits == 0 || bits > 64 {
                return Err(err(
                    "mac_scaling.accumulator_bits",
                    format!("must be 1..=64, got {bits}"),
                ));
            }
            accumulator_bits = bits;
        }
    }
    Ok(Hardware {
        name: raw.name,
        description: raw.description,
        model,
        array: Array {
            rows: raw.array.rows,
            cols: raw.array.cols,
        },
        rf,
        buffer_words,
        dram_bandwidth,
        word_bits: raw.word_bits,
        clock_mhz,
        skip_zeros: raw.skip_zeros,
        mac_scaling: MacScaling {
            multiplier,
            accumulator_bits,
        },
        bit_serial: raw.bit_serial,
        buffer_bandwidth,
        noc_bandwidth,
        area,
        energy: EnergyCosts {
            unit: e.unit,
            mac,
            rf: e.rf,
            array: e.array,
            buffer: e.buffer,
            dram: e.dram,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: t\narray: {rows: 4, cols: 4}\nrf: {words: 64}\n\
        buffer: {bytes: 1024}\nword_bits: 16\n\
        energy: {unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200}\n";

    fn field_of(text: &str) -> String {
        let err = parse(text, "spec.yaml").unwrap_err();
        match err.field() {
            Some(field) => field.to_string(),
            None => panic!("unexpected error {err}"),
        }
    }

    #[test]
    fn presets_load_with_their_numbers() {
        let eyeriss = preset("eyeriss").unwrap();
        assert_eq!(eyeriss.array.pes(), 168);
        assert_eq!(eyeriss.buffer_words, 108 * 1024 / 2);
        assert_eq!(
            eyeriss.rf,
            RfCapacity::Split {
                ifmap: 12,
                filter: 224,
                psum: 24
            }
        );
        let isca = preset("isca16").unwrap();
        assert_eq!((isca.array.pes(), isca.buffer_words), (256, 65536));
        assert_eq!(isca.rf, RfCapacity::Shared(256));
        assert_eq!(isca.energy.dram, 200.0);
        let h = preset("horowitz45").unwrap();
        assert_eq!(h.energy.unit, EnergyUnit::PicoJoule);
        assert!((h.energy.mac - 4.6).abs() < 1e-12);
        assert!(matches!(
            preset("tpu"),
            Err(EnergyError::UnknownPreset { .. })
        ));
    }

    #[test]
    fn bad_specs_name_the_field() {
        assert!(parse(GOOD, "spec.yaml").is_ok());
        assert_eq!(
            field_of(&GOOD.replace("dram: 200", "dram: -1")),
            "energy.dram"
        );
        assert_eq!(field_of(&GOOD.replace("rows: 4", "rows: 0")), "array.rows");
        assert_eq!(
            field_of(&GOOD.replace("bytes: 1024", "bytes: 1")),
            "buffer.bytes"
        );
        assert_eq!(
            field_of(&GOOD.replace("rf: {words: 64}", "rf: {words: 64, colour: 2}")),
            "rf.colour"
        );
        assert_eq!(
            field_of(&GOOD.replace("cols: 4", "cols: 4, depth: 2")),
            "array.depth"
        );
        assert_eq!(field_of(&GOOD.replace("mac: 1,", "mac: x,")), "energy.mac");
        let err = parse(&GOOD.replace("dram: 200", "dram: -1"), "spec.yaml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("spec.yaml: field `energy.dram`"), "{text}");
        assert!(text.contains("non-negative"), "{text}");
        let unknown = parse(&format!("{GOOD}colour: red\n"), "s.yaml").unwrap_err();
        assert!(unknown.to_string().contains("colour"), "{unknown}");
    }

    #[test]
    fn numbers_beyond_the_limits_are_refused_quickly() {
        let cases = [
            ("rows: 4", "rows: 1000000000000", "array.rows"),
            ("cols: 4", "cols: 4097", "array.cols"),
            ("dram: 200", "dram: 1e308", "energy.dram"),
            ("mac: 1,", "mac: .nan,", "energy.mac"),
            (
                "rf: {words: 64}",
                "rf: {words: 18446744073709551615}",
                "rf.words",
            ),
            ("bytes: 1024", "bytes: 18446744073709551615", "buffer.bytes"),
        ];
        for (from, to, field) in cases {
            let text = GOOD.replace(from, to);
            assert_ne!(text, GOOD, "{from}");
            assert_eq!(field_of(&text), field, "{to}");
        }
        assert_eq!(field_of(&format!("{GOOD}clock_mhz: 1e300\n")), "clock_mhz");
        assert_eq!(
            field_of(&format!("{GOOD}dram: {{bandwidth: 1e-300}}\n")),
            "dram.bandwidth"
        );
        // The largest accepted numbers parse.
        let big = GOOD
            .replace("rows: 4", "rows: 4096")
            .replace("dram: 200", "dram: 1e9");
        assert!(parse(&big, "spec.yaml").is_ok());
    }

    #[test]
    fn errors_keep_their_cause() {
        use std::error::Error;
        // A missing file: the io::Error is the source, the message names the file.
        let missing = load("no/such/spec.yaml").unwrap_err();
        assert!(matches!(missing, EnergyError::Io { .. }), "{missing}");
        let io = missing
            .source()
            .and_then(|e| e.downcast_ref::<std::io::Error>());
        assert_eq!(io.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
        assert!(
            missing.to_string().starts_with("no/such/spec.yaml: "),
            "{missing}"
        );
        // A YAML type error: the YAML error is the source; one line names file and field.
        let bad = parse(&GOOD.replace("mac: 1,", "mac: x,"), "spec.yaml").unwrap_err();
        assert!(bad.source().unwrap().is::<serde_norway::Error>(), "{bad:?}");
        let text = bad.to_string();
        assert!(
            text.starts_with("spec.yaml: field `energy.mac`: "),
            "{text}"
        );
        assert!(text.contains("line 6"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
}
