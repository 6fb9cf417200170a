//! Prints AlexNet CONV/FC energy per dataflow at equal area on isca16, batch 16 (ISCA'16).
use joule_energy::{compare, spec, workload, Objective};
fn main() {
    let hw = spec::preset("isca16").unwrap();
    let graph = joule_model::zoo::build("alexnet").unwrap();
    let layers = workload::from_graph(&graph, None, 16).unwrap();
    let start = std::time::Instant::now();
    let results = compare::compare("alexnet", &layers, &hw, Objective::Energy).unwrap();
    let (rs_conv, rs_fc) = (results[0].total.conv.energy, results[0].total.fc.energy);
    for r in &results {
        let e = &r.total.energy;
        println!(
            "{:5} conv {:.3e} ({:.2}x) fc {:.3e} ({:.2}x) | mac {:.2e} rf {:.2e} array {:.2e} buffer {:.2e} dram {:.2e} | {}",
            r.dataflow.to_string(), r.total.conv.energy, r.total.conv.energy / rs_conv,
            r.total.fc.energy, r.total.fc.energy / rs_fc, e.mac, e.rf, e.array, e.buffer, e.dram, r.hardware
        );
    }
    eprintln!("{:.2} s", start.elapsed().as_secs_f64());
}
