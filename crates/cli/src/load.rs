//! Resolving a model argument: a zoo name or a file.

use anyhow::{bail, Result};
use joule_model::{zoo, Graph};
use std::path::Path;

/// Loads `spec`: a zoo name (`alexnet`) or a path to an `.onnx` file.
pub fn model(spec: &str) -> Result<Graph> {
    if let Ok(graph) = zoo::build(spec) {
        return Ok(graph);
    }
    let path = Path::new(spec);
    let looks_like_file = path.extension().is_some() || spec.contains(std::path::MAIN_SEPARATOR);
    if !looks_like_file {
        bail!("unknown model {spec:?}: not a zoo name (see `joule zoo`) and not a file path");
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("onnx") => Ok(joule_onnx::import_file(path)?),
        Some("safetensors") => Ok(joule_nn::checkpoint::load(path)?.into_graph()),
        _ => bail!(
            "{}: unsupported model file (expected a zoo name, a .onnx file or a .safetensors checkpoint)",
            path.display()
        ),
    }
}
