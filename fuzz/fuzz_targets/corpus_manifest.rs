//! Fuzz target `corpus_manifest`: see `txshadow_run::fuzzing::corpus_manifest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| txshadow_run::fuzzing::corpus_manifest(data));
