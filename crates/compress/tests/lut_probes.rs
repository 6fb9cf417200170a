//! Latency tables for any runtime: the probes written as ONNX files import back into joule as
//! the steps they stand for (key and MACs counted by hand), onnxruntime times them
//! (scripts/lut-ort.py from the project's .venv; missing fails), and its timings come back as
//! a table with exactly the values it wrote; bad timings files are errors naming the file and
//! the field.

use joule_compress::lut::{self, probes, ChannelGrid, LatencyTable};
use joule_model::zoo;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Hand MACs of a step from its key: CONV `M*P*Q*(C/groups)*R*S`, FC `M*C`, else 0.
fn hand_macs(k: &lut::LayerKey) -> u64 {
    (match k.kind.split('+').next().unwrap() {
        "conv" => k.m * k.p * k.q * (k.c / k.groups) * k.r * k.s,
        "fc" => k.m * k.c,
        _ => 0,
    }) as u64
}

#[test]
fn probes_import_back_as_their_steps_with_their_macs() {
    let dir = tempfile::tempdir().unwrap();
    let graph = zoo::build("lenet5").unwrap();
    let grid = ChannelGrid::even(&graph, 2).unwrap();
    let manifest = probes::emit(&graph, &grid, 1, dir.path()).unwrap();
    // conv1 {3,6}; pool1 x2; conv2 {8,16} x {3,6}; pool2 x2; flatten x2; fc1 {60,120} x
    // {200,400}; fc2 {42,84} x {60,120}; fc3 x {42,84}: 2+2+4+2+2+4+4+2.
    assert_eq!(manifest.probes.len(), 22);
    let reread = probes::read_manifest(dir.path()).unwrap();
    assert_eq!(reread, manifest);
    let kinds: Vec<&str> = manifest
        .probes
        .iter()
        .map(|p| p.key.kind.as_str())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "conv+relu").count(), 6);
    assert_eq!(kinds.iter().filter(|k| **k == "fc+relu").count(), 8);
    for p in &manifest.probes {
        let graph = joule_onnx::import_file(&dir.path().join(&p.probe.file)).unwrap();
        let mut keys = probes::step_keys(&graph, 1).unwrap();
        // The exporter flattens a 4-d input before a Gemm (`probe/flatten`, a copy-free view
        // in onnxruntime): an FC probe reading a 1x1 map has it, the FC inside the network
        // reading another FC does not.
        if p.key.kind.starts_with("fc") {
            keys.remove("probe/flatten");
        }
        assert_eq!(keys.len(), 1, "{}: one step: {keys:?}", p.probe.file);
        let key = keys.values().next().unwrap();
        assert_eq!(key, &p.key, "{}", p.probe.file);
        assert_eq!(p.macs, hand_macs(&p.key), "{}", p.key);
        let shape = graph.resolve_input(None).unwrap();
        assert_eq!([1, shape.c, shape.h, shape.w], p.probe.input, "{}", p.key);
    }
    // The calibration probe is the gate's step; the overhead probe has no work.
    let calibration = joule_onnx::import_file(&dir.path().join("calibration.onnx")).unwrap();
    let keys = probes::step_keys(&calibration, 1).unwrap();
    let key = keys.values().next().unwrap();
    assert_eq!(
        (key.kind.as_str(), key.c, key.m, key.h, key.r),
        ("conv+relu", 16, 32, 14, 3)
    );
    assert_eq!(manifest.calibration.input, [1, 16, 14, 14]);
    assert_eq!(manifest.overhead.input, [1, 1, 1, 1]);
    // A streamed runner's chains: the 8 steps in graph order, each naming the probes of its
    // variants, every probe under a step of its key; and the two-node identity probe.
    let keys: Vec<&str> = [
        "conv+relu",
        "maxpool",
        "conv+relu",
        "maxpool",
        "flatten",
        "fc+relu",
        "fc+relu",
        "fc",
    ]
    .to_vec();
    assert_eq!(manifest.steps.len(), keys.len());
    for (step, kind) in manifest.steps.iter().zip(&keys) {
        assert!(!step.is_empty());
        for &i in step {
            assert_eq!(manifest.probes[i].key.kind, *kind);
        }
    }
    // conv2 reads conv1's 3 or 6 channels and writes 8 or 16: four variants.
    assert_eq!(manifest.steps[2].len(), 4);
    let mut named: Vec<usize> = manifest.steps.concat();
    named.sort_unstable();
    named.dedup();
    assert_eq!(named, (0..22).collect::<Vec<_>>());
    let node = manifest.node.as_ref().unwrap();
    assert_eq!(
        (node.file.as_str(), node.input),
        ("node.onnx", [1, 1, 1, 1])
    );
    let two = joule_onnx::import_file(&dir.path().join("node.onnx")).unwrap();
    assert_eq!(two.len(), 2);
    assert!(two.nodes().iter().all(|n| n.op.kind() == "dropout"));
}

