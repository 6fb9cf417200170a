//! Latency tables for any runtime: the table's probes written as ONNX files for another
//! runtime to time, and the timings it measured read back as a [`LatencyTable`].
//!
//! Why: NetAdapt's tables exist for black-box hardware and runtimes (seed 004); joule's own
//! engine is one runtime among many. [`emit`] writes every layer variant of a channel grid as
//! a small ONNX network (exactly the step [`super::build`] times: the op reading the graph
//! input, then the ops the engine fuses into it), plus the overhead probe (a one-node
//! identity network) and the calibration probe of the gate ([`super::WallClock`]), and a
//! manifest naming each file's key, input shape and MACs. A runner on the target device
//! (`scripts/lut-ort.py` for onnxruntime) times them by the same protocol and writes a
//! timings file; [`import`] joins the two by file name into a table.
//!
//! Streamed timing ([`super::Context::Streamed`], the runner's default) needs two things the
//! isolated one does not, and the manifest carries both: the network's steps in graph order
//! (`steps`, the probe indices of every step's variants, from which the runner forms the
//! chains [`super::build`] runs) and a two-node identity probe (`node`), so that the
//! runtime's cost per node comes apart from its cost per call.
//!
//! The manifest is written last, so a folder with a manifest holds every probe it names.

use super::{fusion, probe_network, variant_steps, ChannelGrid, Entry, LatencyTable, LayerKey};
use super::{Context, MeasureConfig, Measurement};
use crate::CompressError;
use joule_model::{Graph, Op, Shape};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The manifest's file name inside a probe folder.
pub const MANIFEST: &str = "manifest.json";
/// The `format` of a manifest.
pub const MANIFEST_FORMAT: &str = "joule-lut-probes";
/// The `format` of a timings file.
pub const TIMINGS_FORMAT: &str = "joule-lut-timings";

/// One ONNX file of a probe folder and the input it is run on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeFile {
    /// File name inside the folder.
    pub file: String,
    /// Input shape `[n, c, h, w]` (the batch is the table's).
    pub input: [usize; 4],
}

/// One layer variant of the grid as a probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeEntry {
    #[serde(flatten)]
    pub key: LayerKey,
    #[serde(flatten)]
    pub probe: ProbeFile,
    /// Multiply-accumulates of the probe at the table's batch (0 for non-CONV/FC steps).
    pub macs: u64,
}

/// `manifest.json` of a probe folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub model: String,
    pub batch: usize,
    pub grid: ChannelGrid,
    /// The fixed cost per call: a one-node identity network on one value.
    pub overhead: ProbeFile,
    /// The gate's calibration step (CONV 16 -> 32, 3x3, 14x14, + ReLU).
    pub calibration: ProbeFile,
    pub probes: Vec<ProbeEntry>,
    /// Every step of the network in graph order: the indices into `probes` of its variants
    /// (a variant two steps share is listed under both). A streamed runner chains them as
    /// [`super::build`] does. Empty in manifests written before streamed runners existed.
    #[serde(default)]
    pub steps: Vec<Vec<usize>>,
    /// Two identity nodes in a chain on the overhead probe's input: minus the overhead probe,
    /// the runtime's cost per node of a network. `None` in older manifests.
    #[serde(default)]
    pub node: Option<ProbeFile>,
}

fn dims(s: Shape) -> [usize; 4] {
    [s.n, s.c, s.h, s.w]
}

fn export(network: &joule_nn::Network, path: &Path) -> Result<(), CompressError> {
    joule_onnx::export_file(network.graph(), path).map_err(|e| CompressError::file(path, e))
}

