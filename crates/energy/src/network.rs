//! Whole-network evaluation and the stable JSON report.
//!
//! # JSON interface
//!
//! ```json
//! {
//!   "model": "alexnet", "hardware": "eyeriss", "dataflow": "rs", "batch": 1,
//!   "objective": "energy", "unit": "mac", "clock_mhz": 200,
//!   "layers": [{
//!     "name": "conv1", "class": "conv", "dataflow": "rs", "macs": 105415200,
//!     "cycles": 1.2e6, "utilization": 0.8,
//!     "energy": {"mac": .., "rf": .., "array": .., "buffer": .., "dram": .., "total": ..},
//!     "energy_by_type": {"ifmap": .., "filter": .., "psum": .., "compute": ..},
//!     "accesses": {"dram": {"ifmap": .., "filter": .., "psum": ..}, "buffer": {..},
//!                  "array": {..}, "rf": {..}},
//!     "reuse": {"ifmap": {"a": .., "b": .., "c": .., "d": ..}, "filter": {..}, "psum": {..}},
//!     "dram_bytes": .., "mapping": "PE set 11x55 (R x P), ...",
//!     "search": {"mapspace": .., "evaluated": ..}
//!   }],
//!   "total": {"energy": {same keys}, "energy_by_type": {same keys}, "macs": ..,
//!             "cycles": .., "dram_bytes": .., "utilization": ..,
//!             "conv": {"energy": .., "macs": ..}, "fc": {"energy": .., "macs": ..}},
//!   "area": {"node_nm": 65, "mac": .., "rf": .., "buffer": .., "noc": .., "total": ..}
//! }
//! ```
//!
//! On a PIM machine ([`crate::pim`], dataflow `ws`) each layer also carries `arrays`,
//! `replication`, `row_tiles`, `col_tiles`, `cells_used`, `cells_allocated`,
//! `dac_conversions`, `adc_conversions`, `digital_ops` and
//! `components: {dac, array, adc, digital, buffer, dram, weight_programming, total}`, and
//! `total` carries `arrays`, `resident`, the cell and conversion sums and `components`.
//! There `utilization` is used cells / allocated cells, `energy.mac` is the analog array,
//! `energy.array` the array peripherals (DAC + ADC + digital), `rf` is 0, and `energy.total`
//! excludes the one-time `weight_programming` when the weights are resident.
//!
//! `area` is in mm² (digital machines only; [`crate::area`] gives the model and its sources).
//!
//! Energies are plain numbers in `unit` (`mac`: multiples of one MAC's energy; `pJ`), summed
//! over the whole batch; accesses are words; cycles assume the layers run one after another.

use crate::cost::{LayerCost, LevelEnergy, TypeEnergy};
use crate::dataflow::Dataflow;
use crate::search::{evaluate_layers, Objective, SearchStats};
use crate::spec::{CostModelKind, Hardware};
use crate::workload::Workload;
use crate::{weight_fetch, EnergyError};
use joule_model::LayerClass;
use serde::Serialize;

/// A layer's cost and what its search looked at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerReport {
    #[serde(flatten)]
    pub cost: LayerCost,
    pub search: SearchStats,
    /// PIM machines only: arrays, conversions and energy by component.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub pim: Option<crate::pim::PimLayer>,
}

/// Energy and MACs of one layer class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ClassTotal {
    pub energy: f64,
    pub macs: u64,
}

/// Network totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    pub energy: LevelEnergy,
    pub energy_by_type: TypeEnergy,
    pub macs: u64,
    pub cycles: f64,
    pub dram_bytes: f64,
    pub utilization: f64,
    pub conv: ClassTotal,
    pub fc: ClassTotal,
    /// PIM machines only: arrays, conversions and energy by component.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub pim: Option<crate::pim::PimTotals>,
}

impl Totals {
    /// Adds one layer's cost to the network totals (and to its CONV or FC class).
    pub(crate) fn add(&mut self, c: &LayerCost) {
        let e = &mut self.energy;
        e.mac += c.energy.mac;
        e.rf += c.energy.rf;
        e.array += c.energy.array;
        e.buffer += c.energy.buffer;
        e.dram += c.energy.dram;
        e.total += c.energy.total;
        let t = &mut self.energy_by_type;
        t.ifmap += c.energy_by_type.ifmap;
        t.filter += c.energy_by_type.filter;
        t.psum += c.energy_by_type.psum;
        t.compute += c.energy_by_type.compute;
        self.macs += c.macs;
        self.cycles += c.cycles;
        self.dram_bytes += c.dram_bytes;
        let class = if c.class == LayerClass::Fc {
            &mut self.fc
        } else {
            &mut self.conv
        };
        class.energy += c.energy.total;
        class.macs += c.macs;
    }
}

/// The energy report of a network on a machine under a dataflow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkCost {
    pub model: String,
    pub hardware: String,
    pub dataflow: Dataflow,
    pub batch: usize,
    pub objective: Objective,
    pub unit: String,
    /// Cycles per microsecond: latency is `cycles / clock_mhz` microseconds.
    pub clock_mhz: f64,
    pub layers: Vec<LayerReport>,
    pub total: Totals,
    /// Chip area by component ([`crate::area`]); digital machines only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area: Option<crate::area::Area>,
}

impl NetworkCost {
    pub fn layer(&self, name: &str) -> Option<&LayerCost> {
        self.layers
            .iter()
            .find(|l| l.cost.name == name)
            .map(|l| &l.cost)
    }
}

/// Evaluates `layers` (already at their batch size) of `model` on `hw`.
pub fn evaluate(
    model: &str,
    layers: &[Workload],
    hw: &Hardware,
    dataflow: Dataflow,
    objective: Objective,
) -> Result<NetworkCost, EnergyError> {
    for w in layers {
        w.validate(model)?;
    }
    let results: Vec<LayerReport> = match hw.model {
        CostModelKind::Dataflow => evaluate_layers(layers, hw, dataflow, objective)?
            .into_iter()
            .map(|(cost, search)| LayerReport {
                cost,
                search,
                pim: None,
            })
            .collect(),
        CostModelKind::WeightFetch => layers
            .iter()
            .map(|w| LayerReport {
                cost: weight_fetch::layer_cost(w, hw),
                search: SearchStats::default(),
                pim: None,
            })
            .collect(),
    };
    let mut total = Totals::default();
    for l in &results {
        total.add(&l.cost);
    }
    if total.cycles > 0.0 {
        total.utilization = total.macs as f64 / (total.cycles * hw.array.pes() as f64);
    }
    Ok(NetworkCost {
        model: model.to_string(),
        hardware: hw.name.clone(),
        dataflow,
        batch: layers.first().map_or(0, |w| w.nest.n),
        objective,
        unit: hw.energy.unit.as_str().to_string(),
        clock_mhz: hw.clock_mhz,
        layers: results,
        total,
        area: Some(crate::area::area(hw)),
    })
}
