//! Energy and cycles at reduced precision, counted by hand: the MAC split into a multiplier
//! that scales with the operand product and an adder that scales with the accumulator
//! width (Horowitz ISSCC'14), DRAM bandwidth in bits, bit-serial (Stripes) compute, and
//! per-layer widths.

use joule_energy::cost::CostWeights;
use joule_energy::workload::{apply_bitwidths, parse_bitwidths, Bitwidth, LayerBitwidths};
use joule_energy::{network, spec, Dataflow, Objective, PerTensor, Workload};
use joule_model::{LayerClass, LoopNest};

/// `got` equals the hand-computed `want` up to float rounding (relative 1e-12).
fn assert_exact(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs(),
        "{what}: got {got}, computed by hand {want}"
    );
}

const TINY: &str =
    "name: tiny\narray: {rows: 4, cols: 4}\nrf: {words: 64}\nbuffer: {words: 4096}\n\
    word_bits: 16\nenergy: {unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200}\n";

fn bits(ifmap: f64, filter: f64, psum: f64) -> PerTensor<f64> {
    PerTensor {
        ifmap,
        filter,
        psum,
    }
}

/// N=1, M=2, C=2, 3x3 filters over a 6x6 ifmap: P=Q=4, 2 x 2 x 16 x 9 = 576 MACs.
fn layer(name: &str) -> Workload {
    let nest = LoopNest {
        n: 1,
        m: 2,
        c: 2,
        p: 4,
        q: 4,
        r: 3,
        s: 3,
        h: 6,
        w: 6,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        groups: 1,
    };
    Workload::new(name, LayerClass::Conv, nest)
}

#[test]
fn presets_cost_one_mac_at_their_reference_widths() {
    for name in ["eyeriss", "eyeriss-sparse", "isca16"] {
        let hw = spec::preset(name).unwrap();
        assert_eq!(hw.mac_scaling.multiplier, 0.939, "{name}");
        assert_eq!(hw.mac_scaling.accumulator_bits, 16, "{name}");
        // Exactly the preset's number, not merely close.
        assert_eq!(hw.mac_energy(bits(16.0, 16.0, 16.0)), 1.0, "{name}");
    }
    let h = spec::preset("horowitz45").unwrap();
    assert_exact(h.mac_energy(bits(32.0, 32.0, 32.0)), 4.6, "horowitz45 fp32");
}

#[test]
fn the_multiplier_scales_with_the_operand_product_and_the_adder_with_the_accumulator() {
    let eyeriss = spec::preset("eyeriss").unwrap();
    // 8 x 8 operands, 16-bit psums: 0.939 x 64/256 + 0.061 x 16/16.
    assert_exact(
        eyeriss.mac_energy(bits(8.0, 8.0, 16.0)),
        0.23475 + 0.061,
        "eyeriss 8/8/16",
    );
    // 4 x 4 into 16 bits: 0.939 x 16/256 + 0.061.
    assert_exact(
        eyeriss.mac_energy(bits(4.0, 4.0, 16.0)),
        0.0586875 + 0.061,
        "eyeriss 4/4/16",
    );
    // 8 x 8 into 8 bits (`--bits 8`): the adder halves too.
    assert_exact(
        eyeriss.mac_energy(bits(8.0, 8.0, 8.0)),
        0.23475 + 0.0305,
        "eyeriss 8/8/8",
    );
    // Mixed widths: 8-bit ifmaps, 2-bit weights.
    assert_exact(
        eyeriss.mac_energy(bits(8.0, 2.0, 16.0)),
        0.939 * 16.0 / 256.0 + 0.061,
        "eyeriss 8/2/16",
    );
    // horowitz45 takes its split from its arithmetic table (fp32: 3.7 pJ mult + 0.9 pJ add):
    // an 8 x 8 multiply into the 32-bit accumulator is 3.7 x 64/1024 + 0.9 pJ.
    let h = spec::preset("horowitz45").unwrap();
    assert_exact(
        h.mac_energy(bits(8.0, 8.0, 32.0)),
        0.23125 + 0.9,
        "horowitz45 8/8/32",
    );
    // A spec without `mac_scaling` or `arithmetic` keeps the earlier rule: all multiplier.
    let tiny = spec::parse(TINY, "tiny.yaml").unwrap();
    assert_eq!(tiny.mac_scaling.multiplier, 1.0);
    assert_eq!(tiny.mac_energy(bits(8.0, 8.0, 16.0)), 0.25);
    assert_eq!(tiny.mac_energy(bits(8.0, 8.0, 4.0)), 0.25);
    // An explicit accumulator width: a 32-bit accumulator costs 1 MAC at 16 x 16 -> 32.
    let wide = spec::parse(
        &format!("{TINY}mac_scaling: {{multiplier: 0.5, accumulator_bits: 32}}\n"),
        "wide.yaml",
    )
    .unwrap();
    assert_eq!(wide.mac_energy(bits(16.0, 16.0, 32.0)), 1.0);
    assert_eq!(
        wide.mac_energy(bits(8.0, 8.0, 16.0)),
        0.5 * 0.25 + 0.5 * 0.5
    );
}

#[test]
fn cost_weights_use_the_scaled_mac_and_gate_it() {
    let hw = spec::preset("eyeriss").unwrap();
    let mut w = layer("conv");
    w.bits.ifmap = Some(8);
    w.bits.filter = Some(4);
    w.density.ifmap = 0.5;
    let weights = CostWeights::new(&hw, &w);
    // Zero ifmaps gate the MAC: 0.5 x (0.939 x 32/256 + 0.061).
    assert_exact(
        weights.mac,
        0.5 * (0.939 * 32.0 / 256.0 + 0.061),
        "gated MAC",
    );
    // Memory traffic scales with bits: 4-bit filters cost a quarter of a 16-bit word.
    assert_eq!(weights.access.array.filter, 2.0 * 4.0 / 16.0);
    assert_eq!(weights.dram_words, [0.5, 0.25, 1.0]);
}

