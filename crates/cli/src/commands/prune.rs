//! `joule prune`: magnitude pruning or energy-aware pruning of a trained model on real data,
//! with a checkpoint per step, `--resume`, and the outputs documented in docs/prune.md
//! (`summary.json`, `history.json`, the pruned model as ONNX and checkpoint, SVG charts and a
//! poster-style table).

use super::train::init_threads;
use crate::data_args::parse_data;
use crate::load;
use anyhow::{bail, Context, Result};
use joule_compress::run::{load_state, Inputs, Limit, Record, State};
use joule_compress::{Method, Run, RunConfig};
use joule_nn::{checkpoint, data, recipe, train, Network, Split};
use joule_report::curves::{curves_svg, Curve, Curves};
use joule_report::{stacked_bars_svg, StackedBars};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// eap or magnitude.
    #[arg(long)]
    method: Option<String>,
    /// A trained checkpoint (.safetensors), an .onnx file with weights, or a zoo name (trained
    /// first with its recipe).
    #[arg(long)]
    model: Option<String>,
    /// mnist or fashion-mnist.
    #[arg(long)]
    data: Option<String>,
    /// Folder holding the datasets (default: $JOULE_DATA, else data/).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Hardware preset (eyeriss, isca16, horowitz45) or YAML spec.
    #[arg(long, default_value = "eyeriss")]
    hw: String,
    /// Largest accuracy drop accepted, in points.
    #[arg(long, default_value_t = 1.0)]
    max_drop: f64,
    /// Output directory (must not hold a run yet).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last finished step.
    #[arg(long, conflicts_with_all = ["method", "model", "out"])]
    resume: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// EAP: relative output-error threshold of the first pass.
    #[arg(long)]
    threshold: Option<f64>,
    /// Passes (EAP) or levels (magnitude).
    #[arg(long)]
    rounds: Option<usize>,
    /// Epochs of each global fine-tuning / retraining.
    #[arg(long)]
    finetune_epochs: Option<usize>,
    /// Learning rate of fine-tuning.
    #[arg(long)]
    lr: Option<f32>,
    /// Stop once energy is at most this fraction of the original (an error if not reached).
    #[arg(long)]
    target_energy: Option<f64>,
    /// Use only the first N training images (fine-tuning and calibration).
    #[arg(long)]
    train_samples: Option<usize>,
    /// Another run's directory to draw on the same accuracy-energy chart and table.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Stop after this many steps (the run can be resumed).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    init_threads(args.threads)?;
    let resumed = match &args.resume {
        Some(dir) => Some(load_state(dir)?),
        None => None,
    };
    let (dir, data_name, hw_name) = match &resumed {
        Some(state) => (
            args.resume.clone().unwrap(),
            state.data.clone(),
            state.hardware.clone(),
        ),
        None => {
            let Some(out) = args.out.clone() else {
                bail!("--out: required (or --resume <dir>)")
            };
            let Some(data) = args.data.clone() else {
                bail!("--data: required (mnist or fashion-mnist)")
            };
            (out, data, args.hw.clone())
        }
    };
    let source = parse_data(&data_name)?;
    let hw = joule_energy::spec::load(&hw_name).with_context(|| format!("--hw {hw_name}"))?;
    let data_dir = data::data_dir(args.data_dir.as_deref());
    let mut train_set = source.load(&data_dir, Split::Train)?;
    let test_set = source.load(&data_dir, Split::Test)?;
    let samples = resumed
        .as_ref()
        .and_then(|s| s.train_samples)
        .or(args.train_samples);
    if let Some(n) = samples {
        train_set = train_set.take(n);
    }
    let started = Instant::now();
    let mut run = match resumed {
        Some(state) => {
            let inputs = Inputs {
                train: &train_set,
                test: &test_set,
                hw: &hw,
                model: state.model.clone(),
                data: data_name,
                hardware: hw_name,
                train_samples: samples,
            };
            eprintln!("resuming {} at step {}", dir.display(), state.next_step);
            Run::resume(&dir, inputs)?
        }
        None => {
            let method = match args.method.as_deref() {
                Some("eap") => Method::Eap,
                Some("magnitude") => Method::Magnitude,
                Some(other) => {
                    bail!("--method: unknown method {other:?} (expected eap or magnitude)")
                }
                None => bail!("--method: required (eap or magnitude)"),
            };
            let Some(model) = args.model.clone() else {
                bail!("--model: required")
            };
            let mut config = RunConfig::new(method);
            config.seed = args.seed;
            config.max_drop = args.max_drop;
            config.target_energy = args.target_energy;
            if let Some(t) = args.threshold {
                config.eap.threshold = t;
            }
            if let Some(r) = args.rounds {
                config.max_rounds = r;
            }
            if let Some(e) = args.finetune_epochs {
                config.finetune_epochs = e;
            }
            if let Some(lr) = args.lr {
                config.finetune_learning_rate = lr;
            }
            config.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
            let network = trained_network(&model, source, &train_set, args.seed)?;
            let inputs = Inputs {
                train: &train_set,
                test: &test_set,
                hw: &hw,
                model,
                data: data_name,
                hardware: hw_name,
                train_samples: samples,
            };
            Run::start(&dir, network, inputs, config)?
        }
    };
    run.proceed(
        Limit {
            stop_after: args.stop_after,
        },
        |line| eprintln!("{line}"),
    )?;
    let state = run.state.clone();
    if !state.done {
        eprintln!(
            "stopped after {} steps as asked; continue with `joule prune --resume {}`",
            args.stop_after.unwrap_or(0),
            dir.display()
        );
        return Ok(());
    }
    let best = run.best_network()?;
    write_outputs(&dir, &state, &best, args.compare.as_deref())?;
    print_timings(&state, started.elapsed().as_secs_f64());
    run.check_target()?;
    Ok(())
}

