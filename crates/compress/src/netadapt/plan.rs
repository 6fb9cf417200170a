//! NetAdapt as ask/tell: joule proposes, something else fine-tunes and scores, joule is told.
//!
//! An iteration of NetAdapt has a cheap, hardware-aware half (which filter count of each
//! layer meets the iteration's constraint, and what that candidate will cost on the target)
//! and an expensive half (short-term fine-tuning of every candidate and its accuracy on
//! held-out data). [`Planner`] is the first half with all the bookkeeping:
//! [`Planner::propose`] gives one [`Proposal`] per layer that can meet the constraint,
//! [`Planner::tell`] takes every proposal's measured accuracy, keeps the best candidate (with
//! its fine-tuned network when the caller has one) and advances the schedule. `joule adapt`
//! answers the proposals with joule's own engine ([`super::search::fine_tune`]); the Python
//! package answers them with PyTorch, on a Ray cluster if asked. Both front ends go through
//! this one implementation, so the same accuracies give the same choices.
//!
//! The state lives in a [`RunDir`]: `state.json`, rewritten after every tell (configuration,
//! budgets, the family, every iteration's proposals with their accuracies), and the
//! family's networks (`iter_NNN.safetensors` + `.onnx`). A planner reopened on its folder
//! proposes exactly what it would have proposed had it never stopped.

use super::budget::{target, Estimator, Resource, Resources};
use super::run::{first_value, record, Record, State, Status};
use super::search::{filter_norms, pick, shrink_to_target, weakest_filters};
use super::AdaptConfig;
use crate::lut::{self, prunable_layers, ChannelGrid, LayerTimer, MeasureConfig};
use crate::rundir::RunDir;
use crate::CompressError;
use joule_model::NetworkStats;
use joule_nn::{Network, Rng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One candidate of an iteration: `layer` shrunk from `current_filters` to `filters`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The iteration it belongs to (1 for the first).
    pub iteration: usize,
    /// The layer (its node name; for a PyTorch export, the module's scope path).
    pub layer: String,
    /// Filters (output channels) the layer keeps.
    pub filters: usize,
    /// Filters it has now.
    pub current_filters: usize,
    /// The filters joule removes: the smallest L2 norms of the current network's weights,
    /// ascending. A caller holding other weights (PyTorch's, before BN folding) chooses its own.
    pub removed: Vec<usize>,
    /// The candidate's estimated resources (per image).
    pub resources: Resources,
    /// The seed `joule adapt` fine-tunes this candidate with (a caller may reuse it).
    pub seed: u64,
    /// Its accuracy, once told.
    #[serde(default)]
    pub accuracy: Option<f64>,
}

/// One finished iteration: its constraint, every proposal with its told accuracy, the pick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationLog {
    pub iteration: usize,
    /// The constraint, per resource.
    pub targets: BTreeMap<String, f64>,
    pub proposals: Vec<Proposal>,
    /// Index of the kept proposal.
    pub chosen: usize,
}

/// Proposed and not yet told.
struct Pending {
    targets: Vec<(Resource, f64)>,
    proposals: Vec<Proposal>,
    /// The candidates as joule builds them (weights of the current network, not fine-tuned).
    networks: Vec<Network>,
}

/// A NetAdapt run driven from outside: see the module documentation.
pub struct Planner<'a> {
    config: AdaptConfig,
    estimator: Estimator,
    grid: ChannelGrid,
    layers: Vec<String>,
    network: Network,
    dir: RunDir,
    timer: Option<(&'a dyn LayerTimer, MeasureConfig)>,
    pending: Option<Pending>,
    pub(crate) state: State,
}

