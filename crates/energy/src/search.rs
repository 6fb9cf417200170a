//! The mapper: an exact search of the mapspace with pruning. For each spatial pass it walks
//! the RF-level factors (pruned as soon as the RF overflows: footprints grow with every
//! factor), then the buffer-level factors (pruned on buffer overflow), then the loop orders
//! of the DRAM and buffer levels; every surviving point is evaluated and the best kept, ties
//! going to the first found in this fixed order, so results are reproducible. Layers run in
//! parallel with rayon. `tests/exact_search.rs` checks that the pruning loses nothing: on
//! random small layers, every dataflow and several machines the best score equals a brute
//! force over the whole mapspace.

use crate::access::{Accesses, Level, PerTensor, Tensor};
use crate::cost::{layer_cost, CostWeights, LayerCost};
use crate::dataflow::{passes, Dataflow, Dim, PassUnit};
use crate::mapping::{
    accesses_from_fetches, relevant_product, streamed, Blocking, Fetches, Mapping,
};
use crate::mapspace::{distinct_orders, divisors, raw_size};
use crate::spec::Hardware;
use crate::workload::Workload;
use crate::EnergyError;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// What the mapper minimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Energy, then cycles.
    #[default]
    Energy,
    /// Cycles, then energy.
    Cycles,
    /// Energy x cycles.
    Edp,
}

impl FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "energy" => Ok(Objective::Energy),
            "cycles" | "delay" => Ok(Objective::Cycles),
            "edp" => Ok(Objective::Edp),
            _ => Err(format!("unknown objective {s:?} (energy, cycles or edp)")),
        }
    }
}

/// What one search looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SearchStats {
    /// Points of the raw mapspace (all passes, all factorizations, all orders).
    pub mapspace: u64,
    /// Points evaluated after pruning.
    pub evaluated: u64,
}

/// The best mapping of a layer: the mapping, its accesses (one group) and the search stats.
#[derive(Clone, Debug)]
pub struct Best {
    pub mapping: Mapping,
    pub accesses: Accesses,
    pub stats: SearchStats,
}

fn score(objective: Objective, energy: f64, cycles: f64) -> (f64, f64) {
    match objective {
        Objective::Energy => (energy, cycles),
        Objective::Cycles => (cycles, energy),
        Objective::Edp => (energy * cycles, energy),
    }
}

