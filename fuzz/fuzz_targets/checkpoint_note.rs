//! Fuzz target `checkpoint_note`: see `huren_fuzz::checkpoint_note`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huren_fuzz::checkpoint_note(data));
