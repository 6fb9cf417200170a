//! The typed results handed to Python: thin read-only views over the library's own result
//! types (shared, not copied, between a report and its layers). `to_dict()` is the JSON
//! the CLI prints with `--json`, parsed; `to_pandas()` one row per layer or entry.

use joule_lab::estimate::Entry;
use joule_lab::{Machine, NetworkCost, NetworkStats};
use pyo3::exceptions::{PyImportError, PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;
use serde::Serialize;
use std::sync::Arc;

/// `value` as Python data, through the JSON the CLI prints (so the two agree exactly).
pub(crate) fn to_dict<'py, T: Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| PyValueError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// A value's serde name (`rs`, `energy`, `conv`): the spelling of the JSON output.
fn tag<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// A pandas DataFrame of `rows`, or an ImportError that says how to get pandas.
fn data_frame<'py>(py: Python<'py>, rows: Vec<Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
    let pandas = py.import("pandas").map_err(|_| {
        PyImportError::new_err(
            "to_pandas() needs pandas, which is not installed (pip install pandas)",
        )
    })?;
    pandas.call_method1("DataFrame", (rows,))
}

/// A row for a DataFrame: `(column, value)` pairs in order.
fn row<'py>(py: Python<'py>, cells: &[(&str, Bound<'py, PyAny>)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in cells {
        d.set_item(*k, v)?;
    }
    Ok(d)
}

fn cell<'py, T: IntoPyObjectExt<'py>>(py: Python<'py>, v: T) -> PyResult<Bound<'py, PyAny>> {
    v.into_bound_py_any(py)
}

/// Energy by memory level, in the report's unit: the MAC itself, then the RF, the array
/// (NoC), the global buffer and DRAM; `total` is their sum.
#[pyclass(frozen, get_all, module = "joule")]
#[derive(Clone, Serialize)]
pub struct LevelEnergy {
    pub mac: f64,
    pub rf: f64,
    pub array: f64,
    pub buffer: f64,
    pub dram: f64,
    pub total: f64,
}

#[pymethods]
impl LevelEnergy {
    /// `{"mac": ..., "rf": ..., "array": ..., "buffer": ..., "dram": ..., "total": ...}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, self)
    }

    fn __repr__(&self) -> String {
        format!(
            "LevelEnergy(mac={}, rf={}, array={}, buffer={}, dram={}, total={})",
            self.mac, self.rf, self.array, self.buffer, self.dram, self.total
        )
    }
}

/// Energy by data type, in the report's unit: moving ifmaps, filters and psums, and
/// computing (the MACs).
#[pyclass(frozen, get_all, module = "joule")]
#[derive(Clone, Serialize)]
pub struct TypeEnergy {
    pub ifmap: f64,
    pub filter: f64,
    pub psum: f64,
    pub compute: f64,
}

#[pymethods]
impl TypeEnergy {
    /// `{"ifmap": ..., "filter": ..., "psum": ..., "compute": ...}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, self)
    }

    fn __repr__(&self) -> String {
        format!(
            "TypeEnergy(ifmap={}, filter={}, psum={}, compute={})",
            self.ifmap, self.filter, self.psum, self.compute
        )
    }
}

macro_rules! level_energy {
    ($e:expr) => {
        LevelEnergy {
            mac: $e.mac,
            rf: $e.rf,
            array: $e.array,
            buffer: $e.buffer,
            dram: $e.dram,
            total: $e.total,
        }
    };
}

macro_rules! type_energy {
    ($e:expr) => {
        TypeEnergy {
            ifmap: $e.ifmap,
            filter: $e.filter,
            psum: $e.psum,
            compute: $e.compute,
        }
    };
}

/// The energy, cycles and traffic of a model on a machine, per layer and in total
/// (`joule.energy`). Energies are in `unit`: `pJ`, or `mac` (one MAC's energy) for
/// MAC-normalised machines such as `eyeriss`.
#[pyclass(frozen, module = "joule")]
pub struct EnergyReport {
    report: Arc<NetworkCost>,
}

impl EnergyReport {
    pub fn new(report: NetworkCost) -> EnergyReport {
        EnergyReport {
            report: Arc::new(report),
        }
    }
}

