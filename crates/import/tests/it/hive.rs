//! The hive chain (Frontier → Prague, 45 blocks, 160 txs of types 0-4): imported with the full
//! state before every block, each block replays to its header's state root, receipts root, logs
//! bloom and gas used.

use std::collections::BTreeSet;

use alloy_primitives::U256;
use txshadow_diff::{Comparison, Kind, Mode, diff_against_chain};
use txshadow_import::Format;
use txshadow_replay::{BlockRunOptions, Codes, SideConfig, run_block};

use crate::common::{import_to_temp, replay_and_diff, shared};

#[test]
fn hivechain_prague_every_block_matches_header() {
    let Some(root) = shared("hivechain-prague") else {
        return;
    };
    let (_d, c) = import_to_temp(Format::Hivechain, &[root]);
    assert_eq!(c.manifest().blocks.len(), 45);
    assert_eq!(c.manifest().tx_count(), 160);
    assert_eq!(c.manifest().chain.chain_id, 3_503_995_874_084_926);
    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(blocks.len(), 45);
    assert_eq!(blocks.first().map(|b| b.number()), Some(1));
    assert_eq!(blocks.last().map(|b| b.number()), Some(45));
    for (b, o) in blocks.iter().zip(&outs) {
        assert!(b.pre_state_is_full, "block {}", b.number());
        assert!(b.unsupported.is_none(), "block {}", b.number());
        assert!(o.error.is_none(), "block {}: {:?}", b.number(), o.error);
        // the state root check ran, and on the real root
        assert!(o.state_root_exact, "block {}", b.number());
        assert_eq!(
            o.state_root,
            Some(b.header.state_root),
            "block {}",
            b.number()
        );
        // before Byzantium too: their receipts carry intermediate state roots, which the full
        // pre-state allows computing, and the diff then compares the root with the header's
        assert_eq!(
            o.receipts_root,
            b.header.receipts_root,
            "block {} ({})",
            b.number(),
            o.spec
        );
    }
    let chain = &c.manifest().chain;
    let early: Vec<usize> = (0..blocks.len())
        .filter(|i| blocks[*i].number() < 9 && !outs[*i].txs.is_empty())
        .collect();
    assert!(!early.is_empty(), "pre-Byzantium blocks with txs");
    for i in early {
        let (b, o) = (&blocks[i], &outs[i]);
        assert!(o.receipt_state_roots, "block {} ({})", b.number(), o.spec);
        let mut wrong = o.clone();
        wrong.receipts_root = alloy_primitives::B256::repeat_byte(1);
        let f = diff_against_chain(b, chain, &wrong, Mode::Block, Comparison::BaselineVsChain);
        assert!(
            f.iter().any(|f| f.kind == Kind::ReceiptsRoot),
            "block {}: a wrong receipts root is a finding: {f:?}",
            b.number()
        );
    }
    let txs: usize = outs.iter().map(|o| o.txs.len()).sum();
    assert_eq!(txs, 160);
    let types: BTreeSet<u8> = outs
        .iter()
        .flat_map(|o| &o.txs)
        .map(|t| t.tx_type)
        .collect();
    assert_eq!(types, BTreeSet::from([0, 1, 2, 3, 4]));
    let specs: BTreeSet<&str> = outs.iter().map(|o| o.spec.as_str()).collect();
    for s in [
        "homestead",
        "byzantium",
        "london",
        "merge",
        "shanghai",
        "cancun",
        "prague",
    ] {
        assert!(specs.contains(s), "no block ran under {s}: {specs:?}");
    }
    // uncles were paid: the source has them and the corpus keeps their headers
    assert!(blocks.iter().any(|b| !b.ommers.is_empty()));
    assert!(blocks.iter().all(|b| b.ommers_missing == 0));
    assert!(
        c.manifest().provenance.notes.is_empty(),
        "{:?}",
        c.manifest().provenance.notes
    );

    // tx mode: each tx on its own pre-state, the block-level checks from the block run
    let (_, outs, findings) = replay_and_diff(&c, Mode::Tx);
    assert!(findings.is_empty(), "{findings:#?}");
    assert!(outs.iter().all(|o| o.state_root_exact));
}

