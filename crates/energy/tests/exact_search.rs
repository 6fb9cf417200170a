//! The mapping search is exact: on many small random layers, every dataflow and several
//! machines, its best mapping scores the same as a brute-force walk over the whole mapspace
//! (every spatial pass, every split of each pass loop over DRAM, buffer and RF, all 6 x 6 loop
//! orders), each mapping evaluated by the same cost model, and its mapping is a legal one.
//!
//! The brute force shares only the model with the search (the passes, the access counts of a
//! blocking, the cost weights), none of its pruning: no early exits on RF or buffer overflow,
//! no lower bound on a pass, no separation of the DRAM- and buffer-level orders.

use joule_energy::cost::CostWeights;
use joule_energy::dataflow::{passes, Dim, PassUnit};
use joule_energy::mapping::{Blocking, Fit};
use joule_energy::mapspace::divisors;
use joule_energy::{search, spec, Dataflow, Hardware, Objective, Workload};
use joule_model::{LayerClass, LoopNest};

/// A small seeded generator (SplitMix64): reproducible layers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

fn random_layer(rng: &mut Rng, index: usize) -> Workload {
    let (r, s) = (rng.range(1, 3), rng.range(1, 3));
    let (p, q) = (rng.range(1, 5), rng.range(1, 5));
    let stride = rng.range(1, 2);
    let nest = LoopNest {
        n: rng.range(1, 3),
        m: rng.range(1, 8),
        c: rng.range(1, 6),
        p,
        q,
        r,
        s,
        h: (p - 1) * stride + r,
        w: (q - 1) * stride + s,
        stride_h: stride,
        stride_w: stride,
        dilation_h: 1,
        dilation_w: 1,
        groups: 1,
    };
    let mut w = Workload::new(format!("layer{index}"), LayerClass::Conv, nest);
    // Some sparse layers, so zero gating and compression weigh the terms differently.
    if rng.range(0, 2) == 0 {
        w.density.ifmap = 0.25 + 0.25 * rng.range(0, 3) as f64;
        w.density.weight = 0.25 + 0.25 * rng.range(0, 3) as f64;
    }
    w
}

/// Machines that differ in array shape, RF (shared, split, one word) and buffer size, energy
/// costs and DRAM bandwidth.
fn machines() -> Vec<Hardware> {
    let energy = "energy: {unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200}";
    let flat = "energy: {unit: mac, mac: 1, rf: 1.5, array: 1, buffer: 10, dram: 60}";
    [
        format!("name: a\narray: {{rows: 4, cols: 4}}\nrf: {{words: 16}}\nbuffer: {{words: 4096}}\nword_bits: 16\n{energy}\n"),
        format!("name: b\narray: {{rows: 2, cols: 3}}\nrf: {{words: 4}}\nbuffer: {{words: 160}}\nword_bits: 16\n{energy}\n"),
        format!("name: c\narray: {{rows: 3, cols: 2}}\nrf: {{ifmap: 3, filter: 6, psum: 2}}\nbuffer: {{words: 512}}\nword_bits: 16\n{flat}\nskip_zeros: {{ifmap: true, weight: true}}\n"),
        format!("name: d\narray: {{rows: 8, cols: 2}}\nrf: {{words: 64}}\nbuffer: {{words: 96}}\ndram: {{bandwidth: 2}}\nword_bits: 16\n{flat}\n"),
        format!("name: e\narray: {{rows: 1, cols: 4}}\nrf: {{words: 1}}\nbuffer: {{words: 1024}}\nword_bits: 8\n{energy}\n"),
    ]
    .iter()
    .map(|text| spec::parse(text, "test").unwrap())
    .collect()
}

/// The six orders of the pass loops at one level, outermost first.
fn all_orders() -> Vec<[Dim; 3]> {
    let mut out = Vec::new();
    for a in Dim::ALL {
        for b in Dim::ALL {
            for c in Dim::ALL {
                if a != b && b != c && a != c {
                    out.push([a, b, c]);
                }
            }
        }
    }
    out
}

/// Every split `(dram, buffer, rf)` of `loops` with `dram * buffer * rf == loops`, `rf` 1
/// where the dataflow cannot block at the RF.
fn splits(loops: u64, rf_allowed: bool) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    for rf in divisors(loops) {
        if rf > 1 && !rf_allowed {
            continue;
        }
        for buffer in divisors(loops / rf) {
            out.push((loops / rf / buffer, buffer, rf));
        }
    }
    out
}

fn score(objective: Objective, energy: f64, cycles: f64) -> f64 {
    match objective {
        Objective::Energy => energy,
        Objective::Cycles => cycles,
        Objective::Edp => energy * cycles,
    }
}

/// Energy and cycles of one layer (one group) under `blocking` of `unit`, as the search
/// scores them.
fn evaluate(unit: &PassUnit, blocking: &Blocking, weights: &CostWeights, macs: f64) -> (f64, f64) {
    let acc = blocking.accesses(unit, macs);
    let energy = macs * weights.mac + weights.data_energy(&acc);
    let compute = unit.cycles * blocking.passes() as f64;
    let cycles = match weights.dram_bandwidth {
        Some(bw) => compute.max(acc.dram.iter().sum::<f64>() / bw),
        None => compute,
    };
    (energy, cycles)
}

