//! Eyexam's steps counted by hand on tiny layers, and its invariants on the zoo: every step
//! bounds the next, and the last step's cycles are the energy report's.

use joule_energy::eyexam::{examine, examine_layer, Step};
use joule_energy::{network, spec, workload, Dataflow, Hardware, Objective, Workload};
use joule_model::{zoo, LayerClass, LoopNest};

fn machine(extra: &str, rows: u64, cols: u64, buffer_words: u64) -> Hardware {
    spec::parse(
        &format!(
            "name: t\narray: {{rows: {rows}, cols: {cols}}}\nrf: {{words: 16}}\n\
             buffer: {{words: {buffer_words}}}\nword_bits: 16\n\
             energy: {{unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200}}\n{extra}"
        ),
        "t.yaml",
    )
    .unwrap()
}

/// A 1x1 CONV (R = S = 1) over a `p x p` ofmap.
fn pointwise(c: usize, m: usize, p: usize) -> Workload {
    let nest = LoopNest {
        n: 1,
        m,
        c,
        p,
        q: p,
        r: 1,
        s: 1,
        h: p,
        w: p,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        groups: 1,
    };
    Workload::new("pw", LayerClass::Conv, nest)
}

fn rates(w: &Workload, hw: &Hardware, dataflow: Dataflow) -> Vec<f64> {
    let exam = examine_layer(w, hw, dataflow, Objective::Energy).unwrap();
    exam.steps.iter().map(|b| b.macs_per_cycle).collect()
}

#[test]
fn nlr_steps_by_hand() {
    // NLR on a 4x4 array: channels on rows, filters on columns. C = 2, M = 5, a 2x2 ofmap:
    // 2 x 5 x 4 = 40 MACs.
    let hw = machine("", 4, 4, 4096);
    let w = pointwise(2, 5, 2);
    let r = rates(&w, &hw, Dataflow::Nlr);
    // 1 peak: 16 PEs. 2 dataflow: C x M = 10 PEs could work at once. 3 array shape:
    // min(4 rows, C = 2) x min(4 columns, M = 5) = 8. 4 fit: the filters take two passes
    // (4 + 1), each 4 pixels long: 8 cycles, 40 / 8 = 5 MACs per cycle. The buffer holds
    // everything and nothing limits bandwidth, so 5 stays to the end.
    assert_eq!(r, vec![16.0, 10.0, 8.0, 5.0, 5.0, 5.0, 5.0, 5.0]);
    let exam = examine_layer(&w, &hw, Dataflow::Nlr, Objective::Energy).unwrap();
    assert_eq!(exam.bound(Step::Peak).cycles, 2.5);
    assert_eq!(exam.bound(Step::Sparsity).cycles, 8.0);

    // A DRAM of 1 word per cycle: each of the 8 ifmap, 10 filter and 20 ofmap words
    // crosses it once (the buffer holds the layer), 38 cycles > 8 cycles of compute.
    let slow = machine("dram: {bandwidth: 1}\n", 4, 4, 4096);
    let exam = examine_layer(&w, &slow, Dataflow::Nlr, Objective::Energy).unwrap();
    assert_eq!(exam.transfer_cycles.dram, 38.0);
    assert_eq!(exam.bound(Step::Mapping).cycles, 8.0);
    assert_eq!(exam.bound(Step::Bandwidth).cycles, 38.0);
    assert_eq!(exam.bound(Step::Sparsity).cycles, 38.0);
}

#[test]
fn buffer_and_noc_bandwidth_bound_cycles() {
    // The same layer with the buffer and the NoC limited: buffer accesses and array
    // deliveries over their bandwidths, taken from the chosen mapping's counts.
    let w = pointwise(2, 5, 2);
    let hw = machine("noc: {bandwidth: 2}\n", 4, 4, 4096);
    let exam = examine_layer(&w, &hw, Dataflow::Nlr, Objective::Energy).unwrap();
    let r = network::evaluate(
        "t",
        std::slice::from_ref(&w),
        &hw,
        Dataflow::Nlr,
        Objective::Energy,
    )
    .unwrap();
    let array_words = r.layers[0].cost.accesses.array.sum();
    assert!(array_words > 16.0, "{array_words}");
    assert_eq!(exam.transfer_cycles.array, array_words / 2.0);
    assert_eq!(exam.bound(Step::Bandwidth).cycles, array_words / 2.0);
    // The energy report's cycles are the NoC's too.
    assert_eq!(r.layers[0].cost.cycles, array_words / 2.0);
}

#[test]
fn storage_step_by_hand() {
    // OS-C: one pixel of p filters per pass. C = 1, M = 4, one pixel: 4 MACs on a 2x2
    // array. Passes with p = 1, 2, 4 filters take 4, 2, 1 cycles; a pass needs 1 ifmap +
    // p filter + p psum words of buffer, and the buffer has 5: p = 4 does not fit.
    let hw = machine("", 2, 2, 5);
    let w = pointwise(1, 4, 1);
    let r = rates(&w, &hw, Dataflow::OsC);
    assert_eq!(r, vec![4.0, 4.0, 4.0, 4.0, 2.0, 2.0, 2.0, 2.0]);
    // With room for 9 words the fastest pass fits.
    let roomy = machine("", 2, 2, 9);
    assert_eq!(rates(&w, &roomy, Dataflow::OsC)[4], 4.0);
}

