//! Pruning experiments (magnitude or energy-aware) into a run directory: the step driver of
//! `joule_compress::run` with its checkpoints and resume, then the documented outputs
//! (docs/prune.md): `summary.json` ([`PruneSummary`]), `history.json`, the pruned network as
//! checkpoint and ONNX, `tradeoff.svg`, `layers.svg` and the poster-style `table.md`.
//!
//! The validation split every selection reads is carved from the training split by
//! [`crate::data::Data::carve`] (`config.holdout` images, `config.seed`), the same split
//! `joule train --holdout` leaves out and NetAdapt scores on.

use crate::data::DataSpec;
use crate::error::{Context, LabError};
use crate::hardware;
use crate::model::Model;
use joule_compress::run::{load_state, Inputs, Limit, Record, State, Timings};
use joule_compress::{Method, Metrics, Run, RunConfig, RunDir};
use joule_nn::Network;
use joule_report::curves::{curves_svg, Curve, Curves, Front};
use joule_report::{stacked_bars_svg, StackedBars};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A new pruning run.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// The method and its settings (validated before anything runs).
    pub config: RunConfig,
    /// A checkpoint, an ONNX file with weights, or a zoo name (trained first with its recipe).
    pub model: String,
    pub data: DataSpec,
    pub hw: String,
    /// Use only the first N training images left after the validation split.
    pub train_samples: Option<usize>,
}

/// What to do: start a run in a folder, or continue the one it holds.
#[derive(Clone, Debug)]
pub enum PruneStart {
    New {
        options: Box<PruneOptions>,
        out: PathBuf,
    },
    /// The data folder may differ from the original run's; everything else is stored.
    Resume {
        dir: PathBuf,
        data_dir: Option<PathBuf>,
    },
}

/// Progress of a pruning run.
pub enum PruneEvent<'a> {
    /// The model has no weights and is being trained with its recipe (epochs).
    Training {
        epochs: usize,
    },
    Resuming {
        step: usize,
    },
    /// One finished step, described on one line.
    Step(&'a str),
}

/// How a call ended.
pub enum PruneOutcome {
    /// Stopped after `steps` steps as asked; resume to go on.
    Paused {
        steps: usize,
        dir: PathBuf,
    },
    Finished(Box<PruneSummary>),
}

/// A network's metrics in `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsSummary {
    /// Test accuracy (reported only).
    pub accuracy: f64,
    /// Validation accuracy (what selected; `None` in runs made before validation splits).
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
    pub energy: f64,
    pub normalized_energy: f64,
    pub nonzero_weights: usize,
    pub nonskipped_macs: f64,
    pub layers: Vec<joule_compress::metrics::LayerMetrics>,
}

impl MetricsSummary {
    fn of(m: &Metrics, original_energy: f64) -> MetricsSummary {
        MetricsSummary {
            accuracy: m.accuracy,
            validation_accuracy: m.validation_accuracy,
            energy: m.energy,
            normalized_energy: m.energy / original_energy,
            nonzero_weights: m.nonzero_weights,
            nonskipped_macs: m.nonskipped_macs,
            layers: m.layers.clone(),
        }
    }
}

/// `summary.json` of a pruning run (docs/prune.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PruneSummary {
    pub method: Method,
    pub model: String,
    pub data: String,
    pub hardware: String,
    pub unit: String,
    pub max_drop: f64,
    pub original: MetricsSummary,
    #[serde(rename = "final")]
    pub final_metrics: MetricsSummary,
    pub stop_reason: String,
    pub timings: Timings,
    pub config: RunConfig,
    pub history: Vec<Record>,
}

impl PruneSummary {
    fn of(state: &State) -> PruneSummary {
        let e0 = state.original.energy;
        PruneSummary {
            method: state.config.method,
            model: state.model.clone(),
            data: state.data.clone(),
            hardware: state.hardware.clone(),
            unit: state.unit.clone(),
            max_drop: state.config.max_drop,
            original: MetricsSummary::of(&state.original, e0),
            final_metrics: MetricsSummary::of(&state.best, e0),
            stop_reason: state.stop_reason.clone(),
            timings: state.timings.clone(),
            config: state.config.clone(),
            history: state.history.clone(),
        }
    }

    /// Reads a run's `summary.json`.
    pub fn load(dir: &Path) -> Result<PruneSummary, LabError> {
        Ok(joule_compress::rundir::read_json(
            &dir.join(RunDir::SUMMARY),
        )?)
    }
}

/// The method's name as the CLI and the summaries spell it.
pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::Eap => "eap",
        Method::Magnitude => "magnitude",
    }
}

