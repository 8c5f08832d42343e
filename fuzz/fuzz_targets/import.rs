//! Fuzz target `import`: see `txshadow_run::fuzzing::import`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| txshadow_run::fuzzing::import(data));
