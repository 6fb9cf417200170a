//! `joule._joule`: the Python extension module over [`joule_lab`], one library call per
//! function. The pure-Python package `joule` (python/joule/) checks the arguments' types,
//! turns every kind of model (path, `onnx.ModelProto`, `torch.nn.Module`) into a zoo name,
//! a path or ONNX bytes, and re-exports what is defined here.
//!
//! Every library error becomes a `joule.JouleError` with the message the CLI prints, on
//! one line, with configuration fields named as the keyword arguments that set them (the
//! library's field names are those keywords).

mod netadapt;
mod results;

use joule_lab::estimate::{self, EnergyOptions};
use joule_lab::{hardware, LabError, Model, Shape};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use results::{
    CompareEntry, Comparison, DataflowComparison, EnergyReport, Hardware, LayerEnergy, LayerStats,
    LevelEnergy, Stats, TypeEnergy, ZooModel,
};

/// The engine's buffers on cache lines ([`joule_lab::CacheAligned`] says why): the Rust
/// side of the module allocates through it (Python's own objects do not).
#[global_allocator]
static ALLOC: joule_lab::CacheAligned = joule_lab::CacheAligned;

create_exception!(
    joule,
    JouleError,
    PyException,
    "A joule error: an unknown model or machine, a bad file, a setting out of range. The \
     message is one line naming the argument or file at fault."
);

/// The whole error chain on one line, outermost first; a cause already quoted by the
/// message before it is not repeated (as the CLI prints it).
fn one_line(err: &LabError) -> String {
    let mut line = String::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = c.source();
    }
    line.replace('\n', " ")
}

fn joule_error(err: LabError) -> PyErr {
    JouleError::new_err(one_line(&err))
}

/// A setting the library has no field check for (a string that names no dataflow).
fn setting_error(field: &str, message: impl Into<String>) -> PyErr {
    joule_error(LabError::config(field, message))
}

/// A model as the Python layer hands it over: a zoo name or path, or ONNX bytes with a name.
enum ModelInput {
    Spec(String),
    Onnx(Vec<u8>, String),
}

impl ModelInput {
    fn extract(model: &Bound<'_, PyAny>, name: &str) -> PyResult<ModelInput> {
        if let Ok(s) = model.cast::<PyString>() {
            return Ok(ModelInput::Spec(s.to_cow()?.into_owned()));
        }
        if let Ok(b) = model.cast::<PyBytes>() {
            return Ok(ModelInput::Onnx(b.as_bytes().to_vec(), name.to_string()));
        }
        Err(setting_error(
            "model",
            format!(
                "expected a zoo name, a path or ONNX bytes, not {}",
                model.get_type().name()?
            ),
        ))
    }

    fn load(&self) -> Result<Model, LabError> {
        match self {
            ModelInput::Spec(spec) => Model::load(spec),
            ModelInput::Onnx(bytes, name) => Model::from_onnx_bytes(bytes, name),
        }
    }
}

fn dataflow(text: &str) -> PyResult<joule_lab::Dataflow> {
    text.parse()
        .map_err(|m: String| setting_error("dataflow", m))
}

/// Per-layer statistics (weights, MACs, activations); see `joule.stats`.
#[pyfunction]
#[pyo3(signature = (model, name, input_shape=None))]
fn stats(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    name: &str,
    input_shape: Option<&str>,
) -> PyResult<Stats> {
    let model = ModelInput::extract(model, name)?;
    let input = input_shape
        .map(|s| Shape::parse(s).map_err(|m| setting_error("input_shape", m)))
        .transpose()?;
    let stats = py
        .detach(|| joule_lab::stats_of(&model.load()?, input))
        .map_err(joule_error)?;
    Ok(Stats::new(stats))
}

/// Per-layer energy of a model on a machine; see `joule.energy`.
#[pyfunction]
#[pyo3(signature = (model, name, hw, batch, dataflow, objective, ifmap_density, weight_density, bits))]
#[allow(clippy::too_many_arguments)]
fn energy(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    name: &str,
    hw: &str,
    batch: usize,
    dataflow: &str,
    objective: &str,
    ifmap_density: Option<f64>,
    weight_density: Option<f64>,
    bits: Option<u32>,
) -> PyResult<EnergyReport> {
    let model = ModelInput::extract(model, name)?;
    let mut options = EnergyOptions::new(name, hw);
    options.batch = batch;
    options.dataflow = self::dataflow(dataflow)?;
    options.objective = objective
        .parse()
        .map_err(|m: String| setting_error("objective", m))?;
    options.ifmap_density = ifmap_density;
    options.weight_density = weight_density;
    options.bits = bits;
    let report = py
        .detach(|| estimate::energy_of(&model.load()?, &options))
        .map_err(joule_error)?;
    Ok(EnergyReport::new(report))
}