/// Writes every variant of `graph` over `grid` at `batch` as an ONNX probe into `dir`
/// (created if missing), with the overhead and calibration probes and the manifest.
pub fn emit(
    graph: &Graph,
    grid: &ChannelGrid,
    batch: usize,
    dir: &Path,
) -> Result<Manifest, CompressError> {
    if batch == 0 {
        return Err(CompressError::config("batch", "must be at least 1"));
    }
    std::fs::create_dir_all(dir).map_err(|e| CompressError::file(dir, e))?;
    let (variants, steps) = variant_steps(graph, grid, batch)?;
    let mut probes = Vec::with_capacity(variants.len());
    for (i, v) in variants.iter().enumerate() {
        let network = probe_network(&v.op, &v.fused, &v.inputs)?;
        let file = format!("probe_{i:05}.onnx");
        export(&network, &dir.join(&file))?;
        let macs = network
            .graph()
            .infer(v.inputs[0])?
            .iter()
            .filter_map(|s| s.loop_nest.as_ref().map(|n| n.macs()))
            .sum();
        probes.push(ProbeEntry {
            key: v.key.clone(),
            probe: ProbeFile {
                file,
                input: dims(v.inputs[0]),
            },
            macs,
        });
    }
    let overhead_shape = Shape::new(batch, 1, 1, 1);
    let overhead = probe_network(&Op::Dropout { ratio: 0.0 }, &[], &[overhead_shape])?;
    export(&overhead, &dir.join("overhead.onnx"))?;
    let identity = Op::Dropout { ratio: 0.0 };
    let node = probe_network(
        &identity,
        std::slice::from_ref(&identity),
        &[overhead_shape],
    )?;
    export(&node, &dir.join("node.onnx"))?;
    let calibration_shape = Shape::new(1, 16, 14, 14);
    let (conv, relu) = super::measure::calibration_ops();
    let calibration = probe_network(&conv, &[relu], &[calibration_shape])?;
    export(&calibration, &dir.join("calibration.onnx"))?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        version: 1,
        model: graph.name.clone(),
        batch,
        grid: grid.clone(),
        overhead: ProbeFile {
            file: "overhead.onnx".into(),
            input: dims(overhead_shape),
        },
        calibration: ProbeFile {
            file: "calibration.onnx".into(),
            input: dims(calibration_shape),
        },
        probes,
        steps,
        node: Some(ProbeFile {
            file: "node.onnx".into(),
            input: dims(overhead_shape),
        }),
    };
    let path = dir.join(MANIFEST);
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| CompressError::file(&path, e))?;
    joule_model::fs::write_atomic(&path, text.as_bytes())
        .map_err(|e| CompressError::file(&path, e))?;
    Ok(manifest)
}

/// Reads a probe folder's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest, CompressError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| CompressError::file(&path, e))?;
    let manifest: Manifest = parse(&path, &text)?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(bad(
            &path,
            "format",
            format!("is {:?}, expected {MANIFEST_FORMAT:?}", manifest.format),
        ));
    }
    Ok(manifest)
}

/// One probe's timing in a timings file (the fields of a [`Measurement`] spelled out rather
/// than flattened, so that a bad value's error names its field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeTiming {
    pub file: String,
    pub median_ms: f64,
    pub spread_ms: f64,
    pub runs: usize,
    pub stable: bool,
}

impl ProbeTiming {
    pub fn measured(&self) -> Measurement {
        Measurement {
            median_ms: self.median_ms,
            spread_ms: self.spread_ms,
            runs: self.runs,
            stable: self.stable,
        }
    }
}

/// The runtime a timings file was measured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// `onnxruntime`, ...
    pub name: String,
    pub version: String,
    /// Execution provider (`CPUExecutionProvider`, `CUDAExecutionProvider`, ...).
    pub provider: String,
    pub threads: usize,
}

/// What a runner writes (`scripts/lut-ort.py table`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub format: String,
    pub version: u32,
    pub runtime: RuntimeInfo,
    pub measure: MeasureConfig,
    /// The calibration probe's reference time (the fastest seen), as the gate used it.
    pub calibration_ms: f64,
    /// Median of the calibration times the gate saw before every sweep: the machine's state
    /// while the table was measured (compared with the family's state, issue 17 item 6).
    pub state_ms: f64,
    /// Machine state (load average, CPU frequency, ...) before and after, as recorded.
    #[serde(default)]
    pub machine: serde_json::Value,
    pub overhead: ProbeTiming,
    /// The two-node probe's timing (the manifest's `node`): required when
    /// `measure.context` is streamed, where an entry is charged every node of its step.
    #[serde(default)]
    pub node: Option<ProbeTiming>,
    pub probes: Vec<ProbeTiming>,
}

/// `T` from the JSON text of `path`; a value of the wrong type names its field
/// (`probes[3].runs: invalid type ...`).
fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, CompressError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        bad(path, &field, e.into_inner())
    })
}

fn bad(path: &Path, field: &str, message: impl std::fmt::Display) -> CompressError {
    CompressError::file(path, format!("field `{field}`: {message}"))
}

