//! The processing-in-memory study of `docs/pim.md`: how well crossbar arrays are used as the
//! filter and the array grow, what that does to whole networks (ResNet-152, WRN-50-2), and
//! how PIM's energy splits into activation and weight movement.
//!
//! [`study`] computes a [`PimStudy`] (typed, serializable); [`utilization_table`],
//! [`networks_table`], [`movement_table`] and [`markdown`] render its tables and
//! [`utilization_svg`] its chart, all to strings.
//!
//! ```
//! use joule_lab::pim_study;
//!
//! let u = pim_study::layer_utilization(3, 1024).unwrap();
//! // 3x3 CONV, C = M = 128: 1152 rows on two 1024-row arrays, 1024 of 1024 columns.
//! assert_eq!((u.cells_used, u.cells_allocated), (1152 * 1024, 2 * 1024 * 1024));
//! ```

use crate::error::{Context, LabError};
use crate::hardware::{self, Machine};
use crate::model::Model;
use joule_energy::pim::{self, ArrayMapping, PimHardware};
use joule_energy::workload::{self, Workload};
use joule_model::{LayerClass, LoopNest};
use joule_report::curves::{curves_svg, Curve, Curves};
use joule_report::{human, ChartError, Table};
use serde::{Deserialize, Serialize};

/// Array sizes (rows = columns) of the PIM presets `pim-<n>`, smallest first.
pub const ARRAY_SIZES: [u64; 6] = [128, 256, 512, 1024, 2048, 4096];
/// Filter sizes R = S of the one-layer utilization sweep.
pub const FILTER_SIZES: [usize; 4] = [1, 3, 5, 7];
/// Input and output channels (C = M) of the swept CONV layer, and its ofmap side (P = Q).
pub const SWEEP_CHANNELS: usize = 128;
pub const SWEEP_OFMAP: usize = 14;
/// The networks compared: deep-narrow and shallow-wide.
pub const MODELS: [&str; 2] = ["resnet152", "wide_resnet50_2"];
/// Crossbars on one ISAAC chip (168 tiles x 12 IMAs x 8 arrays, Shafiee et al. ISCA 2016).
pub const ISAAC_CHIP_ARRAYS: u64 = 168 * 12 * 8;

/// One CONV layer (C = M = 128, 14x14 ofmap) on one array size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerUtilization {
    /// Rows (= columns) of an array.
    pub array_size: u64,
    /// R = S.
    pub filter_size: usize,
    pub cells_used: u64,
    pub cells_allocated: u64,
    /// `cells_used / cells_allocated`.
    pub utilization: f64,
}

/// A network on a PIM preset with as many arrays as it needs (weights resident), batch 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkOnArrays {
    pub array_size: u64,
    pub model: String,
    /// Arrays holding all the weights once.
    pub arrays: u64,
    /// Used / allocated cells over the network.
    pub utilization: f64,
    /// Energy per inference (pJ): `energy.total` of the report.
    pub energy_pj: f64,
    /// ADC energy (pJ).
    pub adc_pj: f64,
    pub latency_us: f64,
}

/// Where a network's PIM energy goes: activations through the periphery, the analog array,
/// and writing the weights into the cells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    /// The machine's name (a preset, or the preset limited to one ISAAC chip).
    pub machine: String,
    /// Arrays on the machine (`None`: as many as the model needs).
    pub array_count: Option<u64>,
    pub model: String,
    /// DAC + ADC + digital + buffer + DRAM (pJ per inference).
    pub activations_pj: f64,
    /// The analog multiply-accumulate in the cells (pJ per inference).
    pub array_pj: f64,
    /// Programming every weight once: cell writes and DRAM reads (pJ).
    pub weights_pj: f64,
    /// Whether the weights stay in the arrays across inferences (programming is one-time,
    /// not in `total_pj`) or are rewritten every inference (in `total_pj`).
    pub resident: bool,
    /// `energy.total` per inference (pJ).
    pub total_pj: f64,
}

impl Movement {
    /// The weights' share if programming were paid once per inference.
    pub fn weight_share(&self) -> f64 {
        self.weights_pj / (self.activations_pj + self.array_pj + self.weights_pj)
    }
}

