//! Estimators over a model and machines: per-layer energy ([`energy`]), networks side by
//! side on several machines ([`compare`]), and the dataflows at equal storage area
//! ([`dataflows`]); each with the charts that show it, rendered to SVG strings.

use crate::error::{Context, LabError};
use crate::hardware::{self, Machine};
use crate::model::Model;
use joule_energy::{
    compare as equal_area, eyexam, workload, Dataflow, LayerCost, NetworkCost, Objective,
};
use joule_report::{stacked_bars_svg, StackedBars};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `energy` estimates: a model on a machine, with optional overrides of the measured
/// or assumed densities and bit-widths.
#[derive(Clone, Debug)]
pub struct EnergyOptions {
    pub model: String,
    pub hw: String,
    pub dataflow: Dataflow,
    pub batch: usize,
    pub objective: Objective,
    /// Ifmap density (fraction of non-zeros) for every layer.
    pub ifmap_density: Option<f64>,
    /// Weight density for every layer (default: measured from the weights, else 1).
    pub weight_density: Option<f64>,
    /// A YAML or JSON file of per-layer densities, applied after the two above.
    pub density_file: Option<PathBuf>,
    /// Bits per ifmap, filter and psum value (default: the machine's word width).
    pub bits: Option<u32>,
    /// Bits per weight (filter value) for every layer, applied after `bits`.
    pub weight_bits: Option<u32>,
    /// Bits per ifmap value for every layer, applied after `bits`.
    pub ifmap_bits: Option<u32>,
    /// A YAML or JSON file of per-layer widths (`layer: {ifmap, filter, psum}`), applied
    /// after the three above.
    pub bits_file: Option<PathBuf>,
    /// Per-layer widths given in code (a quantized model's), applied last.
    pub layer_bits: workload::LayerBitwidths,
}

impl EnergyOptions {
    pub fn new(model: &str, hw: &str) -> EnergyOptions {
        EnergyOptions {
            model: model.to_string(),
            hw: hw.to_string(),
            dataflow: Dataflow::Rs,
            batch: 1,
            objective: Objective::Energy,
            ifmap_density: None,
            weight_density: None,
            density_file: None,
            bits: None,
            weight_bits: None,
            ifmap_bits: None,
            bits_file: None,
            layer_bits: Default::default(),
        }
    }
}

/// The largest batch size: counts stay exact below it.
pub const MAX_BATCH: usize = 1 << 20;

/// Checks a batch size: at least 1, and small enough that counts stay exact.
pub fn check_batch(batch: usize) -> Result<(), LabError> {
    if batch == 0 || batch > MAX_BATCH {
        return Err(LabError::config(
            "batch",
            format!("{batch} is out of range (1 to {MAX_BATCH})"),
        ));
    }
    Ok(())
}

impl EnergyOptions {
    /// Checks the batch and the overrides, naming the option at fault.
    pub fn check(&self) -> Result<(), LabError> {
        check_batch(self.batch)?;
        for (field, density) in [
            ("ifmap_density", self.ifmap_density),
            ("weight_density", self.weight_density),
        ] {
            if let Some(d) = density.filter(|d| !(0.0..=1.0).contains(d)) {
                return Err(LabError::config(
                    field,
                    format!("must be in [0, 1], got {d}"),
                ));
            }
        }
        for (field, bits) in [
            ("bits", self.bits),
            ("weight_bits", self.weight_bits),
            ("ifmap_bits", self.ifmap_bits),
        ] {
            if let Some(b) = bits.filter(|b| !(1..=64).contains(b)) {
                return Err(LabError::config(field, format!("must be 1..=64, got {b}")));
            }
        }
        Ok(())
    }
}

/// Per-layer energy, cycles and traffic of `options.model` on `options.hw`.
pub fn energy(options: &EnergyOptions) -> Result<NetworkCost, LabError> {
    options.check()?;
    let machine = hardware::machine(&options.hw)?;
    let model = Model::load(&options.model)?;
    energy_on(&model, &machine, options)
}

