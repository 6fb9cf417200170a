//! The cost model: turns a mapping's access counts into energy, cycles and DRAM traffic,
//! applying sparsity and bitwidth.
//!
//! * **Energy** = MACs x e_MAC + sum over levels and data types of accesses x e_level.
//! * **Bitwidth**: an access moving `b` bits of a type costs `b / word_bits` of the level's
//!   word energy; a MAC costs [`Hardware::mac_energy`]: its multiplier share scales with
//!   `b_ifmap * b_filter / word_bits^2`, its adder share with the psum (accumulator) width.
//!   DRAM bandwidth is in words per cycle, so narrower data also take fewer DRAM cycles; on
//!   bit-serial hardware compute cycles scale with `b_ifmap / word_bits`.
//! * **Zero gating**: a zero ifmap skips its MAC and the filter and psum RF accesses (the ifmap
//!   RF read is still needed to see the zero); cycles are unchanged. Where the hardware also
//!   skips zero weights (`skip_zeros.weight`), a zero weight likewise skips its MAC and the
//!   ifmap and psum RF accesses; a MAC then runs only when both operands are non-zero
//!   (densities taken as independent).
//! * **Run-length compression** of ifmaps and filters in DRAM and the buffer, in the Eyeriss
//!   code: a 64-bit word holds three (5-bit zero run, 16-bit value) pairs and a 1-bit tail flag,
//!   so a non-zero costs 64/3 bits and a zero run longer than 31 needs one more pair. Data are
//!   stored compressed only when that is smaller than raw words. Psums are never compressed.

use crate::access::{Accesses, Level, PerLevel, PerTensor, Tensor};
use crate::dataflow::Dataflow;
use crate::mapping::Mapping;
use crate::spec::Hardware;
use crate::workload::Workload;
use joule_model::LayerClass;
use serde::Serialize;

/// Fraction of raw size that run-length compression leaves for data of density `d` with
/// `word_bits`-bit values (1.0 when compression would not help).
pub fn rlc_ratio(density: f64, word_bits: u32) -> f64 {
    let d = density.clamp(0.0, 1.0);
    // One pair per non-zero, plus a filler pair for every 31 zeros of a long run.
    let pairs = d + (1.0 - d).powi(32) / 31.0;
    (pairs * (64.0 / 3.0) / word_bits as f64).min(1.0)
}

/// Energy of one access of each tensor at each level, and of one MAC, for one layer on one
/// machine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostWeights {
    pub access: PerLevel<PerTensor<f64>>,
    pub mac: f64,
    /// DRAM bytes per DRAM access, per tensor.
    pub dram_bytes: PerTensor<f64>,
    /// DRAM bandwidth (words per cycle), if limited.
    pub dram_bandwidth: Option<f64>,
    /// Words of bandwidth one DRAM access of each tensor takes: `bits / word_bits`.
    pub dram_words: PerTensor<f64>,
    /// Factor on compute cycles (bit-serial hardware: `b_ifmap / word_bits`, else 1).
    pub compute_scale: f64,
    /// Buffer and array network (NoC) bandwidths (words per cycle), if limited.
    pub buffer_bandwidth: Option<f64>,
    pub noc_bandwidth: Option<f64>,
    /// Share of the MACs that take a cycle: the density of the operands whose zeros the
    /// hardware skips in the compressed domain (`skip_zeros.cycles`), else 1.
    pub cycle_gate: f64,
}

