//! The saved fuzz inputs (`fuzz/corpus/<target>/` and the crashes kept in
//! `fuzz/artifacts/<target>/`) replayed as ordinary tests, without fuzzing: each file goes to the
//! function its fuzz target calls, which must not panic.

use std::{fs, path::Path};

use txshadow_run::fuzzing::TARGETS;

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn saved_fuzz_inputs_do_not_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut fed = 0;
    for (name, run) in TARGETS {
        let seeds = files(&root.join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz target {name} has no seed corpus");
        for f in seeds
            .iter()
            .chain(&files(&root.join("artifacts").join(name)))
        {
            let data = fs::read(f).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{name}: {} panics", f.display());
            fed += 1;
        }
    }
    // every target file in fuzz/fuzz_targets is one of TARGETS
    for f in files(&root.join("fuzz_targets")) {
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            TARGETS.iter().any(|(n, _)| *n == stem),
            "fuzz target {stem} is not in txshadow_run::fuzzing::TARGETS"
        );
    }
    assert!(fed > 0);
}