/// The whole study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PimStudy {
    /// Per array size (outer) and filter size (inner), in [`ARRAY_SIZES`] x [`FILTER_SIZES`]
    /// order.
    pub layer_utilization: Vec<LayerUtilization>,
    /// Per array size (outer) and model (inner).
    pub networks: Vec<NetworkOnArrays>,
    /// On pim-128 and pim-1024 (weights resident) and on one ISAAC chip of 128x128 arrays
    /// (neither network fits: weights programmed every inference); per machine, per model.
    pub movement: Vec<Movement>,
}

/// The PIM preset with arrays of `size` x `size` cells, through the one hardware loader.
pub fn preset(size: u64) -> Result<PimHardware, LabError> {
    match hardware::machine(&format!("pim-{size}"))? {
        Machine::Pim(hw) => Ok(hw),
        Machine::Digital(hw) => Err(LabError::config(
            "array_size",
            format!("preset {} is not a PIM machine", hw.name),
        )),
    }
}

/// The swept CONV layer with an `rs` x `rs` filter.
fn sweep_layer(rs: usize) -> Workload {
    let nest = LoopNest {
        n: 1,
        m: SWEEP_CHANNELS,
        c: SWEEP_CHANNELS,
        p: SWEEP_OFMAP,
        q: SWEEP_OFMAP,
        r: rs,
        s: rs,
        h: SWEEP_OFMAP,
        w: SWEEP_OFMAP,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        groups: 1,
    };
    Workload::new(format!("{rs}x{rs}"), LayerClass::Conv, nest)
}

/// Utilization of the swept CONV layer with a `filter_size` x `filter_size` filter on the
/// `pim-<array_size>` preset.
pub fn layer_utilization(
    filter_size: usize,
    array_size: u64,
) -> Result<LayerUtilization, LabError> {
    Ok(utilization_on(filter_size, &preset(array_size)?))
}

fn utilization_on(filter_size: usize, hw: &PimHardware) -> LayerUtilization {
    let mapping = ArrayMapping::new(&sweep_layer(filter_size), hw);
    LayerUtilization {
        array_size: hw.array.rows,
        filter_size,
        cells_used: mapping.cells_used,
        cells_allocated: mapping.cells_allocated,
        utilization: mapping.utilization(),
    }
}

/// Runs the study (ResNet-152 and WRN-50-2 on six presets and one ISAAC chip: a few seconds).
pub fn study() -> Result<PimStudy, LabError> {
    let presets = ARRAY_SIZES
        .iter()
        .map(|&n| preset(n))
        .collect::<Result<Vec<_>, _>>()?;

    let layer_utilization = presets
        .iter()
        .flat_map(|hw| FILTER_SIZES.iter().map(|&f| utilization_on(f, hw)))
        .collect();

    let models = MODELS
        .iter()
        .map(|name| {
            let model = Model::load(name)?;
            let layers =
                workload::from_graph(model.graph(), None, 1).context(|| name.to_string())?;
            Ok((*name, layers))
        })
        .collect::<Result<Vec<_>, LabError>>()?;

    let mut networks = Vec::new();
    for hw in &presets {
        for (name, layers) in &models {
            let report = evaluate(name, layers, hw)?;
            let pim = report
                .total
                .pim
                .as_ref()
                .expect("a PIM report has PIM totals");
            networks.push(NetworkOnArrays {
                array_size: hw.array.rows,
                model: name.to_string(),
                arrays: pim.arrays,
                utilization: report.total.utilization,
                energy_pj: report.total.energy.total,
                adc_pj: pim.components.adc,
                latency_us: report.total.cycles / report.clock_mhz,
            });
        }
    }

    let isaac_chip = {
        let mut hw = presets[0].clone();
        hw.name = format!("{}, one ISAAC chip ({ISAAC_CHIP_ARRAYS} arrays)", hw.name);
        hw.array.count = Some(ISAAC_CHIP_ARRAYS);
        hw
    };
    let mut movement = Vec::new();
    for hw in [&presets[0], &presets[3], &isaac_chip] {
        for (name, layers) in &models {
            let report = evaluate(name, layers, hw)?;
            let pim = report
                .total
                .pim
                .as_ref()
                .expect("a PIM report has PIM totals");
            let c = &pim.components;
            movement.push(Movement {
                machine: hw.name.clone(),
                array_count: hw.array.count,
                model: name.to_string(),
                activations_pj: c.dac + c.adc + c.digital + c.buffer + c.dram,
                array_pj: c.array,
                weights_pj: c.weight_programming,
                resident: pim.resident,
                total_pj: report.total.energy.total,
            });
        }
    }
    Ok(PimStudy {
        layer_utilization,
        networks,
        movement,
    })
}

