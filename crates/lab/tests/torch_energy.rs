//! The energy of every torchvision model exported by PyTorch (tests/fixtures/torch, made by
//! scripts/make-torch-fixtures.sh; missing fixtures fail): the estimate runs at both opsets,
//! maps every CONV, Linear and attention MatMul, and the MACs it maps are PyTorch's own
//! count of them (macs.json, from forward hooks), so no layer is lost or counted twice.

use joule_lab::estimate::{energy, EnergyOptions};
use std::path::PathBuf;

#[test]
fn every_torchvision_export_is_estimated_with_pytorchs_macs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/torch");
    let manifest = std::fs::read_to_string(dir.join("macs.json"))
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/make-torch-fixtures.sh", dir.display()));
    let manifest: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&manifest).unwrap();
    let mut estimated = 0;
    for (file, entry) in &manifest {
        // One weight variant per opset: the MACs do not depend on the weights.
        if !file.ends_with("-perturbed.onnx") {
            continue;
        }
        let path = dir.join(file).display().to_string();
        let report =
            energy(&EnergyOptions::new(&path, "eyeriss")).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            report.total.macs,
            entry["macs"].as_u64().unwrap(),
            "{file}: the mapped MACs are not PyTorch's"
        );
        let total = report.total.energy.total;
        assert!(total.is_finite() && total > 0.0, "{file}: energy {total}");
        for layer in &report.layers {
            let e = layer.cost.energy.total;
            assert!(
                e.is_finite() && e > 0.0,
                "{file}: layer {} energy {e}",
                layer.cost.name
            );
        }
        estimated += 1;
    }
    assert!(
        estimated >= 46,
        "only {estimated} exports estimated: 23 models x 2 opsets expected"
    );
}