#[test]
fn sparsity_step_by_hand() {
    // Half the ifmaps are zero: 20 of the 40 MACs are non-zero. Steps 1-7 count what a
    // machine skipping every zero would reach: 8 compute cycles of dense work become 4.
    let mut w = pointwise(2, 5, 2);
    w.density.ifmap = 0.5;
    let gating = machine("", 4, 4, 4096);
    let exam = examine_layer(&w, &gating, Dataflow::Nlr, Objective::Energy).unwrap();
    assert_eq!(exam.nonzero_macs, 20.0);
    assert_eq!(exam.bound(Step::Bandwidth).cycles, 4.0);
    // Eyeriss v1 style: zero ifmaps are gated (energy), not skipped (cycles): 8 cycles,
    // 20 / 8 = 2.5 non-zero MACs per cycle.
    assert_eq!(exam.bound(Step::Sparsity).cycles, 8.0);
    assert_eq!(exam.bound(Step::Sparsity).macs_per_cycle, 2.5);
    // Skipping in the compressed domain saves the cycles too.
    let skipping = machine("skip_zeros: {ifmap: true, cycles: true}\n", 4, 4, 4096);
    let exam = examine_layer(&w, &skipping, Dataflow::Nlr, Objective::Energy).unwrap();
    assert_eq!(exam.bound(Step::Sparsity).cycles, 4.0);
    // A machine skipping only zero weights in time gains nothing from zero ifmaps.
    let weights_only = machine(
        "skip_zeros: {ifmap: false, weight: true, cycles: true}\n",
        4,
        4,
        4096,
    );
    let exam = examine_layer(&w, &weights_only, Dataflow::Nlr, Objective::Energy).unwrap();
    assert_eq!(exam.bound(Step::Sparsity).cycles, 8.0);
}

#[test]
fn dataflow_and_shape_steps_by_hand() {
    // A depthwise 3x3 CONV (32 groups of one channel and one filter), 8x8 ofmap, on a
    // 12x14 array under RS: per group the logical set is R x P = 3 x 8 = 24 PEs, and
    // nothing else can be spread (C = M = 1 per group, groups run one after another).
    let nest = LoopNest {
        n: 1,
        m: 1,
        c: 1,
        p: 8,
        q: 8,
        r: 3,
        s: 3,
        h: 10,
        w: 10,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        groups: 32,
    };
    let w = Workload::new("dw", LayerClass::Conv, nest);
    let hw = spec::preset("eyeriss").unwrap();
    let exam = examine_layer(&w, &hw, Dataflow::Rs, Objective::Energy).unwrap();
    assert_eq!(exam.bound(Step::Peak).macs_per_cycle, 168.0);
    assert_eq!(exam.bound(Step::Dataflow).macs_per_cycle, 24.0);
    assert_eq!(exam.bound(Step::ArrayShape).macs_per_cycle, 24.0);
    // One pass per group: 3 filter taps per row x 8 ofmap columns = 24 cycles for the
    // 3 x 3 x 8 x 8 = 576 MACs of a group: still 24 MACs per cycle.
    assert_eq!(exam.bound(Step::Fit).macs_per_cycle, 24.0);
    assert_eq!(exam.bound(Step::Sparsity).cycles, 32.0 * 24.0);
    // NLR: C x M = 1 PE per group.
    let nlr = examine_layer(&w, &hw, Dataflow::Nlr, Objective::Energy).unwrap();
    assert_eq!(nlr.bound(Step::Dataflow).macs_per_cycle, 1.0);
    // A 5-row filter on a 4-row array under RS: R is cut at the rows (step 3).
    let mut tall = w.clone();
    tall.nest.r = 5;
    tall.nest.h = 12;
    let small = machine("", 4, 16, 1 << 16);
    let exam = examine_layer(&tall, &small, Dataflow::Rs, Objective::Energy).unwrap();
    assert_eq!(exam.bound(Step::Dataflow).macs_per_cycle, 40.0);
    assert_eq!(exam.bound(Step::ArrayShape).macs_per_cycle, 32.0);
}

fn check_invariants(model: &str, hw: &Hardware, dataflow: Dataflow, batch: usize) {
    let layers = workload::from_graph(&zoo::build(model).unwrap(), None, batch).unwrap();
    let exam = examine(model, &layers, hw, dataflow, Objective::Energy);
    let Ok(report) = network::evaluate(model, &layers, hw, dataflow, Objective::Energy) else {
        // No mapping fits (OS-A on MobileNet's 14x14x1024 pointwise layers, say): Eyexam
        // fails with the energy report.
        assert!(exam.is_err(), "{model} on {} {dataflow}", hw.name);
        return;
    };
    let exam = exam.unwrap();
    for (l, r) in exam.layers.iter().zip(&report.layers) {
        for pair in l.steps.windows(2) {
            assert!(
                pair[1].macs_per_cycle <= pair[0].macs_per_cycle * (1.0 + 1e-12),
                "{model} {} on {} {dataflow}: {:?} > {:?}",
                l.name,
                hw.name,
                pair[1],
                pair[0]
            );
        }
        assert_eq!(l.bound(Step::Sparsity).cycles, r.cost.cycles, "{}", l.name);
    }
    let last = exam.total.last().unwrap();
    assert!((last.cycles / report.total.cycles - 1.0).abs() < 1e-12);
}

#[test]
fn every_step_bounds_the_next_and_ends_at_the_energy_cycles() {
    let eyeriss = spec::preset("eyeriss").unwrap();
    for entry in zoo::entries() {
        let model = entry.name;
        check_invariants(model, &eyeriss, Dataflow::Rs, 1);
    }
    for hw in ["isca16", "eyeriss-sparse"] {
        let hw = spec::preset(hw).unwrap();
        for dataflow in Dataflow::COMPARED.into_iter().chain([Dataflow::Os]) {
            for model in ["alexnet", "mobilenet"] {
                check_invariants(model, &hw, dataflow, 2);
            }
        }
    }
}
