//! Golden numbers: ISCA'16 Fig. 10 (AlexNet, RS, isca16, batch 16) and the paper's claims.

use joule_energy::network::{self, NetworkCost};
use joule_energy::{spec, workload, Dataflow, Objective, Workload};
use joule_model::zoo;

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
    // ISCA'16: RS is 1.4x-2.5x below the other dataflows on AlexNet's CONV layers and at
    // least 1.3x below on FC layers (isca16, batch 16, equal area). With the dataflows as the
    // paper evaluates them joule gets CONV WS 1.98x, OS-A 1.43x, OS-B 1.49x, OS-C 2.29x,
    // NLR 2.27x and FC WS 2.19x, OS-A 1.85x, OS-B 1.56x, OS-C 1.39x, NLR 1.36x. joule's own
    // WS, free to keep ifmaps in the large equal-area buffer, comes within 1.23x (CONV) and
    // 1.09x (FC) of RS: RS still lowest (docs/energy.md).
    let hw = spec::preset("isca16").unwrap();
    let graph = zoo::build("alexnet").unwrap();
    let layers = workload::from_graph(&graph, None, 16).unwrap();
    let results =
        joule_energy::compare::compare("alexnet", &layers, &hw, Objective::Energy).unwrap();
    let order: Vec<Dataflow> = results.iter().map(|r| r.dataflow).collect();
    assert_eq!(order, Dataflow::COMPARED);
    let rs = &results[0];
    for other in &results[1..] {
        let conv = other.total.conv.energy / rs.total.conv.energy;
        let fc = other.total.fc.energy / rs.total.fc.energy;
        let name = other.dataflow;
        if name == Dataflow::Ws {
            assert!((1.15..1.4).contains(&conv), "CONV: WS / RS = {conv:.2}");
            assert!((1.05..1.3).contains(&fc), "FC: WS / RS = {fc:.2}");
        } else {
            assert!((1.4..=2.5).contains(&conv), "CONV: {name} / RS = {conv:.2}");
            assert!(fc >= 1.3, "FC: {name} / RS = {fc:.2}");
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
    // Every zoo model x {eyeriss, isca16} x {RS, WS, OS, NLR}, batch 1, with per-dataflow
    // invariants of the RF counts.
    for hw_name in ["eyeriss", "isca16"] {
        let hw = spec::preset(hw_name).unwrap();
        for entry in zoo::entries() {
            let model = entry.name;
            let graph = zoo::build(model).unwrap();
            let layers = workload::from_graph(&graph, None, 1).unwrap();
            for dataflow in Dataflow::ALL {
                let r = network::evaluate(model, &layers, &hw, dataflow, Objective::Energy)
                    .unwrap_or_else(|e| panic!("{model} on {hw_name} ({dataflow}): {e}"));
                assert_eq!(r.layers.len(), layers.len());
                for l in &r.layers {
                    let c = &l.cost;
                    let macs = c.macs as f64;
                    let what = format!("{model} {} on {hw_name} ({dataflow})", c.name);
                    let rf = &c.accesses.rf;
                    // RS: every MAC reads an ifmap and a filter value and reads and writes
                    // a psum in the RF; WS reads its stationary weight; OS reads and writes
                    // its stationary psum; NLR has no RF.
                    let expected = match dataflow {
                        Dataflow::Rs => [macs, macs, 2.0 * macs],
                        Dataflow::Ws => [0.0, macs, 0.0],
                        Dataflow::Nlr => [0.0; 3],
                        _ => [0.0, 0.0, 2.0 * macs],
                    };
                    for (got, want) in [rf.ifmap, rf.filter, rf.psum].into_iter().zip(expected) {
                        assert!(
                            (got - want).abs() <= 1e-6 * macs,
                            "{what}: RF {got} vs {want}"
                        );
                    }
                    assert!(
                        c.utilization > 0.0 && c.utilization <= 1.0 + 1e-9,
                        "{what}: utilization {}",
                        c.utilization
                    );
                    assert!(c.energy.total > c.energy.mac, "{what}");
                    assert!(c.energy.dram > 0.0, "{what}");
                }
            }
        }
    }
}
