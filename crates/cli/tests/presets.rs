//! The flexibility presets run through every estimator (`energy`, `compare`, `dataflows`,
//! `eyexam`, `report`) and the compressors that target energy (EAP, NetAdapt).

mod common;

use common::{read_json, stdout_json, succeeds};
use serde_json::{json, Value};

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

/// The total energy `joule energy` gives a checkpoint on `hw`, with per-layer densities when
/// given (the compressors measure ifmap densities on data; `energy` cannot know them).
fn energy_of(checkpoint: &std::path::Path, hw: &str, densities: Option<&Value>) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("densities.json");
    let mut args = vec![
        "energy".to_string(),
        checkpoint.to_str().unwrap().to_string(),
        "--hw".into(),
        hw.into(),
        "--json".into(),
    ];
    if let Some(d) = densities {
        std::fs::write(&file, d.to_string()).unwrap();
        args.extend(["--density".into(), file.to_str().unwrap().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    stdout_json(&args)["total"]["energy"]["total"]
        .as_f64()
        .unwrap()
}

#[track_caller]
fn assert_close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-9 * b.abs(), "{what}: {a} vs {b}");
}

/// EAP prunes for the systolic array and the Eyeriss v2-like machine: the energies it reports
/// are those `joule energy` gives the saved checkpoints on the same machine (with the
/// densities it measured), and the machine that skips zero weights in the compressed domain
/// (v2) gains more from the same sparsity than the systolic array, which does
/// not skip them in time.
#[test]
fn energy_aware_pruning_targets_the_new_presets() {
    let dir = tempfile::tempdir().unwrap();
    let mut normalized = Vec::new();
    for hw in ["systolic-256", "eyeriss-v2-like"] {
        let out = dir.path().join(hw);
        succeeds(&[
            "prune",
            "--method",
            "eap",
            "--model",
            "lenet5",
            "--data",
            "mnist",
            "--hw",
            hw,
            "--max-drop",
            "50",
            "--rounds",
            "1",
            "--finetune-epochs",
            "1",
            "--train-samples",
            "500",
            "--out",
            out.to_str().unwrap(),
        ]);
        let s = read_json(&out.join("summary.json"));
        assert_eq!(s["hardware"], hw);
        for (key, file) in [("original", "original"), ("final", "pruned")] {
            let layers = s[key]["layers"].as_array().unwrap();
            let densities: serde_json::Map<String, Value> = layers
                .iter()
                .map(|l| {
                    let w = l["nonzero_weights"].as_f64().unwrap() / l["weights"].as_f64().unwrap();
                    let name = l["name"].as_str().unwrap().to_string();
                    (name, json!({"weight": w, "ifmap": l["ifmap_density"]}))
                })
                .collect();
            let checkpoint = out.join(format!("{file}.safetensors"));
            let expected = energy_of(&checkpoint, hw, Some(&Value::Object(densities)));
            assert_close(s[key]["energy"].as_f64().unwrap(), expected, hw);
        }
        let (e0, e1) = (
            s["original"]["energy"].as_f64().unwrap(),
            s["final"]["energy"].as_f64().unwrap(),
        );
        assert!(e1 < 0.8 * e0, "{hw}: EAP saved too little: {e1} of {e0}");
        normalized.push(e1 / e0);
    }
    assert!(
        normalized[1] < normalized[0],
        "v2 vs systolic: {normalized:?}"
    );
}

/// NetAdapt meets an energy budget on the Eyeriss v2-like machine and on the systolic array:
/// the budget is a fraction of `joule energy`'s figure for the original on that machine, and
/// the final network's energy there is within it.
#[test]
fn netadapt_meets_an_energy_budget_on_the_new_presets() {
    let dir = tempfile::tempdir().unwrap();
    for hw in ["eyeriss-v2-like", "systolic-256"] {
        let out = dir.path().join(hw);
        succeeds(&[
            "adapt",
            "--model",
            "lenet5",
            "--data",
            "mnist",
            "--hw",
            hw,
            "--budget",
            "energy=0.6x",
            "--no-measure",
            "--train-samples",
            "300",
            "--holdout",
            "200",
            "--iterations",
            "8",
            "--initial-reduction",
            "0.2",
            "--short-term-batches",
            "3",
            "--batch-size",
            "32",
            "--seed",
            "7",
            "--out",
            out.to_str().unwrap(),
        ]);
        let s = read_json(&out.join("summary.json"));
        assert_eq!(s["hardware"], hw);
        assert_eq!(s["status"]["status"], "met", "{hw}: {}", s["status"]);
        let original = energy_of(&out.join("original.safetensors"), hw, None);
        let budget = s["budget_absolute"]["energy"].as_f64().unwrap();
        assert_close(budget, 0.6 * original, hw);
        let last = energy_of(&out.join("final.safetensors"), hw, None);
        assert_close(s["final"]["energy"].as_f64().unwrap(), last, hw);
        assert!(last <= budget, "{hw}: {last} over the budget {budget}");
    }
}