impl CostWeights {
    pub fn new(hw: &Hardware, w: &Workload) -> CostWeights {
        let word = hw.word_bits as f64;
        let bits = w.bits.resolve(hw.word_bits).map(f64::from);
        let rlc = PerTensor {
            ifmap: rlc_ratio(w.density.ifmap, bits.ifmap as u32),
            filter: rlc_ratio(w.density.weight, bits.filter as u32),
            psum: 1.0,
        };
        let skip = hw.skip_zeros;
        let ifmap_gate = if skip.ifmap { w.density.ifmap } else { 1.0 };
        let weight_gate = if skip.weight { w.density.weight } else { 1.0 };
        // RF accesses of each tensor, gated by the zeros of the other operand(s).
        let rf_gate = PerTensor {
            ifmap: weight_gate,
            filter: ifmap_gate,
            psum: ifmap_gate * weight_gate,
        };
        let gate = ifmap_gate * weight_gate;
        let e = &hw.energy;
        let per_level = PerLevel {
            dram: e.dram,
            buffer: e.buffer,
            array: e.array,
            rf: e.rf,
        };
        let access = PerLevel::from_fn(|level| {
            PerTensor::from_fn(|t| {
                let v = per_level[level] * bits[t] / word;
                match level {
                    // Compressed where stored.
                    Level::Dram | Level::Buffer => v * rlc[t],
                    Level::Array => v,
                    Level::Rf => v * rf_gate[t],
                }
            })
        });
        CostWeights {
            access,
            mac: hw.mac_energy(bits) * gate,
            dram_bytes: PerTensor::from_fn(|t| bits[t] / 8.0 * rlc[t]),
            dram_bandwidth: hw.dram_bandwidth,
            dram_words: PerTensor::from_fn(|t| bits[t] / word),
            compute_scale: hw.compute_scale(bits.ifmap),
            buffer_bandwidth: hw.buffer_bandwidth,
            noc_bandwidth: hw.noc_bandwidth,
            cycle_gate: if skip.cycles { gate } else { 1.0 },
        }
    }

    /// Cycles of a mapping that computes for `compute_cycles` (dense, at full width) and
    /// makes the accesses `acc`: the longest of compute (scaled for bit-serial PEs and for
    /// zeros skipped in the compressed domain) and the transfers at DRAM, buffer and array
    /// network (NoC) bandwidth.
    #[inline]
    pub fn cycles_with(&self, compute_cycles: f64, acc: &Accesses) -> f64 {
        let compute = compute_cycles * self.compute_scale * self.cycle_gate;
        let transfers = self.transfer_cycles(acc);
        compute
            .max(transfers.dram)
            .max(transfers.buffer)
            .max(transfers.array)
    }

    /// [`CostWeights::cycles_with`] counting only DRAM transfers (for callers that have
    /// only the DRAM accesses; the same on machines whose buffer and NoC are unlimited).
    pub fn cycles(&self, compute_cycles: f64, dram: &PerTensor<f64>) -> f64 {
        let acc = Accesses {
            dram: *dram,
            ..Accesses::default()
        };
        self.cycles_with(compute_cycles, &acc)
    }

    /// Cycles each level needs to move `acc` at its bandwidth (0 where unlimited; the RF is
    /// never the bound: it is read in step with the MACs).
    #[inline]
    pub fn transfer_cycles(&self, acc: &Accesses) -> PerLevel<f64> {
        let at = |level: Level, bandwidth: Option<f64>| match bandwidth {
            Some(bw) => {
                let words: f64 = Tensor::ALL
                    .into_iter()
                    .map(|t| acc[level][t] * self.dram_words[t])
                    .sum();
                words / bw
            }
            None => 0.0,
        };
        PerLevel {
            dram: at(Level::Dram, self.dram_bandwidth),
            buffer: at(Level::Buffer, self.buffer_bandwidth),
            array: at(Level::Array, self.noc_bandwidth),
            rf: 0.0,
        }
    }

    /// Energy of the data movement of `acc`.
    #[inline]
    pub fn data_energy(&self, acc: &Accesses) -> f64 {
        acc.dot(&self.access)
    }
}

/// Energy per level, plus compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LevelEnergy {
    pub mac: f64,
    pub rf: f64,
    pub array: f64,
    pub buffer: f64,
    pub dram: f64,
    pub total: f64,
}

/// Energy per data type, plus compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TypeEnergy {
    pub ifmap: f64,
    pub filter: f64,
    pub psum: f64,
    pub compute: f64,
}

/// The ISCA'16 reuse factors of one data type: `a` DRAM reads per value, `b` buffer reads
/// per DRAM read, `c` array deliveries per buffer read, `d` RF reads per array delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Reuse {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
}