/// Searches one layer's mapspace.
pub fn best_mapping(
    w: &Workload,
    hw: &Hardware,
    dataflow: Dataflow,
    objective: Objective,
) -> Result<Best, EnergyError> {
    let weights = CostWeights::new(hw, w);
    let group = w.nest.with_batch(w.nest.n);
    let macs = (group.macs() / group.groups.max(1) as u64) as f64;
    let mut stats = SearchStats::default();
    let mut best: Option<((f64, f64), Mapping, Accesses)> = None;
    let mut last_reason = String::from("no spatial mapping");
    // Visit passes from the lowest energy lower bound (every datum fetched once at every
    // level); for the energy objective a pass whose bound cannot beat the best is skipped.
    let mut units: Vec<(f64, PassUnit)> = passes(w, hw, dataflow)
        .into_iter()
        .map(|u| (lower_bound(&u, &weights, macs), u))
        .collect();
    units.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (bound, unit) in units {
        stats.mapspace += raw_size(&unit);
        if objective == Objective::Energy {
            if let Some(((best_energy, _), _, _)) = &best {
                if bound >= *best_energy {
                    continue;
                }
            }
        }
        let reason = search_pass(
            &unit, hw, dataflow, objective, &weights, macs, &mut stats, &mut best,
        );
        if let Some(r) = reason {
            last_reason = r;
        }
    }
    match best {
        Some((_, mapping, accesses)) => Ok(Best {
            mapping,
            accesses,
            stats,
        }),
        None => Err(EnergyError::NoMapping {
            layer: w.name.clone(),
            dataflow: dataflow.to_string(),
            hardware: hw.name.clone(),
            reason: last_reason,
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn search_pass(
    unit: &PassUnit,
    hw: &Hardware,
    dataflow: Dataflow,
    objective: Objective,
    weights: &CostWeights,
    macs: f64,
    stats: &mut SearchStats,
    best: &mut Option<((f64, f64), Mapping, Accesses)>,
) -> Option<String> {
    let loops = unit.loops;
    let rf_divs: [Vec<u64>; 3] = Dim::ALL.map(|d| {
        let d = d as usize;
        if dataflow.uses_rf() && unit.rf_blockable[d] {
            divisors(loops[d])
        } else {
            vec![1]
        }
    });
    let mut blocking = Blocking {
        factors: [[1; 3]; 3],
        order: [Dim::ALL; 2],
    };
    let mut reason = None;
    if !hw.rf.fits(blocking.rf_need(unit)) {
        return Some(format!(
            "one pass needs {} RF words per PE",
            blocking.rf_need(unit).iter().sum::<f64>()
        ));
    }
    let mac_energy = macs * weights.mac;
    let [rf_c, rf_m, rf_n] = &rf_divs;
    for &rc in rf_c {
        for &rm in rf_m {
            for &rn in rf_n {
                blocking.set_factors(Level::Rf, [rc, rm, rn]);
                if !hw.rf.fits(blocking.rf_need(unit)) {
                    // Footprints only grow with the innermost factor.
                    break;
                }
                let [c, m, n] = loops;
                let rest = [c / rc, m / rm, n / rn];
                let [buf_c, buf_m, buf_n] = rest.map(divisors);
                for &bc in &buf_c {
                    for &bm in &buf_m {
                        for &bn in &buf_n {
                            blocking.set_factors(Level::Buffer, [bc, bm, bn]);
                            let [c, m, n] = rest;
                            blocking.set_factors(Level::Dram, [c / bc, m / bm, n / bn]);
                            let need = blocking.buffer_need(unit);
                            if need > hw.buffer_words as f64 {
                                reason = Some(format!("buffer needs {need} words"));
                                break;
                            }
                            evaluate_orders(
                                unit,
                                &mut blocking,
                                objective,
                                weights,
                                macs,
                                mac_energy,
                                stats,
                                best,
                            );
                        }
                    }
                }
            }
        }
    }
    if best.is_none() {
        reason.or(Some("RF or buffer too small".into()))
    } else {
        None
    }
}

/// Scores every loop order of one blocking. The orders separate: the DRAM-level order sets
/// the DRAM fetches (and the buffer fetches of data with no non-trivial loop at the buffer
/// level, which inherit them), the buffer-level order sets the other buffer and array
/// fetches, and cycles do not depend on the buffer-level order. So the best buffer-level
/// order is found once, and each DRAM-level order is scored with it: exact, and 6 + 6
/// evaluations instead of 36.
#[allow(clippy::too_many_arguments)]
fn evaluate_orders(
    unit: &PassUnit,
    blocking: &mut Blocking,
    objective: Objective,
    weights: &CostWeights,
    macs: f64,
    mac_energy: f64,
    stats: &mut SearchStats,
    best: &mut Option<((f64, f64), Mapping, Accesses)>,
) {
    let compute_cycles = unit.cycles * blocking.passes() as f64;
    let orders0 = distinct_orders(blocking.factors_at(Level::Dram));
    let buffer_factors = blocking.factors_at(Level::Buffer);
    let orders1 = distinct_orders(buffer_factors);
    stats.evaluated += (orders0.len() * orders1.len()) as u64;
    // Which tensors have a non-trivial indexing loop at the buffer level (own fetches).
    // Streamed data cost the same under every order (see `mapping::streamed`).
    let own = PerTensor::from_fn(|t| {
        !streamed(unit, t)
            && Dim::ALL
                .into_iter()
                .any(|d| d.indexes(t) && buffer_factors[d as usize] > 1)
    });
    // (buffer, array) energy of one buffer-level fetch of each tensor's whole pass data.
    let per_fetch = PerTensor::from_fn(|t| {
        let units = relevant_product(t, unit.loops);
        (
            units * unit.buffer_reads[t] * weights.access.buffer[t],
            units * unit.array_reads[t] * weights.access.array[t],
        )
    });
    // A psum fetched `f` times is read and written: `2f - 1` buffer accesses.
    let buffer_term = |t: Tensor, f: f64| if t == Tensor::Psum { 2.0 * f - 1.0 } else { f };
    let mut best_o1 = orders1[0];
    let mut best_o1_energy = f64::INFINITY;
    for &o1 in orders1 {
        blocking.set_order(Level::Buffer, o1);
        let e: f64 = Tensor::ALL
            .into_iter()
            .filter(|&t| own[t])
            .map(|t| {
                let f = blocking.fetches(Level::Buffer, t, 1.0);
                per_fetch[t].0 * buffer_term(t, f) + per_fetch[t].1 * f
            })
            .sum();
        if e < best_o1_energy {
            best_o1_energy = e;
            best_o1 = o1;
        }
    }
    blocking.set_order(Level::Buffer, best_o1);
    for &o0 in orders0 {
        blocking.set_order(Level::Dram, o0);
        let acc = accesses_from_fetches(unit, blocking.all_fetches(), macs);
        let energy = mac_energy + weights.data_energy(&acc);
        let cycles = weights.cycles_with(compute_cycles, &acc);
        let s = score(objective, energy, cycles);
        if best.as_ref().map_or(true, |(b, _, _)| s < *b) {
            *best = Some((
                s,
                Mapping {
                    unit: unit.clone(),
                    blocking: *blocking,
                },
                acc,
            ));
        }
    }
}

/// An energy no blocking of `unit` can go below: every datum crosses every level once.
fn lower_bound(unit: &PassUnit, weights: &CostWeights, macs: f64) -> f64 {
    let acc = accesses_from_fetches(unit, Fetches::default(), macs);
    macs * weights.mac + weights.data_energy(&acc)
}

/// Maps and costs one layer.
pub fn evaluate_layer(
    w: &Workload,
    hw: &Hardware,
    dataflow: Dataflow,
    objective: Objective,
) -> Result<(LayerCost, SearchStats), EnergyError> {
    let best = best_mapping(w, hw, dataflow, objective)?;
    Ok((layer_cost(w, hw, &best.mapping, &best.accesses), best.stats))
}

/// Maps and costs every layer, in parallel; results keep the layers' order.
pub fn evaluate_layers(
    layers: &[Workload],
    hw: &Hardware,
    dataflow: Dataflow,
    objective: Objective,
) -> Result<Vec<(LayerCost, SearchStats)>, EnergyError> {
    layers
        .par_iter()
        .map(|w| evaluate_layer(w, hw, dataflow, objective))
        .collect()
}
