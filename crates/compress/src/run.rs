//! A pruning run: steps, history, checkpoints and resume.
//!
//! A run directory holds `original.safetensors` (the network before pruning), one checkpoint
//! per finished step under `steps/`, and `state.json`, rewritten atomically after every step:
//! the configuration, the original metrics, the history and where to go on. `resume` loads
//! it and continues from the last finished step; since every random choice derives from the
//! seed and the step number, the result is the same as an uninterrupted run's.
//!
//! Steps: EAP prunes one layer per step (layers of a pass in energy order), then fine-tunes
//! globally (one step) and accepts the pass if accuracy is within `max_drop` points of the
//! original (else it goes back to the last accepted network and halves the threshold).
//! Magnitude pruning prunes every layer to its sensitivity-derived sparsity and retrains in
//! one step, walking up the levels and bisecting between the last accepted and the first
//! rejected level.
//!
//! Every decision (the sensitivity analysis, whether a round is kept, hence the result) reads
//! the validation split, `holdout` training images carved with the run's seed
//! ([`joule_nn::Dataset::split_holdout`], as NetAdapt's holdout); fine-tuning and calibration
//! read the rest of the training split. The test split is only evaluated for the record
//! (`accuracy` beside `validation_accuracy`): a run with scrambled test labels selects the
//! same networks.

use crate::eap::{self, EapConfig, LayerStep};
use crate::magnitude::{self, MagnitudeConfig, Sensitivity};
use crate::metrics::{self, measure_layers, weighted_layers, Metrics};
use crate::rundir::RunDir;
use crate::CompressError;
use joule_energy::Machine;
use joule_nn::train::Schedule;
use joule_nn::{evaluate, train, Dataset, FeatureMap, Network, OptimizerConfig, Rng, TrainConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// The pruning method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Magnitude,
    Eap,
}

/// Settings of a run (stored in `state.json`; a resumed run uses the stored ones).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub method: Method,
    pub seed: u64,
    /// Largest accepted accuracy drop, in points (percent of the validation split).
    pub max_drop: f64,
    /// Validation images carved (seeded by `seed`) from the training split; every selection
    /// reads them, never the test split. 0 in runs saved before validation splits existed
    /// (they cannot be resumed).
    #[serde(default)]
    pub holdout: usize,
    /// Stop once energy is at most this fraction of the original; an error if never reached.
    pub target_energy: Option<f64>,
    /// Passes (EAP) or levels (magnitude), accepted or not.
    pub max_rounds: usize,
    /// Rejected rounds before the run stops.
    pub max_retries: usize,
    pub calibration_images: usize,
    pub finetune_epochs: usize,
    pub finetune_learning_rate: f32,
    pub batch_size: usize,
    pub eap: EapConfig,
    pub magnitude: MagnitudeConfig,
}

impl RunConfig {
    pub fn new(method: Method) -> RunConfig {
        RunConfig {
            method,
            seed: 1,
            max_drop: 1.0,
            holdout: 2000,
            target_energy: None,
            max_rounds: 8,
            max_retries: 2,
            calibration_images: 256,
            finetune_epochs: 2,
            finetune_learning_rate: 0.01,
            batch_size: 64,
            eap: EapConfig::default(),
            magnitude: MagnitudeConfig::default(),
        }
    }

    /// Checks every setting, naming the field.
    pub fn validate(&self) -> Result<(), CompressError> {
        let bad = |field: &str, m: &str| Err(CompressError::config(field, m));
        if !(self.max_drop >= 0.0 && self.max_drop < 100.0) {
            return bad("max_drop", "must be in [0, 100) points");
        }
        if self.holdout == 0 {
            return bad(
                "holdout",
                "must be at least one image: selection never reads the test split",
            );
        }
        if let Some(t) = self.target_energy {
            if !(t > 0.0 && t <= 1.0) {
                return bad(
                    "target_energy",
                    "must be a fraction of the original energy in (0, 1]",
                );
            }
        }
        if self.finetune_epochs == 0 || self.batch_size == 0 || self.calibration_images == 0 {
            return bad(
                "finetune",
                "epochs, batch size and calibration images must be positive",
            );
        }
        if !(self.eap.threshold > 0.0 && self.eap.threshold < 1.0) {
            return bad("eap.threshold", "must be in (0, 1)");
        }
        if !(self.eap.tighten > 0.0 && self.eap.tighten <= 1.0) {
            return bad("eap.tighten", "must be in (0, 1]");
        }
        Ok(())
    }
}

