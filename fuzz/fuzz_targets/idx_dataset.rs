//! IDX dataset files, raw or gzip: declared sizes are checked before anything is allocated.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = joule_nn::data::idx_from_bytes(data, Path::new("fuzz-idx3-ubyte.gz"));
});
