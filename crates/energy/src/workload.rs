//! The workload: one CONV/FC layer's loop nest, with the data properties (density, bitwidth)
//! that the cost model consumes. Built from the IR's [`LoopNest`].

use crate::access::PerTensor;
use crate::EnergyError;
use joule_model::{Graph, LayerClass, LoopNest, Shape};
use serde::{Deserialize, Serialize};

/// Fraction of non-zero values: 1.0 is dense.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Density {
    pub ifmap: f64,
    pub weight: f64,
}

impl Default for Density {
    fn default() -> Self {
        Density {
            ifmap: 1.0,
            weight: 1.0,
        }
    }
}

/// Bits per value of each data type; `None` means the hardware's word width.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bitwidth {
    pub ifmap: Option<u32>,
    pub filter: Option<u32>,
    pub psum: Option<u32>,
}

impl Bitwidth {
    /// The width of each tensor, defaulting to `word_bits`.
    pub fn resolve(&self, word_bits: u32) -> PerTensor<u32> {
        PerTensor {
            ifmap: self.ifmap.unwrap_or(word_bits),
            filter: self.filter.unwrap_or(word_bits),
            psum: self.psum.unwrap_or(word_bits),
        }
    }
}

/// One layer to map: its name, class and loop nest (whole batch), plus data properties.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub name: String,
    pub class: LayerClass,
    pub nest: LoopNest,
    pub density: Density,
    pub bits: Bitwidth,
}

impl Workload {
    /// A dense layer at the hardware's word width.
    pub fn new(name: impl Into<String>, class: LayerClass, nest: LoopNest) -> Workload {
        Workload {
            name: name.into(),
            class,
            nest,
            density: Density::default(),
            bits: Bitwidth::default(),
        }
    }

    /// Checks the densities and bitwidths, naming the field on error.
    pub fn validate(&self, source: &str) -> Result<(), EnergyError> {
        let err = |field: &str, message: String| EnergyError::Setting {
            source_name: source.to_string(),
            layer: self.name.clone(),
            field: field.to_string(),
            message,
        };
        for (field, d) in [
            ("density.ifmap", self.density.ifmap),
            ("density.weight", self.density.weight),
        ] {
            if !(0.0..=1.0).contains(&d) {
                return Err(err(field, format!("must be in [0, 1], got {d}")));
            }
        }
        for (field, b) in [
            ("bits.ifmap", self.bits.ifmap),
            ("bits.filter", self.bits.filter),
            ("bits.psum", self.bits.psum),
        ] {
            if let Some(b) = b {
                if b == 0 || b > 64 {
                    return Err(err(field, format!("must be 1..=64, got {b}")));
                }
            }
        }
        Ok(())
    }

    /// Padded ifmap height that the layer reads (rows touched by the sliding window).
    pub fn ifmap_rows(&self) -> u64 {
        ((self.nest.p - 1) * self.nest.stride_h + self.nest.effective_r()) as u64
    }

    /// Padded ifmap width that the layer reads.
    pub fn ifmap_cols(&self) -> u64 {
        ((self.nest.q - 1) * self.nest.stride_w + self.nest.effective_s()) as u64
    }
}

/// The CONV and FC layers of a graph as workloads with batch size `batch` (dense).
/// Weight densities are measured from the graph's filter tensors where it has them (ONNX).
/// Imported models add Linear layers (class `fc`) and products of two activations (class
/// `matmul`, whose filter is an activation: density 1, nothing pre-loaded); element-wise,
/// normalisation and layout ops (class `other`) are skipped, as they do not run on the PE
/// array (docs/energy.md, "Imported models").
pub fn from_graph(
    graph: &Graph,
    input: Option<Shape>,
    batch: usize,
) -> Result<Vec<Workload>, EnergyError> {
    let model_err = |source: joule_model::ModelError| EnergyError::Model {
        model: graph.name.clone(),
        source: Box::new(source),
    };
    if batch == 0 {
        return Err(EnergyError::EmptyBatch {
            model: graph.name.clone(),
        });
    }
    let mut shape = graph.resolve_input(input).map_err(model_err)?;
    shape.n = batch;
    let shapes = graph.infer(shape).map_err(model_err)?;
    let mut layers = Vec::new();
    for (node, node_shapes) in graph.nodes().iter().zip(&shapes) {
        let class = node.op.class();
        let Some(nest) = node_shapes.loop_nest else {
            continue;
        };
        if class == LayerClass::Other {
            continue;
        }
        let mut w = Workload::new(node.name.clone(), class, nest);
        if let Some(filter) = node.params.first() {
            if !filter.is_empty() {
                // A layer of all zeros would have density 0; keep it positive.
                w.density.weight = filter.density().max(1.0 / filter.len() as f64);
            }
        }
        layers.push(w);
    }
    Ok(layers)
}

/// Densities of one layer as given in a density file; a missing key keeps the layer's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensityEntry {
    pub weight: Option<f64>,
    pub ifmap: Option<f64>,
}

