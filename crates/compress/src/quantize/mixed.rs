//! Energy-guided mixed precision: a greedy search over per-layer weight and activation
//! widths that lowers energy on a machine while holdout accuracy stays within `max_drop`
//! of the float network's.
//!
//! The shape is NetAdapt's ([`crate::netadapt::Planner`]): a [`Planner`] proposes, a
//! [`Judge`] scores, the planner is told and keeps one candidate per step.
//!
//! * The family starts with every searchable layer at the ladder's first width (8/8).
//! * Each step proposes, for every searchable layer and each operand (weights, input
//!   activations), lowering that one width by one notch of the ladder (8 -> 6 -> 5 -> 4 ->
//!   3 -> 2 by default).
//! * The judge scores each proposal: holdout accuracy after post-training quantization
//!   (optionally after a short quantization-aware fine-tuning) and energy on the machine.
//! * The kept proposal is the one with the least accuracy drop per energy saved among those
//!   whose holdout accuracy stays within `max_drop` of float. A drop below zero counts as
//!   zero, so that a holdout gain from noise does not outrank a larger saving; equal scores
//!   go to the larger saving.
//! * The search stops when no proposal keeps the constraint (`max_drop`), when the energy
//!   budget is met, or when every width is at the ladder's bottom.
//!
//! `state.json` is rewritten after every step; a planner reopened on its folder continues
//! where it stopped and, since every score is deterministic, reaches the same bytes.

use super::{apply, check_bits, plan, Config, FirstLast, LayerPlan, LayerWidths, NamedQuant};
use crate::{CompressError, RunDir};
use joule_energy::workload::{self, Workload};
use joule_energy::{Dataflow, Machine, Objective};
use joule_model::{Graph, Value};
use joule_nn::quant::{calibrate as calibrate_range, ActQuant, LayerQuant};
use joule_nn::train::Schedule;
use joule_nn::{evaluate, train, Dataset, Network, OptimizerConfig, TrainConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Which operand of a layer a step lowers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operand {
    Weight,
    Activation,
}

/// One layer's widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Widths {
    pub weight: u32,
    pub activation: u32,
}

impl Widths {
    fn get(self, operand: Operand) -> u32 {
        match operand {
            Operand::Weight => self.weight,
            Operand::Activation => self.activation,
        }
    }

    fn with(self, operand: Operand, bits: u32) -> Widths {
        match operand {
            Operand::Weight => Widths {
                weight: bits,
                ..self
            },
            Operand::Activation => Widths {
                activation: bits,
                ..self
            },
        }
    }
}

/// The searched layers' widths, by layer name.
pub type Assignment = BTreeMap<String, Widths>;

/// A short quantization-aware fine-tuning of every candidate before it is scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FineTune {
    /// Training images (one pass, the first of the training part).
    pub images: usize,
    pub learning_rate: f32,
    pub batch_size: usize,
}

/// The search's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// The widths a step moves between, strictly descending; the search starts at the first.
    pub ladder: Vec<u32>,
    /// The most holdout accuracy may fall below the float network's, in points (0.5 = half
    /// a percentage point).
    pub max_drop_points: f64,
    /// Stop once energy is at most this fraction of the start's (uniform at the first width).
    pub energy_budget: Option<f64>,
    /// Scheme, calibration, first/last policy and seed of every candidate's quantization;
    /// its widths and per-layer overrides are the search's to set.
    pub quant: Config,
    pub fine_tune: Option<FineTune>,
}

impl SearchConfig {
    /// The ladder 8, 6, 5, 4, 3, 2 under `max_drop_points`, no budget, PTQ only.
    pub fn new(max_drop_points: f64) -> SearchConfig {
        SearchConfig {
            ladder: vec![8, 6, 5, 4, 3, 2],
            max_drop_points,
            energy_budget: None,
            quant: Config::new(8, 8),
            fine_tune: None,
        }
    }

