//! Golden numbers: ISCA'16 Fig. 10 (AlexNet, RS, isca16, batch 16) and the paper's claims.

use joule_energy::network::{self, NetworkCost};
use joule_energy::{spec, workload, Dataflow, Objective, Workload};
use joule_model::{zoo, LayerClass};

/// AlexNet's CONV/FC layers at batch 16 in the two-tower form ISCA'16 evaluated (as the
/// original two-GPU network): conv1 and conv3 are computed as two halves of their filters,
/// each half reading the whole ifmap (conv2, conv4 and conv5 are grouped convolutions
/// already). Returns the workloads and, per workload, how many copies it stands for.
fn alexnet_two_towers() -> Vec<(Workload, f64)> {
    let graph = zoo::build("alexnet").unwrap();
    workload::from_graph(&graph, None, 16)
        .unwrap()
        .into_iter()
        .map(|mut w| {
            if w.name == "conv1" || w.name == "conv3" {
                w.nest.m /= 2;
                (w, 2.0)
            } else {
                (w, 1.0)
            }
        })
        .collect()
}

fn evaluate(layers: &[(Workload, f64)], dataflow: Dataflow) -> Vec<(String, [f64; 4], f64)> {
    let hw = spec::preset("isca16").unwrap();
    let workloads: Vec<Workload> = layers.iter().map(|(w, _)| w.clone()).collect();
    let report =
        network::evaluate("alexnet", &workloads, &hw, dataflow, Objective::Energy).unwrap();
    report
        .layers
        .iter()
        .zip(layers)
        .map(|(l, (_, copies))| {
            let e = &l.cost.energy;
            (
                l.cost.name.clone(),
                [
                    e.mac * copies,
                    e.dram * copies,
                    e.rf * copies,
                    e.total * copies,
                ],
                0.0,
            )
        })
        .collect()
}

#[test]
fn alexnet_rs_matches_isca16_fig10_within_5_percent() {
    // (layer, ALU, DRAM, RF) x 1e9, MAC-normalized, all 16 images.
    let paper: [(&str, f64, f64, f64); 8] = [
        ("conv1", 1.69, 2.46, 6.75),
        ("conv2", 3.58, 2.27, 14.33),
        ("conv3", 2.39, 2.02, 9.57),
        ("conv4", 1.79, 1.57, 7.18),
        ("conv5", 1.20, 1.05, 4.78),
        ("fc1", 0.60, 7.78, 2.42),
        ("fc2", 0.27, 3.39, 1.07),
        ("fc3", 0.07, 0.84, 0.26),
    ];
    let ours = evaluate(&alexnet_two_towers(), Dataflow::Rs);
    assert_eq!(ours.len(), paper.len());
    for ((name, e, _), (paper_name, alu, dram, rf)) in ours.iter().zip(paper) {
        assert_eq!(name, paper_name);
        for (what, got, want) in [("ALU", e[0], alu), ("DRAM", e[1], dram), ("RF", e[2], rf)] {
            let got = got / 1e9;
            // The paper rounds to two decimals: allow that on the smallest numbers.
            let tolerance = (0.05 * want).max(0.005_f64);
            assert!(
                (got - want).abs() <= tolerance,
                "{name} {what}: joule {got:.3} vs ISCA'16 {want:.2}"
            );
        }
    }
}

fn network(model: &str, hw: &str, dataflow: Dataflow) -> NetworkCost {
    let hw = spec::preset(hw).unwrap();
    let graph = zoo::build(model).unwrap();
    let layers = workload::from_graph(&graph, None, 16).unwrap();
    network::evaluate(model, &layers, &hw, dataflow, Objective::Energy).unwrap()
}

#[test]
fn rs_is_the_lowest_energy_dataflow_at_equal_area() {
    // ISCA'16 reports RS 1.4x-2.5x below the others on CONV layers and >= 1.3x on FC. joule's
    // simplified WS and OS models reproduce the ranking and NLR's gap, not the full margins
    // of WS and OS (see docs/energy.md).
    let hw = spec::preset("isca16").unwrap();
    let graph = zoo::build("alexnet").unwrap();
    let layers = workload::from_graph(&graph, None, 16).unwrap();
    let results =
        joule_energy::compare::compare("alexnet", &layers, &hw, Objective::Energy).unwrap();
    let rs = &results[0];
    assert_eq!(rs.dataflow, Dataflow::Rs);
    for other in &results[1..] {
        let conv = other.total.conv.energy / rs.total.conv.energy;
        let fc = other.total.fc.energy / rs.total.fc.energy;
        assert!(conv > 1.05, "CONV: {} / RS = {conv:.2}", other.dataflow);
        assert!(fc > 1.0, "FC: {} / RS = {fc:.2}", other.dataflow);
        if other.dataflow == Dataflow::Nlr {
            assert!((1.4..=2.5).contains(&conv), "CONV: NLR / RS = {conv:.2}");
        }
    }
}

#[test]
fn compact_networks_cost_more_energy_than_alexnet() {
    let alexnet = network("alexnet", "eyeriss", Dataflow::Rs)
        .total
        .energy
        .total;
    let googlenet = network("googlenet", "eyeriss", Dataflow::Rs)
        .total
        .energy
        .total;
    let squeezenet = network("squeezenet", "eyeriss", Dataflow::Rs)
        .total
        .energy
        .total;
    assert!(
        googlenet > alexnet,
        "GoogLeNet {googlenet:e} vs AlexNet {alexnet:e}"
    );
    assert!(
        squeezenet > alexnet,
        "SqueezeNet {squeezenet:e} vs AlexNet {alexnet:e}"
    );
}

#[test]
fn every_zoo_model_maps_on_every_preset_dataflow() {
    let hw = spec::preset("eyeriss").unwrap();
    for entry in zoo::entries() {
        let model = entry.name;
        let graph = zoo::build(model).unwrap();
        let layers = workload::from_graph(&graph, None, 1).unwrap();
        let r = network::evaluate(model, &layers, &hw, Dataflow::Rs, Objective::Energy).unwrap();
        for l in &r.layers {
            let c = &l.cost;
            // The RF sees every MAC: ifmap + filter + 2 psum accesses.
            assert!((c.accesses.rf.ifmap - c.macs as f64).abs() < 1e-6 * c.macs as f64);
            assert!(
                c.utilization > 0.0 && c.utilization <= 1.0 + 1e-9,
                "{model} {}",
                c.name
            );
            assert!(c.energy.total > c.energy.mac);
            if c.class == LayerClass::Fc {
                assert!(c.energy.dram > 0.0);
            }
        }
    }
}
