//! Latency lookup tables measured with joule's inference engine on this CPU: building one
//! over a model's channel grid, predicting a network from it, and measuring the network to
//! check the prediction.

use crate::error::LabError;
use crate::model::Model;
pub use joule_compress::lut::load_average;
pub use joule_compress::lut::probes::MANIFEST;
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
    /// Median calibration time at the gates since the clock's states were last taken (the
    /// machine's state during the measurement).
    #[serde(default)]
    pub state_ms: Option<f64>,
}

impl GateReport {
    pub fn of(clock: &WallClock) -> GateReport {
        let (waited_ms, gave_up) = clock.waited();
        GateReport {
            waited_ms,
            gave_up,
            reference_ms: LayerTimer::reference_ms(clock),
            state_ms: clock.take_states(),
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
    let before = lut::machine_state();
    if timing.measure.gate_tolerance > 0.0 {
        clock.find_reference(1000)?;
    }
    clock.take_states();
    let mut table = lut::build(graph, &grid, timing.batch, clock, &timing.measure, progress)?;
    table.threads = timing.threads;
    table.load_average = load;
    table.state_ms = clock.take_states();
    table.machine = Some(serde_json::json!({"before": before, "after": lut::machine_state()}));
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
    /// The machine's state while the table was measured ([`LatencyTable::state_ms`]).
    pub table_state_ms: Option<f64>,
    /// With `measure`: the network's own steps re-timed right after it, over their table
    /// entries ([`lut::drift`]).
    pub drift: Option<f64>,
}

/// A table measured by another runtime cannot check its networks with joule's engine.
pub fn require_engine_table(table: &LatencyTable, path: &Path) -> Result<(), LabError> {
    match &table.runtime {
        Some(runtime) => Err(LabError::config(
            "measure",
            format!(
                "{} was measured with {runtime}, not joule's engine: measure the networks with that runtime's runner (scripts/lut-ort.py networks) and compare with `joule lut check`",
                path.display()
            ),
        )),
        None => Ok(()),
    }
}

/// `joule lut predict`: a model's latency from a table, optionally measured.
pub fn predict(model: &str, table: &Path, measure: Option<&Timing>) -> Result<Checked, LabError> {
    let network = Model::load(model)?.network(1)?;
    let path = table;
    let table = LatencyTable::load(path)?;
    let prediction = table.predict(network.graph())?;
    let mut drift = None;
    let measured = match measure {
        Some(timing) => {
            require_engine_table(&table, path)?;
            let clock = timing.clock()?;
            clock.use_reference(table.calibration_ms);
            let m = lut::measure_network(&network, table.batch, &clock, &timing.measure)?;
            let gate = GateReport::of(&clock);
            drift = lut::drift(network.graph(), &table, &clock, &timing.measure)?;
            Some((m, gate))
        }
        None => None,
    };
    Ok(Checked {
        prediction,
        measured,
        table_state_ms: table.state_ms,
        drift,
    })
}

/// `joule lut probes`: a model's channel grid written as ONNX probes into `dir`.
pub fn emit_probes(
    model: &str,
    levels: usize,
    batch: usize,
    dir: &Path,
) -> Result<lut::probes::Manifest, LabError> {
    if batch == 0 || batch > 4096 {
        return Err(LabError::config("batch", "must be between 1 and 4096"));
    }
    let network = Model::load(model)?.network(1)?;
    let grid = ChannelGrid::even(network.graph(), levels)?;
    Ok(lut::probes::emit(network.graph(), &grid, batch, dir)?)
}

/// `joule lut import`: a probe folder and a runner's timings of it as a table in `out`.
pub fn import_timings(probes: &Path, timings: &Path, out: &Path) -> Result<LatencyTable, LabError> {
    let table = lut::probes::import(probes, timings)?;
    table.save(out)?;
    Ok(table)
}

/// One network of `joule lut check`: predicted by the table, measured by the runtime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRow {
    pub file: std::path::PathBuf,
    pub predicted_ms: f64,
    pub measured_ms: f64,
    pub spread_ms: f64,
    /// `(predicted - measured) / measured`.
    pub error: f64,
    /// The machine's state (median gate calibration) while the network was measured.
    pub state_ms: f64,
    /// The table's own probes' slowdown while the network was measured (now / table), when
    /// the runner took it.
    pub drift: Option<f64>,
    /// The error of the prediction scaled to the state the network was measured in:
    /// `predicted * drift` (else `predicted * state / table_state`).
    pub normalised_error: f64,
}

/// The outcome of `joule lut check`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub runtime: Option<String>,
    pub table_state_ms: Option<f64>,
    pub rows: Vec<CheckRow>,
    pub within_10_percent: usize,
    pub median_abs_error: f64,
    pub max_abs_error: f64,
    pub normalised_within_10_percent: usize,
    pub normalised_median_abs_error: f64,
    pub normalised_max_abs_error: f64,
    /// Networks measured in a state more than 10% away from the table's (by drift, else by
    /// the calibration).
    pub state_flagged: usize,
}