    pub fn check(&self) -> Result<(), CompressError> {
        if self.ladder.is_empty() {
            return Err(CompressError::config("ladder", "needs at least one width"));
        }
        for &b in &self.ladder {
            check_bits("ladder", b)?;
        }
        if self.ladder.windows(2).any(|w| w[1] >= w[0]) {
            return Err(CompressError::config(
                "ladder",
                format!("must descend strictly, got {:?}", self.ladder),
            ));
        }
        if !(self.max_drop_points.is_finite() && self.max_drop_points >= 0.0) {
            return Err(CompressError::config(
                "max_drop",
                format!(
                    "must be a number of points >= 0, got {}",
                    self.max_drop_points
                ),
            ));
        }
        if let Some(b) = self.energy_budget {
            if b.is_nan() || b <= 0.0 || b >= 1.0 {
                return Err(CompressError::config(
                    "energy_budget",
                    format!("must be a fraction between 0 and 1 of the start's energy, got {b}"),
                ));
            }
        }
        if let Some(f) = &self.fine_tune {
            if f.images == 0
                || f.batch_size == 0
                || f.learning_rate.is_nan()
                || f.learning_rate <= 0.0
            {
                return Err(CompressError::config(
                    "fine_tune",
                    "needs images, a batch size and a learning rate above zero",
                ));
            }
        }
        Ok(())
    }

    /// The notch below `bits` on the ladder, if any.
    fn below(&self, bits: u32) -> Option<u32> {
        self.ladder.iter().copied().find(|&b| b < bits)
    }

    /// The quantization configuration of an assignment.
    pub fn quant_config(&self, assignment: &Assignment) -> Config {
        let mut c = self.quant.clone();
        c.weight_bits = self.ladder[0];
        c.activation_bits = self.ladder[0];
        c.layers = assignment
            .iter()
            .map(|(name, w)| {
                (
                    name.clone(),
                    LayerWidths {
                        weight: Some(w.weight),
                        activation: Some(w.activation),
                    },
                )
            })
            .collect();
        c
    }

    /// The configuration of uniform `weight`/`activation` widths under the same scheme,
    /// calibration and first/last policy.
    pub fn uniform_config(&self, weight: u32, activation: u32) -> Config {
        Config {
            weight_bits: weight,
            activation_bits: activation,
            layers: BTreeMap::new(),
            ..self.quant.clone()
        }
    }
}

/// The layers the search may lower: every CONV/FC layer, less the first and last when the
/// first/last policy keeps them at 8 bits.
pub fn searchable_layers(
    graph: &Graph,
    config: &SearchConfig,
) -> Result<Vec<String>, CompressError> {
    let mut quant = config.quant.clone();
    quant.layers.clear();
    let layers = plan(graph, &quant)?;
    Ok(layers
        .into_iter()
        .filter(|p| config.quant.first_last == FirstLast::Same || p.reason == "default")
        .map(|p| p.name)
        .collect())
}

/// What scores a candidate. Both scores must be deterministic for resume to reach the
/// same bytes.
pub trait Judge {
    /// Holdout accuracy (a fraction) of the network quantized under `config`.
    fn accuracy(&mut self, config: &Config) -> Result<f64, CompressError>;
    /// Energy per image on the machine under `config`'s plan.
    fn energy(&mut self, config: &Config) -> Result<f64, CompressError>;
}

/// One proposal of a step: `layer`'s `operand` lowered from `from` to `to` bits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub layer: String,
    pub operand: Operand,
    pub from: u32,
    pub to: u32,
    pub energy: Option<f64>,
    pub accuracy: Option<f64>,
}

/// One member of the family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// 0 for the start.
    pub step: usize,
    /// The change from the previous member (none for the start).
    pub change: Option<Proposal>,
    pub widths: Assignment,
    pub energy: f64,
    pub holdout_accuracy: f64,
}

/// One finished step: every proposal with its scores and the kept one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: usize,
    pub proposals: Vec<Proposal>,
    pub chosen: Option<usize>,
}

/// Why the search stopped, or that it has not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    /// No proposal kept holdout accuracy within `max_drop` of float.
    AccuracyConstraint,
    /// Energy reached the budget.
    BudgetMet,
    /// Every searchable width is at the ladder's bottom.
    LadderExhausted,
}

/// `state.json` of a search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub config: SearchConfig,
    pub layers: Vec<String>,
    pub float_holdout_accuracy: f64,
    pub family: Vec<Member>,
    pub history: Vec<StepLog>,
    pub status: Status,
}

impl State {
    /// The smallest holdout accuracy the constraint allows.
    pub fn accuracy_floor(&self) -> f64 {
        self.float_holdout_accuracy - self.config.max_drop_points / 100.0
    }

