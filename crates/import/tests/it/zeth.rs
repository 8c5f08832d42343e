//! zeth mainnet caches: every block reproduces the header's gas used, logs bloom and receipts
//! root, and the post-state at N (from `eth_getProof`) of every account and slot it touches.

use std::path::{Path, PathBuf};

use alloy_primitives::{U256, address};
use txshadow_corpus::{BlockRecord, Corpus};
use txshadow_diff::{Comparison, Kind, Mode, diff_against_chain};
use txshadow_import::{Format, ImportError, ImportOptions, import};
use txshadow_replay::BlockOutcome;

use crate::common::{replay_and_diff, shared};

/// The failure of an import of one bad input file: listed with its file and reason (the import
/// itself goes on with the other inputs).
fn import_err(inputs: &[PathBuf]) -> ImportError {
    let out = tempfile::tempdir().unwrap();
    let s = import(Format::Zeth, inputs, out.path(), &ImportOptions::default()).unwrap();
    assert_eq!(s.blocks, 0);
    let (path, reason) = s
        .failed
        .into_iter()
        .next()
        .expect("the input is listed as failed");
    ImportError::Source { path, reason }
}

/// Changes one expected post-state balance and one slot in memory: each must show as a State
/// finding, so the post-state check is live.
fn post_state_check_bites(c: &Corpus, b: &BlockRecord, out: &BlockOutcome) {
    let chain = &c.manifest().chain;
    let post = b.expected.post_state.as_ref().unwrap();
    let (addr, acc) = post
        .iter()
        .find_map(|(a, s)| Some((*a, s.as_ref()?)))
        .unwrap();
    let mut m = b.clone();
    let mut changed = acc.clone();
    changed.balance += U256::from(1);
    m.expected
        .post_state
        .as_mut()
        .unwrap()
        .insert(addr, Some(changed));
    let f = diff_against_chain(&m, chain, out, Mode::Block, Comparison::BaselineVsChain);
    assert!(
        f.iter()
            .any(|f| f.kind == Kind::State && f.field == format!("state.{addr}.balance")),
        "{f:#?}"
    );
    let (addr, acc, slot) = post
        .iter()
        .find_map(|(a, s)| {
            let s = s.as_ref()?;
            Some((*a, s, *s.storage.keys().next()?))
        })
        .unwrap();
    let mut m = b.clone();
    let mut changed = acc.clone();
    *changed.storage.get_mut(&slot).unwrap() += U256::from(1);
    m.expected
        .post_state
        .as_mut()
        .unwrap()
        .insert(addr, Some(changed));
    let f = diff_against_chain(&m, chain, out, Mode::Block, Comparison::BaselineVsChain);
    assert!(
        f.iter().any(|f| f.kind == Kind::State
            && f.field == format!("state.{addr}.storage[{slot:#x}]")),
        "{f:#?}"
    );
}

