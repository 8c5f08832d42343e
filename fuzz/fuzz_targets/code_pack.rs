//! Fuzz target `code_pack`: see `txshadow_run::fuzzing::code_pack`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| txshadow_run::fuzzing::code_pack(data));
