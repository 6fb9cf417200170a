//! Mapping one CONV/FC layer onto crossbar arrays, and its conversion counts, energy and
//! cycles.
//!
//! Per group, the unrolled filter matrix has `K = C*R*S` rows and `M * slices` columns, where
//! `slices = ceil(filter_bits / cell_bits)` cells hold one weight (bit slicing across columns).
//! It is tiled over `ceil(K / rows) x ceil(M * slices / cols)` arrays. Every ofmap pixel (`N*P*Q`
//! input vectors per group) is one matrix-vector product:
//!
//! * **DAC**: each used row of each array converts its ifmap value once per input step
//!   (`steps = ceil(ifmap_bits / dac_bits)`, bit-serial inputs): `NPQ * K * col_tiles * steps`
//!   per group. Padding rows of a partly filled array are not driven.
//! * **Array**: each used cell of each array is read once per step (one analog MAC slice).
//! * **ADC**: each used column of each array is converted once per step:
//!   `NPQ * row_tiles * M * slices * steps` per group.
//! * **Digital**: one shift-add per ADC output (merging slices and steps), plus
//!   `NPQ * M * (row_tiles - 1)` additions of psums across row tiles.
//! * **Buffer**: each im2col ifmap value read once (broadcast to the column tiles), each
//!   ofmap value written once.
//! * **DRAM**: a layer whose ifmap and ofmap do not fit in the buffer together reads its ifmap
//!   from and writes its ofmap to DRAM; weights come from DRAM only when they are programmed.
//! * **Weight programming**: every used cell written once, with the weights read from DRAM.
//!
//! Zero ifmaps are not skipped: a crossbar converts and sums every row.

use crate::access::PerTensor;
use crate::pim::spec::PimHardware;
use crate::workload::Workload;
use serde::Serialize;

/// Energy by PIM component, in the spec's unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Components {
    pub dac: f64,
    pub array: f64,
    pub adc: f64,
    pub digital: f64,
    pub buffer: f64,
    pub dram: f64,
    /// Writing the weights into the arrays (and reading them from DRAM). Counted in
    /// `total` only when the weights are not resident (reprogrammed every inference).
    pub weight_programming: f64,
    /// Energy per inference batch: the components above, less resident weight programming.
    pub total: f64,
}

impl Components {
    pub fn add(&mut self, o: &Components) {
        self.dac += o.dac;
        self.array += o.array;
        self.adc += o.adc;
        self.digital += o.digital;
        self.buffer += o.buffer;
        self.dram += o.dram;
        self.weight_programming += o.weight_programming;
        self.total += o.total;
    }
}

/// How a layer sits on the arrays, before costing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ArrayMapping {
    /// Rows of the unrolled filter matrix per group (`C*R*S`).
    pub matrix_rows: u64,
    /// Columns per group (`M * slices`).
    pub matrix_cols: u64,
    /// Cells per weight.
    pub slices: u64,
    /// Array reads per input vector (bit-serial input steps).
    pub steps: u64,
    pub row_tiles: u64,
    pub col_tiles: u64,
    /// Arrays for one copy of the layer's weights (all groups).
    pub arrays: u64,
    pub cells_used: u64,
    pub cells_allocated: u64,
}

impl ArrayMapping {
    pub fn new(w: &Workload, hw: &PimHardware) -> ArrayMapping {
        let n = &w.nest;
        let bits = w.bits.resolve(hw.word_bits);
        let (ifmap_bits, filter_bits) = (bits.ifmap, bits.filter);
        let slices = (filter_bits as u64).div_ceil(hw.array.cell_bits as u64);
        let steps = (ifmap_bits as u64).div_ceil(hw.dac.bits as u64);
        let matrix_rows = (n.c * n.r * n.s) as u64;
        let matrix_cols = n.m as u64 * slices;
        let row_tiles = matrix_rows.div_ceil(hw.array.rows);
        let col_tiles = matrix_cols.div_ceil(hw.array.cols);
        let groups = n.groups as u64;
        let arrays = groups * row_tiles * col_tiles;
        ArrayMapping {
            matrix_rows,
            matrix_cols,
            slices,
            steps,
            row_tiles,
            col_tiles,
            arrays,
            cells_used: groups * matrix_rows * matrix_cols,
            cells_allocated: arrays * hw.array.cells(),
        }
    }

    /// Used cells / allocated cells.
    pub fn utilization(&self) -> f64 {
        self.cells_used as f64 / self.cells_allocated as f64
    }
}

