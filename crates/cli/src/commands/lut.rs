//! `joule lut build` / `joule lut predict`: per-layer latency lookup tables measured with
//! joule's inference engine on this CPU.

use crate::commands::train::load_network;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use joule_compress::lut::{self, ChannelGrid, LatencyTable, MeasureConfig, WallClock};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Args {
    /// Measure every layer variant of a model's channel grid in isolation.
    Build(BuildArgs),
    /// Predict a model's latency from a table (and, with --measure, compare with a measurement).
    Predict(PredictArgs),
}

#[derive(clap::Args)]
pub struct Timing {
    /// Batch size of the measured inference.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Threads of the inference engine.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Untimed runs before timing.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Runs per round; rounds repeat until the median moves by at most --tolerance.
    #[arg(long, default_value_t = 15)]
    round: usize,
    /// Relative change of the median between rounds below which a measurement is stable.
    #[arg(long, default_value_t = 0.02)]
    tolerance: f64,
    /// Most timed runs per layer; a layer that reaches it is reported as unstable.
    #[arg(long, default_value_t = 150)]
    max_runs: usize,
    /// Sweeps over the table (a network: repeated measurements --pause-ms apart); the median
    /// of the sweeps' medians is kept, so a slow phase of a shared machine is voted out.
    #[arg(long, default_value_t = 7)]
    sweeps: usize,
    /// Pause between the sweeps of one network's measurement, in ms.
    #[arg(long, default_value_t = 100)]
    pause_ms: u64,
    /// Before every sweep, wait while a calibration layer runs this much slower than its
    /// fastest (a slow phase of a shared machine); 0 turns the gate off.
    #[arg(long, default_value_t = 0.1)]
    gate_tolerance: f64,
    /// Longest wait for the normal speed before a sweep, in ms (then it runs anyway).
    #[arg(long, default_value_t = 30_000)]
    gate_wait_ms: u64,
}

impl Timing {
    pub fn config(&self) -> MeasureConfig {
        MeasureConfig {
            warmup: self.warmup,
            round: self.round,
            tolerance: self.tolerance,
            max_runs: self.max_runs,
            sweeps: self.sweeps,
            pause_ms: self.pause_ms,
            gate_tolerance: self.gate_tolerance,
            gate_wait_ms: self.gate_wait_ms,
        }
    }
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// A zoo name, an .onnx file or a .safetensors checkpoint.
    model: String,
    /// Filter counts per prunable layer in the channel grid.
    #[arg(long, default_value_t = 8)]
    levels: usize,
    #[command(flatten)]
    timing: Timing,
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
    timing: Timing,
}

pub fn run(args: Args) -> Result<()> {
    match args {
        Args::Build(a) => build(a),
        Args::Predict(a) => predict(a),
    }
}

fn build(args: BuildArgs) -> Result<()> {
    let network = load_network(&args.model, 1)?;
    let grid = ChannelGrid::even(network.graph(), args.levels)?;
    let clock = WallClock::new(args.timing.threads)?;
    let config = args.timing.config();
    if config.gate_tolerance > 0.0 {
        clock.find_reference(1000)?;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "measuring [{bar:30}] {pos}/{len} layer variants ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let load = lut::load_average();
    let mut table = lut::build(
        network.graph(),
        &grid,
        args.timing.batch,
        &clock,
        &config,
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    report_gate(&clock);
    table.threads = args.timing.threads;
    table.load_average = load;
    table.save(&args.out)?;
    let unstable = table.entries.iter().filter(|e| !e.measured.stable).count();
    println!(
        "{}: {} entries over {} prunable layers, overhead {:.4} ms, {} unstable, load average {}; table {}",
        args.model,
        table.entries.len(),
        grid.layers.len(),
        table.overhead.median_ms,
        unstable,
        load.map_or("unknown".into(), |l| format!("{l:.2}")),
        args.out.display()
    );
    Ok(())
}

/// Says on stderr how long the measurements waited for the machine's normal speed.
pub fn report_gate(clock: &WallClock) {
    let (ms, gave_up) = clock.waited();
    if ms >= 100.0 || gave_up > 0 {
        eprintln!(
            "waited {:.1} s for the machine's normal speed (calibration {:.4} ms){}",
            ms / 1e3,
            lut::LayerTimer::reference_ms(clock).unwrap_or(f64::NAN),
            if gave_up > 0 {
                format!("; {gave_up} sweeps ran without reaching it")
            } else {
                String::new()
            }
        );
    }
}

fn predict(args: PredictArgs) -> Result<()> {
    let network = load_network(&args.model, 1)?;
    let table = LatencyTable::load(&args.lut)?;
    let prediction = table.predict(network.graph())?;
    let mut t = joule_report::Table::new(vec!["layer", "key", "latency (ms)"]);
    for (name, key, ms) in &prediction.layers {
        t.row(vec![name.clone(), key.to_string(), format!("{ms:.4}")]);
    }
    println!("{}", t.to_text());
    println!(
        "overhead {:.4} ms; predicted {:.4} ms",
        prediction.overhead_ms, prediction.total_ms
    );
    if args.measure {
        let clock = WallClock::new(args.timing.threads)?;
        clock.use_reference(table.calibration_ms);
        let m = lut::measure_network(&network, table.batch, &clock, &args.timing.config())?;
        report_gate(&clock);
        println!(
            "measured {:.4} ms (spread {:.4} ms, {} runs); error {:+.1}%; load average {}",
            m.median_ms,
            m.spread_ms,
            m.runs,
            100.0 * (prediction.total_ms - m.median_ms) / m.median_ms,
            lut::load_average().map_or("unknown".into(), |l| format!("{l:.2}"))
        );
    }
    Ok(())
}
