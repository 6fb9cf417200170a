//! `joule adapt`: NetAdapt on a trained model under latency, energy, MAC or weight budgets;
//! writes the family (ONNX + checkpoints), `state.json`, `summary.json` (docs/netadapt.md),
//! the latency table's validation and SVG plots.

use crate::commands::lut::Timing;
use crate::commands::train::{init_threads, load_network};
use crate::data_args::DataArgs;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use joule_compress::lut::{self, ChannelGrid, LatencyTable, WallClock};
use joule_compress::netadapt::{
    adapt, AdaptConfig, Budget, Event, Inputs, Record, Resource, Selection,
};
use joule_nn::{Dataset, Split};
use joule_report::{scatter_svg, Scatter, Series};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// A trained model: a .safetensors checkpoint (or zoo name / .onnx with weights).
    #[arg(long)]
    model: String,
    #[command(flatten)]
    dataset: DataArgs,
    /// kind=value: latency=0.5x, energy=0.4x, macs=200000, weights=0.3x (repeatable).
    #[arg(long, required = true)]
    budget: Vec<String>,
    /// Output folder: every iteration's network, history, summary.json, plots.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out after an interruption.
    #[arg(long)]
    resume: bool,
    /// A latency table (default: built into <out>/lut.json when latency is budgeted or measured).
    #[arg(long)]
    lut: Option<PathBuf>,
    /// Build the uniform width-multiplier baseline (every prunable layer shrunk by one factor,
    /// fine-tuned like the final network, matched to it on measured latency, else on the first
    /// budget). Default: on when a latency budget is given.
    #[arg(long, conflicts_with = "no_baseline")]
    baseline: bool,
    /// Also fine-tune the uniform network of every width (the baseline's accuracy-latency
    /// curve; implies --baseline).
    #[arg(long, conflicts_with = "no_baseline")]
    baseline_curve: bool,
    /// Skip the baseline even with a latency budget.
    #[arg(long)]
    no_baseline: bool,
    /// Do not measure each family member's real latency.
    #[arg(long)]
    no_measure: bool,
    /// Hardware preset for energy (eyeriss, isca16, ...).
    #[arg(long, default_value = "eyeriss")]
    hardware: String,
    /// Filter counts per prunable layer in the channel grid of the latency table.
    #[arg(long, default_value_t = 8)]
    levels: usize,
    /// Training images used (0: all of the training split minus the holdout).
    #[arg(long, default_value_t = 0)]
    train_samples: usize,
    /// Holdout images carved from the training split (never the test split).
    #[arg(long, default_value_t = 2000)]
    holdout: usize,
    /// Most NetAdapt iterations.
    #[arg(long, default_value_t = 30)]
    iterations: usize,
    /// r0: first resource reduction, as a fraction of the original.
    #[arg(long, default_value_t = 0.1)]
    initial_reduction: f64,
    /// Per-iteration decay of the reduction (target = current - r0 * decay^i).
    #[arg(long, default_value_t = 0.96)]
    decay: f64,
    /// Mini-batches of short-term fine-tuning per candidate.
    #[arg(long, default_value_t = 20)]
    short_term_batches: usize,
    /// Epochs of long-term fine-tuning of the final network.
    #[arg(long, default_value_t = 1)]
    long_term_epochs: usize,
    /// Fine-tuning batch size.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Fine-tuning learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f32,
    /// accuracy or drop-per-resource.
    #[arg(long, default_value = "accuracy")]
    selection: String,
    /// Seed of every random choice (holdout split, shuffling).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads for training (default: all cores; --threads sets the measured engine's).
    #[arg(long)]
    train_threads: Option<usize>,
    #[command(flatten)]
    timing: Timing,
}

