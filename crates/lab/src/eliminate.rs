//! Neuron elimination experiments (seed 003) into a run directory: every chosen layer swept
//! from its rank down, costed on every machine, the Pareto set across layers, and the
//! outputs docs/eliminate.md documents (`summary.json` = [`EliminateSummary`], `tables.md`,
//! `curves-<hw>.svg`, `<layer>.onnx`, `simplified.onnx`).

use crate::data::DataSpec;
use crate::error::LabError;
use crate::hardware;
use crate::model::Model;
use crate::prune::display_name;
use joule_compress::eliminate::pareto::{pareto, ParetoPoint};
use joule_compress::eliminate::sweep::{Energy, Reference};
use joule_compress::eliminate::{layer, Config, Eliminator, LayerSweep, Point};
use joule_compress::RunDir;
use joule_report::curves::{curves_svg, Curve, Curves, Front};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// An elimination run.
#[derive(Clone, Debug)]
pub struct EliminateOptions {
    /// A trained model (checkpoint or ONNX file with weights).
    pub model: String,
    pub data: DataSpec,
    /// Layer names, or empty for every eliminable layer.
    pub layers: Vec<String>,
    /// Largest accepted validation-accuracy drop, in points.
    pub max_drop: f64,
    /// Validation images carved (seeded by `seed`) from the training split, the split
    /// `joule train --holdout N --seed S` leaves out: every threshold reads them.
    pub holdout: usize,
    pub seed: u64,
    /// Machines to cost every configuration on; the first orders the tables and picks
    /// `simplified.onnx`.
    pub hw: Vec<String>,
    pub refit_bias: bool,
    /// Training samples forming X (`None`: the whole training split less the holdout).
    pub samples: Option<usize>,
    pub out: PathBuf,
}

/// Per-layer facts of a sweep in `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub next: String,
    pub neurons: usize,
    pub rank: usize,
    pub rank_tolerance: f64,
    /// The smallest `kept` within the threshold.
    pub best: Option<usize>,
}

/// `summary.json` of an elimination run (docs/eliminate.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EliminateSummary {
    pub model: String,
    pub data: String,
    pub max_drop: f64,
    /// The validation split's size and seed (0: a summary made before validation splits,
    /// when the test split set the thresholds).
    #[serde(default)]
    pub holdout: usize,
    #[serde(default)]
    pub seed: u64,
    pub samples: Option<usize>,
    pub refit_bias: bool,
    pub hardware: Vec<String>,
    pub original: Reference,
    /// Every layer's sweep, by decreasing `kept`.
    pub layers: BTreeMap<String, Vec<Point>>,
    pub layer_info: BTreeMap<String, LayerInfo>,
    /// The layers in the order they were swept.
    #[serde(default)]
    pub swept: Vec<String>,
    /// The Pareto set on each machine, in machine order.
    pub pareto: Vec<ParetoPoint>,
}

/// Progress of an elimination run.
pub enum EliminateEvent<'a> {
    Reference(&'a Reference),
    Point { layer: &'a str, point: &'a Point },
}