#[test]
fn zeth_mainnet_block_mode_matches_chain() {
    let Some(root) = shared("zeth-mainnet") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let summary = import(Format::Zeth, &[root], dir.path(), &ImportOptions::default()).unwrap();
    assert_eq!((summary.blocks, summary.txs), (10, 228), "{summary:?}");
    let c = Corpus::open(dir.path()).unwrap();
    assert_eq!(c.manifest().blocks.len(), 10);
    assert_eq!(c.manifest().tx_count(), 228);
    assert_eq!(c.verify().unwrap().blocks, 10);

    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert!(findings.is_empty(), "{findings:#?}");
    for (b, o) in blocks.iter().zip(&outs) {
        assert!(o.error.is_none(), "{}: {:?}", b.number(), o.error);
        assert!(
            o.unknown_accounts.is_empty(),
            "{}: the replay read accounts the pre-state lacks: {:?}",
            b.number(),
            o.unknown_accounts
        );
        assert_eq!(o.txs.len(), b.transactions.len());
        // every proved account has an expected post value
        let post = b.expected.post_state.as_ref().unwrap();
        assert_eq!(post.len(), b.pre_state.len(), "{}", b.number());
    }

    // the post-state check covers accounts and slots, and changes in them
    let accounts: usize = blocks
        .iter()
        .map(|b| b.expected.post_state.as_ref().unwrap().len())
        .sum();
    let slots: usize = blocks
        .iter()
        .flat_map(|b| b.expected.post_state.as_ref().unwrap().values().flatten())
        .map(|a| a.storage.len())
        .sum();
    eprintln!("ZZ {accounts} accounts, {slots} slots");
    assert!(
        accounts > 500 && slots > 1000,
        "{accounts} accounts, {slots} slots"
    );
    let changed = blocks
        .iter()
        .flat_map(|b| {
            let post = b.expected.post_state.as_ref().unwrap();
            post.iter().filter(|(a, s)| b.pre_state.get(*a) != Some(*s))
        })
        .count();
    assert_eq!(changed, 445);
    let i = blocks
        .iter()
        .position(|b| b.number() == 19_426_587)
        .unwrap();
    post_state_check_bites(&c, &blocks[i], &outs[i]);
    // tx mode (each tx on its own pre-state) agrees too
    let (_, _, tx_findings) = replay_and_diff(&c, Mode::Tx);
    assert!(tx_findings.is_empty(), "{tx_findings:#?}");

    // Cancun's first block: the beacon-roots call writes the contract's two ring-buffer slots
    let beacon = address!("0x000F3df6D732807Ef1319fB7B8bB8522d0Beac02");
    let b = &blocks[i];
    let pre = b.pre_state[&beacon].as_ref().unwrap();
    let post = b.expected.post_state.as_ref().unwrap()[&beacon]
        .as_ref()
        .unwrap();
    let ts = U256::from(b.header.timestamp % 8191);
    assert_eq!(pre.storage[&ts], U256::ZERO);
    assert_eq!(post.storage[&ts], U256::from(b.header.timestamp));
    assert_eq!(
        outs[i].post_state[&beacon].as_ref().unwrap().storage[&ts],
        post.storage[&ts]
    );
}

