//! `joule lut probes` / `import` / `check` end to end: a probe folder with its manifest, a
//! runner's timings (written here by hand, so the values are known) read back as a table with
//! the runtime recorded (JSON and CSV), the prediction-error table of `check`, and bad timings
//! files as one-line errors naming the file and the field, exit 2.

mod common;

use common::{fails, read_json, succeeds};
use serde_json::{json, Value};

fn measurement(ms: f64) -> Value {
    json!({"median_ms": ms, "spread_ms": 0.001, "runs": 30, "stable": true})
}

/// Timings of every probe of `manifest`: probe `i` takes `0.01 * (i + 1)` ms, overhead 0.002.
fn timings(manifest: &Value) -> Value {
    let probes: Vec<Value> = manifest["probes"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut m = measurement(0.01 * (i + 1) as f64);
            m["file"] = p["file"].clone();
            m
        })
        .collect();
    let mut overhead = measurement(0.002);
    overhead["file"] = json!("overhead.onnx");
    json!({
        "format": "joule-lut-timings", "version": 1,
        "runtime": {"name": "onnxruntime", "version": "1.20.1", "provider": "CPUExecutionProvider", "threads": 1},
        "measure": {"warmup": 3, "round": 15, "tolerance": 0.02, "max_runs": 150, "sweeps": 7,
                    "pause_ms": 100, "gate_tolerance": 0.1, "gate_wait_ms": 30000},
        "calibration_ms": 0.017, "state_ms": 0.018,
        "machine": {"before": {"load_average": [2.5, 2.0, 1.0]}},
        "overhead": overhead, "probes": probes,
    })
}

#[test]
fn probes_import_and_check_round_trip_with_the_runtime_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let out = succeeds(&[
        "lut",
        "probes",
        "lenet5",
        "--levels",
        "2",
        "--out",
        &d("probes"),
    ]);
    assert!(out.contains("22 probes over 4 prunable layers"), "{out}");
    let manifest = read_json(&dir.path().join("probes/manifest.json"));
    assert_eq!(manifest["format"], "joule-lut-probes");
    assert_eq!(manifest["grid"]["layers"]["conv1"], json!([3, 6]));
    let probes = manifest["probes"].as_array().unwrap();
    for p in probes {
        assert!(dir
            .path()
            .join("probes")
            .join(p["file"].as_str().unwrap())
            .is_file());
    }
    let t = timings(&manifest);
    std::fs::write(d("t.json"), t.to_string()).unwrap();
    for table in ["lut.json", "lut.csv"] {
        let out = succeeds(&[
            "lut",
            "import",
            "--probes",
            &d("probes"),
            "--timings",
            &d("t.json"),
            "--out",
            &d(table),
        ]);
        assert!(
            out.contains("22 entries measured with onnxruntime-1.20.1/CPUExecutionProvider"),
            "{out}"
        );
    }
    let csv = std::fs::read_to_string(d("lut.csv")).unwrap();
    assert!(
        csv.starts_with(
            "# model=lenet5 batch=1 threads=1 runtime=onnxruntime-1.20.1/CPUExecutionProvider\n"
        ),
        "{csv}"
    );
    let table = read_json(&dir.path().join("lut.json"));
    assert_eq!(table["runtime"], "onnxruntime-1.20.1/CPUExecutionProvider");
    assert_eq!(table["state_ms"], 0.018);
    for (i, p) in probes.iter().enumerate() {
        // Entries are in the manifest's order, each its timing minus the overhead.
        let e = &table["entries"][i];
        assert_eq!(e["kind"], p["kind"]);
        assert_eq!(e["c"], p["c"]);
        assert_eq!(e["m"], p["m"]);
        assert_eq!(
            e["measured"]["median_ms"].as_f64().unwrap(),
            0.01 * (i + 1) as f64
        );
        assert!(
            (e["latency_ms"].as_f64().unwrap() - (0.01 * (i + 1) as f64 - 0.002)).abs() < 1e-15
        );
    }
    // A joule-engine measurement of an onnxruntime table is refused, naming the runtime.
    let err = fails(&[
        "lut",
        "predict",
        "lenet5",
        "--lut",
        &d("lut.json"),
        "--measure",
    ]);
    assert!(
        err.contains("onnxruntime-1.20.1") && err.contains("--measure"),
        "{err}"
    );

    // check: lenet5 exported, "measured" 5% slower than predicted, with a drift of 1.05.
    succeeds(&[
        "export",
        "--model",
        "lenet5",
        "--init-seed",
        "1",
        "--out",
        &d("lenet5.onnx"),
    ]);
    let predicted: f64 = {
        let out = succeeds(&["lut", "predict", &d("lenet5.onnx"), "--lut", &d("lut.json")]);
        let line = out
            .lines()
            .find(|l| l.contains("predicted"))
            .unwrap()
            .to_string();
        line.rsplit("predicted ")
            .next()
            .unwrap()
            .trim_end_matches(" ms")
            .parse()
            .unwrap()
    };
    let mut nets = t.clone();
    nets.as_object_mut().unwrap().remove("probes");
    nets["networks"] = json!([{"file": d("lenet5.onnx"), "median_ms": predicted * 1.05,
        "spread_ms": 0.001, "runs": 70, "stable": true, "state_ms": 0.018, "drift": 1.05}]);
    std::fs::write(d("nets.json"), nets.to_string()).unwrap();
    let out = succeeds(&[
        "lut",
        "check",
        "--lut",
        &d("lut.json"),
        "--timings",
        &d("nets.json"),
        "--json",
        &d("check.json"),
    ]);
    assert!(out.contains("| lenet5.onnx"), "{out}");
    let report = read_json(&dir.path().join("check.json"));
    let row = &report["rows"][0];
    // predict prints 4 decimals: the error is -1/21 up to that rounding.
    assert!(
        (row["error"].as_f64().unwrap() + 1.0 / 21.0).abs() < 1e-3,
        "{row}"
    );
    assert!(
        row["normalised_error"].as_f64().unwrap().abs() < 1e-3,
        "{row}"
    );
    assert_eq!(report["within_10_percent"], 1);
    assert_eq!(report["state_flagged"], 0);
}