/// [`energy`] of a model already loaded (from bytes, say) on `options.hw`;
/// `options.model` is not read.
pub fn energy_of(model: &Model, options: &EnergyOptions) -> Result<NetworkCost, LabError> {
    options.check()?;
    let machine = hardware::machine(&options.hw)?;
    energy_on(model, &machine, options)
}

/// [`energy`] for a model and machine already loaded.
pub fn energy_on(
    model: &Model,
    machine: &Machine,
    options: &EnergyOptions,
) -> Result<NetworkCost, LabError> {
    let layers = layers_of(model, options)?;
    machine
        .evaluate(model.spec(), &layers, options.dataflow, options.objective)
        .context(|| format!("{} on {}", model.spec(), machine.name()))
}

/// Eyexam ([`joule_energy::eyexam`]): the throughput bound of every layer of
/// `options.model` on `options.hw` after each architectural constraint, with the same
/// densities, widths, dataflow and objective as [`energy`], so the last step's cycles are
/// its cycles. Needs a digital machine with the dataflow model.
pub fn eyexam(options: &EnergyOptions) -> Result<eyexam::Exam, LabError> {
    options.check()?;
    let machine = hardware::machine(&options.hw)?;
    let model = Model::load(&options.model)?;
    eyexam_on(&model, &machine, options)
}

/// [`eyexam`] for a model and machine already loaded.
pub fn eyexam_on(
    model: &Model,
    machine: &Machine,
    options: &EnergyOptions,
) -> Result<eyexam::Exam, LabError> {
    let Machine::Digital(hw) = machine else {
        return Err(LabError::config(
            "hw",
            format!(
                "{}: Eyexam needs a digital machine, not a processing-in-memory one",
                machine.name()
            ),
        ));
    };
    if hw.model != joule_energy::spec::CostModelKind::Dataflow {
        return Err(LabError::config(
            "hw",
            format!(
                "{}: Eyexam needs a machine with the dataflow model, not weight_fetch",
                machine.name()
            ),
        ));
    }
    let layers = layers_of(model, options)?;
    eyexam::examine(
        model.spec(),
        &layers,
        hw,
        options.dataflow,
        options.objective,
    )
    .context(|| format!("{} on {}", model.spec(), machine.name()))
}

/// Eyexam as one stacked-bar panel: per layer, the non-zero MACs per cycle reached after
/// the last step, with the throughput each step lost stacked on top (bars reach the peak).
pub fn eyexam_panel(exam: &eyexam::Exam) -> StackedBars {
    let mut series = vec![(
        "achieved".to_string(),
        exam.layers
            .iter()
            .map(|l| l.steps.last().map_or(0.0, |b| b.macs_per_cycle))
            .collect::<Vec<f64>>(),
    )];
    // Lost at step i: the bound before it minus the bound after it, last step first so the
    // stack reads from the achieved rate up to the peak.
    for i in (1..eyexam::Step::ALL.len()).rev() {
        series.push((
            format!("lost: {}", eyexam::Step::ALL[i].name()),
            exam.layers
                .iter()
                // Rounding can leave -1e-13 where a step loses nothing.
                .map(|l| (l.steps[i - 1].macs_per_cycle - l.steps[i].macs_per_cycle).max(0.0))
                .collect(),
        ));
    }
    StackedBars {
        title: format!(
            "{} on {} ({}, batch {}): non-zero MACs per cycle reached and lost per Eyexam step",
            crate::prune::display_name(&exam.model),
            exam.hardware,
            exam.dataflow,
            exam.batch
        ),
        y_label: "MACs per cycle".into(),
        categories: exam.layers.iter().map(|l| l.name.clone()).collect(),
        series,
        log_y: false,
    }
}

