//! Fuzz target `cose`: see `huren_fuzz::cose`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::cose(data));
