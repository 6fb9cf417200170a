//! `joule eyexam`: where a model's throughput goes on a machine, one architectural
//! constraint at a time (peak, dataflow, array shape, fit, storage, mapping, bandwidth,
//! sparsity), per layer and in total.

use crate::args::{EstimateArgs, Format, FormatArgs, MachineArgs};
use crate::output::{out, outln};
use anyhow::{Context, Result};
use joule_lab::estimate;
use joule_lab::tables;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A zoo name (see `joule zoo`), an .onnx file or a .safetensors checkpoint.
    model: String,
    #[command(flatten)]
    machine: MachineArgs,
    #[command(flatten)]
    estimate: EstimateArgs,
    /// Write a per-layer chart (MACs per cycle reached, and lost at each step) to this SVG.
    #[arg(long)]
    svg: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    let options = args.estimate.options(&args.model, &args.machine.name());
    let exam = estimate::eyexam(&options)?;
    if let Some(path) = &args.svg {
        joule_lab::write_file(path, estimate::eyexam_svg(&exam)?)
            .with_context(|| "--svg".to_string())?;
    }
    match args.format.format() {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&exam)?),
        Format::Csv => out!("{}", tables::eyexam_layers(&exam, true).to_csv()?),
        Format::Text => {
            outln!(
                "{} on {} ({}, {} PEs), batch {}: non-zero MACs per cycle after each step",
                exam.model,
                exam.hardware,
                exam.dataflow,
                exam.pes,
                exam.batch
            );
            outln!("{}", tables::eyexam_layers(&exam, false).to_text());
            outln!("{}", tables::eyexam_steps(&exam).to_text());
        }
    }
    Ok(())
}