/// The Eyexam chart as SVG.
pub fn eyexam_svg(exam: &eyexam::Exam) -> Result<String, LabError> {
    Ok(stacked_bars_svg(&[eyexam_panel(exam)])?)
}

/// The CONV/FC layers of `model` at `options.batch`, with the options' densities and
/// widths applied (flags first, then the files, then `layer_bits`).
fn layers_of(model: &Model, options: &EnergyOptions) -> Result<Vec<workload::Workload>, LabError> {
    let mut layers = workload::from_graph(model.graph(), None, options.batch)?;
    for w in &mut layers {
        if let Some(d) = options.ifmap_density {
            w.density.ifmap = d;
        }
        if let Some(d) = options.weight_density {
            w.density.weight = d;
        }
        if let Some(b) = options.bits {
            w.bits.ifmap = Some(b);
            w.bits.filter = Some(b);
            w.bits.psum = Some(b);
        }
        if let Some(b) = options.weight_bits {
            w.bits.filter = Some(b);
        }
        if let Some(b) = options.ifmap_bits {
            w.bits.ifmap = Some(b);
        }
    }
    if let Some(path) = &options.density_file {
        let densities = workload::load_densities(path)?;
        workload::apply_densities(&mut layers, &densities, &path.display().to_string())?;
    }
    if let Some(path) = &options.bits_file {
        let bits = workload::load_bitwidths(path)?;
        workload::apply_bitwidths(&mut layers, &bits, &path.display().to_string())?;
    }
    for (name, entry) in &options.layer_bits {
        if let Some(b) = [entry.ifmap, entry.filter, entry.psum]
            .into_iter()
            .flatten()
            .find(|b| !(1..=64).contains(b))
        {
            return Err(LabError::config(
                "layer_bits",
                format!("{name}: bits must be 1..=64, got {b}"),
            ));
        }
    }
    workload::apply_bitwidths(&mut layers, &options.layer_bits, "layer_bits")?;
    Ok(layers)
}

/// The per-layer panels of an energy report: by memory level and by data type (and by PIM
/// component on a PIM machine).
pub fn energy_panels(r: &NetworkCost) -> Vec<StackedBars> {
    let names: Vec<String> = r.layers.iter().map(|l| l.cost.name.clone()).collect();
    let col = |f: &dyn Fn(&LayerCost) -> f64| -> Vec<f64> {
        r.layers.iter().map(|l| f(&l.cost)).collect()
    };
    let unit = energy_label(&r.unit);
    let mut panels = vec![
        StackedBars {
            title: format!(
                "{} on {} ({}, batch {}): energy per layer by memory level",
                crate::prune::display_name(&r.model),
                r.hardware,
                r.dataflow,
                r.batch
            ),
            y_label: unit.clone(),
            categories: names.clone(),
            series: vec![
                ("MAC".into(), col(&|c| c.energy.mac)),
                ("RF".into(), col(&|c| c.energy.rf)),
                ("array (NoC)".into(), col(&|c| c.energy.array)),
                ("buffer (GLB)".into(), col(&|c| c.energy.buffer)),
                ("DRAM".into(), col(&|c| c.energy.dram)),
            ],
            log_y: false,
        },
        StackedBars {
            title: format!(
                "{} on {}: energy per layer by data type",
                r.model, r.hardware
            ),
            y_label: unit.clone(),
            categories: names.clone(),
            series: vec![
                ("compute".into(), col(&|c| c.energy_by_type.compute)),
                ("ifmap".into(), col(&|c| c.energy_by_type.ifmap)),
                ("filter".into(), col(&|c| c.energy_by_type.filter)),
                ("psum".into(), col(&|c| c.energy_by_type.psum)),
            ],
            log_y: false,
        },
    ];
    if !r.layers.is_empty() && r.layers.iter().all(|l| l.pim.is_some()) {
        let comp = |f: &dyn Fn(&joule_energy::pim::Components) -> f64| -> Vec<f64> {
            r.layers
                .iter()
                .map(|l| l.pim.as_ref().map_or(0.0, |p| f(&p.components)))
                .collect()
        };
        panels.push(StackedBars {
            title: format!(
                "{} on {}: energy per layer by PIM component (one-time weight programming not shown)",
                crate::prune::display_name(&r.model),
                r.hardware
            ),
            y_label: unit,
            categories: names,
            series: vec![
                ("DAC".into(), comp(&|c| c.dac)),
                ("array".into(), comp(&|c| c.array)),
                ("ADC".into(), comp(&|c| c.adc)),
                ("digital".into(), comp(&|c| c.digital)),
                ("buffer".into(), comp(&|c| c.buffer)),
                ("DRAM".into(), comp(&|c| c.dram)),
            ],
            log_y: false,
        });
    }
    panels
}