pub fn run(args: Args) -> Result<()> {
    let source = args.dataset.source()?;
    init_threads(args.train_threads)?;
    let budgets: Vec<Budget> = args
        .budget
        .iter()
        .map(|b| Budget::parse(b))
        .collect::<Result<_, _>>()?;
    let selection = match args.selection.as_str() {
        "accuracy" => Selection::Accuracy,
        "drop-per-resource" => Selection::DropPerResource,
        other => bail!("--selection: unknown {other:?} (expected accuracy or drop-per-resource)"),
    };
    let original = load_network(&args.model, args.seed)?;
    let dir = args.dataset.dir();
    let (train_set, holdout) = carve(
        source.load(&dir, Split::Train)?,
        args.holdout,
        args.train_samples,
        args.seed,
    )?;
    let test = source.load(&dir, Split::Test)?;
    let needs_lut = budgets.iter().any(|b| b.resource == Resource::Latency) || !args.no_measure;
    let clock = WallClock::new(args.timing.threads)?;
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    let table = match (&args.lut, needs_lut) {
        (Some(path), _) => Some(LatencyTable::load(path)?),
        (None, true) => {
            let path = args.out.join("lut.json");
            if args.resume && path.exists() {
                Some(LatencyTable::load(&path)?)
            } else {
                let grid = ChannelGrid::even(original.graph(), args.levels)?;
                eprintln!(
                    "building the latency table ({} layers on the grid)...",
                    grid.layers.len()
                );
                let load = lut::load_average();
                if args.timing.config().gate_tolerance > 0.0 {
                    clock.find_reference(1000)?;
                }
                let mut t = lut::build(
                    original.graph(),
                    &grid,
                    args.timing.batch,
                    &clock,
                    &args.timing.config(),
                    |_, _| {},
                )?;
                t.threads = args.timing.threads;
                t.load_average = load;
                t.save(&path)?;
                Some(t)
            }
        }
        (None, false) => None,
    };
    if let Some(t) = &table {
        clock.use_reference(t.calibration_ms);
    }
    let hardware = joule_energy::spec::preset(&args.hardware)
        .with_context(|| format!("--hardware: unknown preset {:?}", args.hardware))?;
    let config = AdaptConfig {
        model: args.model.clone(),
        data: source.name().to_string(),
        budgets: budgets.clone(),
        initial_reduction: args.initial_reduction,
        decay: args.decay,
        max_iterations: args.iterations,
        levels: args.levels,
        short_term_batches: args.short_term_batches,
        long_term_epochs: args.long_term_epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        selection,
        seed: args.seed,
        baseline_curve: args.baseline_curve,
        baseline: args.baseline
            || args.baseline_curve
            || (!args.no_baseline && budgets.iter().any(|b| b.resource == Resource::Latency)),
    };
    let inputs = Inputs {
        train: &train_set,
        holdout: &holdout,
        test: Some(&test),
        lut: table.as_ref(),
        hardware: Some(&hardware),
        timer: (!args.no_measure).then(|| (&clock as &dyn lut::LayerTimer, args.timing.config())),
    };
    let bar = ProgressBar::new(args.iterations as u64);
    let style = |t: &str| {
        ProgressStyle::with_template(t)
            .expect("valid template")
            .progress_chars("=> ")
    };
    bar.set_style(style("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})"));
    bar.set_prefix("iterations");
    let state = adapt(
        &original,
        &config,
        &inputs,
        &args.out,
        args.resume,
        |event| match event {
            Event::Iteration { iteration, .. } => {
                bar.set_position(iteration as u64 - 1);
                bar.set_message("short-term fine-tuning the candidates");
            }
            Event::Chosen(r) => say(&bar, describe(r)),
            Event::Unreachable(message) => say(&bar, format!("unreachable: {message}")),
            Event::BaselineSearch => {
                bar.set_message("choosing the uniform baseline's width multiplier");
            }
            Event::Baseline(b) => say(
                &bar,
                format!(
                    "baseline: width {:.3} (matched on {}): {}",
                    b.width_multiplier,
                    b.matched_on,
                    describe(&b.record)
                ),
            ),
            Event::LongTerm {
                epoch,
                batch,
                batches,
            } => {
                bar.set_style(style(
                    "{prefix} [{bar:30}] {pos}/{len} batches ({elapsed}, eta {eta})",
                ));
                bar.set_prefix(format!("long-term fine-tuning, epoch {}", epoch + 1));
                bar.set_length(batches as u64);
                bar.set_position(batch as u64 + 1);
            }
        },
    )?;
    bar.finish_and_clear();
    let mut family = vec![state.original.clone()];
    family.extend(state.family.iter().cloned());
    let baseline = state.baseline.as_ref().map(|b| &b.record);
    let curve: Vec<&Record> = state.baseline_curve.iter().map(|b| &b.record).collect();
    plots(
        &args.out,
        &family,
        state.final_network.as_ref(),
        baseline,
        &curve,
    )?;
    println!("{:?}", state.status);
    for r in &family {
        println!("{}", describe(r));
    }
    if let Some(f) = &state.final_network {
        println!(
            "final (long-term fine-tuned): {}; test accuracy {:.2}%",
            describe(f),
            100.0 * f.test_accuracy.unwrap_or(f64::NAN)
        );
    }
    if let Some(b) = &state.baseline {
        println!(
            "baseline (uniform width {:.3}, fine-tuned the same way): {}; test accuracy {:.2}%",
            b.width_multiplier,
            describe(&b.record),
            100.0 * b.record.test_accuracy.unwrap_or(f64::NAN)
        );
    }
    crate::commands::lut::report_gate(&clock);
    println!("summary {}", args.out.join("summary.json").display());
    Ok(())
}

/// A line above the progress bar, or on stderr when the bar is hidden (not a terminal).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}")
    } else {
        bar.println(line)
    }
}

