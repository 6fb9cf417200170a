//! NetAdapt experiments into a run directory: the latency table (built when a latency budget
//! or measurement needs one), the adaptation with resume, and the outputs docs/netadapt.md
//! documents (`summary.json`, `lut_validation.json` = [`LutValidation`], the accuracy plots
//! and the table's predicted-vs-measured chart).

use crate::data::DataSpec;
use crate::error::LabError;
use crate::hardware;
use crate::lut::{build_table, GateReport, Timing};
use crate::model::Model;
use joule_compress::lut::{self, LatencyTable};
use joule_compress::netadapt::run::{summary, Summary};
use joule_compress::netadapt::{
    adapt as run_adapt, AdaptConfig, Estimator, Event, Inputs, Planner, Record, Resource, State,
};
use joule_compress::RunDir;
use joule_report::{scatter_svg, Scatter, Series};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A NetAdapt run. `config` holds the algorithm's settings (stored and checked on resume).
#[derive(Clone, Debug)]
pub struct AdaptOptions {
    pub config: AdaptConfig,
    pub data: DataSpec,
    pub out: PathBuf,
    /// Continue the run in `out` after an interruption.
    pub resume: bool,
    /// A latency table to use (default: built into `out/lut.json` when needed).
    pub lut: Option<PathBuf>,
    /// Measure every family member's real latency.
    pub measure: bool,
    /// The machine energy budgets and the reported energy use.
    pub hw: String,
    /// Training images used (0: the training split minus the holdout).
    pub train_samples: usize,
    /// Holdout images carved from the training split.
    pub holdout: usize,
    pub timing: Timing,
}

/// Progress of a NetAdapt run.
pub enum AdaptEvent<'a> {
    /// The latency table is being built (prunable layers on the grid).
    BuildingTable {
        layers: usize,
    },
    Netadapt(Event<'a>),
}

/// `lut_validation.json`: the table's prediction against measurement, over every family
/// member (and the final and baseline networks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LutValidation {
    pub networks: usize,
    pub within_10_percent: usize,
    pub fraction_within_10_percent: f64,
    /// (predicted - measured) / measured, per network.
    pub relative_errors: Vec<f64>,
    pub median_abs_error: f64,
    pub max_abs_error: f64,
    pub load_average: Option<f64>,
}

/// What a run ended with.
pub struct Adapted {
    pub state: State,
    pub gate: Option<GateReport>,
    pub dir: PathBuf,
}

