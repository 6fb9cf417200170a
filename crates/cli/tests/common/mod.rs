//! Helpers shared by the CLI's end-to-end tests: the one way they start `joule`.

#![allow(dead_code)] // each test binary uses its own subset

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The `joule` binary, reading the datasets that scripts/fetch-data.sh put in `<repo>/data`.
pub fn joule() -> Command {
    Command::from_std(joule_process())
}

/// [`joule`] as a plain process, for tests that need its pipes (spawn, a closed stdout).
pub fn joule_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_joule"));
    cmd.env(
        "JOULE_DATA",
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
    );
    cmd
}

/// Runs `joule args`: the exit code, stdout and stderr.
pub fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = joule().args(args).output().unwrap();
    (out.status.code(), stdout(&out), stderr(&out))
}

/// Runs a command expected to succeed; returns its stdout (the failure shows stderr).
#[track_caller]
pub fn succeeds(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, Some(0), "{args:?}: {err}");
    out
}

/// Runs a command expected to fail; returns its stderr after checking exit code 2, a single
/// line, and no panic.
#[track_caller]
pub fn fails(args: &[&str]) -> String {
    let (code, _, err) = run(args);
    assert_eq!(code, Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The JSON a successful command prints.
#[track_caller]
pub fn stdout_json(args: &[&str]) -> Value {
    serde_json::from_str(&succeeds(args)).unwrap()
}

/// A JSON file a command wrote.
#[track_caller]
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
