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

/// The first NaN or infinite learned value of `graph`, as an error naming its checkpoint
/// tensor; `place` says where (a file, a step).
pub fn check_finite(graph: &Graph, place: impl FnOnce() -> String) -> Result<(), NnError> {
    match graph.first_non_finite() {
        None => Ok(()),
        Some(bad) => {
            let op = &graph
                .node(graph.find(&bad.node).expect("the node is in the graph"))
                .op;
            Err(NnError::NonFiniteWeights {
                place: place(),
                tensor: param_name(&bad.node, op, bad.param),
                index: bad.index,
                value: bad.value,
            })
        }
    }
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

/// Writes `network` to `path` (atomically). A network with NaN or infinite weights is
/// refused: a checkpoint is read back as a good model.
pub fn save(network: &Network, path: &Path) -> Result<(), NnError> {
    check_finite(network.graph(), || {
        format!("refusing to write {}", path.display())
    })?;
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
    check_header(bytes).map_err(|(field, detail)| bad(&field, detail))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad("header", e.to_string()))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(GRAPH_KEY))
        .ok_or_else(|| bad(GRAPH_KEY, "missing: not a joule checkpoint".into()))?;
    let mut graph: Graph = serde_json::from_str(json).map_err(|e| bad(GRAPH_KEY, e.to_string()))?;
    // The graph is data from a file: check its structure before anything indexes by it.
    let graph_error = |e: joule_model::ModelError| bad(GRAPH_KEY, e.to_string());
    graph.validate().map_err(graph_error)?;
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
    let input = graph.resolve_input(None).map_err(graph_error)?;
    let shapes = graph
        .infer(joule_model::Shape { n: 1, ..input })
        .map_err(graph_error)?;
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
    let mut network = Network::new(graph, 0).map_err(|e| bad(GRAPH_KEY, e.to_string()))?;
    for (id, mask) in masks {
        let key = format!("{}.mask", network.graph().node(id).name);
        network
            .set_mask(id, mask)
            .map_err(|e| bad(&key, e.to_string()))?;
    }
    Ok(network)
}

/// Largest safetensors header joule reads (the JSON before the data): 100 MB, the limit of
/// the `safetensors` crate itself.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor's entry in a safetensors header.
#[derive(serde::Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// Checks what a safetensors file declares against what it holds, before the `safetensors`
/// crate reads it: the header length against the file, then every tensor's shape, dtype and
/// offsets against the data, so that an error names the tensor at fault (the crate says
/// only `TensorInvalidInfo`, or names another tensor). Returns the field (`header` or the
/// tensor's name) and what is wrong.
fn check_header(bytes: &[u8]) -> Result<(), (String, String)> {
    let header = |detail: String| ("header".to_string(), detail);
    let Some(length) = bytes.get(..8) else {
        return Err(header(format!(
            "{} bytes is too short for a safetensors file (8-byte header length)",
            bytes.len()
        )));
    };
    let declared = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    let rest = (bytes.len() - 8) as u64;
    if declared > rest || declared > MAX_HEADER_BYTES {
        return Err(header(format!(
            "declares a {declared}-byte header; the file holds {rest} bytes after the length (at most {MAX_HEADER_BYTES} are read)"
        )));
    }
    let end = 8 + declared as usize;
    let entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..end]).map_err(|e| header(e.to_string()))?;
    let data = (bytes.len() - end) as u64;
    for (name, value) in entries {
        if name == "__metadata__" {
            continue;
        }
        let tensor = |detail: String| (name.clone(), detail);
        let entry: TensorEntry =
            serde_json::from_value(value).map_err(|e| tensor(e.to_string()))?;
        let size = match entry.dtype.as_str() {
            "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
            "I16" | "U16" | "F16" | "BF16" => 2,
            "I32" | "U32" | "F32" => 4,
            "I64" | "U64" | "F64" => 8,
            other => return Err(tensor(format!("unknown dtype {other:?}"))),
        };
        let needed = entry
            .shape
            .iter()
            .try_fold(size, |acc: u64, &d| acc.checked_mul(d))
            .ok_or_else(|| tensor(format!("shape {:?} is too large", entry.shape)))?;
        let [begin, finish] = entry.data_offsets;
        if begin > finish || finish > data {
            return Err(tensor(format!(
                "data offsets [{begin}, {finish}] lie outside the file's {data} bytes of data"
            )));
        }
        if finish - begin != needed {
            return Err(tensor(format!(
                "shape {:?} of {} needs {needed} bytes, its data offsets [{begin}, {finish}] span {}",
                entry.shape,
                entry.dtype,
                finish - begin
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    fn network() -> Network {
        Network::new(joule_model::zoo::build("lenet300").unwrap(), 1).unwrap()
    }

    /// `bytes` with its header JSON edited by `edit`.
    fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut Json)) -> Vec<u8> {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut header: Json = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        edit(&mut header);
        let text = serde_json::to_vec(&header).unwrap();
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&text);
        out.extend_from_slice(&bytes[8 + n..]);
        out
    }

    fn error_of(bytes: &[u8]) -> String {
        match from_bytes(bytes, Path::new("edited.safetensors")) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn round_trips() {
        let net = network();
        let back = from_bytes(&to_bytes(&net).unwrap(), Path::new("x")).unwrap();
        assert_eq!(back.graph(), net.graph());
    }

    #[test]
    fn a_graph_naming_a_missing_or_later_node_is_an_error_naming_the_file() {
        let bytes = to_bytes(&network()).unwrap();
        for target in [1, 99] {
            let edited = rewrite(&bytes, |h| {
                let meta = &mut h["__metadata__"][GRAPH_KEY];
                let mut graph: Json = serde_json::from_str(meta.as_str().unwrap()).unwrap();
                graph["nodes"][1]["inputs"] = serde_json::json!([{ "Node": target }]);
                *meta = Json::String(graph.to_string());
            });
            let err = error_of(&edited);
            assert!(
                err.starts_with("edited.safetensors: joule.graph: ") && err.contains("node #"),
                "{err}"
            );
        }
    }

    #[test]
    fn header_errors_name_the_tensor() {
        let bytes = to_bytes(&network()).unwrap();
        let edited = rewrite(&bytes, |h| {
            h["fc2.bias"]["shape"] = serde_json::json!([101])
        });
        let err = error_of(&edited);
        assert!(
            err.starts_with("edited.safetensors: fc2.bias: shape [101]"),
            "{err}"
        );
        let edited = rewrite(&bytes, |h| {
            h["fc1.weight"]["data_offsets"] = serde_json::json!([0, u64::MAX])
        });
        assert!(error_of(&edited).contains("fc1.weight: data offsets"));
        let edited = rewrite(&bytes, |h| h["fc1.weight"]["dtype"] = "Q4".into());
        assert!(error_of(&edited).contains("fc1.weight: unknown dtype"));
        // A length that declares more header than the file holds.
        let mut long = bytes.clone();
        long[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(error_of(&long)
            .starts_with("edited.safetensors: header: declares a 1099511627776-byte header"));
        assert!(error_of(&bytes[..5]).contains("too short"));
    }

    #[test]
    fn non_finite_weights_are_not_saved() {
        let mut net = network();
        net.params_mut(NodeId(1))[0].data[3] = f32::NAN;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nan.safetensors");
        let err = save(&net, &path).unwrap_err().to_string();
        assert!(err.contains("fc1.weight holds NaN at index 3"), "{err}");
        assert!(!path.exists());
    }
}