/// Runs the sweeps and writes the run directory; returns the summary and `tables.md`.
pub fn eliminate(
    options: &EliminateOptions,
    mut on_event: impl FnMut(EliminateEvent<'_>),
) -> Result<(EliminateSummary, String), LabError> {
    let machines = options
        .hw
        .iter()
        .map(|name| hardware::machine(name.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = Config::new(options.max_drop, machines)?;
    if options.samples == Some(0) {
        return Err(LabError::config("samples", "must be at least 1"));
    }
    config.samples = options.samples;
    config.refit_bias = options.refit_bias;
    config.seed = options.seed;
    let model = Model::load(&options.model)?;
    let graph = model.graph();
    let layers = if options.layers.is_empty() {
        layer::eliminable_names(graph)
    } else {
        options.layers.clone()
    };
    for name in &layers {
        layer::site(graph, name)?;
    }
    if layers.is_empty() {
        return Err(LabError::config(
            "layers",
            format!("{} has no eliminable layer", options.model),
        ));
    }
    let network = model.weighted_network()?;
    let data = options.data.load()?;
    let (train_set, validation) = data.carve(options.holdout, 0, options.seed)?;
    let dir = RunDir::create(&options.out)?;

    let eliminator = Eliminator::new(&network, &train_set, &validation, &data.test, config);
    let original = eliminator.reference()?;
    on_event(EliminateEvent::Reference(&original));
    let reference = original
        .validation_accuracy
        .ok_or_else(|| LabError::config("holdout", "no validation accuracy"))?;
    let mut sweeps = Vec::new();
    for name in &layers {
        let sweep = eliminator.sweep(name, reference, |point| {
            on_event(EliminateEvent::Point { layer: name, point })
        })?;
        sweeps.push(sweep);
    }
    let hw_count = eliminator.config().hardware.len();
    let fronts: Vec<Vec<ParetoPoint>> = (0..hw_count).map(|i| pareto(&sweeps, i)).collect();
    write_models(&eliminator, &sweeps, &fronts[0], &dir)?;
    let summary = EliminateSummary {
        model: options.model.clone(),
        data: data.source.name().to_string(),
        max_drop: options.max_drop,
        holdout: options.holdout,
        seed: options.seed,
        samples: options.samples,
        refit_bias: options.refit_bias,
        hardware: original.energy.iter().map(|e| e.hardware.clone()).collect(),
        original,
        layers: sweeps
            .iter()
            .map(|s| (s.layer.clone(), s.points.clone()))
            .collect(),
        layer_info: sweeps
            .iter()
            .map(|s| {
                let info = LayerInfo {
                    next: s.next.clone(),
                    neurons: s.neurons,
                    rank: s.rank,
                    rank_tolerance: s.rank_tolerance,
                    best: s.best().map(|p| p.kept),
                };
                (s.layer.clone(), info)
            })
            .collect(),
        swept: sweeps.iter().map(|s| s.layer.clone()).collect(),
        pareto: fronts.into_iter().flatten().collect(),
    };
    for (i, hw) in summary.hardware.iter().enumerate() {
        dir.write(
            &format!("curves-{hw}.svg"),
            curves_svg(&chart(&summary, i))?,
        )?;
    }
    let tables = tables(&summary);
    dir.write("tables.md", &tables)?;
    dir.write_json(RunDir::SUMMARY, &summary)?;
    Ok((summary, tables))
}

/// `<layer>.onnx` (its smallest configuration within the threshold) and `simplified.onnx`
/// (the least-energy point of the first machine's Pareto set).
fn write_models(
    eliminator: &Eliminator,
    sweeps: &[LayerSweep],
    front: &[ParetoPoint],
    dir: &RunDir,
) -> Result<(), LabError> {
    for sweep in sweeps {
        if let Some(graph) = sweep.best().and_then(|p| eliminator.simplified(sweep, p)) {
            dir.write(
                &format!("{}.onnx", sweep.layer),
                joule_onnx::export_bytes(&graph)?,
            )?;
        }
    }
    let best = front.first().and_then(|best| {
        let sweep = sweeps.iter().find(|s| s.layer == best.layer)?;
        let point = sweep.points.iter().find(|p| p.kept == best.kept)?;
        eliminator.simplified(sweep, point)
    });
    if let Some(graph) = best {
        dir.write("simplified.onnx", joule_onnx::export_bytes(&graph)?)?;
    }
    Ok(())
}

/// Energy in display units: µJ for picojoules, thousands of MACs for MAC-normalised specs.
fn scaled(value: f64, unit: &str) -> (f64, &'static str) {
    if unit == "pJ" {
        (value / 1e6, "µJ")
    } else {
        (value / 1e3, "thousand MAC-energy units")
    }
}

fn display(e: &Energy) -> (f64, &'static str) {
    scaled(e.total, &e.unit)
}

/// The layers in the order they were swept (the summary keeps them by name).
fn layer_order(summary: &EliminateSummary) -> Vec<&str> {
    if summary.swept.is_empty() {
        summary.layers.keys().map(String::as_str).collect()
    } else {
        summary.swept.iter().map(String::as_str).collect()
    }
}

/// The smallest configuration of `layer` within the threshold.
fn best<'a>(summary: &'a EliminateSummary, layer: &str) -> Option<&'a Point> {
    summary.layers.get(layer)?.iter().rev().find(|p| p.within)
}

/// The Pareto set on machine `hw`.
fn front(summary: &EliminateSummary, hw: usize) -> Vec<&ParetoPoint> {
    let name = &summary.hardware[hw];
    summary
        .pareto
        .iter()
        .filter(|p| &p.hardware == name)
        .collect()
}

/// Accuracy against energy per layer (SVD + QR and the largest-norm baseline) on machine
/// `hw`, with the Pareto set across layers marked.
pub fn chart(summary: &EliminateSummary, hw: usize) -> Curves {
    let original = &summary.original;
    let (x0, unit) = display(&original.energy[hw]);
    let line = |points: &[Point], f: &dyn Fn(&Point) -> f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|p| (display(&p.energy[hw]).0, 100.0 * f(p)))
            .collect()
    };
    let mut curves = Vec::new();
    for layer in layer_order(summary) {
        let points = &summary.layers[layer];
        curves.push(Curve {
            name: format!("{layer} (SVD + QR, least squares)"),
            points: line(points, &|p| p.accuracy),
            dashed: false,
        });
        curves.push(Curve {
            name: format!("{layer} (largest outgoing norm)"),
            points: line(points, &|p| p.baseline.accuracy),
            dashed: true,
        });
    }
    let unit_name = &original.energy[hw].unit;
    Curves {
        title: format!(
            "{} on {}: accuracy vs energy per inference (original: {x0:.1} {unit}, {:.2}%)",
            display_name(&summary.model),
            original.energy[hw].hardware,
            100.0 * original.accuracy
        ),
        x_label: format!("energy per inference ({unit})"),
        y_label: "test accuracy (%)".into(),
        curves,
        front: Some(Front {
            name: "Pareto set across layers".into(),
            points: front(summary, hw)
                .iter()
                .map(|p| (scaled(p.energy, unit_name).0, 100.0 * p.accuracy))
                .collect(),
            maximize_y: true,
        }),
    }
}

