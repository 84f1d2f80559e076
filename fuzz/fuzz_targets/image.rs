//! Fuzz target `image`: see `huren_fuzz::image`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::image(data));