/// Runs (or resumes) NetAdapt on `options.config.model`.
pub fn adapt(
    options: &AdaptOptions,
    mut on_event: impl FnMut(AdaptEvent<'_>),
) -> Result<Adapted, LabError> {
    let config = &options.config;
    let original = Model::load(&config.model)?.network(config.seed)?;
    let data = options.data.load()?;
    let (train_set, holdout) = data.carve(options.holdout, options.train_samples, config.seed)?;
    let machine = hardware::machine(&options.hw)?;
    let needs_lut = config
        .budgets
        .iter()
        .any(|b| b.resource == Resource::Latency)
        || options.measure;
    let clock = if needs_lut {
        Some(options.timing.clock()?)
    } else {
        None
    };
    let (dir, resumed) = RunDir::create_or_resume(&options.out, options.resume)?;
    let split = crate::data::Holdout {
        holdout: options.holdout,
        train_samples: options.train_samples,
        seed: config.seed,
    };
    crate::data::check_split(&dir, &split, resumed)?;
    let table = match (&options.lut, &clock) {
        (Some(path), _) => Some(LatencyTable::load(path)?),
        (None, Some(clock)) => {
            let path = dir.join("lut.json");
            if resumed && path.exists() {
                Some(LatencyTable::load(&path)?)
            } else {
                let layers = lut::prunable_layers(original.graph()).len();
                on_event(AdaptEvent::BuildingTable { layers });
                let t = build_table(
                    original.graph(),
                    config.levels,
                    &options.timing,
                    clock,
                    |_, _| {},
                )?;
                dir.write_json("lut.json", &t)?;
                Some(t)
            }
        }
        (None, None) => None,
    };
    if let (Some(t), Some(path)) = (&table, &options.lut) {
        if options.measure {
            crate::lut::require_engine_table(t, path)?;
        }
    }
    if let (Some(t), Some(clock)) = (&table, &clock) {
        // Another runtime's calibration reference is not this engine's.
        if t.runtime.is_none() {
            clock.use_reference(t.calibration_ms);
        }
    }
    let inputs = Inputs {
        train: &train_set,
        holdout: &holdout,
        test: Some(&data.test),
        lut: table.as_ref(),
        hardware: Some(&machine),
        timer: clock
            .as_ref()
            .filter(|_| options.measure)
            .map(|c| (c as &dyn lut::LayerTimer, options.timing.measure.clone())),
    };
    let state = run_adapt(&original, config, &inputs, &dir, |e| {
        on_event(AdaptEvent::Netadapt(e))
    })?;
    write_outputs(&dir, &summary(&state))?;
    Ok(Adapted {
        state,
        gate: clock.as_ref().map(GateReport::of),
        dir: options.out.clone(),
    })
}

/// Opens an ask/tell NetAdapt run on `model` in `out` (the Python package's
/// `joule.NetAdapt`): the caller fine-tunes and scores every proposal. `hw` is the machine
/// energies are estimated on (an energy budget's target), `lut` a latency table (for a
/// latency budget); `accuracy` is the original network's, needed by a new run. `resume`
/// reopens the run `out` holds.
pub fn plan(
    model: &Model,
    config: AdaptConfig,
    hw: &str,
    lut: Option<&std::path::Path>,
    out: &std::path::Path,
    resume: bool,
    accuracy: Option<f64>,
) -> Result<Planner<'static>, LabError> {
    let network = model.network(config.seed)?;
    let machine = hardware::machine(hw)?;
    let table = lut.map(LatencyTable::load).transpose()?;
    let (dir, _) = RunDir::create_or_resume(out, resume)?;
    let planner = Planner::open(
        &network,
        || {
            accuracy.ok_or_else(|| {
                joule_compress::CompressError::config(
                    "accuracy",
                    "a new run needs the original network's accuracy",
                )
            })
        },
        config,
        Estimator::new(table, Some(machine)),
        dir,
        None,
    )?;
    Ok(planner)
}

/// Writes what a finished `joule adapt` run writes: `summary.json`, the accuracy charts and
/// (when latencies were measured) the table's validation.
pub fn write_plan_outputs(planner: &Planner<'_>) -> Result<(), LabError> {
    planner.write_summary()?;
    write_outputs(planner.dir(), &summary(planner.state()))
}

/// The prediction-vs-measurement pairs of every network that has both.
fn latency_pairs(s: &Summary) -> Vec<(f64, f64)> {
    s.family
        .iter()
        .chain(&s.final_network)
        .chain(s.baseline.as_ref().map(|b| &b.record))
        .filter_map(|r| Some((r.latency_measured_ms?, r.latency_predicted_ms?)))
        .collect()
}

/// The original, then every iteration's network.
pub fn family(state: &State) -> Vec<Record> {
    let mut family = vec![state.original.clone()];
    family.extend(state.family.iter().cloned());
    family
}

/// The table's errors over a run's measured networks, if any were measured.
pub fn validation(summary: &Summary) -> Option<LutValidation> {
    let pairs = latency_pairs(summary);
    if pairs.is_empty() {
        return None;
    }
    let errors: Vec<f64> = pairs.iter().map(|(m, p)| (p - m) / m).collect();
    let within = errors.iter().filter(|e| e.abs() <= 0.10).count();
    Some(LutValidation {
        networks: pairs.len(),
        within_10_percent: within,
        fraction_within_10_percent: within as f64 / pairs.len() as f64,
        median_abs_error: lut::median(&errors.iter().map(|e| e.abs()).collect::<Vec<_>>()),
        max_abs_error: errors.iter().fold(0.0f64, |a, e| a.max(e.abs())),
        relative_errors: errors,
        load_average: lut::load_average(),
    })
}

fn write_outputs(dir: &RunDir, summary: &Summary) -> Result<(), LabError> {
    if let Some(v) = validation(summary) {
        dir.write_json("lut_validation.json", &v)?;
        dir.write(
            "latency_predicted_vs_measured.svg",
            scatter_svg(&latency_chart(summary))?,
        )?;
    }
    for (name, chart) in accuracy_charts(summary) {
        dir.write(name, scatter_svg(&chart)?)?;
    }
    Ok(())
}

