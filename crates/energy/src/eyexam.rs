//! Eyexam: where a layer's throughput goes, one architectural constraint at a time.
//!
//! After Chen, Yang, Emer and Sze's Eyexam ("Understanding the limitations of existing
//! energy-efficient design approaches for deep neural networks", SysML 2018; tutorial
//! slides "Eyexam: tightens the roofline model"): start from the peak of the PE array and
//! tighten the bound on MACs per cycle step by step, so each step's loss is the cost of one
//! constraint. The steps ([`Step`]), each a bound on the previous one:
//!
//! 1. **peak**: every PE does a MAC every cycle (bit-serial PEs: at the ifmap width);
//! 2. **dataflow**: the dataflow spreads only some loop dims over PEs (RS: R, P and
//!    replicas over C, M; WS: C, M, R, S; OS-A: P, Q, N; OS-B: Q, M, N; OS-C: M; NLR: C, M),
//!    and groups run one after another, so at most the product of those dims of one group
//!    is busy;
//! 3. **array shape**: the dims the dataflow ties to a physical axis are cut at its length
//!    (RS: R to the rows; OS-A: P to the rows, Q to the columns; OS-B: Q to the columns;
//!    NLR: C to the rows, M to the columns);
//! 4. **fit**: whole passes only: folds, replicas and the partial last pass of each loop,
//!    taken from the fastest legal spatial pass of the mapper ([`crate::dataflow::passes`]);
//! 5. **storage**: the fastest pass whose data fit the RF and buffer (the smallest blocking
//!    of a pass needs the least storage, so that is the check);
//! 6. **mapping**: the pass the mapper chose for its objective (`--objective cycles` makes
//!    this step free up to ties);
//! 7. **bandwidth**: the chosen mapping's DRAM, buffer and NoC traffic over each level's
//!    bandwidth (`dram.bandwidth`, `buffer.bandwidth`, `noc.bandwidth`), when that takes
//!    longer than the compute;
//! 8. **sparsity**: the zero MACs the hardware does not skip in time. Throughput counts
//!    *non-zero* MACs (`MACs x ifmap density x weight density`), so steps 1–7 are what a
//!    machine that skips every zero would reach; a machine that skips none (Eyeriss v1's
//!    clock gating saves energy, not cycles) spends a cycle on each zero MAC too, one with
//!    `skip_zeros.cycles` only on the zeros of the operands it does not skip.
//!
//! Each step's cycles are the layer's non-zero MACs over its bound; step 8's cycles are
//! exactly the cycles the energy report ([`crate::network::evaluate`]) gives for the same
//! dataflow and objective. A dense layer has as many non-zero MACs as MACs, so there the
//! cycles of steps 1–7 are plain `MACs / bound`.
//!
//! ```
//! use joule_energy::{eyexam, spec, workload, Dataflow, Objective};
//! use joule_model::zoo;
//!
//! let hw = spec::preset("eyeriss").unwrap();
//! let layers = workload::from_graph(&zoo::build("alexnet").unwrap(), None, 1).unwrap();
//! let exam = eyexam::examine("alexnet", &layers, &hw, Dataflow::Rs, Objective::Energy).unwrap();
//! let conv1 = &exam.layers[0];
//! assert_eq!(conv1.steps[0].macs_per_cycle, 168.0);
//! // Every step bounds the next.
//! assert!(conv1.steps.windows(2).all(|s| s[1].macs_per_cycle <= s[0].macs_per_cycle));
//! ```

use crate::access::PerLevel;
use crate::cost::{layer_cost, CostWeights};
use crate::dataflow::{passes, Dataflow, PassUnit};
use crate::mapping::{Blocking, Fit};
use crate::search::{best_mapping, Objective};
use crate::spec::{CostModelKind, Hardware};
use crate::workload::Workload;
use crate::EnergyError;
use joule_model::LayerClass;
use rayon::prelude::*;
use serde::Serialize;