fn check_measurement(path: &Path, field: &str, m: &Measurement) -> Result<(), CompressError> {
    if !(m.median_ms.is_finite() && m.median_ms > 0.0) {
        return Err(bad(
            path,
            &format!("{field}.median_ms"),
            format!("{} is not a positive number of ms", m.median_ms),
        ));
    }
    if !(m.spread_ms.is_finite() && m.spread_ms >= 0.0) {
        return Err(bad(
            path,
            &format!("{field}.spread_ms"),
            format!("{} is not a non-negative number of ms", m.spread_ms),
        ));
    }
    if m.runs == 0 {
        return Err(bad(path, &format!("{field}.runs"), "must be at least 1"));
    }
    Ok(())
}

/// Reads and checks a timings file: every number a positive (spreads: non-negative) finite
/// value, every error one line naming the file and the field.
pub fn read_timings(path: &Path) -> Result<Timings, CompressError> {
    let text = std::fs::read_to_string(path).map_err(|e| CompressError::file(path, e))?;
    let t: Timings = parse(path, &text)?;
    if t.format != TIMINGS_FORMAT {
        return Err(bad(
            path,
            "format",
            format!("is {:?}, expected {TIMINGS_FORMAT:?}", t.format),
        ));
    }
    for (field, v) in [
        ("calibration_ms", t.calibration_ms),
        ("state_ms", t.state_ms),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(bad(
                path,
                field,
                format!("{v} is not a positive number of ms"),
            ));
        }
    }
    if t.runtime.name.is_empty() || t.runtime.name.contains(char::is_whitespace) {
        return Err(bad(
            path,
            "runtime.name",
            format!("{:?} must be one word", t.runtime.name),
        ));
    }
    check_measurement(path, "overhead", &t.overhead.measured())?;
    if let Some(node) = &t.node {
        check_measurement(path, "node", &node.measured())?;
    }
    for (i, p) in t.probes.iter().enumerate() {
        check_measurement(path, &format!("probes[{i}]"), &p.measured())?;
    }
    Ok(t)
}

/// The runtime as one word for the table (and its CSV comment line):
/// `onnxruntime-1.20.1/CPUExecutionProvider`.
pub fn runtime_label(r: &RuntimeInfo) -> String {
    format!("{}-{}/{}", r.name, r.version, r.provider).replace(char::is_whitespace, "_")
}

/// The table of a probe folder's manifest and a runner's timings of it: every probe of the
/// manifest must have exactly one timing; entries are `median - overhead`, as
/// [`super::build`] computes them. The timings' `measure.context` is the table's; a
/// streamed one also needs the two-node probe's timing, and then, as in [`super::build`],
/// the overhead is the call alone (the one-node probe less one node's share, `node_ms` =
/// two-node minus one-node), so that every entry keeps all its nodes' shares.
pub fn import(probes_dir: &Path, timings_path: &Path) -> Result<LatencyTable, CompressError> {
    let manifest = read_manifest(probes_dir)?;
    let timings = read_timings(timings_path)?;
    if timings.overhead.file != manifest.overhead.file {
        return Err(bad(
            timings_path,
            "overhead.file",
            format!(
                "{:?} is not the manifest's overhead probe {:?}",
                timings.overhead.file, manifest.overhead.file
            ),
        ));
    }
    let mut by_file: HashMap<&str, (usize, Measurement)> = HashMap::new();
    for (i, p) in timings.probes.iter().enumerate() {
        if by_file.insert(&p.file, (i, p.measured())).is_some() {
            return Err(bad(
                timings_path,
                &format!("probes[{i}].file"),
                format!("{:?} is timed twice", p.file),
            ));
        }
    }
    let (overhead, node_ms) = match timings.measure.context {
        Context::Isolated => (timings.overhead.measured(), None),
        Context::Streamed => {
            let node = timings.node.as_ref().ok_or_else(|| {
                bad(
                    timings_path,
                    "node",
                    "missing: a streamed table needs the two-node probe's timing (time the probes of a manifest with `node` in the streamed context, or set measure.context to isolated)",
                )
            })?;
            let expected = manifest.node.as_ref().map(|n| n.file.as_str());
            if expected != Some(node.file.as_str()) {
                return Err(bad(
                    timings_path,
                    "node.file",
                    format!(
                        "{:?} is not the manifest's two-node probe {expected:?}",
                        node.file
                    ),
                ));
            }
            let one = timings.overhead.measured();
            let share = (node.median_ms - one.median_ms).max(0.0);
            (
                Measurement {
                    median_ms: (one.median_ms - share).max(0.0),
                    ..one
                },
                Some(share),
            )
        }
    };
    let mut entries = Vec::with_capacity(manifest.probes.len());
    for p in &manifest.probes {
        let (_, measured) = by_file.remove(p.probe.file.as_str()).ok_or_else(|| {
            bad(
                timings_path,
                "probes",
                format!(
                    "no timing of {:?} ({}) of the manifest in {}",
                    p.probe.file,
                    p.key,
                    probes_dir.display()
                ),
            )
        })?;
        entries.push(Entry {
            key: p.key.clone(),
            latency_ms: (measured.median_ms - overhead.median_ms).max(0.0),
            measured,
        });
    }
    if let Some((file, (i, _))) = by_file.into_iter().min_by_key(|(_, (i, _))| *i) {
        return Err(bad(
            timings_path,
            &format!("probes[{i}].file"),
            format!(
                "{file:?} is not a probe of {}",
                probes_dir.join(MANIFEST).display()
            ),
        ));
    }
    let mut table = LatencyTable::new(
        manifest.model,
        manifest.batch,
        timings.runtime.threads,
        manifest.grid,
        timings.measure.clone(),
        overhead,
        entries,
    );
    table.node_ms = node_ms;
    table.calibration_ms = Some(timings.calibration_ms);
    table.state_ms = Some(timings.state_ms);
    table.runtime = Some(runtime_label(&timings.runtime));
    table.load_average = timings
        .machine
        .pointer("/before/load_average/0")
        .and_then(serde_json::Value::as_f64);
    table.machine = Some(timings.machine);
    Ok(table)
}

