//! The NetAdapt driver: iterations, the family of networks, checkpoints and resume.
//!
//! The output directory holds `original.safetensors`, `iter_NNN.safetensors` and
//! `iter_NNN.onnx` for every iteration, `final.safetensors`/`final.onnx` after long-term
//! fine-tuning, `state.json` (rewritten atomically after every iteration: configuration,
//! history, status) and `summary.json` (the documented interface, docs/netadapt.md). Every
//! random choice derives from the seed and the iteration, so a resumed run ends where an
//! uninterrupted one does.

use super::baseline::{self, BaselineRecord, Match};
use super::budget::{target, Estimator, Resource};
use super::search::{candidates, pick};
use super::AdaptConfig;
use crate::lut::{self, prunable_layers, ChannelGrid, LatencyTable, LayerTimer, MeasureConfig};
use crate::rundir::RunDir;
use crate::CompressError;
use joule_energy::Machine;
use joule_nn::train::Schedule;
use joule_nn::{evaluate, train, Dataset, Network, Rng, TrainConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One family member (or the original, iteration 0, or the final network).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub iteration: usize,
    /// Holdout accuracy (the final network: also `test_accuracy`).
    pub accuracy: f64,
    pub test_accuracy: Option<f64>,
    pub latency_measured_ms: Option<f64>,
    pub latency_spread_ms: Option<f64>,
    pub latency_predicted_ms: Option<f64>,
    pub energy: Option<f64>,
    pub macs: u64,
    pub weights: u64,
    /// Filters of every prunable layer.
    pub channels: BTreeMap<String, usize>,
    /// The layer simplified in this iteration.
    pub layer: Option<String>,
    /// The constraint of this iteration, per resource.
    pub targets: BTreeMap<String, f64>,
    pub checkpoint: String,
}

/// Where the run stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    Running,
    /// Every budget is met.
    Met,
    /// No layer could meet the iteration's constraint.
    Unreachable {
        iteration: usize,
        message: String,
    },
    /// `max_iterations` ran out before the budgets were met.
    OutOfIterations,
}

/// `state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub config: AdaptConfig,
    /// Absolute budgets, per resource.
    pub budgets: BTreeMap<String, f64>,
    pub original: Record,
    pub family: Vec<Record>,
    pub status: Status,
    #[serde(rename = "final")]
    pub final_network: Option<Record>,
    /// The uniform width-multiplier baseline (when `config.baseline`).
    #[serde(default)]
    pub baseline: Option<BaselineRecord>,
    /// Every width multiplier fine-tuned (when `config.baseline_curve`), widest first.
    #[serde(default)]
    pub baseline_curve: Vec<BaselineRecord>,
    /// The machine energies are estimated on, and their unit (runs before these were stored
    /// read as `None`).
    #[serde(default)]
    pub hardware: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
}

/// Progress reports.
pub enum Event<'a> {
    Iteration {
        iteration: usize,
        of: usize,
    },
    Chosen(&'a Record),
    Unreachable(&'a str),
    /// The baseline's width multiplier is being chosen (networks measured or estimated).
    BaselineSearch,
    /// The baseline is fine-tuned and recorded.
    Baseline(&'a BaselineRecord),
    LongTerm {
        epoch: usize,
        batch: usize,
        batches: usize,
    },
}

/// The data and estimators an adaptation uses.
pub struct Inputs<'a> {
    pub train: &'a Dataset,
    /// Carved from the training split; selection never sees the test split.
    pub holdout: &'a Dataset,
    /// Only for the final network's reported accuracy.
    pub test: Option<&'a Dataset>,
    pub lut: Option<&'a LatencyTable>,
    pub hardware: Option<&'a Machine>,
    /// Measures every family member's real latency (validation of the table).
    pub timer: Option<(&'a dyn LayerTimer, MeasureConfig)>,
}

fn record(
    network: &Network,
    iteration: usize,
    accuracy: f64,
    estimator: &Estimator<'_>,
    inputs: &Inputs<'_>,
    checkpoint: String,
) -> Result<Record, CompressError> {
    let graph = network.graph();
    let resources = estimator.estimate(graph)?;
    let measured = match &inputs.timer {
        Some((timer, config)) => Some(lut::measure_network(network, 1, *timer, config)?),
        None => None,
    };
    let channels = prunable_layers(graph)
        .into_iter()
        .map(|id| {
            let node = graph.node(id);
            (node.name.clone(), lut::filters(&node.op).unwrap_or(0))
        })
        .collect();
    Ok(Record {
        iteration,
        accuracy,
        test_accuracy: None,
        latency_measured_ms: measured.as_ref().map(|m| m.median_ms),
        latency_spread_ms: measured.as_ref().map(|m| m.spread_ms),
        latency_predicted_ms: resources.latency_predicted_ms,
        energy: resources.energy,
        macs: resources.macs,
        weights: resources.weights,
        channels,
        layer: None,
        targets: BTreeMap::new(),
        checkpoint,
    })
}

/// What one [`Adaptation::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// One NetAdapt iteration (a layer simplified), or the run stopped iterating.
    Iteration,
    /// The final network's long-term fine-tuning.
    LongTerm,
    /// The uniform width-multiplier baseline matched to the final network.
    Baseline,
    /// The baseline at every width.
    BaselineCurve,
    /// `summary.json` written; nothing is left to do.
    Done,
}

/// A NetAdapt run in a directory, advanced one step at a time (the same driver shape as a
/// pruning [`crate::Run`]): `state.json` is rewritten after every step, so a run killed at any
/// moment resumes from its last finished step and ends where an uninterrupted one ends.
pub struct Adaptation<'a> {
    original: &'a Network,
    config: &'a AdaptConfig,
    inputs: &'a Inputs<'a>,
    dir: &'a RunDir,
    estimator: Estimator<'a>,
    grid: ChannelGrid,
    layers: Vec<String>,
    network: Network,
    pub state: State,
}