#[pymethods]
impl EnergyReport {
    /// The model as given (zoo name, path, or the name of in-memory ONNX).
    #[getter]
    fn model(&self) -> &str {
        &self.report.model
    }
    #[getter]
    fn hardware(&self) -> &str {
        &self.report.hardware
    }
    /// The dataflow evaluated (`rs`, `ws`, `os-a`, ...).
    #[getter]
    fn dataflow(&self) -> String {
        tag(&self.report.dataflow)
    }
    #[getter]
    fn batch(&self) -> usize {
        self.report.batch
    }
    /// What the mapper minimised: `energy`, `cycles` or `edp`.
    #[getter]
    fn objective(&self) -> String {
        tag(&self.report.objective)
    }
    /// The unit of every energy: `pJ` or `mac`.
    #[getter]
    fn unit(&self) -> &str {
        &self.report.unit
    }
    /// Cycles per microsecond: latency is `cycles / clock_mhz` microseconds.
    #[getter]
    fn clock_mhz(&self) -> f64 {
        self.report.clock_mhz
    }
    /// Total energy of the network, in `unit` (`to_dict()["total"]["energy"]["total"]`).
    #[getter]
    fn total(&self) -> f64 {
        self.report.total.energy.total
    }
    /// Total energy by memory level.
    #[getter]
    fn energy(&self) -> LevelEnergy {
        level_energy!(self.report.total.energy)
    }
    /// Total energy by data type.
    #[getter]
    fn energy_by_type(&self) -> TypeEnergy {
        type_energy!(self.report.total.energy_by_type)
    }
    #[getter]
    fn macs(&self) -> u64 {
        self.report.total.macs
    }
    #[getter]
    fn cycles(&self) -> f64 {
        self.report.total.cycles
    }
    /// Latency of one batch in microseconds (`cycles / clock_mhz`).
    #[getter]
    fn latency_us(&self) -> f64 {
        self.report.total.cycles / self.report.clock_mhz
    }
    #[getter]
    fn dram_bytes(&self) -> f64 {
        self.report.total.dram_bytes
    }
    /// Fraction of PE-cycles doing a MAC, over the network.
    #[getter]
    fn utilization(&self) -> f64 {
        self.report.total.utilization
    }
    /// The CONV and FC layers, in network order.
    #[getter]
    fn layers(&self) -> Vec<LayerEnergy> {
        (0..self.report.layers.len())
            .map(|index| LayerEnergy {
                report: Arc::clone(&self.report),
                index,
            })
            .collect()
    }
    /// The report as the JSON of `joule energy --json`, parsed.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &*self.report)
    }
    /// One row per layer: name, class, macs, total, the energy by level and by data type,
    /// cycles, utilization and dram_bytes. Needs pandas.
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows = self
            .layers()
            .iter()
            .map(|l| l.row(py))
            .collect::<PyResult<Vec<_>>>()?;
        data_frame(py, rows)
    }
    fn __len__(&self) -> usize {
        self.report.layers.len()
    }
    fn __repr__(&self) -> String {
        let r = &self.report;
        format!(
            "EnergyReport(model={:?}, hardware={:?}, dataflow={:?}, batch={}, total={} {}, macs={}, cycles={}, layers={})",
            r.model,
            r.hardware,
            tag(&r.dataflow),
            r.batch,
            r.total.energy.total,
            r.unit,
            r.total.macs,
            r.total.cycles,
            r.layers.len()
        )
    }
}

/// One CONV or FC layer of an [`EnergyReport`]; energies in the report's unit.
#[pyclass(frozen, module = "joule")]
pub struct LayerEnergy {
    report: Arc<NetworkCost>,
    index: usize,
}

impl LayerEnergy {
    fn cost(&self) -> &joule_lab::LayerCost {
        &self.report.layers[self.index].cost
    }

    fn row<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.cost();
        let (e, t) = (&c.energy, &c.energy_by_type);
        row(
            py,
            &[
                ("layer", cell(py, &c.name)?),
                ("class", cell(py, tag(&c.class))?),
                ("macs", cell(py, c.macs)?),
                ("total", cell(py, e.total)?),
                ("mac", cell(py, e.mac)?),
                ("rf", cell(py, e.rf)?),
                ("array", cell(py, e.array)?),
                ("buffer", cell(py, e.buffer)?),
                ("dram", cell(py, e.dram)?),
                ("ifmap", cell(py, t.ifmap)?),
                ("filter", cell(py, t.filter)?),
                ("psum", cell(py, t.psum)?),
                ("compute", cell(py, t.compute)?),
                ("cycles", cell(py, c.cycles)?),
                ("utilization", cell(py, c.utilization)?),
                ("dram_bytes", cell(py, c.dram_bytes)?),
            ],
        )
    }
}

