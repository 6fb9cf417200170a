//! Prints AlexNet's per-layer RS energy on isca16, batch 16 (x1e9), as in ISCA'16 Fig. 10.
use joule_energy::{network, spec, workload, Dataflow, Objective};
use std::time::Instant;

fn main() {
    let model = std::env::args().nth(1).unwrap_or_else(|| "alexnet".into());
    let hw = spec::preset("isca16").unwrap();
    let graph = joule_model::zoo::build(&model).unwrap();
    let layers = workload::from_graph(&graph, None, 16).unwrap();
    let start = Instant::now();
    let r = network::evaluate(&model, &layers, &hw, Dataflow::Rs, Objective::Energy).unwrap();
    let t = start.elapsed();
    for l in &r.layers {
        let c = &l.cost;
        let e = &c.energy;
        println!(
            "{:6} {:7.3} {:7.3} {:7.3} {:7.3} {:7.3} | {:.4e} {:.4e} {:.4e} | {} [{} of {}]",
            c.name,
            e.mac / 1e9,
            e.dram / 1e9,
            e.buffer / 1e9,
            e.array / 1e9,
            e.rf / 1e9,
            c.accesses.dram.filter,
            c.accesses.dram.ifmap,
            c.accesses.dram.psum,
            c.mapping,
            l.search.evaluated,
            l.search.mapspace
        );
    }
    println!("time {:?} total {:.6e}", t, r.total.energy.total);
}
