//! `joule dataflows`: RS, WS, the three OS variants and NLR on one model at equal storage
//! area (ISCA'16).

use crate::args::{Format, FormatArgs, MachineArgs};
use crate::output::{out, outln};
use anyhow::{Context, Result};
use joule_lab::{estimate, tables};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A zoo name (see `joule zoo`), an .onnx file or a checkpoint.
    model: String,
    /// The RS machine (default: isca16); the others get equal storage area.
    #[command(flatten)]
    machine: MachineArgs,
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
    let hw = args.machine.name_or("isca16");
    let results = estimate::dataflows(&args.model, &hw, args.batch)?;
    if let Some(path) = &args.svg {
        joule_lab::write_file(path, estimate::dataflows_svg(&results)?)
            .with_context(|| "--svg".to_string())?;
    }
    match args.format.format() {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&results)?),
        Format::Csv => out!("{}", tables::dataflows(&results).to_csv()?),
        Format::Text => {
            outln!(
                "{} at equal storage area of {hw}, batch {}, energy in {}",
                args.model,
                args.batch,
                results[0].unit
            );
            outln!("{}", tables::dataflows(&results).to_text());
        }
    }
    Ok(())
}