/// The energy chart as SVG.
pub fn energy_svg(r: &NetworkCost) -> Result<String, LabError> {
    Ok(stacked_bars_svg(&energy_panels(r))?)
}

/// An axis label for energies in `unit`: picojoules, or MAC-normalised units spelled out.
pub fn energy_label(unit: &str) -> String {
    match unit {
        "pJ" => "energy (pJ)".into(),
        _ => "energy (units of one MAC's energy)".into(),
    }
}

/// One model on one machine, for [`compare`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub hardware: String,
    pub model: String,
    pub unit: String,
    pub energy: f64,
    /// Energy relative to the first model on the same machine.
    pub energy_ratio: f64,
    pub cycles: f64,
    pub latency_us: f64,
    pub latency_ratio: f64,
    pub utilization: f64,
    pub macs: u64,
    /// Energy share by level (digital) or by PIM component, largest first.
    pub breakdown: Vec<(String, f64)>,
    /// One-time weight programming (PIM with resident weights), not in `energy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_programming: Option<f64>,
    /// Chip area (mm², digital machines: `joule_energy::area`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_mm2: Option<f64>,
}

/// Every model on every machine (models loaded once), ratios against the first model.
pub fn compare(
    models: &[String],
    machines: &[String],
    dataflow: Dataflow,
    batch: usize,
) -> Result<Vec<Entry>, LabError> {
    check_compare(machines, batch)?;
    let models = models
        .iter()
        .map(|m| Model::load(m))
        .collect::<Result<Vec<_>, _>>()?;
    compare_models(&models, machines, dataflow, batch)
}

fn check_compare(machines: &[String], batch: usize) -> Result<(), LabError> {
    check_batch(batch)?;
    if machines.is_empty() {
        return Err(LabError::config("hw", "give at least one machine"));
    }
    Ok(())
}

/// [`compare`] of models already loaded; entries name each model by its spec.
pub fn compare_models(
    models: &[Model],
    machines: &[String],
    dataflow: Dataflow,
    batch: usize,
) -> Result<Vec<Entry>, LabError> {
    check_compare(machines, batch)?;
    let mut loaded = Vec::new();
    for model in models {
        let layers = workload::from_graph(model.graph(), None, batch)?;
        loaded.push((model.spec().to_string(), layers));
    }
    let mut entries = Vec::new();
    for hw_name in machines {
        let hw = hardware::machine(hw_name)?;
        let mut first: Option<(f64, f64)> = None;
        for (model, layers) in &loaded {
            let r = hw
                .evaluate(model, layers, dataflow, Objective::Energy)
                .context(|| format!("{model} on {hw_name}"))?;
            let latency = r.total.cycles / r.clock_mhz;
            let (e0, l0) = *first.get_or_insert((r.total.energy.total, latency));
            entries.push(Entry {
                hardware: r.hardware.clone(),
                model: model.clone(),
                unit: r.unit.clone(),
                energy: r.total.energy.total,
                energy_ratio: r.total.energy.total / e0,
                cycles: r.total.cycles,
                latency_us: latency,
                latency_ratio: latency / l0,
                utilization: r.total.utilization,
                macs: r.total.macs,
                breakdown: breakdown(&r),
                weight_programming: r
                    .total
                    .pim
                    .as_ref()
                    .filter(|p| p.resident)
                    .map(|p| p.components.weight_programming),
                area_mm2: r.area.map(|a| a.total),
            });
        }
    }
    Ok(entries)
}