/// What a step did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    PruneLayer,
    Finetune,
    PruneRetrain,
}

/// One history entry: the network after the step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub step: usize,
    pub round: usize,
    pub action: Action,
    pub layer: Option<String>,
    /// EAP: relative error threshold; magnitude: sensitivity level (points).
    pub threshold: f64,
    /// Test accuracy: reported, never decides anything.
    pub accuracy: f64,
    /// Validation accuracy: what the round was judged by (`None` in runs saved before
    /// validation splits existed).
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
    pub energy: f64,
    pub nonzero_weights: usize,
    pub nonskipped_macs: f64,
    pub normalized_energy: f64,
    /// For fine-tuning steps: whether the round was kept.
    pub accepted: Option<bool>,
    pub eap: Option<LayerStep>,
    pub seconds: f64,
}

/// Seconds spent per phase, over the whole run (resumed sessions add up).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub energy: f64,
    pub restore: f64,
    pub least_squares: f64,
    pub finetune: f64,
    pub evaluate: f64,
    pub sensitivity: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub config: RunConfig,
    pub model: String,
    pub data: String,
    pub hardware: String,
    pub unit: String,
    pub train_samples: Option<usize>,
    pub original: Metrics,
    pub best: Metrics,
    pub history: Vec<Record>,
    pub next_step: usize,
    current: String,
    /// The accepted network with the lowest energy (the result).
    best_checkpoint: String,
    /// The last accepted network (where a rejected round goes back to).
    accepted_checkpoint: String,
    round: usize,
    threshold: f64,
    /// Magnitude bisection: last accepted and first rejected level.
    level_ok: f64,
    level_failed: Option<f64>,
    retries: usize,
    order: Vec<usize>,
    position: usize,
    reference: String,
    sensitivity: Option<Vec<Sensitivity>>,
    /// Digest of the validation split (images and labels): a resume with another split is
    /// refused.
    #[serde(default)]
    validation_digest: String,
    pub done: bool,
    pub stop_reason: String,
    pub timings: Timings,
}

impl State {
    /// Checks the node indices a stored state holds against the network they index (a
    /// hand-edited or damaged `state.json` used to panic on `order` out of range).
    pub fn check(&self, network: &Network, path: &Path) -> Result<(), CompressError> {
        let graph = network.graph();
        let weighted =
            |node: usize| node < graph.len() && graph.weighted_layers().any(|(id, _)| id.0 == node);
        let bad = |message: String| CompressError::Resume {
            path: path.to_path_buf(),
            message,
        };
        if let Some(&node) = self.order.iter().find(|&&n| !weighted(n)) {
            return Err(bad(format!(
                "field `order`: node {node} is not a CONV or FC layer of the network ({} nodes)",
                graph.len()
            )));
        }
        if self.position > self.order.len() {
            return Err(bad(format!(
                "field `position`: {} is past the {} layers of `order`",
                self.position,
                self.order.len()
            )));
        }
        if let Some(s) = self
            .sensitivity
            .iter()
            .flatten()
            .find(|s| !weighted(s.node))
        {
            return Err(bad(format!(
                "field `sensitivity`: node {} ({:?}) is not a CONV or FC layer of the network",
                s.node, s.layer
            )));
        }
        Ok(())
    }
}

/// Data and hardware a run works with.
pub struct Inputs<'a> {
    /// Fine-tuning and calibration images (the training split less the validation split).
    pub train: &'a Dataset,
    /// `config.holdout` images carved from the training split: every selection reads them.
    pub validation: &'a Dataset,
    /// Only evaluated for the record.
    pub test: &'a Dataset,
    pub hw: &'a Machine,
    pub model: String,
    pub data: String,
    /// How the hardware was named (preset or file), stored for resume.
    pub hardware: String,
    /// Only the first N training images were used (stored for resume).
    pub train_samples: Option<usize>,
}

