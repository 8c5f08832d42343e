//! Fuzz target `rpc_response`: see `txshadow_run::fuzzing::rpc_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| txshadow_run::fuzzing::rpc_response(data));
