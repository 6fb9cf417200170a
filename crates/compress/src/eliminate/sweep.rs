//! The experiment (the seed's Algorithm 1): for one layer, `p` from `rank(X)` down, the
//! simplified network's accuracy, parameters and energy, until the accuracy drop passes
//! the threshold; the smallest-outgoing-norm baseline at every `p` beside it.
//!
//! The threshold (where a sweep stops, which configurations count as within it, hence the
//! Pareto set) reads a validation split carved from the training data; the test split is
//! evaluated for the record only.

use super::layer::{self, Site};
use super::reconstruction::{largest_outgoing, restrict, Reconstructor};
use super::selection::Decomposition;
use super::EliminateError;
use joule_energy::{workload, Dataflow, LayerCost, Machine, Objective};
use joule_model::{Graph, LoopNest};
use joule_nn::{evaluate, Dataset, Network};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;

/// What an elimination run needs besides the network and data; validated by [`Config::new`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest accepted validation-accuracy drop, in percentage points.
    pub max_drop: f64,
    /// Hardware models to cost every configuration on (the first drives the Pareto set in
    /// reports that show one).
    pub hardware: Vec<Machine>,
    /// Training samples that make up `X` (`None`: the whole training split).
    pub samples: Option<usize>,
    /// Inference batch size.
    pub batch: usize,
    /// Refit the next layer's bias with the weights (see [`super::reconstruction`]); the seed
    /// keeps it unchanged, which is the default.
    pub refit_bias: bool,
    /// Seed handed to [`Network::new`] (weights are all present; it only matters for
    /// checking).
    pub seed: u64,
}

impl Config {
    pub fn new(max_drop: f64, hardware: Vec<Machine>) -> Result<Config, EliminateError> {
        if !max_drop.is_finite() || max_drop < 0.0 {
            return Err(EliminateError::Argument {
                argument: "max_drop".into(),
                message: format!("must be a non-negative number of points, got {max_drop}"),
            });
        }
        if hardware.is_empty() {
            return Err(EliminateError::Argument {
                argument: "hw".into(),
                message: "at least one hardware preset is needed".into(),
            });
        }
        Ok(Config {
            max_drop,
            hardware,
            samples: None,
            batch: 256,
            refit_bias: false,
            seed: 1,
        })
    }
}

/// A network's energy for one inference on one hardware model, by level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Energy {
    pub hardware: String,
    pub unit: String,
    pub mac: f64,
    pub rf: f64,
    pub array: f64,
    pub buffer: f64,
    pub dram: f64,
    pub total: f64,
}

/// The unsimplified network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Test accuracy (reported only).
    pub accuracy: f64,
    /// Validation accuracy (the threshold's reference; `None` in summaries made before).
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
    pub params: usize,
    pub energy: Vec<Energy>,
}

/// The baseline at the same `p`: the neurons with the largest outgoing weights, unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub accuracy: f64,
    pub reconstruction_error: f64,
}

/// One simplified configuration of a layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Neurons kept (`p`).
    pub kept: usize,
    /// Test accuracy (fraction) without retraining: reported only.
    pub accuracy: f64,
    /// Validation accuracy (fraction) without retraining: what `within` is decided on
    /// (`None` in summaries made before validation splits).
    #[serde(default)]
    pub validation_accuracy: Option<f64>,
    /// Learned values of the whole simplified network.
    pub params: usize,
    /// One entry per hardware model, in [`Config::hardware`] order.
    pub energy: Vec<Energy>,
    /// Relative least-squares error of the next layer's input over the training samples.
    pub reconstruction_error: f64,
    /// Whether the validation accuracy drop is within the threshold.
    pub within: bool,
    pub baseline: Baseline,
    /// The kept neurons, in pivot order.
    #[serde(skip)]
    pub neurons: Vec<usize>,
}

/// The whole sweep of one layer.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSweep {
    pub layer: String,
    /// The layer whose weights were re-solved.
    pub next: String,
    pub neurons: usize,
    pub rank: usize,
    pub rank_tolerance: f64,
    /// By decreasing `kept`; the last one may be past the threshold (where the sweep stopped).
    pub points: Vec<Point>,
    #[serde(skip)]
    site: Option<Site>,
    #[serde(skip)]
    reconstructor: Option<Reconstructor>,
}

