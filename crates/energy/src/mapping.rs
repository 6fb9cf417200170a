//! The mapping: a spatial pass ([`PassUnit`]) plus a temporal [`Blocking`] of the pass loops
//! over DRAM, buffer and RF, and its evaluation into access counts.
//!
//! # Access counting
//!
//! Per data type, the ISCA'16 formulation: a value is read `a` times from DRAM, each of those
//! `b` times from the buffer, each of those `c` times over the array, each of those `d` times
//! from the RF, so ifmaps and filters cost `a*e_DRAM + ab*e_buffer + abc*e_array + abcd*e_RF`
//! per value; psums are read and written, `(2a-1)*e_DRAM + 2a(b-1)*e_buffer + ab(c-1)*e_array
//! + 2abc(d-1)*e_RF`.
//!
//! The counts come from the blocking by reuse analysis: at a level boundary, a value is
//! fetched again for every iteration of a loop that does not index it (C for psums, M for
//! ifmaps, N for filters) *unless* that loop sits inside the innermost loop that does index it
//! at that level (then the value is still resident). Psums fetched `f` times cost `2f-1`
//! accesses (the first pass only writes). At the RF every MAC reads an ifmap and a filter
//! value and reads and writes a psum (`abcd` reads for ifmaps and filters, `2abcd` for psums:
//! the `2abc(d-1)` accumulations plus the write of each psum arriving over the array and the
//! read of each leaving), as in ISCA'16 Fig. 10.

use crate::dataflow::{Dim, PassUnit, RELEVANT};
use crate::spec::Hardware;
use serde::Serialize;

/// The four storage levels, outermost first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Dram,
    Buffer,
    Array,
    Rf,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Dram, Level::Buffer, Level::Array, Level::Rf];

    pub fn name(self) -> &'static str {
        match self {
            Level::Dram => "dram",
            Level::Buffer => "buffer",
            Level::Array => "array",
            Level::Rf => "rf",
        }
    }
}

/// Temporal levels of the blocking, outermost first.
pub const TEMPORAL: [Level; 3] = [Level::Dram, Level::Buffer, Level::Rf];

/// A blocking of the pass loops `[C, M, N]`: `factors[level][dim]` for the DRAM, buffer and RF
/// levels (their product is the loop count), and the loop order at the DRAM and buffer levels
/// (outermost first; the RF level's order does not change any count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Blocking {
    pub factors: [[u64; 3]; 3],
    pub order: [[Dim; 3]; 2],
}

/// Why a blocking does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Fit {
    Fits,
    /// The RF of one PE would need this many words.
    RfOverflow(f64),
    /// The buffer would need this many words.
    BufferOverflow(f64),
}

/// Accesses `[level][data type]` (words), with levels in [`Level::ALL`] order.
pub type Accesses = [[f64; 3]; 4];

/// Product over the dims that index data type `t` of `x[dim]`.
fn relevant_product(t: usize, x: [u64; 3]) -> f64 {
    (0..3)
        .filter(|&d| RELEVANT[t][d])
        .map(|d| x[d] as f64)
        .product()
}

impl Blocking {
    /// Words one PE's RF needs, per data type.
    pub fn rf_need(&self, unit: &PassUnit) -> [f64; 3] {
        let mut need = [0.0; 3];
        for (t, n) in need.iter_mut().enumerate() {
            *n = unit.rf_footprint[t] * relevant_product(t, self.factors[2]);
        }
        need
    }

    /// Words the buffer needs.
    pub fn buffer_need(&self, unit: &PassUnit) -> f64 {
        let inner = [0, 1, 2].map(|d| self.factors[1][d] * self.factors[2][d]);
        (0..3)
            .map(|t| {
                // Data streamed from DRAM occupy only their pass's space.
                let blocks = if unit.dram_streamed[t] {
                    1.0
                } else {
                    relevant_product(t, inner)
                };
                unit.buffer_footprint[t] * blocks
            })
            .sum()
    }

    /// The per-level status: whether the data each level must hold fit.
    pub fn fit(&self, unit: &PassUnit, hw: &Hardware) -> Fit {
        let rf = self.rf_need(unit);
        if !hw.rf.fits(rf) {
            return Fit::RfOverflow(rf.iter().sum());
        }
        let buffer = self.buffer_need(unit);
        if buffer > hw.buffer_words as f64 {
            return Fit::BufferOverflow(buffer);
        }
        Fit::Fits
    }

