//! joule's library layer: what the `joule` command, the Python package and the HTML report
//! all call. It loads models ([`Model`]: zoo name, ONNX file or checkpoint) and machines
//! ([`hardware::machine`]: preset or YAML, digital or PIM), runs estimates ([`estimate`])
//! and experiments ([`train`], [`prune`], [`eliminate`], [`adapt`], [`lut`], [`pim_study`]) into run
//! directories ([`RunDir`]: atomic writes, create/resume guard, typed summaries), and renders
//! their artifacts (charts as SVG strings, [`tables`]) without touching disk.
//!
//! ```
//! use joule_lab::estimate::{energy, EnergyOptions};
//!
//! let report = energy(&EnergyOptions::new("alexnet", "eyeriss")).unwrap();
//! assert_eq!(report.total.macs, 724_406_816);
//! let svg = joule_lab::estimate::energy_svg(&report).unwrap();
//! assert!(svg.contains("conv1"));
//! ```

pub mod adapt;
pub mod data;
pub mod doc_tables;
pub mod eliminate;
mod error;
pub mod estimate;
pub mod hardware;
pub mod lut;
pub mod mixed;
mod model;
pub mod page;
pub mod pim_study;
pub mod prune;
pub mod quantize;
pub mod tables;
pub mod train;

pub use data::{Data, DataSpec};
pub use error::{Context, LabError};
pub use hardware::Machine;
pub use joule_compress::RunDir;
pub use model::{allow_non_finite, Model, Source};

// The domain types of the layer's API, so its callers need no other joule crate.
pub use joule_compress::lut::{Context as LutContext, MeasureConfig};
pub use joule_compress::netadapt::{self, AdaptConfig, Budget, Selection};
pub use joule_compress::{CompressError, Method, RunConfig};
pub use joule_energy::{Dataflow, LayerCost, NetworkCost, Objective};
pub use joule_model::{LayerStats, NetworkStats, Shape};
pub use joule_nn::train::Event as TrainEvent;
/// The allocator the binaries install: the engine's buffers on cache lines.
pub use joule_nn::CacheAligned;
pub use joule_nn::Network;

use std::path::Path;

/// The most worker threads a command may ask for.
pub const MAX_THREADS: usize = 1024;

/// Sizes the global worker pool (`None`: `RAYON_NUM_THREADS`, else one thread per core), the
/// calling thread one of its workers ([`joule_nn::threads::init`]): call it first, from the
/// thread that runs the engine.
pub fn init_threads(threads: Option<usize>) -> Result<(), LabError> {
    let Some(n) = threads else {
        // A pool already built (by an earlier call) serves as it is.
        let _ = joule_nn::threads::init(None);
        return Ok(());
    };
    if n == 0 || n > MAX_THREADS {
        return Err(LabError::config(
            "threads",
            format!("{n} is out of range (1 to {MAX_THREADS})"),
        ));
    }
    joule_nn::threads::init(Some(n)).map_err(|e| LabError::config("threads", e))
}

/// Weights, MACs and activations of a model, per layer and in total.
pub fn stats(model: &str, input: Option<Shape>) -> Result<NetworkStats, LabError> {
    stats_of(&Model::load(model)?, input)
}

/// [`stats`] of a model already loaded.
pub fn stats_of(model: &Model, input: Option<Shape>) -> Result<NetworkStats, LabError> {
    NetworkStats::of(model.graph(), input).context(|| model.spec().to_string())
}

/// A note when `model`'s input has a dynamic batch axis and no `input` shape fixes it:
/// batch 1 is assumed.
pub fn batch_note(model: &Model, input: Option<Shape>) -> Option<String> {
    let graph = model.graph();
    match (input, &graph.input_spec, graph.input_shape) {
        (None, Some(spec), Some(_)) if spec.dynamic_batch() => Some(format!(
            "{}: input {:?} has a dynamic batch axis; batch 1 assumed (--input-shape sets it)",
            model.spec(),
            spec.name
        )),
        _ => None,
    }
}

/// One zoo entry with its statistics.
pub struct ZooEntry {
    pub name: &'static str,
    pub description: &'static str,
    pub stats: NetworkStats,
}

/// The built-in models with their statistics.
pub fn zoo() -> Result<Vec<ZooEntry>, LabError> {
    joule_model::zoo::entries()
        .iter()
        .map(|e| {
            Ok(ZooEntry {
                name: e.name,
                description: e.description,
                stats: NetworkStats::of(&(e.build)(), None)?,
            })
        })
        .collect()
}

/// Writes a model with its weights as ONNX; `init_seed` initialises missing weights.
/// Returns the nodes and parameters written.
pub fn export(model: &str, out: &Path, init_seed: Option<u64>) -> Result<(usize, usize), LabError> {
    let model = Model::load(model)?;
    let graph = match init_seed {
        Some(seed) => model.network(seed)?.into_graph(),
        None => model.into_graph(),
    };
    joule_onnx::export_file(&graph, out)?;
    let params = graph
        .nodes()
        .iter()
        .flat_map(|n| &n.params)
        .map(|t| t.len())
        .sum();
    Ok((graph.len(), params))
}

/// Writes a file the user named (a chart, a table) atomically.
pub fn write_file(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), LabError> {
    joule_model::fs::write_atomic(path, bytes.as_ref()).map_err(|source| LabError::Io {
        path: path.to_path_buf(),
        source,
    })
}