impl<'a> Adaptation<'a> {
    /// Starts NetAdapt from `original` in `dir`, or resumes the run `dir` holds (open it with
    /// [`RunDir::create_or_resume`]); a resumed run must have the same settings.
    pub fn open(
        original: &'a Network,
        config: &'a AdaptConfig,
        inputs: &'a Inputs<'a>,
        dir: &'a RunDir,
    ) -> Result<Adaptation<'a>, CompressError> {
        check(config, inputs)?;
        let estimator = Estimator::new(inputs.lut, inputs.hardware);
        let grid = match inputs.lut {
            Some(t) if !t.grid.layers.is_empty() => t.grid.clone(),
            _ => ChannelGrid::even(original.graph(), config.levels)?,
        };
        let (state, network) = if dir.join(RunDir::STATE).is_file() {
            let state: State = dir.read_json(RunDir::STATE)?;
            if state.config != *config {
                // Named as the setting (the CLI shows its flag), with both values.
                let (field, stored, given) =
                    crate::rundir::first_difference(&state.config, config).unwrap_or_default();
                return Err(CompressError::config(
                    &field,
                    format!(
                        "cannot resume the run in {}: it was started with {stored}, not {given}",
                        dir.path().display()
                    ),
                ));
            }
            let given = inputs.hardware.map(|m| m.name().to_string());
            if state.hardware != given {
                return Err(CompressError::config(
                    "hw",
                    format!(
                        "cannot resume the run in {}: it was started with {:?}, not {given:?}",
                        dir.path().display(),
                        state.hardware
                    ),
                ));
            }
            let last = state.family.last().unwrap_or(&state.original);
            let network = dir.load_network(&last.checkpoint)?;
            (state, network)
        } else {
            let accuracy = evaluate(original, inputs.holdout, 256)?.accuracy;
            let checkpoint = dir.save_network("original", original)?;
            let first = record(original, 0, accuracy, &estimator, inputs, checkpoint)?;
            let budgets = config
                .budgets
                .iter()
                .map(|b| {
                    (
                        b.resource.name().to_string(),
                        b.resolve(first_value(&first, b.resource)),
                    )
                })
                .collect();
            let state = State {
                config: config.clone(),
                budgets,
                original: first,
                family: Vec::new(),
                status: Status::Running,
                final_network: None,
                baseline: None,
                baseline_curve: Vec::new(),
                hardware: inputs.hardware.map(|m| m.name().to_string()),
                unit: inputs.hardware.map(|m| m.unit().to_string()),
            };
            dir.write_json(RunDir::STATE, &state)?;
            (state, original.clone())
        };
        let layers = prunable_layers(original.graph())
            .into_iter()
            .map(|id| original.graph().node(id).name.clone())
            .collect();
        Ok(Adaptation {
            original,
            config,
            inputs,
            dir,
            estimator,
            grid,
            layers,
            network,
            state,
        })
    }

    /// Does the next step and saves the state.
    pub fn step(&mut self, on_event: &mut impl FnMut(Event<'_>)) -> Result<Step, CompressError> {
        let config = self.config;
        let step = if self.state.status == Status::Running {
            self.iterate(on_event)?;
            Step::Iteration
        } else if self.state.final_network.is_none() {
            self.long_term_network(on_event)?;
            Step::LongTerm
        } else if config.baseline && self.state.baseline.is_none() {
            self.baseline(on_event)?;
            Step::Baseline
        } else if config.baseline && config.baseline_curve && self.state.baseline_curve.is_empty() {
            self.baseline_curve(on_event)?;
            Step::BaselineCurve
        } else {
            self.dir
                .write_json(RunDir::SUMMARY, &summary(&self.state))?;
            return Ok(Step::Done);
        };
        self.dir.write_json(RunDir::STATE, &self.state)?;
        Ok(step)
    }

    /// Steps until the run is done.
    pub fn proceed(&mut self, mut on_event: impl FnMut(Event<'_>)) -> Result<(), CompressError> {
        while self.step(&mut on_event)? != Step::Done {}
        Ok(())
    }

    /// One iteration: the candidates of every layer, the best one kept; or the end of the
    /// iterations (budgets met, out of iterations, or unreachable).
    fn iterate(&mut self, on_event: &mut impl FnMut(Event<'_>)) -> Result<(), CompressError> {
        let (config, inputs, state) = (self.config, self.inputs, &mut self.state);
        let i = state.family.len();
        let current = state.family.last().unwrap_or(&state.original).clone();
        let met = config.budgets.iter().all(|b| {
            first_value(&current, b.resource) <= state.budgets[b.resource.name()] * (1.0 + 1e-12)
        });
        if met {
            state.status = Status::Met;
            return Ok(());
        }
        if i >= config.max_iterations {
            state.status = Status::OutOfIterations;
            return Ok(());
        }
        on_event(Event::Iteration {
            iteration: i + 1,
            of: config.max_iterations,
        });
        let targets: Vec<(Resource, f64)> = config
            .budgets
            .iter()
            .map(|b| {
                let r = b.resource;
                let t = target(
                    first_value(&current, r),
                    first_value(&state.original, r),
                    state.budgets[r.name()],
                    config.initial_reduction,
                    config.decay,
                    i,
                );
                (r, t)
            })
            .collect();
        let found = candidates(
            &self.network,
            &self.layers,
            &self.grid,
            &self.estimator,
            &targets,
            inputs.train,
            inputs.holdout,
            config,
            i,
        )?;
        let primary = config.budgets[0].resource;
        let estimate = self.estimator.estimate(self.network.graph())?;
        let Some(best) = pick(
            &found,
            config.selection,
            current.accuracy,
            &estimate,
            primary,
            first_value(&state.original, primary),
        ) else {
            let message = format!(
                "iteration {}: no layer can be shrunk to meet {}; the best network so far is {}",
                i + 1,
                targets
                    .iter()
                    .map(|(r, t)| format!("{} <= {t:.6}", r.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
                current.checkpoint
            );
            on_event(Event::Unreachable(&message));
            state.status = Status::Unreachable {
                iteration: i + 1,
                message,
            };
            return Ok(());
        };
        let chosen = found.into_iter().nth(best).expect("picked index");
        let stem = format!("iter_{:03}", i + 1);
        let checkpoint = self.dir.save_network(&stem, &chosen.network)?;
        let mut rec = record(
            &chosen.network,
            i + 1,
            chosen.accuracy,
            &self.estimator,
            inputs,
            checkpoint,
        )?;
        rec.layer = Some(chosen.layer.clone());
        rec.targets = targets
            .iter()
            .map(|(r, t)| (r.name().to_string(), *t))
            .collect();
        on_event(Event::Chosen(&rec));
        state.family.push(rec);
        self.network = chosen.network;
        Ok(())
    }

    /// Long-term fine-tuning of the last network: the final one.
    fn long_term_network(
        &mut self,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<(), CompressError> {
        let inputs = self.inputs;
        let last = self
            .state
            .family
            .last()
            .unwrap_or(&self.state.original)
            .clone();
        let mut tuned = self.dir.load_network(&last.checkpoint)?;
        long_term(&mut tuned, inputs, self.config, on_event)?;
        let accuracy = evaluate(&tuned, inputs.holdout, 256)?.accuracy;
        let checkpoint = self.dir.save_network("final", &tuned)?;
        let mut rec = record(
            &tuned,
            last.iteration,
            accuracy,
            &self.estimator,
            inputs,
            checkpoint,
        )?;
        rec.layer = last.layer.clone();
        if let Some(test) = inputs.test {
            rec.test_accuracy = Some(evaluate(&tuned, test, 256)?.accuracy);
        }
        self.state.final_network = Some(rec);
        Ok(())
    }

    /// The uniform width multiplier matched to the final network, fine-tuned the same way.
    fn baseline(&mut self, on_event: &mut impl FnMut(Event<'_>)) -> Result<(), CompressError> {
        on_event(Event::BaselineSearch);
        let (config, inputs) = (self.config, self.inputs);
        let fin = self
            .state
            .final_network
            .clone()
            .expect("final network recorded");
        let primary = config.budgets[0].resource;
        let (matching, target) = match (&inputs.timer, fin.latency_measured_ms) {
            (Some((timer, measure)), Some(ms)) => (Match::Measured(*timer, measure), ms),
            _ => (
                Match::Estimated(&self.estimator, primary),
                first_value(&fin, primary),
            ),
        };
        let levels = grid_levels(&self.grid, config.levels);
        let baseline::Choice {
            k,
            network: uniform,
            tried,
        } = baseline::choose(self.original, levels, &matching, target)?;
        let record = tuned_baseline(
            uniform,
            k,
            levels,
            true,
            &self.estimator,
            inputs,
            config,
            self.dir,
            on_event,
        )?;
        let entry = BaselineRecord {
            width_multiplier: k as f64 / levels as f64,
            matched_on: matching.name(),
            matched_target: target,
            tried,
            record,
        };
        on_event(Event::Baseline(&entry));
        self.state.baseline = Some(entry);
        Ok(())
    }

    /// The uniform network of every width, fine-tuned the same way.
    fn baseline_curve(
        &mut self,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<(), CompressError> {
        let chosen = self.state.baseline.clone().expect("baseline recorded");
        let levels = grid_levels(&self.grid, self.config.levels);
        let mut curve = Vec::new();
        for k in (1..levels).rev() {
            let width = k as f64 / levels as f64;
            if (width - chosen.width_multiplier).abs() < 1e-12 {
                curve.push(chosen.clone());
                continue;
            }
            let uniform = baseline::uniform(self.original, k, levels)?;
            let record = tuned_baseline(
                uniform,
                k,
                levels,
                false,
                &self.estimator,
                self.inputs,
                self.config,
                self.dir,
                on_event,
            )?;
            let entry = BaselineRecord {
                width_multiplier: width,
                matched_on: chosen.matched_on.clone(),
                matched_target: chosen.matched_target,
                tried: Vec::new(),
                record,
            };
            on_event(Event::Baseline(&entry));
            curve.push(entry);
        }
        self.state.baseline_curve = curve;
        Ok(())
    }
}

/// Checks the settings against what the inputs can estimate, naming the field.
fn check(config: &AdaptConfig, inputs: &Inputs<'_>) -> Result<(), CompressError> {
    if config.budgets.is_empty() {
        return Err(CompressError::config("budget", "give at least one budget"));
    }
    for b in &config.budgets {
        match b.resource {
            Resource::Latency if inputs.lut.is_none() => {
                return Err(CompressError::config(
                    "budget",
                    "a latency budget needs a latency table",
                ))
            }
            Resource::Energy if inputs.hardware.is_none() => {
                return Err(CompressError::config(
                    "budget",
                    "an energy budget needs a hardware model",
                ))
            }
            _ => {}
        }
    }
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if config.batch_size == 0 || !positive(config.decay) || !positive(config.initial_reduction) {
        return Err(CompressError::config(
            "netadapt",
            "batch size, decay and initial reduction must be positive",
        ));
    }
    Ok(())
}

/// Runs NetAdapt to the end from `original` in `dir`, or continues the run `dir` holds (see
/// [`Adaptation`]); returns the state (also in `state.json`, with `summary.json`).
pub fn adapt(
    original: &Network,
    config: &AdaptConfig,
    inputs: &Inputs<'_>,
    dir: &RunDir,
    on_event: impl FnMut(Event<'_>),
) -> Result<State, CompressError> {
    let mut run = Adaptation::open(original, config, inputs, dir)?;
    run.proceed(on_event)?;
    Ok(run.state)
}

/// Fine-tunes a uniform network like the final one, saves it (`baseline.*` for the `matched`
/// width, `baseline_<k>of<levels>.*` for the others) and records it.
#[allow(clippy::too_many_arguments)]
fn tuned_baseline(
    mut network: Network,
    k: usize,
    levels: usize,
    matched: bool,
    estimator: &Estimator<'_>,
    inputs: &Inputs<'_>,
    config: &AdaptConfig,
    dir: &RunDir,
    on_event: &mut impl FnMut(Event<'_>),
) -> Result<Record, CompressError> {
    long_term(&mut network, inputs, config, on_event)?;
    let accuracy = evaluate(&network, inputs.holdout, 256)?.accuracy;
    let stem = if matched {
        "baseline".to_string()
    } else {
        format!("baseline_{k}of{levels}")
    };
    let checkpoint = dir.save_network(&stem, &network)?;
    let mut rec = record(&network, 0, accuracy, estimator, inputs, checkpoint)?;
    if let Some(test) = inputs.test {
        rec.test_accuracy = Some(evaluate(&network, test, 256)?.accuracy);
    }
    Ok(rec)
}

/// The number of levels of the channel grid (the most counts any layer has), else `levels`.
fn grid_levels(grid: &ChannelGrid, levels: usize) -> usize {
    grid.layers.values().map(Vec::len).max().unwrap_or(levels)
}

/// Long-term fine-tuning (NetAdapt's final network and the baseline alike): the same epochs,
/// batch size, learning rate, cosine schedule and shuffling seed.
fn long_term(
    network: &mut Network,
    inputs: &Inputs<'_>,
    config: &AdaptConfig,
    on_event: &mut impl FnMut(Event<'_>),
) -> Result<(), CompressError> {
    if config.long_term_epochs == 0 {
        return Ok(());
    }
    let train_config = TrainConfig {
        epochs: config.long_term_epochs,
        batch_size: config.batch_size,
        learning_rate: config.learning_rate,
        schedule: Schedule::Cosine,
        seed: Rng::new(config.seed).fork(u64::MAX).next_u64(),
        ..TrainConfig::default()
    };
    train(network, inputs.train, &train_config, |e| {
        if let joule_nn::train::Event::Batch {
            epoch,
            batch,
            batches,
            ..
        } = e
        {
            on_event(Event::LongTerm {
                epoch: *epoch,
                batch: *batch,
                batches: *batches,
            });
        }
    })?;
    Ok(())
}

/// A record's value of resource `r`.
pub fn first_value(record: &Record, r: Resource) -> f64 {
    match r {
        Resource::Latency => record.latency_predicted_ms.unwrap_or(f64::NAN),
        Resource::Energy => record.energy.unwrap_or(f64::NAN),
        Resource::Macs => record.macs as f64,
        Resource::Weights => record.weights as f64,
    }
}

/// `summary.json`: the documented interface (docs/netadapt.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub model: String,
    pub data: String,
    /// The budgets as given (`latency=0.5x`).
    pub budget: Vec<String>,
    /// Absolute budgets, per resource.
    pub budget_absolute: BTreeMap<String, f64>,
    pub status: Status,
    /// The original (iteration 0), then every iteration's network.
    pub family: Vec<Record>,
    #[serde(rename = "final")]
    pub final_network: Option<Record>,
    pub baseline: Option<BaselineRecord>,
    #[serde(default)]
    pub baseline_curve: Vec<BaselineRecord>,
    #[serde(default)]
    pub hardware: Option<String>,
    /// The unit of every `energy`.
    #[serde(default)]
    pub unit: Option<String>,
}

/// The summary of a run's state.
pub fn summary(state: &State) -> Summary {
    let mut family = vec![state.original.clone()];
    family.extend(state.family.iter().cloned());
    Summary {
        model: state.config.model.clone(),
        data: state.config.data.clone(),
        budget: state.config.budgets.iter().map(|b| b.to_string()).collect(),
        budget_absolute: state.budgets.clone(),
        status: state.status.clone(),
        family,
        final_network: state.final_network.clone(),
        baseline: state.baseline.clone(),
        baseline_curve: state.baseline_curve.clone(),
        hardware: state.hardware.clone(),
        unit: state.unit.clone(),
    }
}