/// How far to go in this call: `stop_after` steps (for interruption tests), else to the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limit {
    pub stop_after: Option<usize>,
}

/// The state of the run in `dir`, if any.
pub fn load_state(dir: &Path) -> Result<State, CompressError> {
    RunDir::open(dir)?.read_json(RunDir::STATE)
}

/// A run in a directory: the network after the last finished step and the state.
pub struct Run<'a> {
    dir: RunDir,
    inputs: Inputs<'a>,
    calibration: FeatureMap,
    network: Network,
    pub state: State,
}

impl<'a> Run<'a> {
    /// Starts a run of `network` (trained) in `dir`, which must not hold one.
    pub fn start(
        dir: &Path,
        network: Network,
        inputs: Inputs<'a>,
        config: RunConfig,
    ) -> Result<Run<'a>, CompressError> {
        config.validate()?;
        if weighted_layers(&network).is_empty() {
            return Err(CompressError::NoWeightedLayers {
                model: network.graph().name.clone(),
            });
        }
        if inputs.validation.len() != config.holdout {
            return Err(CompressError::config(
                "holdout",
                format!(
                    "the configuration says {} validation images, the validation split has {}",
                    config.holdout,
                    inputs.validation.len()
                ),
            ));
        }
        let dir = RunDir::create(dir)?;
        let calibration =
            metrics::calibration_batch(inputs.train, config.calibration_images, config.seed)?;
        let start = Instant::now();
        let mut original = metrics::measure(&network, &calibration, inputs.test, inputs.hw)?;
        original.validation_accuracy = Some(evaluate(&network, inputs.validation, 256)?.accuracy);
        dir.save_checkpoint("original.safetensors", &network)?;
        let state = State {
            threshold: config.eap.threshold,
            config,
            model: inputs.model.clone(),
            data: inputs.data.clone(),
            hardware: inputs.hardware.clone(),
            unit: inputs.hw.unit().to_string(),
            train_samples: inputs.train_samples,
            best: original.clone(),
            original,
            history: Vec::new(),
            next_step: 1,
            current: "original.safetensors".into(),
            best_checkpoint: "original.safetensors".into(),
            accepted_checkpoint: "original.safetensors".into(),
            round: 0,
            level_ok: 0.0,
            level_failed: None,
            retries: 0,
            order: Vec::new(),
            position: 0,
            reference: String::new(),
            sensitivity: None,
            validation_digest: digest(inputs.validation),
            done: false,
            stop_reason: String::new(),
            timings: Timings {
                evaluate: start.elapsed().as_secs_f64(),
                ..Timings::default()
            },
        };
        let run = Run {
            dir,
            inputs,
            calibration,
            network,
            state,
        };
        run.save_state()?;
        Ok(run)
    }

    /// Reopens the run in `dir` at its last finished step.
    pub fn resume(dir: &Path, inputs: Inputs<'a>) -> Result<Run<'a>, CompressError> {
        let dir = RunDir::open(dir)?;
        let state: State = dir.read_json(RunDir::STATE)?;
        if state.data != inputs.data {
            return Err(CompressError::Resume {
                path: dir.path().to_path_buf(),
                message: format!("the run used data {:?}, not {:?}", state.data, inputs.data),
            });
        }
        let holdout = state.config.holdout;
        if holdout == 0 || state.original.validation_accuracy.is_none() {
            return Err(CompressError::Resume {
                path: dir.path().to_path_buf(),
                message: "field `config.holdout`: the run was saved before pruning selected on a validation split; start it again".into(),
            });
        }
        if inputs.validation.len() != holdout
            || digest(inputs.validation) != state.validation_digest
        {
            return Err(CompressError::Resume {
                path: dir.path().to_path_buf(),
                message: format!(
                    "field `config.holdout`: the run selected on a validation split of {holdout} training images carved with seed {}; the one given ({} images) differs",
                    state.config.seed,
                    inputs.validation.len()
                ),
            });
        }
        let calibration = metrics::calibration_batch(
            inputs.train,
            state.config.calibration_images,
            state.config.seed,
        )?;
        let network = dir.load_network(&state.current)?;
        state.check(&network, &dir.join(RunDir::STATE))?;
        Ok(Run {
            dir,
            inputs,
            calibration,
            network,
            state,
        })
    }

    fn save_state(&self) -> Result<(), CompressError> {
        self.dir.write_json(RunDir::STATE, &self.state)
    }

    /// The last accepted network.
    pub fn best_network(&self) -> Result<Network, CompressError> {
        self.dir.load_network(&self.state.best_checkpoint)
    }

    /// Runs steps until the run is done or `limit` is reached; `log` gets one line per step.
    pub fn proceed(
        &mut self,
        limit: Limit,
        mut log: impl FnMut(&str),
    ) -> Result<(), CompressError> {
        let mut taken = 0;
        while !self.state.done {
            if limit.stop_after.is_some_and(|n| taken >= n) {
                return Ok(());
            }
            let started = Instant::now();
            let step = self.state.next_step;
            let mut record = match self.state.config.method {
                Method::Eap => self.eap_step(step)?,
                Method::Magnitude => self.magnitude_step(step)?,
            };
            record.seconds = started.elapsed().as_secs_f64();
            log(&describe(&record, &self.state));
            let name = format!("steps/step-{step:04}.safetensors");
            self.dir.save_checkpoint(&name, &self.network)?;
            let previous = std::mem::replace(&mut self.state.current, name.clone());
            let previous_best = self.state.best_checkpoint.clone();
            let previous_accepted = self.state.accepted_checkpoint.clone();
            if record.accepted == Some(true) {
                self.state.accepted_checkpoint = name.clone();
                if self.state.best.energy == record.energy {
                    self.state.best_checkpoint = name;
                }
            } else if record.accepted == Some(false) {
                // Back to the last accepted network.
                self.network = self.dir.load_network(&self.state.accepted_checkpoint)?;
                self.state.current = self.state.accepted_checkpoint.clone();
            }
            self.state.history.push(record);
            self.state.next_step += 1;
            self.save_state()?;
            for name in [previous, previous_best, previous_accepted] {
                self.forget(&name);
            }
            taken += 1;
        }
        Ok(())
    }

    /// Deletes a step checkpoint nothing refers to any more.
    fn forget(&self, name: &str) {
        let s = &self.state;
        if name.starts_with("steps/")
            && ![
                &s.current,
                &s.best_checkpoint,
                &s.accepted_checkpoint,
                &s.reference,
            ]
            .contains(&&name.to_string())
        {
            std::fs::remove_file(self.dir.join(name)).ok();
        }
    }

    /// The current network's metrics: validation accuracy (what judges it) and test
    /// accuracy (the record).
    fn measure(&mut self) -> Result<Metrics, CompressError> {
        let t = Instant::now();
        let layers = measure_layers(&self.network, &self.calibration, self.inputs.hw)?;
        self.state.timings.energy += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let accuracy = evaluate(&self.network, self.inputs.test, 256)?.accuracy;
        let validation = evaluate(&self.network, self.inputs.validation, 256)?.accuracy;
        self.state.timings.evaluate += t.elapsed().as_secs_f64();
        let mut m = Metrics::from_layers(accuracy, layers);
        m.validation_accuracy = Some(validation);
        Ok(m)
    }

    fn record(&self, step: usize, action: Action, layer: Option<String>, m: &Metrics) -> Record {
        Record {
            step,
            round: self.state.round,
            action,
            layer,
            threshold: match self.state.config.method {
                Method::Eap => self.state.threshold,
                Method::Magnitude => self.current_level(),
            },
            accuracy: m.accuracy,
            validation_accuracy: m.validation_accuracy,
            energy: m.energy,
            nonzero_weights: m.nonzero_weights,
            nonskipped_macs: m.nonskipped_macs,
            normalized_energy: m.energy / self.state.original.energy.max(1e-30),
            accepted: None,
            eap: None,
            seconds: 0.0,
        }
    }

    fn finetune(&mut self, step: usize, what: &str) -> Result<(), CompressError> {
        let c = &self.state.config;
        let config = TrainConfig {
            epochs: c.finetune_epochs,
            batch_size: c.batch_size,
            learning_rate: c.finetune_learning_rate,
            schedule: Schedule::Cosine,
            optimizer: OptimizerConfig::Sgd {
                momentum: 0.9,
                weight_decay: 5e-4,
            },
            seed: c.seed.wrapping_mul(1_000_003).wrapping_add(step as u64),
            shift: 0,
        };
        let t = Instant::now();
        let losses = match train(&mut self.network, self.inputs.train, &config, |_| {}) {
            Err(e @ joule_nn::NnError::Diverged { .. }) => {
                return Err(CompressError::Diverged {
                    step,
                    what: what.to_string(),
                    detail: e.to_string(),
                    checkpoint: self.dir.join(&self.state.current).display().to_string(),
                })
            }
            other => other?,
        };
        self.state.timings.finetune += t.elapsed().as_secs_f64();
        let finite = self
            .network
            .graph()
            .nodes()
            .iter()
            .flat_map(|n| &n.params)
            .all(|t| t.data.iter().all(|v| v.is_finite()));
        let bad = losses.iter().find(|l| !l.is_finite() || **l > 20.0);
        if bad.is_some() || !finite {
            return Err(CompressError::Diverged {
                step,
                what: what.to_string(),
                detail: format!(
                    "epoch losses {losses:?}{}",
                    if finite { "" } else { ", non-finite weights" }
                ),
                checkpoint: self.dir.join(&self.state.current).display().to_string(),
            });
        }
        Ok(())
    }

    /// Accepts or rejects the round that `record` closes, and decides whether to go on: on
    /// validation accuracy alone.
    fn judge(&mut self, record: &mut Record, m: &Metrics) -> Result<(), CompressError> {
        let c = self.state.config.clone();
        let (Some(original), Some(now)) = (
            self.state.original.validation_accuracy,
            m.validation_accuracy,
        ) else {
            return Err(CompressError::config(
                "holdout",
                "a round without validation accuracy cannot be judged",
            ));
        };
        let within = (original - now) * 100.0 <= c.max_drop + 1e-9;
        record.accepted = Some(within);
        self.state.round += 1;
        if within {
            if m.energy < self.state.best.energy {
                self.state.best = m.clone();
            }
            match c.method {
                Method::Eap => self.state.threshold *= c.eap.tighten,
                Method::Magnitude => self.state.level_ok = self.current_level(),
            }
        } else {
            self.state.retries += 1;
            match c.method {
                Method::Eap => self.state.threshold *= 0.5,
                Method::Magnitude => self.state.level_failed = Some(self.current_level()),
            }
        }
        let target_met = c
            .target_energy
            .is_some_and(|t| self.state.best.energy <= t * self.state.original.energy);
        self.state.stop_reason = if target_met {
            "energy target reached".into()
        } else if self.state.retries > c.max_retries {
            format!(
                "{} rounds lost more than {} points",
                self.state.retries, c.max_drop
            )
        } else if self.state.round >= c.max_rounds {
            format!("{} rounds done", self.state.round)
        } else if c.method == Method::Magnitude && self.next_level().is_none() {
            "no sensitivity level left between the last accepted and the first rejected".into()
        } else {
            String::new()
        };
        self.state.done = !self.state.stop_reason.is_empty();
        Ok(())
    }

    fn eap_step(&mut self, step: usize) -> Result<Record, CompressError> {
        if self.state.position == self.state.order.len() && !self.state.order.is_empty() {
            self.finetune(step, "global fine-tuning")?;
            let m = self.measure()?;
            let mut record = self.record(step, Action::Finetune, None, &m);
            self.judge(&mut record, &m)?;
            self.state.order.clear();
            self.state.position = 0;
            self.state.reference.clear();
            return Ok(record);
        }
        if self.state.order.is_empty() {
            let t = Instant::now();
            let mut layers: Vec<(usize, f64)> =
                measure_layers(&self.network, &self.calibration, self.inputs.hw)?
                    .iter()
                    .zip(weighted_layers(&self.network))
                    .map(|(l, node)| (node, l.energy))
                    .collect();
            self.state.timings.energy += t.elapsed().as_secs_f64();
            layers.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            self.state.order = layers.into_iter().map(|(node, _)| node).collect();
            self.state.reference = self.state.current.clone();
        }
        let node = self.state.order[self.state.position];
        let reference = self.dir.load_network(&self.state.reference)?;
        let mut rng = Rng::new(self.state.config.seed).fork(step as u64);
        let threshold = self.state.threshold;
        let outcome = eap::prune_layer(
            &mut self.network,
            &reference,
            &self.calibration,
            node,
            threshold,
            &self.state.config.eap,
            &mut rng,
        )?;
        self.state.timings.restore += outcome.restore_seconds;
        self.state.timings.least_squares += outcome.lsq_seconds;
        self.state.position += 1;
        let m = self.measure()?;
        let name = self.network.graph().nodes()[node].name.clone();
        let mut record = self.record(step, Action::PruneLayer, Some(name), &m);
        record.eap = Some(outcome);
        Ok(record)
    }

    fn current_level(&self) -> f64 {
        self.next_level().unwrap_or(self.state.level_ok)
    }

    /// The magnitude level to try next: the next listed level, or the midpoint between the
    /// last accepted and the first rejected one.
    fn next_level(&self) -> Option<f64> {
        let ok = self.state.level_ok;
        match self.state.level_failed {
            None => self
                .state
                .config
                .magnitude
                .levels
                .iter()
                .copied()
                .find(|&l| l > ok),
            Some(failed) => (failed - ok > 0.2).then_some((ok + failed) / 2.0),
        }
    }

    fn magnitude_step(&mut self, step: usize) -> Result<Record, CompressError> {
        if self.state.sensitivity.is_none() {
            let t = Instant::now();
            let n = self.state.config.magnitude.sensitivity_samples;
            // The validation split, never the test split: the levels decide the result.
            let subset = self.inputs.validation.clone().take(n);
            let grid = self.state.config.magnitude.grid.clone();
            self.state.sensitivity = Some(magnitude::sensitivity(&self.network, &subset, &grid)?);
            self.state.timings.sensitivity += t.elapsed().as_secs_f64();
        }
        let level = self.current_level();
        for s in self.state.sensitivity.clone().unwrap_or_default() {
            magnitude::prune_to(&mut self.network, s.node, s.sparsity_for(level))?;
        }
        self.finetune(step, "retraining")?;
        let m = self.measure()?;
        let mut record = self.record(step, Action::PruneRetrain, None, &m);
        self.judge(&mut record, &m)?;
        Ok(record)
    }

    /// Checks the energy target after the run; an error names what was reached.
    pub fn check_target(&self) -> Result<(), CompressError> {
        let s = &self.state;
        if let Some(t) = s.config.target_energy {
            let reached = s.best.energy / s.original.energy.max(1e-30);
            if reached > t {
                return Err(CompressError::Unreachable(format!(
                    "energy {t} of the original within {} points; the best kept network has {reached:.3} ({})",
                    s.config.max_drop, s.stop_reason
                )));
            }
        }
        Ok(())
    }
}