/// The cost of one layer under its best mapping. Energies are in the hardware's unit and,
/// like every count here, summed over the whole batch and all groups.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerCost {
    pub name: String,
    pub class: LayerClass,
    pub dataflow: Dataflow,
    pub macs: u64,
    pub cycles: f64,
    /// Fraction of PE-cycles doing a MAC (on bit-serial hardware, of the MACs the PEs could
    /// finish at the layer's ifmap width).
    pub utilization: f64,
    pub energy: LevelEnergy,
    pub energy_by_type: TypeEnergy,
    /// Accesses (words) per level and tensor.
    pub accesses: Accesses,
    /// Reuse factors per tensor.
    pub reuse: PerTensor<Reuse>,
    pub dram_bytes: f64,
    /// The chosen mapping, described.
    pub mapping: String,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Costs a layer (`groups` identical groups) under `mapping`, whose access counts are `acc`
/// for one group.
pub fn layer_cost(w: &Workload, hw: &Hardware, mapping: &Mapping, acc: &Accesses) -> LayerCost {
    let groups = w.nest.groups.max(1) as f64;
    let weights = CostWeights::new(hw, w);
    let macs = w.nest.macs();
    let mut per_level = PerLevel::<f64>::default();
    let mut per_type = PerTensor::<f64>::default();
    let mut scaled = Accesses::default();
    for l in Level::ALL {
        for t in Tensor::ALL {
            scaled[l][t] = acc[l][t] * groups;
            let e = scaled[l][t] * weights.access[l][t];
            per_level[l] += e;
            per_type[t] += e;
        }
    }
    let mac = macs as f64 * weights.mac;
    let total = mac + (per_level.dram + per_level.buffer + per_level.array + per_level.rf);
    let dram_bytes: f64 = Tensor::ALL
        .into_iter()
        .map(|t| scaled.dram[t] * weights.dram_bytes[t])
        .sum();
    let cycles = weights.cycles_with(mapping.compute_cycles() * groups, &scaled);
    // Distinct values of each tensor.
    let values = PerTensor {
        ifmap: (w.nest.n * w.nest.groups * w.nest.c) as f64
            * (w.ifmap_rows() * w.ifmap_cols()) as f64,
        filter: w.nest.weights() as f64,
        psum: w.nest.ofmap_elements() as f64,
    };
    let reuse = PerTensor::from_fn(|t| {
        let psum = t == Tensor::Psum;
        // Undo the read+write doubling of psums so a, b, c, d count fetches.
        let fetches = |x: f64| if psum { (x + values[t]) / 2.0 } else { x };
        let dram = fetches(scaled.dram[t]);
        let buffer = fetches(scaled.buffer[t]);
        let array = fetches(scaled.array[t]);
        let rf = if psum {
            scaled.rf[t] / 2.0
        } else {
            scaled.rf[t]
        };
        Reuse {
            a: ratio(dram, values[t]),
            b: ratio(buffer, dram),
            c: ratio(array, buffer),
            d: ratio(rf, array),
        }
    });
    LayerCost {
        name: w.name.clone(),
        class: w.class,
        dataflow: mapping.unit.dataflow,
        macs,
        cycles,
        // Bit-serial PEs finish `1 / compute_scale` MACs per cycle each when busy; PEs that
        // skip zeros in the compressed domain run only `cycle_gate` of the MACs.
        utilization: ratio(
            macs as f64 * weights.compute_scale * weights.cycle_gate,
            cycles * hw.array.pes() as f64,
        ),
        energy: LevelEnergy {
            mac,
            rf: per_level.rf,
            array: per_level.array,
            buffer: per_level.buffer,
            dram: per_level.dram,
            total,
        },
        energy_by_type: TypeEnergy {
            ifmap: per_type.ifmap,
            filter: per_type.filter,
            psum: per_type.psum,
            compute: mac,
        },
        accesses: scaled,
        reuse,
        dram_bytes,
        mapping: mapping.describe(),
    }
}
