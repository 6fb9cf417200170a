//! The flexibility presets run through every estimator: `energy`, `compare`, `dataflows`,
//! `eyexam` and `report`.

mod common;

use common::{stdout_json, succeeds};

const PRESETS: [&str; 3] = ["eyeriss-v2-like", "systolic-256", "nvdla-like"];

#[test]
fn new_presets_run_through_every_estimator() {
    for hw in PRESETS {
        let r = stdout_json(&["energy", "alexnet", "--hw", hw, "--json"]);
        assert_eq!(r["hardware"], hw);
        assert!(r["total"]["cycles"].as_f64().unwrap() > 0.0);
        // Area beside energy and cycles.
        assert!(r["area"]["total"].as_f64().unwrap() > 0.0, "{hw}");
        let d = stdout_json(&["dataflows", "alexnet", "--hw", hw, "--batch", "1", "--json"]);
        assert_eq!(d.as_array().unwrap().len(), 7);
        succeeds(&["eyexam", "mobilenet", "--hw", hw, "--dataflow", "ws"]);
    }
    let c = stdout_json(&[
        "compare",
        "alexnet",
        "mobilenet",
        "--hw",
        &PRESETS.join(","),
        "--json",
    ]);
    let entries = c.as_array().unwrap();
    assert_eq!(entries.len(), 6);
    assert!(entries
        .iter()
        .all(|e| e["area_mm2"].as_f64().unwrap() > 0.0));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.html");
    let mut args = vec!["report", "mobilenet"];
    for hw in PRESETS {
        args.extend(["--hw", hw]);
    }
    args.extend(["--out", out.to_str().unwrap()]);
    succeeds(&args);
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.len() > 10_000);
    // The metrics table has the area beside energy and latency.
    assert!(page.contains("area (mm²)"), "no area column");
}