impl<'a> Planner<'a> {
    /// Starts a run from `original` in `dir`, or reopens the run `dir` holds (which must
    /// have the same settings and the same original network). `accuracy` scores the
    /// original; it is called only for a new run. `timer`, when given, measures every
    /// family member's latency.
    pub fn open(
        original: &Network,
        accuracy: impl FnOnce() -> Result<f64, CompressError>,
        config: AdaptConfig,
        estimator: Estimator,
        dir: RunDir,
        timer: Option<(&'a dyn LayerTimer, MeasureConfig)>,
    ) -> Result<Planner<'a>, CompressError> {
        check(&config, &estimator)?;
        let grid = match &estimator.lut {
            Some(t) if !t.grid.layers.is_empty() => t.grid.clone(),
            _ => ChannelGrid::even(original.graph(), config.levels)?,
        };
        let (state, network) = if dir.join(RunDir::STATE).is_file() {
            let state: State = dir.read_json(RunDir::STATE)?;
            let resume_error = |message: String| CompressError::Resume {
                path: dir.join(RunDir::STATE),
                message,
            };
            if state.config != config {
                // Named as the setting (the CLI shows its flag, Python its keyword), with
                // both values.
                let (field, stored, given) =
                    crate::rundir::first_difference(&state.config, &config).unwrap_or_default();
                return Err(CompressError::config(
                    &field,
                    format!(
                        "cannot resume the run in {}: it was started with {stored}, not {given}",
                        dir.path().display()
                    ),
                ));
            }
            let given = estimator.hardware.as_ref().map(|m| m.name().to_string());
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
            let stats = NetworkStats::of(original.graph(), None)?;
            if (stats.total.macs, stats.total.weights)
                != (state.original.macs, state.original.weights)
            {
                return Err(resume_error(format!(
                    "the model ({} MACs, {} weights) is not the stored run's original ({} MACs, {} weights)",
                    stats.total.macs, stats.total.weights, state.original.macs, state.original.weights
                )));
            }
            let last = state.family.last().unwrap_or(&state.original);
            let network = dir.load_network(&last.checkpoint)?;
            (state, network)
        } else {
            let accuracy = finite("accuracy", accuracy()?)?;
            let checkpoint = dir.save_network("original", original)?;
            let first = record(
                original,
                0,
                accuracy,
                &estimator,
                timer.as_ref(),
                checkpoint,
            )?;
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
                hardware: estimator.hardware.as_ref().map(|m| m.name().to_string()),
                unit: estimator.hardware.as_ref().map(|m| m.unit().to_string()),
                history: Vec::new(),
            };
            dir.write_json(RunDir::STATE, &state)?;
            (state, original.clone())
        };
        let layers = prunable_layers(original.graph())
            .into_iter()
            .map(|id| original.graph().node(id).name.clone())
            .collect();
        Ok(Planner {
            config,
            estimator,
            grid,
            layers,
            network,
            dir,
            timer,
            pending: None,
            state,
        })
    }

    /// The proposals of the next iteration, one per layer that can meet its constraint, in
    /// layer order. Empty once iterating is over: every budget met, out of iterations, or no
    /// layer can meet the constraint ([`Planner::state`]'s status says which). Asking again
    /// before telling gives the same proposals.
    pub fn propose(&mut self) -> Result<&[Proposal], CompressError> {
        if self.pending.is_none() && self.state.status == Status::Running {
            self.pending = self.next_iteration()?;
            if self.pending.is_none() {
                self.dir.write_json(RunDir::STATE, &self.state)?;
            }
        }
        Ok(self.pending.as_ref().map_or(&[], |p| &p.proposals[..]))
    }

    /// The candidate networks of the pending proposals, as joule builds them: the current
    /// network's weights with the proposals' filters removed, not fine-tuned.
    pub fn candidates(&self) -> &[Network] {
        self.pending.as_ref().map_or(&[], |p| &p.networks[..])
    }

    /// Tells the accuracy of every pending proposal (in their order; higher is better, any
    /// finite scale). Keeps the best per the configured selection (ties: the earlier layer),
    /// with the network `network_of(index)` gives for it (the fine-tuned candidate; `None`:
    /// joule's own, [`Planner::candidates`]), which must have the proposal's shape. Saves it
    /// as the next family member and the state; returns its record.
    pub fn tell(
        &mut self,
        accuracies: &[f64],
        network_of: impl FnOnce(usize) -> Result<Option<Network>, CompressError>,
    ) -> Result<&Record, CompressError> {
        let Some(pending) = &self.pending else {
            return Err(CompressError::config(
                "tell",
                "nothing is proposed: call propose() first (iterating is over when it proposes nothing)",
            ));
        };
        if accuracies.len() != pending.proposals.len() {
            return Err(CompressError::config(
                "accuracies",
                format!(
                    "got {} for {} proposals",
                    accuracies.len(),
                    pending.proposals.len()
                ),
            ));
        }
        for (i, a) in accuracies.iter().enumerate() {
            finite(&format!("accuracies[{i}]"), *a)?;
        }
        let current = self.current().clone();
        let resources = Resources {
            latency_predicted_ms: current.latency_predicted_ms,
            energy: current.energy,
            macs: current.macs,
            weights: current.weights,
        };
        let primary = self.config.budgets[0].resource;
        let best = pick(
            &pending.proposals,
            accuracies,
            self.config.selection,
            current.accuracy,
            &resources,
            primary,
            first_value(&self.state.original, primary),
        )
        .expect("a pending iteration has proposals");
        let network = match network_of(best)? {
            Some(told) => {
                same_shape(&told, &pending.networks[best], &pending.proposals[best])?;
                told
            }
            None => pending.networks[best].clone(),
        };
        let pending = self.pending.take().expect("checked above");
        let chosen = &pending.proposals[best];
        let checkpoint = self
            .dir
            .save_network(&format!("iter_{:03}", chosen.iteration), &network)?;
        let mut rec = record(
            &network,
            chosen.iteration,
            accuracies[best],
            &self.estimator,
            self.timer.as_ref(),
            checkpoint,
        )?;
        rec.layer = Some(chosen.layer.clone());
        rec.targets = names(&pending.targets);
        let mut proposals = pending.proposals;
        for (p, a) in proposals.iter_mut().zip(accuracies) {
            p.accuracy = Some(*a);
        }
        self.state.history.push(IterationLog {
            iteration: rec.iteration,
            targets: rec.targets.clone(),
            proposals,
            chosen: best,
        });
        self.state.family.push(rec);
        self.network = network;
        self.dir.write_json(RunDir::STATE, &self.state)?;
        Ok(self.state.family.last().expect("just pushed"))
    }

    /// Records `network` (the last family member after long-term fine-tuning) as the final
    /// one, with its `accuracy` (and test accuracy), once iterating is over.
    pub fn finish(
        &mut self,
        network: &Network,
        accuracy: f64,
        test_accuracy: Option<f64>,
    ) -> Result<&Record, CompressError> {
        if self.state.status == Status::Running {
            return Err(CompressError::config(
                "finish",
                "iterating is not over: propose() until it proposes nothing",
            ));
        }
        let accuracy = finite("accuracy", accuracy)?;
        let test_accuracy = test_accuracy
            .map(|a| finite("test_accuracy", a))
            .transpose()?;
        let last = self.current().clone();
        same_layers(
            network,
            &self.network,
            "the final network",
            &last.checkpoint,
        )?;
        let checkpoint = self.dir.save_network("final", network)?;
        let mut rec = record(
            network,
            last.iteration,
            accuracy,
            &self.estimator,
            self.timer.as_ref(),
            checkpoint,
        )?;
        rec.layer = last.layer;
        rec.test_accuracy = test_accuracy;
        self.state.final_network = Some(rec);
        self.dir.write_json(RunDir::STATE, &self.state)?;
        Ok(self.state.final_network.as_ref().expect("just set"))
    }

    /// Writes `summary.json` (docs/netadapt.md) from the state.
    pub fn write_summary(&self) -> Result<(), CompressError> {
        self.dir
            .write_json(RunDir::SUMMARY, &super::run::summary(&self.state))
    }

    /// Rewrites `state.json` (after the caller changed what [`Planner::state_mut`] lends).
    pub(crate) fn save(&self) -> Result<(), CompressError> {
        self.dir.write_json(RunDir::STATE, &self.state)
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub(crate) fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    /// The last family member (the original before the first iteration).
    pub fn current(&self) -> &Record {
        self.state.family.last().unwrap_or(&self.state.original)
    }

    /// The current network (the last family member's).
    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn estimator(&self) -> &Estimator {
        &self.estimator
    }

    pub fn grid(&self) -> &ChannelGrid {
        &self.grid
    }

    pub fn config(&self) -> &AdaptConfig {
        &self.config
    }

    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// Whether iterating goes on (proposals to come or pending).
    pub fn is_iterating(&self) -> bool {
        self.state.status == Status::Running
    }

    /// The next iteration's proposals, or `None` with the status set when iterating is over.
    fn next_iteration(&mut self) -> Result<Option<Pending>, CompressError> {
        let (config, state) = (&self.config, &mut self.state);
        let i = state.family.len();
        let current = state.family.last().unwrap_or(&state.original).clone();
        let met = config.budgets.iter().all(|b| {
            first_value(&current, b.resource) <= state.budgets[b.resource.name()] * (1.0 + 1e-12)
        });
        if met {
            state.status = Status::Met;
            return Ok(None);
        }
        if i >= config.max_iterations {
            state.status = Status::OutOfIterations;
            return Ok(None);
        }
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
        let (network, grid, estimator) = (&self.network, &self.grid, &self.estimator);
        let found: Vec<Result<Option<(Proposal, Network)>, CompressError>> = self
            .layers
            .par_iter()
            .enumerate()
            .map(|(index, layer)| {
                let Some((filters, smaller, resources)) =
                    shrink_to_target(network, layer, grid, estimator, &targets)?
                else {
                    return Ok(None);
                };
                let node = network.graph().find(layer).expect("shrunk, so present");
                let current_filters =
                    lut::filters(&network.graph().node(node).op).expect("a prunable layer");
                let removed =
                    weakest_filters(&filter_norms(network, node), current_filters - filters);
                // The seed depends on the layer's index among all prunable layers, not
                // among the proposals, so a layer's fine-tuning does not change when
                // another layer stops qualifying.
                let seed = Rng::new(config.seed)
                    .fork(1 + (i * 1000 + index) as u64)
                    .next_u64();
                let proposal = Proposal {
                    iteration: i + 1,
                    layer: layer.clone(),
                    filters,
                    current_filters,
                    removed,
                    resources,
                    seed,
                    accuracy: None,
                };
                Ok(Some((proposal, smaller)))
            })
            .collect();
        let mut proposals = Vec::new();
        let mut networks = Vec::new();
        for f in found {
            if let Some((p, n)) = f? {
                proposals.push(p);
                networks.push(n);
            }
        }
        if proposals.is_empty() {
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
            state.status = Status::Unreachable {
                iteration: i + 1,
                message,
            };
            return Ok(None);
        }
        Ok(Some(Pending {
            targets,
            proposals,
            networks,
        }))
    }
}