    pub fn last(&self) -> &Member {
        self.family.last().expect("the family holds its start")
    }
}

/// Progress of a search.
#[derive(Clone, Debug)]
pub enum Event {
    Start(Member),
    Scored(Proposal),
    Kept(Member),
    Stopped(Status),
}

/// The greedy planner: see the module documentation.
pub struct Planner {
    dir: RunDir,
    pub state: State,
}

impl Planner {
    /// Starts a search in `dir` with `float_holdout_accuracy` as the reference, scoring the
    /// start with `judge`; or reopens the search `dir` holds (same settings and layers).
    pub fn open(
        dir: RunDir,
        config: &SearchConfig,
        graph: &Graph,
        float_holdout_accuracy: impl FnOnce() -> Result<f64, CompressError>,
        judge: &mut dyn Judge,
    ) -> Result<Planner, CompressError> {
        config.check()?;
        let layers = searchable_layers(graph, config)?;
        if dir.join(RunDir::STATE).is_file() {
            let state: State = dir.read_json(RunDir::STATE)?;
            if &state.config != config || state.layers != layers {
                return Err(CompressError::Resume {
                    path: dir.join(RunDir::STATE),
                    message: "the settings or the model differ from the stored search's".into(),
                });
            }
            return Ok(Planner { dir, state });
        }
        let top = config.ladder[0];
        let widths: Assignment = layers
            .iter()
            .map(|l| {
                (
                    l.clone(),
                    Widths {
                        weight: top,
                        activation: top,
                    },
                )
            })
            .collect();
        let quant = config.quant_config(&widths);
        let start = Member {
            step: 0,
            change: None,
            energy: judge.energy(&quant)?,
            holdout_accuracy: judge.accuracy(&quant)?,
            widths,
        };
        let state = State {
            config: config.clone(),
            layers,
            float_holdout_accuracy: float_holdout_accuracy()?,
            family: vec![start],
            history: Vec::new(),
            status: Status::Running,
        };
        let mut planner = Planner { dir, state };
        planner.update_status();
        planner.save()?;
        Ok(planner)
    }

    fn save(&self) -> Result<(), CompressError> {
        self.dir.write_json(RunDir::STATE, &self.state)
    }

    /// Stops on the budget or an exhausted ladder.
    fn update_status(&mut self) {
        let start = self.state.family[0].energy;
        let last = self.state.last();
        if let Some(b) = self.state.config.energy_budget {
            if last.energy <= b * start {
                self.state.status = Status::BudgetMet;
                return;
            }
        }
        if self.proposals().is_empty() {
            self.state.status = Status::LadderExhausted;
        }
    }

    /// The next step's proposals (unscored), in layer order, weights before activations;
    /// none once the search has stopped.
    pub fn proposals(&self) -> Vec<Proposal> {
        if self.state.status != Status::Running {
            return Vec::new();
        }
        let widths = &self.state.last().widths;
        let mut out = Vec::new();
        for layer in &self.state.layers {
            for operand in [Operand::Weight, Operand::Activation] {
                let from = widths[layer].get(operand);
                if let Some(to) = self.state.config.below(from) {
                    out.push(Proposal {
                        layer: layer.clone(),
                        operand,
                        from,
                        to,
                        energy: None,
                        accuracy: None,
                    });
                }
            }
        }
        out
    }

    /// The assignment a proposal makes of the current one.
    pub fn assignment(&self, p: &Proposal) -> Assignment {
        let mut widths = self.state.last().widths.clone();
        let w = widths[&p.layer].with(p.operand, p.to);
        widths.insert(p.layer.clone(), w);
        widths
    }

    /// Takes the scored proposals of the step, keeps one (or stops) and saves the state.
    /// Returns the kept member.
    pub fn tell(&mut self, scored: Vec<Proposal>) -> Result<Option<Member>, CompressError> {
        let current = self.state.last().clone();
        let chosen = choose(&scored, &current, self.state.accuracy_floor());
        let step = self.state.history.len() + 1;
        let kept = chosen.map(|i| {
            let p = &scored[i];
            Member {
                step,
                change: Some(p.clone()),
                widths: self.assignment(p),
                energy: p.energy.unwrap_or(f64::NAN),
                holdout_accuracy: p.accuracy.unwrap_or(f64::NAN),
            }
        });
        self.state.history.push(StepLog {
            step,
            proposals: scored,
            chosen,
        });
        match &kept {
            Some(m) => {
                self.state.family.push(m.clone());
                self.update_status();
            }
            None => self.state.status = Status::AccuracyConstraint,
        }
        self.save()?;
        Ok(kept)
    }

