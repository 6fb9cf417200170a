//! Access counts on tiny layers, computed by hand.

use joule_energy::cost::{rlc_ratio, CostWeights};
use joule_energy::dataflow::{passes, Dim};
use joule_energy::mapping::Blocking;
use joule_energy::{search, spec, Dataflow, Objective, Workload};
use joule_model::{LayerClass, LoopNest};

fn hw() -> joule_energy::Hardware {
    spec::parse(
        "name: tiny\narray: {rows: 4, cols: 4}\nrf: {words: 64}\nbuffer: {words: 4096}\n\
         word_bits: 16\nenergy: {unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200}\n",
        "tiny.yaml",
    )
    .unwrap()
}

/// `got` equals the hand-computed `want` up to float rounding (relative 1e-12).
fn assert_exact(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs(),
        "{what}: got {got}, computed by hand {want}"
    );
}

/// N=1, M=2, C=1, 2x2 filters over a 3x3 ifmap: P=Q=2, 32 MACs.
fn tiny(n: usize, m: usize, c: usize) -> Workload {
    let nest = LoopNest {
        n,
        m,
        c,
        p: 2,
        q: 2,
        r: 2,
        s: 2,
        h: 3,
        w: 3,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        groups: 1,
    };
    Workload::new("tiny", LayerClass::Conv, nest)
}

#[test]
fn rs_single_pass_counts() {
    let w = tiny(1, 2, 1);
    let units = passes(&w, &hw(), Dataflow::Rs);
    // PE set 2x2 on a 4x4 array: 2 vertical replicas (only 1 channel), 2 horizontal ones
    // for the 2 filters: everything in one pass.
    let unit = &units[0];
    assert_eq!(unit.loops, [1, 1, 1]);
    // ifmap 3x3 = 9, filters 2 x 2x2 = 8, psums 2 x 2x2 = 8.
    assert_eq!(unit.dram_words, [9.0, 8.0, 8.0]);
    // Array: each of the 4 PEs of a set gets a 3-wide ifmap row (12); each PE of both sets
    // gets its 2-wide filter row (2 x 2 x 4 = 16); in each of the 2 columns of both sets a
    // 2-wide psum row hops from the bottom PE to the top one (2 x 2 x 2 = 8).
    assert_eq!(unit.array_reads, [12.0, 16.0, 8.0]);
    let blocking = Blocking {
        factors: [[1; 3]; 3],
        order: [[Dim::C, Dim::M, Dim::N]; 2],
    };
    let acc = blocking.accesses(unit, 32.0);
    assert_eq!(acc.dram, [9.0, 8.0, 8.0]); // DRAM: once each; psums written once (2a-1 = 1)
    assert_eq!(acc.buffer, [9.0, 8.0, 8.0]); // buffer
    assert_eq!(acc.rf, [32.0, 32.0, 64.0]); // RF: per MAC 1 + 1 + 2
    let best = search::best_mapping(&w, &hw(), Dataflow::Rs, Objective::Energy).unwrap();
    // 32 MACs + RF 128 + array 2 x 36 + buffer 6 x 25 + DRAM 200 x 25.
    let energy = 32.0 + 128.0 + 72.0 + 150.0 + 5000.0;
    let weights = CostWeights::new(&hw(), &w);
    let got = 32.0 * weights.mac + weights.data_energy(&best.accesses);
    assert_exact(got, energy, "RS energy of the single-pass layer");
}

#[test]
fn reuse_analysis_follows_the_loop_order() {
    // 2 channels x 4 filters: RS uses 1 channel x 2 filters per pass, so passes are
    // C2 x M2 x N1. Both loops at the DRAM level, order (outer -> inner) N, C, M.
    let w = tiny(1, 4, 2);
    let unit = passes(&w, &hw(), Dataflow::Rs)
        .into_iter()
        .find(|u| u.loops == [2, 2, 1])
        .expect("a 1-channel x 2-filter pass");
    let blocking = Blocking {
        factors: [[2, 2, 1], [1, 1, 1], [1, 1, 1]],
        order: [[Dim::N, Dim::C, Dim::M], [Dim::C, Dim::M, Dim::N]],
    };
    let f = blocking.all_fetches();
    // ifmaps (C, N): M runs inside C, so an ifmap stays in the buffer across filters: 1.
    // filters (C, M): innermost is M, nothing irrelevant outside: 1.
    // psums (M, N): C runs outside M, so each psum goes back to DRAM once per channel
    // block: fetched 2 times, 2 x 2 - 1 = 3 accesses per psum.
    assert_eq!(f.dram, [1.0, 1.0, 2.0]);
    let acc = blocking.accesses(&unit, 64.0);
    let psums = 4.0 * 2.0 * 2.0; // 4 filters x 2x2 ofmap
    assert_eq!(acc.dram.psum, 3.0 * psums);
    assert_eq!(acc.dram.ifmap, 2.0 * 9.0); // both channels' ifmaps once
                                           // Swap to M outside C: psums stay, ifmaps come back once per filter block.
    let swapped = Blocking {
        order: [[Dim::N, Dim::M, Dim::C], [Dim::C, Dim::M, Dim::N]],
        ..blocking
    };
    assert_eq!(swapped.all_fetches().dram, [2.0, 1.0, 1.0]);
    assert_eq!(swapped.accesses(&unit, 64.0).dram.psum, psums);
}

