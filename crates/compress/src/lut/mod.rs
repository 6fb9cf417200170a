//! Per-layer latency lookup tables (NetAdapt, Yang et al. ECCV 2018).
//!
//! Each layer is measured in isolation with joule's inference engine, keyed by its shape
//! ([`LayerKey`]: kind, input/output channels, spatial sizes, kernel, stride, groups), for
//! every variant the [`ChannelGrid`] can produce; the remainder (pooling, activations, batch
//! norm, flatten, ...) is keyed and measured the same way. The unit is what the engine runs
//! as one step: a CONV or FC together with the batch norm and activation it fuses
//! ([`joule_nn::fused_into`]) is one entry of kind `conv+relu`, `fc+batchnorm+relu`, ...;
//! timing them apart would charge a pass over the ofmap that the engine never makes. A
//! network's predicted latency is the fixed per-inference overhead plus the sum of its
//! steps' entries. Tables are saved as JSON (or CSV) and reused.
//!
//! ```
//! use joule_compress::lut::{self, ChannelGrid, MeasureConfig, LayerTimer, Probe};
//! use joule_model::zoo;
//!
//! /// A fake clock: 1 ms per output channel, 0.5 ms overhead.
//! struct Fake;
//! impl LayerTimer for Fake {
//!     fn time_ms(&self, p: &Probe<'_>) -> Result<f64, joule_compress::CompressError> {
//!         Ok(0.5 + p.key.map_or(0.0, |k| k.m as f64))
//!     }
//! }
//! let graph = zoo::build("lenet5").unwrap();
//! let grid = ChannelGrid::even(&graph, 2).unwrap();
//! let table = lut::build(&graph, &grid, 1, &Fake, &MeasureConfig::default(), |_, _| {}).unwrap();
//! let prediction = table.predict(&graph).unwrap();
//! assert!(prediction.total_ms > 0.0);
//! ```

mod grid;
mod measure;
pub mod probes;

pub use grid::{filters, prunable_layers, variant_steps, variants, ChannelGrid, Variant};
pub use measure::{
    combine_sweeps, median, quantile, stable_median, streamed_medians, swept_median, Context,
    LayerTimer, MeasureConfig, Measurement, Probe, WallClock,
};

use crate::CompressError;
use joule_model::ops::{Binary, ConstantOperand, Side};
use joule_model::{Graph, Op, Shape, Value};
use joule_nn::{FeatureMap, Network};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A layer's shape: what its latency depends on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LayerKey {
    /// [`Op::kind`] (`conv`, `fc`, `maxpool`, `relu`, ...), followed by `+kind` for each
    /// node the engine fuses into it (`conv+relu`).
    pub kind: String,
    /// Input channels (all inputs together; FC: input features).
    pub c: usize,
    /// Output channels (FC: outputs).
    pub m: usize,
    /// Input height and width.
    pub h: usize,
    pub w: usize,
    /// Output height and width.
    pub p: usize,
    pub q: usize,
    /// Kernel height and width (CONV and pooling; 1 otherwise).
    pub r: usize,
    pub s: usize,
    pub stride: usize,
    pub groups: usize,
    /// Number of inputs (Add, Concat).
    pub inputs: usize,
}

impl LayerKey {
    pub fn new(op: &Op, inputs: &[Shape], output: Shape) -> LayerKey {
        let first = inputs[0];
        let (mut r, mut s, mut stride, mut groups) = (1, 1, 1, 1);
        let mut c = inputs.iter().map(|i| i.c).sum::<usize>();
        let (mut h, mut w) = (first.h, first.w);
        match op {
            Op::Conv(conv) => {
                (r, s, stride, groups) = (conv.r, conv.s, conv.stride_h, conv.groups);
            }
            Op::Pool(pool) => (r, s, stride) = (pool.kernel_h, pool.kernel_w, pool.stride_h),
            Op::FullyConnected(_) => {
                c = first.c * first.h * first.w;
                (h, w) = (1, 1);
            }
            Op::Lrn(lrn) => r = lrn.size,
            _ => {}
        }
        LayerKey {
            kind: op.kind().to_string(),
            c,
            m: output.c,
            h,
            w,
            p: output.h,
            q: output.w,
            r,
            s,
            stride,
            groups,
            inputs: inputs.len(),
        }
    }

