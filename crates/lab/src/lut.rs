//! Latency lookup tables measured with joule's inference engine on this CPU: building one
//! over a model's channel grid, predicting a network from it, and measuring the network to
//! check the prediction.

use crate::error::LabError;
use crate::model::Model;
pub use joule_compress::lut::load_average;
use joule_compress::lut::{
    self, ChannelGrid, LatencyTable, LayerTimer, MeasureConfig, Measurement, Prediction, WallClock,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How measurements are taken.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// Batch size of the measured inference.
    pub batch: usize,
    /// Threads of the inference engine.
    pub threads: usize,
    pub measure: MeasureConfig,
}

impl Timing {
    /// Checks the settings, naming the field.
    pub fn validate(&self) -> Result<(), LabError> {
        let m = &self.measure;
        if self.batch == 0 || self.batch > 4096 {
            return Err(LabError::config("batch", "must be between 1 and 4096"));
        }
        if self.threads == 0 || self.threads > 1024 {
            return Err(LabError::config("threads", "must be between 1 and 1024"));
        }
        if m.sweeps == 0 || m.round == 0 || m.max_runs == 0 {
            return Err(LabError::config(
                "sweeps",
                "sweeps, runs per round and the most runs must be at least 1",
            ));
        }
        if !(m.tolerance.is_finite() && m.tolerance > 0.0) {
            return Err(LabError::config("tolerance", "must be a positive number"));
        }
        if !(m.gate_tolerance.is_finite() && m.gate_tolerance >= 0.0) {
            return Err(LabError::config(
                "gate_tolerance",
                "must be a non-negative number",
            ));
        }
        Ok(())
    }

    /// A wall clock on a pool of `threads`.
    pub fn clock(&self) -> Result<WallClock, LabError> {
        self.validate()?;
        Ok(WallClock::new(self.threads)?)
    }
}

/// How long measurements waited for the machine's normal speed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    pub waited_ms: f64,
    /// Sweeps that ran without reaching the normal speed.
    pub gave_up: usize,
    /// The calibration layer's reference time.
    pub reference_ms: Option<f64>,
}

impl GateReport {
    pub fn of(clock: &WallClock) -> GateReport {
        let (waited_ms, gave_up) = clock.waited();
        GateReport {
            waited_ms,
            gave_up,
            reference_ms: LayerTimer::reference_ms(clock),
        }
    }
}

/// Builds the table of `graph` over an even grid of `levels` filter counts per prunable
/// layer; `progress(done, total)` after each entry.
pub fn build_table(
    graph: &joule_model::Graph,
    levels: usize,
    timing: &Timing,
    clock: &WallClock,
    progress: impl FnMut(usize, usize),
) -> Result<LatencyTable, LabError> {
    timing.validate()?;
    let grid = ChannelGrid::even(graph, levels)?;
    let load = lut::load_average();
    if timing.measure.gate_tolerance > 0.0 {
        clock.find_reference(1000)?;
    }
    let mut table = lut::build(graph, &grid, timing.batch, clock, &timing.measure, progress)?;
    table.threads = timing.threads;
    table.load_average = load;
    Ok(table)
}

/// `joule lut build`: the table of a model, saved to `out` (JSON, or CSV by extension).
pub fn build(
    model: &str,
    levels: usize,
    timing: &Timing,
    out: &Path,
    progress: impl FnMut(usize, usize),
) -> Result<(LatencyTable, GateReport), LabError> {
    let network = Model::load(model)?.network(1)?;
    let clock = timing.clock()?;
    let table = build_table(network.graph(), levels, timing, &clock, progress)?;
    table.save(out)?;
    Ok((table, GateReport::of(&clock)))
}

/// A prediction, and with `measure` the measured network beside it.
pub struct Checked {
    pub prediction: Prediction,
    pub measured: Option<(Measurement, GateReport)>,
}

/// `joule lut predict`: a model's latency from a table, optionally measured.
pub fn predict(model: &str, table: &Path, measure: Option<&Timing>) -> Result<Checked, LabError> {
    let network = Model::load(model)?.network(1)?;
    let table = LatencyTable::load(table)?;
    let prediction = table.predict(network.graph())?;
    let measured = match measure {
        Some(timing) => {
            let clock = timing.clock()?;
            clock.use_reference(table.calibration_ms);
            let m = lut::measure_network(&network, table.batch, &clock, &timing.measure)?;
            Some((m, GateReport::of(&clock)))
        }
        None => None,
    };
    Ok(Checked {
        prediction,
        measured,
    })
}
