//! Fuzz target `genesis_json`: see `huren_fuzz::genesis_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::genesis_json(data));
