//! `joule compare`: networks side by side on several machines (digital or PIM): energy,
//! latency (cycles / clock) and utilization per inference batch, and where the energy goes.

use crate::args::{Format, FormatArgs, MachinesArgs};
use crate::output::{out, outln};
use anyhow::Result;
use joule_lab::{estimate, tables, Dataflow};

#[derive(clap::Args)]
pub struct Args {
    /// Two or more models: zoo names, .onnx files or checkpoints.
    #[arg(required = true, num_args = 2..)]
    models: Vec<String>,
    /// Default: eyeriss,pim-128.
    #[command(flatten)]
    machines: MachinesArgs,
    /// Dataflow on digital machines (PIM is weight stationary).
    #[arg(long, default_value = "rs")]
    dataflow: Dataflow,
    /// Batch size.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    let machines = args.machines.names_or(&["eyeriss", "pim-128"]);
    let entries = estimate::compare(&args.models, &machines, args.dataflow, args.batch)?;
    match args.format.format() {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&entries)?),
        Format::Csv => out!("{}", tables::compare(&entries, true).to_csv()?),
        Format::Text => {
            outln!(
                "energy and latency per batch of {}; ratios are against {} on the same machine",
                args.batch,
                args.models[0]
            );
            outln!("{}", tables::compare(&entries, false).to_text());
        }
    }
    Ok(())
}
