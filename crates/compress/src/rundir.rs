//! A run directory: where every long experiment (pruning, NetAdapt, elimination) keeps its
//! state, checkpoints and results.
//!
//! One type owns the rules: a new run refuses a folder that already holds one (its
//! [`RunDir::STATE`] or [`RunDir::SUMMARY`] file), a resumed run needs its state, every file
//! is written atomically ([`joule_model::fs::write_atomic`]), JSON is typed both ways, and a
//! network is saved as a safetensors checkpoint (with masks) plus an ONNX file.

use crate::CompressError;
use joule_nn::{checkpoint, Network};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A folder holding one run.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The state a resumable run rewrites after every step.
    pub const STATE: &'static str = "state.json";
    /// The documented result of a finished run.
    pub const SUMMARY: &'static str = "summary.json";

    /// The folder of a new run; an error if it already holds one. The folder itself is made
    /// by the first write, so a run refused on its settings leaves nothing behind.
    pub fn create(path: &Path) -> Result<RunDir, CompressError> {
        let dir = RunDir {
            path: path.to_path_buf(),
        };
        if let Some(file) = dir.run_file() {
            return Err(CompressError::Resume {
                path: path.to_path_buf(),
                message: format!(
                    "already holds a run ({file}); resume it or choose another output folder"
                ),
            });
        }
        Ok(dir)
    }

    /// Opens the folder of an existing run (it must hold [`RunDir::STATE`]).
    pub fn open(path: &Path) -> Result<RunDir, CompressError> {
        let dir = RunDir {
            path: path.to_path_buf(),
        };
        if !dir.join(Self::STATE).is_file() {
            return Err(CompressError::Resume {
                path: path.to_path_buf(),
                message: format!("holds no run to resume (no {})", Self::STATE),
            });
        }
        Ok(dir)
    }

    /// Opens the run in `path` when `resume` is set and it holds one, else creates a new one.
    pub fn create_or_resume(path: &Path, resume: bool) -> Result<(RunDir, bool), CompressError> {
        if resume && path.join(Self::STATE).is_file() {
            Ok((RunDir::open(path)?, true))
        } else {
            Ok((RunDir::create(path)?, false))
        }
    }

    /// The file that marks a run, if any.
    fn run_file(&self) -> Option<&'static str> {
        [Self::STATE, Self::SUMMARY]
            .into_iter()
            .find(|f| self.join(f).exists())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `bytes` to `name` atomically, creating its sub-folder if needed.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> Result<(), CompressError> {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| CompressError::file(parent, e))?;
        }
        joule_model::fs::write_atomic(&path, bytes.as_ref())
            .map_err(|e| CompressError::file(&path, e))
    }

    /// Writes `value` as pretty JSON (floats round-trip exactly).
    pub fn write_json<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<(), CompressError> {
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|e| CompressError::file(self.join(name), e))?;
        text.push('\n');
        self.write(name, text)
    }

    /// Reads `name` as JSON of type `T`; the error names the file and what is wrong.
    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<T, CompressError> {
        read_json(&self.join(name))
    }

    /// Saves `network` as `<stem>.safetensors` (with masks) and `<stem>.onnx`; returns the
    /// checkpoint's name.
    pub fn save_network(&self, stem: &str, network: &Network) -> Result<String, CompressError> {
        let name = format!("{stem}.safetensors");
        self.save_checkpoint(&name, network)?;
        let onnx = self.join(&format!("{stem}.onnx"));
        joule_onnx::export_file(network.graph(), &onnx)
            .map_err(|e| CompressError::file(&onnx, e))?;
        Ok(name)
    }

    /// Saves only the safetensors checkpoint `name` (intermediate steps).
    pub fn save_checkpoint(&self, name: &str, network: &Network) -> Result<(), CompressError> {
        self.write(name, checkpoint::to_bytes(network)?)
    }

    pub fn load_network(&self, name: &str) -> Result<Network, CompressError> {
        Ok(checkpoint::load(&self.join(name))?)
    }
}

/// The first top-level field (in alphabetical order) in which two settings differ, as
/// `(field, stored, given)` with the values in JSON: what a resumed run names when a flag
/// contradicts its stored settings.
pub fn first_difference<T: Serialize>(stored: &T, given: &T) -> Option<(String, String, String)> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(stored), serde_json::to_value(given))
    else {
        return None;
    };
    a.iter().find_map(|(field, value)| {
        let other = b.get(field).unwrap_or(&serde_json::Value::Null);
        (value != other).then(|| (field.clone(), value.to_string(), other.to_string()))
    })
}

/// Reads a JSON file of type `T`, naming the file in errors.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, CompressError> {
    let text = std::fs::read_to_string(path).map_err(|e| CompressError::file(path, e))?;
    serde_json::from_str(&text).map_err(|e| CompressError::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_setting_is_named() {
        #[derive(serde::Serialize)]
        struct Settings {
            data: String,
            epochs: usize,
        }
        let stored = Settings {
            data: "mnist".into(),
            epochs: 2,
        };
        let given = Settings {
            data: "fashion-mnist".into(),
            epochs: 2,
        };
        assert_eq!(
            first_difference(&stored, &given),
            Some((
                "data".into(),
                "\"mnist\"".into(),
                "\"fashion-mnist\"".into()
            ))
        );
        assert_eq!(first_difference(&stored, &stored), None);
    }

    #[test]
    fn a_new_run_refuses_a_folder_holding_one_and_resume_needs_state() {
        let dir = std::env::temp_dir().join(format!("joule-rundir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(RunDir::open(&dir).is_err());
        let run = RunDir::create(&dir).unwrap();
        run.write_json(RunDir::STATE, &vec![0.1f64, 1.0 / 3.0])
            .unwrap();
        let back: Vec<f64> = run.read_json(RunDir::STATE).unwrap();
        assert_eq!(back, vec![0.1, 1.0 / 3.0], "floats must round-trip exactly");
        let err = RunDir::create(&dir).unwrap_err().to_string();
        assert!(err.contains("already holds a run (state.json)"), "{err}");
        assert!(RunDir::open(&dir).is_ok());
        let (_, resumed) = RunDir::create_or_resume(&dir, true).unwrap();
        assert!(resumed);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
