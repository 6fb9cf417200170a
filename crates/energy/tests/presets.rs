//! The flexibility presets (`eyeriss-v2-like`, `systolic-256`, `nvdla-like`): their numbers
//! as documented in their YAML, and the behaviour that sets them apart.

use joule_energy::spec::{preset, RfCapacity};
use joule_energy::{network, workload, Dataflow, Objective};
use joule_model::zoo;

#[test]
fn presets_carry_their_documented_numbers() {
    let tpu = preset("systolic-256").unwrap();
    // TPU v1: 256 x 256 MACs, 24 MiB unified buffer (16-bit words), 34 GB/s at 700 MHz.
    assert_eq!(tpu.array.pes(), 65_536);
    assert_eq!(tpu.buffer_words, 24 * 1024 * 1024 / 2);
    assert_eq!(tpu.dram_bandwidth, Some(24.0));
    assert!((34e9_f64 / 700e6 / 2.0 - 24.0).abs() < 0.5);
    assert_eq!(tpu.clock_mhz, 700.0);
    let nvdla = preset("nvdla-like").unwrap();
    // nv_full: atomic-C 64 x atomic-K 16, 512 KiB convolution buffer.
    assert_eq!((nvdla.array.rows, nvdla.array.cols), (64, 16));
    assert_eq!(nvdla.buffer_words, 512 * 1024 / 2);
    let v2 = preset("eyeriss-v2-like").unwrap();
    // 16 clusters of 3 x 4 PEs.
    assert_eq!(v2.array.pes(), 16 * 3 * 4);
    assert_eq!(
        v2.rf,
        RfCapacity::Split {
            ifmap: 12,
            filter: 192,
            psum: 32
        }
    );
    assert!(v2.skip_zeros.ifmap && v2.skip_zeros.weight && v2.skip_zeros.cycles);
    // Eyeriss v1 gates zero ifmaps for energy only.
    assert!(!preset("eyeriss").unwrap().skip_zeros.cycles);
}

#[test]
fn compressed_domain_skipping_saves_cycles_in_proportion() {
    // Half the ifmaps and half the weights zero: Eyeriss v2-like runs a quarter of the MACs,
    // so with no bandwidth limit every layer takes a quarter of the cycles of the same
    // machine that only gates them (the mapper's choice is the same: energies are equal).
    let v2 = preset("eyeriss-v2-like").unwrap();
    let mut gating = v2.clone();
    gating.skip_zeros.cycles = false;
    let mut layers = workload::from_graph(&zoo::build("alexnet").unwrap(), None, 1).unwrap();
    for w in &mut layers {
        w.density.ifmap = 0.5;
        w.density.weight = 0.5;
    }
    let skip = network::evaluate("a", &layers, &v2, Dataflow::Rs, Objective::Energy).unwrap();
    let gate = network::evaluate("a", &layers, &gating, Dataflow::Rs, Objective::Energy).unwrap();
    assert_eq!(skip.total.energy.total, gate.total.energy.total);
    for (s, g) in skip.layers.iter().zip(&gate.layers) {
        assert!(
            (s.cost.cycles / g.cost.cycles - 0.25).abs() < 1e-12,
            "{}",
            s.cost.name
        );
        // Utilization counts the MACs that ran: the same share of PE-cycles busy.
        assert!((s.cost.utilization - g.cost.utilization).abs() < 1e-12);
    }
}

#[test]
fn a_systolic_array_idles_on_a_depthwise_layer() {
    // Seed 000, Fig. 3: a big MAC array gets its parallelism from many channels; MobileNet's
    // depthwise layers (C = M = 1 per group) leave it idle under weight stationarity:
    // 3 x 3 taps of one channel and one filter = 9 of 65,536 PEs per group.
    let tpu = preset("systolic-256").unwrap();
    let layers = workload::from_graph(&zoo::build("mobilenet").unwrap(), None, 1).unwrap();
    let dw = layers.iter().find(|w| w.name == "conv2/dw").unwrap();
    let exam =
        joule_energy::eyexam::examine_layer(dw, &tpu, Dataflow::Ws, Objective::Energy).unwrap();
    assert_eq!(
        exam.bound(joule_energy::eyexam::Step::Dataflow)
            .macs_per_cycle,
        9.0
    );
}