    /// The key of a step: `op`'s key with the kinds of the nodes fused into it appended.
    pub fn step(op: &Op, fused: &[&Op], inputs: &[Shape], output: Shape) -> LayerKey {
        let mut key = LayerKey::new(op, inputs, output);
        for f in fused {
            key.kind.push('+');
            key.kind.push_str(f.kind());
        }
        key
    }
}

impl fmt::Display for LayerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} C={} M={} {}x{}->{}x{} k={}x{} stride={} groups={}",
            self.kind,
            self.c,
            self.m,
            self.h,
            self.w,
            self.p,
            self.q,
            self.r,
            self.s,
            self.stride,
            self.groups
        )?;
        if self.inputs > 1 {
            write!(f, " inputs={}", self.inputs)?;
        }
        Ok(())
    }
}

/// One table entry: the raw isolated measurement and the latency it contributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(flatten)]
    pub key: LayerKey,
    /// `measured.median_ms` minus the table's overhead, at least 0.
    pub latency_ms: f64,
    pub measured: Measurement,
}

/// A latency lookup table for one network and its channel grid.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyTable {
    pub model: String,
    pub batch: usize,
    pub threads: usize,
    pub grid: ChannelGrid,
    pub measure: MeasureConfig,
    /// The engine's fixed cost per inference, counted once per network and subtracted from
    /// every entry's probe. Isolated tables: a one-node identity network on one value.
    /// Streamed tables: that, less one node's share ([`LatencyTable::node_ms`]).
    pub overhead: Measurement,
    /// Streamed tables: the engine's cost per node of a network (a two-node identity probe
    /// minus the one-node one), charged to every step with its nodes; for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ms: Option<f64>,
    pub entries: Vec<Entry>,
    /// The wall clock's calibration reference (ms) the table was measured against; networks
    /// are measured against the same reference ([`WallClock::use_reference`]).
    #[serde(default)]
    pub calibration_ms: Option<f64>,
    /// 1-minute load average when the table was built (Linux), for the record.
    pub load_average: Option<f64>,
    /// Median calibration time at the gates while the table was measured: the machine's
    /// state (compare a network's, measured the same way, before trusting an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_ms: Option<f64>,
    /// The runtime the entries were measured with, one word
    /// (`onnxruntime-1.20.1/CPUExecutionProvider`); `None`: joule's engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Machine state recorded with the table (load averages, CPU frequency, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<serde_json::Value>,
    #[serde(skip)]
    index: HashMap<LayerKey, usize>,
}

/// A network's predicted latency and the entry of each layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub total_ms: f64,
    pub overhead_ms: f64,
    /// `(layer name, key, latency)` in graph order.
    pub layers: Vec<(String, LayerKey, f64)>,
}

/// For every node, the nodes the engine fuses into it (empty for all but CONV, FC and Add
/// steps), and for every node whether it is fused into another (then it has no entry of
/// its own).
pub(crate) fn fusion(graph: &Graph) -> (Vec<Vec<usize>>, Vec<bool>) {
    let into = joule_nn::fused_into(graph.nodes());
    let mut followers = vec![Vec::new(); into.len()];
    for (j, first) in into.iter().enumerate() {
        if let Some(i) = first {
            followers[*i].push(j);
        }
    }
    (followers, into.iter().map(Option::is_some).collect())
}