/// `scripts/lut-ort.py table DIR --context streamed` with few runs, no gate.
fn time_with_onnxruntime(dir: &Path, out: &Path) {
    let python = repo().join(".venv/bin/python");
    let status = std::process::Command::new(&python)
        .arg(repo().join("scripts/lut-ort.py"))
        .args([
            "table",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args([
            "--warmup",
            "1",
            "--round",
            "3",
            "--max-runs",
            "6",
            "--sweeps",
            "1",
        ])
        .args(["--gate-tolerance", "0", "--context", "streamed"])
        .status()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/python-env.sh)", python.display()));
    assert!(status.success());
}

#[test]
fn onnxruntime_times_every_probe_and_the_table_keeps_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let probes_dir = dir.path().join("probes");
    let graph = zoo::build("lenet5").unwrap();
    let grid = ChannelGrid::even(&graph, 2).unwrap();
    let manifest = probes::emit(&graph, &grid, 1, &probes_dir).unwrap();
    let timings = dir.path().join("timings.json");
    time_with_onnxruntime(&probes_dir, &timings);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&timings).unwrap()).unwrap();
    let table = probes::import(&probes_dir, &timings).unwrap();
    assert_eq!(table.entries.len(), manifest.probes.len());
    // Streamed: the overhead the table subtracts is the call alone, the one-node probe less
    // the per-node share (the two-node probe minus the one-node one).
    assert_eq!(written["measure"]["context"], "streamed");
    assert_eq!(table.measure.context, lut::Context::Streamed);
    let one = written["overhead"]["median_ms"].as_f64().unwrap();
    let share = (written["node"]["median_ms"].as_f64().unwrap() - one).max(0.0);
    assert_eq!(table.node_ms, Some(share));
    let overhead = (one - share).max(0.0);
    assert_eq!(table.overhead.median_ms, overhead);
    let by_file: std::collections::HashMap<&str, &Value> = written["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["file"].as_str().unwrap(), p))
        .collect();
    for (p, e) in manifest.probes.iter().zip(&table.entries) {
        let t = by_file[p.probe.file.as_str()];
        assert_eq!(e.key, p.key);
        assert_eq!(e.measured.median_ms, t["median_ms"].as_f64().unwrap());
        assert_eq!(e.measured.spread_ms, t["spread_ms"].as_f64().unwrap());
        assert_eq!(e.measured.runs as u64, t["runs"].as_u64().unwrap());
        assert_eq!(e.latency_ms, (e.measured.median_ms - overhead).max(0.0));
    }
    let runtime = table.runtime.clone().unwrap();
    assert!(runtime.starts_with("onnxruntime-") && runtime.ends_with("/CPUExecutionProvider"));
    assert_eq!(table.state_ms, written["state_ms"].as_f64());
    assert_eq!(table.calibration_ms, written["calibration_ms"].as_f64());
    // The table predicts the model it was emitted for, and survives JSON and CSV.
    let prediction = table.predict(&graph).unwrap();
    assert!(prediction.total_ms > overhead);
    for ext in ["json", "csv"] {
        let path = dir.path().join(format!("lut.{ext}"));
        table.save(&path).unwrap();
        let again = LatencyTable::load(&path).unwrap();
        assert_eq!(again.runtime, table.runtime, "{ext}");
        assert_eq!(again.measure.context, lut::Context::Streamed, "{ext}");
        assert_eq!(again.predict(&graph).unwrap().total_ms, prediction.total_ms);
    }
}

/// An edit that breaks a timings file.
type Edit = Box<dyn Fn(&mut Value)>;

/// A timings file for `manifest` written by hand: probe `i` takes `1 + i` ms.
fn hand_timings(manifest: &probes::Manifest) -> Value {
    let m = |ms: f64| json!({"median_ms": ms, "spread_ms": 0.01, "runs": 30, "stable": true});
    let mut probes: Vec<Value> = Vec::new();
    for (i, p) in manifest.probes.iter().enumerate() {
        let mut t = m(1.0 + i as f64);
        t["file"] = json!(p.probe.file);
        probes.push(t);
    }
    let mut overhead = m(0.5);
    overhead["file"] = json!("overhead.onnx");
    json!({
        "format": "joule-lut-timings", "version": 1,
        "runtime": {"name": "onnxruntime", "version": "1.20.1", "provider": "CPUExecutionProvider", "threads": 1},
        "measure": {"warmup": 3, "round": 15, "tolerance": 0.02, "max_runs": 150, "sweeps": 7,
                    "pause_ms": 100, "gate_tolerance": 0.1, "gate_wait_ms": 30000},
        "calibration_ms": 0.05, "state_ms": 0.055,
        "machine": {"before": {"load_average": [1.5, 1.0, 0.5]}},
        "overhead": overhead, "probes": probes,
    })
}

