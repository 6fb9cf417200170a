//! Checks latency tables against a family of networks measured now (issue 17 item 6): the
//! uniform width multipliers k/levels of a zoo network and `random` members whose prunable
//! layers each keep a random grid count (seeded), every one measured whole on the engine
//! and predicted by each table given; prints the error table and the within-10% count per
//! table, with the machine's state (load average, drift of each table's own steps).
//!
//! ```text
//! joule lut build mobilenetv2-28 --levels 8 --threads 1 --out streamed.json
//! joule lut build mobilenetv2-28 --levels 8 --threads 1 --context isolated --out isolated.json
//! cargo run --release -p joule-compress --example lut_family -- mobilenetv2-28 8 12 1 \
//!     streamed.json isolated.json
//! ```

use joule_compress::lut::{self, LatencyTable, LayerTimer, MeasureConfig, WallClock};
use joule_compress::netadapt::baseline;
use joule_model::zoo;
use joule_nn::Network;

/// A splitmix64 step: the members' random grid counts, reproducible from the seed.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: lut_family MODEL LEVELS RANDOM_MEMBERS SEED TABLE.json [TABLE.json ...]");
        std::process::exit(2);
    }
    let model = &args[1];
    let levels: usize = args[2].parse().expect("levels");
    let random: usize = args[3].parse().expect("members");
    let mut state: u64 = args[4].parse().expect("seed");
    let tables: Vec<(String, LatencyTable)> = args[5..]
        .iter()
        .map(|p| (p.clone(), LatencyTable::load(p.as_ref()).expect("a table")))
        .collect();
    let original = Network::new(zoo::build(model).expect("a zoo model"), 1).unwrap();
    let mut family: Vec<(String, Network)> = (1..=levels)
        .rev()
        .map(|k| {
            (
                format!("uniform {k}/{levels}"),
                baseline::uniform(&original, k, levels).expect("a grid width"),
            )
        })
        .collect();
    for i in 0..random {
        let net = baseline::narrowed(&original, levels, |_| {
            1 + (next(&mut state) % levels as u64) as usize
        })
        .expect("a grid width");
        family.push((format!("random {}", i + 1), net));
    }
    let clock = WallClock::new(1).unwrap();
    let config = MeasureConfig {
        sweeps: 9,
        pause_ms: 50,
        gate_tolerance: 0.0,
        ..MeasureConfig::default()
    };
    let load_before = lut::machine_state();
    // The members interleaved: every sweep times each member once (a stable median), so all
    // members see the same mix of the machine's states; a member's time is the median of
    // its sweeps.
    let inputs: Vec<joule_nn::FeatureMap> = family
        .iter()
        .map(|(_, net)| {
            let shape = net.input_shape().unwrap();
            let len = shape.elements() as usize;
            let data = (0..len).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
            joule_nn::FeatureMap { shape, data }
        })
        .collect();
    let mut sweeps: Vec<Vec<lut::Measurement>> = vec![Vec::new(); family.len()];
    let mut loads = Vec::new();
    // The machine's state relative to each table, taken after every sweep: the drift of the
    // original's steps (short measurements), whose median scales the predictions.
    let quick = MeasureConfig {
        round: 5,
        max_runs: 20,
        ..config.clone()
    };
    let mut drifts: Vec<Vec<f64>> = vec![Vec::new(); tables.len()];
    for _ in 0..config.sweeps {
        for (i, (_, net)) in family.iter().enumerate() {
            let probe = lut::Probe {
                key: None,
                network: net,
                input: &inputs[i],
            };
            sweeps[i].push(lut::stable_median(&config, || clock.time_ms(&probe)).unwrap());
        }
        loads.push(lut::load_average());
        for (d, (_, t)) in drifts.iter_mut().zip(&tables) {
            if let Some(x) = lut::drift(family[0].1.graph(), t, &clock, &quick).unwrap() {
                d.push(x);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(config.pause_ms));
    }
    let mut rows = Vec::new();
    for (i, (name, net)) in family.iter().enumerate() {
        let measured = lut::combine_sweeps(&sweeps[i]);
        let predicted: Vec<f64> = tables
            .iter()
            .map(|(_, t)| t.predict(net.graph()).unwrap().total_ms)
            .collect();
        let drift: Vec<f64> = drifts.iter().map(|d| lut::median(d)).collect();
        rows.push((
            name,
            measured.median_ms,
            predicted,
            drift,
            loads.last().copied().flatten(),
        ));
    }
    println!(
        "{model}: {} members, machine before {load_before}, after {}",
        family.len(),
        lut::machine_state()
    );
    for (t, (path, table)) in tables.iter().enumerate() {
        println!(
            "\n{path}: context {:?}, built at load {:?}, machine {}",
            table.measure.context,
            table.load_average,
            table.machine.as_ref().map_or("-".into(), |m| m.to_string())
        );
        println!("| network | predicted ms | measured ms | error | drift | error x drift | load |");
        println!("|---|--:|--:|--:|--:|--:|--:|");
        let (mut within, mut within_d, mut errors) = (0, 0, Vec::new());
        for (name, measured, predicted, drift, load) in &rows {
            let e = (predicted[t] - measured) / measured;
            let ed = (predicted[t] * drift[t] - measured) / measured;
            within += usize::from(e.abs() <= 0.1);
            within_d += usize::from(ed.abs() <= 0.1);
            errors.push(e.abs());
            println!(
                "| {name} | {:.4} | {:.4} | {:+.1}% | {:.3} | {:+.1}% | {} |",
                predicted[t],
                measured,
                e * 100.0,
                drift[t],
                ed * 100.0,
                load.map_or("-".into(), |l| format!("{l:.2}"))
            );
        }
        println!(
            "{within}/{} within 10% (median |error| {:.1}%, max {:.1}%); in the table's state (x drift {:.3}, median of the sweeps): {within_d}/{}",
            rows.len(),
            lut::median(&errors) * 100.0,
            errors.iter().copied().fold(0.0, f64::max) * 100.0,
            rows[0].3[t],
            rows.len()
        );
    }
}
