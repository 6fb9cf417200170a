//! Helpers shared by the CLI's end-to-end tests.

#![allow(dead_code)] // each test binary uses its own subset

use assert_cmd::Command;
use std::path::PathBuf;

/// The `joule` binary, reading the datasets that scripts/fetch-data.sh put in `<repo>/data`.
pub fn joule() -> Command {
    let mut cmd = Command::cargo_bin("joule").unwrap();
    cmd.env(
        "JOULE_DATA",
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
    );
    cmd
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
