//! State roots from witnesses: every zeth and keth block's pre-state is checked against its
//! parent's state root and its post-block state root is the header's, exactly.

use std::collections::HashSet;

use alloy_primitives::{B256, Bytes, U256};
use txshadow_corpus::{BlockRecord, Corpus};
use txshadow_diff::{Comparison, Kind, Mode, diff_against_chain};
use txshadow_import::Format;
use txshadow_replay::{BlockOutcome, BlockRunOptions, Codes, SideConfig, run_block};

use crate::common::{import_to_temp, replay_and_diff, shared};

fn check_exact(blocks: &[BlockRecord], outs: &[BlockOutcome]) {
    for (b, o) in blocks.iter().zip(outs) {
        let w = o
            .witness
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no witness", b.number()));
        assert!(
            w.pre_state_verified && w.error.is_none(),
            "{}: {w:?}",
            b.number()
        );
        assert!(o.state_root_exact, "{}", b.number());
        assert_eq!(
            o.state_root,
            Some(b.header.state_root),
            "block {}",
            b.number()
        );
        let parent = b.witness.as_ref().unwrap().parent.state_root;
        assert_eq!(w.parent_state_root, parent);
        // before Byzantium the receipts carry the state root after each tx: from the witness
        // too (except at the DAO block, whose irregular change precedes the txs)
        let pre_byzantium = b.number() < 4_370_000 && b.number() != 1_920_000;
        assert_eq!(w.receipt_roots, pre_byzantium, "block {}", b.number());
        eprintln!(
            "block {:>9}: {:>4} accounts {:>4} slots, witness {:>5} nodes {:>8} bytes, verify {:>7} us, root {:>6} us",
            b.number(),
            w.accounts,
            w.slots,
            w.nodes,
            w.bytes,
            w.verify_micros,
            w.root_micros
        );
    }
}

#[test]
fn zeth_and_keth_blocks_get_their_header_state_roots() {
    for (name, format, n) in [
        ("zeth-mainnet", Format::Zeth, 10),
        ("keth-mainnet", Format::Keth, 2),
    ] {
        let Some(root) = shared(name) else {
            continue;
        };
        let (_dir, c) = import_to_temp(format, &[root]);
        assert_eq!(c.verify().unwrap().blocks, n);
        for mode in [Mode::Block, Mode::Tx] {
            let (blocks, outs, findings) = replay_and_diff(&c, mode);
            assert!(findings.is_empty(), "{name} {mode:?}: {findings:#?}");
            assert_eq!(blocks.len(), n);
            check_exact(&blocks, &outs);
            // the pre-Byzantium receipts roots are checked: a wrong one is a finding
            if let Some(i) = blocks.iter().position(|b| b.number() == 1_150_000) {
                let mut m = blocks[i].clone();
                m.header.receipts_root = B256::ZERO;
                let f = diff_against_chain(
                    &m,
                    &c.manifest().chain,
                    &outs[i],
                    mode,
                    Comparison::BaselineVsChain,
                );
                assert!(f.iter().any(|f| f.kind == Kind::ReceiptsRoot), "{f:#?}");
            }
        }
    }
}

fn run(c: &Corpus, b: &BlockRecord) -> BlockOutcome {
    let blocks = std::slice::from_ref(b);
    let store = c.load_codes(blocks).unwrap();
    let codes = Codes::from_store(&store, b.code_hashes());
    run_block(
        b,
        &c.manifest().chain,
        &codes,
        &SideConfig::chain("baseline"),
        &BlockRunOptions::default(),
    )
    .outcome
}

fn block(c: &Corpus, number: u64) -> BlockRecord {
    let e = c
        .manifest()
        .blocks
        .iter()
        .find(|e| e.number == number)
        .unwrap();
    c.load_block(e).unwrap()
}

