//! Fuzz target `side_items`: see `txshadow_run::fuzzing::side_items`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| txshadow_run::fuzzing::side_items(data));