impl LayerSweep {
    /// A sweep without points (for tests of what consumes sweeps).
    #[cfg(test)]
    pub(crate) fn empty(layer: &str) -> LayerSweep {
        LayerSweep {
            layer: layer.to_string(),
            next: String::new(),
            neurons: 0,
            rank: 0,
            rank_tolerance: 0.0,
            points: Vec::new(),
            site: None,
            reconstructor: None,
        }
    }

    /// The smallest configuration within the threshold.
    pub fn best(&self) -> Option<&Point> {
        self.points.iter().rev().find(|p| p.within)
    }
}

/// Runs elimination experiments on one trained network.
pub struct Eliminator<'a> {
    network: &'a Network,
    train: &'a Dataset,
    validation: &'a Dataset,
    test: &'a Dataset,
    config: Config,
    costs: RefCell<HashMap<(usize, LoopNest, u64), LayerCost>>,
}

impl<'a> Eliminator<'a> {
    /// `validation` (carved from the training data, disjoint from `train` in real runs)
    /// decides every threshold; `test` is only evaluated for the record.
    pub fn new(
        network: &'a Network,
        train: &'a Dataset,
        validation: &'a Dataset,
        test: &'a Dataset,
        config: Config,
    ) -> Eliminator<'a> {
        Eliminator {
            network,
            train,
            validation,
            test,
            config,
            costs: RefCell::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Accuracy, parameters and energy of the network as given.
    pub fn reference(&self) -> Result<Reference, EliminateError> {
        let graph = self.network.graph();
        Ok(Reference {
            accuracy: self.accuracy(self.network, "(original)", self.test)?,
            validation_accuracy: Some(self.accuracy(
                self.network,
                "(original)",
                self.validation,
            )?),
            params: layer::parameters(graph),
            energy: self.energy(graph)?,
        })
    }

    /// Algorithm 1 for `layer`: `p` from the rank of `X` down to 1, stopping after the first
    /// configuration whose validation accuracy drops from `reference_validation` (the
    /// original's, [`Reference::validation_accuracy`]) by more than the threshold.
    pub fn sweep(
        &self,
        layer_name: &str,
        reference_validation: f64,
        mut progress: impl FnMut(&Point),
    ) -> Result<LayerSweep, EliminateError> {
        let graph = self.network.graph();
        let site = layer::site(graph, layer_name)?;
        layer::trained(graph, &site)?;
        let train = match self.config.samples {
            Some(n) => self.train.clone().take(n),
            None => self.train.clone(),
        };
        let x = layer::activations(self.network, &site, &train, self.config.batch)?;
        let decomposition = Decomposition::new(&x, layer_name)?;
        let next = layer::next_weights(graph, &site);
        let reconstructor = if self.config.refit_bias {
            if site.taps != 1 {
                return Err(EliminateError::Argument {
                    argument: "refit_bias".into(),
                    message: format!("layer {layer_name}: only between fully connected layers"),
                });
            }
            if graph.node(site.next).params.len() < 2 {
                return Err(EliminateError::Argument {
                    argument: "refit_bias".into(),
                    message: format!("layer {} has no bias to refit", site.next_name),
                });
            }
            Reconstructor::with_bias_refit(&x, &next, layer_name)?
        } else {
            Reconstructor::new(&x, &next, layer_name)?
        };
        drop(x);
        let mut points = Vec::new();
        for p in (1..=decomposition.rank.max(1)).rev() {
            let kept = decomposition.representatives(p);
            let solution = reconstructor.solve(&kept);
            let simplified =
                layer::simplify(graph, &site, &kept, &solution.weights, &solution.bias_shift);
            let (accuracy, validation) = self.accuracy_of(&simplified, layer_name)?;
            let base_kept = largest_outgoing(&next, p);
            let base_weights = restrict(&next, &base_kept);
            let base_graph = layer::simplify(graph, &site, &base_kept, &base_weights, &[]);
            let baseline = Baseline {
                accuracy: self.accuracy_of(&base_graph, layer_name)?.0,
                reconstruction_error: reconstructor
                    .scored(&base_kept, base_weights)
                    .relative_error,
            };
            let within = 100.0 * (reference_validation - validation) <= self.config.max_drop;
            let point = Point {
                kept: p,
                accuracy,
                validation_accuracy: Some(validation),
                params: layer::parameters(&simplified),
                energy: self.energy(&simplified)?,
                reconstruction_error: solution.relative_error,
                within,
                baseline,
                neurons: kept,
            };
            progress(&point);
            points.push(point);
            if !within {
                break;
            }
        }
        Ok(LayerSweep {
            layer: layer_name.to_string(),
            next: site.next_name.clone(),
            neurons: site.neurons,
            rank: decomposition.rank,
            rank_tolerance: decomposition.tolerance,
            points,
            site: Some(site),
            reconstructor: Some(reconstructor),
        })
    }

    /// The simplified graph of a point of `sweep` (with the least-squares weights).
    pub fn simplified(&self, sweep: &LayerSweep, point: &Point) -> Option<Graph> {
        let (site, reconstructor) = (sweep.site.as_ref()?, sweep.reconstructor.as_ref()?);
        let solution = reconstructor.solve(&point.neurons);
        let mut graph = layer::simplify(
            self.network.graph(),
            site,
            &point.neurons,
            &solution.weights,
            &solution.bias_shift,
        );
        graph.name = format!("{}-{}-p{}", graph.name, sweep.layer, point.kept);
        Some(graph)
    }

    /// (test, validation) accuracy of a simplified graph.
    fn accuracy_of(&self, graph: &Graph, layer: &str) -> Result<(f64, f64), EliminateError> {
        let network =
            Network::new(graph.clone(), self.config.seed).map_err(|e| EliminateError::Network {
                layer: layer.to_string(),
                message: e.to_string(),
            })?;
        Ok((
            self.accuracy(&network, layer, self.test)?,
            self.accuracy(&network, layer, self.validation)?,
        ))
    }

    fn accuracy(
        &self,
        network: &Network,
        layer: &str,
        data: &Dataset,
    ) -> Result<f64, EliminateError> {
        let split = if std::ptr::eq(data, self.test) {
            "test"
        } else {
            "validation"
        };
        evaluate(network, data, self.config.batch)
            .map(|e| e.accuracy)
            .map_err(|e| EliminateError::Network {
                layer: layer.to_string(),
                message: format!("evaluating on the {split} split: {e}"),
            })
    }

    /// The energy of one inference of `graph` on every configured hardware model; layer
    /// costs are cached by loop nest, so a sweep maps each new layer shape once.
    pub fn energy(&self, graph: &Graph) -> Result<Vec<Energy>, EliminateError> {
        let layers = workload::from_graph(graph, None, 1).map_err(|e| EliminateError::Energy {
            hardware: "(all)".into(),
            message: e.to_string(),
        })?;
        let mut out = Vec::new();
        for (index, hw) in self.config.hardware.iter().enumerate() {
            let mut e = Energy {
                hardware: hw.name().to_string(),
                unit: hw.unit().to_string(),
                mac: 0.0,
                rf: 0.0,
                array: 0.0,
                buffer: 0.0,
                dram: 0.0,
                total: 0.0,
            };
            let whole = if hw.costs_per_layer() {
                None
            } else {
                Some(
                    hw.evaluate(&graph.name, &layers, Dataflow::Rs, Objective::Energy)
                        .map_err(|err| EliminateError::Energy {
                            hardware: hw.name().to_string(),
                            message: err.to_string(),
                        })?,
                )
            };
            for (position, w) in layers.iter().enumerate() {
                let key = (index, w.nest, w.density.weight.to_bits());
                let cached = match &whole {
                    Some(report) => Some(report.layers[position].cost.clone()),
                    None => self.costs.borrow().get(&key).cloned(),
                };
                let cost = match cached {
                    Some(c) => c,
                    None => {
                        let report = hw
                            .evaluate(
                                &graph.name,
                                std::slice::from_ref(w),
                                Dataflow::Rs,
                                Objective::Energy,
                            )
                            .map_err(|err| EliminateError::Energy {
                                hardware: hw.name().to_string(),
                                message: err.to_string(),
                            })?;
                        let c = report.layers[0].cost.clone();
                        self.costs.borrow_mut().insert(key, c.clone());
                        c
                    }
                };
                e.mac += cost.energy.mac;
                e.rf += cost.energy.rf;
                e.array += cost.energy.array;
                e.buffer += cost.energy.buffer;
                e.dram += cost.energy.dram;
                e.total += cost.energy.total;
            }
            out.push(e);
        }
        Ok(out)
    }
}
