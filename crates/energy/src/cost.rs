//! The cost model: turns a mapping's access counts into energy, cycles and DRAM traffic,
//! applying sparsity and bitwidth.
//!
//! * **Energy** = MACs x e_MAC + sum over levels and data types of accesses x e_level.
//! * **Bitwidth**: an access moving `b` bits of a type costs `b / word_bits` of the level's
//!   word energy; a MAC costs `e_MAC * (b_ifmap * b_filter) / word_bits^2`.
//! * **Zero gating**: a zero ifmap skips its MAC and the filter and psum RF accesses (the ifmap
//!   RF read is still needed to see the zero); cycles are unchanged. Where the hardware also
//!   skips zero weights (`skip_zeros.weight`), a zero weight likewise skips its MAC and the
//!   ifmap and psum RF accesses; a MAC then runs only when both operands are non-zero
//!   (densities taken as independent).
//! * **Run-length compression** of ifmaps and filters in DRAM and the buffer, in the Eyeriss
//!   code: a 64-bit word holds three (5-bit zero run, 16-bit value) pairs and a 1-bit tail flag,
//!   so a non-zero costs 64/3 bits and a zero run longer than 31 needs one more pair. Data are
//!   stored compressed only when that is smaller than raw words. Psums are never compressed.

use crate::dataflow::Dataflow;
use crate::mapping::{Accesses, Level, Mapping};
use crate::spec::Hardware;
use crate::workload::{DataType, Workload};
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

/// Energy of one access `[level][data type]` and of one MAC, for one layer on one machine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostWeights {
    pub access: [[f64; 3]; 4],
    pub mac: f64,
    /// DRAM bytes per DRAM access, per data type.
    pub dram_bytes: [f64; 3],
    /// DRAM bandwidth (words per cycle), if limited.
    pub dram_bandwidth: Option<f64>,
}

impl CostWeights {
    pub fn new(hw: &Hardware, w: &Workload) -> CostWeights {
        let word = hw.word_bits as f64;
        let bits = w.bits.resolve(hw.word_bits).map(|b| b as f64);
        let rlc = [
            rlc_ratio(w.density.ifmap, bits[0] as u32),
            rlc_ratio(w.density.weight, bits[1] as u32),
            1.0,
        ];
        let skip = hw.skip_zeros;
        let ifmap_gate = if skip.ifmap { w.density.ifmap } else { 1.0 };
        let weight_gate = if skip.weight { w.density.weight } else { 1.0 };
        // RF accesses per data type, gated by the zeros of the other operand(s).
        let rf_gate = [weight_gate, ifmap_gate, ifmap_gate * weight_gate];
        let gate = ifmap_gate * weight_gate;
        let e = &hw.energy;
        let per_level = [e.dram, e.buffer, e.array, e.rf];
        let mut access = [[0.0; 3]; 4];
        for (l, row) in access.iter_mut().enumerate() {
            for (t, cell) in row.iter_mut().enumerate() {
                let mut v = per_level[l] * bits[t] / word;
                if l <= 1 {
                    v *= rlc[t];
                }
                if l == 3 {
                    v *= rf_gate[t];
                }
                *cell = v;
            }
        }
        CostWeights {
            access,
            mac: e.mac * bits[0] * bits[1] / (word * word) * gate,
            dram_bytes: [0, 1, 2].map(|t| bits[t] / 8.0 * rlc[t]),
            dram_bandwidth: hw.dram_bandwidth,
        }
    }

    /// Energy of the data movement of `acc`.
    pub fn data_energy(&self, acc: &Accesses) -> f64 {
        let mut total = 0.0;
        for l in 0..4 {
            for t in 0..3 {
                total += acc[l][t] * self.access[l][t];
            }
        }
        total
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

/// Accesses of the three data types at one level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TypeCounts {
    pub ifmap: f64,
    pub filter: f64,
    pub psum: f64,
}

impl TypeCounts {
    fn from(x: [f64; 3]) -> TypeCounts {
        TypeCounts {
            ifmap: x[0],
            filter: x[1],
            psum: x[2],
        }
    }
}

/// Accesses per level and data type (words, whole batch, all groups).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LevelAccesses {
    pub dram: TypeCounts,
    pub buffer: TypeCounts,
    pub array: TypeCounts,
    pub rf: TypeCounts,
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

/// Reuse factors per data type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ReuseByType {
    pub ifmap: Reuse,
    pub filter: Reuse,
    pub psum: Reuse,
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
    /// Fraction of PE-cycles doing a MAC.
    pub utilization: f64,
    pub energy: LevelEnergy,
    pub energy_by_type: TypeEnergy,
    pub accesses: LevelAccesses,
    pub reuse: ReuseByType,
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
    let mut per_level = [0.0; 4];
    let mut per_type = [0.0; 3];
    let mut scaled = [[0.0; 3]; 4];
    for l in 0..4 {
        for t in 0..3 {
            scaled[l][t] = acc[l][t] * groups;
            let e = scaled[l][t] * weights.access[l][t];
            per_level[l] += e;
            per_type[t] += e;
        }
    }
    let mac = macs as f64 * weights.mac;
    let total = mac + per_level.iter().sum::<f64>();
    let compute = mapping.compute_cycles() * groups;
    let dram_bytes: f64 = (0..3).map(|t| scaled[0][t] * weights.dram_bytes[t]).sum();
    let cycles = match hw.dram_bandwidth {
        Some(bw) => compute.max(scaled[0].iter().sum::<f64>() / bw),
        None => compute,
    };
    let values = [
        (w.nest.n * w.nest.groups * w.nest.c) as f64 * (w.ifmap_rows() * w.ifmap_cols()) as f64,
        w.nest.weights() as f64,
        w.nest.ofmap_elements() as f64,
    ];
    let reuse_of = |t: usize| {
        let psum = t == DataType::Psum.index();
        // Undo the read+write doubling of psums so a, b, c, d count fetches.
        let fetches = |x: f64| if psum { (x + values[t]) / 2.0 } else { x };
        let dram = fetches(scaled[0][t]);
        let buffer = fetches(scaled[1][t]);
        let array = fetches(scaled[2][t]);
        let rf = if psum {
            scaled[3][t] / 2.0
        } else {
            scaled[3][t]
        };
        Reuse {
            a: ratio(dram, values[t]),
            b: ratio(buffer, dram),
            c: ratio(array, buffer),
            d: ratio(rf, array),
        }
    };
    LayerCost {
        name: w.name.clone(),
        class: w.class,
        dataflow: mapping.unit.dataflow,
        macs,
        cycles,
        utilization: ratio(macs as f64, cycles * hw.array.pes() as f64),
        energy: LevelEnergy {
            mac,
            rf: per_level[Level::Rf as usize],
            array: per_level[Level::Array as usize],
            buffer: per_level[Level::Buffer as usize],
            dram: per_level[Level::Dram as usize],
            total,
        },
        energy_by_type: TypeEnergy {
            ifmap: per_type[0],
            filter: per_type[1],
            psum: per_type[2],
            compute: mac,
        },
        accesses: LevelAccesses {
            dram: TypeCounts::from(scaled[0]),
            buffer: TypeCounts::from(scaled[1]),
            array: TypeCounts::from(scaled[2]),
            rf: TypeCounts::from(scaled[3]),
        },
        reuse: ReuseByType {
            ifmap: reuse_of(0),
            filter: reuse_of(1),
            psum: reuse_of(2),
        },
        dram_bytes,
        mapping: mapping.describe(),
    }
}