/// The probe network of one layer variant: the op, reading the graph input (every input of
/// an Add or Concat reads it), then the ops fused into it, in a chain.
pub(crate) fn probe_network(
    op: &Op,
    fused: &[Op],
    inputs: &[Shape],
) -> Result<Network, CompressError> {
    // A product with one value per channel (MobileNet-V3's squeeze-excitation scale, x * s):
    // the probe has one input, so `s` becomes a constant of its shape; the engine runs the
    // same broadcasting kernel for an activation or a constant operand.
    let per_channel;
    let (op, inputs) = match (op, inputs) {
        (Op::Binary(b), [x, s]) if b.constant.is_none() && (s.c, s.h, s.w) == (x.c, 1, 1) => {
            per_channel = Op::Binary(Binary {
                kind: b.kind,
                constant: Some(ConstantOperand {
                    side: Side::Right,
                    dims: vec![1, s.c, 1, 1],
                }),
            });
            (&per_channel, &inputs[..1])
        }
        _ => (op, inputs),
    };
    if inputs
        .iter()
        .any(|s| (s.c, s.h, s.w) != (inputs[0].c, inputs[0].h, inputs[0].w))
    {
        return Err(CompressError::config(
            "lut",
            format!(
                "{} with inputs of different shapes cannot be measured in isolation",
                op.kind()
            ),
        ));
    }
    let mut graph = Graph::new("probe", Some(Shape { n: 1, ..inputs[0] }));
    let mut last = graph.push("probe", op.clone(), &vec![Value::Input; inputs.len()]);
    for (i, f) in fused.iter().enumerate() {
        last = graph.push(format!("fused{i}"), f.clone(), &[last]);
    }
    Ok(Network::new(graph, 7)?)
}

pub(crate) fn probe_input(shape: Shape) -> FeatureMap {
    let len = shape.elements() as usize;
    // Deterministic, non-zero values (ReLU and max-pooling paths do not short-cut on zeros).
    let data = (0..len).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    FeatureMap { shape, data }
}

/// Measures the engine's fixed cost per inference.
pub fn measure_overhead(
    batch: usize,
    timer: &dyn LayerTimer,
    config: &MeasureConfig,
) -> Result<Measurement, CompressError> {
    let shape = Shape::new(batch, 1, 1, 1);
    let network = probe_network(&Op::Dropout { ratio: 0.0 }, &[], &[shape])?;
    let input = probe_input(shape);
    swept_median(config, timer, || {
        timer.time_ms(&Probe {
            key: None,
            network: &network,
            input: &input,
        })
    })
}

/// Measures a whole network at batch `batch` (the validation of the table's prediction), in
/// `config.sweeps` sweeps `config.pause_ms` apart.
pub fn measure_network(
    network: &Network,
    batch: usize,
    timer: &dyn LayerTimer,
    config: &MeasureConfig,
) -> Result<Measurement, CompressError> {
    let input = probe_input(Shape {
        n: batch,
        ..network.input_shape()?
    });
    swept_median(config, timer, || {
        timer.time_ms(&Probe {
            key: None,
            network,
            input: &input,
        })
    })
}

