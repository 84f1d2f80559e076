//! Fuzz target `bundle`: see `huren_fuzz::bundle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::bundle(data));