/// A checkpoint as it is; a zoo or ONNX model without weights is trained with its recipe.
fn trained_network(
    spec: &str,
    source: joule_nn::DataSource,
    train_set: &joule_nn::Dataset,
    seed: u64,
) -> Result<Network> {
    if spec.ends_with(".safetensors") {
        return Ok(checkpoint::load(Path::new(spec))?);
    }
    let graph = load::model(spec)?;
    let untrained = graph.weighted_layers().any(|(_, n)| n.params.is_empty());
    let mut network = Network::new(graph, seed).with_context(|| spec.to_string())?;
    if untrained {
        let mut config = recipe::recipe(spec, source);
        config.seed = seed;
        eprintln!(
            "{spec} has no weights: training it first ({} epochs, its recipe)",
            config.epochs
        );
        train(&mut network, train_set, &config, |_| {})?;
    }
    Ok(network)
}

fn metrics_json(m: &joule_compress::Metrics, original_energy: f64) -> serde_json::Value {
    json!({
        "accuracy": m.accuracy,
        "energy": m.energy,
        "normalized_energy": m.energy / original_energy,
        "nonzero_weights": m.nonzero_weights,
        "nonskipped_macs": m.nonskipped_macs,
        "layers": m.layers,
    })
}

fn write_outputs(dir: &Path, state: &State, best: &Network, compare: Option<&Path>) -> Result<()> {
    let method = match state.config.method {
        Method::Eap => "eap",
        Method::Magnitude => "magnitude",
    };
    let e0 = state.original.energy;
    let summary = json!({
        "method": method,
        "model": state.model,
        "data": state.data,
        "hardware": state.hardware,
        "unit": state.unit,
        "max_drop": state.config.max_drop,
        "original": metrics_json(&state.original, e0),
        "final": metrics_json(&state.best, e0),
        "stop_reason": state.stop_reason,
        "timings": state.timings,
        "config": state.config,
        "history": state.history,
    });
    let write = |name: &str, value: &serde_json::Value| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(value)? + "\n")
            .with_context(|| path.display().to_string())
    };
    write("summary.json", &summary)?;
    write("history.json", &json!(state.history))?;
    checkpoint::save(best, &dir.join("pruned.safetensors"))?;
    joule_onnx::export_file(best.graph(), &dir.join("pruned.onnx"))?;
    let other: Option<serde_json::Value> = match compare {
        Some(d) => {
            let path = d.join("summary.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("--compare: {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("--compare: {}", path.display()))?,
            )
        }
        None => None,
    };
    // Accuracy against normalized energy: the original, then every round's result.
    let curve = |name: &str, acc0: f64, history: &[Record]| Curve {
        name: name.to_string(),
        points: std::iter::once((1.0, 100.0 * acc0))
            .chain(
                history
                    .iter()
                    .filter(|r| r.accepted.is_some())
                    .map(|r| (r.normalized_energy, 100.0 * r.accuracy)),
            )
            .collect(),
        dashed: false,
    };
    let mut curves = vec![curve(method, state.original.accuracy, &state.history)];
    if let Some(o) = &other {
        let history: Vec<Record> =
            serde_json::from_value(o["history"].clone()).context("--compare: history")?;
        let mut c = curve(
            o["method"].as_str().unwrap_or("other"),
            o["original"]["accuracy"].as_f64().unwrap_or(0.0),
            &history,
        );
        c.dashed = true;
        curves.push(c);
    }
    let target = 100.0 * state.original.accuracy - state.config.max_drop;
    curves.push(Curve {
        name: format!("original - {} points", state.config.max_drop),
        points: vec![(0.0, target), (1.0, target)],
        dashed: true,
    });
    let path = dir.join("tradeoff.svg");
    std::fs::write(
        &path,
        curves_svg(&Curves {
            title: format!(
                "{} on {}, {}: accuracy vs energy",
                state.model, state.data, state.hardware
            ),
            x_label: "energy / original energy".into(),
            y_label: "top-1 accuracy (%)".into(),
            curves,
            front: None,
        })?,
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    let names: Vec<String> = state
        .original
        .layers
        .iter()
        .map(|l| l.name.clone())
        .collect();
    let after: Vec<f64> = state.best.layers.iter().map(|l| l.energy).collect();
    let saved: Vec<f64> = state
        .original
        .layers
        .iter()
        .zip(&after)
        .map(|(o, a)| (o.energy - a).max(0.0))
        .collect();
    let path = dir.join("layers.svg");
    std::fs::write(
        &path,
        stacked_bars_svg(&[StackedBars {
            title: format!("per-layer energy, {method}: original = whole bar, pruned = lower part"),
            y_label: format!("energy ({})", state.unit),
            categories: names,
            series: vec![("pruned".into(), after), ("saved".into(), saved)],
            log_y: false,
        }])?,
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    let table = poster_table(state, method, other.as_ref());
    std::fs::write(dir.join("table.md"), &table)?;
    println!("{table}");
    Ok(())
}

/// The EAP poster's table: accuracy, non-zero weights, non-skipped MACs, normalized energy.
fn poster_table(state: &State, method: &str, other: Option<&serde_json::Value>) -> String {
    let o = &state.original;
    let model = Path::new(&state.model)
        .file_stem()
        .map_or(state.model.clone(), |s| s.to_string_lossy().into_owned());
    let pct = |v: f64, base: f64| format!("{v:.0} ({:.1}%)", 100.0 * v / base);
    let mut t = String::from("| model | top-1 accuracy | non-zero weights | non-skipped MACs | energy (normalized) |\n|---|---|---|---|---|\n");
    let mut row = |label: String, acc: f64, w: f64, macs: f64, e: f64| {
        t += &format!(
            "| {label} | {:.2}% | {} | {} | {:.3} ({:.1}%) |\n",
            100.0 * acc,
            pct(w, o.nonzero_weights as f64),
            pct(macs, o.nonskipped_macs),
            e / o.energy,
            100.0 * e / o.energy
        );
    };
    row(
        format!("{model} (original)"),
        o.accuracy,
        o.nonzero_weights as f64,
        o.nonskipped_macs,
        o.energy,
    );
    if let Some(other) = other {
        let f = &other["final"];
        let get = |k: &str| f[k].as_f64().unwrap_or(f64::NAN);
        row(
            format!("{model} ({})", other["method"].as_str().unwrap_or("other")),
            get("accuracy"),
            get("nonzero_weights"),
            get("nonskipped_macs"),
            get("energy"),
        );
    }
    let b = &state.best;
    row(
        format!("{model} ({method})"),
        b.accuracy,
        b.nonzero_weights as f64,
        b.nonskipped_macs,
        b.energy,
    );
    format!("{}\n\nEnergy in {} per image on {} (MACs per image); at most {} points below the original accuracy.\n", t.trim_end(), state.unit, state.hardware, state.config.max_drop)
}

fn print_timings(state: &State, wall: f64) {
    let t = &state.timings;
    eprintln!(
        "time per phase: energy estimation {:.1} s, restore search {:.1} s, least squares {:.1} s, fine-tuning {:.1} s, evaluation {:.1} s, sensitivity {:.1} s; this session {:.1} s",
        t.energy, t.restore, t.least_squares, t.finetune, t.evaluate, t.sensitivity, wall
    );
}
