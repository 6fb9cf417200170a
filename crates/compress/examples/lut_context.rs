//! Where a latency table's sum loses time against the whole network (issue 17 item 6):
//! every step of a zoo network timed three ways, on the same wall clock, interleaved so that
//! all three see the same machine state:
//!
//! * `entry`: the table's entry (the step alone as a probe, repeated with hot caches, minus
//!   the engine's per-call overhead) — what `lut::build` stores;
//! * `stream`: the same probe timed once per pass over all the network's probes in graph
//!   order (each run follows a different kernel, as inside the network, and a hand-off to
//!   the timing pool), minus overhead;
//! * `streamed`: the entry of a table built with `Context::Streamed` (chains of the probes in
//!   the network's order, one hand-off per chain);
//! * `context`: the step's marginal cost inside the network: the time of the network cut
//!   after the step minus the time of the network cut before it.
//!
//! ```text
//! cargo run --release -p joule-compress --example lut_context -- mobilenetv3-28 [rounds]
//! ```

use joule_compress::lut::{self, ChannelGrid, LayerTimer, MeasureConfig, Probe, WallClock};
use joule_model::{zoo, Graph, Shape, Value};
use joule_nn::{FeatureMap, Network};

fn input_of(network: &Network) -> FeatureMap {
    let shape = network.input_shape().expect("zoo networks have an input");
    let len = shape.elements() as usize;
    let data = (0..len).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    FeatureMap { shape, data }
}

/// The network cut after node `last` (every node up to it, weights included).
fn prefix(graph: &Graph, last: usize) -> Network {
    let mut cut = Graph::new(
        format!("{}-to-{last}", graph.name),
        graph.resolve_input(None).ok(),
    );
    for node in &graph.nodes()[..=last] {
        cut.push(node.name.clone(), node.op.clone(), &node.inputs);
        let id = cut.len() - 1;
        cut.node_mut(joule_model::NodeId(id)).params = node.params.clone();
    }
    Network::new(cut, 1).expect("a prefix of a valid network is valid")
}

