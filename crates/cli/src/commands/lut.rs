//! `joule lut build` / `joule lut predict`: per-layer latency lookup tables measured with
//! joule's inference engine on this CPU.

use crate::args::TimingArgs;
use crate::output::outln;
use crate::progress::{bar, report_gate};
use anyhow::Result;
use joule_lab::lut;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Args {
    /// Measure every layer variant of a model's channel grid in isolation.
    Build(BuildArgs),
    /// Predict a model's latency from a table (and, with --measure, compare with a measurement).
    Predict(PredictArgs),
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// A zoo name, an .onnx file or a .safetensors checkpoint.
    model: String,
    /// Filter counts per prunable layer in the channel grid.
    #[arg(long, default_value_t = 8)]
    levels: usize,
    #[command(flatten)]
    timing: TimingArgs,
    /// Output table (.json, or .csv without the grid).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct PredictArgs {
    model: String,
    #[arg(long)]
    lut: PathBuf,
    /// Also measure the whole network and report the prediction error.
    #[arg(long)]
    measure: bool,
    #[command(flatten)]
    timing: TimingArgs,
}

pub fn run(args: Args) -> Result<()> {
    match args {
        Args::Build(a) => build(a),
        Args::Predict(a) => predict(a),
    }
}

fn build(args: BuildArgs) -> Result<()> {
    let progress = bar(
        0,
        "measuring [{bar:30}] {pos}/{len} layer variants ({elapsed}, eta {eta})",
    );
    let (table, gate) = lut::build(
        &args.model,
        args.levels,
        &args.timing.timing(),
        &args.out,
        |done, total| {
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        },
    )?;
    progress.finish_and_clear();
    report_gate(&gate);
    let unstable = table.entries.iter().filter(|e| !e.measured.stable).count();
    outln!(
        "{}: {} entries over {} prunable layers, overhead {:.4} ms, {} unstable, load average {}; table {}",
        args.model,
        table.entries.len(),
        table.grid.layers.len(),
        table.overhead.median_ms,
        unstable,
        table.load_average.map_or("unknown".into(), |l| format!("{l:.2}")),
        args.out.display()
    );
    Ok(())
}

fn predict(args: PredictArgs) -> Result<()> {
    let timing = args.timing.timing();
    let checked = lut::predict(&args.model, &args.lut, args.measure.then_some(&timing))?;
    let prediction = &checked.prediction;
    let mut t = joule_report::Table::new(vec!["layer", "key", "latency (ms)"]);
    for (name, key, ms) in &prediction.layers {
        t.row(vec![name.clone(), key.to_string(), format!("{ms:.4}")]);
    }
    outln!("{}", t.to_text());
    outln!(
        "overhead {:.4} ms; predicted {:.4} ms",
        prediction.overhead_ms,
        prediction.total_ms
    );
    if let Some((m, gate)) = &checked.measured {
        report_gate(gate);
        outln!(
            "measured {:.4} ms (spread {:.4} ms, {} runs); error {:+.1}%; load average {}",
            m.median_ms,
            m.spread_ms,
            m.runs,
            100.0 * (prediction.total_ms - m.median_ms) / m.median_ms,
            joule_lab::lut::load_average().map_or("unknown".into(), |l| format!("{l:.2}"))
        );
    }
    Ok(())
}