/// The machine's drift relative to `table` on `graph`'s own work: every step of `graph` that
/// has an entry is timed again now, in the context the table timed it (isolated: one
/// [`stable_median`] each; streamed: the network's steps as one chain before the overhead
/// probe, [`streamed_medians`]; no gate: the point is the state the machine is in), and the
/// median ratio of its time now to its entry's `measured.median_ms` is returned (`None`
/// when no step has an entry). A network measured at drift `d` is compared with `d` x the
/// prediction.
pub fn drift(
    graph: &Graph,
    table: &LatencyTable,
    timer: &dyn LayerTimer,
    config: &MeasureConfig,
) -> Result<Option<f64>, CompressError> {
    let input = graph.resolve_input(None)?;
    let shapes = graph.infer(Shape {
        n: table.batch,
        ..input
    })?;
    let nodes = graph.nodes();
    let (followers, is_fused) = fusion(graph);
    let mut steps = Vec::new();
    for (i, (node, shape)) in nodes.iter().zip(&shapes).enumerate() {
        if is_fused[i] {
            continue;
        }
        let fused: Vec<Op> = followers[i].iter().map(|&j| nodes[j].op.clone()).collect();
        let refs: Vec<&Op> = fused.iter().collect();
        let key = LayerKey::step(&node.op, &refs, &shape.inputs, shape.output);
        let Some(entry) = table.get(&key) else {
            continue;
        };
        let network = probe_network(&node.op, &fused, &shape.inputs)?;
        steps.push((
            key,
            entry.measured.median_ms,
            network,
            probe_input(shape.inputs[0]),
        ));
    }
    let now: Vec<f64> = match table.measure.context {
        Context::Isolated => steps
            .iter()
            .map(|(key, _, network, input)| {
                Ok(stable_median(config, || {
                    timer.time_ms(&Probe {
                        key: Some(key),
                        network,
                        input,
                    })
                })?
                .median_ms)
            })
            .collect::<Result<_, CompressError>>()?,
        Context::Streamed => {
            let shape = Shape::new(table.batch, 1, 1, 1);
            let overhead = probe_network(&Op::Dropout { ratio: 0.0 }, &[], &[shape])?;
            let overhead_in = probe_input(shape);
            let mut list = vec![Probe {
                key: None,
                network: &overhead,
                input: &overhead_in,
            }];
            list.extend(steps.iter().map(|(key, _, network, input)| Probe {
                key: Some(key),
                network,
                input,
            }));
            // As the table's chains: the steps, then the overhead probe.
            let chain: Vec<usize> = (1..list.len()).chain(std::iter::once(0)).collect();
            streamed_medians(config, timer, &list, &[chain])?[1..]
                .iter()
                .map(|m| m.median_ms)
                .collect()
        }
    };
    let ratios: Vec<f64> = steps
        .iter()
        .zip(now)
        .filter(|((_, entry, _, _), _)| *entry > 0.0)
        .map(|((_, entry, _, _), now)| now / entry)
        .collect();
    Ok((!ratios.is_empty()).then(|| median(&ratios)))
}

/// Reads the 1-minute load average (Linux `/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine's state for the record: the three load averages and the mean CPU
/// frequency (MHz) of `/proc/cpuinfo` (Linux; absent fields are null).
pub fn machine_state() -> serde_json::Value {
    let loads: Option<Vec<f64>> = std::fs::read_to_string("/proc/loadavg").ok().and_then(|t| {
        t.split_whitespace()
            .take(3)
            .map(|v| v.parse().ok())
            .collect()
    });
    let mhz: Vec<f64> = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse().ok())
        .collect();
    serde_json::json!({
        "load_average": loads,
        "cpu_mhz": (!mhz.is_empty()).then(|| mhz.iter().sum::<f64>() / mhz.len() as f64),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
    })
}

/// The chains a streamed table runs: chain `j` takes the `j`-th variant (cyclically) of
/// every step, in graph order, so that every variant runs after its network's previous step
/// as the engine runs it; as many chains as the step with the most variants has.
pub(crate) fn chains(steps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = steps.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|j| {
            steps
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s[j % s.len()])
                .collect()
        })
        .collect()
}

type Probes = [(Network, FeatureMap)];

/// Every entry repeated on its own, once per sweep ([`Context::Isolated`]), and the
/// overhead measured the same way.
fn isolated(
    batch: usize,
    timer: &dyn LayerTimer,
    config: &MeasureConfig,
    variants: &[Variant],
    probes: &Probes,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Measurement, Vec<Measurement>), CompressError> {
    let overhead = measure_overhead(batch, timer, config)?;
    // Every entry once per sweep, so that a slow phase of the machine touches one sweep of
    // many entries rather than all the runs of a few.
    let sweeps = config.sweeps.max(1);
    let mut per_entry: Vec<Vec<Measurement>> = vec![Vec::with_capacity(sweeps); variants.len()];
    for sweep in 0..sweeps {
        for (i, (variant, (network, input))) in variants.iter().zip(probes).enumerate() {
            timer.settle(config)?;
            per_entry[i].push(stable_median(config, || {
                timer.time_ms(&Probe {
                    key: Some(&variant.key),
                    network,
                    input,
                })
            })?);
            progress(sweep * variants.len() + i + 1, sweeps * variants.len());
        }
    }
    Ok((
        overhead,
        per_entry.iter().map(|s| combine_sweeps(s)).collect(),
    ))
}

