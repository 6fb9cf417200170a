//! `joule lut build` / `joule lut predict`: per-layer latency lookup tables measured with
//! joule's inference engine on this CPU; `joule lut probes` / `import` / `check`: tables of
//! any runtime (the probes as ONNX files, timed by a runner such as `scripts/lut-ort.py`).

use crate::args::TimingArgs;
use crate::output::outln;
use crate::progress::{bar, report_gate};
use anyhow::Result;
use joule_lab::lut;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Args {
    /// Time every layer variant of a model's channel grid (in network order: --context).
    Build(BuildArgs),
    /// Predict a model's latency from a table (and, with --measure, compare with a measurement).
    Predict(PredictArgs),
    /// Write every layer variant of a model's channel grid as an ONNX probe, with a manifest,
    /// for another runtime to time (scripts/lut-ort.py table DIR).
    Probes(ProbesArgs),
    /// Read a runner's timings of a probe folder back as a latency table.
    Import(ImportArgs),
    /// Compare a table's predictions with a runner's measurements of whole networks
    /// (scripts/lut-ort.py networks): the prediction-error table.
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct ProbesArgs {
    /// A zoo name, an .onnx file or a .safetensors checkpoint.
    model: String,
    /// Filter counts per prunable layer in the channel grid.
    #[arg(long, default_value_t = 8)]
    levels: usize,
    /// Batch size of the probes' inputs.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Output folder (probe_NNNNN.onnx, overhead.onnx, node.onnx, calibration.onnx, manifest.json).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The probe folder `joule lut probes` wrote (its manifest.json).
    #[arg(long)]
    probes: PathBuf,
    /// The runner's timings of it (JSON).
    #[arg(long)]
    timings: PathBuf,
    /// Output table (.json, or .csv without the grid).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The table (JSON or CSV).
    #[arg(long)]
    lut: PathBuf,
    /// The runner's timings of whole networks (JSON).
    #[arg(long)]
    timings: PathBuf,
    /// Also write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
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
        Args::Probes(a) => probes(a),
        Args::Import(a) => import(a),
        Args::Check(a) => check(a),
    }
}

fn probes(args: ProbesArgs) -> Result<()> {
    let manifest = lut::emit_probes(&args.model, args.levels, args.batch, &args.out)?;
    outln!(
        "{}: {} probes over {} prunable layers (batch {}), with overhead, two-node and calibration probes; manifest {}",
        args.model,
        manifest.probes.len(),
        manifest.grid.layers.len(),
        manifest.batch,
        args.out.join(lut::MANIFEST).display()
    );
    Ok(())
}

fn import(args: ImportArgs) -> Result<()> {
    let table = lut::import_timings(&args.probes, &args.timings, &args.out)?;
    let unstable = table.entries.iter().filter(|e| !e.measured.stable).count();
    outln!(
        "{}: {} entries measured with {}, overhead {:.4} ms, {} unstable, load average {}; table {}",
        table.model,
        table.entries.len(),
        table.runtime.as_deref().unwrap_or("joule"),
        table.overhead.median_ms,
        unstable,
        table.load_average.map_or("unknown".into(), |l| format!("{l:.2}")),
        args.out.display()
    );
    Ok(())
}

fn check(args: CheckArgs) -> Result<()> {
    let report = lut::check(&args.lut, &args.timings, args.json.as_deref())?;
    let pct = |e: f64| format!("{:+.1}%", 100.0 * e);
    let mut t = joule_report::Table::new(vec![
        "network",
        "predicted (ms)",
        "measured (ms)",
        "spread (ms)",
        "error",
        "state (ms)",
        "drift",
        "error in the table's state",
    ]);
    for r in &report.rows {
        t.row(vec![
            r.file
                .file_name()
                .map_or(r.file.display().to_string(), |f| {
                    f.to_string_lossy().into_owned()
                }),
            format!("{:.4}", r.predicted_ms),
            format!("{:.4}", r.measured_ms),
            format!("{:.4}", r.spread_ms),
            pct(r.error),
            format!("{:.4}", r.state_ms),
            r.drift.map_or("-".into(), |d| format!("{d:.3}")),
            pct(r.normalised_error),
        ]);
    }
    outln!("{}", t.to_text());
    let n = report.rows.len();
    outln!(
        "\n{}/{} within 10% (median |error| {:.1}%, max {:.1}%); in the table's machine state (prediction x drift, else x calibration ratio; table calibration {}): {}/{} within 10% (median {:.1}%, max {:.1}%); {} measured in a state more than 10% from the table's",
        report.within_10_percent,
        n,
        100.0 * report.median_abs_error,
        100.0 * report.max_abs_error,
        report
            .table_state_ms
            .map_or("unknown".into(), |s| format!("{s:.4} ms")),
        report.normalised_within_10_percent,
        n,
        100.0 * report.normalised_median_abs_error,
        100.0 * report.normalised_max_abs_error,
        report.state_flagged
    );
    Ok(())
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
        if let Some(d) = checked.drift {
            outln!(
                "drift: the network's steps re-timed now take {d:.3}x their table entries; error in the table's state {:+.1}%",
                100.0 * (prediction.total_ms * d - m.median_ms) / m.median_ms
            );
        }
        if let (Some(now), Some(then)) = (gate.state_ms, checked.table_state_ms) {
            outln!(
                "machine state: calibration {now:.4} ms now, {then:.4} ms when the table was measured ({:+.1}%); error in the table's state {:+.1}%",
                100.0 * (now / then - 1.0),
                100.0 * (prediction.total_ms * now / then - m.median_ms) / m.median_ms
            );
        }
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
