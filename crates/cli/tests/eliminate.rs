//! `joule eliminate`: bad arguments give a one-line error naming the argument, exit code 2,
//! before any data is read (so these need no dataset).

use assert_cmd::Command;

#[track_caller]
fn fails(args: &[&str]) -> String {
    let out = Command::cargo_bin("joule")
        .unwrap()
        .arg("eliminate")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

const BASE: [&str; 6] = [
    "--model",
    "lenet300",
    "--data",
    "mnist",
    "--out",
    "/nonexistent/x",
];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    BASE.iter().copied().chain(extra.iter().copied()).collect()
}

#[test]
fn bad_arguments_name_the_argument() {
    let e = fails(&with(&["--max-drop", "-1"]));
    assert!(e.contains("--max-drop") && e.contains("-1"), "{e}");
    let e = fails(&with(&["--layer", "fc9"]));
    assert!(e.contains("--layer fc9") && e.contains("fc1, fc2"), "{e}");
    let e = fails(&with(&["--layer", "flatten"]));
    assert!(
        e.contains("--layer flatten") && e.contains("not fully connected"),
        "{e}"
    );
    let e = fails(&with(&["--layer", "fc3"]));
    assert!(
        e.contains("--layer fc3") && e.contains("output layer"),
        "{e}"
    );
    let e = fails(&with(&["--hw", "nosuchchip"]));
    assert!(e.contains("--hw nosuchchip"), "{e}");
    // A zoo name has no trained weights.
    let e = fails(&with(&[]));
    assert!(
        e.contains("--model lenet300") && e.contains("no trained weights"),
        "{e}"
    );
}
