//! keth witnesses that lack a node: real dumps miss the node that proves some account absent.
//! A value the block only changes or never reads is a warning on the block, and the block
//! replays matching the chain; a value it reads is still an error naming the account or slot.
//! Each case is built from a real dump by removing the node a proof ends in.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use alloy_primitives::{Address, B256, Bytes, U256, address, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::{
    Nibbles, TrieAccount,
    nodes::{RlpNode, TrieNode},
};
use serde_json::Value;
use txshadow_corpus::Corpus;
use txshadow_diff::Mode;
use txshadow_import::{Format, ImportOptions, import};

use crate::common::{replay_and_diff, shared};

/// The keth sample shipped in `testdata/`.
fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/keth-mainnet/21688509.json")
}

fn load(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// The witness's state nodes by hash, and the parent's state root.
fn witness(v: &Value) -> (HashMap<B256, Bytes>, B256) {
    let nodes = v["witness"]["state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let b: Bytes = serde_json::from_value(n.clone()).unwrap();
            (keccak256(&b), b)
        })
        .collect();
    let n = hex_u64(&v["blocks"][0]["header"]["number"]);
    let parent = v["witness"]["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| hex_u64(&a["number"]) + 1 == n)
        .expect("the parent header");
    (
        nodes,
        serde_json::from_value(parent["stateRoot"].clone()).unwrap(),
    )
}

/// The hash of the last node referred to by hash on the path of `keccak(key)` under `root`
/// (the node a proof of the key ends in), and the leaf value if the key is present.
fn proof_end(nodes: &HashMap<B256, Bytes>, root: B256, key: &[u8]) -> (B256, Option<Vec<u8>>) {
    let path = Nibbles::unpack(keccak256(key));
    let (mut at, mut last) = (0, root);
    let mut node = RlpNode::word_rlp(&root);
    loop {
        let bytes = match node.as_hash() {
            Some(h) => {
                last = h;
                nodes[&h].to_vec()
            }
            None => node.to_vec(),
        };
        match TrieNode::decode(&mut bytes.as_slice()).unwrap() {
            TrieNode::EmptyRoot => return (last, None),
            TrieNode::Branch(b) => {
                let r = b.as_ref();
                let child = r
                    .children()
                    .find(|(i, _)| *i == path.get(at).unwrap())
                    .and_then(|(_, c)| c.cloned());
                match child {
                    Some(c) => (node, at) = (c, at + 1),
                    None => return (last, None),
                }
            }
            TrieNode::Extension(e) => {
                if !path.slice(at..).starts_with(&e.key) {
                    return (last, None);
                }
                (node, at) = (e.child, at + e.key.len());
            }
            TrieNode::Leaf(l) => {
                return (last, (path.slice(at..) == l.key).then_some(l.value));
            }
        }
    }
}

/// The node an account's proof ends in.
fn account_proof_end(v: &Value, a: Address) -> B256 {
    let (nodes, root) = witness(v);
    proof_end(&nodes, root, a.as_slice()).0
}

/// The node a slot's proof ends in.
fn slot_proof_end(v: &Value, a: Address, slot: U256) -> B256 {
    let (nodes, root) = witness(v);
    let leaf = proof_end(&nodes, root, a.as_slice())
        .1
        .expect("the account");
    let acc = TrieAccount::decode(&mut leaf.as_slice()).unwrap();
    proof_end(&nodes, acc.storage_root, &B256::from(slot).0).0
}

/// `src` written to `dir` without the witness node `hash`.
fn without_node(dir: &Path, src: &Path, hash: B256) -> PathBuf {
    let mut v = load(src);
    let state = v["witness"]["state"].as_array_mut().unwrap();
    let before = state.len();
    state.retain(|n| {
        let b: Bytes = serde_json::from_value(n.clone()).unwrap();
        keccak256(&b) != hash
    });
    assert_eq!(
        state.len() + 1,
        before,
        "node {hash} is in the witness once"
    );
    let p = dir.join(src.file_name().unwrap());
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

/// Imports one file into a fresh corpus: the corpus, or the reason the file failed.
fn import_one(p: &Path) -> (tempfile::TempDir, Result<Corpus, String>) {
    let out = tempfile::tempdir().unwrap();
    let s = import(
        Format::Keth,
        &[p.to_path_buf()],
        out.path(),
        &ImportOptions::default(),
    )
    .unwrap();
    if let Some((_, reason)) = s.failed.first() {
        return (out, Err(reason.clone()));
    }
    assert_eq!(s.blocks, 1, "{s:?}");
    let c = Corpus::open(out.path()).unwrap();
    (out, Ok(c))
}

/// Imports a dump with a node removed, replays it: the block matches the chain, and the
/// corpus notes and the replay's witness warnings name `account` with `how` (changed, or
/// never read). Returns whether the post-block state root was computed (and then equal to
/// the header's).
fn imports_with_warning(p: &Path, account: Address, how: &str) -> bool {
    let (_d, c) = import_one(p);
    let c = c.unwrap_or_else(|e| panic!("{}: the import failed: {e}", p.display()));
    let name = format!("account {account}");
    let notes = &c.manifest().provenance.notes;
    assert!(
        notes.iter().any(|n| n.contains(&name) && n.contains(how)),
        "no note names {name} ({how}): {notes:#?}"
    );
    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert!(findings.is_empty(), "{findings:#?}");
    let (b, o) = (&blocks[0], &outs[0]);
    assert!(o.error.is_none(), "{:?}", o.error);
    let w = o.witness.as_ref().expect("the block ran with its witness");
    assert!(w.error.is_none(), "{w:?}");
    assert!(!w.pre_state_verified, "a value is unproven");
    assert!(
        w.unproven
            .iter()
            .any(|u| u.contains(&name) && u.contains(how)),
        "{:#?}",
        w.unproven
    );
    match o.state_root {
        Some(root) => {
            assert_eq!(root, b.header.state_root);
            true
        }
        None => {
            let why = "the post-block state root cannot be computed";
            assert!(w.unproven.iter().any(|u| u.contains(why)), "{w:?}");
            false
        }
    }
}

/// The sample's one absent account (the system address the pre-block calls come from, listed
/// by the source's tracer): without the node proving it absent, the block imports with a
/// warning naming it and replays matching the chain, state root included.
#[test]
fn keth_missing_proof_of_an_unread_absent_account_is_a_warning() {
    let src = sample();
    let v = load(&src);
    let absent = address!("0xfffffffffffffffffffffffffffffffffffffffe");
    assert!(v["extra"]["preState"][absent.to_string().to_lowercase()].is_null());
    let dir = tempfile::tempdir().unwrap();
    let p = without_node(dir.path(), &src, account_proof_end(&v, absent));
    // unchanged by the block, so the root does not need the missing node
    assert!(imports_with_warning(&p, absent, "never read by the block"));
}

/// An account the block creates (a value transfer to an address that did not exist), without
/// the node proving it absent before the block: a warning, and the block matches the chain's
/// receipts and post-state; the root needs the missing node to insert the new account, so it is
/// not computed (a warning too), never guessed.
#[test]
fn keth_missing_proof_of_a_created_account_is_a_warning() {
    let Some(root) = shared("keth-mainnet") else {
        return;
    };
    let src = root.join("22615247.json");
    let v = load(&src);
    let created = address!("0x2e0a7312df40d012ff7c9b52f21b63a1a8a4520a");
    assert!(v["extra"]["preState"][created.to_string().to_lowercase()].is_null());
    let dir = tempfile::tempdir().unwrap();
    let p = without_node(dir.path(), &src, account_proof_end(&v, created));
    imports_with_warning(&p, created, "changed by the block");
}

/// The recipient of a blob tx (a rollup's batch inbox: a tx of no value to an account without
/// code), without the node its proof ends in: the block touches the account, runs no code and
/// cannot be changed by its balance or nonce, so it is written, not read: a warning, and the
/// block matches the chain. Real dumps lack the node proving such an inbox absent; here the
/// inbox holds a balance, the same path through the replay.
#[test]
fn keth_missing_proof_of_a_blob_tx_recipient_is_a_warning() {
    let Some(root) = shared("keth-mainnet") else {
        return;
    };
    let src = root.join("22615247.json");
    let v = load(&src);
    let inbox = address!("0xff00000000000000000000000000000000008453");
    let pre = &v["extra"]["preState"][inbox.to_string().to_lowercase()];
    assert!(pre["code"].is_null() || pre["code"] == "0x", "{pre}");
    let dir = tempfile::tempdir().unwrap();
    let p = without_node(dir.path(), &src, account_proof_end(&v, inbox));
    imports_with_warning(&p, inbox, "touched by the block without running code");
}

/// An account the block reads and leaves unchanged (a contract it calls), without its leaf: the
/// file fails, naming the account and the missing node.
#[test]
fn keth_missing_proof_of_a_read_account_is_an_error() {
    let src = sample();
    let v = load(&src);
    let called = address!("0x1923dfee706a8e78157416c29cbccfde7cdf4102");
    let node = account_proof_end(&v, called);
    let dir = tempfile::tempdir().unwrap();
    let (_d, r) = import_one(&without_node(dir.path(), &src, node));
    let e = r.map(|_| ()).expect_err("the import fails");
    for want in [
        format!("account {called}"),
        "the block reads it".into(),
        format!("trie node {node}"),
    ] {
        assert!(e.contains(&want), "want {want:?} in: {e}");
    }
}

/// A slot the block reads and does not change, without the node its proof ends in: the file
/// fails, naming the slot and its account.
#[test]
fn keth_missing_proof_of_a_read_slot_is_an_error() {
    let src = sample();
    let v = load(&src);
    let a = address!("0x80a64c6d7f12c47b7c66c5b4e20e72bc1fcd5d9e");
    let acc = &v["extra"]["preState"][a.to_string().to_lowercase()];
    let (slot, _) = acc["storage"].as_object().unwrap().iter().next().unwrap();
    let slot: U256 = slot.parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_d, r) = import_one(&without_node(dir.path(), &src, slot_proof_end(&v, a, slot)));
    let e = r.map(|_| ()).expect_err("the import fails");
    let want = format!("slot {slot:#x} of {a}");
    assert!(
        e.contains(&want) && e.contains("the block reads it"),
        "want {want:?} in: {e}"
    );
}
