//! `joule.NetAdapt`: NetAdapt's ask/tell loop over [`joule_lab::adapt::plan`], the same
//! planner `joule adapt` runs, answered by the caller (PyTorch, Ray: `joule.torch`).

use crate::{joule_error, setting_error, ModelInput};
use joule_lab::netadapt::{Planner, Proposal as PlannedProposal, Record, Status};
use joule_lab::{AdaptConfig, Budget, LabError, Model};
use pyo3::prelude::*;
use pyo3::types::PyAny;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One candidate of an iteration: `layer` shrunk from `current_filters` to `filters`
/// filters, with what joule estimates it costs. `removed` are the filters with the smallest
/// L2 norm in joule's copy of the network; `seed` the seed `joule adapt` would fine-tune it
/// with. `accuracy` is set once told (in `NetAdapt.history`).
#[pyclass(frozen, get_all, module = "joule")]
#[derive(Clone, Serialize)]
pub struct Proposal {
    pub index: usize,
    pub iteration: usize,
    pub layer: String,
    pub filters: usize,
    pub current_filters: usize,
    pub removed: Vec<usize>,
    pub energy: Option<f64>,
    pub latency_ms: Option<f64>,
    pub macs: u64,
    pub weights: u64,
    pub seed: u64,
    pub accuracy: Option<f64>,
}

impl Proposal {
    fn new(index: usize, p: &PlannedProposal) -> Proposal {
        Proposal {
            index,
            iteration: p.iteration,
            layer: p.layer.clone(),
            filters: p.filters,
            current_filters: p.current_filters,
            removed: p.removed.clone(),
            energy: p.resources.energy,
            latency_ms: p.resources.latency_predicted_ms,
            macs: p.resources.macs,
            weights: p.resources.weights,
            seed: p.seed,
            accuracy: p.accuracy,
        }
    }
}

#[pymethods]
impl Proposal {
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::results::to_dict(py, self)
    }

    fn __repr__(&self) -> String {
        format!(
            "Proposal(iteration={}, layer={:?}, filters={} of {}, energy={}, macs={})",
            self.iteration,
            self.layer,
            self.filters,
            self.current_filters,
            self.energy.map_or("None".into(), |e| e.to_string()),
            self.macs
        )
    }
}

/// A network of the NetAdapt family (the original is iteration 0): its accuracy as told,
/// its estimated energy and latency, MACs, weights, the filters of every prunable layer,
/// the layer simplified to get it and its checkpoint (`.safetensors`, with an `.onnx` beside).
#[pyclass(frozen, get_all, module = "joule")]
#[derive(Clone, Serialize)]
pub struct FamilyMember {
    pub iteration: usize,
    pub layer: Option<String>,
    pub accuracy: f64,
    pub test_accuracy: Option<f64>,
    pub energy: Option<f64>,
    pub latency_predicted_ms: Option<f64>,
    pub macs: u64,
    pub weights: u64,
    pub channels: BTreeMap<String, usize>,
    pub targets: BTreeMap<String, f64>,
    pub checkpoint: String,
}

impl FamilyMember {
    fn new(r: &Record, dir: &std::path::Path) -> FamilyMember {
        FamilyMember {
            iteration: r.iteration,
            layer: r.layer.clone(),
            accuracy: r.accuracy,
            test_accuracy: r.test_accuracy,
            energy: r.energy,
            latency_predicted_ms: r.latency_predicted_ms,
            macs: r.macs,
            weights: r.weights,
            channels: r.channels.clone(),
            targets: r.targets.clone(),
            checkpoint: dir.join(&r.checkpoint).to_string_lossy().into_owned(),
        }
    }
}

#[pymethods]
impl FamilyMember {
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::results::to_dict(py, self)
    }

    fn __repr__(&self) -> String {
        format!(
            "FamilyMember(iteration={}, layer={:?}, accuracy={}, energy={}, macs={})",
            self.iteration,
            self.layer.as_deref().unwrap_or("-"),
            self.accuracy,
            self.energy.map_or("None".into(), |e| e.to_string()),
            self.macs
        )
    }
}