/// The constraints, in the order Eyexam applies them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Peak,
    Dataflow,
    ArrayShape,
    Fit,
    Storage,
    Mapping,
    Bandwidth,
    Sparsity,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Peak,
        Step::Dataflow,
        Step::ArrayShape,
        Step::Fit,
        Step::Storage,
        Step::Mapping,
        Step::Bandwidth,
        Step::Sparsity,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Peak => "peak",
            Step::Dataflow => "dataflow",
            Step::ArrayShape => "array shape",
            Step::Fit => "fit",
            Step::Storage => "storage",
            Step::Mapping => "mapping",
            Step::Bandwidth => "bandwidth",
            Step::Sparsity => "sparsity",
        }
    }
}

/// The bound after one step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Bound {
    pub step: Step,
    /// Non-zero MACs per cycle.
    pub macs_per_cycle: f64,
    /// Cycles at that rate (the whole layer: batch and groups).
    pub cycles: f64,
}

/// One layer's examination.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerExam {
    pub name: String,
    pub class: LayerClass,
    pub macs: u64,
    /// MACs with both operands non-zero: `macs x ifmap density x weight density`.
    pub nonzero_macs: f64,
    pub groups: usize,
    /// The bound after each step, in [`Step::ALL`] order.
    pub steps: Vec<Bound>,
    /// Cycles each level needs at its bandwidth for the chosen mapping (0: unlimited).
    pub transfer_cycles: PerLevel<f64>,
    /// The chosen mapping, described.
    pub mapping: String,
}

impl LayerExam {
    /// The bound after `step`.
    pub fn bound(&self, step: Step) -> &Bound {
        &self.steps[step as usize]
    }
}

/// A whole network's examination.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Exam {
    pub model: String,
    pub hardware: String,
    pub dataflow: Dataflow,
    pub batch: usize,
    pub objective: Objective,
    pub pes: u64,
    pub layers: Vec<LayerExam>,
    /// Per step: all non-zero MACs over the sum of the layers' cycles.
    pub total: Vec<Bound>,
}

/// The loop-dim products a dataflow can spread over PEs (one group), unconstrained and cut
/// at the array's axes: `(dataflow, array shape)` of the module docs, in PEs.
fn spatial_limits(w: &Workload, hw: &Hardware, dataflow: Dataflow) -> (f64, f64) {
    let t = &w.nest;
    let [n, m, c, p, q, r, s] = [t.n, t.m, t.c, t.p, t.q, t.r, t.s].map(|v| v as f64);
    let (rows, cols) = (hw.array.rows as f64, hw.array.cols as f64);
    let pes = hw.array.pes() as f64;
    match dataflow {
        // A logical R x P set, replicated over channels and filters; R runs down the rows.
        Dataflow::Rs => (r * p * c * m, r.min(rows) * p * c * m),
        // The R x S taps of r channels x t filters, packed over the PEs (no axis).
        Dataflow::Ws | Dataflow::WsIsca16 => (c * m * r * s, c * m * r * s),
        // A P x Q ofmap tile (P on rows, Q on columns) per image.
        Dataflow::OsA => (p * q * n, p.min(rows) * q.min(cols) * n),
        // Q pixels of a row on the columns, x filters x images.
        Dataflow::OsB => (q * m * n, q.min(cols) * m * n),
        Dataflow::OsC => (m, m),
        // Channels on rows, filters on columns.
        Dataflow::Nlr => (c * m, c.min(rows) * m.min(cols)),
        Dataflow::Os => {
            let variants =
                [Dataflow::OsA, Dataflow::OsB, Dataflow::OsC].map(|v| spatial_limits(w, hw, v));
            (
                variants.iter().map(|v| v.0).fold(0.0, f64::max),
                variants.iter().map(|v| v.1.min(pes)).fold(0.0, f64::max),
            )
        }
    }
}

/// Compute cycles of one group under a pass (every blocking of it takes as many).
fn pass_cycles(unit: &PassUnit) -> f64 {
    unit.cycles * unit.loops.iter().product::<u64>() as f64
}

/// Whether some blocking of `unit` fits: the one with every RF and buffer factor 1 needs
/// the least storage (footprints only grow with the factors).
fn fits(unit: &PassUnit, hw: &Hardware) -> bool {
    let smallest = Blocking {
        factors: [unit.loops, [1; 3], [1; 3]],
        order: [crate::dataflow::Dim::ALL; 2],
    };
    smallest.fit(unit, hw) == Fit::Fits
}

