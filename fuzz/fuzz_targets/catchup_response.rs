//! Fuzz target `catchup_response`: see `huren_fuzz::catchup_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::catchup_response(data));
