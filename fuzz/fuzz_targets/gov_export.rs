//! Fuzz target `gov_export`: see `huren_fuzz::gov_export`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::gov_export(data));
