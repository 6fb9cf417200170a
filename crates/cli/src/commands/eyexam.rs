//! `joule eyexam`: where a model's throughput goes on a machine, one architectural
//! constraint at a time (peak, dataflow, array shape, fit, storage, mapping, bandwidth,
//! sparsity), per layer and in total.

use crate::args::{Format, FormatArgs, MachineArgs};
use crate::output::{out, outln};
use anyhow::{Context, Result};
use joule_lab::estimate::{self, EnergyOptions};
use joule_lab::{tables, Dataflow, Objective};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A zoo name (see `joule zoo`), an .onnx file or a .safetensors checkpoint.
    model: String,
    #[command(flatten)]
    machine: MachineArgs,
    /// Dataflow: rs, ws, ws-isca16, os, os-a, os-b, os-c or nlr.
    #[arg(long, default_value = "rs")]
    dataflow: Dataflow,
    /// Batch size.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// What the mapper minimises (step "mapping"): energy, cycles or edp.
    #[arg(long, default_value = "energy")]
    objective: Objective,
    /// Ifmap density (fraction of non-zeros) for every layer.
    #[arg(long)]
    ifmap_density: Option<f64>,
    /// Weight density for every layer (default: measured from the model's weights, else 1).
    #[arg(long)]
    weight_density: Option<f64>,
    /// Per-layer densities: a YAML or JSON file mapping layer name -> {weight, ifmap}.
    #[arg(long, value_name = "FILE")]
    density: Option<PathBuf>,
    /// Bits per ifmap, filter and psum value (default: the machine's word width).
    #[arg(long)]
    bits: Option<u32>,
    /// Write a per-layer chart (MACs per cycle reached, and lost at each step) to this SVG.
    #[arg(long)]
    svg: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    let mut options = EnergyOptions::new(&args.model, &args.machine.name());
    options.dataflow = args.dataflow;
    options.batch = args.batch;
    options.objective = args.objective;
    options.ifmap_density = args.ifmap_density;
    options.weight_density = args.weight_density;
    options.density_file = args.density;
    options.bits = args.bits;
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
