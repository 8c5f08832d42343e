//! Sealed receipts: a verified replay writes them, later replays check receipts field by field
//! against them, and receipts that differ still get their trie computed.

use std::path::Path;

use txshadow_corpus::Corpus;
use txshadow_diff::Mode;
use txshadow_replay::{BlockRunOptions, Codes, ReceiptsCheck, SideConfig, run_block};
use txshadow_run::{CorpusSource, RunConfig, RunHooks, SealOptions, seal_corpus};

/// A copy of the shipped corpus (its files only).
fn copy_of_shipped(to: &Path) {
    for sub in ["blocks", "codes"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for e in std::fs::read_dir(super::shipped().join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(sub).join(e.file_name())).unwrap();
        }
    }
    std::fs::copy(
        super::shipped().join("manifest.json"),
        to.join("manifest.json"),
    )
    .unwrap();
}

#[test]
fn sealed_receipts_replace_the_trie_and_a_difference_still_computes_it() {
    let dir = tempfile::tempdir().unwrap();
    copy_of_shipped(dir.path());
    let s = seal_corpus(
        dir.path(),
        SealOptions {
            write: true,
            replay_all: false,
        },
    )
    .unwrap();
    // Byzantium on: sealed by a verified replay; before it: left to the trie
    assert_eq!((s.blocks, s.replayed, s.recorded), (13, 9, 0), "{s:?}");
    assert_eq!(s.unsealed.len(), 4, "{s:?}");
    assert!(s.unsealed.iter().all(|(n, _)| *n < 4_370_000));
    Corpus::open(dir.path()).unwrap().verify().unwrap();
    assert_eq!(
        seal_corpus(
            dir.path(),
            SealOptions {
                write: true,
                replay_all: false
            }
        )
        .unwrap()
        .already,
        9
    );
    // the bench's dry run replays every block again, and writes nothing
    let dry = SealOptions {
        write: false,
        replay_all: true,
    };
    let again = seal_corpus(dir.path(), dry).unwrap();
    assert_eq!(
        (again.replayed, again.already, again.written),
        (9, 0, false)
    );

    // a run against the chain checks 9 blocks by their sealed receipts, all matching
    for mode in [Mode::Block, Mode::Tx] {
        let out = tempfile::tempdir().unwrap();
        let cfg = RunConfig::against_chain(mode, out.path());
        let mut src = CorpusSource::open(dir.path(), None).unwrap();
        let o = txshadow_run::run(&mut src, &cfg, RunHooks::default()).unwrap();
        assert_eq!(o.exit, txshadow_run::EXIT_OK, "{mode:?}");
        let c = o.report.throughput.receipts_checks;
        // the 4 before Byzantium: a root the header's cannot match (no full pre-state) is
        // compared with nothing, so none is computed; their blooms are
        assert_eq!((c.recorded, c.trie, c.bloom), (9, 0, 4), "{mode:?}");
    }

    // a pre-Byzantium block: its root computed only when asked, the same bloom either way
    let src = CorpusSource::open(dir.path(), None).unwrap();
    let entry = src
        .entries()
        .iter()
        .find(|e| e.number < 4_370_000)
        .unwrap()
        .clone();
    let early = src.load(&entry).unwrap();
    let side = SideConfig::chain("baseline");
    let with_root = |root: bool| {
        let opts = BlockRunOptions {
            unmatchable_receipts_root: root,
            ..BlockRunOptions::receipts_only()
        };
        run_block(&early.block, &early.chain, &early.codes, &side, &opts).outcome
    };
    let (full, lean) = (with_root(true), with_root(false));
    assert_eq!(
        (full.receipts_check, lean.receipts_check),
        (ReceiptsCheck::Trie, ReceiptsCheck::Bloom)
    );
    assert!(!full.receipt_state_roots && !lean.receipt_state_roots);
    assert_ne!(full.receipts_root, alloy_primitives::B256::ZERO);
    assert_eq!(lean.receipts_root, alloy_primitives::B256::ZERO);
    assert_eq!(lean.logs_bloom, early.block.header.logs_bloom);
    assert_eq!(full.logs_bloom, lean.logs_bloom);
    assert_eq!(full.gas_used, lean.gas_used);

    // the same block with the trie forced: the same root and bloom
    let src = CorpusSource::open(dir.path(), None).unwrap();
    let entry = src
        .entries()
        .iter()
        .find(|e| e.number == 12_520_364)
        .unwrap()
        .clone();
    let mut sb = src.load(&entry).unwrap();
    let side = SideConfig::chain("baseline");
    let run = |b: &txshadow_corpus::BlockRecord, codes: &Codes, trie: bool| {
        let opts = BlockRunOptions {
            receipts_trie: trie,
            ..BlockRunOptions::receipts_only()
        };
        run_block(b, &sb.chain, codes, &side, &opts).outcome
    };
    let fast = run(&sb.block, &sb.codes, false);
    let trie = run(&sb.block, &sb.codes, true);
    assert_eq!(fast.receipts_check, ReceiptsCheck::Recorded);
    assert_eq!(trie.receipts_check, ReceiptsCheck::Trie);
    assert_eq!(
        (fast.receipts_root, fast.logs_bloom),
        (trie.receipts_root, trie.logs_bloom)
    );
    assert_eq!(fast.receipts_root, sb.block.header.receipts_root);
    // without the post-state read back (nothing recorded to compare it with): the same checks
    let opts = BlockRunOptions {
        post_state: false,
        ..BlockRunOptions::receipts_only()
    };
    let lean = run_block(&sb.block, &sb.chain, &sb.codes, &side, &opts).outcome;
    assert!(lean.post_state.is_empty() && !fast.post_state.is_empty());
    assert_eq!(
        (lean.receipts_root, lean.logs_bloom, lean.gas_used),
        (fast.receipts_root, fast.logs_bloom, fast.gas_used)
    );

    // a recorded receipt that differs from the replay's (one byte of one log): the replay's
    // root is computed (still the header's: the replay is right), and the diff names the log
    let receipts = sb.block.expected.receipts.as_mut().unwrap();
    let (i, r) = receipts
        .iter_mut()
        .enumerate()
        .find(|(_, r)| r.logs.iter().any(|l| !l.data.data.is_empty()))
        .unwrap();
    let log = r.logs.iter_mut().find(|l| !l.data.data.is_empty()).unwrap();
    let mut data = log.data.data.to_vec();
    data[0] ^= 1;
    log.data = alloy_primitives::LogData::new_unchecked(log.data.topics().to_vec(), data.into());
    let out = run(&sb.block, &sb.codes, false);
    assert_eq!(out.receipts_check, ReceiptsCheck::Trie);
    assert_eq!(out.receipts_root, sb.block.header.receipts_root);
    let f = txshadow_diff::diff_against_chain(
        &sb.block,
        &sb.chain,
        &out,
        Mode::Block,
        txshadow_diff::Comparison::BaselineVsChain,
    );
    assert!(
        f.iter()
            .any(|f| f.tx_index == Some(i) && f.kind == txshadow_diff::Kind::Logs),
        "{f:?}"
    );
}
