//! Latency lookup tables with a deterministic fake clock: keys, prediction = overhead + sum
//! of isolated steps (a CONV/FC with the activation the engine fuses into it is one entry;
//! checked against shapes inferred independently by joule-model), grid coverage after
//! filter surgery, misses naming the layer, the JSON/CSV round trip, sweeps and the gate;
//! 16x the MACs measuring slower, on the fake clock and on the wall clock.

use joule_compress::lut::{
    self, ChannelGrid, Context, LatencyTable, LayerTimer, MeasureConfig, Probe,
};
use joule_compress::CompressError;
use joule_model::{zoo, Graph, NodeId, Op, Shape, Value};
use joule_nn::{prune, Network};

const OVERHEAD: f64 = 0.25;

/// Fake clock: a step costs the overhead + 1 us per output value + 1 ns per MAC, computed
/// from its key (a fused activation adds nothing, as in the engine); a probe without a key
/// (the overhead probe) costs the overhead.
struct FakeClock;

fn key_macs(k: &lut::LayerKey) -> usize {
    match k.kind.split('+').next().unwrap() {
        "conv" | "conv_grouped" => k.m * k.p * k.q * (k.c / k.groups) * k.r * k.s,
        "fc" => k.m * k.c,
        _ => 0,
    }
}

fn fake_cost(k: &lut::LayerKey) -> f64 {
    1e-3 * (k.m * k.p * k.q) as f64 + 1e-6 * key_macs(k) as f64
}

impl LayerTimer for FakeClock {
    fn time_ms(&self, probe: &Probe<'_>) -> Result<f64, CompressError> {
        Ok(OVERHEAD + probe.key.map_or(0.0, fake_cost))
    }
}

/// A clock for compute-bound layers: the overhead + 1 ns per MAC.
struct MacClock;

impl LayerTimer for MacClock {
    fn time_ms(&self, probe: &Probe<'_>) -> Result<f64, CompressError> {
        Ok(OVERHEAD + probe.key.map_or(0.0, |k| 1e-6 * key_macs(k) as f64))
    }
}

/// The same cost from the graph's own shape inference and loop nests (not from keys); a
/// ReLU reading a CONV or FC is fused into it (true of every ReLU in LeNet-5).
fn expected_ms(graph: &Graph) -> f64 {
    let shapes = graph.infer(Shape::new(1, 1, 28, 28)).unwrap();
    let fused = |i: usize| {
        let node = &graph.nodes()[i];
        matches!(node.op, Op::Activation(_))
            && matches!(node.inputs[0], Value::Node(id)
                if matches!(graph.node(id).op, Op::Conv(_) | Op::FullyConnected(_)))
    };
    OVERHEAD
        + shapes
            .iter()
            .enumerate()
            .filter(|(i, _)| !fused(*i))
            .map(|(_, s)| {
                let out = s.output.c * s.output.h * s.output.w;
                let macs = s.loop_nest.map_or(0, |n| n.macs());
                1e-3 * out as f64 + 1e-6 * macs as f64
            })
            .sum::<f64>()
}

fn quick() -> MeasureConfig {
    MeasureConfig {
        warmup: 1,
        round: 3,
        tolerance: 0.01,
        max_runs: 9,
        sweeps: 2,
        pause_ms: 0,
        gate_tolerance: 0.0,
        gate_wait_ms: 0,
        context: Context::Streamed,
    }
}

fn table(graph: &Graph, levels: usize) -> LatencyTable {
    let grid = ChannelGrid::even(graph, levels).unwrap();
    lut::build(graph, &grid, 1, &FakeClock, &quick(), |_, _| {}).unwrap()
}

