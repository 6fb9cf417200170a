//! Resources, budgets and the reduction schedule.

use crate::lut::LatencyTable;
use crate::CompressError;
use joule_energy::{workload, Dataflow, Machine, Objective};
use joule_model::{Graph, NetworkStats};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// A resource NetAdapt can constrain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    /// Predicted by the latency lookup table (ms).
    Latency,
    /// Estimated by the energy engine (RS dataflow, the hardware's unit).
    Energy,
    Macs,
    Weights,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Latency => "latency",
            Resource::Energy => "energy",
            Resource::Macs => "macs",
            Resource::Weights => "weights",
        }
    }
}

/// A limit: a fraction of the original network's resource (`0.5x`) or an absolute value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    Fraction(f64),
    Absolute(f64),
}

/// One budget, e.g. `latency=0.5x` or `macs=200000`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub resource: Resource,
    pub limit: Limit,
}

impl Budget {
    /// Parses `kind=value` where value is `<fraction>x` or an absolute number.
    pub fn parse(text: &str) -> Result<Budget, CompressError> {
        let field = format!("--budget {text}");
        let (kind, value) = text.split_once('=').ok_or_else(|| {
            CompressError::config(
                &field,
                "expected kind=value, e.g. latency=0.5x or macs=200000",
            )
        })?;
        let resource = match kind.trim() {
            "latency" => Resource::Latency,
            "energy" => Resource::Energy,
            "macs" => Resource::Macs,
            "weights" => Resource::Weights,
            other => {
                return Err(CompressError::config(
                    &field,
                    format!(
                        "unknown resource {other:?} (expected latency, energy, macs or weights)"
                    ),
                ))
            }
        };
        let value = value.trim();
        let (number, relative) = match value.strip_suffix('x') {
            Some(n) => (n, true),
            None => (value, false),
        };
        let v: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                CompressError::config(&field, format!("{value:?} is not a positive number"))
            })?;
        if relative && v >= 1.0 {
            return Err(CompressError::config(
                &field,
                "a budget must be below 1x of the original",
            ));
        }
        let limit = if relative {
            Limit::Fraction(v)
        } else {
            Limit::Absolute(v)
        };
        Ok(Budget { resource, limit })
    }

    /// The absolute limit given the original network's value.
    pub fn resolve(&self, original: f64) -> f64 {
        match self.limit {
            Limit::Fraction(f) => f * original,
            Limit::Absolute(v) => v,
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.limit {
            Limit::Fraction(v) => write!(f, "{}={v}x", self.resource.name()),
            Limit::Absolute(v) => write!(f, "{}={v}", self.resource.name()),
        }
    }
}

/// The constraint of iteration `i` (0-based) for one resource, as in the reference
/// implementation: `current - r0 * original * decay^i`, never below the budget; a resource
/// already within its budget only has to stay there.
pub fn target(current: f64, original: f64, budget: f64, r0: f64, decay: f64, i: usize) -> f64 {
    if current <= budget {
        return budget;
    }
    (current - r0 * original * decay.powi(i as i32)).max(budget)
}

/// A network's resources (per image).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub latency_predicted_ms: Option<f64>,
    pub energy: Option<f64>,
    pub macs: u64,
    pub weights: u64,
}

impl Resources {
    pub fn get(&self, r: Resource) -> f64 {
        match r {
            Resource::Latency => self.latency_predicted_ms.unwrap_or(f64::NAN),
            Resource::Energy => self.energy.unwrap_or(f64::NAN),
            Resource::Macs => self.macs as f64,
            Resource::Weights => self.weights as f64,
        }
    }
}

/// Estimates resources: the latency table, the energy engine (per-layer results cached by
/// loop nest, since a layer's energy depends only on its shape), MACs and weights.
pub struct Estimator {
    pub lut: Option<LatencyTable>,
    pub hardware: Option<Machine>,
    energy_cache: Mutex<HashMap<String, f64>>,
}

impl Estimator {
    /// Owns its table and machine (small), so an ask/tell [`super::Planner`] held by Python
    /// needs no borrowed lifetimes.
    pub fn new(lut: Option<LatencyTable>, hardware: Option<Machine>) -> Estimator {
        Estimator {
            lut,
            hardware,
            energy_cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn estimate(&self, graph: &Graph) -> Result<Resources, CompressError> {
        let stats = NetworkStats::of(graph, None)?;
        let latency_predicted_ms = match &self.lut {
            Some(t) => Some(t.predict(graph)?.total_ms),
            None => None,
        };
        let energy = match &self.hardware {
            Some(hw) => Some(self.energy(graph, hw)?),
            None => None,
        };
        Ok(Resources {
            latency_predicted_ms,
            energy,
            macs: stats.total.macs,
            weights: stats.total.weights,
        })
    }

    fn energy(&self, graph: &Graph, hw: &Machine) -> Result<f64, CompressError> {
        let layers = workload::from_graph(graph, None, 1)?;
        if !hw.costs_per_layer() {
            let cost = hw.evaluate(&graph.name, &layers, Dataflow::Rs, Objective::Energy)?;
            return Ok(cost.total.energy.total);
        }
        let mut total = 0.0;
        for layer in layers {
            let key = format!("{:?} {:?}", layer.class, layer.nest);
            let cached = self
                .energy_cache
                .lock()
                .expect("cache lock")
                .get(&key)
                .copied();
            let e = match cached {
                Some(e) => e,
                None => {
                    let name = layer.name.clone();
                    let cost =
                        hw.evaluate(&graph.name, &[layer], Dataflow::Rs, Objective::Energy)?;
                    let e = cost.layer(&name).map_or(0.0, |c| c.energy.total);
                    self.energy_cache.lock().expect("cache lock").insert(key, e);
                    e
                }
            };
            total += e;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_tightens_geometrically_and_stops_at_the_budget() {
        // original 100, r0 = 0.1, decay 0.5: reductions 10, 5, 2.5, ...
        assert_eq!(target(100.0, 100.0, 40.0, 0.1, 0.5, 0), 90.0);
        assert_eq!(target(90.0, 100.0, 40.0, 0.1, 0.5, 1), 85.0);
        assert_eq!(target(85.0, 100.0, 40.0, 0.1, 0.5, 2), 82.5);
        assert_eq!(target(45.0, 100.0, 40.0, 0.1, 1.0, 3), 40.0);
        assert_eq!(target(30.0, 100.0, 40.0, 0.1, 1.0, 3), 40.0);
    }

    #[test]
    fn budgets_parse_and_bad_ones_say_why_in_one_line() {
        let b = Budget::parse("latency=0.5x").unwrap();
        assert_eq!(
            (b.resource, b.limit),
            (Resource::Latency, Limit::Fraction(0.5))
        );
        assert_eq!(b.resolve(8.0), 4.0);
        let b = Budget::parse("macs=200000").unwrap();
        assert_eq!(b.limit, Limit::Absolute(200000.0));
        assert_eq!(b.to_string(), "macs=200000");
        for (bad, why) in [
            (
                "speed=0.5x",
                "--budget speed=0.5x: unknown resource \"speed\"",
            ),
            ("energy=1x", "--budget energy=1x: a budget must be below 1x"),
            ("energy=1.5x", "below 1x"),
            ("macs", "expected kind=value"),
            ("weights=-3", "not a positive number"),
        ] {
            let err = Budget::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains('\n'));
        }
    }
}
