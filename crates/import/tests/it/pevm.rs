//! pevm mainnet blocks: every block reproduces the header's gas used, logs bloom and receipts root.

use txshadow_diff::Mode;
use txshadow_import::Format;

use crate::common::{import_to_temp, replay_and_diff, shared};

#[test]
fn pevm_8889776_block_mode_matches_header() {
    let Some(root) = shared("pevm-mainnet") else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("blocks")).unwrap();
    let b = root.join("blocks/8889776");
    let dst = src.path().join("blocks/8889776");
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["block.json", "pre_state.json", "block_hashes.json"] {
        std::fs::copy(b.join(f), dst.join(f)).unwrap();
    }
    std::fs::copy(
        root.join("bytecodes.json"),
        src.path().join("bytecodes.json"),
    )
    .unwrap();
    let (_d, c) = import_to_temp(Format::Pevm, &[src.path().to_path_buf()]);
    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert_eq!(blocks.len(), 1);
    assert!(outs[0].txs.len() > 100);
    assert!(findings.is_empty(), "{findings:#?}");
}

/// Block mode without per-tx state (what a run against the chain uses when the chain recorded
/// no per-tx state) gives the same receipts, roots and post-state as full block mode, on every
/// block of the shipped corpus, before and after Byzantium.
#[test]
fn receipts_only_block_mode_agrees_with_full_block_mode() {
    use txshadow_replay::{BlockRunOptions, Codes, SideConfig, SpecId, run_block};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpora/mainnet");
    let c = txshadow_corpus::Corpus::open(&dir).unwrap();
    let blocks = c.load_blocks().unwrap();
    let store = c.load_codes(&blocks).unwrap();
    let codes = Codes::from_store(&store, blocks.iter().flat_map(|b| b.code_hashes()));
    let chain = &c.manifest().chain;
    let side = SideConfig::chain("baseline");
    let (mut before_byzantium, mut after) = (0, 0);
    for b in &blocks {
        let full = run_block(b, chain, &codes, &side, &BlockRunOptions::default()).outcome;
        let lean = run_block(b, chain, &codes, &side, &BlockRunOptions::receipts_only()).outcome;
        let n = b.number();
        assert_eq!(lean.error, None, "block {n}");
        assert_eq!(lean.receipts_root, full.receipts_root, "block {n}");
        assert_eq!(lean.logs_bloom, full.logs_bloom, "block {n}");
        assert_eq!(lean.gas_used, full.gas_used, "block {n}");
        assert_eq!(lean.post_state, full.post_state, "block {n}");
        assert_eq!(lean.state_root, full.state_root, "block {n}");
        let diffs = txshadow_diff::diff_against_chain(
            b,
            chain,
            &lean,
            txshadow_diff::Mode::Block,
            txshadow_diff::Comparison::BaselineVsChain,
        );
        assert!(diffs.is_empty(), "block {n}: {diffs:#?}");
        let pre_byzantium = !txshadow_replay::evm_env(b, chain, &side)
            .cfg_env
            .spec
            .is_enabled_in(SpecId::BYZANTIUM);
        for (l, f) in lean.txs.iter().zip(&full.txs) {
            let (l, f) = (l.exec().unwrap(), f.exec().unwrap());
            assert_eq!(
                (
                    l.status,
                    l.gas_used,
                    l.cumulative_gas_used,
                    &l.logs,
                    &l.output
                ),
                (
                    f.status,
                    f.gas_used,
                    f.cumulative_gas_used,
                    &f.logs,
                    &f.output
                ),
                "block {n}"
            );
            if pre_byzantium {
                // the receipts' intermediate state roots are built from the per-tx changes
                assert_eq!(l.state, f.state, "block {n}");
            } else {
                assert!(
                    l.state.is_empty() && l.storage_reset.is_empty(),
                    "block {n}"
                );
            }
        }
        if !pre_byzantium {
            assert_eq!(lean.receipts_root, b.header.receipts_root, "block {n}");
        }
        if pre_byzantium {
            before_byzantium += 1;
        } else if full.txs.iter().any(|t| !t.exec().unwrap().state.is_empty()) {
            after += 1;
        }
    }
    assert!(
        before_byzantium > 0 && after > 0,
        "{before_byzantium} {after}"
    );
}
