//! Fuzz target `block`: see `huren_fuzz::block`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::block(data));
