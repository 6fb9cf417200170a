//! ONNX bytes -> graph (import, constant folding, validation) -> statistics. Any input must
//! give a graph or an error, never a panic, a hang or an allocation beyond the limits.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(graph) = joule_onnx::import_bytes(data, "fuzz.onnx") {
        if let Ok(stats) = joule_model::NetworkStats::of(&graph, None) {
            // Counts that fit are counted: a layer never has more MACs than the network.
            for layer in &stats.layers {
                assert!(layer.macs <= stats.total.macs);
            }
        }
    }
});