#[test]
fn bad_timings_files_are_one_line_errors_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    succeeds(&[
        "lut",
        "probes",
        "lenet5",
        "--levels",
        "2",
        "--out",
        &d("probes"),
    ]);
    let manifest = read_json(&dir.path().join("probes/manifest.json"));
    let good = timings(&manifest);
    let cases: Vec<(&str, Value)> = vec![
        ("probes[2].median_ms", {
            let mut t = good.clone();
            t["probes"][2]["median_ms"] = json!(-0.5);
            t
        }),
        ("probes[0].runs", {
            let mut t = good.clone();
            t["probes"][0]["runs"] = json!(0);
            t
        }),
        ("calibration_ms", {
            let mut t = good.clone();
            t["calibration_ms"] = json!(0);
            t
        }),
        ("no timing of \"probe_00021.onnx\"", {
            let mut t = good.clone();
            t["probes"].as_array_mut().unwrap().pop();
            t
        }),
        ("overhead.runs", {
            let mut t = good.clone();
            t["overhead"]["runs"] = json!("many");
            t
        }),
    ];
    for (field, bad) in cases {
        std::fs::write(d("bad.json"), bad.to_string()).unwrap();
        let err = fails(&[
            "lut",
            "import",
            "--probes",
            &d("probes"),
            "--timings",
            &d("bad.json"),
            "--out",
            &d("t.json"),
        ]);
        assert!(
            err.contains(&d("bad.json")) && err.contains(field),
            "{field}: {err}"
        );
        assert!(
            !dir.path().join("t.json").exists(),
            "no table from a bad file"
        );
    }
    // A folder without a manifest names the manifest.
    let err = fails(&[
        "lut",
        "import",
        "--probes",
        &d("."),
        "--timings",
        &d("bad.json"),
        "--out",
        &d("t.json"),
    ]);
    assert!(err.contains("manifest.json"), "{err}");
}
