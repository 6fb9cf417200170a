//! A hardware spec (digital or PIM YAML) -> machine -> one small CONV layer mapped on it: a
//! spec that loads must map in bounded time with a finite energy, or be refused.
#![no_main]
use joule_energy::{workload, Dataflow, Objective};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn layer() -> &'static Vec<joule_energy::Workload> {
    static LAYER: OnceLock<Vec<joule_energy::Workload>> = OnceLock::new();
    LAYER.get_or_init(|| {
        let graph = joule_model::zoo::build("lenet5").expect("zoo model");
        let mut layers = workload::from_graph(&graph, None, 1).expect("workload");
        layers.truncate(1);
        layers
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(machine) = joule_energy::machine::parse(text, "fuzz.yaml") {
        if let Ok(cost) = machine.evaluate("fuzz", layer(), Dataflow::Rs, Objective::Energy) {
            let e = cost.total.energy.total;
            assert!(e.is_finite() && e >= 0.0, "energy {e}");
        }
    }
});
