//! Fuzz target `qr_text`: see `huren_fuzz::qr_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::qr_text(data));
