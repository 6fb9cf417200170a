//! `.safetensors` checkpoint bytes (header, graph JSON in the metadata, tensors) -> network.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(network) = joule_nn::checkpoint::from_bytes(data, Path::new("fuzz.safetensors")) {
        // A loaded network is consistent enough to be counted and saved again.
        let _ = joule_model::NetworkStats::of(network.graph(), None);
        let _ = joule_nn::checkpoint::to_bytes(&network);
    }
});
