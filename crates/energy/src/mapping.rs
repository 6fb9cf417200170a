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

use crate::access::{Accesses, Level, PerTensor, Tensor};
use crate::dataflow::{Dim, PassUnit};
use crate::spec::Hardware;
use serde::Serialize;

/// Temporal levels of the blocking, outermost first.
pub const TEMPORAL: [Level; 3] = [Level::Dram, Level::Buffer, Level::Rf];

/// Where a temporal level's row sits in [`Blocking::factors`]; the array level has no
/// temporal loops (its part of the mapping is the spatial pass).
#[inline]
fn temporal_slot(level: Level) -> usize {
    match level {
        Level::Dram => 0,
        Level::Buffer => 1,
        Level::Rf => 2,
        Level::Array => panic!("the array level has no temporal loops"),
    }
}

/// A blocking of the pass loops `[C, M, N]`: `factors[level][dim]` for the levels in
/// [`TEMPORAL`] order (DRAM, buffer, RF; their product is the loop count), and the loop order
/// at the DRAM and buffer levels (outermost first; the RF level's order does not change any
/// count). Read and write them by level with [`Blocking::factors_at`],
/// [`Blocking::set_factors`], [`Blocking::order_at`] and [`Blocking::set_order`].
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

/// Product over the dims that index `tensor` of `x[dim]`.
#[inline]
pub(crate) fn relevant_product(tensor: Tensor, x: [u64; 3]) -> f64 {
    Dim::ALL
        .into_iter()
        .filter(|&d| d.indexes(tensor))
        .map(|d| x[d as usize] as f64)
        .product()
}

impl Blocking {
    /// The loop factors `[C, M, N]` at a temporal level (DRAM, buffer or RF).
    #[inline]
    pub fn factors_at(&self, level: Level) -> [u64; 3] {
        self.factors[temporal_slot(level)]
    }

    /// Sets the loop factors `[C, M, N]` at a temporal level.
    #[inline]
    pub fn set_factors(&mut self, level: Level, factors: [u64; 3]) {
        self.factors[temporal_slot(level)] = factors;
    }

    /// The loop order (outermost first) at the DRAM or buffer level.
    #[inline]
    pub fn order_at(&self, level: Level) -> [Dim; 3] {
        self.order[temporal_slot(level)]
    }

    /// Sets the loop order at the DRAM or buffer level.
    #[inline]
    pub fn set_order(&mut self, level: Level, order: [Dim; 3]) {
        self.order[temporal_slot(level)] = order;
    }

    /// Words one PE's RF needs, per tensor.
    #[inline]
    pub fn rf_need(&self, unit: &PassUnit) -> PerTensor<f64> {
        let rf = self.factors_at(Level::Rf);
        PerTensor::from_fn(|t| unit.rf_footprint[t] * relevant_product(t, rf))
    }

    /// Words the buffer needs.
    #[inline]
    pub fn buffer_need(&self, unit: &PassUnit) -> f64 {
        let (buffer, rf) = (self.factors_at(Level::Buffer), self.factors_at(Level::Rf));
        let inner = Dim::ALL.map(|d| buffer[d as usize] * rf[d as usize]);
        Tensor::ALL
            .into_iter()
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
            return Fit::RfOverflow(rf.sum());
        }
        let buffer = self.buffer_need(unit);
        if buffer > hw.buffer_words as f64 {
            return Fit::BufferOverflow(buffer);
        }
        Fit::Fits
    }

    /// How many times `tensor` crosses the boundary below `level` ([`Level::Dram`]: DRAM ->
    /// buffer, [`Level::Buffer`]: buffer -> array), over the whole layer, per distinct pass
    /// datum; `outer` is the count at the boundary above (1 for DRAM).
    pub fn fetches(&self, level: Level, tensor: Tensor, outer: f64) -> f64 {
        let slot = temporal_slot(level);
        let f = &self.factors;
        let order = &self.order[slot];
        let innermost = order
            .iter()
            .enumerate()
            .filter(|(_, &d)| d.indexes(tensor) && f[slot][d as usize] > 1)
            .map(|(pos, _)| pos)
            .next_back();
        let Some(innermost) = innermost else {
            return outer;
        };
        let mut fetches = 1.0;
        for (pos, &dim) in order.iter().enumerate() {
            if dim.indexes(tensor) {
                continue;
            }
            let d = dim as usize;
            let mut times: u64 = f[..slot].iter().map(|l| l[d]).product();
            if pos < innermost {
                times *= f[slot][d];
            }
            fetches *= times as f64;
        }
        fetches
    }

    /// Fetch counts per tensor across the two boundaries below DRAM and below the buffer.
    pub fn all_fetches(&self) -> Fetches {
        let mut out = Fetches::default();
        for t in Tensor::ALL {
            out.dram[t] = self.fetches(Level::Dram, t, 1.0);
            out.buffer[t] = self.fetches(Level::Buffer, t, out.dram[t]);
        }
        out
    }

    /// Access counts per level and tensor for the layer (one group).
    pub fn accesses(&self, unit: &PassUnit, macs: f64) -> Accesses {
        accesses_from_fetches(unit, self.all_fetches(), macs)
    }

    pub fn passes(&self) -> u64 {
        Dim::ALL
            .into_iter()
            .map(|d| self.factors.iter().map(|l| l[d as usize]).product::<u64>())
            .product()
    }
}

