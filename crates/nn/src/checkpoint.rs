//! Checkpoints in safetensors: one tensor per learned parameter (`<node>.weight`,
//! `<node>.bias`, batch norm's `<node>.scale/.bias/.mean/.var`), one per weight mask
//! (`<node>.mask`), and the graph structure as JSON under the metadata key `joule.graph`,
//! so any safetensors reader gets the weights and joule gets the network back exactly.

use crate::{Network, NnError};
use joule_model::{Graph, NodeId, Op, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;

/// Metadata key holding the serialized graph (without parameters).
pub const GRAPH_KEY: &str = "joule.graph";

/// Name of parameter `index` of a node with op `op`.
pub fn param_name(node: &str, op: &Op, index: usize) -> String {
    let suffix = match (op, index) {
        (Op::BatchNorm(_), 0) => "scale",
        (Op::BatchNorm(_), 1) => "bias",
        (Op::BatchNorm(_), 2) => "mean",
        (Op::BatchNorm(_), 3) => "var",
        (_, 0) => "weight",
        (_, 1) => "bias",
        _ => "param",
    };
    format!("{node}.{suffix}")
}

fn le_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Serializes a network into safetensors bytes.
pub fn to_bytes(network: &Network) -> Result<Vec<u8>, NnError> {
    let graph = network.graph();
    let mut structure = graph.clone();
    for i in 0..structure.len() {
        structure.node_mut(NodeId(i)).params.clear();
    }
    let json = serde_json::to_string(&structure).expect("graphs serialize");
    let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, node) in graph.nodes().iter().enumerate() {
        for (k, t) in node.params.iter().enumerate() {
            named.push((
                param_name(&node.name, &node.op, k),
                t.shape.clone(),
                le_bytes(&t.data),
            ));
        }
        if let Some(mask) = network.mask(NodeId(i)) {
            named.push((
                format!("{}.mask", node.name),
                node.params[0].shape.clone(),
                le_bytes(mask),
            ));
        }
    }
    let views: Vec<(String, TensorView)> = named
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes).expect("sizes agree");
            (name.clone(), view)
        })
        .collect();
    let metadata = HashMap::from([(GRAPH_KEY.to_string(), json)]);
    safetensors::serialize(views, &Some(metadata)).map_err(|e| NnError::Input(e.to_string()))
}

pub fn save(network: &Network, path: &Path) -> Result<(), NnError> {
    let bytes = to_bytes(network)?;
    joule_model::fs::write_atomic(path, &bytes).map_err(|e| NnError::io(path, e))
}

/// Loads a checkpoint written by [`save`]: the network with its parameters and masks.
pub fn load(path: &Path) -> Result<Network, NnError> {
    let bytes = std::fs::read(path).map_err(|e| NnError::io(path, e))?;
    from_bytes(&bytes, path)
}

/// Parses checkpoint bytes; `path` names the source in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Network, NnError> {
    let bad = |field: &str, detail: String| NnError::bad_file(path, field, detail);
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad("header", e.to_string()))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(GRAPH_KEY))
        .ok_or_else(|| bad(GRAPH_KEY, "missing: not a joule checkpoint".into()))?;
    let mut graph: Graph = serde_json::from_str(json).map_err(|e| bad(GRAPH_KEY, e.to_string()))?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| bad("header", e.to_string()))?;
    let read = |name: &str| -> Result<Option<Tensor>, NnError> {
        let Ok(view) = tensors.tensor(name) else {
            return Ok(None);
        };
        if view.dtype() != Dtype::F32 {
            return Err(bad(name, format!("dtype {:?}, expected F32", view.dtype())));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        Ok(Some(Tensor {
            shape: view.shape().to_vec(),
            data,
        }))
    };
    let input = graph.resolve_input(None)?;
    let shapes = graph.infer(joule_model::Shape { n: 1, ..input })?;
    let mut masks = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let node = graph.node(NodeId(i));
        let (name, op) = (node.name.clone(), node.op.clone());
        let mut params = Vec::new();
        for (k, want) in op.param_dims(&shape.input_dims).into_iter().enumerate() {
            let key = param_name(&name, &op, k);
            let t = read(&key)?.ok_or_else(|| bad(&key, "tensor missing".into()))?;
            if t.shape != want {
                return Err(bad(&key, format!("shape {:?}, expected {want:?}", t.shape)));
            }
            params.push(t);
        }
        graph.node_mut(NodeId(i)).params = params;
        if let Some(mask) = read(&format!("{name}.mask"))? {
            masks.push((NodeId(i), mask.data));
        }
    }
    let mut network = Network::new(graph, 0)?;
    for (id, mask) in masks {
        network.set_mask(id, mask)?;
    }
    Ok(network)
}
