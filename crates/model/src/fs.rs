//! The one way joule writes a file: to a temporary file in the same folder, synced, then
//! renamed over the target, so a kill at any moment leaves either the old file or the new
//! one, never a truncated mix. Every crate that writes (checkpoints, ONNX, run state,
//! summaries, charts) goes through [`write_atomic`].

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (same-folder temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `<folder>/.<name>.tmp-<pid>`: hidden, in the target's folder (a rename never crosses
/// file systems), unique per process so two writers never share one.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("joule-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new contents").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
        // A folder that does not exist: an error, and nothing created.
        assert!(write_atomic(&dir.join("missing/b.json"), b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