    /// How many times each data type crosses the boundary below `level` (0: DRAM -> buffer,
    /// 1: buffer -> array), over the whole layer, per distinct pass datum.
    pub fn fetches(&self, level: usize, t: usize, outer: f64) -> f64 {
        let f = &self.factors;
        let order = &self.order[level];
        let innermost = order
            .iter()
            .enumerate()
            .filter(|(_, &d)| RELEVANT[t][d as usize] && f[level][d as usize] > 1)
            .map(|(pos, _)| pos)
            .next_back();
        let Some(innermost) = innermost else {
            return outer;
        };
        let mut fetches = 1.0;
        for (pos, &dim) in order.iter().enumerate() {
            let d = dim as usize;
            if RELEVANT[t][d] {
                continue;
            }
            let mut times: u64 = f[..level].iter().map(|l| l[d]).product();
            if pos < innermost {
                times *= f[level][d];
            }
            fetches *= times as f64;
        }
        fetches
    }

    /// Fetch counts `[boundary][data type]`.
    pub fn all_fetches(&self) -> [[f64; 3]; 2] {
        let mut out = [[1.0; 3]; 2];
        for t in 0..3 {
            out[0][t] = self.fetches(0, t, 1.0);
            out[1][t] = self.fetches(1, t, out[0][t]);
        }
        out
    }

    /// Access counts per level and data type for the layer (one group).
    pub fn accesses(&self, unit: &PassUnit, macs: f64) -> Accesses {
        accesses_from_fetches(unit, self.all_fetches(), macs)
    }

    pub fn passes(&self) -> u64 {
        (0..3)
            .map(|d| self.factors.iter().map(|l| l[d]).product::<u64>())
            .product()
    }
}

/// Whether a pass's data of type `t` are streamed: not kept in the PEs for the next pass
/// ([`PassUnit::kept`]), so they come from the buffer into the array in every pass and no
/// loop order saves a buffer read or an array delivery of them.
pub fn streamed(unit: &PassUnit, t: usize) -> bool {
    !unit.kept[t]
}

/// Buffer -> array fetches of streamed data: once per iteration of every pass loop that does
/// not index the data type.
pub fn streamed_fetches(unit: &PassUnit, t: usize) -> f64 {
    (0..3)
        .filter(|&d| !RELEVANT[t][d])
        .map(|d| unit.loops[d] as f64)
        .product()
}

/// Access counts from fetch counts (see the module docs). Streamed data ([`streamed`]) are
/// fetched from the buffer in every pass whatever `fetches` says, and data streamed from
/// DRAM ([`PassUnit::dram_streamed`]) from DRAM too.
pub fn accesses_from_fetches(unit: &PassUnit, fetches: [[f64; 3]; 2], macs: f64) -> Accesses {
    let mut acc = [[0.0; 3]; 4];
    let mut fetches = fetches;
    for t in 0..3 {
        if unit.dram_streamed[t] {
            fetches[0][t] = streamed_fetches(unit, t);
        }
        if streamed(unit, t) {
            fetches[1][t] = streamed_fetches(unit, t);
        }
    }
    for t in 0..3 {
        let units = relevant_product(t, unit.loops);
        let psum = t == 2;
        let times = |f: f64| if psum { 2.0 * f - 1.0 } else { f };
        acc[0][t] = unit.dram_words[t] * units * times(fetches[0][t]);
        acc[1][t] = unit.buffer_reads[t] * units * times(fetches[1][t]);
        // A psum's trip between buffer and array is one fetch on the array: its hops
        // there are `ab(c-1)`, not doubled like the buffer's read and write.
        acc[2][t] = unit.array_reads[t] * units * fetches[1][t];
        acc[3][t] = unit.rf_per_mac[t] * macs;
    }
    acc
}

/// A complete mapping of one layer (one group).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mapping {
    pub unit: PassUnit,
    pub blocking: Blocking,
}

impl Mapping {
    /// Compute cycles of the layer (one group): passes times cycles per pass.
    pub fn compute_cycles(&self) -> f64 {
        self.unit.cycles * self.blocking.passes() as f64
    }

    /// A one-line description: spatial mapping, then the blocking per level.
    pub fn describe(&self) -> String {
        let names = ["C", "M", "N"];
        let level = |i: usize| {
            let f = self.blocking.factors[i];
            let dims: Vec<String> = if i < 2 {
                self.blocking.order[i]
                    .iter()
                    .filter(|d| f[**d as usize] > 1)
                    .map(|d| format!("{}{}", names[*d as usize], f[*d as usize]))
                    .collect()
            } else {
                (0..3)
                    .filter(|&d| f[d] > 1)
                    .map(|d| format!("{}{}", names[d], f[d]))
                    .collect()
            };
            if dims.is_empty() {
                "-".to_string()
            } else {
                dims.join(" ")
            }
        };
        format!(
            "{}; DRAM [{}] buffer [{}] RF [{}]",
            self.unit.spatial,
            level(0),
            level(1),
            level(2)
        )
    }
}