#[test]
fn hand_timings_come_back_exactly_and_bad_ones_name_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let graph = zoo::build("lenet5").unwrap();
    let grid = ChannelGrid::even(&graph, 2).unwrap();
    let manifest = probes::emit(&graph, &grid, 1, dir.path()).unwrap();
    let good = hand_timings(&manifest);
    let path = dir.path().join("t.json");
    std::fs::write(&path, good.to_string()).unwrap();
    let table = probes::import(dir.path(), &path).unwrap();
    for (i, e) in table.entries.iter().enumerate() {
        assert_eq!(e.measured.median_ms, 1.0 + i as f64);
        assert_eq!(e.latency_ms, 0.5 + i as f64);
    }
    assert_eq!(table.load_average, Some(1.5));
    assert_eq!(table.state_ms, Some(0.055));
    assert_eq!(table.measure.context, lut::Context::Isolated);
    assert_eq!(table.node_ms, None);

    // Streamed, with the two-node probe at 0.6 ms: node share 0.1, call 0.4, and every entry
    // keeps its nodes' shares (median - 0.4).
    let mut streamed = good.clone();
    streamed["measure"]["context"] = json!("streamed");
    streamed["node"] = json!({"file": "node.onnx", "median_ms": 0.6, "spread_ms": 0.01, "runs": 30, "stable": true});
    std::fs::write(&path, streamed.to_string()).unwrap();
    let table = probes::import(dir.path(), &path).unwrap();
    assert_eq!(table.measure.context, lut::Context::Streamed);
    assert!((table.node_ms.unwrap() - 0.1).abs() < 1e-12);
    assert!((table.overhead.median_ms - 0.4).abs() < 1e-12);
    for (i, e) in table.entries.iter().enumerate() {
        assert!((e.latency_ms - (0.6 + i as f64)).abs() < 1e-12);
    }
    // Each edit of a good file must fail its import with one line naming the file and field.
    let rejects = |base: &Value, cases: Vec<(Edit, &str)>| {
        for (edit, field) in cases {
            let mut bad = base.clone();
            edit(&mut bad);
            std::fs::write(&path, bad.to_string()).unwrap();
            let err = probes::import(dir.path(), &path).unwrap_err().to_string();
            assert!(err.starts_with(&path.display().to_string()), "{err}");
            assert!(err.contains(field), "{field}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    };
    let streamed_cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|t| {
                t.as_object_mut().unwrap().remove("node").map(drop).unwrap();
            }),
            "field `node`",
        ),
        (
            Box::new(|t| t["node"]["file"] = json!("overhead.onnx")),
            "node.file",
        ),
        (
            Box::new(|t| t["node"]["median_ms"] = json!(-2.0)),
            "node.median_ms",
        ),
        (
            Box::new(|t| t["measure"]["context"] = json!("chained")),
            "measure.context",
        ),
    ];
    rejects(&streamed, streamed_cases);

    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|t| t["probes"][3]["median_ms"] = json!(-1.0)),
            "probes[3].median_ms",
        ),
        (
            Box::new(|t| t["probes"][0]["spread_ms"] = json!(-0.1)),
            "probes[0].spread_ms",
        ),
        (
            Box::new(|t| t["probes"][2]["runs"] = json!(0)),
            "probes[2].runs",
        ),
        (
            Box::new(|t| t["overhead"]["median_ms"] = json!(0.0)),
            "overhead.median_ms",
        ),
        (Box::new(|t| t["state_ms"] = json!(0.0)), "state_ms"),
        (Box::new(|t| t["format"] = json!("csv")), "format"),
        (
            Box::new(|t| t["runtime"]["name"] = json!("onnx runtime")),
            "runtime.name",
        ),
        (
            Box::new(|t| {
                let mut extra = t["probes"][0].clone();
                extra["file"] = json!("probe_99999.onnx");
                t["probes"].as_array_mut().unwrap().push(extra);
            }),
            "probes[22].file",
        ),
        (
            Box::new(|t| {
                let first = t["probes"][0].clone();
                t["probes"].as_array_mut().unwrap().push(first);
            }),
            "probes[22].file",
        ),
        (
            Box::new(|t| t["probes"].as_array_mut().unwrap().truncate(5)),
            "probes",
        ),
        (
            Box::new(|t| t["overhead"]["file"] = json!("x.onnx")),
            "overhead.file",
        ),
        (
            Box::new(|t| {
                t["probes"][4]
                    .as_object_mut()
                    .unwrap()
                    .remove("median_ms")
                    .map(drop)
                    .unwrap()
            }),
            "median_ms",
        ),
    ];
    rejects(&good, cases);
}