#[pymethods]
impl LayerEnergy {
    #[getter]
    fn name(&self) -> &str {
        &self.cost().name
    }
    /// `conv` or `fc`.
    #[getter]
    fn class_(&self) -> String {
        tag(&self.cost().class)
    }
    #[getter]
    fn macs(&self) -> u64 {
        self.cost().macs
    }
    /// The layer's energy, in the report's unit.
    #[getter]
    fn total(&self) -> f64 {
        self.cost().energy.total
    }
    /// Energy by memory level: `mac`, `rf`, `array`, `buffer`, `dram` (and `total`).
    #[getter]
    fn energy(&self) -> LevelEnergy {
        level_energy!(self.cost().energy)
    }
    /// Energy by data type: `ifmap`, `filter`, `psum`, `compute`.
    #[getter]
    fn energy_by_type(&self) -> TypeEnergy {
        type_energy!(self.cost().energy_by_type)
    }
    #[getter]
    fn cycles(&self) -> f64 {
        self.cost().cycles
    }
    /// Fraction of PE-cycles doing a MAC.
    #[getter]
    fn utilization(&self) -> f64 {
        self.cost().utilization
    }
    #[getter]
    fn dram_bytes(&self) -> f64 {
        self.cost().dram_bytes
    }
    /// The chosen mapping, described.
    #[getter]
    fn mapping(&self) -> &str {
        &self.cost().mapping
    }
    /// The layer as in `joule energy --json` (`layers[i]`), parsed.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.report.layers[self.index])
    }
    fn __repr__(&self) -> String {
        let c = self.cost();
        format!(
            "LayerEnergy(name={:?}, class={:?}, macs={}, total={} {}, cycles={}, utilization={:.3})",
            c.name,
            tag(&c.class),
            c.macs,
            c.energy.total,
            self.report.unit,
            c.cycles,
            c.utilization
        )
    }
}

/// Weights, MACs and activations of a model, per layer and in total (`joule.stats`).
#[pyclass(frozen, module = "joule")]
pub struct Stats {
    stats: Arc<NetworkStats>,
}

impl Stats {
    pub fn new(stats: NetworkStats) -> Stats {
        Stats {
            stats: Arc::new(stats),
        }
    }
}

#[pymethods]
impl Stats {
    #[getter]
    fn model(&self) -> &str {
        &self.stats.model
    }
    /// `(N, C, H, W)`.
    #[getter]
    fn input_shape(&self) -> (usize, usize, usize, usize) {
        let [n, c, h, w] = self.stats.input_shape;
        (n, c, h, w)
    }
    /// CONV/FC filter weights (biases not included).
    #[getter]
    fn weights(&self) -> u64 {
        self.stats.total.weights
    }
    #[getter]
    fn biases(&self) -> u64 {
        self.stats.total.biases
    }
    /// Every learned value: weights, biases, batch-norm scale and shift.
    #[getter]
    fn parameters(&self) -> u64 {
        self.stats.total.parameters
    }
    #[getter]
    fn macs(&self) -> u64 {
        self.stats.total.macs
    }
    /// The output activations of every layer, summed.
    #[getter]
    fn activations(&self) -> u64 {
        self.stats.total.activations
    }
    /// Every layer (CONV, FC and the others), in network order.
    #[getter]
    fn layers(&self) -> Vec<LayerStats> {
        (0..self.stats.layers.len())
            .map(|index| LayerStats {
                stats: Arc::clone(&self.stats),
                index,
            })
            .collect()
    }
    /// The statistics as the JSON of `joule stats --json`, parsed.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &*self.stats)
    }
    /// One row per layer. Needs pandas.
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows = self
            .layers()
            .iter()
            .map(|l| l.row(py))
            .collect::<PyResult<Vec<_>>>()?;
        data_frame(py, rows)
    }
    fn __len__(&self) -> usize {
        self.stats.layers.len()
    }
    fn __repr__(&self) -> String {
        let s = &self.stats;
        let [n, c, h, w] = s.input_shape;
        format!(
            "Stats(model={:?}, input_shape=({n}, {c}, {h}, {w}), weights={}, macs={}, activations={}, layers={})",
            s.model,
            s.total.weights,
            s.total.macs,
            s.total.activations,
            s.layers.len()
        )
    }
}

/// One layer of [`Stats`].
#[pyclass(frozen, module = "joule")]
pub struct LayerStats {
    stats: Arc<NetworkStats>,
    index: usize,
}

