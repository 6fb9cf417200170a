//! Per-layer densities from a file: parsing, validation and their effect on the cost.

use joule_energy::workload::{apply_densities, load_densities, parse_densities};
use joule_energy::{network, spec, workload, Dataflow, Objective};
use joule_model::zoo;

fn alexnet() -> Vec<joule_energy::Workload> {
    workload::from_graph(&zoo::build("alexnet").unwrap(), None, 1).unwrap()
}

#[test]
fn densities_from_a_file_change_only_their_layers() {
    let dir = std::env::temp_dir().join(format!("joule-density-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("d.json");
    std::fs::write(
        &path,
        r#"{"conv2": {"ifmap": 0.5}, "fc1": {"weight": 0.25}}"#,
    )
    .unwrap();
    let densities = load_densities(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let hw = spec::preset("eyeriss").unwrap();
    let dense = alexnet();
    let mut sparse = alexnet();
    apply_densities(&mut sparse, &densities, "d.json").unwrap();
    let conv2 = sparse.iter().find(|w| w.name == "conv2").unwrap();
    assert_eq!((conv2.density.ifmap, conv2.density.weight), (0.5, 1.0));
    let fc1 = sparse.iter().find(|w| w.name == "fc1").unwrap();
    assert_eq!((fc1.density.ifmap, fc1.density.weight), (1.0, 0.25));
    let eval = |layers: &[joule_energy::Workload]| {
        network::evaluate("alexnet", layers, &hw, Dataflow::Rs, Objective::Energy).unwrap()
    };
    let (d, s) = (eval(&dense), eval(&sparse));
    for (a, b) in d.layers.iter().zip(&s.layers) {
        let (a, b) = (&a.cost, &b.cost);
        match a.name.as_str() {
            // Half the ifmaps are zero: half the MACs are gated (energy, not cycles).
            "conv2" => {
                assert!((b.energy.mac - 0.5 * a.energy.mac).abs() < 1e-6 * a.energy.mac);
                assert_eq!(a.cycles, b.cycles);
            }
            // A quarter of the weights: compressed in DRAM, so fewer DRAM bytes.
            "fc1" => assert!(
                b.dram_bytes < a.dram_bytes,
                "{} vs {}",
                b.dram_bytes,
                a.dram_bytes
            ),
            _ => assert_eq!(a.energy, b.energy, "{}", a.name),
        }
    }
}

#[test]
fn bad_density_files_name_the_file_and_field() {
    let err = parse_densities("conv1: {weight: 1.5}\n", "d.yaml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "d.yaml: field `conv1.weight`: density must be in [0, 1], got 1.5"
    );
    let err = parse_densities("conv1: {wieght: 0.5}\n", "d.yaml").unwrap_err();
    assert!(
        err.to_string().starts_with("d.yaml: field `conv1.wieght`"),
        "{err}"
    );
    assert!(err.to_string().contains("wieght"), "{err}");
    let err = parse_densities("conv1: {ifmap: high}\n", "d.yaml").unwrap_err();
    assert!(
        err.to_string().starts_with("d.yaml: field `conv1.ifmap`"),
        "{err}"
    );
    let densities = parse_densities("conv9: {ifmap: 0.5}\n", "d.yaml").unwrap();
    let err = apply_densities(&mut alexnet(), &densities, "d.yaml").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("d.yaml: field `conv9`: no CONV/FC layer"),
        "{err}"
    );
    let err = load_densities(std::path::Path::new("/nonexistent/d.yaml")).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/d.yaml: "),
        "{err}"
    );
}
