//! Fuzz target `block_payload`: see `txshadow_run::fuzzing::block_payload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| txshadow_run::fuzzing::block_payload(data));