impl LayerStats {
    fn layer(&self) -> &joule_lab::LayerStats {
        &self.stats.layers[self.index]
    }

    fn row<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let l = self.layer();
        row(
            py,
            &[
                ("layer", cell(py, &l.name)?),
                ("kind", cell(py, &l.kind)?),
                ("class", cell(py, tag(&l.class))?),
                ("output_shape", cell(py, l.output_shape)?),
                ("weights", cell(py, l.weights)?),
                ("biases", cell(py, l.biases)?),
                ("parameters", cell(py, l.parameters)?),
                ("macs", cell(py, l.macs)?),
                ("input_activations", cell(py, l.input_activations)?),
                ("output_activations", cell(py, l.output_activations)?),
            ],
        )
    }
}

#[pymethods]
impl LayerStats {
    #[getter]
    fn name(&self) -> &str {
        &self.layer().name
    }
    /// The operator (`conv`, `fc`, `relu`, `maxpool`, ...).
    #[getter]
    fn kind(&self) -> &str {
        &self.layer().kind
    }
    /// `conv`, `fc` or `other`.
    #[getter]
    fn class_(&self) -> String {
        tag(&self.layer().class)
    }
    /// `(N, C, H, W)` of the output.
    #[getter]
    fn output_shape(&self) -> (usize, usize, usize, usize) {
        let [n, c, h, w] = self.layer().output_shape;
        (n, c, h, w)
    }
    #[getter]
    fn weights(&self) -> u64 {
        self.layer().weights
    }
    #[getter]
    fn biases(&self) -> u64 {
        self.layer().biases
    }
    #[getter]
    fn parameters(&self) -> u64 {
        self.layer().parameters
    }
    #[getter]
    fn macs(&self) -> u64 {
        self.layer().macs
    }
    #[getter]
    fn input_activations(&self) -> u64 {
        self.layer().input_activations
    }
    #[getter]
    fn output_activations(&self) -> u64 {
        self.layer().output_activations
    }
    /// The layer as in `joule stats --json` (`layers[i]`), parsed.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, self.layer())
    }
    fn __repr__(&self) -> String {
        let l = self.layer();
        format!(
            "LayerStats(name={:?}, kind={:?}, weights={}, macs={})",
            l.name, l.kind, l.weights, l.macs
        )
    }
}

/// One model on one machine in a [`Comparison`].
#[pyclass(frozen, module = "joule")]
pub struct CompareEntry {
    entry: Entry,
}

impl CompareEntry {
    fn row<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let e = &self.entry;
        row(
            py,
            &[
                ("hardware", cell(py, &e.hardware)?),
                ("model", cell(py, &e.model)?),
                ("unit", cell(py, &e.unit)?),
                ("energy", cell(py, e.energy)?),
                ("energy_ratio", cell(py, e.energy_ratio)?),
                ("cycles", cell(py, e.cycles)?),
                ("latency_us", cell(py, e.latency_us)?),
                ("latency_ratio", cell(py, e.latency_ratio)?),
                ("utilization", cell(py, e.utilization)?),
                ("macs", cell(py, e.macs)?),
            ],
        )
    }
}

#[pymethods]
impl CompareEntry {
    #[getter]
    fn hardware(&self) -> &str {
        &self.entry.hardware
    }
    #[getter]
    fn model(&self) -> &str {
        &self.entry.model
    }
    #[getter]
    fn unit(&self) -> &str {
        &self.entry.unit
    }
    /// Energy of one batch, in `unit`.
    #[getter]
    fn energy(&self) -> f64 {
        self.entry.energy
    }
    /// Energy relative to the first model on the same machine.
    #[getter]
    fn energy_ratio(&self) -> f64 {
        self.entry.energy_ratio
    }
    #[getter]
    fn cycles(&self) -> f64 {
        self.entry.cycles
    }
    #[getter]
    fn latency_us(&self) -> f64 {
        self.entry.latency_us
    }
    /// Latency relative to the first model on the same machine.
    #[getter]
    fn latency_ratio(&self) -> f64 {
        self.entry.latency_ratio
    }
    #[getter]
    fn utilization(&self) -> f64 {
        self.entry.utilization
    }
    #[getter]
    fn macs(&self) -> u64 {
        self.entry.macs
    }
    /// Shares of the energy by level (digital) or PIM component, largest first.
    #[getter]
    fn breakdown(&self) -> Vec<(String, f64)> {
        self.entry.breakdown.clone()
    }
    /// One-time weight programming (PIM with resident weights), not in `energy`; else None.
    #[getter]
    fn weight_programming(&self) -> Option<f64> {
        self.entry.weight_programming
    }
    /// The entry as in `joule compare --json`, parsed.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.entry)
    }
    fn __repr__(&self) -> String {
        let e = &self.entry;
        format!(
            "CompareEntry(model={:?}, hardware={:?}, energy={} {}, energy_ratio={:.4}, latency_us={}, utilization={:.3})",
            e.model, e.hardware, e.energy, e.unit, e.energy_ratio, e.latency_us, e.utilization
        )
    }
}

