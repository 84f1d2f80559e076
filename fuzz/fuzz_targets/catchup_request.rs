//! Fuzz target `catchup_request`: see `huren_fuzz::catchup_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::catchup_request(data));
