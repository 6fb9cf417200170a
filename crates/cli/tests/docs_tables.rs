//! `joule docs-tables`: the committed docs are up to date with their summaries, a stale
//! table is caught and rewritten, and bad input is a one-line error with exit code 2.

mod common;

use common::{fails, joule, stderr, succeeds};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_committed_docs_are_up_to_date_and_a_stale_copy_is_rewritten() {
    let out = joule()
        .current_dir(root())
        .args([
            "docs-tables",
            "update",
            "--check",
            "docs/prune.md",
            "docs/netadapt.md",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("docs/prune.md: 7 generated regions up to date"));

    // A copy with one hand-typed number changed: --check fails naming it, update restores it.
    let dir = tempfile::tempdir().unwrap();
    let committed = std::fs::read_to_string(root().join("docs/prune.md")).unwrap();
    let copy = dir.path().join("prune.md");
    // (LeNet-5 / MNIST, magnitude, on eyeriss: docs/prune.md's first table.)
    let number = "| 0.246 (24.6%) |";
    assert!(
        committed.contains(number),
        "the changed number is in the docs"
    );
    std::fs::write(&copy, committed.replacen(number, "| 0.250 (25.0%) |", 1)).unwrap();
    let copy = copy.to_str().unwrap();
    let out = joule()
        .current_dir(root())
        .args(["docs-tables", "update", "--check", copy])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(copy) && err.contains("out of date"), "{err}");
    let out = joule()
        .current_dir(root())
        .args(["docs-tables", "update", copy])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(copy).unwrap(), committed);
}

#[test]
fn render_prints_one_table() {
    let dir = root().join("docs/netadapt/vgg-small/latency");
    let text = succeeds(&[
        "docs-tables",
        "render",
        "baseline-curve",
        dir.to_str().unwrap(),
    ]);
    assert!(text.starts_with("| width | 0.9375 | 0.875 |"), "{text}");
    assert_eq!(text.lines().count(), 5);
    assert!(text.contains("\n| predicted ms | 0.2038 |"), "{text}");
}