fn median_of(clock: &WallClock, network: &Network, input: &FeatureMap, runs: usize) -> f64 {
    let probe = Probe {
        key: None,
        network,
        input,
    };
    let t: Vec<f64> = (0..runs)
        .map(|_| clock.time_ms(&probe).expect("runs"))
        .collect();
    lut::median(&t)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = args.get(1).map_or("mobilenetv3-28", String::as_str);
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(9);
    let graph = Network::new(zoo::build(model).expect("a zoo model"), 1)
        .expect("zoo networks build")
        .graph()
        .clone();
    let network = Network::new(graph.clone(), 1).unwrap();
    let clock = WallClock::new(1).unwrap();
    let config = MeasureConfig {
        sweeps: 3,
        gate_tolerance: 0.0,
        ..MeasureConfig::default()
    };
    // Level 1: the grid holds exactly the network's own steps.
    let grid = ChannelGrid::even(&graph, 1).unwrap();
    let isolated = MeasureConfig {
        context: lut::Context::Isolated,
        ..config.clone()
    };
    let table = lut::build(&graph, &grid, 1, &clock, &isolated, |_, _| {}).unwrap();
    let prediction = table.predict(&graph).unwrap();
    let streamed = lut::build(&graph, &grid, 1, &clock, &config, |_, _| {}).unwrap();
    let streamed_prediction = streamed.predict(&graph).unwrap();
    let keys = lut::probes::step_keys(&graph, 1).unwrap();
    // Steps in graph order: (name, index of the step's last node).
    let into = joule_nn::fused_into(graph.nodes());
    let mut steps: Vec<(String, usize)> = Vec::new();
    for (i, node) in graph.nodes().iter().enumerate() {
        match into[i] {
            Some(_) => steps.last_mut().expect("fused after its step").1 = i,
            None => steps.push((node.name.clone(), i)),
        }
    }
    let prefixes: Vec<Network> = steps
        .iter()
        .map(|(_, last)| prefix(&graph, *last))
        .collect();
    let input = input_of(&network);
    let probes: Vec<(Network, FeatureMap)> = {
        let shapes = graph.infer(input.shape).unwrap();
        let (nodes, mut out) = (graph.nodes(), Vec::new());
        for (name, last) in &steps {
            let first = graph.find(name).unwrap().0;
            let fused: Vec<_> = (first + 1..=*last).map(|j| nodes[j].op.clone()).collect();
            let s = &shapes[first];
            let net = lut_probe(&nodes[first].op, &fused, &s.inputs);
            let x = input_for(s.inputs[0]);
            out.push((net, x));
        }
        out
    };
    let overhead_net = lut_probe(
        &joule_model::Op::Dropout { ratio: 0.0 },
        &[],
        &[Shape::new(1, 1, 1, 1)],
    );
    let overhead_in = input_for(Shape::new(1, 1, 1, 1));
    let runs = 31;
    let (mut whole, mut over) = (Vec::new(), Vec::new());
    let mut ctx: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
    let mut stream: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
    for _ in 0..rounds {
        whole.push(median_of(&clock, &network, &input, runs));
        over.push(median_of(&clock, &overhead_net, &overhead_in, runs));
        for (k, p) in prefixes.iter().enumerate() {
            ctx[k].push(median_of(&clock, p, &input, runs));
        }
        // Streamed: one run of each probe per pass, `runs` passes.
        let mut per: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
        for _ in 0..runs {
            for (k, (net, x)) in probes.iter().enumerate() {
                let probe = Probe {
                    key: None,
                    network: net,
                    input: x,
                };
                per[k].push(clock.time_ms(&probe).unwrap());
            }
        }
        for (k, t) in per.iter().enumerate() {
            stream[k].push(lut::median(t));
        }
    }
    let overhead = lut::median(&over);
    let whole = lut::median(&whole);
    let cut: Vec<f64> = ctx.iter().map(|t| lut::median(t)).collect();
    println!(
        "{model}: whole {:.4} ms, predicted {:.4} ms isolated, {:.4} ms streamed (isolated table overhead {:.4}, now {:.4}), load {:?}",
        whole,
        prediction.total_ms,
        streamed_prediction.total_ms,
        table.overhead.median_ms,
        overhead,
        lut::load_average()
    );
    println!(
        "| step | key | entry us | stream us | streamed us | context us | context - entry us |\n|---|---|--:|--:|--:|--:|--:|"
    );
    let (mut se, mut ss, mut sc, mut sd) = (0.0, 0.0, 0.0, 0.0);
    let mut by_kind: std::collections::BTreeMap<String, (f64, f64, f64, f64, usize)> =
        Default::default();
    for (k, (name, _)) in steps.iter().enumerate() {
        let key = &keys[name];
        let entry = table.get(key).unwrap().latency_ms;
        let st = lut::median(&stream[k]) - overhead;
        let c = if k == 0 {
            cut[0] - overhead
        } else {
            cut[k] - cut[k - 1]
        };
        let sm = streamed.get(key).unwrap().latency_ms;
        (se, ss, sc, sd) = (se + entry, ss + st, sc + c, sd + sm);
        let kind = key.kind.clone() + if key.groups > 1 { " (depthwise)" } else { "" };
        let e = by_kind.entry(kind).or_default();
        (e.0, e.1, e.2, e.3, e.4) = (e.0 + entry, e.1 + st, e.2 + c, e.3 + sm, e.4 + 1);
        println!(
            "| {name} | {key} | {:.1} | {:.1} | {:.1} | {:.1} | {:+.1} |",
            entry * 1e3,
            st * 1e3,
            sm * 1e3,
            c * 1e3,
            (c - entry) * 1e3
        );
    }
    println!(
        "| sum | | {:.1} | {:.1} | {:.1} | {:.1} | {:+.1} |",
        se * 1e3,
        ss * 1e3,
        sd * 1e3,
        sc * 1e3,
        (sc - se) * 1e3
    );
    println!("\n| kind | steps | entry us | stream us | streamed us | context us |\n|---|--:|--:|--:|--:|--:|");
    for (kind, (e, s, c, d, n)) in by_kind {
        println!(
            "| {kind} | {n} | {:.1} | {:.1} | {:.1} | {:.1} |",
            e * 1e3,
            s * 1e3,
            d * 1e3,
            c * 1e3
        );
    }
    println!(
        "\nwhole - last cut: {:.1} us (the rayon scope of a pass >= 1M MACs, if any)",
        (whole - cut[cut.len() - 1]) * 1e3
    );
}

/// The probe of one step as the table builds it.
fn lut_probe(op: &joule_model::Op, fused: &[joule_model::Op], inputs: &[Shape]) -> Network {
    // The table's own probe constructor is crate-private; a one-step table of the op gives
    // the same network, but building the graph here keeps the harness independent of it.
    let per_channel;
    let (op, inputs) = match (op, inputs) {
        (joule_model::Op::Binary(b), [x, s]) if b.constant.is_none() && s.c == x.c && s.h == 1 => {
            per_channel = joule_model::Op::Binary(joule_model::ops::Binary {
                kind: b.kind,
                constant: Some(joule_model::ops::ConstantOperand {
                    side: joule_model::ops::Side::Right,
                    dims: vec![1, s.c, 1, 1],
                }),
            });
            (&per_channel, &inputs[..1])
        }
        _ => (op, inputs),
    };
    let mut g = Graph::new("probe", Some(Shape { n: 1, ..inputs[0] }));
    let mut last = g.push("probe", op.clone(), &vec![Value::Input; inputs.len()]);
    for (i, f) in fused.iter().enumerate() {
        last = g.push(format!("fused{i}"), f.clone(), &[last]);
    }
    Network::new(g, 7).unwrap()
}

fn input_for(shape: Shape) -> FeatureMap {
    let len = shape.elements() as usize;
    let data = (0..len).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    FeatureMap { shape, data }
}
