//! The processing-in-memory (PIM) model: weight-stationary crossbar arrays that compute
//! matrix-vector products in the analog domain, after seed 004 ("Beyond current digital
//! accelerators"). Weight movement is nearly free once the weights are programmed, but every
//! activation crosses DACs on the way in and ADCs on the way out.
//!
//! * [`spec`]: the [`PimHardware`] spec (YAML, `model: pim`) and presets `pim-128` ... `pim-4096`;
//! * [`mapping`]: a layer's unrolled filter matrix tiled over arrays ([`ArrayMapping`]), its
//!   utilization, DAC/ADC conversion counts, energy by [`Components`] and cycles;
//! * [`evaluate`]: a whole network into the shared [`NetworkCost`] report.
//!
//! Replication: when the chip has a fixed `array.count` and one copy of every layer's weights
//! fits, every layer gets `floor(count / arrays needed)` copies, which divide its cycles.
//! When they do not fit, weights are programmed every inference (their energy and DRAM reads
//! count in the total, and each layer waits `rows` cycles for its writes, times the rounds
//! it needs when it alone exceeds the chip). Layers run one after another.
//!
//! ```
//! use joule_energy::{pim, workload};
//! use joule_model::zoo;
//!
//! let hw = pim::spec::preset("pim-128").unwrap();
//! let layers = workload::from_graph(&zoo::build("alexnet").unwrap(), None, 1).unwrap();
//! let report = pim::evaluate("alexnet", &layers, &hw).unwrap();
//! let pim = report.total.pim.as_ref().unwrap();
//! // Activations cross converters: ADCs and DACs outweigh the analog MACs themselves.
//! assert!(pim.components.adc + pim.components.dac > pim.components.array);
//! ```

pub mod mapping;
pub mod spec;

pub use mapping::{ArrayMapping, Components, PimLayer};
pub use spec::PimHardware;

use crate::access::{Accesses, PerTensor};
use crate::cost::{LayerCost, LevelEnergy, TypeEnergy};
use crate::network::{LayerReport, NetworkCost, Totals};
use crate::search::{Objective, SearchStats};
use crate::workload::Workload;
use crate::{Dataflow, EnergyError};
use serde::Serialize;

/// PIM totals of a network.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PimTotals {
    /// Arrays for all layers, with their copies.
    pub arrays: u64,
    /// Whether the weights stay programmed across inferences.
    pub resident: bool,
    pub cells_used: u64,
    pub cells_allocated: u64,
    pub dac_conversions: f64,
    pub adc_conversions: f64,
    pub components: Components,
}

/// Evaluates `layers` (already at their batch size) of `model` on the PIM machine `hw`.
pub fn evaluate(
    model: &str,
    layers: &[Workload],
    hw: &PimHardware,
) -> Result<NetworkCost, EnergyError> {
    for w in layers {
        w.validate(model)?;
    }
    let needed: u64 = layers.iter().map(|w| ArrayMapping::new(w, hw).arrays).sum();
    let (resident, replication) = match hw.array.count {
        None => (true, 1),
        Some(count) if needed <= count => (true, count / needed.max(1)),
        Some(_) => (false, 1),
    };
    let mut results = Vec::with_capacity(layers.len());
    let mut total = Totals::default();
    let mut pim = PimTotals {
        resident,
        ..Default::default()
    };
    for w in layers {
        let mut c = mapping::layer_cost(w, hw, replication, resident);
        if let (false, Some(count)) = (resident, hw.array.count) {
            c.cycles *= c.mapping.arrays.div_ceil(count) as f64;
        }
        let comp = c.pim.components;
        let cost = LayerCost {
            name: w.name.clone(),
            class: w.class,
            dataflow: Dataflow::Ws,
            macs: w.nest.macs(),
            cycles: c.cycles,
            utilization: c.mapping.utilization(),
            energy: LevelEnergy {
                mac: comp.array,
                rf: 0.0,
                array: comp.dac + comp.adc + comp.digital,
                buffer: comp.buffer,
                dram: comp.dram,
                total: comp.total,
            },
            energy_by_type: TypeEnergy {
                ifmap: c.by_type.ifmap,
                filter: c.by_type.filter,
                psum: c.by_type.psum,
                compute: comp.array,
            },
            accesses: Accesses {
                dram: c.dram_words,
                buffer: c.buffer_words,
                ..Default::default()
            },
            reuse: PerTensor::default(),
            dram_bytes: c.dram_words.iter().sum::<f64>() * hw.word_bits as f64 / 8.0,
            mapping: format!(
                "{} x {} tiles of {}x{} arrays (rows x cols) per group, {} arrays, {} cells per weight, {} input steps, x{} copies",
                c.mapping.row_tiles,
                c.mapping.col_tiles,
                hw.array.rows,
                hw.array.cols,
                c.mapping.arrays,
                c.mapping.slices,
                c.mapping.steps,
                replication
            ),
        };
        total.add(&cost);
        pim.arrays += c.pim.arrays;
        pim.cells_used += c.pim.cells_used;
        pim.cells_allocated += c.pim.cells_allocated;
        pim.dac_conversions += c.pim.dac_conversions;
        pim.adc_conversions += c.pim.adc_conversions;
        pim.components.add(&comp);
        results.push(LayerReport {
            cost,
            search: SearchStats::default(),
            pim: Some(c.pim),
        });
    }
    if pim.cells_allocated > 0 {
        total.utilization = pim.cells_used as f64 / pim.cells_allocated as f64;
    }
    total.pim = Some(pim);
    Ok(NetworkCost {
        model: model.to_string(),
        hardware: hw.name.clone(),
        dataflow: Dataflow::Ws,
        batch: layers.first().map_or(0, |w| w.nest.n),
        objective: Objective::Energy,
        unit: hw.energy.unit.as_str().to_string(),
        clock_mhz: hw.clock_mhz(),
        layers: results,
        total,
        // The area model (crate::area) covers digital machines; crossbars, DACs and ADCs
        // have no per-unit table here yet.
        area: None,
    })
}
