//! Run-state JSON: a pruning run's `state.json` checked against the network it indexes (a
//! damaged one used to panic), and a NetAdapt `state.json`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn network() -> &'static joule_nn::Network {
    static NETWORK: OnceLock<joule_nn::Network> = OnceLock::new();
    NETWORK.get_or_init(|| {
        joule_nn::Network::new(joule_model::zoo::build("lenet5").expect("zoo"), 1).expect("init")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = serde_json::from_slice::<joule_compress::run::State>(data) {
        let _ = state.check(network(), Path::new("state.json"));
    }
    let _ = serde_json::from_slice::<joule_compress::netadapt::State>(data);
});
