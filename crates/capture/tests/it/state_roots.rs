//! State roots from witnesses: every zeth and keth block's pre-state is checked against its
//! parent's state root and its post-block state root is the header's, exactly; a capture from
//! anvil with `--witness` is explained block by block (anvil's roots are not canonical).

use std::collections::{BTreeMap, HashSet};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::{Nibbles, TrieAccount};
use txshadow_capture::import::Format;
use txshadow_corpus::{BlockRecord, Corpus};
use txshadow_diff::{Kind, Mode, Side, diff_against_chain};
use txshadow_replay::{BlockOutcome, BlockRunOptions, Codes, SideConfig, run_block};
use txshadow_trie::{NodeSet, SparseTrie};

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
                    Side::BaselineVsChain,
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
        Side::BaselineVsChain,
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
        Side::BaselineVsChain,
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].kind, f[0].field.as_str()),
        (Kind::Error, "state_root")
    );
}

/// The slots of `a` (among `slots`) that anvil's trie at block `n` holds as zero-valued leaves
/// (a canonical trie holds no zero value: a slot set to zero is deleted).
fn zero_leaves(
    client: &txshadow_testnode::Client,
    n: u64,
    a: Address,
    slots: &[U256],
) -> Vec<U256> {
    if slots.is_empty() {
        return vec![];
    }
    let keys: Vec<B256> = slots.iter().map(|k| B256::from(*k)).collect();
    let p = client
        .call(
            "eth_getProof",
            serde_json::json!([a, keys, format!("{n:#x}")]),
        )
        .unwrap();
    let root: B256 = serde_json::from_value(p["storageHash"].clone()).unwrap();
    p["storageProof"]
        .as_array()
        .unwrap()
        .iter()
        .zip(slots)
        .filter(|(sp, k)| {
            let proof: Vec<Bytes> = serde_json::from_value(sp["proof"].clone()).unwrap();
            let key = Nibbles::unpack(keccak256(B256::from(**k)));
            alloy_trie::proof::verify_proof(root, key, Some(vec![0x80]), &proof).is_ok()
        })
        .map(|(_, k)| *k)
        .collect()
}

/// Whether anvil's trie at block `n` (root `root`) holds `a` as an empty account.
fn kept_empty(client: &txshadow_testnode::Client, n: u64, root: B256, a: Address) -> bool {
    let p = client
        .call(
            "eth_getProof",
            serde_json::json!([a, [], format!("{n:#x}")]),
        )
        .unwrap();
    let proof: Vec<Bytes> = serde_json::from_value(p["accountProof"].clone()).unwrap();
    let empty = alloy_rlp::encode(TrieAccount::default());
    alloy_trie::proof::verify_proof(root, Nibbles::unpack(keccak256(a)), Some(empty), &proof)
        .is_ok()
}

/// The post-block root as anvil builds it: the block's changes written into the witness's
/// tries, except that the slots in `zero_leaves` keep a leaf holding zero instead of being
/// deleted, and the accounts in `empty` stay as empty accounts instead of being deleted.
fn root_as_anvil(
    b: &BlockRecord,
    o: &BlockOutcome,
    zero_leaves: &BTreeMap<Address, Vec<U256>>,
    empty: &[Address],
) -> B256 {
    let w = b.witness.as_ref().unwrap();
    let nodes = NodeSet::new(w.nodes.iter().cloned());
    let mut accounts = SparseTrie::new(w.parent_state_root());
    for (a, post) in &o.post_state {
        let key = Nibbles::unpack(keccak256(a));
        let Some(post) = post else {
            if empty.contains(a) {
                let leaf = alloy_rlp::encode(TrieAccount::default());
                accounts.insert(&nodes, &key, leaf).unwrap();
            } else {
                accounts.remove(&nodes, &key).unwrap();
            }
            continue;
        };
        let pre = accounts
            .get(&nodes, &key)
            .unwrap()
            .map(|l| TrieAccount::decode(&mut l.as_slice()).unwrap());
        let mut storage = match pre {
            Some(p) if !o.storage_reset.contains(a) => SparseTrie::new(p.storage_root),
            _ => SparseTrie::empty(),
        };
        let zero = zero_leaves.get(a).cloned().unwrap_or_default();
        let mut writes: Vec<(U256, U256)> = post.storage.iter().map(|(k, v)| (*k, *v)).collect();
        writes.extend(zero.iter().map(|k| (*k, U256::ZERO)));
        for (k, v) in writes {
            let sk = Nibbles::unpack(keccak256(B256::from(k)));
            if !v.is_zero() {
                storage.insert(&nodes, &sk, alloy_rlp::encode(v)).unwrap();
            } else if zero.contains(&k) {
                storage.insert(&nodes, &sk, vec![0x80]).unwrap();
            } else {
                storage.remove(&nodes, &sk).unwrap();
            }
        }
        let acc = TrieAccount {
            nonce: post.nonce,
            balance: post.balance,
            storage_root: storage.root(),
            code_hash: post.code_hash,
        };
        accounts
            .insert(&nodes, &key, alloy_rlp::encode(acc))
            .unwrap();
    }
    accounts.root()
}

