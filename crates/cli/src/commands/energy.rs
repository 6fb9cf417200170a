//! `joule energy`: per-layer energy, cycles and DRAM traffic of a model on a machine.

use crate::args::{EstimateArgs, Format, FormatArgs, MachineArgs};
use crate::output::{out, outln};
use anyhow::{bail, Context, Result};
use joule_lab::estimate;
use joule_lab::{hardware, tables};
use joule_report::{human, Table};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A zoo name (see `joule zoo`), an .onnx file or a .safetensors checkpoint.
    model: Option<String>,
    #[command(flatten)]
    machine: MachineArgs,
    #[command(flatten)]
    estimate: EstimateArgs,
    /// Bits per weight for every layer (after --bits).
    #[arg(long)]
    weight_bits: Option<u32>,
    /// Bits per ifmap value for every layer (after --bits).
    #[arg(long)]
    ifmap_bits: Option<u32>,
    /// Per-layer widths: a YAML or JSON file mapping layer name -> {ifmap, filter, psum}
    /// (applied after the flags above).
    #[arg(long, value_name = "FILE")]
    bits_file: Option<PathBuf>,
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
        for hw in hardware::presets()? {
            t.row([hw.name().to_string(), hw.description().to_string()]);
        }
        outln!("{}\n", t.to_text());
        return Ok(());
    }
    let Some(model) = args.model else {
        bail!("give a model (a zoo name or an .onnx file), or --list-hw");
    };
    let mut options = args.estimate.options(&model, &args.machine.name());
    options.weight_bits = args.weight_bits;
    options.ifmap_bits = args.ifmap_bits;
    options.bits_file = args.bits_file;
    let report = estimate::energy(&options)?;
    if let Some(path) = &args.svg {
        joule_lab::write_file(path, estimate::energy_svg(&report)?)
            .with_context(|| "--svg".to_string())?;
    }
    match args.format.format() {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&report)?),
        Format::Csv => out!("{}", tables::energy_layers(&report, true).to_csv()?),
        Format::Text => {
            outln!(
                "{} on {} ({}), batch {}, energy in {}",
                report.model,
                report.hardware,
                report.dataflow,
                report.batch,
                report.unit
            );
            outln!("{}", tables::energy_layers(&report, false).to_text());
            if let Some(a) = &report.area {
                outln!(
                    "area {:.2} mm2 at {} nm: MACs {:.2}, RF {:.2}, buffer {:.2}, NoC {:.2} \
                     (docs/energy.md, \"Area\")",
                    a.total,
                    a.node_nm,
                    a.mac,
                    a.rf,
                    a.buffer,
                    a.noc
                );
            }
            if let Some(pim) = &report.total.pim {
                outln!("{}", tables::pim_layers(&report).to_text());
                outln!(
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