#[test]
fn hivechain_from_files_matches_from_dir() {
    let Some(root) = shared("hivechain-prague") else {
        return;
    };
    let (_a, from_dir) = import_to_temp(Format::Hivechain, std::slice::from_ref(&root));
    let (_b, from_files) = import_to_temp(
        Format::Hivechain,
        &[root.join("genesis.json"), root.join("chain.rlp")],
    );
    let a = &from_dir.manifest().blocks;
    let b = &from_files.manifest().blocks;
    assert_eq!(a.len(), 45);
    // same blocks, byte for byte
    assert_eq!(
        a.iter().map(|e| (&e.hash, &e.sha256)).collect::<Vec<_>>(),
        b.iter().map(|e| (&e.hash, &e.sha256)).collect::<Vec<_>>()
    );
    from_files.verify().unwrap();
}

#[test]
fn hivechain_altered_balance_gives_state_root_finding() {
    let Some(root) = shared("hivechain-prague") else {
        return;
    };
    let (_d, c) = import_to_temp(Format::Hivechain, &[root]);
    let blocks = c.load_blocks().unwrap();
    let store = c.load_codes(&blocks).unwrap();
    let codes = Codes::from_store(&store, blocks.iter().flat_map(|b| b.code_hashes()));
    let chain = &c.manifest().chain;
    let side = SideConfig::chain("baseline");
    for n in [5, 30, 45] {
        let mut b = blocks.iter().find(|b| b.number() == n).unwrap().clone();
        let out = run_block(&b, chain, &codes, &side, &BlockRunOptions::default()).outcome;
        let touched: BTreeSet<_> = out.post_state.keys().copied().collect();
        // an account the block does not touch, so only the state root can tell
        let (addr, acc) = b
            .pre_state
            .iter_mut()
            .find(|(a, s)| s.is_some() && !touched.contains(*a))
            .expect("an untouched account");
        let addr = *addr;
        let acc = acc.as_mut().unwrap();
        acc.balance += U256::from(1);
        let out = run_block(&b, chain, &codes, &side, &BlockRunOptions::default()).outcome;
        let findings =
            diff_against_chain(&b, chain, &out, Mode::Block, Comparison::BaselineVsChain);
        // before Byzantium (block 5) each receipt carries the state root after its tx: the
        // receipts root tells it too
        let kinds: Vec<Kind> = findings.iter().map(|f| f.kind).collect();
        let want = if n < 9 {
            vec![Kind::ReceiptsRoot, Kind::StateRoot]
        } else {
            vec![Kind::StateRoot]
        };
        let mut sorted = kinds.clone();
        sorted.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(sorted, want, "block {n} ({addr}): {findings:#?}");
        let root = findings.iter().find(|f| f.kind == Kind::StateRoot).unwrap();
        assert_eq!(root.expected, b.header.state_root.to_string());
    }
}

#[test]
fn hivechain_genesis_must_be_the_chains_parent() {
    let Some(root) = shared("hivechain-prague") else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let mut genesis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("genesis.json")).unwrap()).unwrap();
    genesis["alloc"]["0c2c51a0990aee1d73c1228de158688341557508"]["balance"] = "0x1".into();
    std::fs::write(
        src.path().join("genesis.json"),
        serde_json::to_vec(&genesis).unwrap(),
    )
    .unwrap();
    std::fs::copy(root.join("chain.rlp"), src.path().join("chain.rlp")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = txshadow_import::import(
        Format::Hivechain,
        &[src.path().to_path_buf()],
        out.path(),
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("genesis.json"), "{err}");
    assert!(err.contains("is not the parent"), "{err}");
}
