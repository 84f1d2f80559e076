//! Fuzz target `node_config`: see `huren_fuzz::node_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::node_config(data));
