//! `joule energy`: per-layer energy, cycles and DRAM traffic of a model on a machine.

use crate::load;
use crate::output::{Format, FormatArgs};
use anyhow::{bail, Context, Result};
use joule_energy::network::NetworkCost;
use joule_energy::{machine, workload, Dataflow, Objective};
use joule_report::{human, stacked_bars_svg, StackedBars, Table};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A zoo name (see `joule zoo`) or an .onnx file.
    model: Option<String>,
    /// Hardware: a preset (see --list-hw; `pim-*` are processing-in-memory) or a YAML spec
    /// file (`model: pim` for a PIM spec).
    #[arg(long, default_value = "eyeriss")]
    hw: String,
    /// Dataflow: rs, ws, os (best of os-a, os-b, os-c) or nlr; also os-a, os-b, os-c and
    /// ws-isca16 (WS as the ISCA'16 analysis evaluates it).
    #[arg(long, default_value = "rs")]
    dataflow: Dataflow,
    /// Batch size.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// What the mapper minimises: energy, cycles or edp.
    #[arg(long, default_value = "energy")]
    objective: Objective,
    /// Ifmap density (fraction of non-zeros) for every layer.
    #[arg(long)]
    ifmap_density: Option<f64>,
    /// Weight density for every layer (default: measured from the model's weights, else 1).
    #[arg(long)]
    weight_density: Option<f64>,
    /// Per-layer densities: a YAML or JSON file mapping layer name -> {weight, ifmap}
    /// (applied after --ifmap-density / --weight-density).
    #[arg(long, value_name = "FILE")]
    density: Option<PathBuf>,
    /// Bits per ifmap, filter and psum value (default: the machine's word width).
    #[arg(long)]
    bits: Option<u32>,
    /// Write a per-layer stacked bar chart (by level and by data type) to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// List the hardware presets and exit.
    #[arg(long)]
    list_hw: bool,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    if args.list_hw {
        let mut t = Table::new(["preset", "description"]);
        for name in machine::preset_names() {
            let hw = machine::preset(name)?;
            t.row([name.to_string(), hw.description().to_string()]);
        }
        print!("{}", t.to_text());
        println!();
        return Ok(());
    }
    let Some(model) = args.model.as_deref() else {
        bail!("give a model (a zoo name or an .onnx file), or --list-hw");
    };
    let report = evaluate(model, &args)?;
    if let Some(path) = &args.svg {
        chart(&report, path)?;
    }
    match args.format.format() {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Csv => print!("{}", table(&report, true).to_csv()?),
        Format::Text => {
            println!(
                "{} on {} ({}), batch {}, energy in {}",
                report.model, report.hardware, report.dataflow, report.batch, report.unit
            );
            println!("{}", table(&report, false).to_text());
            if let Some(pim) = &report.total.pim {
                println!("{}", pim_table(&report).to_text());
                println!(
                    "{} arrays, weights {}; weight programming {} {} (one-time when resident)",
                    pim.arrays,
                    if pim.resident {
                        "resident"
                    } else {
                        "reprogrammed every inference"
                    },
                    human(pim.components.weight_programming),
                    report.unit
                );
            }
        }
    }
    Ok(())
}

fn evaluate(model: &str, args: &Args) -> Result<NetworkCost> {
    let hw = machine::load(&args.hw)?;
    let graph = load::model(model)?;
    let mut layers = workload::from_graph(&graph, None, args.batch)?;
    for w in &mut layers {
        if let Some(d) = args.ifmap_density {
            w.density.ifmap = d;
        }
        if let Some(d) = args.weight_density {
            w.density.weight = d;
        }
        if let Some(b) = args.bits {
            w.bits.ifmap = Some(b);
            w.bits.filter = Some(b);
            w.bits.psum = Some(b);
        }
    }
    if let Some(path) = &args.density {
        let densities = workload::load_densities(path)?;
        workload::apply_densities(&mut layers, &densities, &path.display().to_string())?;
    }
    hw.evaluate(model, &layers, args.dataflow, args.objective)
        .with_context(|| format!("{model} on {}", args.hw))
}

