//! The one model loader: a zoo name, an ONNX file or a joule checkpoint, parsed once, and
//! from it the graph (for statistics and energy), a trainable network (with the
//! checkpoint's masks), or a trained one (the zoo recipe when there are no weights).

use crate::data::Data;
use crate::error::{Context, LabError};
use joule_model::{zoo, Graph};
use joule_nn::train::Event;
use joule_nn::{checkpoint, recipe, train, Network};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether models with NaN or infinite weights may be loaded (off by default).
static ALLOW_NON_FINITE: AtomicBool = AtomicBool::new(false);

/// Lets [`Model::load`] load models whose weights hold NaN or infinity (to inspect or
/// export a diverged checkpoint). Off by default: such a model predicts nothing, and every
/// command would otherwise report its numbers as if they meant something. A process-wide
/// switch, like the thread pool, because every front end loads models through several
/// library calls.
pub fn allow_non_finite(allow: bool) {
    ALLOW_NON_FINITE.store(allow, Ordering::Relaxed);
}

/// Where a model came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Zoo,
    Onnx(PathBuf),
    Checkpoint(PathBuf),
}

/// A loaded model.
#[derive(Clone, Debug)]
pub struct Model {
    spec: String,
    source: Source,
    graph: Graph,
    /// A checkpoint's network, masks included (rebuilding it from the graph would lose them).
    network: Option<Network>,
}

impl Model {
    /// Loads `spec`: a zoo name (`alexnet`), an `.onnx` file or a `.safetensors` checkpoint.
    pub fn load(spec: &str) -> Result<Model, LabError> {
        if let Ok(graph) = zoo::build(spec) {
            return Ok(Model {
                spec: spec.to_string(),
                source: Source::Zoo,
                graph,
                network: None,
            });
        }
        let path = Path::new(spec);
        let looks_like_file =
            path.extension().is_some() || spec.contains(std::path::MAIN_SEPARATOR);
        if !looks_like_file {
            return Err(LabError::UnknownModel {
                spec: spec.to_string(),
            });
        }
        let (source, graph, network) = match path.extension().and_then(|e| e.to_str()) {
            Some("onnx") => (
                Source::Onnx(path.to_path_buf()),
                joule_onnx::import_file(path)?,
                None,
            ),
            Some("safetensors") => {
                let network = checkpoint::load(path)?;
                let graph = network.graph().clone();
                (Source::Checkpoint(path.to_path_buf()), graph, Some(network))
            }
            _ => {
                return Err(LabError::UnsupportedModelFile {
                    path: path.to_path_buf(),
                })
            }
        };
        if !ALLOW_NON_FINITE.load(Ordering::Relaxed) {
            checkpoint::check_finite(&graph, || spec.to_string()).map_err(|e| {
                LabError::NonFinite {
                    source: Box::new(e),
                }
            })?;
        }
        Ok(Model {
            spec: spec.to_string(),
            source,
            graph,
            network,
        })
    }

    /// Wraps a graph built in memory (an ONNX import of bytes, a zoo graph) under `name`.
    pub fn from_graph(name: &str, graph: Graph) -> Model {
        Model {
            spec: name.to_string(),
            source: Source::Zoo,
            graph,
            network: None,
        }
    }

    /// Imports an ONNX model held in memory (a serialised `ModelProto`) under `name`, which
    /// also names the graph when the model gives it none.
    pub fn from_onnx_bytes(bytes: &[u8], name: &str) -> Result<Model, LabError> {
        let graph =
            joule_onnx::import_bytes(bytes, name).map_err(|source| LabError::OnnxBytes {
                name: name.to_string(),
                source: Box::new(source),
            })?;
        Ok(Model::from_graph(name, graph))
    }