/// The ask/tell NetAdapt run (see `joule.NetAdapt` in python/joule/__init__.py).
#[pyclass(module = "joule", name = "_NetAdapt")]
pub struct NetAdapt {
    planner: Planner<'static>,
}

fn status_name(status: &Status) -> &'static str {
    match status {
        Status::Running => "running",
        Status::Met => "met",
        Status::Unreachable { .. } => "unreachable",
        Status::OutOfIterations => "out_of_iterations",
    }
}

/// A model handed over as `(spec or bytes, name)` by the Python layer, as a network.
fn network_of(model: &Bound<'_, PyAny>, seed: u64) -> PyResult<joule_lab::Network> {
    let (spec, name): (Bound<'_, PyAny>, String) = model.extract()?;
    let input = ModelInput::extract(&spec, &name)?;
    input
        .load()
        .and_then(|m: Model| m.network(seed))
        .map_err(joule_error)
}

#[pymethods]
impl NetAdapt {
    #[new]
    #[pyo3(signature = (model, name, budget, hw, lut, out, resume, accuracy, initial_reduction,
        decay, max_iterations, levels, selection, seed, short_term_batches, data))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: &Bound<'_, PyAny>,
        name: &str,
        budget: Vec<String>,
        hw: &str,
        lut: Option<PathBuf>,
        out: PathBuf,
        resume: bool,
        accuracy: Option<f64>,
        initial_reduction: f64,
        decay: f64,
        max_iterations: usize,
        levels: usize,
        selection: &str,
        seed: u64,
        short_term_batches: usize,
        data: &str,
    ) -> PyResult<NetAdapt> {
        let model = ModelInput::extract(model, name)?;
        let budgets = budget
            .iter()
            .map(|b| Budget::parse(b).map_err(|e| joule_error(LabError::from(e))))
            .collect::<PyResult<Vec<_>>>()?;
        let selection = match selection {
            "accuracy" => joule_lab::Selection::Accuracy,
            "drop-per-resource" => joule_lab::Selection::DropPerResource,
            other => {
                return Err(setting_error(
                    "selection",
                    format!("expected accuracy or drop-per-resource, not {other:?}"),
                ))
            }
        };
        let config = AdaptConfig {
            model: name.to_string(),
            data: data.to_string(),
            budgets,
            initial_reduction,
            decay,
            max_iterations,
            levels,
            short_term_batches,
            // Long-term fine-tuning is the caller's (NetAdapt.finish records its result).
            long_term_epochs: 0,
            selection,
            seed,
            ..AdaptConfig::default()
        };
        let hw = hw.to_string();
        let planner = py
            .detach(|| {
                let model = model.load()?;
                joule_lab::adapt::plan(&model, config, &hw, lut.as_deref(), &out, resume, accuracy)
            })
            .map_err(joule_error)?;
        Ok(NetAdapt { planner })
    }

    /// The next iteration's proposals (empty once iterating is over).
    fn propose(&mut self, py: Python<'_>) -> PyResult<Vec<Proposal>> {
        let planner = &mut self.planner;
        let proposals = py
            .detach(|| planner.propose().map(<[_]>::to_vec))
            .map_err(|e| joule_error(e.into()))?;
        Ok(proposals
            .iter()
            .enumerate()
            .map(|(i, p)| Proposal::new(i, p))
            .collect())
    }

    /// Tells every pending proposal's accuracy; `models(index)` gives the fine-tuned network
    /// of the kept one as `(model, name)`, or None.
    #[pyo3(signature = (accuracies, models=None))]
    fn tell(
        &mut self,
        py: Python<'_>,
        accuracies: Vec<f64>,
        models: Option<Bound<'_, PyAny>>,
    ) -> PyResult<FamilyMember> {
        let seed = self.planner.config().seed;
        let dir = self.planner.dir().path().to_path_buf();
        let mut python_error: Option<PyErr> = None;
        let told = self.planner.tell(&accuracies, |best| {
            let Some(models) = &models else {
                return Ok(None);
            };
            let result = models.call1((best,)).and_then(|m| {
                if m.is_none() {
                    Ok(None)
                } else {
                    network_of(&m, seed).map(Some)
                }
            });
            match result {
                Ok(network) => Ok(network),
                Err(e) => {
                    let message = e.value(py).to_string();
                    python_error = Some(e);
                    Err(joule_lab::CompressError::config("models", message))
                }
            }
        });
        match told {
            Ok(record) => Ok(FamilyMember::new(record, &dir)),
            Err(_) if python_error.is_some() => Err(python_error.expect("checked")),
            Err(e) => Err(joule_error(e.into())),
        }
    }

    /// Records the final network (after the caller's long-term fine-tuning) and writes
    /// `summary.json` and the charts; `model` is `(model, name)` or None for the last
    /// family member as it is.
    #[pyo3(signature = (accuracy, model=None, test_accuracy=None))]
    fn finish(
        &mut self,
        accuracy: f64,
        model: Option<Bound<'_, PyAny>>,
        test_accuracy: Option<f64>,
    ) -> PyResult<FamilyMember> {
        let network = match &model {
            Some(m) => network_of(m, self.planner.config().seed)?,
            None => self.planner.network().clone(),
        };
        let record = self
            .planner
            .finish(&network, accuracy, test_accuracy)
            .map_err(|e| joule_error(e.into()))?
            .clone();
        joule_lab::adapt::write_plan_outputs(&self.planner).map_err(joule_error)?;
        Ok(FamilyMember::new(&record, self.planner.dir().path()))
    }

    #[getter]
    fn status(&self) -> &'static str {
        status_name(&self.planner.state().status)
    }

    /// Why iterating stopped short, for an unreachable budget.
    #[getter]
    fn message(&self) -> Option<String> {
        match &self.planner.state().status {
            Status::Unreachable { message, .. } => Some(message.clone()),
            _ => None,
        }
    }

    #[getter]
    fn is_iterating(&self) -> bool {
        self.planner.is_iterating()
    }

    /// The original (iteration 0), then every iteration's network.
    #[getter]
    fn family(&self) -> Vec<FamilyMember> {
        let dir = self.planner.dir().path();
        let state = self.planner.state();
        std::iter::once(&state.original)
            .chain(&state.family)
            .map(|r| FamilyMember::new(r, dir))
            .collect()
    }

    #[getter]
    fn current(&self) -> FamilyMember {
        FamilyMember::new(self.planner.current(), self.planner.dir().path())
    }

    #[getter(final_network)]
    fn final_network(&self) -> Option<FamilyMember> {
        let dir = self.planner.dir().path();
        self.planner
            .state()
            .final_network
            .as_ref()
            .map(|r| FamilyMember::new(r, dir))
    }

    /// Absolute budgets, per resource.
    #[getter]
    fn budgets(&self) -> BTreeMap<String, f64> {
        self.planner.state().budgets.clone()
    }

    /// Every finished iteration: its targets, proposals with their accuracies, the pick.
    #[getter]
    fn history(&self) -> Vec<(BTreeMap<String, f64>, Vec<Proposal>, usize)> {
        self.planner
            .state()
            .history
            .iter()
            .map(|log| {
                let proposals = log
                    .proposals
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Proposal::new(i, p))
                    .collect();
                (log.targets.clone(), proposals, log.chosen)
            })
            .collect()
    }

    #[getter]
    fn out(&self) -> PathBuf {
        self.planner.dir().path().to_path_buf()
    }

    #[getter]
    fn unit(&self) -> Option<String> {
        self.planner.state().unit.clone()
    }

    /// The run's `state.json`, parsed.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::results::to_dict(py, self.planner.state())
    }
}