/// The best primary score over the whole mapspace, or `None` when nothing fits.
fn brute_force(
    w: &Workload,
    hw: &Hardware,
    dataflow: Dataflow,
    objective: Objective,
) -> Option<f64> {
    let weights = CostWeights::new(hw, w);
    let macs = w.nest.macs() as f64;
    let orders = all_orders();
    let mut best: Option<f64> = None;
    for unit in passes(w, hw, dataflow) {
        let rf_allowed = |d: usize| dataflow.uses_rf() && unit.rf_blockable[d];
        let [c, m, n] = unit.loops;
        for (dc, bc, rc) in splits(c, rf_allowed(Dim::C as usize)) {
            for (dm, bm, rm) in splits(m, rf_allowed(Dim::M as usize)) {
                for (dn, bn, rn) in splits(n, rf_allowed(Dim::N as usize)) {
                    let mut blocking = Blocking {
                        factors: [[dc, dm, dn], [bc, bm, bn], [rc, rm, rn]],
                        order: [Dim::ALL; 2],
                    };
                    if blocking.fit(&unit, hw) != Fit::Fits {
                        continue;
                    }
                    for &dram_order in &orders {
                        for &buffer_order in &orders {
                            blocking.order = [dram_order, buffer_order];
                            let (energy, cycles) = evaluate(&unit, &blocking, &weights, macs);
                            let s = score(objective, energy, cycles);
                            best = Some(best.map_or(s, |b: f64| b.min(s)));
                        }
                    }
                }
            }
        }
    }
    best
}

/// Checks the search's mapping is a legal point of the mapspace and that its reported
/// accesses are what the model gives for it; returns its primary score.
fn check_search(
    w: &Workload,
    hw: &Hardware,
    dataflow: Dataflow,
    objective: Objective,
    what: &str,
) -> Option<f64> {
    let best = search::best_mapping(w, hw, dataflow, objective).ok()?;
    let (unit, blocking) = (&best.mapping.unit, &best.mapping.blocking);
    assert!(
        passes(w, hw, dataflow).contains(unit),
        "{what}: the search's pass is not one of the dataflow's"
    );
    for d in Dim::ALL {
        let d = d as usize;
        let product: u64 = blocking.factors.iter().map(|level| level[d]).product();
        assert_eq!(
            product, unit.loops[d],
            "{what}: factors of loop {d} do not multiply out"
        );
        if !(dataflow.uses_rf() && unit.rf_blockable[d]) {
            assert_eq!(blocking.factors[2][d], 1, "{what}: RF blocking of loop {d}");
        }
    }
    for order in blocking.order {
        for d in Dim::ALL {
            assert!(
                order.contains(&d),
                "{what}: order {order:?} is not a permutation"
            );
        }
    }
    assert_eq!(
        blocking.fit(unit, hw),
        Fit::Fits,
        "{what}: the mapping does not fit"
    );
    let macs = w.nest.macs() as f64;
    assert_eq!(
        blocking.accesses(unit, macs),
        best.accesses,
        "{what}: reported accesses differ from the model's"
    );
    let weights = CostWeights::new(hw, w);
    let (energy, cycles) = evaluate(unit, blocking, &weights, macs);
    Some(score(objective, energy, cycles))
}

#[test]
fn search_matches_brute_force_on_random_layers() {
    let mut rng = Rng(0x5EED_2016);
    let layers: Vec<Workload> = (0..48).map(|i| random_layer(&mut rng, i)).collect();
    let dataflows = [
        Dataflow::Rs,
        Dataflow::Ws,
        Dataflow::WsIsca16,
        Dataflow::Os,
        Dataflow::OsA,
        Dataflow::OsB,
        Dataflow::OsC,
        Dataflow::Nlr,
    ];
    let mut compared = 0;
    for hw in machines() {
        for w in &layers {
            for dataflow in dataflows {
                for objective in [Objective::Energy, Objective::Cycles, Objective::Edp] {
                    let what = format!(
                        "{} on {} ({dataflow}, {objective:?}): {:?}",
                        w.name, hw.name, w.nest
                    );
                    let exact = brute_force(w, &hw, dataflow, objective);
                    let found = check_search(w, &hw, dataflow, objective, &what);
                    match (found, exact) {
                        (Some(found), Some(exact)) => {
                            assert!(
                                (found - exact).abs() <= 1e-12 * exact.abs(),
                                "{what}: search {found} vs brute force {exact}"
                            );
                            compared += 1;
                        }
                        (None, None) => {}
                        (found, exact) => {
                            panic!("{what}: search {found:?} vs brute force {exact:?}")
                        }
                    }
                }
            }
        }
    }
    // Most cases map: the comparison is not vacuous.
    assert!(compared > 4000, "only {compared} cases compared");
}