    /// The argument the model was loaded from.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// A short name for titles: a file's stem, else the zoo name.
    pub fn name(&self) -> String {
        match &self.source {
            Source::Zoo => self.spec.clone(),
            Source::Onnx(p) | Source::Checkpoint(p) => p
                .file_stem()
                .map_or(self.spec.clone(), |s| s.to_string_lossy().into_owned()),
        }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn into_graph(self) -> Graph {
        self.graph
    }

    /// Whether every CONV/FC layer carries weights.
    pub fn has_weights(&self) -> bool {
        self.graph
            .weighted_layers()
            .all(|(_, node)| !node.params.is_empty())
    }

    /// The first CONV/FC layer without weights, if any.
    pub fn untrained_layer(&self) -> Option<&str> {
        self.graph
            .weighted_layers()
            .find(|(_, node)| node.params.is_empty())
            .map(|(_, node)| node.name.as_str())
    }

    /// A network to train or run: a checkpoint as saved (masks included); otherwise the
    /// graph, with missing weights initialised from `seed`.
    pub fn network(&self, seed: u64) -> Result<Network, LabError> {
        match &self.network {
            Some(network) => Ok(network.clone()),
            None => Network::new(self.graph.clone(), seed).context(|| self.spec.clone()),
        }
    }

    /// A network that has weights and may be trusted with them: as [`Model::network`] when
    /// every layer carries weights, else an error naming the first untrained layer.
    pub fn weighted_network(&self) -> Result<Network, LabError> {
        if let Some(layer) = self.untrained_layer() {
            return Err(LabError::Setting {
                field: "model".into(),
                value: self.spec.clone(),
                message: format!(
                    "layer {layer} has no trained weights (give a checkpoint from `joule train` or an ONNX file with weights)"
                ),
            });
        }
        self.network(0)
    }

    /// A trained network: as [`Model::network`] when the model has weights; otherwise
    /// trained on `data` with the zoo's recipe for it (`on_event` sees every batch).
    pub fn trained(
        &self,
        data: &Data,
        seed: u64,
        on_event: impl FnMut(&Event),
    ) -> Result<Network, LabError> {
        let mut network = self.network(seed)?;
        if self.has_weights() {
            return Ok(network);
        }
        let mut config = recipe::recipe(&self.spec, data.source);
        config.seed = seed;
        train(&mut network, &data.train, &config, on_event)?;
        Ok(network)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_names_files_and_nonsense() {
        let m = Model::load("lenet5").unwrap();
        assert_eq!((m.name(), m.source()), ("lenet5".to_string(), &Source::Zoo));
        assert!(!m.has_weights());
        assert_eq!(m.untrained_layer(), Some("conv1"));
        let err = Model::load("lenet6").unwrap_err().to_string();
        assert!(err.contains("unknown model \"lenet6\""), "{err}");
        let err = Model::load("model.h5").unwrap_err().to_string();
        assert!(err.starts_with("model.h5: unsupported model file"), "{err}");
        let err = Model::load("/nonexistent/m.onnx").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/m.onnx"), "{err}");
    }

    #[test]
    fn non_finite_weights_are_refused_unless_allowed() {
        let mut network = Model::load("lenet300").unwrap().network(1).unwrap();
        network.params_mut(joule_model::NodeId(1))[1].data[7] = f32::INFINITY;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("diverged.safetensors");
        std::fs::write(&path, checkpoint::to_bytes(&network).unwrap()).unwrap();
        let spec = path.to_str().unwrap();
        let err = Model::load(spec).unwrap_err().to_string();
        assert!(
            err.contains("diverged.safetensors: tensor fc1.bias holds inf at index 7"),
            "{err}"
        );
        allow_non_finite(true);
        let loaded = Model::load(spec);
        allow_non_finite(false);
        assert!(loaded.is_ok());
    }

    #[test]
    fn onnx_bytes_round_trip_and_garbage() {
        let graph = Model::load("lenet5")
            .unwrap()
            .network(1)
            .unwrap()
            .into_graph();
        let bytes = joule_onnx::export_bytes(&graph).unwrap();
        let m = Model::from_onnx_bytes(&bytes, "mine").unwrap();
        assert_eq!(m.spec(), "mine");
        assert_eq!(m.graph().len(), graph.len());
        let err = Model::from_onnx_bytes(b"not onnx", "junk")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("model \"junk\" (ONNX bytes): not a valid ONNX model"),
            "{err}"
        );
    }
}