#[test]
fn bad_input_names_the_file_or_the_kind() {
    let e = fails(&[
        "docs-tables",
        "render",
        "prune",
        "/nonexistent/eap-summary.json",
    ]);
    assert!(e.contains("/nonexistent/eap-summary.json"), "{e}");
    let e = fails(&["docs-tables", "render", "pareto", "x.json"]);
    assert!(
        e.contains("\"pareto\" is not one of prune, netadapt"),
        "{e}"
    );
    // A summary of another kind: the field serde misses is named with the file.
    let other = root().join("docs/netadapt/vgg-small/latency/summary.json");
    let e = fails(&["docs-tables", "render", "prune", other.to_str().unwrap()]);
    assert!(
        e.contains("latency/summary.json") && e.contains("missing field"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("open.md");
    std::fs::write(
        &md,
        "x\n<!-- generated: joule docs-tables render netadapt docs/netadapt/vgg-small/macs -->\n",
    )
    .unwrap();
    let md = md.to_str().unwrap();
    let out = joule()
        .current_dir(root())
        .args(["docs-tables", "update", md])
        .output()
        .unwrap();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains(&format!("{md}:2:")) && e.contains("end generated"),
        "{e}"
    );
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

#[test]
fn chart_writes_the_seeds_svg_and_refuses_other_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seeds.svg");
    let runs: Vec<String> = ["latency-0.5-seed1", "latency-0.25-seed1"]
        .iter()
        .map(|r| {
            root()
                .join("docs/netadapt/mobilenetv2-28")
                .join(r)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args = vec![
        "docs-tables",
        "chart",
        "netadapt-seeds",
        out.to_str().unwrap(),
    ];
    args.extend(runs.iter().map(String::as_str));
    succeeds(&args);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.contains("<svg"),
        "{svg:.200}"
    );
    // The seed's curve, both budgets' NetAdapt points and the run labels.
    for text in [
        "uniform width, every width (latency-0.5-seed1)",
        "NetAdapt, latency=0.5x",
        "NetAdapt, latency=0.25x",
        "predicted latency (ms",
    ] {
        assert!(svg.contains(text), "{text} in the chart");
    }
    let e = fails(&["docs-tables", "chart", "baseline-curve", "x.svg", "y.json"]);
    assert!(
        e.contains("only netadapt-seeds, prune, prune-layers and eliminate have a chart"),
        "{e}"
    );
    // The pruning trade-off from the committed summaries, the other run first; its
    // validation floor spans the networks' energies (0.95-1.0 here), so no axis tick at 0.
    let prune = root().join("docs/prune/mobilenetv2-28-fashion-mnist");
    let (magnitude, eap) = (
        prune.join("magnitude-summary.json"),
        prune.join("eap-summary.json"),
    );
    let out = dir.path().join("tradeoff.svg");
    succeeds(&[
        "docs-tables",
        "chart",
        "prune",
        out.to_str().unwrap(),
        magnitude.to_str().unwrap(),
        eap.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&out).unwrap();
    for text in [
        "eap (accepted networks, test)",
        "magnitude (accepted networks, test)",
        "original validation - 1 points",
    ] {
        assert!(svg.contains(text), "{text} in the chart");
    }
    assert!(
        !svg.contains(">\n0\n</text>"),
        "the energy axis starts at 0"
    );
    let e = fails(&["docs-tables", "chart", "prune", "x.svg", "y.json"]);
    assert!(e.contains("y.json"), "{e}");
}

#[test]
fn chart_redraws_a_committed_runs_layers_and_elimination_curves() {
    let dir = tempfile::tempdir().unwrap();
    let draw = |kind: &str, name: &str, summary: &Path| -> String {
        let out = dir.path().join(name);
        succeeds(&[
            "docs-tables",
            "chart",
            kind,
            out.to_str().unwrap(),
            summary.to_str().unwrap(),
        ]);
        std::fs::read_to_string(&out).unwrap()
    };
    // Energy per layer of mobilenetv3-28's magnitude run: a bar per layer of the summary
    // (read here as plain JSON), in its order, and the title naming model and method.
    let prune = root().join("docs/prune/mobilenetv3-28-fashion-mnist");
    let summary = prune.join("magnitude-summary.json");
    let svg = draw("prune-layers", "layers.svg", &summary);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let layers: Vec<&str> = json["original"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(layers.len(), 20, "{layers:?}");
    let mut at = 0;
    for name in &layers {
        let found = svg[at..]
            .find(&format!("\n{name}\n"))
            .unwrap_or_else(|| panic!("{name} missing or out of order"));
        at += found;
    }
    assert!(svg.contains("magnitude-pruned"), "{svg:.300}");
    // The elimination curves of the v3 run: every swept layer's SVD + QR line, the first
    // machine's (eyeriss) energy.
    let summary = root().join("docs/eliminate/mobilenetv3-28/summary.json");
    let svg = draw("eliminate", "curves.svg", &summary);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["hardware"][0], "eyeriss");
    for layer in json["swept"].as_array().unwrap() {
        let layer = layer.as_str().unwrap();
        assert!(svg.contains(layer), "{layer} in the chart");
    }
    assert!(svg.contains("eyeriss"), "{svg:.300}");
    // One summary each; a missing one names its path.
    let s = summary.to_str().unwrap();
    let e = fails(&["docs-tables", "chart", "eliminate", "x.svg", s, s]);
    assert!(e.contains("eliminate takes one summary, got 2"), "{e}");
    let e = fails(&["docs-tables", "chart", "prune-layers", "x.svg", "y.json"]);
    assert!(e.contains("y.json"), "{e}");
    // prune-layers is no table.
    let e = fails(&["docs-tables", "render", "prune-layers", s]);
    assert!(e.contains("prune-layers is a chart"), "{e}");
}