    /// Runs the search to its end with `judge`.
    pub fn run(
        &mut self,
        judge: &mut dyn Judge,
        mut on_event: impl FnMut(&Event),
    ) -> Result<(), CompressError> {
        if self.state.history.is_empty() {
            on_event(&Event::Start(self.state.family[0].clone()));
        }
        loop {
            let proposals = self.proposals();
            if proposals.is_empty() {
                break;
            }
            let mut scored = Vec::with_capacity(proposals.len());
            for mut p in proposals {
                let config = self.state.config.quant_config(&self.assignment(&p));
                p.energy = Some(judge.energy(&config)?);
                p.accuracy = Some(judge.accuracy(&config)?);
                on_event(&Event::Scored(p.clone()));
                scored.push(p);
            }
            if let Some(m) = self.tell(scored)? {
                on_event(&Event::Kept(m));
            }
        }
        on_event(&Event::Stopped(self.state.status));
        Ok(())
    }
}

/// The index of the proposal to keep: within the accuracy floor and saving energy, the least
/// drop (from `current`, clamped at zero) per energy saved; ties to the larger saving, then
/// the earlier proposal.
pub fn choose(proposals: &[Proposal], current: &Member, floor: f64) -> Option<usize> {
    let mut best: Option<(usize, f64, f64)> = None;
    for (i, p) in proposals.iter().enumerate() {
        let (Some(e), Some(a)) = (p.energy, p.accuracy) else {
            continue;
        };
        let saved = current.energy - e;
        if a < floor || saved <= 0.0 {
            continue;
        }
        let score = (current.holdout_accuracy - a).max(0.0) / saved;
        let better = match best {
            None => true,
            Some((_, s, sv)) => score < s || (score == s && saved > sv),
        };
        if better {
            best = Some((i, score, saved));
        }
    }
    best.map(|b| b.0)
}

/// Energy per image of a network at a plan's widths on a machine (RS dataflow, energy
/// objective, as NetAdapt costs it). On a digital machine each layer is costed alone and
/// cached by its name and widths, since a layer's cost depends only on its own loop nest
/// and widths; a PIM machine is costed whole (residency depends on the whole network).
pub struct PlanEnergy {
    machine: Machine,
    model: String,
    layers: Vec<Workload>,
    cache: HashMap<String, f64>,
}

impl PlanEnergy {
    pub fn new(graph: &Graph, machine: Machine) -> Result<PlanEnergy, CompressError> {
        Ok(PlanEnergy {
            machine,
            model: graph.name.clone(),
            layers: workload::from_graph(graph, None, 1)?,
            cache: HashMap::new(),
        })
    }

    pub fn energy(&mut self, plan: &[LayerPlan]) -> Result<f64, CompressError> {
        let mut layers = self.layers.clone();
        workload::apply_bitwidths(&mut layers, &super::energy_widths(plan), "plan")?;
        if !self.machine.costs_per_layer() {
            let cost =
                self.machine
                    .evaluate(&self.model, &layers, Dataflow::Rs, Objective::Energy)?;
            return Ok(cost.total.energy.total);
        }
        let mut total = 0.0;
        for layer in layers {
            let key = format!("{} {:?}", layer.name, layer.bits);
            let e = match self.cache.get(&key) {
                Some(&e) => e,
                None => {
                    let name = layer.name.clone();
                    let cost = self.machine.evaluate(
                        &self.model,
                        &[layer],
                        Dataflow::Rs,
                        Objective::Energy,
                    )?;
                    let e = cost.layer(&name).map_or(0.0, |c| c.energy.total);
                    self.cache.insert(key, e);
                    e
                }
            };
            total += e;
        }
        Ok(total)
    }
}