/// How many times each tensor's pass data cross a level boundary: `dram` from DRAM into
/// the buffer, `buffer` from the buffer into the array.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Fetches {
    pub dram: PerTensor<f64>,
    pub buffer: PerTensor<f64>,
}

impl Default for Fetches {
    /// Every datum fetched once at every boundary.
    fn default() -> Self {
        Fetches {
            dram: PerTensor::splat(1.0),
            buffer: PerTensor::splat(1.0),
        }
    }
}

/// Whether a pass's `tensor` data are streamed: not kept in the PEs for the next pass
/// ([`PassUnit::kept`]), so they come from the buffer into the array in every pass and no
/// loop order saves a buffer read or an array delivery of them.
#[inline]
pub fn streamed(unit: &PassUnit, tensor: Tensor) -> bool {
    !unit.kept[tensor]
}

/// Buffer -> array fetches of streamed data: once per iteration of every pass loop that does
/// not index the tensor.
pub fn streamed_fetches(unit: &PassUnit, tensor: Tensor) -> f64 {
    Dim::ALL
        .into_iter()
        .filter(|&d| !d.indexes(tensor))
        .map(|d| unit.loops[d as usize] as f64)
        .product()
}

/// Access counts from fetch counts (see the module docs). Streamed data ([`streamed`]) are
/// fetched from the buffer in every pass whatever `fetches` says, and data streamed from
/// DRAM ([`PassUnit::dram_streamed`]) from DRAM too.
#[inline]
pub fn accesses_from_fetches(unit: &PassUnit, fetches: Fetches, macs: f64) -> Accesses {
    let mut acc = Accesses::default();
    let mut fetches = fetches;
    for t in Tensor::ALL {
        if unit.dram_streamed[t] {
            fetches.dram[t] = streamed_fetches(unit, t);
        }
        if streamed(unit, t) {
            fetches.buffer[t] = streamed_fetches(unit, t);
        }
    }
    for t in Tensor::ALL {
        let units = relevant_product(t, unit.loops);
        let psum = t == Tensor::Psum;
        let times = |f: f64| if psum { 2.0 * f - 1.0 } else { f };
        acc.dram[t] = unit.dram_words[t] * units * times(fetches.dram[t]);
        acc.buffer[t] = unit.buffer_reads[t] * units * times(fetches.buffer[t]);
        // A psum's trip between buffer and array is one fetch on the array: its hops
        // there are `ab(c-1)`, not doubled like the buffer's read and write.
        acc.array[t] = unit.array_reads[t] * units * fetches.buffer[t];
        acc.rf[t] = unit.rf_per_mac[t] * macs;
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
        let level = |level: Level| {
            let f = self.blocking.factors_at(level);
            let order = match level {
                Level::Rf => Dim::ALL,
                _ => self.blocking.order_at(level),
            };
            let dims: Vec<String> = order
                .iter()
                .filter(|d| f[**d as usize] > 1)
                .map(|d| format!("{}{}", names[*d as usize], f[*d as usize]))
                .collect();
            if dims.is_empty() {
                "-".to_string()
            } else {
                dims.join(" ")
            }
        };
        format!(
            "{}; DRAM [{}] buffer [{}] RF [{}]",
            self.unit.spatial,
            level(Level::Dram),
            level(Level::Buffer),
            level(Level::Rf)
        )
    }
}