/// The table's prediction against measurement, with the diagonal.
pub fn latency_chart(summary: &Summary) -> Scatter {
    Scatter {
        title: "Latency lookup table: predicted vs measured, every network of the run".into(),
        x_label: "measured latency (ms)".into(),
        y_label: "predicted latency (ms)".into(),
        series: vec![Series {
            name: "networks".into(),
            points: latency_pairs(summary),
            line: false,
            labels: Vec::new(),
        }],
        diagonal: true,
    }
}

/// A chart file, what its x axis is, its label, and the value it reads of a record.
type Axis = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Record) -> Option<f64>,
);

/// Holdout accuracy against measured latency, energy and MACs: the family, the final and
/// baseline networks, the baseline's curve; charts without data are left out.
pub fn accuracy_charts(summary: &Summary) -> Vec<(&'static str, Scatter)> {
    let family = &summary.family;
    let fin = summary.final_network.as_ref();
    let baseline = summary.baseline.as_ref().map(|b| &b.record);
    let curve: Vec<&Record> = summary.baseline_curve.iter().map(|b| &b.record).collect();
    let series = |x: fn(&Record) -> Option<f64>| -> Vec<Series> {
        let point = |r: &Record| Some((x(r)?, 100.0 * r.accuracy));
        let mut s = vec![Series {
            name: "NetAdapt family (holdout)".into(),
            points: family.iter().filter_map(point).collect(),
            line: true,
            labels: Vec::new(),
        }];
        if let Some(p) = fin.and_then(point) {
            s.push(Series {
                name: "final, long-term fine-tuned (holdout)".into(),
                points: vec![p],
                line: false,
                labels: Vec::new(),
            });
        }
        if let Some(p) = baseline.and_then(point) {
            s.push(Series {
                name: "uniform width baseline, same fine-tuning (holdout)".into(),
                points: vec![p],
                line: false,
                labels: Vec::new(),
            });
        }
        let points: Vec<(f64, f64)> = curve.iter().filter_map(|r| point(r)).collect();
        if !points.is_empty() {
            s.push(Series {
                name: "uniform width baseline, every width (holdout)".into(),
                points,
                line: true,
                labels: Vec::new(),
            });
        }
        s
    };
    let energy_axis: &'static str = match summary.unit.as_deref() {
        Some("pJ") => "energy per image (pJ)",
        Some(_) => "energy per image (units of one MAC's energy)",
        // Runs before the unit was stored used eyeriss, a MAC-normalised spec.
        None => "energy per image (eyeriss: units of one MAC's energy)",
    };
    let axes: [Axis; 3] = [
        (
            "accuracy_vs_latency.svg",
            "latency",
            "measured latency (ms)",
            |r| r.latency_measured_ms,
        ),
        ("accuracy_vs_energy.svg", "energy", energy_axis, |r| {
            r.energy
        }),
        ("accuracy_vs_macs.svg", "MACs", "MACs per image", |r| {
            Some(r.macs as f64)
        }),
    ];
    axes.into_iter()
        .filter_map(|(file, what, label, x)| {
            let series = series(x);
            if series[0].points.is_empty() {
                return None;
            }
            Some((
                file,
                Scatter {
                    title: format!(
                        "{}: NetAdapt family, holdout accuracy vs {what}",
                        crate::prune::display_name(&summary.model)
                    ),
                    x_label: label.to_string(),
                    y_label: "holdout accuracy (%)".into(),
                    series,
                    diagonal: false,
                },
            ))
        })
        .collect()
}

/// One family member on one line: iteration, layer, holdout accuracy, latency predicted and
/// measured, energy, MACs and weights.
pub fn describe(r: &Record) -> String {
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
    format!(
        "iteration {:>2} {:<8} holdout {:.2}%  predicted {} ms  measured {} ms  energy {}  MACs {}  weights {}",
        r.iteration,
        r.layer.as_deref().unwrap_or("-"),
        100.0 * r.accuracy,
        ms(r.latency_predicted_ms),
        ms(r.latency_measured_ms),
        r.energy.map_or("-".into(), |v| format!("{v:.3e}")),
        r.macs,
        r.weights
    )
}
