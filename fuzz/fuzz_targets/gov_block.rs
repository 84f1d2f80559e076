//! Fuzz target `gov_block`: see `huren_fuzz::gov_block`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::gov_block(data));
