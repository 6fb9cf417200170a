//! The tables of docs/*.md agree with the committed run summaries they are rendered from:
//! every generated region (`joule_lab::doc_tables`) re-renders to the committed bytes.
//! `scripts/docs-tables.sh` rewrites them after a new experiment.

use joule_lab::doc_tables::{self, Kind};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_generated_region_matches_its_summaries_byte_for_byte() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let name = format!("docs/{}", path.file_name().unwrap().to_string_lossy());
        let regions = doc_tables::regions(&text).unwrap();
        if regions.is_empty() {
            continue;
        }
        let updated =
            doc_tables::update(&text, Path::new(&name), &root()).unwrap_or_else(|e| panic!("{e}"));
        if updated != text {
            let first = text
                .lines()
                .zip(updated.lines())
                .position(|(a, b)| a != b)
                .map_or(text.lines().count().min(updated.lines().count()), |i| i);
            panic!(
                "{name}:{}: a generated table differs from its summaries (scripts/docs-tables.sh rewrites it):\n  committed: {}\n  rendered:  {}",
                first + 1,
                text.lines().nth(first).unwrap_or("<end>"),
                updated.lines().nth(first).unwrap_or("<end>")
            );
        }
        checked.push((name, regions.len()));
    }
    checked.sort();
    // The docs whose tables come from committed summaries (docs/eliminate.md's LeNet tables
    // come from runs whose summaries are not committed, scripts/experiment-eliminate.sh; its
    // MobileNet tables from committed ones, scripts/experiment-mobile.sh).
    assert_eq!(
        checked,
        vec![
            ("docs/eliminate.md".to_string(), 2),
            ("docs/netadapt.md".to_string(), 12),
            ("docs/prune.md".to_string(), 7)
        ]
    );
}

#[test]
fn a_changed_number_is_caught_and_restored() {
    let text = read("docs/prune.md");
    // LeNet-5 / MNIST, EAP's test accuracy in the first table.
    let stale = text.replacen("| 97.30% |", "| 97.95% |", 1);
    assert_ne!(stale, text);
    let updated = doc_tables::update(&stale, Path::new("docs/prune.md"), &root()).unwrap();
    assert_eq!(updated, text);
}

/// The cells read back against the summaries as plain JSON (not the typed structs the
/// renderer uses).
#[test]
fn cells_are_the_summaries_numbers() {
    let json = |path: &str| -> Value { serde_json::from_str(&read(path)).unwrap() };
    let dir = "docs/prune/lenet5-mnist";
    let paths = [
        root().join(dir).join("magnitude-summary.json"),
        root().join(dir).join("eap-summary.json"),
    ];
    let table = doc_tables::render(Kind::Prune, &paths).unwrap();
    for (method, label) in [("magnitude", "magnitude"), ("eap", "eap")] {
        let s = json(&format!("{dir}/{method}-summary.json"));
        let f = &s["final"];
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| lenet5-mnist ({label}) |")))
            .unwrap();
        let accuracy = format!("{:.2}%", 100.0 * f["accuracy"].as_f64().unwrap());
        // The split that selected, beside the one only reported.
        let validation = format!("{:.2}%", 100.0 * f["validation_accuracy"].as_f64().unwrap());
        assert!(
            row.contains(&format!("| {accuracy} | {validation} |")),
            "{row}"
        );
        let weights = f["nonzero_weights"].as_u64().unwrap().to_string();
        let energy = f["energy"].as_f64().unwrap() / s["original"]["energy"].as_f64().unwrap();
        for cell in [accuracy, weights, format!("{energy:.3}")] {
            assert!(row.contains(&format!("| {cell}")), "{cell} in {row}");
        }
    }

    let run = "docs/netadapt/vgg-small/latency";
    let s = json(&format!("{run}/summary.json"));
    let table = doc_tables::render(Kind::Netadapt, &[root().join(run)]).unwrap();
    let row = table.lines().find(|l| l.contains("NetAdapt (")).unwrap();
    let iterations = s["family"].as_array().unwrap().len() - 1;
    assert!(
        row.contains(&format!("NetAdapt ({iterations} it.)")),
        "{row}"
    );
    let test = 100.0 * s["final"]["test_accuracy"].as_f64().unwrap();
    assert!(row.ends_with(&format!("| {test:.2}% |")), "{row}");
    let channels = &s["final"]["channels"];
    let want: Vec<String> = ["conv1", "conv2", "conv3", "fc1"]
        .iter()
        .map(|l| channels[l].to_string())
        .collect();
    assert!(row.contains(&format!("| {} |", want.join("/"))), "{row}");

    let v = json(&format!("{run}/lut_validation.json"));
    let table = doc_tables::render(Kind::LutValidation, &[root().join(run)]).unwrap();
    let cell = format!("| {}/{} |", v["within_10_percent"], v["networks"]);
    assert!(table.contains(&cell), "{cell} in {table}");
}

#[test]
fn a_missing_summary_is_named() {
    let err = doc_tables::render(Kind::Netadapt, &[root().join("docs/netadapt/nosuch")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("docs/netadapt/nosuch") && !err.contains('\n'),
        "{err}"
    );
}
