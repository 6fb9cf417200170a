//! Golden numbers: ISCA'16 Fig. 10 (AlexNet, RS, isca16, batch 16), the paper's claims, and the
//! equal-area CONV energies of the ISCA'16 authors' analysis model (docs/energy.md).

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

/// One layer's energy terms, for all the copies it stands for.
struct Terms {
    name: String,
    alu: f64,
    dram: f64,
    rf: f64,
}

fn evaluate(layers: &[(Workload, f64)], dataflow: Dataflow) -> Vec<Terms> {
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
            Terms {
                name: l.cost.name.clone(),
                alu: e.mac * copies,
                dram: e.dram * copies,
                rf: e.rf * copies,
            }
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
    for (terms, (paper_name, alu, dram, rf)) in ours.iter().zip(paper) {
        let name = &terms.name;
        assert_eq!(name, paper_name);
        for (what, got, want) in [
            ("ALU", terms.alu, alu),
            ("DRAM", terms.dram, dram),
            ("RF", terms.rf, rf),
        ] {
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

/// The ISCA'16 equal-area comparison: AlexNet (joule's single-tower form), isca16, batch 16.
fn equal_area_comparison() -> Vec<NetworkCost> {
    let hw = spec::preset("isca16").unwrap();
    let graph = zoo::build("alexnet").unwrap();
    let layers = workload::from_graph(&graph, None, 16).unwrap();
    let results =
        joule_energy::compare::compare("alexnet", &layers, &hw, Objective::Energy).unwrap();
    let order: Vec<Dataflow> = results.iter().map(|r| r.dataflow).collect();
    assert_eq!(order, Dataflow::COMPARED);
    results
}

#[test]
fn rs_is_the_lowest_energy_dataflow_at_equal_area() {
    // ISCA'16 (Sec. VI-B, Fig. 11): RS is 1.4x-2.5x below the other dataflows on AlexNet's
    // CONV layers and at least 1.3x below on FC layers (isca16, batch 16, equal area). That
    // claim is about the dataflows as the paper evaluates them (WS as its template). joule's
    // own WS, free to keep ifmaps in the equal-area buffer, has no published figure: it must
    // still cost more than RS (the paper: RS is the most energy-efficient dataflow) and no
    // more than the paper's WS template, whose mappings it improves on (docs/energy.md).
    let results = equal_area_comparison();
    let rs = &results[0];
    let energy = |dataflow: Dataflow| {
        let r = results.iter().find(|r| r.dataflow == dataflow).unwrap();
        (r.total.conv.energy, r.total.fc.energy)
    };
    for other in &results[1..] {
        let conv = other.total.conv.energy / rs.total.conv.energy;
        let fc = other.total.fc.energy / rs.total.fc.energy;
        let name = other.dataflow;
        if name == Dataflow::Ws {
            let (template_conv, template_fc) = energy(Dataflow::WsIsca16);
            assert!(conv > 1.0, "CONV: WS / RS = {conv:.2}");
            assert!(fc > 1.0, "FC: WS / RS = {fc:.2}");
            assert!(
                other.total.conv.energy <= template_conv,
                "CONV: WS above WS-ISCA16"
            );
            assert!(
                other.total.fc.energy <= template_fc,
                "FC: WS above WS-ISCA16"
            );
        } else {
            assert!((1.4..=2.5).contains(&conv), "CONV: {name} / RS = {conv:.2}");
            assert!(fc >= 1.3, "FC: {name} / RS = {fc:.2}");
        }
    }
}

#[test]
fn equal_area_conv_energy_matches_the_authors_analysis_model() {
    // CONV-layer energy (x1e9, MAC-normalized) from a re-evaluation of the ISCA'16 authors'
    // public analysis model (their MATLAB `run_all_flows.m`: same layers, batch, buffer
    // sizes and energy costs, every integer mapping searched), as docs/energy.md lists it.
    // Both models count the same terms the same way, so the totals should agree to rounding
    // of the mapping choices; the documented agreement is within 1.3% (WS template 123.4 vs
    // 125.0, OS-A 91.2 vs 90.3, OS-C 144.5 vs 144.6): tolerance 2%.
    let tolerance = 0.02;
    let results = equal_area_comparison();
    let conv = |dataflow: Dataflow| {
        results
            .iter()
            .find(|r| r.dataflow == dataflow)
            .unwrap()
            .total
            .conv
            .energy
            / 1e9
    };
    // The WS template term by term (`ws_flow.m`): DRAM 41.9, array 39.1, RF + MAC 21.3,
    // buffer 21.1 (total 123.4). The buffer term is left out of the term checks: joule's
    // 23.2 is 10% above, a gap docs/energy.md records without an explanation yet; it is
    // in the total.
    let ws = results
        .iter()
        .find(|r| r.dataflow == Dataflow::WsIsca16)
        .unwrap();
    let term = |f: &dyn Fn(&joule_energy::cost::LevelEnergy) -> f64| -> f64 {
        ws.layers
            .iter()
            .filter(|l| l.cost.class == joule_model::LayerClass::Conv)
            .map(|l| f(&l.cost.energy))
            .sum::<f64>()
            / 1e9
    };
    let ws_terms = [
        ("DRAM", term(&|e| e.dram), 41.9),
        ("array", term(&|e| e.array), 39.1),
        ("RF + MAC", term(&|e| e.rf + e.mac), 21.3),
    ];
    for (what, got, want) in ws_terms {
        assert!(
            (got - want).abs() <= tolerance * want,
            "WS-ISCA16 CONV {what}: joule {got:.1} vs authors' model {want}"
        );
    }
    for (dataflow, want) in [
        (Dataflow::WsIsca16, 123.4),
        (Dataflow::OsA, 91.2),
        (Dataflow::OsC, 144.5),
    ] {
        let got = conv(dataflow);
        assert!(
            (got - want).abs() <= tolerance * want,
            "{dataflow} CONV: joule {got:.1} vs authors' model {want}"
        );
    }
    // NLR: the authors' search lets a pass take any ofmap tile, joule's only row strips
    // (a subset of their mappings), so joule may lie further above; documented 143.2 vs
    // 138.4 (3.5%): the same 2% below, 5% above.
    let (got, want) = (conv(Dataflow::Nlr), 138.4);
    assert!(
        got >= want * (1.0 - tolerance) && got <= want * 1.05,
        "NLR CONV: joule {got:.1} vs authors' model {want}"
    );
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
