//! Fuzz target `corpus_block`: see `txshadow_run::fuzzing::corpus_block`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| txshadow_run::fuzzing::corpus_block(data));