/// Every entry timed in the network's order ([`Context::Streamed`]): one
/// [`streamed_medians`] per sweep, the sweeps combined by [`combine_sweeps`]. The overhead
/// probe (index 0) closes every chain. Why last: the first run of a chain pays the wake-up
/// after the hand-off to the timing pool (cold caches and predictors), as a network's first
/// step does; timed there the overhead measured 1.7 us instead of about 0.5, and subtracted
/// from every entry it made mobilenetv2-28 at width 1/8 (22 steps) predict 0.015 ms for a
/// measured 0.034 ms.
fn streamed(
    batch: usize,
    timer: &dyn LayerTimer,
    config: &MeasureConfig,
    variants: &[Variant],
    probes: &Probes,
    chains: &[Vec<usize>],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Measurement, Option<f64>, Vec<Measurement>), CompressError> {
    let shape = Shape::new(batch, 1, 1, 1);
    let identity = Op::Dropout { ratio: 0.0 };
    let one = probe_network(&identity, &[], &[shape])?;
    let two = probe_network(&identity, std::slice::from_ref(&identity), &[shape])?;
    let overhead_in = probe_input(shape);
    let mut list = vec![
        Probe {
            key: None,
            network: &one,
            input: &overhead_in,
        },
        Probe {
            key: None,
            network: &two,
            input: &overhead_in,
        },
    ];
    for (v, (network, input)) in variants.iter().zip(probes) {
        list.push(Probe {
            key: Some(&v.key),
            network,
            input,
        });
    }
    let chains: Vec<Vec<usize>> = chains
        .iter()
        .map(|c| c.iter().map(|i| i + 2).chain([0, 1]).collect())
        .collect();
    let sweeps = config.sweeps.max(1);
    let mut per: Vec<Vec<Measurement>> = vec![Vec::with_capacity(sweeps); list.len()];
    for sweep in 0..sweeps {
        if sweep > 0 && config.pause_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(config.pause_ms));
        }
        timer.settle(config)?;
        for (i, m) in streamed_medians(config, timer, &list, &chains)?
            .into_iter()
            .enumerate()
        {
            per[i].push(m);
        }
        for i in 0..variants.len() {
            progress(sweep * variants.len() + i + 1, sweeps * variants.len());
        }
    }
    let mut all = per.iter().map(|s| combine_sweeps(s));
    let (one, two) = (
        all.next().expect("one node"),
        all.next().expect("two nodes"),
    );
    // A call of one node costs the call plus one node's share (shape inference, schedule,
    // buffer bookkeeping); two nodes cost one share more. A probe of a k-node step minus
    // the call alone then charges the step all k of its nodes' shares, as the network pays
    // them; subtracting the one-node probe instead dropped one share per step (0.26 us on
    // mobilenetv2-28, 18% of its width-1/8 member).
    let node = (two.median_ms - one.median_ms).max(0.0);
    let call = Measurement {
        median_ms: (one.median_ms - node).max(0.0),
        ..one
    };
    Ok((call, Some(node), all.collect()))
}