/// The engine's judge: post-training quantization of the float network (activation ranges
/// calibrated once per layer and width on the float network's activations and reused),
/// optionally a short fine-tuning, accuracy on a dataset (the holdout while searching),
/// energy by [`PlanEnergy`].
pub struct PtqJudge<'a> {
    network: &'a Network,
    score_on: &'a Dataset,
    fine_tune: Option<(FineTune, Dataset)>,
    /// Every planned layer's input values on the calibration images, by layer name.
    inputs: HashMap<String, Vec<f32>>,
    ranges: HashMap<(String, u32), ActQuant>,
    energy: PlanEnergy,
    seed: u64,
    calibration: joule_nn::quant::Calibration,
}

/// The batch size of evaluation.
const EVAL_BATCH: usize = 500;

impl<'a> PtqJudge<'a> {
    /// A judge of `network` scoring on `score_on`, calibrating on `config.quant`'s number
    /// of images of `train` (and fine-tuning on its first images when configured).
    pub fn new(
        network: &'a Network,
        train: &Dataset,
        score_on: &'a Dataset,
        config: &SearchConfig,
        machine: Machine,
    ) -> Result<PtqJudge<'a>, CompressError> {
        let q = &config.quant;
        let images = crate::metrics::calibration_batch(train, q.calibration_images, q.seed)?;
        let mut float = network.clone();
        float.clear_quant();
        let trace = float.trace(&images)?;
        let mut inputs = HashMap::new();
        let mut all = q.clone();
        all.layers.clear();
        for p in plan(network.graph(), &all)? {
            let values = match network.graph().nodes()[p.node].inputs[0] {
                Value::Input => images.data.clone(),
                Value::Node(id) => trace.output(id).data,
            };
            inputs.insert(p.name, values);
        }
        let fine_tune = config
            .fine_tune
            .clone()
            .map(|f| (f.clone(), train.clone().take(f.images)));
        Ok(PtqJudge {
            network,
            score_on,
            fine_tune,
            inputs,
            ranges: HashMap::new(),
            energy: PlanEnergy::new(network.graph(), machine)?,
            seed: q.seed,
            calibration: q.calibration,
        })
    }

    /// The same judge scoring on another dataset (the test split, for the family's record).
    pub fn scoring_on(&mut self, data: &'a Dataset) {
        self.score_on = data;
    }

    /// The quantizers of `config`'s plan (ranges from the cache).
    pub fn quants(&mut self, config: &Config) -> Result<Vec<NamedQuant>, CompressError> {
        let plan = plan(self.network.graph(), config)?;
        let mut out = Vec::with_capacity(plan.len());
        for p in plan {
            let key = (p.name.clone(), p.activation_bits);
            let range = match self.ranges.get(&key) {
                Some(r) => *r,
                None => {
                    let r =
                        calibrate_range(&self.inputs[&p.name], p.activation_bits, self.calibration);
                    self.ranges.insert(key, r);
                    r
                }
            };
            out.push(NamedQuant {
                name: p.name.clone(),
                quant: LayerQuant {
                    weight: Some(p.weight_quant()),
                    input: Some(range),
                },
            });
        }
        Ok(out)
    }

    /// The quantized network of `config` (fine-tuned when configured).
    pub fn network(&mut self, config: &Config) -> Result<Network, CompressError> {
        let quants = self.quants(config)?;
        let mut net = self.network.clone();
        apply(&mut net, &quants)?;
        if let Some((f, data)) = &self.fine_tune {
            let tc = TrainConfig {
                epochs: 1,
                batch_size: f.batch_size,
                learning_rate: f.learning_rate,
                schedule: Schedule::Constant,
                optimizer: OptimizerConfig::Sgd {
                    momentum: 0.9,
                    weight_decay: 0.0,
                },
                seed: self.seed,
                shift: 0,
            };
            train(&mut net, data, &tc, |_| {})?;
        }
        Ok(net)
    }
}