/// `joule lut check`: every network of a runner's network timings predicted by `table`
/// (each ONNX file imported and predicted; a relative path is read from where the timings
/// file lies when it is not found from the working directory).
pub fn check(table: &Path, timings: &Path, json: Option<&Path>) -> Result<CheckReport, LabError> {
    let t = LatencyTable::load(table)?;
    let n = lut::probes::read_network_timings(timings)?;
    let base = timings.parent().unwrap_or(Path::new("."));
    let mut rows = Vec::with_capacity(n.networks.len());
    for net in &n.networks {
        let file = if net.file.is_relative() && !net.file.exists() {
            base.join(&net.file)
        } else {
            net.file.clone()
        };
        let model = Model::load(&file.to_string_lossy())
            .map_err(|e| e.context(format!("{}: networks", timings.display())))?;
        let network = model.network(1)?;
        let prediction = t.predict(network.graph())?;
        let predicted = prediction.total_ms;
        let measured = net.median_ms;
        let scale = net
            .drift
            .unwrap_or_else(|| t.state_ms.map_or(1.0, |s| net.state_ms / s));
        rows.push(CheckRow {
            file: net.file.clone(),
            predicted_ms: predicted,
            measured_ms: measured,
            spread_ms: net.spread_ms,
            error: (predicted - measured) / measured,
            state_ms: net.state_ms,
            drift: net.drift,
            normalised_error: (predicted * scale - measured) / measured,
        });
    }
    let summary = |f: &dyn Fn(&CheckRow) -> f64| {
        let abs: Vec<f64> = rows.iter().map(|r| f(r).abs()).collect();
        (
            abs.iter().filter(|e| **e <= 0.1).count(),
            lut::median(&abs),
            abs.iter().copied().fold(0.0, f64::max),
        )
    };
    let (within, median_abs, max_abs) = summary(&|r| r.error);
    let (n_within, n_median, n_max) = summary(&|r| r.normalised_error);
    let state_flagged = rows
        .iter()
        .filter(|r| {
            let ratio = r
                .drift
                .unwrap_or_else(|| t.state_ms.map_or(1.0, |s| r.state_ms / s));
            (ratio - 1.0).abs() > 0.1
        })
        .count();
    let report = CheckReport {
        runtime: t.runtime.clone(),
        table_state_ms: t.state_ms,
        rows,
        within_10_percent: within,
        median_abs_error: median_abs,
        max_abs_error: max_abs,
        normalised_within_10_percent: n_within,
        normalised_median_abs_error: n_median,
        normalised_max_abs_error: n_max,
        state_flagged,
    };
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).expect("numbers and strings serialise");
        joule_model::fs::write_atomic(path, text.as_bytes()).map_err(|source| LabError::Io {
            path: path.into(),
            source,
        })?;
    }
    Ok(report)
}
