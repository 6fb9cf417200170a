//! Per-layer density and bit-width files (YAML or JSON).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = joule_energy::workload::parse_densities(text, "fuzz.yaml");
    let _ = joule_energy::workload::parse_bitwidths(text, "fuzz.yaml");
});