/// Shares of the total energy, largest first: by PIM component on a PIM machine, else by
/// memory level.
pub fn breakdown(r: &NetworkCost) -> Vec<(String, f64)> {
    let t = r.total.energy.total.max(f64::MIN_POSITIVE);
    let mut parts: Vec<(String, f64)> = match &r.total.pim {
        Some(p) => {
            let c = &p.components;
            let mut v = vec![
                ("DAC", c.dac),
                ("array", c.array),
                ("ADC", c.adc),
                ("digital", c.digital),
                ("buffer", c.buffer),
                ("DRAM", c.dram),
            ];
            if !p.resident {
                v.push(("weight programming", c.weight_programming));
            }
            v.into_iter().map(|(n, e)| (n.to_string(), e / t)).collect()
        }
        None => {
            let e = &r.total.energy;
            [
                ("MAC", e.mac),
                ("RF", e.rf),
                ("array", e.array),
                ("buffer", e.buffer),
                ("DRAM", e.dram),
            ]
            .into_iter()
            .map(|(n, v)| (n.to_string(), v / t))
            .collect()
        }
    };
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    parts
}

/// RS, WS, the OS variants and NLR on one model at the storage area of `hw` (digital).
pub fn dataflows(model: &str, hw: &str, batch: usize) -> Result<Vec<NetworkCost>, LabError> {
    check_batch(batch)?;
    let spec = digital(hw)?;
    dataflows_on(&Model::load(model)?, &spec, hw, batch)
}

/// [`dataflows`] of a model already loaded.
pub fn dataflows_of(model: &Model, hw: &str, batch: usize) -> Result<Vec<NetworkCost>, LabError> {
    check_batch(batch)?;
    dataflows_on(model, &digital(hw)?, hw, batch)
}

/// The digital machine `hw` (the dataflow comparison has no meaning on a PIM one).
fn digital(hw: &str) -> Result<joule_energy::Hardware, LabError> {
    match hardware::machine(hw)? {
        Machine::Digital(spec) => Ok(spec),
        Machine::Pim(_) => Err(LabError::config(
            "hw",
            format!("{hw}: the dataflow comparison needs a digital machine, not a PIM one"),
        )),
    }
}

fn dataflows_on(
    model: &Model,
    spec: &joule_energy::Hardware,
    hw: &str,
    batch: usize,
) -> Result<Vec<NetworkCost>, LabError> {
    let layers = workload::from_graph(model.graph(), None, batch)?;
    equal_area::compare(model.spec(), &layers, spec, Objective::Energy)
        .context(|| format!("{} on {hw}", model.spec()))
}

/// CONV and FC energy per dataflow, as one stacked-bar panel.
pub fn dataflows_panel(results: &[NetworkCost]) -> StackedBars {
    let first = &results[0];
    StackedBars {
        title: format!(
            "{}: energy per dataflow at the storage area of {} (batch {})",
            crate::prune::display_name(&first.model),
            first.hardware,
            first.batch
        ),
        y_label: energy_label(&first.unit),
        categories: results.iter().map(|r| r.dataflow.to_string()).collect(),
        series: vec![
            (
                "CONV".into(),
                results.iter().map(|r| r.total.conv.energy).collect(),
            ),
            (
                "FC".into(),
                results.iter().map(|r| r.total.fc.energy).collect(),
            ),
        ],
        log_y: false,
    }
}

/// The dataflow chart as SVG.
pub fn dataflows_svg(results: &[NetworkCost]) -> Result<String, LabError> {
    Ok(stacked_bars_svg(&[dataflows_panel(results)])?)
}