/// The Pareto set on each machine, as Markdown tables appended to `t`.
fn pareto_tables(t: &mut String, summary: &EliminateSummary) {
    for hw in 0..summary.hardware.len() {
        let front = front(summary, hw);
        let Some(first) = front.first() else { continue };
        let _ = writeln!(
            t,
            "\n#### Pareto set across layers on {} (least energy first)\n",
            first.hardware
        );
        let _ = writeln!(
            t,
            "| layer | kept | validation accuracy | test accuracy | params | energy |"
        );
        let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|");
        for p in &front {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {:.2}% | {} | {:.4e} |",
                p.layer,
                p.kept,
                pct(p.validation_accuracy),
                100.0 * p.accuracy,
                p.params,
                p.energy
            );
        }
    }
}

/// An optional accuracy in percent, `-` when absent (summaries made before validation splits).
fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v))
}

fn megabits(params: usize) -> f64 {
    params as f64 * 32.0 / 1e6
}

/// The memory table, one energy table per machine and the Pareto sets, as Markdown (seed
/// 003's layout).
pub fn tables(summary: &EliminateSummary) -> String {
    let model = display_name(&summary.model);
    let original = &summary.original;
    let mut t = String::new();
    let _ = writeln!(t, "#### Memory ({model}, parameters at 32 bits)\n");
    let _ = writeln!(
        t,
        "| layer | neurons | rank | kept | params before | params after | % of original | ratio | validation before | validation after | test accuracy before | test accuracy after | baseline test accuracy |"
    );
    let _ = writeln!(
        t,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for layer in layer_order(summary) {
        let info = &summary.layer_info[layer];
        let Some(p) = best(summary, layer) else {
            let _ = writeln!(
                t,
                "| {} | {} | {} | - | {} | - | - | - | {} | - | {:.2}% | - | - |",
                layer,
                info.neurons,
                info.rank,
                original.params,
                pct(original.validation_accuracy),
                100.0 * original.accuracy
            );
            continue;
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} ({:.2} Mb) | {} ({:.2} Mb) | {:.2}% | {:.2}x | {} | {} | {:.2}% | {:.2}% | {:.2}% |",
            layer,
            info.neurons,
            info.rank,
            p.kept,
            original.params,
            megabits(original.params),
            p.params,
            megabits(p.params),
            100.0 * p.params as f64 / original.params as f64,
            original.params as f64 / p.params as f64,
            pct(original.validation_accuracy),
            pct(p.validation_accuracy),
            100.0 * original.accuracy,
            100.0 * p.accuracy,
            100.0 * p.baseline.accuracy
        );
    }
    for hw in 0..summary.hardware.len() {
        let e0 = &original.energy[hw];
        let _ = writeln!(
            t,
            "\n#### Energy per inference on {} ({})\n",
            e0.hardware, e0.unit
        );
        let _ = writeln!(
            t,
            "| configuration | MAC | RF | array | buffer (SRAM) | DRAM | total | test accuracy |"
        );
        let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let row = |t: &mut String, name: &str, e: &Energy, acc: f64| {
            let _ = writeln!(
                t,
                "| {name} | {:.4e} | {:.4e} | {:.4e} | {:.4e} | {:.4e} | {:.4e} | {:.2}% |",
                e.mac,
                e.rf,
                e.array,
                e.buffer,
                e.dram,
                e.total,
                100.0 * acc
            );
        };
        row(&mut t, "original", e0, original.accuracy);
        for layer in layer_order(summary) {
            let Some(p) = best(summary, layer) else {
                continue;
            };
            let e = &p.energy[hw];
            row(&mut t, &format!("{layer} p = {}", p.kept), e, p.accuracy);
            let ratio = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:.2}x", a / b)
                } else {
                    "-".into()
                }
            };
            let _ = writeln!(
                t,
                "| original / {} | {} | {} | {} | {} | {} | {} | |",
                layer,
                ratio(e0.mac, e.mac),
                ratio(e0.rf, e.rf),
                ratio(e0.array, e.array),
                ratio(e0.buffer, e.buffer),
                ratio(e0.dram, e.dram),
                ratio(e0.total, e.total)
            );
        }
    }
    pareto_tables(&mut t, summary);
    let _ = writeln!(
        t,
        "\n{}",
        match summary.holdout {
            0 => "Thresholds and Pareto sets read test accuracy (a run made before validation splits).".to_string(),
            n => format!("Thresholds and Pareto sets read validation accuracy ({n} training images held out, seed {}); test accuracy is only reported.", summary.seed),
        }
    );
    t
}