/// Models side by side on machines (`joule.compare`): one entry per machine and model,
/// machines outermost; ratios are against the first model on the same machine.
#[pyclass(frozen, sequence, module = "joule")]
pub struct Comparison {
    entries: Vec<Entry>,
}

impl Comparison {
    pub fn new(entries: Vec<Entry>) -> Comparison {
        Comparison { entries }
    }
}

#[pymethods]
impl Comparison {
    #[getter]
    fn entries(&self) -> Vec<CompareEntry> {
        self.entries
            .iter()
            .map(|entry| CompareEntry {
                entry: entry.clone(),
            })
            .collect()
    }
    /// `{"entries": [...]}`, the list being the JSON of `joule compare --json`, parsed.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = PyDict::new(py);
        d.set_item("entries", to_dict(py, &self.entries)?)?;
        Ok(d.into_any())
    }
    /// One row per entry (the breakdown left out). Needs pandas.
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows = self
            .entries()
            .iter()
            .map(|e| e.row(py))
            .collect::<PyResult<Vec<_>>>()?;
        data_frame(py, rows)
    }
    fn __len__(&self) -> usize {
        self.entries.len()
    }
    fn __getitem__(&self, index: isize) -> PyResult<CompareEntry> {
        let n = self.entries.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if !(0..n).contains(&i) {
            return Err(PyIndexError::new_err("comparison index out of range"));
        }
        Ok(CompareEntry {
            entry: self.entries[i as usize].clone(),
        })
    }
    fn __repr__(&self) -> String {
        let mut models: Vec<&str> = Vec::new();
        let mut machines: Vec<&str> = Vec::new();
        for e in &self.entries {
            if !models.contains(&e.model.as_str()) {
                models.push(&e.model);
            }
            if !machines.contains(&e.hardware.as_str()) {
                machines.push(&e.hardware);
            }
        }
        format!("Comparison(models={models:?}, hardware={machines:?})")
    }
}

/// Every dataflow on one model at the storage area of one machine (`joule.dataflows`).
#[pyclass(frozen, module = "joule")]
pub struct DataflowComparison {
    reports: Vec<Arc<NetworkCost>>,
}

impl DataflowComparison {
    pub fn new(reports: Vec<NetworkCost>) -> DataflowComparison {
        DataflowComparison {
            reports: reports.into_iter().map(Arc::new).collect(),
        }
    }
}