#[test]
fn an_altered_pre_state_value_fails_the_block_naming_it() {
    // the keth sample shipped in testdata/
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/keth-mainnet/21688509.json");
    let (_dir, c) = import_to_temp(Format::Keth, &[sample]);
    let b = block(&c, 21_688_509);
    assert!(run(&c, &b).error.is_none());

    // one balance, one greater by one wei
    let (addr, acc) = b
        .pre_state
        .iter()
        .find_map(|(a, s)| Some((*a, s.as_ref()?)))
        .unwrap();
    let mut m = b.clone();
    let mut changed = acc.clone();
    changed.balance += U256::from(1);
    m.pre_state.insert(addr, Some(changed));
    let out = run(&c, &m);
    let e = out.error.as_deref().unwrap();
    let root = b.witness.as_ref().unwrap().parent.state_root;
    assert!(
        e.starts_with(&format!(
            "pre-state does not match the parent state root {root}"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "account {addr} balance: {} in the corpus, {} in the parent state",
            acc.balance + U256::from(1),
            acc.balance
        )),
        "{e}"
    );
    let w = out.witness.as_ref().unwrap();
    assert!(!w.pre_state_verified);
    assert!(
        out.txs.is_empty(),
        "a block whose pre-state is wrong is not replayed"
    );
    let f = diff_against_chain(
        &m,
        &c.manifest().chain,
        &out,
        Mode::Block,
        Comparison::BaselineVsChain,
    );
    assert!(
        f.iter()
            .any(|f| f.kind == Kind::Error && f.got.contains(&addr.to_string())),
        "{f:#?}"
    );

    // one slot
    let (addr, acc, slot) = b
        .pre_state
        .iter()
        .find_map(|(a, s)| {
            let s = s.as_ref()?;
            Some((*a, s, *s.storage.keys().next()?))
        })
        .unwrap();
    let mut m = b.clone();
    let mut changed = acc.clone();
    let v = changed.storage.get_mut(&slot).unwrap();
    *v ^= U256::from(1);
    let bad = *v;
    m.pre_state.insert(addr, Some(changed));
    let e = run(&c, &m).error.unwrap();
    assert!(
        e.contains(&format!(
            "slot {slot:#x} of {addr}: {bad:#x} in the corpus, {:#x} in the parent state",
            acc.storage[&slot]
        )),
        "{e}"
    );

    // an account the corpus says did not exist
    let mut m = b.clone();
    m.pre_state.insert(addr, None);
    let e = run(&c, &m).error.unwrap();
    assert!(
        e.contains(&format!(
            "account {addr}: absent in the corpus, the parent state has it"
        )),
        "{e}"
    );
}

/// The nodes of the `eth_getProof` results at `n - 1` in a zeth cache.
fn parent_proof_nodes(path: &std::path::Path, n: u64) -> HashSet<Bytes> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut out = HashSet::new();
    for p in v["proofs"].as_array().unwrap() {
        if p[0]["block_no"].as_u64() != Some(n - 1) {
            continue;
        }
        let mut nodes: Vec<&serde_json::Value> =
            p[1]["accountProof"].as_array().unwrap().iter().collect();
        for s in p[1]["storageProof"].as_array().into_iter().flatten() {
            nodes.extend(s["proof"].as_array().unwrap());
        }
        out.extend(
            nodes
                .into_iter()
                .map(|n| serde_json::from_value::<Bytes>(n.clone()).unwrap()),
        );
    }
    out
}

#[test]
fn a_missing_collapse_sibling_is_named_and_no_root_is_guessed() {
    let Some(root) = shared("zeth-mainnet") else {
        return;
    };
    let file = root.join("1-19426587.json");
    let (_dir, c) = import_to_temp(Format::Zeth, std::slice::from_ref(&file));
    let b = block(&c, 19_426_587);
    // the witness holds nodes that only the proofs at N supply: the siblings that the block's
    // slot deletions collapse branches onto
    let at_parent = parent_proof_nodes(&file, 19_426_587);
    let w = b.witness.as_ref().unwrap();
    let extra: Vec<&Bytes> = w.nodes.iter().filter(|n| !at_parent.contains(*n)).collect();
    assert!(!extra.is_empty());
    let mut m = b.clone();
    m.witness
        .as_mut()
        .unwrap()
        .nodes
        .retain(|n| at_parent.contains(n));
    let out = run(&c, &m);
    assert!(out.error.is_none(), "{:?}", out.error);
    let wo = out.witness.as_ref().unwrap();
    assert!(
        wo.pre_state_verified,
        "the proofs at N-1 prove the pre-state"
    );
    let e = wo.error.as_deref().unwrap();
    assert!(
        e.starts_with("the post-block state root cannot be computed from the witness: slot "),
        "{e}"
    );
    assert!(
        e.contains(
            "is not in the witness (needed to delete (collapsing the branch above it onto it))"
        ),
        "{e}"
    );
    let missing = extra
        .iter()
        .any(|n| e.contains(&alloy_primitives::keccak256(n).to_string()));
    assert!(missing, "the error names one of the removed nodes: {e}");
    assert!(!out.state_root_exact);
    // the diff reports it as an error of the state root, not as a wrong root
    let f = diff_against_chain(
        &m,
        &c.manifest().chain,
        &out,
        Mode::Block,
        Comparison::BaselineVsChain,
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].kind, f[0].field.as_str()),
        (Kind::Error, "state_root")
    );
}