/// The dataflows at equal storage area; see `joule.dataflows`.
#[pyfunction]
fn dataflows(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    name: &str,
    hw: &str,
    batch: usize,
) -> PyResult<DataflowComparison> {
    let model = ModelInput::extract(model, name)?;
    let reports = py
        .detach(|| estimate::dataflows_of(&model.load()?, hw, batch))
        .map_err(joule_error)?;
    Ok(DataflowComparison::new(reports))
}

/// Models side by side on machines; `models` holds `(model, name)` pairs. See
/// `joule.compare`.
#[pyfunction]
fn compare(
    py: Python<'_>,
    models: Vec<(Bound<'_, PyAny>, String)>,
    hw: Vec<String>,
    dataflow: &str,
    batch: usize,
) -> PyResult<Comparison> {
    let models = models
        .iter()
        .map(|(m, name)| ModelInput::extract(m, name))
        .collect::<PyResult<Vec<_>>>()?;
    let dataflow = self::dataflow(dataflow)?;
    let entries = py
        .detach(|| {
            let loaded = models
                .iter()
                .map(ModelInput::load)
                .collect::<Result<Vec<_>, _>>()?;
            estimate::compare_models(&loaded, &hw, dataflow, batch)
        })
        .map_err(joule_error)?;
    Ok(Comparison::new(entries))
}

/// A machine: a preset name or a YAML spec file; see `joule.hardware`.
#[pyfunction]
#[pyo3(name = "hardware")]
fn machine(name: &str) -> PyResult<Hardware> {
    hardware::machine(name)
        .map(|m| Hardware::new(&m))
        .map_err(joule_error)
}

/// `dataset`'s answer: image bytes, `(N, C, H, W)`, label bytes, classes.
type DatasetBytes = (
    Py<PyBytes>,
    (usize, usize, usize, usize),
    Py<PyBytes>,
    usize,
);

/// A dataset split as joule trains on it: images as little-endian f32 bytes (pixels / 255)
/// with their `(N, C, H, W)` shape, labels as bytes, and the number of classes.
#[pyfunction]
#[pyo3(signature = (name, split, data_dir=None))]
fn dataset(
    py: Python<'_>,
    name: &str,
    split: &str,
    data_dir: Option<std::path::PathBuf>,
) -> PyResult<DatasetBytes> {
    let spec = joule_lab::DataSpec::new(name, data_dir.as_deref());
    let data = py
        .detach(|| match split {
            "train" => spec.load().map(|d| d.train),
            "test" => spec.load_test(),
            other => Err(LabError::config(
                "split",
                format!("expected train or test, not {other:?}"),
            )),
        })
        .map_err(joule_error)?;
    let bytes: Vec<u8> = data.images.iter().flat_map(|v| v.to_le_bytes()).collect();
    let s = data.sample;
    let shape = (data.len(), s.c, s.h, s.w);
    Ok((
        PyBytes::new(py, &bytes).unbind(),
        shape,
        PyBytes::new(py, &data.labels).unbind(),
        data.classes,
    ))
}

/// Every hardware preset, digital first, then PIM.
#[pyfunction]
fn presets() -> PyResult<Vec<Hardware>> {
    let machines = hardware::presets().map_err(joule_error)?;
    Ok(machines.iter().map(Hardware::new).collect())
}

/// The built-in models with their input shape, weights and MACs.
#[pyfunction]
fn zoo(py: Python<'_>) -> PyResult<Vec<ZooModel>> {
    let entries = py.detach(joule_lab::zoo).map_err(joule_error)?;
    Ok(entries.iter().map(ZooModel::new).collect())
}

#[pymodule]
fn _joule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("JouleError", m.py().get_type::<JouleError>())?;
    m.add("MAX_BATCH", estimate::MAX_BATCH)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(energy, m)?)?;
    m.add_function(wrap_pyfunction!(dataflows, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(machine, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(zoo, m)?)?;
    m.add_function(wrap_pyfunction!(dataset, m)?)?;
    m.add_class::<EnergyReport>()?;
    m.add_class::<LayerEnergy>()?;
    m.add_class::<LevelEnergy>()?;
    m.add_class::<TypeEnergy>()?;
    m.add_class::<Stats>()?;
    m.add_class::<LayerStats>()?;
    m.add_class::<Comparison>()?;
    m.add_class::<CompareEntry>()?;
    m.add_class::<DataflowComparison>()?;
    m.add_class::<Hardware>()?;
    m.add_class::<ZooModel>()?;
    m.add_class::<netadapt::NetAdapt>()?;
    m.add_class::<netadapt::Proposal>()?;
    m.add_class::<netadapt::FamilyMember>()?;
    Ok(())
}