#[test]
fn sparsity_and_bitwidth_scale_the_right_terms() {
    assert_eq!(rlc_ratio(1.0, 16), 1.0);
    // Half the values non-zero: one (run, value) pair of 64/3 bits per non-zero, plus a
    // filler pair for the (rare) zero runs longer than 31.
    let half = rlc_ratio(0.5, 16);
    let pairs = 0.5 + 0.5_f64.powi(32) / 31.0;
    assert_exact(half, pairs * 64.0 / 3.0 / 16.0, "RLC ratio at density 0.5");
    let hw = hw();
    let dense = CostWeights::new(&hw, &tiny(1, 2, 1));
    let mut sparse_w = tiny(1, 2, 1);
    sparse_w.density.ifmap = 0.5;
    sparse_w.density.weight = 0.25;
    let sparse = CostWeights::new(&hw, &sparse_w);
    // Zero ifmaps gate the MAC and the filter/psum RF reads, not the ifmap RF read.
    assert_eq!(sparse.mac, 0.5 * dense.mac);
    assert_eq!(sparse.access.rf, [1.0, 0.5, 0.5]);
    // DRAM and buffer: compressed ifmaps and filters, raw psums.
    assert_exact(
        sparse.access.dram.ifmap,
        200.0 * rlc_ratio(0.5, 16),
        "DRAM ifmap",
    );
    assert_exact(
        sparse.access.dram.filter,
        200.0 * rlc_ratio(0.25, 16),
        "DRAM filter",
    );
    assert_eq!(sparse.access.dram.psum, 200.0);
    assert_eq!(sparse.access.array, [2.0, 2.0, 2.0]);
    let mut narrow = tiny(1, 2, 1);
    narrow.bits.ifmap = Some(8);
    narrow.bits.filter = Some(8);
    let n = CostWeights::new(&hw, &narrow);
    assert_eq!(n.mac, 0.25); // (8 x 8) / (16 x 16)
    assert_eq!(n.access.dram, [100.0, 100.0, 200.0]);
    assert_eq!(n.dram_bytes, [1.0, 1.0, 2.0]);
}

#[test]
fn skipping_zero_weights_gates_macs_and_the_other_rf_reads() {
    let mut hw = spec::parse(
        "name: tiny\narray: {rows: 4, cols: 4}\nrf: {words: 64}\nbuffer: {words: 4096}\n\
         word_bits: 16\nenergy: {unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200}\n\
         skip_zeros: {ifmap: true, weight: true}\n",
        "tiny.yaml",
    )
    .unwrap();
    let mut w = tiny(1, 2, 1);
    w.density.ifmap = 0.5;
    w.density.weight = 0.25;
    let both = CostWeights::new(&hw, &w);
    // A MAC runs only when both operands are non-zero: 0.5 x 0.25 of them.
    assert_eq!(both.mac, 0.125);
    // RF: ifmap reads gated by zero weights, filter reads by zero ifmaps, psums by both.
    assert_eq!(both.access.rf, [0.25, 0.5, 0.125]);
    // Compression in DRAM does not depend on skipping.
    assert_exact(
        both.access.dram.filter,
        200.0 * rlc_ratio(0.25, 16),
        "DRAM filter",
    );
    hw.skip_zeros.ifmap = false;
    let weights_only = CostWeights::new(&hw, &w);
    assert_eq!(weights_only.mac, 0.25);
    assert_eq!(weights_only.access.rf, [0.25, 1.0, 0.25]);
    // The default (Eyeriss) skips zero ifmaps only, and the field path names typos.
    assert!(!spec::preset("eyeriss").unwrap().skip_zeros.weight);
    let err = spec::parse(
        "name: t\narray: {rows: 1, cols: 1}\nrf: {words: 4}\nbuffer: {words: 64}\nword_bits: 16\n\
         energy: {unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200}\n\
         skip_zeros: {weights: true}\n",
        "typo.yaml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("skip_zeros"), "{err}");
}