/// One network measured by a runner (`scripts/lut-ort.py networks`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkTiming {
    /// The ONNX file as given to the runner.
    pub file: PathBuf,
    pub median_ms: f64,
    pub spread_ms: f64,
    pub runs: usize,
    pub stable: bool,
    /// Median calibration time of the gates before this network's sweeps.
    pub state_ms: f64,
    /// How much slower the table's own probes ran while this network was measured than in
    /// the table (median ratio over a sample re-timed after every sweep); `None`: not taken.
    #[serde(default)]
    pub drift: Option<f64>,
}

/// What a runner writes for whole networks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkTimings {
    pub format: String,
    pub version: u32,
    pub runtime: RuntimeInfo,
    pub measure: MeasureConfig,
    pub calibration_ms: f64,
    #[serde(default)]
    pub machine: serde_json::Value,
    pub networks: Vec<NetworkTiming>,
}

/// Reads a runner's network timings, checked like [`read_timings`].
pub fn read_network_timings(path: &Path) -> Result<NetworkTimings, CompressError> {
    let text = std::fs::read_to_string(path).map_err(|e| CompressError::file(path, e))?;
    let t: NetworkTimings = parse(path, &text)?;
    if t.format != TIMINGS_FORMAT {
        return Err(bad(
            path,
            "format",
            format!("is {:?}, expected {TIMINGS_FORMAT:?}", t.format),
        ));
    }
    for (i, n) in t.networks.iter().enumerate() {
        let m = Measurement {
            median_ms: n.median_ms,
            spread_ms: n.spread_ms,
            runs: n.runs,
            stable: n.stable,
        };
        check_measurement(path, &format!("networks[{i}]"), &m)?;
        if let Some(d) = n.drift.filter(|d| !(d.is_finite() && *d > 0.0)) {
            return Err(bad(
                path,
                &format!("networks[{i}].drift"),
                format!("{d} is not a positive ratio"),
            ));
        }
        if !(n.state_ms.is_finite() && n.state_ms > 0.0) {
            return Err(bad(
                path,
                &format!("networks[{i}].state_ms"),
                format!("{} is not a positive number of ms", n.state_ms),
            ));
        }
    }
    Ok(t)
}

/// Keys of a graph's steps by layer name, as the table predicts them (for tests and checks).
pub fn step_keys(graph: &Graph, batch: usize) -> Result<BTreeMap<String, LayerKey>, CompressError> {
    let input = graph.resolve_input(None)?;
    let shapes = graph.infer(Shape { n: batch, ..input })?;
    let (followers, is_fused) = fusion(graph);
    let nodes = graph.nodes();
    let mut keys = BTreeMap::new();
    for (i, (node, shape)) in nodes.iter().zip(&shapes).enumerate() {
        if is_fused[i] {
            continue;
        }
        let fused: Vec<&Op> = followers[i].iter().map(|&j| &nodes[j].op).collect();
        keys.insert(
            node.name.clone(),
            LayerKey::step(&node.op, &fused, &shape.inputs, shape.output),
        );
    }
    Ok(keys)
}
