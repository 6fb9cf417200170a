//! Prints AlexNet CONV/FC energy per dataflow on isca16, batch 16.
use joule_energy::{network, spec, workload, Dataflow, Objective};
fn main() {
    let hw = spec::preset("isca16").unwrap();
    let graph = joule_model::zoo::build("alexnet").unwrap();
    let layers = workload::from_graph(&graph, None, 16).unwrap();
    for df in Dataflow::ALL {
        let r = network::evaluate("alexnet", &layers, &hw, df, Objective::Energy).unwrap();
        let e = &r.total.energy;
        println!("{df:4} conv {:.3e} fc {:.3e} | mac {:.2e} rf {:.2e} array {:.2e} buffer {:.2e} dram {:.2e}",
            r.total.conv.energy, r.total.fc.energy, e.mac, e.rf, e.array, e.buffer, e.dram);
    }
}