#[test]
fn zeth_dao_block_drains_the_dao_accounts() {
    let Some(root) = shared("zeth-mainnet") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = import(
        Format::Zeth,
        &[root.join("1-1920000.json")],
        dir.path(),
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!((s.blocks, s.txs), (1, 4));
    let c = Corpus::open(dir.path()).unwrap();
    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert!(findings.is_empty(), "{findings:#?}");
    let b = &blocks[0];
    let post = b.expected.post_state.as_ref().unwrap();
    // accounts with a balance at N-1 and none at N: the drained DAO accounts
    let drained: Vec<_> = b
        .pre_state
        .iter()
        .filter(|(a, s)| {
            s.as_ref().is_some_and(|s| !s.balance.is_zero())
                && post[*a].as_ref().is_some_and(|p| p.balance.is_zero())
        })
        .map(|(a, _)| *a)
        .collect();
    assert!(drained.len() > 50, "{} drained", drained.len());
    for a in &drained {
        assert!(outs[0].post_state[a].as_ref().unwrap().balance.is_zero());
    }
    // the refund contract receives them
    let refund = address!("0xbf4ed7b27f1d666546e30d74d50d173d20bca754");
    let before = b.pre_state[&refund].as_ref().unwrap().balance;
    let after = outs[0].post_state[&refund].as_ref().unwrap().balance;
    assert!(after > before + U256::from(10u128.pow(18) * 1_000_000));
}

#[test]
fn zeth_files_one_by_one_and_resume() {
    let Some(root) = shared("zeth-mainnet") else {
        return;
    };
    let files = [root.join("1-1149999.json"), root.join("1-2463000.json")];
    let dir = tempfile::tempdir().unwrap();
    let s = import(Format::Zeth, &files, dir.path(), &ImportOptions::default()).unwrap();
    assert_eq!((s.blocks, s.txs, s.skipped_existing), (2, 1, 0));
    let s = import(Format::Zeth, &files, dir.path(), &ImportOptions::default()).unwrap();
    assert_eq!((s.blocks, s.skipped_existing), (0, 2));
    // ancestors' hashes come from the cache's blocks
    let c = Corpus::open(dir.path()).unwrap();
    let b = c.load_blocks().unwrap().remove(0);
    assert_eq!(b.number(), 1_149_999);
    assert_eq!(
        b.block_hashes.keys().copied().collect::<Vec<_>>(),
        vec![1_149_997, 1_149_998]
    );
}

fn tampered(dir: &Path, src: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
    edit(&mut v);
    let p = dir.join(src.file_name().unwrap());
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

#[test]
fn zeth_malformed_input_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("1-5.json");
    std::fs::write(&p, r#"{"full_blocks": [], "proofs": []}"#).unwrap();
    let err = import_err(std::slice::from_ref(&p));
    assert!(
        matches!(&err, ImportError::Source { path, reason } if *path == p && reason.contains("full_blocks is empty")),
        "{err}"
    );
    std::fs::write(&p, r#"{"full_blocks": [}"#).unwrap();
    let err = import_err(std::slice::from_ref(&p));
    assert!(
        matches!(&err, ImportError::Source { path, reason } if *path == p && reason.contains("invalid JSON")),
        "{err}"
    );

    let Some(root) = shared("zeth-mainnet") else {
        return;
    };
    // a pre-state balance that its proof does not support
    let p = tampered(dir.path(), &root.join("1-1149999.json"), |v| {
        let proof = &mut v["proofs"][0][1];
        let b = U256::from_str_radix(
            proof["balance"].as_str().unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap();
        proof["balance"] = format!("{:#x}", b + U256::from(1)).into();
    });
    let err = import_err(std::slice::from_ref(&p));
    assert!(
        matches!(&err, ImportError::Source { path, reason } if *path == p && reason.contains("account proof")),
        "{err}"
    );
    // a flat list that disagrees with the proofs
    let p = tampered(dir.path(), &root.join("1-1149999.json"), |v| {
        v["balance"][0][1] = "0x1".into();
    });
    let err = import_err(std::slice::from_ref(&p));
    assert!(
        matches!(&err, ImportError::Source { path, reason } if *path == p && reason.contains("its proof says")),
        "{err}"
    );
}

/// Real zeth caches carry empty `0x` entries in storage proofs: after the last node of a
/// zero-valued slot's proof, and between the nodes of a slot with a value. They are no trie
/// nodes: the block imports, verifies and replays matching the chain, state root included.
#[test]
fn empty_proof_entries_are_not_trie_nodes() {
    let Some(dir) = shared("zeth-mainnet") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (mut zero, mut valued) = (0, 0);
    let src = tampered(tmp.path(), &dir.join("1-2675000.json"), |v| {
        for entry in v["proofs"].as_array_mut().unwrap() {
            for s in entry[1]["storageProof"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                let is_zero =
                    U256::from_str_radix(s["value"].as_str().unwrap().trim_start_matches("0x"), 16)
                        .unwrap()
                        .is_zero();
                let proof = s["proof"].as_array_mut().unwrap();
                if is_zero {
                    proof.push("0x".into());
                    zero += 1;
                } else if proof.len() > 1 {
                    proof.insert(1, "0x".into());
                    valued += 1;
                }
            }
        }
    });
    assert!(
        zero > 0 && valued > 0,
        "the block has both shapes: {zero} {valued}"
    );
    let out = tmp.path().join("c");
    let s = import(Format::Zeth, &[src], &out, &ImportOptions::default()).unwrap();
    assert!(s.failed.is_empty(), "{:?}", s.failed);
    let c = Corpus::open(&out).unwrap();
    c.verify().unwrap();
    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert_eq!(blocks.len(), 1);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(outs[0].state_root, Some(blocks[0].header.state_root));
}