/// A capture from anvil with `--witness`, block by block. anvil's roots are not canonical, and
/// the witness shows exactly where: block 1's parent (genesis) carries the empty-trie root
/// although the dev accounts are funded, so its pre-state is proved under the root of anvil's
/// genesis trie (recorded apart); every later pre-state is proved by anvil's own proofs at the
/// parent header's root; a block's canonical root equals anvil's unless
/// anvil keeps a zero-valued storage leaf (a slot set and cleared within the block) or a
/// touched empty account (which EIP-161 deletes), and with those two conventions the witness
/// reproduces every anvil root.
#[test]
fn anvil_capture_with_witness_roots_and_anvil_quirks() {
    use txshadow_capture::rpc::{BlockRange, CaptureOptions, capture};
    use txshadow_testnode::{Anvil, traffic};
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let t = traffic::run(&node.url(), &Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = CaptureOptions::new(
        &node.url(),
        BlockRange::Span {
            from: 1,
            to: t.last_block,
        },
        dir.path().to_path_buf(),
    )
    .unwrap();
    opts.witness = true;
    opts.client.concurrency = 4;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(capture(&opts, &|_| {})).unwrap();
    let c = Corpus::open(dir.path()).unwrap();
    assert!(
        c.manifest()
            .provenance
            .notes
            .iter()
            .any(|n| n.starts_with("witness: "))
    );
    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert_eq!(blocks.len() as u64, t.last_block);
    let client = txshadow_testnode::Client::new(&node.url());
    let (mut exact, mut quirk_blocks, mut zero_leaves_seen, mut empty_seen) = (0, 0, 0, 0);
    for (b, o) in blocks.iter().zip(&outs) {
        let n = b.number();
        let w = b.witness.as_ref().expect("captured with --witness");
        assert_eq!(w.parent.hash_slow(), b.header.parent_hash);
        // anvil has no debug_executionWitness: the proofs at the parent block
        assert!(
            w.source.as_deref().unwrap().starts_with("eth_getProof"),
            "{:?}",
            w.source
        );
        let wo = o.witness.as_ref().unwrap();
        if n == 1 {
            // anvil's genesis header carries the empty-trie root although the dev accounts
            // are funded: the capture records the root of anvil's genesis trie, which every
            // proof starts from, and the pre-state is proved under it
            assert_eq!(w.parent.state_root, alloy_trie::EMPTY_ROOT_HASH);
            let g = w.genesis_trie_root.expect("the node's genesis trie root");
            assert_ne!(g, alloy_trie::EMPTY_ROOT_HASH);
            assert_eq!(w.parent_state_root(), g);
            assert_eq!(wo.parent_state_root, g);
        } else {
            assert!(w.genesis_trie_root.is_none());
        }
        // anvil's own proofs at the parent prove every pre-state account and slot
        assert!(
            wo.pre_state_verified && wo.error.is_none(),
            "block {n}: {wo:?}"
        );
        assert!(o.state_root_exact);
        // the slots anvil keeps as zero leaves, and the touched empty accounts it keeps
        let mut zero = BTreeMap::new();
        let mut empty = vec![];
        for (a, post) in &o.post_state {
            if post.is_none() {
                if kept_empty(&client, n, b.header.state_root, *a) {
                    empty.push(*a);
                }
                continue;
            }
            let Some(Some(pre)) = b.pre_state.get(a) else {
                continue;
            };
            let slots: Vec<U256> = pre.storage.keys().copied().collect();
            let z = zero_leaves(&client, n, *a, &slots);
            if !z.is_empty() {
                zero.insert(*a, z);
            }
        }
        // with anvil's conventions, the witness gives anvil's root exactly
        assert_eq!(
            root_as_anvil(b, o, &zero, &empty),
            b.header.state_root,
            "block {n}"
        );
        let canonical = o.state_root.unwrap();
        // zero leaves this block wrote (those already in the parent's trie are in the witness)
        let fresh: usize = zero
            .iter()
            .map(|(a, z)| {
                z.iter()
                    .filter(|k| {
                        o.post_state[a]
                            .as_ref()
                            .is_some_and(|p| p.storage.get(*k).is_some_and(|v| v.is_zero()))
                    })
                    .count()
            })
            .sum();
        if canonical == b.header.state_root {
            exact += 1;
        } else {
            // a canonical trie deletes a slot set to zero and a touched empty account (EIP-161);
            // anvil keeps a zero leaf and the empty account
            assert!(
                fresh > 0 || !empty.is_empty(),
                "block {n}: the roots differ without a zero leaf or a kept empty account"
            );
            quirk_blocks += 1;
            zero_leaves_seen += fresh;
            empty_seen += empty.len();
        }
    }
    eprintln!(
        "anvil: {exact} blocks exact; {quirk_blocks} blocks differ by anvil's conventions \
         ({zero_leaves_seen} zero leaves, {empty_seen} kept empty accounts)"
    );
    assert!(exact >= 1 && quirk_blocks >= 1, "{exact} {quirk_blocks}");
    // the differences the replay reports are exactly these roots
    let roots = findings
        .iter()
        .filter(|f| f.kind == Kind::StateRoot)
        .count();
    assert_eq!(roots, quirk_blocks, "{findings:#?}");
    assert_eq!(findings.len(), roots, "{findings:#?}");
}