/// Per-layer PIM components, arrays and conversions.
fn pim_table(r: &NetworkCost) -> Table {
    let mut t = Table::new([
        "layer",
        "arrays",
        "util",
        "DAC conv",
        "ADC conv",
        "dac",
        "array",
        "adc",
        "digital",
        "buffer",
        "dram",
        "weight prog",
    ]);
    let rows = r.layers.iter().filter_map(|l| {
        l.pim
            .as_ref()
            .map(|p| (l.cost.name.clone(), l.cost.utilization, p.clone()))
    });
    for (name, util, p) in rows {
        let c = &p.components;
        t.row([
            name,
            p.arrays.to_string(),
            format!("{:.1}%", 100.0 * util),
            human(p.dac_conversions),
            human(p.adc_conversions),
            human(c.dac),
            human(c.array),
            human(c.adc),
            human(c.digital),
            human(c.buffer),
            human(c.dram),
            human(c.weight_programming),
        ]);
    }
    t
}

fn table(r: &NetworkCost, raw: bool) -> Table {
    let mut t = Table::new([
        "layer",
        "macs",
        "total",
        "mac",
        "rf",
        "array",
        "buffer",
        "dram",
        "ifmap",
        "filter",
        "psum",
        "cycles",
        "utilization",
        "dram_bytes",
    ]);
    let f = |v: f64| if raw { format!("{v}") } else { human(v) };
    let mut row = |name: String,
                   macs: u64,
                   e: &joule_energy::cost::LevelEnergy,
                   ty: &joule_energy::cost::TypeEnergy,
                   cycles: f64,
                   util: f64,
                   bytes: f64| {
        t.row([
            name,
            f(macs as f64),
            f(e.total),
            f(e.mac),
            f(e.rf),
            f(e.array),
            f(e.buffer),
            f(e.dram),
            f(ty.ifmap),
            f(ty.filter),
            f(ty.psum),
            f(cycles),
            format!("{:.1}%", 100.0 * util),
            f(bytes),
        ]);
    };
    for l in &r.layers {
        let c = &l.cost;
        row(
            c.name.clone(),
            c.macs,
            &c.energy,
            &c.energy_by_type,
            c.cycles,
            c.utilization,
            c.dram_bytes,
        );
    }
    let tot = &r.total;
    row(
        "total".into(),
        tot.macs,
        &tot.energy,
        &tot.energy_by_type,
        tot.cycles,
        tot.utilization,
        tot.dram_bytes,
    );
    t
}

/// The per-layer stacked bars, by level and by data type.
pub fn chart(r: &NetworkCost, path: &std::path::Path) -> Result<()> {
    let names: Vec<String> = r.layers.iter().map(|l| l.cost.name.clone()).collect();
    let col = |f: &dyn Fn(&joule_energy::LayerCost) -> f64| -> Vec<f64> {
        r.layers.iter().map(|l| f(&l.cost)).collect()
    };
    let unit = format!("energy ({})", r.unit);
    let by_level = StackedBars {
        title: format!(
            "{} on {} ({}, batch {}): energy by level",
            r.model, r.hardware, r.dataflow, r.batch
        ),
        y_label: unit.clone(),
        categories: names.clone(),
        series: vec![
            ("MAC".into(), col(&|c| c.energy.mac)),
            ("RF".into(), col(&|c| c.energy.rf)),
            ("array".into(), col(&|c| c.energy.array)),
            ("buffer".into(), col(&|c| c.energy.buffer)),
            ("DRAM".into(), col(&|c| c.energy.dram)),
        ],
        log_y: false,
    };
    let by_type = StackedBars {
        title: "energy by data type".into(),
        y_label: unit,
        categories: names,
        series: vec![
            ("compute".into(), col(&|c| c.energy_by_type.compute)),
            ("ifmap".into(), col(&|c| c.energy_by_type.ifmap)),
            ("filter".into(), col(&|c| c.energy_by_type.filter)),
            ("psum".into(), col(&|c| c.energy_by_type.psum)),
        ],
        log_y: false,
    };
    let mut panels = vec![by_level, by_type];
    if r.layers.iter().all(|l| l.pim.is_some()) {
        let comp = |f: &dyn Fn(&joule_energy::pim::Components) -> f64| -> Vec<f64> {
            r.layers
                .iter()
                .map(|l| l.pim.as_ref().map_or(0.0, |p| f(&p.components)))
                .collect()
        };
        panels.push(StackedBars {
            title: "energy by PIM component (weight programming is one-time, not shown)".into(),
            y_label: format!("energy ({})", r.unit),
            categories: r.layers.iter().map(|l| l.cost.name.clone()).collect(),
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
    std::fs::write(path, stacked_bars_svg(&panels)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