#[test]
fn dram_bandwidth_counts_bits_and_bit_serial_compute_counts_ifmap_bits() {
    let limited = spec::parse(&format!("{TINY}dram: {{bandwidth: 1}}\n"), "bw.yaml").unwrap();
    let mut w = layer("conv");
    w.bits.ifmap = Some(8);
    w.bits.filter = Some(8);
    let weights = CostWeights::new(&limited, &w);
    // 10 ifmap + 20 filter accesses at half a word each, 30 psums at a full word: 45 words
    // at 1 word per cycle, longer than 40 compute cycles.
    let dram = bits(10.0, 20.0, 30.0);
    assert_eq!(weights.cycles(40.0, &dram), 45.0);
    assert_eq!(weights.cycles(50.0, &dram), 50.0);
    // Bit-serial: 8-bit ifmaps take half the compute cycles of 16-bit ones.
    let serial = spec::parse(&format!("{TINY}bit_serial: true\n"), "serial.yaml").unwrap();
    assert!(serial.bit_serial);
    let weights = CostWeights::new(&serial, &w);
    assert_eq!(weights.compute_scale, 0.5);
    assert_eq!(weights.cycles(40.0, &dram), 20.0);
    w.bits.ifmap = Some(2);
    assert_eq!(CostWeights::new(&serial, &w).cycles(40.0, &dram), 5.0);
}

#[test]
fn bit_serial_latency_follows_ifmap_bits_at_equal_energy() {
    let parallel = spec::parse(TINY, "tiny.yaml").unwrap();
    let serial = spec::parse(&format!("{TINY}bit_serial: true\n"), "serial.yaml").unwrap();
    let mut layers = vec![layer("conv")];
    layers[0].bits.ifmap = Some(4);
    layers[0].bits.filter = Some(4);
    let a = network::evaluate("t", &layers, &parallel, Dataflow::Rs, Objective::Energy).unwrap();
    let b = network::evaluate("t", &layers, &serial, Dataflow::Rs, Objective::Energy).unwrap();
    // The same energy (the same mapping wins), a quarter of the cycles at 4-bit ifmaps, and
    // the same utilization of what the bit-serial PEs could do.
    assert_eq!(a.total.energy.total, b.total.energy.total);
    assert_exact(b.total.cycles, a.total.cycles / 4.0, "bit-serial cycles");
    assert_exact(
        b.layers[0].cost.utilization,
        a.layers[0].cost.utilization,
        "utilization",
    );
    // At full width bit-serial hardware is as fast as bit-parallel.
    let full = vec![layer("conv")];
    let a = network::evaluate("t", &full, &parallel, Dataflow::Rs, Objective::Energy).unwrap();
    let b = network::evaluate("t", &full, &serial, Dataflow::Rs, Objective::Energy).unwrap();
    assert_eq!(a.total.cycles, b.total.cycles);
}

#[test]
fn per_layer_widths_apply_by_name_and_reach_the_report() {
    let hw = spec::preset("eyeriss").unwrap();
    let mut layers = vec![layer("conv1"), layer("conv2")];
    let map = parse_bitwidths("conv2: {ifmap: 8, filter: 4}\n", "bits.yaml").unwrap();
    apply_bitwidths(&mut layers, &map, "bits.yaml").unwrap();
    assert_eq!(layers[0].bits, Bitwidth::default());
    assert_eq!(
        layers[1].bits,
        Bitwidth {
            ifmap: Some(8),
            filter: Some(4),
            psum: None
        }
    );
    let r = network::evaluate("t", &layers, &hw, Dataflow::Rs, Objective::Energy).unwrap();
    // 576 MACs each: 1 MAC-energy per MAC in conv1, 0.939 x 32/256 + 0.061 in conv2.
    assert_eq!(r.layers[0].cost.energy.mac, 576.0);
    assert_exact(
        r.layers[1].cost.energy.mac,
        576.0 * (0.939 * 32.0 / 256.0 + 0.061),
        "conv2 MAC energy",
    );
    // conv2's DRAM bytes: at most half of conv1's (8- and 4-bit data, 16-bit psums).
    assert!(r.layers[1].cost.dram_bytes < r.layers[0].cost.dram_bytes);
    // Unknown layers and bad widths name the file and field.
    let mut unknown = LayerBitwidths::new();
    unknown.insert("fc9".into(), Bitwidth::default());
    let err = apply_bitwidths(&mut layers, &unknown, "bits.yaml").unwrap_err();
    assert!(err.to_string().contains("fc9"), "{err}");
    let err = parse_bitwidths("conv1: {filter: 0}\n", "bits.yaml").unwrap_err();
    assert!(err.to_string().contains("conv1.filter"), "{err}");
    let err = parse_bitwidths("conv1: {weights: 4}\n", "bits.yaml").unwrap_err();
    assert!(err.to_string().contains("weights"), "{err}");
}

#[test]
fn bad_mac_scaling_names_the_field() {
    for (text, field) in [
        ("mac_scaling: {multiplier: 1.5}\n", "mac_scaling.multiplier"),
        (
            "mac_scaling: {multiplier: 0.9, accumulator_bits: 0}\n",
            "mac_scaling.accumulator_bits",
        ),
    ] {
        let err = spec::parse(&format!("{TINY}{text}"), "s.yaml").unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
    }
}