#[test]
fn prediction_is_overhead_plus_the_sum_of_isolated_layers() {
    let graph = zoo::build("lenet5").unwrap();
    let t = table(&graph, 3);
    let p = t.predict(&graph).unwrap();
    assert!(
        (p.total_ms - expected_ms(&graph)).abs() < 1e-9,
        "{} vs {}",
        p.total_ms,
        expected_ms(&graph)
    );
    // LeNet-5's four ReLUs run inside their CONV/FC steps: no entries of their own.
    assert_eq!(p.layers.len(), graph.len() - 4);
    assert!(p.layers.iter().all(|l| l.1.kind != "relu"));
    let kinds: Vec<&str> = p.layers.iter().map(|l| l.1.kind.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "conv+relu").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "fc+relu").count(), 2);
    assert!(
        kinds.contains(&"fc"),
        "the logits layer has no activation: {kinds:?}"
    );
    let sum: f64 = p.layers.iter().map(|l| l.2).sum();
    assert!((p.total_ms - (p.overhead_ms + sum)).abs() < 1e-12);
    // Every isolated entry had the overhead subtracted.
    let conv1 = &p.layers[0];
    assert_eq!(conv1.0, "conv1");
    assert!((conv1.2 - fake_cost(&conv1.1)).abs() < 1e-12);
}

#[test]
fn keys_carry_the_layer_shape() {
    let graph = zoo::build("lenet5").unwrap();
    let p = table(&graph, 2).predict(&graph).unwrap();
    let conv2 = &p.layers.iter().find(|l| l.0 == "conv2").unwrap().1;
    assert_eq!(
        (
            conv2.kind.as_str(),
            conv2.c,
            conv2.m,
            conv2.h,
            conv2.p,
            conv2.r,
            conv2.stride,
            conv2.groups
        ),
        ("conv+relu", 6, 16, 14, 10, 5, 1, 1)
    );
    let fc1 = &p.layers.iter().find(|l| l.0 == "fc1").unwrap().1;
    assert_eq!((fc1.c, fc1.m), (400, 120));
}

#[test]
fn the_grid_covers_every_pruned_variant_and_only_those() {
    let graph = zoo::build("lenet5").unwrap();
    let grid = ChannelGrid::even(&graph, 3).unwrap();
    // conv1 has 6 filters: ceil(6k/3) = 2, 4, 6; fc3 (the logits) is not prunable.
    assert_eq!(grid.layers["conv1"], vec![2, 4, 6]);
    assert_eq!(grid.layers["fc1"], vec![40, 80, 120]);
    assert!(!grid.layers.contains_key("fc3"));
    let variants = lut::variants(&graph, &grid, 1).unwrap();
    let conv2 = variants
        .iter()
        .filter(|v| v.key.kind == "conv+relu" && v.key.r == 5 && v.key.h == 14)
        .count();
    assert_eq!(conv2, 3 * 3, "conv2: 3 input counts x 3 filter counts");
    let t = lut::build(&graph, &grid, 1, &FakeClock, &quick(), |_, _| {}).unwrap();
    assert_eq!(t.entries.len(), variants.len());

    let network = Network::new(graph, 3).unwrap();
    let conv1 = network.graph().find("conv1").unwrap();
    let on_grid = prune::remove_filters(&network, conv1, &[0, 3]).unwrap();
    let p = t.predict(on_grid.graph()).unwrap();
    assert!((p.total_ms - expected_ms(on_grid.graph())).abs() < 1e-9);
    assert!(p.total_ms < t.predict(network.graph()).unwrap().total_ms);

    let off_grid = prune::remove_filters(&network, conv1, &[5]).unwrap();
    let err = t.predict(off_grid.graph()).unwrap_err().to_string();
    assert!(
        err.starts_with("layer \"conv1\": no latency table entry for conv+relu C=1 M=5"),
        "{err}"
    );
    assert!(!err.contains('\n'));
    let _ = NodeId(0);
}