/// The PIM part of a layer's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PimLayer {
    pub arrays: u64,
    /// Copies of the layer's weights working on different ofmap pixels in parallel.
    pub replication: u64,
    pub row_tiles: u64,
    pub col_tiles: u64,
    pub cells_used: u64,
    pub cells_allocated: u64,
    pub dac_conversions: f64,
    pub adc_conversions: f64,
    pub digital_ops: f64,
    pub components: Components,
}

/// Costs of one layer: its PIM report, cycles, and the ifmap/ofmap buffer and DRAM words.
#[derive(Clone, Debug, PartialEq)]
pub struct PimLayerCost {
    pub mapping: ArrayMapping,
    pub pim: PimLayer,
    pub cycles: f64,
    /// Words of each tensor read or written in the buffer and in DRAM.
    pub buffer_words: PerTensor<f64>,
    pub dram_words: PerTensor<f64>,
    /// Energy of the ifmap / weight / ofmap movement (for `energy_by_type`).
    pub by_type: PerTensor<f64>,
}

/// Costs layer `w` with `replication` copies; `resident`: the weights stay in the arrays
/// across inferences (else they are programmed every inference).
pub fn layer_cost(
    w: &Workload,
    hw: &PimHardware,
    replication: u64,
    resident: bool,
) -> PimLayerCost {
    let m = ArrayMapping::new(w, hw);
    let n = &w.nest;
    let e = &hw.energy;
    let word = hw.word_bits as f64;
    let PerTensor {
        ifmap: ifmap_bits,
        filter: filter_bits,
        psum: psum_bits,
    } = w.bits.resolve(hw.word_bits).map(f64::from);
    let groups = n.groups as f64;
    let vectors = (n.n * n.p * n.q) as f64; // input vectors per group
    let steps = m.steps as f64;
    let dac = groups * vectors * m.matrix_rows as f64 * m.col_tiles as f64 * steps;
    let adc = groups * vectors * m.row_tiles as f64 * m.matrix_cols as f64 * steps;
    let cell_reads = vectors * m.cells_used as f64 * steps;
    let accumulations = groups * vectors * n.m as f64 * (m.row_tiles - 1) as f64;
    let digital_ops = adc + accumulations;
    let ifmap_reads = groups * vectors * m.matrix_rows as f64;
    let ofmap_writes = n.ofmap_elements() as f64;
    let ifmap_words = n.ifmap_elements() as f64 * ifmap_bits / word;
    let ofmap_words = ofmap_writes * psum_bits / word;
    let spill = ifmap_words + ofmap_words > hw.buffer_words as f64;
    let weight_words = n.weights() as f64 * filter_bits / word;
    let mut dram_words = PerTensor::splat(0.0);
    if spill {
        dram_words.ifmap = ifmap_words;
        dram_words.psum = ofmap_words;
    }
    let programming = m.cells_used as f64 * e.write + weight_words * e.dram;
    if !resident {
        dram_words.filter = weight_words;
    }
    let buffer_words = PerTensor {
        ifmap: ifmap_reads * ifmap_bits / word,
        filter: 0.0,
        psum: ofmap_writes * psum_bits / word,
    };
    let mut c = Components {
        dac: dac * hw.dac.energy,
        array: cell_reads * e.cell,
        adc: adc * hw.adc.energy,
        digital: digital_ops * e.digital,
        buffer: (buffer_words.ifmap + buffer_words.psum) * e.buffer,
        dram: (dram_words.ifmap + dram_words.psum) * e.dram,
        weight_programming: programming,
        total: 0.0,
    };
    c.total = c.dac + c.array + c.adc + c.digital + c.buffer + c.dram;
    if !resident {
        c.total += programming;
    }
    let by_type = PerTensor {
        ifmap: c.dac + buffer_words.ifmap * e.buffer + dram_words.ifmap * e.dram,
        filter: if resident { 0.0 } else { programming },
        psum: c.adc + c.digital + buffer_words.psum * e.buffer + dram_words.psum * e.dram,
    };
    // All tiles of a copy work in parallel; copies split the ofmap pixels. Programming, when
    // per inference, writes one row per array per cycle, all arrays in parallel.
    let mut cycles = (vectors.max(1.0) / replication as f64).ceil() * steps;
    if !resident {
        cycles += hw.array.rows as f64;
    }
    PimLayerCost {
        mapping: m,
        pim: PimLayer {
            arrays: m.arrays * replication,
            replication,
            row_tiles: m.row_tiles,
            col_tiles: m.col_tiles,
            cells_used: m.cells_used,
            cells_allocated: m.cells_allocated,
            dac_conversions: dac,
            adc_conversions: adc,
            digital_ops,
            components: c,
        },
        cycles,
        buffer_words,
        dram_words,
        by_type,
    }
}
