//! `joule lut` and `joule adapt` end to end on LeNet-5 and a few hundred MNIST images
//! (scripts/fetch-data.sh; missing data fails): the documented outputs, `--resume` from a
//! state left by an interrupted run, the uniform baseline, and one-line errors with exit 2.

mod common;

use common::{joule, read_json, stderr, stdout};
use serde_json::Value;
use std::path::Path;

/// A quick table: 2 levels, few timed runs, one sweep, no gate (the timings themselves are
/// not asserted, and a gate would wait on a busy CI machine).
const QUICK_TIMING: [&str; 10] = [
    "--warmup",
    "1",
    "--round",
    "3",
    "--max-runs",
    "6",
    "--sweeps",
    "1",
    "--gate-tolerance",
    "0",
];

#[test]
fn lut_build_writes_a_table_that_predict_reads() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("lut.json");
    let mut args = vec![
        "lut",
        "build",
        "lenet5",
        "--levels",
        "2",
        "--out",
        table.to_str().unwrap(),
    ];
    args.extend(QUICK_TIMING);
    let out = joule().args(&args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let t = read_json(&table);
    // lenet5: conv1 6, conv2 16, fc1 120, fc2 84 filters; 2 levels = half and full.
    assert_eq!(t["grid"]["layers"]["conv1"], serde_json::json!([3, 6]));
    assert_eq!(t["grid"]["layers"]["fc2"], serde_json::json!([42, 84]));
    assert!(
        t["grid"]["layers"].get("fc3").is_none(),
        "logits are not prunable"
    );
    let entries = t["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(t["overhead"]["median_ms"].is_number());
    // CSV too, with the documented header.
    let csv = dir.path().join("lut.csv");
    let mut args = vec!["lut", "build", "lenet5", "--levels", "2"];
    args.extend(["--out", csv.to_str().unwrap()]);
    args.extend(QUICK_TIMING);
    let out = joule().args(&args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    // A `# model=...` comment line, then the documented header.
    assert!(text.starts_with("# model=lenet5"), "{text}");
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("kind,c,m,h,w,p,q,r,s,stride,groups,inputs,latency_ms"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("overhead,")));

    let out = joule()
        .args(["lut", "predict", "lenet5", "--lut", table.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let predicted: f64 = text
        .split("predicted ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no prediction in {text}"));
    assert!(predicted > 0.0);
    let out = joule()
        .args(["lut", "predict", "lenet5", "--measure"])
        .args(["--lut", table.to_str().unwrap()])
        .args(QUICK_TIMING)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("measured "), "{}", stdout(&out));

    // A network the table was not built for is a one-line error, exit 2.
    let out = joule()
        .args([
            "lut",
            "predict",
            "lenet300",
            "--lut",
            table.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim_end().lines().count(),
        1,
        "{}",
        stderr(&out)
    );
}

/// `joule adapt` on an (untrained) LeNet-5, a MACs budget, the baseline, no timing.
fn adapt(out_dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "adapt",
        "--model",
        "lenet5",
        "--data",
        "mnist",
        "--budget",
        "macs=0.5x",
        "--baseline",
        "--no-measure",
        "--train-samples",
        "300",
        "--holdout",
        "200",
        "--iterations",
        "6",
        "--initial-reduction",
        "0.2",
        "--short-term-batches",
        "3",
        "--batch-size",
        "32",
        "--seed",
        "7",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    joule().args(&args).output().unwrap()
}

const RECORD_KEYS: [&str; 9] = [
    "iteration",
    "accuracy",
    "latency_measured_ms",
    "latency_predicted_ms",
    "energy",
    "macs",
    "weights",
    "channels",
    "checkpoint",
];

#[test]
fn adapt_writes_the_documented_summary_and_resume_ends_where_a_whole_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let out = adapt(&whole, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("Met"), "{}", stdout(&out));
    let summary = read_json(&whole.join("summary.json"));
    assert_eq!(summary["model"], "lenet5");
    assert_eq!(summary["data"], "mnist");
    assert_eq!(summary["budget"], serde_json::json!(["macs=0.5x"]));
    assert_eq!(summary["budget_absolute"]["macs"], 208_260.0);
    assert_eq!(summary["status"]["status"], "met");
    let family = summary["family"].as_array().unwrap();
    assert!(family.len() >= 3, "original + at least two iterations");
    let mut previous = u64::MAX;
    for (i, r) in family.iter().enumerate() {
        for key in RECORD_KEYS {
            assert!(r.get(key).is_some(), "family[{i}] lacks {key}");
        }
        assert_eq!(r["iteration"], i);
        assert!(r["latency_measured_ms"].is_null(), "--no-measure");
        let macs = r["macs"].as_u64().unwrap();
        assert!(macs < previous, "iteration {i} did not shrink");
        previous = macs;
        let checkpoint = r["checkpoint"].as_str().unwrap();
        assert!(whole.join(checkpoint).exists(), "{checkpoint}");
        assert!(whole
            .join(checkpoint.replace("safetensors", "onnx"))
            .exists());
    }
    assert!(previous as f64 <= 208_260.0);
    let fin = &summary["final"];
    for key in RECORD_KEYS.iter().chain(&["test_accuracy"]) {
        assert!(fin.get(key).is_some(), "final lacks {key}");
    }
    assert!(fin["test_accuracy"].is_number());
    assert_eq!(fin["macs"], family.last().unwrap()["macs"]);
    let base = &summary["baseline"];
    for key in
        RECORD_KEYS
            .iter()
            .chain(&["test_accuracy", "width_multiplier", "matched_on", "tried"])
    {
        assert!(base.get(key).is_some(), "baseline lacks {key}");
    }
    assert_eq!(base["matched_on"], "macs");
    assert_eq!(base["checkpoint"], "baseline.safetensors");
    let width = base["width_multiplier"].as_f64().unwrap();
    assert!(width > 0.0 && width < 1.0, "{width}");
    for file in [
        "state.json",
        "final.onnx",
        "baseline.onnx",
        "accuracy_vs_macs.svg",
        "accuracy_vs_energy.svg",
    ] {
        assert!(whole.join(file).exists(), "{file}");
    }
    let svg = std::fs::read_to_string(whole.join("accuracy_vs_macs.svg")).unwrap();
    assert!(
        svg.contains("uniform width baseline"),
        "baseline missing from the plot"
    );

    // The state an interruption after iteration 1 leaves: one family member, running, no
    // final network; --resume must end exactly where the whole run ended.
    let killed = dir.path().join("killed");
    let out = adapt(&killed, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut state = read_json(&killed.join("state.json"));
    state["family"].as_array_mut().unwrap().truncate(1);
    state["status"] = serde_json::json!({"status": "running"});
    state["final"] = Value::Null;
    state["baseline"] = Value::Null;
    std::fs::write(killed.join("state.json"), state.to_string()).unwrap();
    for file in ["summary.json", "final.safetensors", "baseline.safetensors"] {
        std::fs::remove_file(killed.join(file)).unwrap();
    }
    let out = adapt(&killed, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already holds a run"),
        "{}",
        stderr(&out)
    );
    let out = adapt(&killed, &["--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_json(&killed.join("summary.json")), summary);
    let bytes = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(
        bytes(&whole, "final.safetensors"),
        bytes(&killed, "final.safetensors")
    );
    // Another holdout (here the default 2,000 instead of 200) cannot resume the run: the
    // split it selected on is recorded (split.json) and named with both values.
    let out = joule()
        .args(["adapt", "--model", "lenet5", "--data", "mnist"])
        .args(["--budget", "macs=0.4x", "--no-measure", "--resume"])
        .args(["--out", killed.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--holdout: cannot resume the run in")
            && stderr(&out).contains("it was started with 200, not 2000"),
        "{}",
        stderr(&out)
    );
    // Other settings cannot resume the run either (the same split this time).
    let out = joule()
        .args(["adapt", "--model", "lenet5", "--data", "mnist"])
        .args(["--budget", "macs=0.4x", "--no-measure", "--resume"])
        .args(["--holdout", "200", "--train-samples", "300", "--seed", "7"])
        .args(["--out", killed.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot resume"), "{}", stderr(&out));
    // A flag that contradicts the stored run is named (this call gives another budget and
    // leaves out --baseline).
    assert!(
        stderr(&out).contains("--baseline: ") || stderr(&out).contains("--budget: "),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).trim_end().lines().count(), 1);
}

#[test]
fn bad_arguments_are_one_line_errors_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("never");
    let out_arg = out_dir.to_str().unwrap();
    let base = [
        "adapt",
        "--model",
        "lenet5",
        "--data",
        "mnist",
        "--no-measure",
    ];
    for (extra, needle) in [
        (
            vec!["--budget", "speed=0.5x"],
            "--budget speed=0.5x: unknown resource \"speed\"",
        ),
        (
            vec!["--budget", "macs=1x"],
            "--budget macs=1x: a budget must be below 1x",
        ),
        (vec!["--budget", "energy=1.5x"], "below 1x"),
        (vec!["--budget", "macs"], "expected kind=value"),
        (
            vec!["--budget", "macs=0.5x", "--data-dir", "/nonexistent-joule"],
            "dataset not found",
        ),
        (
            vec!["--budget", "macs=0.5x", "--selection", "best"],
            "invalid value 'best' for '--selection",
        ),
        (vec!["--budget", "macs=0.5x", "--holdout", "0"], "--holdout"),
        (
            vec!["--budget", "macs=0.5x", "--hw", "tpu9"],
            "--hw tpu9: unknown hardware preset",
        ),
    ] {
        let out = joule()
            .args(base)
            .args(&extra)
            .args(["--out", out_arg])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{needle}: {err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = joule()
        .args([
            "lut",
            "predict",
            "lenet5",
            "--lut",
            "/nonexistent-joule.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim_end().lines().count(), 1);
    assert!(stderr(&out).contains("/nonexistent-joule.json"));
    let out = joule()
        .args(["lut", "build", "lenet5", "--levels", "0"])
        .args(["--out", dir.path().join("t.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim_end().lines().count(), 1);
}