#[test]
fn tables_round_trip_through_json_and_csv() {
    let graph = zoo::build("lenet5").unwrap();
    let t = table(&graph, 2);
    let dir = std::env::temp_dir().join(format!("joule-lut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let want = t.predict(&graph).unwrap();
    for name in ["t.json", "t.csv"] {
        let path = dir.join(name);
        t.save(&path).unwrap();
        let back = LatencyTable::load(&path).unwrap();
        assert_eq!(back.entries.len(), t.entries.len(), "{name}");
        for (a, b) in back.entries.iter().zip(&t.entries) {
            assert_eq!(a.key, b.key, "{name}");
            assert!(
                (a.latency_ms - b.latency_ms).abs() < 1e-12,
                "{name}: {a:?} vs {b:?}"
            );
            assert_eq!(a.measured.runs, b.measured.runs);
        }
        // The context the entries were timed in travels with the table (drift re-times
        // steps in it).
        assert_eq!(back.measure.context, Context::Streamed, "{name}");
        let got = back.predict(&graph).unwrap();
        assert!((got.total_ms - want.total_ms).abs() < 1e-9, "{name}");
        assert_eq!(got.layers.len(), want.layers.len());
    }
    // A CSV without the context (written before it existed, or by another runtime's
    // import) reads as isolated.
    let old = t.to_csv().unwrap().replacen(" context=streamed", "", 1);
    assert_eq!(
        LatencyTable::from_csv(&old).unwrap().measure.context,
        Context::Isolated
    );
    let bad = t
        .to_csv()
        .unwrap()
        .replacen("context=streamed", "context=hot", 1);
    let err = LatencyTable::from_csv(&bad).unwrap_err().to_string();
    assert!(err.contains("line 1") && err.contains("\"hot\""), "{err}");
    std::fs::write(dir.join("bad.csv"), "kind,c,m,h,w,p,q,r,s,stride,groups,inputs,latency_ms,median_ms,spread_ms,runs,stable\nconv,1\n").unwrap();
    let err = LatencyTable::load(&dir.join("bad.csv"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.csv") && err.contains("line 2"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two CONV + ReLU layers on a 32x32 map with the same 64-channel output: `small` reads 4
/// channels, `big` reads the 64 that `small` writes, so `big` has 16x the MACs of `small`
/// (the same ofmap, 16x the filter and the ifmap channels).
fn sixteen_times_the_macs() -> Graph {
    let mut graph = Graph::new("macs", Some(Shape::new(1, 4, 32, 32)));
    let relu = || Op::Activation(joule_model::ops::Activation::Relu);
    let conv = || Op::Conv(joule_model::ops::Conv::new(64, 3, 1, 1));
    let x = graph.push("small", conv(), &[Value::Input]);
    let x = graph.push("small_relu", relu(), &[x]);
    let x = graph.push("big", conv(), &[x]);
    graph.push("big_relu", relu(), &[x]);
    graph
}

/// The table entries (overhead subtracted) of `small` and `big`, measured by `timer` through
/// the table's own protocol: every entry once per sweep, the median of the sweeps' medians.
fn small_and_big_ms(timer: &dyn LayerTimer, config: &MeasureConfig) -> (f64, f64) {
    let graph = sixteen_times_the_macs();
    let shapes = graph.infer(Shape::new(1, 4, 32, 32)).unwrap();
    let macs = |name: &str| {
        let i = graph.nodes().iter().position(|n| n.name == name).unwrap();
        shapes[i].loop_nest.unwrap().macs()
    };
    assert_eq!(macs("big"), 16 * macs("small"));
    let grid = ChannelGrid::even(&graph, 1).unwrap();
    let t = lut::build(&graph, &grid, 1, timer, config, |_, _| {}).unwrap();
    let p = t.predict(&graph).unwrap();
    let ms = |name: &str| p.layers.iter().find(|l| l.0 == name).unwrap().2;
    (ms("small"), ms("big"))
}

#[test]
fn sixteen_times_the_macs_measures_sixteen_times_slower_on_a_fake_clock() {
    // A clock charging per MAC: the table's protocol (overhead probe subtracted, sweeps,
    // medians, lookup by key) keeps its ratio exactly; the MAC counts are the loop nests'.
    let (small, big) = small_and_big_ms(&MacClock, &quick());
    let small_macs = 64 * 4 * 9 * 32 * 32;
    assert!((small - 1e-6 * small_macs as f64).abs() < 1e-9, "{small}");
    assert!((big - 16e-6 * small_macs as f64).abs() < 1e-9, "{big}");
    // The output-and-MAC clock of the other tests: the same 64 x 32 x 32 ofmap costs both
    // layers 65.536 ms, so they differ by the 15 x 2.36 M extra MACs alone.
    let (small, big) = small_and_big_ms(&FakeClock, &quick());
    assert!(
        (big - small - 15e-6 * small_macs as f64).abs() < 1e-9,
        "{small} {big}"
    );
}

#[test]
fn sixteen_times_the_macs_measures_at_least_four_times_slower_on_the_wall_clock() {
    // Real timing of the engine on one thread. The margin (4x for 16x the MACs) leaves room
    // for the small layer's poorer GEMM efficiency and for a loaded machine: the two
    // entries are measured alternately, five sweeps, each a stable median.
    let clock = lut::WallClock::new(1).unwrap();
    let config = MeasureConfig {
        warmup: 2,
        round: 5,
        tolerance: 0.02,
        max_runs: 40,
        sweeps: 5,
        ..quick()
    };
    let started = std::time::Instant::now();
    let (small, big) = small_and_big_ms(&clock, &config);
    assert!(small > 0.0 && small.is_finite(), "{small}");
    assert!(
        big >= 4.0 * small,
        "16x the MACs took {big:.4} ms against {small:.4} ms ({:.1}x)",
        big / small
    );
    eprintln!(
        "small {small:.4} ms, big {big:.4} ms ({:.1}x) in {:.2} s",
        big / small,
        started.elapsed().as_secs_f64()
    );

    // A whole network measures too: a positive, finite median over every run of its sweeps.
    let network = Network::new(zoo::build("lenet5").unwrap(), 1).unwrap();
    let m = lut::measure_network(&network, 1, &clock, &quick()).unwrap();
    assert!(m.median_ms > 0.0 && m.median_ms.is_finite() && m.runs >= 6);
}

#[test]
fn sweeps_keep_the_median_of_their_medians() {
    let m = |median_ms: f64, spread_ms: f64| lut::Measurement {
        median_ms,
        spread_ms,
        runs: 10,
        stable: true,
    };
    // One sweep in a slow phase (1.4x) among five: voted out.
    let sweeps = [
        m(1.0, 0.01),
        m(1.02, 0.02),
        m(1.4, 0.01),
        m(0.99, 0.01),
        m(1.01, 0.03),
    ];
    let c = lut::combine_sweeps(&sweeps);
    assert_eq!(c.median_ms, 1.01);
    assert_eq!(c.runs, 50);
    // The spread is the larger of the typical within-sweep spread (0.01) and the
    // inter-quartile range between sweeps (1.02 - 1.0).
    assert!((c.spread_ms - 0.02).abs() < 1e-12, "{}", c.spread_ms);
    let mut unstable = sweeps.to_vec();
    unstable[1].stable = false;
    assert!(!lut::combine_sweeps(&unstable).stable);
}

#[test]
fn a_table_sweeps_every_entry_and_records_the_calibration() {
    let graph = zoo::build("lenet5").unwrap();
    let grid = ChannelGrid::even(&graph, 2).unwrap();
    let config = MeasureConfig {
        sweeps: 3,
        ..quick()
    };
    let mut calls = 0;
    let t = lut::build(&graph, &grid, 1, &FakeClock, &config, |done, total| {
        calls += 1;
        assert!(done <= total);
    })
    .unwrap();
    // Progress counts every entry once per sweep.
    assert_eq!(calls, 3 * t.entries.len());
    assert!(t.entries.iter().all(|e| e.measured.runs >= 3 * 3));
    // A fake clock keeps no calibration reference.
    assert_eq!(t.calibration_ms, None);
}

#[test]
fn the_gate_waits_for_the_reference_speed_and_gives_up_after_its_limit() {
    let clock = lut::WallClock::new(1).unwrap();
    let config = MeasureConfig {
        gate_tolerance: 0.1,
        gate_wait_ms: 150,
        ..quick()
    };
    // The first calibration becomes the reference: no wait.
    clock.settle(&config).unwrap();
    let reference = clock.reference_ms().unwrap();
    assert!(reference > 0.0 && reference.is_finite());
    // A reference no machine reaches (a table built on a much faster one): the gate waits
    // its limit, then lets the sweep run and records that it gave up.
    clock.use_reference(Some(reference * 1e-6));
    clock.settle(&config).unwrap();
    let (waited_ms, gave_up) = clock.waited();
    assert!(waited_ms >= 150.0, "{waited_ms}");
    assert_eq!(gave_up, 1);
    // A table carries the reference its networks are measured against.
    assert_eq!(clock.reference_ms(), Some(reference * 1e-6));
}

/// The fake clock running `factor` times slower (a machine in another state).
struct Slower(f64);

impl LayerTimer for Slower {
    fn time_ms(&self, probe: &Probe<'_>) -> Result<f64, CompressError> {
        Ok(self.0 * FakeClock.time_ms(probe)?)
    }
}

#[test]
fn drift_is_the_ratio_of_the_networks_steps_now_to_their_entries() {
    let graph = zoo::build("lenet5").unwrap();
    let t = table(&graph, 2);
    // Same clock: every step takes exactly its entry's time.
    let same = lut::drift(&graph, &t, &FakeClock, &quick())
        .unwrap()
        .unwrap();
    assert!((same - 1.0).abs() < 1e-12, "{same}");
    // A machine 1.3x slower: every step 1.3x its entry.
    let slow = lut::drift(&graph, &t, &Slower(1.3), &quick())
        .unwrap()
        .unwrap();
    assert!((slow - 1.3).abs() < 1e-12, "{slow}");
    // A network none of whose steps is in the table has no drift.
    let other = zoo::build("lenet300").unwrap();
    assert_eq!(lut::drift(&other, &t, &FakeClock, &quick()).unwrap(), None);
}

/// conv1 (4) -> relu = x; SE (pool, flatten, fc_sq 2, relu, fc_ex 4, hard sigmoid,
/// reshape, x * s); with `shuffle`, a 2-group channel shuffle; conv2 (3) -> pool ->
/// flatten -> fc (the logits).
fn se_net(shuffle: bool) -> Graph {
    use joule_model::ops::{
        Activation, Binary, BinaryKind, Conv, Extent, FullyConnected, PoolKind, Reshape, Transpose,
    };

    let fc = |outputs| {
        Op::FullyConnected(FullyConnected {
            outputs,
            bias: true,
        })
    };
    let reshape = |t: &[usize]| {
        let mut target = vec![Extent::Copy];
        target.extend(t.iter().map(|&k| Extent::Fixed(k)));
        Op::Reshape(Reshape { target })
    };
    let avg = Op::GlobalPool {
        kind: PoolKind::Average,
    };
    let mut g = Graph::new("se", Some(Shape::new(1, 1, 4, 4)));
    let c = g.push("conv1", Op::Conv(Conv::new(4, 3, 1, 1)), &[Value::Input]);
    let x = g.push("relu", Op::Activation(Activation::Relu), &[c]);
    let p = g.push("se/pool", avg.clone(), &[x]);
    let f = g.push("se/flatten", Op::Flatten, &[p]);
    let s = g.push("fc_sq", fc(2), &[f]);
    let s = g.push("se/relu", Op::Activation(Activation::Relu), &[s]);
    let s = g.push("fc_ex", fc(4), &[s]);
    let gate = Activation::HardSigmoid {
        alpha: 0.2,
        beta: 0.5,
    };
    let s = g.push("se/gate", Op::Activation(gate), &[s]);
    let s = g.push("se/unflatten", reshape(&[4, 1, 1]), &[s]);
    let mul = Op::Binary(Binary {
        kind: BinaryKind::Mul,
        constant: None,
    });
    let mut y = g.push("se/scale", mul, &[x, s]);
    if shuffle {
        let t = g.push("split", reshape(&[2, 2, 4, 4]), &[y]);
        let perm = vec![0, 2, 1, 3, 4];
        let t = g.push("swap", Op::Transpose(Transpose { perm }), &[t]);
        y = g.push("merge", reshape(&[4, 4, 4]), &[t]);
    }
    let c2 = g.push("conv2", Op::Conv(Conv::new(3, 1, 1, 0)), &[y]);
    let p = g.push("pool", avg, &[c2]);
    let f = g.push("flatten", Op::Flatten, &[p]);
    g.push("fc", fc(2), &[f]);
    g
}

#[test]
fn prunable_layers_follow_squeeze_excitation_and_refuse_shuffled_channels() {
    let names = |g: &Graph| -> Vec<String> {
        lut::prunable_layers(g)
            .into_iter()
            .map(|id| g.node(id).name.clone())
            .collect()
    };
    // Without the shuffle, conv1 and the excitation layer (tied to conv1's channels by the
    // gate) can lose single filters.
    assert_eq!(names(&se_net(false)), ["conv1", "fc_sq", "fc_ex", "conv2"]);
    // A 2-group shuffle takes only cuts that are the same in both groups: a single filter
    // of conv1 (or of the gate that follows its channels) is refused.
    assert_eq!(names(&se_net(true)), ["fc_sq", "conv2"]);
}

/// MobileNet-V3's squeeze-excitation multiplies two computed tensors (`x * s`, `s` one value
/// per channel): the table has a variant for every channel count the grid gives `x`, so the
/// shrunk networks NetAdapt proposes can be predicted (the grid used to give the product one
/// operand and panic).
#[test]
fn squeeze_excitation_products_follow_their_channels() {
    let graph = zoo::build("mobilenetv3-28").unwrap();
    let grid = ChannelGrid::even(&graph, 2).unwrap();
    let variants = lut::variants(&graph, &grid, 1).unwrap();
    let products: Vec<&lut::Variant> = variants
        .iter()
        .filter(|v| matches!(v.op, Op::Binary(_)))
        .collect();
    assert!(!products.is_empty());
    for v in &products {
        let [x, s] = v.inputs.as_slice() else {
            panic!("{:?}", v.inputs)
        };
        assert_eq!((x.c, s.h, s.w), (s.c, 1, 1), "{:?}", v.inputs);
    }
    let t = lut::build(&graph, &grid, 1, &FakeClock, &quick(), |_, _| {}).unwrap();
    let network = Network::new(graph, 3).unwrap();
    let full = t.predict(network.graph()).unwrap().total_ms;
    // Every prunable layer halved in turn is predicted, and predicted faster.
    for (name, counts) in &grid.layers {
        let id = network.graph().find(name).unwrap();
        let m = counts[counts.len() - 1];
        let drop: Vec<usize> = (counts[0]..m).collect();
        let shrunk = prune::remove_filters(&network, id, &drop).unwrap();
        let p = t
            .predict(shrunk.graph())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(p.total_ms < full, "{name}: {} vs {full}", p.total_ms);
    }
}

// ---- Streamed tables (issue 17 item 6): what a step costs inside a network ----

const CALL: f64 = 0.5;
const NODE: f64 = 0.03;
const WAKE: f64 = 0.7;
const HOT: f64 = 0.5;

/// A fake engine with the costs that separate a probe from a network: every call pays
/// `CALL` and `NODE` per node (fused ones included); the first run after a hand-off to the
/// timing pool (a lone `time_ms`, or the first probe of a chain) pays `WAKE`; a one-step
/// probe run right after itself (hot caches) does its work in `HOT` x the time. A step's
/// work is [`fake_cost`] of its key; a whole network's work is the sum over its steps'
/// keys, and its steps never follow themselves.
struct EngineClock {
    last: std::sync::Mutex<usize>,
}

impl EngineClock {
    fn new() -> EngineClock {
        EngineClock {
            last: std::sync::Mutex::new(0),
        }
    }

    fn run(&self, probe: &Probe<'_>, woken: bool) -> f64 {
        let graph = probe.network.graph();
        let keys = lut::probes::step_keys(graph, 1).unwrap();
        let work: f64 = keys.values().map(work_ms).sum();
        let id = probe.network as *const Network as usize;
        let mut last = self.last.lock().unwrap();
        let hot = keys.len() == 1 && *last == id;
        *last = id;
        CALL + NODE * graph.len() as f64
            + if woken { WAKE } else { 0.0 }
            + if hot { HOT * work } else { work }
    }

    /// The whole network's time, from its graph (not from the table).
    fn network_ms(graph: &Graph) -> f64 {
        let keys = lut::probes::step_keys(graph, 1).unwrap();
        CALL + WAKE + NODE * graph.len() as f64 + keys.values().map(work_ms).sum::<f64>()
    }
}

/// A step's work on [`EngineClock`]: [`fake_cost`], none for the identity of the overhead
/// probes (no zoo network here has one).
fn work_ms(key: &lut::LayerKey) -> f64 {
    if key.kind == "dropout" {
        0.0
    } else {
        fake_cost(key)
    }
}

impl LayerTimer for EngineClock {
    fn time_ms(&self, probe: &Probe<'_>) -> Result<f64, CompressError> {
        Ok(self.run(probe, true))
    }

    fn time_chain_ms(&self, chain: &[Probe<'_>]) -> Result<Vec<f64>, CompressError> {
        Ok(chain
            .iter()
            .enumerate()
            .map(|(i, p)| self.run(p, i == 0))
            .collect())
    }
}

fn engine_table(graph: &Graph, levels: usize, context: Context) -> LatencyTable {
    let grid = ChannelGrid::even(graph, levels).unwrap();
    let config = MeasureConfig { context, ..quick() };
    lut::build(graph, &grid, 1, &EngineClock::new(), &config, |_, _| {}).unwrap()
}

#[test]
fn a_streamed_table_sums_call_nodes_wake_up_and_work_as_the_network_pays_them() {
    let graph = zoo::build("mobilenetv3-28").unwrap();
    let network = Network::new(graph.clone(), 1).unwrap();
    let t = engine_table(&graph, 2, Context::Streamed);
    // The call and the per-node share come apart: a two-node identity minus a one-node one.
    assert!(
        (t.overhead.median_ms - CALL).abs() < 1e-12,
        "{:?}",
        t.overhead
    );
    assert!((t.node_ms.unwrap() - NODE).abs() < 1e-12);
    let p = t.predict(&graph).unwrap();
    // Every step is charged its work and all its nodes; the first step (the stem, first in
    // every chain) also the wake-up after the hand-off, as the network's first step is.
    let into = joule_nn::fused_into(graph.nodes());
    for (name, key, ms) in &p.layers {
        let first = graph.find(name).unwrap().0;
        let nodes = 1 + into.iter().filter(|f| **f == Some(first)).count();
        let wake = if first == 0 { WAKE } else { 0.0 };
        let want = work_ms(key) + NODE * nodes as f64 + wake;
        assert!((ms - want).abs() < 1e-12, "{name}: {ms} vs {want}");
    }
    let whole = EngineClock::network_ms(network.graph());
    assert!(
        (p.total_ms - whole).abs() < 1e-9,
        "{} vs {whole}",
        p.total_ms
    );
    // The whole network measured on the same clock: the same number.
    let measured = lut::measure_network(&network, 1, &EngineClock::new(), &quick()).unwrap();
    assert!((measured.median_ms - whole).abs() < 1e-9);
    // A member of the family (every prunable layer at half width) as well.
    let half = joule_compress::netadapt::baseline::uniform(&network, 1, 2).unwrap();
    let want = EngineClock::network_ms(half.graph());
    let got = t.predict(half.graph()).unwrap().total_ms;
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
}

#[test]
fn an_isolated_table_misses_one_node_share_per_step_and_the_cold_work() {
    // The cause the streamed context removes, in numbers: an isolated probe is hot (HOT x
    // its work), and subtracting a one-node probe from a k-node step leaves k - 1 shares.
    let graph = zoo::build("mobilenetv2-28").unwrap();
    let t = engine_table(&graph, 1, Context::Isolated);
    let p = t.predict(&graph).unwrap();
    let keys = lut::probes::step_keys(&graph, 1).unwrap();
    let work: f64 = keys.values().map(work_ms).sum();
    let steps = keys.len() as f64;
    let whole = EngineClock::network_ms(&graph);
    let missing = (steps - 1.0) * NODE + (1.0 - HOT) * work;
    assert!(
        (whole - p.total_ms - missing).abs() < 1e-9,
        "whole {whole}, predicted {}, missing {missing}",
        p.total_ms
    );
    assert!(p.total_ms < 0.8 * whole);
}

#[test]
fn tables_price_every_node_of_the_mobilenets() {
    for model in ["mobilenetv2-28", "mobilenetv3-28"] {
        let graph = zoo::build(model).unwrap();
        let t = engine_table(&graph, 2, Context::Streamed);
        let p = t.predict(&graph).unwrap();
        // Every node is a step of its own or fused into one, and every step has an entry
        // worth at least its nodes' shares: none priced at 0.
        let into = joule_nn::fused_into(graph.nodes());
        let steps: Vec<&str> = graph
            .nodes()
            .iter()
            .zip(&into)
            .filter(|(_, f)| f.is_none())
            .map(|(n, _)| n.name.as_str())
            .collect();
        let priced: Vec<&str> = p.layers.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(priced, steps, "{model}");
        let fused = into.iter().filter(|f| f.is_some()).count();
        assert_eq!(steps.len() + fused, graph.len(), "{model}");
        for (name, key, ms) in &p.layers {
            assert!(*ms >= NODE - 1e-12, "{model} {name} ({key}) priced at {ms}");
        }
        // The kinds the issue names are all there: residual adds (v2), squeeze-excitation
        // products and global pooling, hard swish steps, depthwise at stride 2.
        let kinds: Vec<String> = p.layers.iter().map(|l| l.1.to_string()).collect();
        let has = |s: &str| kinds.iter().any(|k| k.contains(s));
        assert!(has("global_avgpool") && has("flatten") && has("conv_grouped"));
        assert!(kinds
            .iter()
            .any(|k| k.starts_with("conv_grouped") && k.contains("stride=2")));
        if model == "mobilenetv2-28" {
            assert!(has("add C=32 M=16"), "{kinds:?}");
        } else {
            assert!(
                has("mul ") && has("hard_swish") && has("hard_sigmoid"),
                "{kinds:?}"
            );
        }
    }
}

#[test]
fn streamed_chains_run_every_step_in_graph_order_then_the_overhead_probes() {
    /// Records the kinds of every chain's probes.
    struct Recorder(std::sync::Mutex<Vec<Vec<Option<String>>>>);
    impl LayerTimer for Recorder {
        fn time_ms(&self, _: &Probe<'_>) -> Result<f64, CompressError> {
            Ok(1.0)
        }
        fn time_chain_ms(&self, chain: &[Probe<'_>]) -> Result<Vec<f64>, CompressError> {
            let names = chain
                .iter()
                .map(|p| p.key.map(|k| k.kind.clone()))
                .collect();
            self.0.lock().unwrap().push(names);
            Ok(vec![1.0; chain.len()])
        }
    }
    let graph = zoo::build("lenet5").unwrap();
    let grid = ChannelGrid::even(&graph, 2).unwrap();
    let clock = Recorder(Default::default());
    let config = MeasureConfig {
        sweeps: 1,
        ..quick()
    };
    let t = lut::build(&graph, &grid, 1, &clock, &config, |_, _| {}).unwrap();
    let chains = clock.0.into_inner().unwrap();
    let keys = lut::probes::step_keys(&graph, 1).unwrap();
    let into = joule_nn::fused_into(graph.nodes());
    // The steps' kinds in graph order (conv+relu, maxpool, conv+relu, ...).
    let steps: Vec<Option<String>> = graph
        .nodes()
        .iter()
        .zip(&into)
        .filter(|(_, f)| f.is_none())
        .map(|(n, _)| Some(keys[&n.name].kind.clone()))
        .collect();
    let (_, by_step) = lut::variant_steps(&graph, &grid, 1).unwrap();
    let per_pass = by_step.iter().map(Vec::len).max().unwrap();
    // Warm-up and timed passes, each every chain once.
    assert_eq!(chains.len() % per_pass, 0);
    for chain in &chains {
        assert_eq!(chain.len(), by_step.len() + 2);
        assert_eq!(&chain[chain.len() - 2..], &[None, None]);
        assert_eq!(&chain[..by_step.len()], steps.as_slice());
    }
    // Every entry was timed (1 ms each on this clock, minus the 1 ms call).
    assert!(t
        .entries
        .iter()
        .all(|e| e.measured.runs > 0 && e.latency_ms == 0.0));
}
