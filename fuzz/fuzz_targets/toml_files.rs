//! Fuzz target `toml_files`: see `txshadow_run::fuzzing::toml_files`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| txshadow_run::fuzzing::toml_files(data));