/// Per-layer densities: layer name -> `{weight, ifmap}`. Read from YAML or JSON with
/// [`parse_densities`] / [`load_densities`], or built in code (the pruning crates do), then
/// applied with [`apply_densities`].
///
/// ```yaml
/// conv1: {weight: 0.35, ifmap: 1.0}
/// fc6: {weight: 0.09}
/// ```
pub type LayerDensities = std::collections::BTreeMap<String, DensityEntry>;

/// Parses a density file's text; `file` names it in errors. Densities must lie in [0, 1].
pub fn parse_densities(text: &str, file: &str) -> Result<LayerDensities, EnergyError> {
    let spec_err = |field: String, message: String| EnergyError::Spec {
        file: file.to_string(),
        field,
        message,
    };
    let map: LayerDensities = EnergyError::parse_yaml(text, file)?;
    for (layer, entry) in &map {
        for (key, value) in [("weight", entry.weight), ("ifmap", entry.ifmap)] {
            if let Some(d) = value {
                if !(0.0..=1.0).contains(&d) {
                    return Err(spec_err(
                        format!("{layer}.{key}"),
                        format!("density must be in [0, 1], got {d}"),
                    ));
                }
            }
        }
    }
    Ok(map)
}

/// Reads a density file (YAML or JSON).
pub fn load_densities(path: &std::path::Path) -> Result<LayerDensities, EnergyError> {
    let file = path.display().to_string();
    let text = EnergyError::read(path, &file)?;
    parse_densities(&text, &file)
}

/// Sets the densities of the named layers; a name that is no CONV/FC layer of `layers` is an
/// error naming `source` (the file) and the name.
pub fn apply_densities(
    layers: &mut [Workload],
    densities: &LayerDensities,
    source: &str,
) -> Result<(), EnergyError> {
    for (name, entry) in densities {
        let Some(w) = layers.iter_mut().find(|w| &w.name == name) else {
            let known: Vec<&str> = layers.iter().map(|w| w.name.as_str()).collect();
            return Err(EnergyError::Spec {
                file: source.to_string(),
                field: name.clone(),
                message: format!(
                    "no CONV/FC layer of that name (layers: {})",
                    known.join(", ")
                ),
            });
        };
        if let Some(d) = entry.weight {
            w.density.weight = d;
        }
        if let Some(d) = entry.ifmap {
            w.density.ifmap = d;
        }
    }
    Ok(())
}

/// Per-layer bit-widths: layer name -> `{ifmap, filter, psum}` (a missing key keeps the
/// layer's width). Read from YAML or JSON with [`parse_bitwidths`] / [`load_bitwidths`], or
/// built in code (quantization does), then applied with [`apply_bitwidths`].
///
/// ```yaml
/// conv1: {ifmap: 8, filter: 8}
/// fc6: {filter: 4}
/// ```
pub type LayerBitwidths = std::collections::BTreeMap<String, Bitwidth>;

/// Parses a bit-width file's text; `file` names it in errors. Widths must lie in 1..=64.
pub fn parse_bitwidths(text: &str, file: &str) -> Result<LayerBitwidths, EnergyError> {
    let map: LayerBitwidths = EnergyError::parse_yaml(text, file)?;
    for (layer, entry) in &map {
        for (key, value) in [
            ("ifmap", entry.ifmap),
            ("filter", entry.filter),
            ("psum", entry.psum),
        ] {
            if let Some(b) = value.filter(|b| !(1..=64).contains(b)) {
                return Err(EnergyError::Spec {
                    file: file.to_string(),
                    field: format!("{layer}.{key}"),
                    message: format!("bits must be 1..=64, got {b}"),
                });
            }
        }
    }
    Ok(map)
}

/// Reads a bit-width file (YAML or JSON).
pub fn load_bitwidths(path: &std::path::Path) -> Result<LayerBitwidths, EnergyError> {
    let file = path.display().to_string();
    let text = EnergyError::read(path, &file)?;
    parse_bitwidths(&text, &file)
}

/// Sets the widths of the named layers; a name that is no CONV/FC layer of `layers` is an
/// error naming `source` and the name.
pub fn apply_bitwidths(
    layers: &mut [Workload],
    bits: &LayerBitwidths,
    source: &str,
) -> Result<(), EnergyError> {
    for (name, entry) in bits {
        let Some(w) = layers.iter_mut().find(|w| &w.name == name) else {
            let known: Vec<&str> = layers.iter().map(|w| w.name.as_str()).collect();
            return Err(EnergyError::Spec {
                file: source.to_string(),
                field: name.clone(),
                message: format!(
                    "no CONV/FC layer of that name (layers: {})",
                    known.join(", ")
                ),
            });
        };
        w.bits.ifmap = entry.ifmap.or(w.bits.ifmap);
        w.bits.filter = entry.filter.or(w.bits.filter);
        w.bits.psum = entry.psum.or(w.bits.psum);
    }
    Ok(())
}