#[pymethods]
impl DataflowComparison {
    /// One energy report per dataflow, in the order the CLI prints them.
    #[getter]
    fn reports(&self) -> Vec<EnergyReport> {
        self.reports
            .iter()
            .map(|r| EnergyReport {
                report: Arc::clone(r),
            })
            .collect()
    }
    /// `{dataflow: total energy}`, in the order of `reports`.
    #[getter]
    fn energy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for r in &self.reports {
            d.set_item(tag(&r.dataflow), r.total.energy.total)?;
        }
        Ok(d)
    }
    /// The dataflow of least energy.
    #[getter]
    fn best(&self) -> Option<String> {
        self.reports
            .iter()
            .min_by(|a, b| a.total.energy.total.total_cmp(&b.total.energy.total))
            .map(|r| tag(&r.dataflow))
    }
    /// `{"reports": [...]}`, the list being the JSON of `joule dataflows --json`, parsed.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let all: Vec<&NetworkCost> = self.reports.iter().map(|r| &**r).collect();
        let d = PyDict::new(py);
        d.set_item("reports", to_dict(py, &all)?)?;
        Ok(d.into_any())
    }
    /// One row per dataflow: total, CONV and FC energy, cycles, utilization. Needs pandas.
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows = self
            .reports
            .iter()
            .map(|r| {
                row(
                    py,
                    &[
                        ("dataflow", cell(py, tag(&r.dataflow))?),
                        ("total", cell(py, r.total.energy.total)?),
                        ("conv", cell(py, r.total.conv.energy)?),
                        ("fc", cell(py, r.total.fc.energy)?),
                        ("cycles", cell(py, r.total.cycles)?),
                        ("utilization", cell(py, r.total.utilization)?),
                        ("dram_bytes", cell(py, r.total.dram_bytes)?),
                    ],
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        data_frame(py, rows)
    }
    fn __len__(&self) -> usize {
        self.reports.len()
    }
    fn __repr__(&self) -> String {
        let first = self.reports.first();
        format!(
            "DataflowComparison(model={:?}, hardware={:?}, batch={}, dataflows={:?}, best={:?})",
            first.map_or("", |r| &r.model),
            first.map_or("", |r| &r.hardware),
            first.map_or(0, |r| r.batch),
            self.reports
                .iter()
                .map(|r| tag(&r.dataflow))
                .collect::<Vec<_>>(),
            self.best().unwrap_or_default()
        )
    }
}

/// A machine (`joule.hardware`): a digital accelerator (a PE array) or a
/// processing-in-memory one (crossbar arrays).
#[pyclass(frozen, get_all, module = "joule")]
#[derive(Clone, Serialize)]
pub struct Hardware {
    pub name: String,
    pub description: String,
    /// `digital` or `pim`.
    pub kind: String,
    /// The unit of its energies: `pJ` or `mac`.
    pub unit: String,
    /// PE array (digital) or one crossbar array (PIM): `(rows, cols)`.
    pub array: (u64, u64),
    /// PIM: crossbar arrays on the chip (None: as many as the model needs). Digital: 1.
    pub arrays: Option<u64>,
    /// Global buffer capacity in words.
    pub buffer_words: u64,
    pub word_bits: u32,
    /// Cycles (PIM: array operations) per microsecond.
    pub clock_mhz: f64,
}

impl Hardware {
    pub fn new(machine: &Machine) -> Hardware {
        let (kind, array, arrays, buffer_words, word_bits, clock_mhz) = match machine {
            Machine::Digital(hw) => (
                "digital",
                (hw.array.rows, hw.array.cols),
                Some(1),
                hw.buffer_words,
                hw.word_bits,
                hw.clock_mhz,
            ),
            Machine::Pim(hw) => (
                "pim",
                (hw.array.rows, hw.array.cols),
                hw.array.count,
                hw.buffer_words,
                hw.word_bits,
                hw.clock_mhz(),
            ),
        };
        Hardware {
            name: machine.name().to_string(),
            description: machine.description().to_string(),
            kind: kind.to_string(),
            unit: machine.unit().to_string(),
            array,
            arrays,
            buffer_words,
            word_bits,
            clock_mhz,
        }
    }
}

#[pymethods]
impl Hardware {
    /// The fields above as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, self)
    }
    fn __repr__(&self) -> String {
        let (r, c) = self.array;
        let size = match (self.kind.as_str(), self.arrays) {
            ("digital", _) => format!("{r}x{c} PEs"),
            (_, Some(n)) => format!("{n} arrays of {r}x{c}"),
            (_, None) => format!("arrays of {r}x{c}, as many as needed"),
        };
        format!(
            "Hardware(name={:?}, kind={:?}, {size}, buffer_words={}, word_bits={})",
            self.name, self.kind, self.buffer_words, self.word_bits
        )
    }
}

/// A built-in model (`joule.zoo()`).
#[pyclass(frozen, get_all, module = "joule")]
#[derive(Clone, Serialize)]
pub struct ZooModel {
    pub name: String,
    pub description: String,
    /// `(N, C, H, W)`.
    pub input_shape: (usize, usize, usize, usize),
    pub weights: u64,
    pub macs: u64,
}

impl ZooModel {
    pub fn new(entry: &joule_lab::ZooEntry) -> ZooModel {
        let [n, c, h, w] = entry.stats.input_shape;
        ZooModel {
            name: entry.name.to_string(),
            description: entry.description.to_string(),
            input_shape: (n, c, h, w),
            weights: entry.stats.total.weights,
            macs: entry.stats.total.macs,
        }
    }
}

#[pymethods]
impl ZooModel {
    /// The entry as in `joule zoo --json`, parsed.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, self)
    }
    fn __repr__(&self) -> String {
        format!(
            "ZooModel(name={:?}, input_shape={:?}, weights={}, macs={})",
            self.name, self.input_shape, self.weights, self.macs
        )
    }
}
