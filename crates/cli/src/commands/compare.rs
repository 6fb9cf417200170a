//! `joule compare`: networks side by side on several machines (digital or PIM): energy,
//! latency (cycles / clock) and utilization per inference batch, and where the energy goes.

use crate::load;
use crate::output::{Format, FormatArgs};
use anyhow::{bail, Context, Result};
use joule_energy::machine::{self, Machine};
use joule_energy::{workload, Dataflow, NetworkCost, Objective};
use joule_report::{human, Table};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// Two or more models: zoo names or .onnx files.
    #[arg(required = true, num_args = 2..)]
    models: Vec<String>,
    /// Hardware, repeatable: presets (see `joule energy --list-hw`) or YAML spec files.
    #[arg(long, default_values_t = ["eyeriss".to_string(), "pim-128".to_string()])]
    hw: Vec<String>,
    /// Dataflow on digital machines (PIM is weight stationary).
    #[arg(long, default_value = "rs")]
    dataflow: Dataflow,
    /// Batch size.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[command(flatten)]
    format: FormatArgs,
}

/// One model on one machine.
#[derive(Serialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_programming: Option<f64>,
}

pub fn run(args: Args) -> Result<()> {
    if args.hw.is_empty() {
        bail!("give at least one --hw");
    }
    let mut graphs = Vec::new();
    for m in &args.models {
        let graph = load::model(m)?;
        graphs.push((m.clone(), workload::from_graph(&graph, None, args.batch)?));
    }
    let mut entries = Vec::new();
    for hw_name in &args.hw {
        let hw = machine::load(hw_name).with_context(|| format!("--hw {hw_name}"))?;
        let mut first: Option<(f64, f64)> = None;
        for (model, layers) in &graphs {
            let r = hw
                .evaluate(model, layers, args.dataflow, Objective::Energy)
                .with_context(|| format!("{model} on {hw_name}"))?;
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
                breakdown: breakdown(&r, &hw),
                weight_programming: r
                    .total
                    .pim
                    .as_ref()
                    .filter(|p| p.resident)
                    .map(|p| p.components.weight_programming),
            });
        }
    }
    match args.format.format() {
        Format::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
        Format::Csv => print!("{}", table(&entries, true).to_csv()?),
        Format::Text => {
            println!(
                "energy and latency per batch of {}; ratios are against {} on the same machine",
                args.batch, args.models[0]
            );
            println!("{}", table(&entries, false).to_text());
        }
    }
    Ok(())
}

/// Shares of the total energy, largest first.
fn breakdown(r: &NetworkCost, hw: &Machine) -> Vec<(String, f64)> {
    let t = r.total.energy.total.max(f64::MIN_POSITIVE);
    let mut parts: Vec<(String, f64)> = match (hw, &r.total.pim) {
        (Machine::Pim(_), Some(p)) => {
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
        _ => {
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

fn table(entries: &[Entry], raw: bool) -> Table {
    let mut t = Table::new([
        "hardware",
        "model",
        "energy",
        "unit",
        "energy vs first",
        "latency (us)",
        "latency vs first",
        "utilization",
        "MACs",
        "breakdown",
    ]);
    let f = |v: f64| if raw { format!("{v}") } else { human(v) };
    for e in entries {
        let parts: Vec<String> = e
            .breakdown
            .iter()
            .take(4)
            .map(|(n, s)| format!("{n} {:.0}%", 100.0 * s))
            .collect();
        t.row([
            e.hardware.clone(),
            e.model.clone(),
            f(e.energy),
            e.unit.clone(),
            format!("{:.3}", e.energy_ratio),
            f(e.latency_us),
            format!("{:.3}", e.latency_ratio),
            format!("{:.1}%", 100.0 * e.utilization),
            f(e.macs as f64),
            parts.join(", "),
        ]);
    }
    t
}