fn names(targets: &[(Resource, f64)]) -> BTreeMap<String, f64> {
    targets
        .iter()
        .map(|(r, t)| (r.name().to_string(), *t))
        .collect()
}

fn finite(field: &str, value: f64) -> Result<f64, CompressError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(CompressError::config(
            field,
            format!("must be a finite number, got {value}"),
        ))
    }
}

/// The filter count of every prunable layer, by name.
fn widths(network: &Network) -> BTreeMap<String, usize> {
    let graph = network.graph();
    prunable_layers(graph)
        .into_iter()
        .map(|id| {
            let node = graph.node(id);
            (node.name.clone(), lut::filters(&node.op).unwrap_or(0))
        })
        .collect()
}

/// A network told back must be the candidate joule estimated: same layers, same widths,
/// same MACs and weights (else the recorded resources would describe another network).
fn same_layers(
    told: &Network,
    expected: &Network,
    what: &str,
    against: &str,
) -> Result<(), CompressError> {
    let (a, b) = (widths(told), widths(expected));
    if a != b {
        let differs = b
            .iter()
            .find(|(name, w)| a.get(*name) != Some(w))
            .map(|(name, w)| {
                format!(
                    "layer {name:?} has {} filters, expected {w}",
                    a.get(name).map_or("no".to_string(), |n| n.to_string())
                )
            })
            .unwrap_or_else(|| {
                let extra = a.keys().find(|n| !b.contains_key(*n)).cloned();
                format!("layer {:?} is not in {against}", extra.unwrap_or_default())
            });
        return Err(CompressError::config(
            "network",
            format!("{what} does not have the shape of {against}: {differs}"),
        ));
    }
    let (x, y) = (
        NetworkStats::of(told.graph(), None)?.total,
        NetworkStats::of(expected.graph(), None)?.total,
    );
    if (x.macs, x.weights) != (y.macs, y.weights) {
        return Err(CompressError::config(
            "network",
            format!(
                "{what} has {} MACs and {} weights; {against} has {} and {}",
                x.macs, x.weights, y.macs, y.weights
            ),
        ));
    }
    Ok(())
}

fn same_shape(told: &Network, expected: &Network, p: &Proposal) -> Result<(), CompressError> {
    same_layers(
        told,
        expected,
        "the network told",
        &format!("the proposal ({} at {} filters)", p.layer, p.filters),
    )
}

/// Checks the settings against what the estimator can estimate, naming the field.
fn check(config: &AdaptConfig, estimator: &Estimator) -> Result<(), CompressError> {
    if config.budgets.is_empty() {
        return Err(CompressError::config("budget", "give at least one budget"));
    }
    for b in &config.budgets {
        match b.resource {
            Resource::Latency if estimator.lut.is_none() => {
                return Err(CompressError::config(
                    "budget",
                    "a latency budget needs a latency table",
                ))
            }
            Resource::Energy if estimator.hardware.is_none() => {
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