impl Judge for PtqJudge<'_> {
    fn accuracy(&mut self, config: &Config) -> Result<f64, CompressError> {
        let net = self.network(config)?;
        Ok(evaluate(&net, self.score_on, EVAL_BATCH)?.accuracy)
    }

    fn energy(&mut self, config: &Config) -> Result<f64, CompressError> {
        let plan = plan(self.network.graph(), config)?;
        self.energy.energy(&plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(energy: f64, accuracy: f64) -> Member {
        Member {
            step: 0,
            change: None,
            widths: Assignment::new(),
            energy,
            holdout_accuracy: accuracy,
        }
    }

    fn scored(layer: &str, energy: f64, accuracy: f64) -> Proposal {
        Proposal {
            layer: layer.into(),
            operand: Operand::Weight,
            from: 8,
            to: 6,
            energy: Some(energy),
            accuracy: Some(accuracy),
        }
    }

    #[test]
    fn the_kept_proposal_loses_least_accuracy_per_energy_saved_within_the_floor() {
        let current = member(100.0, 0.90);
        let p = [
            // drop 0.02 for 40 saved: 0.0005 per unit
            scored("a", 60.0, 0.88),
            // drop 0.005 for 5 saved: 0.001 per unit
            scored("b", 95.0, 0.895),
            // below the floor 0.87 though the best ratio
            scored("c", 10.0, 0.86),
            // saves nothing
            scored("d", 100.0, 0.90),
        ];
        assert_eq!(choose(&p, &current, 0.87), Some(0));
        // Gains count as no drop: the larger saving wins the tie at zero.
        let q = [scored("a", 90.0, 0.91), scored("b", 80.0, 0.90)];
        assert_eq!(choose(&q, &current, 0.87), Some(1));
        // Nothing within the floor.
        assert_eq!(choose(&p[2..], &current, 0.87), None);
    }

    /// A judge with known answers: energy is one unit per bit of every searched width, the
    /// accuracy loss 0.0002 per weight bit removed and 0.0007 per activation bit removed.
    struct Fake {
        calls: usize,
    }

    impl Judge for Fake {
        fn accuracy(&mut self, config: &Config) -> Result<f64, CompressError> {
            self.calls += 1;
            let mut acc = 0.95;
            for w in config.layers.values() {
                let (wb, ab) = (w.weight.unwrap(), w.activation.unwrap());
                acc -= 0.0002 * (8 - wb) as f64 + 0.0007 * (8 - ab) as f64;
            }
            Ok(acc)
        }

        fn energy(&mut self, config: &Config) -> Result<f64, CompressError> {
            Ok(config
                .layers
                .values()
                .map(|w| (w.weight.unwrap() + w.activation.unwrap()) as f64)
                .sum())
        }
    }

    /// lenet5 with (random) weights: the plan only quantizes layers that have them.
    fn graph() -> Graph {
        Network::new(joule_model::zoo::build("lenet5").unwrap(), 1)
            .unwrap()
            .graph()
            .clone()
    }

    #[test]
    fn the_search_lowers_the_cheapest_bits_first_stops_at_the_floor_and_resumes_to_the_same_bytes()
    {
        let g = graph();
        let mut config = SearchConfig::new(1.0);
        config.quant.first_last = FirstLast::Same;
        config.ladder = vec![8, 6, 4, 2];
        let layers = searchable_layers(&g, &config).unwrap();
        assert_eq!(layers.len(), 5);
        let whole = tempfile::tempdir().unwrap();
        let dir = RunDir::create(&whole.path().join("run")).unwrap();
        let mut judge = Fake { calls: 0 };
        let mut planner = Planner::open(dir, &config, &g, || Ok(0.95), &mut judge).unwrap();
        planner.run(&mut judge, |_| {}).unwrap();
        let s = &planner.state;
        assert_eq!(s.status, Status::AccuracyConstraint);
        // Every kept member stays within 1 point of float, and energy falls every step.
        for w in s.family.windows(2) {
            assert!(w[1].energy < w[0].energy);
            assert!(w[1].holdout_accuracy >= 0.95 - 0.01 - 1e-12);
        }
        // Every bit saves the same energy and a weight bit costs less accuracy (0.0002
        // against 0.0007), so all weights reach the bottom before any activation moves: 5
        // layers x 6 bits lose 0.006, then two activation steps of 0.0014 reach 0.9412 and a
        // third would fall to 0.9398, below the floor 0.94.
        let first_activation = s
            .family
            .iter()
            .position(|m| {
                m.change
                    .as_ref()
                    .is_some_and(|c| c.operand == Operand::Activation)
            })
            .unwrap();
        assert!(s.family[1..first_activation]
            .iter()
            .all(|m| m.change.as_ref().unwrap().operand == Operand::Weight));
        assert!(s.family[first_activation - 1]
            .widths
            .values()
            .all(|w| w.weight == 2));
        // The next step would have broken the floor: its best proposal is below it.
        let last = s.history.last().unwrap();
        assert_eq!(last.chosen, None);
        assert!(last
            .proposals
            .iter()
            .all(|p| p.accuracy.unwrap() < s.accuracy_floor()));
        assert_eq!(s.family.len(), 1 + 15 + 2);
        let bytes = std::fs::read(whole.path().join("run/state.json")).unwrap();

        // Interrupted after three steps, reopened, finished: the same state, byte for byte.
        let dir = RunDir::create(&whole.path().join("again")).unwrap();
        let mut p = Planner::open(dir, &config, &g, || Ok(0.95), &mut judge).unwrap();
        for _ in 0..3 {
            let scored = p
                .proposals()
                .into_iter()
                .map(|mut q| {
                    let c = config.quant_config(&p.assignment(&q));
                    q.energy = Some(judge.energy(&c).unwrap());
                    q.accuracy = Some(judge.accuracy(&c).unwrap());
                    q
                })
                .collect();
            p.tell(scored).unwrap();
        }
        drop(p);
        let dir = RunDir::open(&whole.path().join("again")).unwrap();
        let calls = judge.calls;
        let mut p = Planner::open(dir, &config, &g, || panic!("rescored"), &mut judge).unwrap();
        assert_eq!(judge.calls, calls, "reopening scores nothing");
        p.run(&mut judge, |_| {}).unwrap();
        assert_eq!(
            std::fs::read(whole.path().join("again/state.json")).unwrap(),
            bytes
        );

        // A different setting refuses to resume.
        let mut other = config.clone();
        other.max_drop_points = 2.0;
        let dir = RunDir::open(&whole.path().join("again")).unwrap();
        let err = Planner::open(dir, &other, &g, || Ok(0.95), &mut judge)
            .err()
            .unwrap();
        assert!(err.to_string().contains("cannot resume"), "{err}");
    }

    #[test]
    fn the_search_stops_at_the_energy_budget_and_keeps_first_and_last_at_eight() {
        let g = graph();
        let mut config = SearchConfig::new(100.0);
        config.energy_budget = Some(0.75);
        let layers = searchable_layers(&g, &config).unwrap();
        // lenet5's conv1 and its classifier stay at 8 bits under the default policy.
        assert_eq!(layers.len(), 3);
        assert!(!layers.contains(&"conv1".to_string()));
        let whole = tempfile::tempdir().unwrap();
        let dir = RunDir::create(&whole.path().join("run")).unwrap();
        let mut judge = Fake { calls: 0 };
        let mut planner = Planner::open(dir, &config, &g, || Ok(0.95), &mut judge).unwrap();
        planner.run(&mut judge, |_| {}).unwrap();
        let s = &planner.state;
        assert_eq!(s.status, Status::BudgetMet);
        // Three layers at 1 unit per bit: start 48; 0.75 x 48 = 36 needs 12 bits removed,
        // and a step removes 2 (8 -> 6) or 1 (6 -> 5, ...): the one before the last member
        // is still above the budget, the last at or below it.
        let n = s.family.len();
        assert_eq!(s.family[0].energy, 48.0);
        assert!(s.family[n - 1].energy <= 36.0);
        assert!(s.family[n - 2].energy > 36.0);
    }

    #[test]
    fn bad_ladders_and_limits_are_one_line_errors() {
        for (mutate, field) in [
            (
                Box::new(|c: &mut SearchConfig| c.ladder = vec![8, 8])
                    as Box<dyn Fn(&mut SearchConfig)>,
                "ladder",
            ),
            (
                Box::new(|c: &mut SearchConfig| c.ladder = vec![8, 1]),
                "ladder",
            ),
            (Box::new(|c: &mut SearchConfig| c.ladder = vec![]), "ladder"),
            (
                Box::new(|c: &mut SearchConfig| c.max_drop_points = -1.0),
                "max_drop",
            ),
            (
                Box::new(|c: &mut SearchConfig| c.energy_budget = Some(1.5)),
                "energy_budget",
            ),
        ] {
            let mut c = SearchConfig::new(0.5);
            mutate(&mut c);
            let err = c.check().unwrap_err().to_string();
            assert!(err.starts_with(field), "{err}");
            assert!(!err.contains('\n'));
        }
    }
}