/// Examines one layer on a digital dataflow machine.
pub fn examine_layer(
    w: &Workload,
    hw: &Hardware,
    dataflow: Dataflow,
    objective: Objective,
) -> Result<LayerExam, EnergyError> {
    if hw.model != CostModelKind::Dataflow {
        return Err(EnergyError::Spec {
            file: hw.name.clone(),
            field: "model".into(),
            message: "Eyexam needs a machine with the dataflow model (not weight_fetch)".into(),
        });
    }
    let best = best_mapping(w, hw, dataflow, objective)?;
    let cost = layer_cost(w, hw, &best.mapping, &best.accesses);
    let weights = CostWeights::new(hw, w);
    let groups = w.nest.groups.max(1) as f64;
    let macs = w.nest.macs() as f64;
    let group_macs = macs / groups;
    let nonzero = macs * w.density.ifmap * w.density.weight;
    // A cycle of compute at full ifmap width takes `compute_scale` cycles (bit-serial PEs).
    let scale = weights.compute_scale;
    let pes = hw.array.pes() as f64;
    // Busy PEs per cycle after steps 1-6 (dense MACs of one group per compute cycle).
    let (par_dataflow, par_shape) = spatial_limits(w, hw, dataflow);
    let units = passes(w, hw, dataflow);
    let fastest = units.iter().map(pass_cycles).fold(f64::INFINITY, f64::min);
    let fastest_fitting = units
        .iter()
        .filter(|u| fits(u, hw))
        .map(pass_cycles)
        .fold(f64::INFINITY, f64::min);
    let chosen = best.mapping.compute_cycles();
    let mut busy = [pes, par_dataflow, par_shape, group_macs / fastest]
        .into_iter()
        .chain([group_macs / fastest_fitting, group_macs / chosen])
        .collect::<Vec<f64>>();
    // Each step can only tighten the previous one; `tests/eyexam.rs` checks that the
    // pass-derived steps never exceed the analytic ones on the zoo, so this only rounds.
    for i in 1..busy.len() {
        busy[i] = busy[i].min(busy[i - 1]);
    }
    let mut steps: Vec<Bound> = busy
        .iter()
        .zip(Step::ALL)
        .map(|(&b, step)| {
            let rate = b / scale;
            Bound {
                step,
                macs_per_cycle: rate,
                cycles: nonzero / rate,
            }
        })
        .collect();
    let transfer = weights.transfer_cycles(&cost.accesses);
    let after_mapping = steps[Step::Mapping as usize].cycles;
    let bandwidth = after_mapping
        .max(transfer.dram)
        .max(transfer.buffer)
        .max(transfer.array);
    for (step, cycles) in [(Step::Bandwidth, bandwidth), (Step::Sparsity, cost.cycles)] {
        steps.push(Bound {
            step,
            macs_per_cycle: if cycles > 0.0 { nonzero / cycles } else { 0.0 },
            cycles,
        });
    }
    Ok(LayerExam {
        name: w.name.clone(),
        class: w.class,
        macs: w.nest.macs(),
        nonzero_macs: nonzero,
        groups: w.nest.groups,
        steps,
        transfer_cycles: transfer,
        mapping: cost.mapping,
    })
}

/// Examines every layer (in parallel) and sums the cycles per step.
pub fn examine(
    model: &str,
    layers: &[Workload],
    hw: &Hardware,
    dataflow: Dataflow,
    objective: Objective,
) -> Result<Exam, EnergyError> {
    for w in layers {
        w.validate(model)?;
    }
    let exams: Vec<LayerExam> = layers
        .par_iter()
        .map(|w| examine_layer(w, hw, dataflow, objective))
        .collect::<Result<_, _>>()?;
    let nonzero: f64 = exams.iter().map(|l| l.nonzero_macs).sum();
    let total = Step::ALL
        .iter()
        .enumerate()
        .map(|(i, &step)| {
            let cycles: f64 = exams.iter().map(|l| l.steps[i].cycles).sum();
            Bound {
                step,
                macs_per_cycle: if cycles > 0.0 { nonzero / cycles } else { 0.0 },
                cycles,
            }
        })
        .collect();
    Ok(Exam {
        model: model.to_string(),
        hardware: hw.name.clone(),
        dataflow,
        batch: layers.first().map_or(0, |w| w.nest.n),
        objective,
        pes: hw.array.pes(),
        layers: exams,
        total,
    })
}
