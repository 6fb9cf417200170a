//! `joule dataflows`: RS, WS, the three OS variants and NLR on one model at equal storage area (ISCA'16).

use crate::load;
use crate::output::{Format, FormatArgs};
use anyhow::{Context, Result};
use joule_energy::{compare, spec, workload, Objective};
use joule_report::{human, stacked_bars_svg, StackedBars, Table};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A zoo name (see `joule zoo`) or an .onnx file.
    model: String,
    /// Hardware: a preset or a YAML spec file (the RS machine; others get equal area).
    #[arg(long, default_value = "isca16")]
    hw: String,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Write a chart of CONV and FC energy per dataflow to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    let hw = spec::load(&args.hw)?;
    let graph = load::model(&args.model)?;
    let layers = workload::from_graph(&graph, None, args.batch)?;
    let results = compare::compare(&args.model, &layers, &hw, Objective::Energy)
        .with_context(|| format!("{} on {}", args.model, args.hw))?;
    let rs_conv = results[0].total.conv.energy;
    let rs_fc = results[0].total.fc.energy;
    let mut t = Table::new([
        "dataflow",
        "hardware",
        "conv",
        "fc",
        "total",
        "conv_vs_rs",
        "fc_vs_rs",
    ]);
    for r in &results {
        t.row([
            r.dataflow.to_string(),
            r.hardware.clone(),
            human(r.total.conv.energy),
            human(r.total.fc.energy),
            human(r.total.energy.total),
            format!("{:.2}x", r.total.conv.energy / rs_conv),
            format!(
                "{:.2}x",
                if rs_fc > 0.0 {
                    r.total.fc.energy / rs_fc
                } else {
                    0.0
                }
            ),
        ]);
    }
    if let Some(path) = &args.svg {
        let categories: Vec<String> = results.iter().map(|r| r.dataflow.to_string()).collect();
        let panel = StackedBars {
            title: format!(
                "{} on {} (equal area), batch {}",
                args.model, hw.name, args.batch
            ),
            y_label: format!("energy ({})", results[0].unit),
            categories,
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
        };
        std::fs::write(path, stacked_bars_svg(&[panel])?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    match args.format.format() {
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        Format::Csv => print!("{}", t.to_csv()?),
        Format::Text => {
            println!(
                "{} at equal storage area of {}, batch {}, energy in {}",
                args.model, hw.name, args.batch, results[0].unit
            );
            println!("{}", t.to_text());
        }
    }
    Ok(())
}