fn describe(r: &Record) -> String {
    format!(
        "iteration {:>2} {:<8} holdout {:.2}%  predicted {} ms  measured {} ms  energy {}  MACs {}  weights {}",
        r.iteration,
        r.layer.as_deref().unwrap_or("-"),
        100.0 * r.accuracy,
        r.latency_predicted_ms.map_or("-".into(), |v| format!("{v:.4}")),
        r.latency_measured_ms.map_or("-".into(), |v| format!("{v:.4}")),
        r.energy.map_or("-".into(), |v| format!("{v:.3e}")),
        r.macs,
        r.weights
    )
}

/// Splits the training split (seeded shuffle) into a training part and a holdout.
fn carve(all: Dataset, holdout: usize, train: usize, seed: u64) -> Result<(Dataset, Dataset)> {
    if holdout == 0 || holdout >= all.len() {
        bail!(
            "--holdout: {holdout} must be between 1 and the training split's {} images",
            all.len()
        );
    }
    let (rest, holdout) = all.split_holdout(holdout, seed);
    let rest = if train > 0 { rest.take(train) } else { rest };
    Ok((rest, holdout))
}

fn plots(
    out: &Path,
    family: &[Record],
    fin: Option<&Record>,
    baseline: Option<&Record>,
    curve: &[&Record],
) -> Result<()> {
    let pairs: Vec<(f64, f64)> = family
        .iter()
        .chain(fin)
        .chain(baseline)
        .filter_map(|r| Some((r.latency_measured_ms?, r.latency_predicted_ms?)))
        .collect();
    if !pairs.is_empty() {
        let errors: Vec<f64> = pairs.iter().map(|(m, p)| (p - m) / m).collect();
        let within = errors.iter().filter(|e| e.abs() <= 0.10).count();
        let report = serde_json::json!({
            "networks": pairs.len(),
            "within_10_percent": within,
            "fraction_within_10_percent": within as f64 / pairs.len() as f64,
            "relative_errors": errors,
            "median_abs_error": lut::median(&errors.iter().map(|e| e.abs()).collect::<Vec<_>>()),
            "max_abs_error": errors.iter().fold(0.0f64, |a, e| a.max(e.abs())),
            "load_average": lut::load_average(),
        });
        std::fs::write(
            out.join("lut_validation.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        let path = out.join("latency_predicted_vs_measured.svg");
        std::fs::write(
            &path,
            scatter_svg(&Scatter {
                title: "Latency: table prediction vs measurement".into(),
                x_label: "measured (ms)".into(),
                y_label: "predicted (ms)".into(),
                series: vec![Series {
                    name: "networks".into(),
                    points: pairs,
                    line: false,
                }],
                diagonal: true,
            })?,
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let curve = |x: fn(&Record) -> Option<f64>| -> Vec<Series> {
        let mut s = vec![Series {
            name: "family (holdout)".into(),
            points: family
                .iter()
                .filter_map(|r| Some((x(r)?, 100.0 * r.accuracy)))
                .collect(),
            line: true,
        }];
        if let Some(f) = fin.and_then(|f| Some((x(f)?, 100.0 * f.accuracy))) {
            s.push(Series {
                name: "final, long-term fine-tuned (holdout)".into(),
                points: vec![f],
                line: false,
            });
        }
        if let Some(b) = baseline.and_then(|b| Some((x(b)?, 100.0 * b.accuracy))) {
            s.push(Series {
                name: "uniform width baseline, same fine-tuning (holdout)".into(),
                points: vec![b],
                line: false,
            });
        }
        let points: Vec<(f64, f64)> = curve
            .iter()
            .filter_map(|b| Some((x(b)?, 100.0 * b.accuracy)))
            .collect();
        if !points.is_empty() {
            s.push(Series {
                name: "uniform width baseline, every width (holdout)".into(),
                points,
                line: true,
            });
        }
        s
    };
    for (name, label, x) in [
        (
            "accuracy_vs_latency.svg",
            "measured latency (ms)",
            (|r: &Record| r.latency_measured_ms) as fn(&Record) -> Option<f64>,
        ),
        (
            "accuracy_vs_energy.svg",
            "energy (eyeriss units)",
            |r: &Record| r.energy,
        ),
        ("accuracy_vs_macs.svg", "MACs", |r: &Record| {
            Some(r.macs as f64)
        }),
    ] {
        let series = curve(x);
        if series[0].points.is_empty() {
            continue;
        }
        let path = out.join(name);
        std::fs::write(
            &path,
            scatter_svg(&Scatter {
                title: "NetAdapt family".into(),
                x_label: label.into(),
                y_label: "accuracy (%)".into(),
                series,
                diagonal: false,
            })?,
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
