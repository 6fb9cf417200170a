//! `joule report`: one self-contained HTML page of models on machines, dataflows and the
//! run directories of `prune`, `adapt` and `eliminate`.

use crate::args::MachinesArgs;
use crate::output::outln;
use anyhow::{bail, Result};
use joule_lab::page::{self, ReportOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Models to estimate: zoo names, .onnx files or checkpoints.
    models: Vec<String>,
    /// Default: eyeriss.
    #[command(flatten)]
    machines: MachinesArgs,
    /// Batch size of the estimates.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Also compare the dataflows at equal area for every model, on this machine (the RS one).
    #[arg(long, value_name = "PRESET|FILE", num_args = 0..=1, default_missing_value = "isca16")]
    dataflows: Option<String>,
    /// Batch size of the dataflow comparison.
    #[arg(long, default_value_t = 16)]
    dataflow_batch: usize,
    /// A run directory of `joule prune`, `adapt` or `eliminate`, or its summary file
    /// (repeatable).
    #[arg(long)]
    run: Vec<PathBuf>,
    /// Score the models that carry trained weights on this dataset's test split
    /// (mnist or fashion-mnist).
    #[arg(long)]
    data: Option<String>,
    /// Folder holding the datasets (default: $JOULE_DATA, else data/).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Leave out the per-layer sections (for many models: the page stays small).
    #[arg(long)]
    no_layers: bool,
    /// The page's title.
    #[arg(long, default_value = "joule report")]
    title: String,
    /// Where to write the page.
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    if args.models.is_empty() && args.run.is_empty() {
        bail!("give models to estimate, --run directories, or both");
    }
    let html = page::report(&ReportOptions {
        title: args.title,
        models: args.models,
        hw: args.machines.names_or(&["eyeriss"]),
        batch: args.batch,
        dataflows: args.dataflows,
        dataflow_batch: args.dataflow_batch,
        runs: args.run,
        layers: !args.no_layers,
        data: args
            .data
            .as_deref()
            .map(|d| joule_lab::DataSpec::new(d, args.data_dir.as_deref())),
    })?;
    joule_lab::write_file(&args.out, &html)?;
    outln!(
        "wrote {} ({} KiB); open it in a browser",
        args.out.display(),
        html.len() / 1024
    );
    Ok(())
}