/// Runs (or resumes) a pruning run; `stop_after` steps at most in this call. When the run is
/// finished, writes its outputs; `compare` names another run to draw beside it.
pub fn prune(
    start: &PruneStart,
    stop_after: Option<usize>,
    compare: Option<&Path>,
    mut on_event: impl FnMut(PruneEvent<'_>),
) -> Result<PruneOutcome, LabError> {
    let other = compare
        .map(PruneSummary::load)
        .transpose()
        .context(|| "compare".into())?;
    let (dir, model, data, hw, samples, state) = match start {
        PruneStart::New { options, out } => {
            options.config.validate()?;
            (
                out.clone(),
                options.model.clone(),
                options.data.clone(),
                options.hw.clone(),
                options.train_samples,
                None,
            )
        }
        PruneStart::Resume { dir, data_dir } => {
            let state = load_state(dir)?;
            let data = DataSpec::new(&state.data, data_dir.as_deref());
            (
                dir.clone(),
                state.model.clone(),
                data,
                state.hardware.clone(),
                state.train_samples,
                Some(state),
            )
        }
    };
    let config = match (&state, start) {
        (Some(state), _) => state.config.clone(),
        (None, PruneStart::New { options, .. }) => options.config.clone(),
        (None, PruneStart::Resume { .. }) => unreachable!("a resumed run has its state"),
    };
    if config.holdout == 0 {
        return Err(LabError::config(
            "holdout",
            format!(
                "{}: the run was saved before pruning selected on a validation split; start it again",
                dir.display()
            ),
        ));
    }
    let machine = hardware::machine(&hw)?;
    let mut data_set = data.load()?;
    // The validation split first, then the sample limit on the rest: resumed runs carve the
    // same images from their stored holdout and seed.
    let (train_set, validation) =
        data_set.carve(config.holdout, samples.unwrap_or(0), config.seed)?;
    data_set.train = train_set;
    let inputs = Inputs {
        train: &data_set.train,
        validation: &validation,
        test: &data_set.test,
        hw: &machine,
        model: model.clone(),
        data: data.name.clone(),
        hardware: hw.clone(),
        train_samples: samples,
    };
    let mut run = match (start, state) {
        (PruneStart::New { options, out }, _) => {
            let source = Model::load(&model)?;
            if !source.has_weights() {
                let epochs = joule_nn::recipe::recipe(source.spec(), data_set.source).epochs;
                on_event(PruneEvent::Training { epochs });
            }
            let network = source.trained(&data_set, options.config.seed, |_| {})?;
            Run::start(out, network, inputs, options.config.clone())?
        }
        (PruneStart::Resume { .. }, Some(state)) => {
            // Checked (Run::resume) before saying it resumes, so a bad state is one line.
            let run = Run::resume(&dir, inputs)?;
            on_event(PruneEvent::Resuming {
                step: state.next_step,
            });
            run
        }
        (PruneStart::Resume { .. }, None) => unreachable!("a resumed run has its state"),
    };
    run.proceed(Limit { stop_after }, |line| {
        on_event(PruneEvent::Step(line))
    })?;
    if !run.state.done {
        return Ok(PruneOutcome::Paused {
            steps: stop_after.unwrap_or(0),
            dir,
        });
    }
    let best = run.best_network()?;
    let summary = PruneSummary::of(&run.state);
    write_outputs(&RunDir::open(&dir)?, &summary, &best, other.as_ref())?;
    run.check_target()?;
    Ok(PruneOutcome::Finished(Box::new(summary)))
}

fn write_outputs(
    dir: &RunDir,
    summary: &PruneSummary,
    best: &Network,
    other: Option<&PruneSummary>,
) -> Result<(), LabError> {
    dir.write_json(RunDir::SUMMARY, summary)?;
    dir.write_json("history.json", &summary.history)?;
    dir.save_network("pruned", best)?;
    dir.write("tradeoff.svg", curves_svg(&tradeoff_chart(summary, other))?)?;
    dir.write("layers.svg", stacked_bars_svg(&[layers_chart(summary)])?)?;
    dir.write("table.md", poster_table(summary, other))?;
    Ok(())
}

/// The accepted networks of a run as (normalized energy, validation accuracy in %), the
/// original first: what the run selected by (empty for runs made before validation splits).
pub fn validation_points(summary: &PruneSummary) -> Vec<(f64, f64)> {
    let original = summary.original.validation_accuracy;
    let accepted = summary
        .history
        .iter()
        .filter(|r| r.accepted == Some(true))
        .map(|r| {
            r.validation_accuracy
                .map(|v| (r.normalized_energy, 100.0 * v))
        });
    std::iter::once(original.map(|v| (1.0, 100.0 * v)))
        .chain(accepted)
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

/// The accepted networks of a run as (normalized energy, test accuracy in %), the original
/// first.
pub fn accepted_points(summary: &PruneSummary) -> Vec<(f64, f64)> {
    std::iter::once((1.0, 100.0 * summary.original.accuracy))
        .chain(
            summary
                .history
                .iter()
                .filter(|r| r.accepted == Some(true))
                .map(|r| (r.normalized_energy, 100.0 * r.accuracy)),
        )
        .collect()
}

/// Test accuracy against normalized energy: each run's Pareto front (lowest energy for its
/// accuracy), the other run dashed; this run's validation accuracy (what selected) and the
/// validation floor dashed.
pub fn tradeoff_chart(summary: &PruneSummary, other: Option<&PruneSummary>) -> Curves {
    let name = |s: &PruneSummary| method_name(s.method).to_string();
    let mut curves = vec![Curve {
        name: format!("{} (accepted networks, test)", name(summary)),
        points: accepted_points(summary),
        dashed: false,
    }];
    let validation = validation_points(summary);
    let floor_base = summary.original.validation_accuracy;
    if !validation.is_empty() {
        curves.push(Curve {
            name: format!("{} (accepted networks, validation)", name(summary)),
            points: validation,
            dashed: true,
        });
    }
    if let Some(o) = other {
        curves.push(Curve {
            name: format!("{} (accepted networks, test)", name(o)),
            points: accepted_points(o),
            dashed: true,
        });
    }
    // The floor rounds are judged against: validation (test in runs made before it existed).
    let (floor, split) = match floor_base {
        Some(v) => (100.0 * v - summary.max_drop, "validation"),
        None => (100.0 * summary.original.accuracy - summary.max_drop, "test"),
    };
    // Across the energies the networks span, not from 0: a network whose pruning saves 3%
    // would otherwise have its points squeezed into the last twentieth of the chart.
    let xs = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let (lo, hi) = xs
        .filter(|x| x.is_finite())
        .fold((1.0f64, 1.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    curves.push(Curve {
        name: format!("original {split} - {} points", summary.max_drop),
        points: vec![(lo, floor), (hi, floor)],
        dashed: true,
    });
    Curves {
        title: format!(
            "{} on {}, {}: accuracy vs energy per image",
            display_name(&summary.model),
            summary.data,
            summary.hardware
        ),
        x_label: "energy / original energy".into(),
        y_label: "top-1 accuracy (%)".into(),
        curves,
        front: Some(Front {
            name: format!("{}: Pareto front", name(summary)),
            points: accepted_points(summary),
            maximize_y: true,
        }),
    }
}

/// Per-layer energy before and after: the whole bar is the original, the lower part what
/// the pruned network spends.
pub fn layers_chart(summary: &PruneSummary) -> StackedBars {
    let after: Vec<f64> = summary
        .final_metrics
        .layers
        .iter()
        .map(|l| l.energy)
        .collect();
    let saved = summary
        .original
        .layers
        .iter()
        .zip(&after)
        .map(|(o, a)| (o.energy - a).max(0.0))
        .collect();
    StackedBars {
        title: format!(
            "{} on {}: energy per layer, original vs {}-pruned",
            display_name(&summary.model),
            summary.hardware,
            method_name(summary.method)
        ),
        y_label: crate::estimate::energy_label(&summary.unit),
        categories: summary
            .original
            .layers
            .iter()
            .map(|l| l.name.clone())
            .collect(),
        series: vec![("pruned".into(), after), ("saved".into(), saved)],
        log_y: false,
    }
}

/// A model argument for titles: a file's stem, else the name.
pub fn display_name(model: &str) -> String {
    Path::new(model)
        .file_stem()
        .map_or(model.to_string(), |s| s.to_string_lossy().into_owned())
}

/// The EAP poster's table: accuracy (test, and validation, which selected), non-zero
/// weights, non-skipped MACs, normalized energy.
pub fn poster_table(summary: &PruneSummary, other: Option<&PruneSummary>) -> String {
    let o = &summary.original;
    let model = display_name(&summary.model);
    let pct = |v: f64, base: f64| format!("{v:.0} ({:.1}%)", 100.0 * v / base);
    let mut t = String::from("| model | top-1 accuracy (test) | validation accuracy | non-zero weights | non-skipped MACs | energy (normalized) |\n|---|---|---|---|---|---|\n");
    let mut row = |label: String, m: &MetricsSummary| {
        t += &format!(
            "| {label} | {:.2}% | {} | {} | {} | {:.3} ({:.1}%) |\n",
            100.0 * m.accuracy,
            m.validation_accuracy
                .map_or("-".to_string(), |v| format!("{:.2}%", 100.0 * v)),
            pct(m.nonzero_weights as f64, o.nonzero_weights as f64),
            pct(m.nonskipped_macs, o.nonskipped_macs),
            m.energy / o.energy,
            100.0 * m.energy / o.energy
        );
    };
    row(format!("{model} (original)"), o);
    if let Some(other) = other {
        row(
            format!("{model} ({})", method_name(other.method)),
            &other.final_metrics,
        );
    }
    row(
        format!("{model} ({})", method_name(summary.method)),
        &summary.final_metrics,
    );
    let selection = match summary.config.holdout {
        0 => "test accuracy (a run made before validation splits)".to_string(),
        n => format!("validation accuracy ({n} training images held out, seed {}; the test split only reported)", summary.config.seed),
    };
    format!(
        "{}\n\nEnergy in {} per image on {} (MACs per image); at most {} points below the original {selection}.\n",
        t.trim_end(),
        summary.unit,
        summary.hardware,
        summary.max_drop
    )
}

/// One line of seconds per phase.
pub fn timings_line(t: &Timings) -> String {
    format!(
        "time per phase: energy estimation {:.1} s, restore search {:.1} s, least squares {:.1} s, fine-tuning {:.1} s, evaluation {:.1} s, sensitivity {:.1} s",
        t.energy, t.restore, t.least_squares, t.finetune, t.evaluate, t.sensitivity
    )
}
