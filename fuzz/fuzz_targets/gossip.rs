//! Fuzz target `gossip`: see `huren_fuzz::gossip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::gossip(data));
