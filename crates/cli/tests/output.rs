//! A closed or full standard output ends joule cleanly: exit 0 when the reader went away
//! (`joule zoo | head -0`), a one-line error with exit 2 on a full device, never a panic.

use std::process::{Command, Stdio};

fn joule() -> Command {
    Command::new(env!("CARGO_BIN_EXE_joule"))
}

#[test]
fn a_closed_pipe_ends_quietly_with_exit_0() {
    // The reader closes its end before joule writes a line.
    let mut child = joule()
        .args(["energy", "alexnet", "--hw", "eyeriss"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_full_device_is_a_one_line_error() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = joule()
        .arg("zoo")
        .stdout(Stdio::from(full))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("standard output: No space left on device"),
        "{err}"
    );
}