/// Builds the table of `graph` over `grid`: every variant measured in the context
/// `config.context` says (streamed in the network's order, or each on its own).
/// `progress(done, total)` is called after each entry.
pub fn build(
    graph: &Graph,
    grid: &ChannelGrid,
    batch: usize,
    timer: &dyn LayerTimer,
    config: &MeasureConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<LatencyTable, CompressError> {
    if batch == 0 {
        return Err(CompressError::config("batch", "must be at least 1"));
    }
    let (variants, steps) = variant_steps(graph, grid, batch)?;
    let probes = variants
        .iter()
        .map(|v| {
            Ok((
                probe_network(&v.op, &v.fused, &v.inputs)?,
                probe_input(v.inputs[0]),
            ))
        })
        .collect::<Result<Vec<_>, CompressError>>()?;
    let (overhead, node_ms, measured) = match config.context {
        Context::Isolated => {
            let (overhead, measured) =
                isolated(batch, timer, config, &variants, &probes, &mut progress)?;
            (overhead, None, measured)
        }
        Context::Streamed => {
            let chains = chains(&steps);
            streamed(
                batch,
                timer,
                config,
                &variants,
                &probes,
                &chains,
                &mut progress,
            )?
        }
    };
    let entries = variants
        .iter()
        .zip(measured)
        .map(|(variant, measured)| Entry {
            key: variant.key.clone(),
            latency_ms: (measured.median_ms - overhead.median_ms).max(0.0),
            measured,
        })
        .collect();
    let mut table = LatencyTable::new(
        graph.name.clone(),
        batch,
        0,
        grid.clone(),
        config.clone(),
        overhead,
        entries,
    );
    table.calibration_ms = timer.reference_ms();
    table.node_ms = node_ms;
    Ok(table)
}

impl LatencyTable {
    pub fn new(
        model: String,
        batch: usize,
        threads: usize,
        grid: ChannelGrid,
        measure: MeasureConfig,
        overhead: Measurement,
        entries: Vec<Entry>,
    ) -> LatencyTable {
        let mut table = LatencyTable {
            model,
            batch,
            threads,
            grid,
            measure,
            overhead,
            entries,
            calibration_ms: None,
            node_ms: None,
            load_average: load_average(),
            state_ms: None,
            runtime: None,
            machine: None,
            index: HashMap::new(),
        };
        table.reindex();
        table
    }

    fn reindex(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key.clone(), i))
            .collect();
    }

    pub fn get(&self, key: &LayerKey) -> Option<&Entry> {
        self.index.get(key).map(|&i| &self.entries[i])
    }

    /// Predicted latency of `graph` at the table's batch: overhead + sum of entries. A layer
    /// whose shape is not in the table is an error naming it.
    pub fn predict(&self, graph: &Graph) -> Result<Prediction, CompressError> {
        let input = graph.resolve_input(None)?;
        let shapes = graph.infer(Shape {
            n: self.batch,
            ..input
        })?;
        let mut layers = Vec::with_capacity(graph.len());
        let mut total = self.overhead.median_ms;
        let nodes = graph.nodes();
        let (followers, is_fused) = fusion(graph);
        for (i, (node, shape)) in nodes.iter().zip(&shapes).enumerate() {
            if is_fused[i] {
                continue;
            }
            let fused: Vec<&Op> = followers[i].iter().map(|&j| &nodes[j].op).collect();
            let key = LayerKey::step(&node.op, &fused, &shape.inputs, shape.output);
            let entry = self.get(&key).ok_or_else(|| CompressError::Config {
                field: format!("layer {:?}", node.name),
                message: format!(
                    "no latency table entry for {key} (the table was built for {:?} over another channel grid)",
                    self.model
                ),
            })?;
            total += entry.latency_ms;
            layers.push((node.name.clone(), key, entry.latency_ms));
        }
        Ok(Prediction {
            total_ms: total,
            overhead_ms: self.overhead.median_ms,
            layers,
        })
    }

    /// Writes the table: CSV when the file ends in `.csv`, JSON otherwise.
    pub fn save(&self, path: &Path) -> Result<(), CompressError> {
        let text = if path.extension().is_some_and(|e| e == "csv") {
            self.to_csv().map_err(|source| CompressError::LatencyCsv {
                path: path.into(),
                source,
            })?
        } else {
            serde_json::to_string_pretty(self).map_err(|e| CompressError::file(path, e))?
        };
        joule_model::fs::write_atomic(path, text.as_bytes())
            .map_err(|e| CompressError::file(path, e))
    }

    /// Reads a table written by [`LatencyTable::save`] (JSON or CSV, by extension).
    pub fn load(path: &Path) -> Result<LatencyTable, CompressError> {
        let text = std::fs::read_to_string(path).map_err(|e| CompressError::file(path, e))?;
        let mut table = if path.extension().is_some_and(|e| e == "csv") {
            Self::from_csv(&text).map_err(|source| CompressError::LatencyCsv {
                path: path.into(),
                source,
            })?
        } else {
            serde_json::from_str::<LatencyTable>(&text).map_err(|e| CompressError::file(path, e))?
        };
        table.reindex();
        Ok(table)
    }
}

mod csv;
pub use self::csv::CsvError;
