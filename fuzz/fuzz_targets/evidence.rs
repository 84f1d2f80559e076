//! Fuzz target `evidence`: see `huren_fuzz::evidence`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::evidence(data));