fn evaluate(
    model: &str,
    layers: &[Workload],
    hw: &PimHardware,
) -> Result<joule_energy::NetworkCost, LabError> {
    pim::evaluate(model, layers, hw).context(|| format!("{model} on {}", hw.name))
}

fn array_name(size: u64) -> String {
    format!("{size}x{size}")
}

fn percent(share: f64, decimals: usize) -> String {
    format!("{:.decimals$}%", 100.0 * share)
}

/// Table 1: utilization per array size (rows) and filter size (columns).
pub fn utilization_table(study: &PimStudy) -> Table {
    let mut t = Table::new(
        std::iter::once("array".to_string())
            .chain(FILTER_SIZES.iter().map(|&f| array_name(f as u64))),
    );
    for &size in &ARRAY_SIZES {
        let row = study
            .layer_utilization
            .iter()
            .filter(|u| u.array_size == size);
        t.row(std::iter::once(array_name(size)).chain(row.map(|u| percent(u.utilization, 1))));
    }
    t
}

/// Table 2: whole networks per array size.
pub fn networks_table(study: &PimStudy) -> Table {
    let mut t = Table::new([
        "array",
        "model",
        "arrays",
        "utilization",
        "energy (pJ)",
        "ADC share",
        "latency (us)",
    ]);
    for n in &study.networks {
        t.row([
            array_name(n.array_size),
            n.model.clone(),
            n.arrays.to_string(),
            percent(n.utilization, 1),
            human(n.energy_pj),
            percent(n.adc_pj / n.energy_pj, 0),
            format!("{:.0}", n.latency_us),
        ]);
    }
    t
}

/// Table 4 of docs/pim.md: activation vs weight movement.
pub fn movement_table(study: &PimStudy) -> Table {
    let mut t = Table::new([
        "machine",
        "model",
        "activations (DAC+ADC+digital+buffer+DRAM)",
        "analog array",
        "weights",
        "weight share",
        "resident",
        "energy.total",
    ]);
    for m in &study.movement {
        t.row([
            m.machine.clone(),
            m.model.clone(),
            human(m.activations_pj),
            human(m.array_pj),
            human(m.weights_pj),
            percent(m.weight_share(), 1),
            if m.resident {
                "yes (one-time)"
            } else {
                "no (every inference)"
            }
            .to_string(),
            human(m.total_pj),
        ]);
    }
    t
}

/// The three tables under the headings of docs/pim.md (its table 3 is `joule compare`).
pub fn markdown(study: &PimStudy) -> String {
    format!(
        "## 1. Utilization (used / allocated cells) of one CONV layer, C = M = {SWEEP_CHANNELS}, \
         16-bit weights on 2-bit cells\n\n{}\n\n\
         ## 2. Whole networks per array size (PIM presets, batch 1)\n\n{}\n\n\
         ## 4. Activation vs weight movement on PIM (pJ per inference)\n\n{}\n",
        utilization_table(study).to_text(),
        networks_table(study).to_text(),
        movement_table(study).to_text(),
    )
}

/// Utilization against filter size, one line per array size.
pub fn utilization_svg(study: &PimStudy) -> Result<String, ChartError> {
    let curves = ARRAY_SIZES
        .iter()
        .map(|&size| Curve {
            name: format!("{} arrays", array_name(size)),
            points: study
                .layer_utilization
                .iter()
                .filter(|u| u.array_size == size)
                .map(|u| (u.filter_size as f64, 100.0 * u.utilization))
                .collect(),
            dashed: false,
        })
        .collect();
    curves_svg(&Curves {
        title: format!(
            "PIM array utilization, CONV C = M = {SWEEP_CHANNELS}, 16-bit weights on 2-bit cells"
        ),
        x_label: "filter size R = S".into(),
        y_label: "utilization (%)".into(),
        curves,
        front: None,
    })
}
