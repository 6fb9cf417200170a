//! NetAdapt (Yang et al., ECCV 2018): adapt a trained network to resource budgets by
//! removing filters one layer per iteration, guided by measured latency (a [`crate::lut`]
//! table), energy (the energy engine), MACs or weights, one or several budgets at once.
//!
//! * [`budget`]: resources, budgets (`latency=0.5x`, `macs=200000`), the schedule
//!   `target = current - r0 * original * decay^i` and the [`Estimator`];
//! * [`plan`]: NetAdapt as ask/tell ([`Planner`]): every iteration's proposals (per layer,
//!   the filter count that meets the constraint, with its estimated resources), told their
//!   accuracies, the pick, the family and the history; one implementation behind `joule
//!   adapt` and the Python package's PyTorch/Ray loop;
//! * [`search`]: the pieces (filter count from the estimator, filters by L2 norm, surgery,
//!   joule's own short-term fine-tuning and holdout accuracy, in parallel, the pick);
//! * [`baseline`]: the uniform width-multiplier baseline matched to the final network;
//! * [`run`]: the driver: every iteration's network kept (checkpoint + ONNX), `state.json`
//!   after every iteration for `--resume`, long-term fine-tuning, `summary.json`.

pub mod baseline;
pub mod budget;
pub mod plan;
pub mod run;
pub mod search;

pub use baseline::BaselineRecord;
pub use budget::{Budget, Estimator, Limit, Resource, Resources};
pub use plan::{IterationLog, Planner, Proposal};
pub use run::{adapt, Adaptation, Event, Inputs, Record, State, Status, Step};
pub use search::Selection;

use serde::{Deserialize, Serialize};

/// Settings of an adaptation (stored in `state.json`; a resumed run must match).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptConfig {
    /// Labels for `summary.json`.
    pub model: String,
    pub data: String,
    pub budgets: Vec<Budget>,
    /// Initial reduction per iteration, as a fraction of the original resource.
    pub initial_reduction: f64,
    /// Multiplies the reduction every iteration.
    pub decay: f64,
    pub max_iterations: usize,
    /// Filter counts per layer in the channel grid ([`crate::lut::ChannelGrid::even`]).
    pub levels: usize,
    /// Mini-batches of short-term fine-tuning per candidate.
    pub short_term_batches: usize,
    /// Epochs of long-term fine-tuning of the final network.
    pub long_term_epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    pub selection: Selection,
    pub seed: u64,
    /// Also build, fine-tune and record the uniform width-multiplier baseline
    /// ([`baseline`]) matched to the final network.
    #[serde(default)]
    pub baseline: bool,
    /// With `baseline`: also fine-tune the uniform network of every width multiplier (the
    /// baseline's accuracy-latency curve, to compare at equal latency).
    #[serde(default)]
    pub baseline_curve: bool,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        AdaptConfig {
            model: String::new(),
            data: String::new(),
            budgets: Vec::new(),
            initial_reduction: 0.1,
            decay: 0.96,
            max_iterations: 50,
            levels: 8,
            short_term_batches: 20,
            long_term_epochs: 1,
            batch_size: 64,
            learning_rate: 0.01,
            selection: Selection::Accuracy,
            seed: 1,
            baseline: false,
            baseline_curve: false,
        }
    }
}
