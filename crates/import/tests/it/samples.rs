//! Every importer on the samples shipped in `testdata/` (no `../shared` needed): import, replay,
//! zero findings, and the checks the source allows did run.

use std::path::{Path, PathBuf};

use txshadow_corpus::BlockRecord;
use txshadow_diff::Mode;
use txshadow_import::Format;
use txshadow_replay::BlockOutcome;

use crate::common::{import_to_temp, replay_and_diff};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(name)
}

#[test]
fn hivechain_sample_reproduces_every_root() {
    let (_d, c) = import_to_temp(Format::Hivechain, &[testdata("hivechain-prague")]);
    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert_eq!(blocks.len(), 45);
    assert!(findings.is_empty(), "{findings:#?}");
    assert!(outs.iter().all(|o| o.state_root_exact));
    for (b, o) in blocks.iter().zip(&outs) {
        assert_eq!(
            o.state_root,
            Some(b.header.state_root),
            "block {}",
            b.number()
        );
    }
}

/// Each block's pre-state was verified under its parent's state root and its post-block state
/// root, computed from the witness, is the header's.
fn exact_roots_from_witness(blocks: &[BlockRecord], outs: &[BlockOutcome]) {
    for (b, o) in blocks.iter().zip(outs) {
        let w = o.witness.as_ref().expect("the importer keeps the witness");
        assert!(w.pre_state_verified && w.error.is_none(), "{w:?}");
        assert!(o.state_root_exact);
        assert_eq!(
            o.state_root,
            Some(b.header.state_root),
            "block {}",
            b.number()
        );
    }
}

#[test]
fn zeth_sample_matches_post_state() {
    let (_d, c) = import_to_temp(Format::Zeth, &[testdata("zeth-mainnet")]);
    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert_eq!(blocks.len(), 2);
    exact_roots_from_witness(&blocks, &outs);
    assert!(blocks.iter().all(|b| {
        b.expected
            .post_state
            .as_ref()
            .is_some_and(|p| !p.is_empty())
    }));
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn keth_sample_matches_post_state() {
    let (_d, c) = import_to_temp(Format::Keth, &[testdata("keth-mainnet")]);
    for mode in [Mode::Block, Mode::Tx] {
        let (blocks, outs, findings) = replay_and_diff(&c, mode);
        assert_eq!(blocks.len(), 1);
        exact_roots_from_witness(&blocks, &outs);
        assert_eq!(blocks[0].transactions.len(), 8);
        assert!(findings.is_empty(), "{findings:#?}");
    }
}

#[test]
fn geth_tracetest_sample_reproduces_recorded_results() {
    let (_d, c) = import_to_temp(Format::GethTracetest, &[testdata("geth-tracetest")]);
    let (blocks, _outs, findings) = replay_and_diff(&c, Mode::Tx);
    assert_eq!(blocks.len(), 9);
    let with_gas = blocks
        .iter()
        .filter(|b| {
            b.expected
                .txs
                .first()
                .and_then(|x| x.as_ref())
                .is_some_and(|x| x.gas_used.is_some())
        })
        .count();
    assert!(with_gas >= 6, "{with_gas}");
    assert!(findings.is_empty(), "{findings:#?}");
}

/// A directory with one damaged file among good ones: the good ones are imported, the bad one
/// is listed with its reason, and the import says it failed.
#[test]
fn one_bad_file_among_good_ones_does_not_stop_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let good = ["1-1149999.json", "1-2463000.json"];
    for f in good {
        std::fs::copy(testdata("zeth-mainnet").join(f), src.join(f)).unwrap();
    }
    // a truncated dump, named to sort between the good ones
    let bytes = std::fs::read(testdata("zeth-mainnet").join(good[0])).unwrap();
    std::fs::write(src.join("1-2000000.json"), &bytes[..bytes.len() / 3]).unwrap();
    // and one that parses but is not a zeth cache
    std::fs::write(src.join("1-2100000.json"), "{\"hello\": 1}").unwrap();
    let out = dir.path().join("c");
    let s = txshadow_import::import(
        Format::Zeth,
        &[src],
        &out,
        &txshadow_import::ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(s.blocks, 2);
    let failed: Vec<String> = s
        .failed
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        failed,
        ["1-2000000.json", "1-2100000.json"],
        "{:?}",
        s.failed
    );
    assert!(s.failed.iter().all(|(_, why)| !why.is_empty()));
    let c = txshadow_corpus::Corpus::open(&out).unwrap();
    assert_eq!(c.manifest().blocks.len(), 2);
    c.verify().unwrap();
}