/// FNV-1a over a dataset's labels and image bits: tells one validation split from another.
fn digest(data: &Dataset) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&(data.len() as u64).to_le_bytes());
    eat(&data.labels);
    for v in &data.images {
        eat(&v.to_bits().to_le_bytes());
    }
    format!("{h:016x}")
}

fn describe(r: &Record, s: &State) -> String {
    let what = match (&r.action, &r.layer) {
        (Action::PruneLayer, Some(l)) => format!("prune {l}"),
        (Action::Finetune, _) => "fine-tune".into(),
        _ => "prune + retrain".into(),
    };
    let verdict = match r.accepted {
        Some(true) => ", kept",
        Some(false) => ", rejected",
        None => "",
    };
    let extra = r.eap.as_ref().map_or(String::new(), |e| {
        format!(
            ", kept {}/{} (restored {}), output error {:.3} -> {:.3}",
            e.kept_after, e.kept_before, e.restored, e.error_restored, e.error_refit
        )
    });
    format!(
        "step {} (round {}, threshold {:.3}): {what}: validation {}, test {:.2}%, non-zero weights {}, energy {:.3} of original{extra}{verdict}",
        r.step, r.round + 1, r.threshold,
        r.validation_accuracy.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v)),
        100.0 * r.accuracy, r.nonzero_weights, r.normalized_energy
    ) + if s.done && r.accepted.is_some() { " (done)" } else { "" }
}
