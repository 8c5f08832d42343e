//! The sparse trie against alloy-trie's `HashBuilder` over the same key sets.

use std::{collections::BTreeMap, sync::Arc};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_trie::{
    EMPTY_ROOT_HASH, HashBuilder, KECCAK_EMPTY, Nibbles, TrieAccount, proof::ProofRetainer,
};

use crate::{AccountUpdate, Key, Need, NodeSet, SparseError, SparseTrie, StateTrie, witness};

type Kv = BTreeMap<B256, Vec<u8>>;

/// The root of `kv` and the nodes on the paths to `targets` (all nodes when `targets` is all
/// keys), as alloy-trie's hash builder gives them.
fn build(kv: &Kv, targets: impl IntoIterator<Item = B256>) -> (B256, Vec<Bytes>) {
    let retainer = ProofRetainer::from_iter(targets.into_iter().map(Nibbles::unpack));
    let mut hb = HashBuilder::default().with_proof_retainer(retainer);
    for (k, v) in kv {
        hb.add_leaf(Nibbles::unpack(k), v);
    }
    let root = hb.root();
    let nodes = hb.take_proof_nodes().into_inner().into_values().collect();
    (root, nodes)
}

fn root_of(kv: &Kv) -> B256 {
    build(kv, []).0
}

fn key(i: u64) -> B256 {
    keccak256(i.to_be_bytes())
}

fn value(i: u64) -> Vec<u8> {
    alloy_rlp::encode(U256::from(i + 1) << 100)
}

/// Applies `ops` (`Some` sets, `None` deletes) to a sparse trie revealed from `nodes` and to a
/// map, and checks that both give the same root.
fn check(kv: &Kv, nodes: Vec<Bytes>, ops: &[(B256, Option<Vec<u8>>)]) -> Result<(), SparseError> {
    let (root, _) = build(kv, []);
    let set = NodeSet::new(nodes);
    let mut t = SparseTrie::new(root);
    let mut want = kv.clone();
    for (k, v) in ops {
        let key = Nibbles::unpack(k);
        match v {
            Some(v) => {
                t.insert(&set, &key, v.clone())?;
                want.insert(*k, v.clone());
            }
            None => {
                let had = t.remove(&set, &key)?;
                assert_eq!(had, want.remove(k).is_some());
            }
        }
    }
    assert_eq!(t.root(), root_of(&want), "{} keys left", want.len());
    Ok(())
}

#[test]
fn inserts_updates_deletes_match_hash_builder() {
    let kv: Kv = (0..300).map(|i| (key(i), value(i))).collect();
    let (_, all) = build(&kv, kv.keys().copied());
    let mut ops = vec![];
    for i in 0..300u64 {
        match i % 5 {
            0 | 1 => ops.push((key(i), None)),
            2 => ops.push((key(i), Some(value(i + 1000)))),
            _ => {}
        }
        if i % 3 == 0 {
            ops.push((key(10_000 + i), Some(value(i))));
        }
    }
    check(&kv, all, &ops).unwrap();
}

#[test]
fn reads_prove_presence_and_absence() {
    let kv: Kv = (0..50).map(|i| (key(i), value(i))).collect();
    let targets = [key(3), key(7), key(99)];
    let (root, nodes) = build(&kv, targets);
    let set = NodeSet::new(nodes);
    let mut t = SparseTrie::new(root);
    assert_eq!(
        t.get(&set, &Nibbles::unpack(key(3))).unwrap(),
        Some(value(3))
    );
    assert_eq!(
        t.get(&set, &Nibbles::unpack(key(7))).unwrap(),
        Some(value(7))
    );
    assert_eq!(t.get(&set, &Nibbles::unpack(key(99))).unwrap(), None);
    // a key whose path the witness does not cover
    let e = t.get(&set, &Nibbles::unpack(key(20))).unwrap_err();
    assert!(
        matches!(
            e,
            SparseError::MissingNode {
                need: Need::Read,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn deleting_everything_gives_the_empty_root() {
    for n in 1..6u64 {
        let kv: Kv = (0..n).map(|i| (key(i), value(i))).collect();
        let (_, all) = build(&kv, kv.keys().copied());
        let ops: Vec<_> = (0..n).map(|i| (key(i), None)).collect();
        check(&kv, all.clone(), &ops).unwrap();
        let set = NodeSet::new(all);
        let mut t = SparseTrie::new(root_of(&kv));
        for i in 0..n {
            t.remove(&set, &Nibbles::unpack(key(i))).unwrap();
        }
        assert_eq!(t.root(), EMPTY_ROOT_HASH);
    }
}

/// Keys chosen by their nibbles, to build extensions and force every collapse shape.
fn raw(prefix: &[u8], last: u8) -> B256 {
    let mut b = [0u8; 32];
    b[..prefix.len()].copy_from_slice(prefix);
    b[31] = last;
    B256::from(b)
}

#[test]
fn collapses_merge_leaves_and_extensions() {
    // 0x11.. and 0x12..: an extension (0x1) over a branch; 0x2..: a sibling at the root
    let keys = [
        raw(&[0x11, 0x11], 1),
        raw(&[0x11, 0x12], 2),
        raw(&[0x12], 3),
        raw(&[0x20], 4),
        raw(&[0x20, 0x01], 5),
    ];
    let kv: Kv = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, value(i as u64)))
        .collect();
    let (_, all) = build(&kv, keys);
    // every order of deleting two keys, then re-inserting one
    for a in 0..keys.len() {
        for b in 0..keys.len() {
            if a == b {
                continue;
            }
            let ops = vec![(keys[a], None), (keys[b], None), (keys[a], Some(value(77)))];
            check(&kv, all.clone(), &ops).unwrap();
        }
    }
}

#[test]
fn inline_nodes_are_revealed_without_the_witness() {
    // keys that differ only in the last nibble with one-byte values: leaves shorter than a hash,
    // embedded in their branch
    let mut kv = Kv::new();
    for i in 0..3u8 {
        kv.insert(raw(&[0xab], i), vec![i + 1]);
    }
    kv.insert(raw(&[0xcd], 0), value(9));
    let (_, all) = build(&kv, kv.keys().copied());
    check(
        &kv,
        all.clone(),
        &[(raw(&[0xab], 0), None), (raw(&[0xab], 1), None)],
    )
    .unwrap();
    check(
        &kv,
        all,
        &[(raw(&[0xab], 5), Some(vec![7])), (raw(&[0xcd], 0), None)],
    )
    .unwrap();
}

#[test]
fn a_missing_sibling_is_named_precisely() {
    // two keys under the root branch: deleting one collapses the root onto the other leaf
    let (k1, k2) = (raw(&[0x10], 1), raw(&[0x20], 2));
    let kv: Kv = [(k1, value(1)), (k2, value(2))].into_iter().collect();
    let (root, proof) = build(&kv, [k1]);
    let set = NodeSet::new(proof.clone());
    let mut t = SparseTrie::new(root);
    let e = t.remove(&set, &Nibbles::unpack(k1)).unwrap_err();
    let (_, all) = build(&kv, [k1, k2]);
    let leaf2 = all
        .iter()
        .find(|n| !proof.contains(n))
        .expect("the sibling leaf")
        .clone();
    assert_eq!(
        e,
        SparseError::MissingNode {
            path: crate::Path(Nibbles::from_nibbles([2])),
            hash: keccak256(&leaf2),
            need: Need::Collapse,
        }
    );
    assert!(
        e.to_string().contains("at path 0x2 is not in the witness"),
        "{e}"
    );
    // with the sibling, the deletion goes through and the root is the remaining leaf's
    let mut with = proof;
    with.push(leaf2);
    check(&kv, with, &[(k1, None)]).unwrap();
}

#[test]
fn proofs_of_touched_keys_suffice_without_deletions() {
    let kv: Kv = (0..500).map(|i| (key(i), value(i))).collect();
    let touched: Vec<B256> = (0..40)
        .map(|i| key(i * 7))
        .chain((0..20).map(|i| key(5000 + i)))
        .collect();
    let (_, nodes) = build(&kv, touched.iter().copied());
    let ops: Vec<_> = touched
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, Some(value(900 + i as u64))))
        .collect();
    check(&kv, nodes, &ops).unwrap();
}

#[test]
fn shortened_post_nodes_supply_collapse_siblings() {
    // the post-state trie (k1 deleted) holds k2's leaf one nibble longer, at the root; its
    // shortened form is the parent state's leaf under the branch
    let (k1, k2) = (raw(&[0x10], 1), raw(&[0x20], 2));
    let kv: Kv = [(k1, value(1)), (k2, value(2))].into_iter().collect();
    let (root, proof) = build(&kv, [k1]);
    let post: Kv = [(k2, value(2))].into_iter().collect();
    let (_, post_nodes) = build(&post, [k1, k2]);
    let mut candidates = NodeSet::new(proof);
    for n in &post_nodes {
        for s in witness::shortened(n) {
            candidates.insert(s);
        }
        candidates.insert(n.clone());
    }
    let kept = witness::reachable(root, &candidates);
    // the post-state root leaf itself is not reachable from the parent root
    assert_eq!(kept.len(), 3, "branch and both leaves");
    check(&kv, kept, &[(k1, None)]).unwrap();
}

fn account(i: u64, storage_root: B256) -> TrieAccount {
    TrieAccount {
        nonce: i,
        balance: U256::from(i * 1000),
        storage_root,
        code_hash: if i.is_multiple_of(2) {
            KECCAK_EMPTY
        } else {
            keccak256([i as u8])
        },
    }
}

#[test]
fn state_trie_reads_and_writes_accounts_and_slots() {
    // 30 accounts, every third with 10 slots
    let addr = |i: u64| Address::from_word(key(i));
    let mut storages: BTreeMap<Address, BTreeMap<U256, U256>> = BTreeMap::new();
    for i in (0..30).step_by(3) {
        storages.insert(
            addr(i),
            (1..=10)
                .map(|s| (U256::from(s), U256::from(s * 7 + i)))
                .collect(),
        );
    }
    let storage_root = |s: &BTreeMap<U256, U256>| {
        alloy_trie::root::storage_root_unhashed(
            s.iter()
                .filter(|(_, v)| !v.is_zero())
                .map(|(k, v)| (B256::from(*k), *v)),
        )
    };
    let state = |storages: &BTreeMap<Address, BTreeMap<U256, U256>>,
                 accs: &BTreeMap<Address, TrieAccount>| {
        alloy_trie::root::state_root_unhashed(accs.iter().map(|(a, acc)| {
            let mut acc = *acc;
            acc.storage_root = storages.get(a).map_or(EMPTY_ROOT_HASH, storage_root);
            (*a, acc)
        }))
    };
    let mut accs: BTreeMap<Address, TrieAccount> = (0..30)
        .map(|i| (addr(i), account(i, EMPTY_ROOT_HASH)))
        .collect();
    let root = state(&storages, &accs);

    // the witness: every node of the account trie and of every storage trie
    let mut nodes = vec![];
    let acc_kv: Kv = accs
        .iter()
        .map(|(a, acc)| {
            let mut acc = *acc;
            acc.storage_root = storages.get(a).map_or(EMPTY_ROOT_HASH, storage_root);
            (keccak256(a), alloy_rlp::encode(acc))
        })
        .collect();
    nodes.extend(build(&acc_kv, acc_kv.keys().copied()).1);
    for s in storages.values() {
        let kv: Kv = s
            .iter()
            .map(|(k, v)| (keccak256(B256::from(*k)), alloy_rlp::encode(v)))
            .collect();
        nodes.extend(build(&kv, kv.keys().copied()).1);
    }
    let set = Arc::new(NodeSet::new(nodes));
    let mut t = StateTrie::new(root, Arc::clone(&set));
    assert_eq!(
        t.account(addr(4)).unwrap().unwrap().balance,
        U256::from(4000)
    );
    assert_eq!(t.account(addr(1000)).unwrap(), None);
    assert_eq!(t.storage(addr(3), U256::from(2)).unwrap(), U256::from(17));
    assert_eq!(t.storage(addr(3), U256::from(99)).unwrap(), U256::ZERO);

    // update slots (one deleted, one new), wipe one account's storage, delete one, create one
    let up = |i: u64, wipe: bool, storage: Vec<(U256, U256)>| AccountUpdate {
        balance: U256::from(i * 1000 + 1),
        nonce: i + 1,
        code_hash: account(i, EMPTY_ROOT_HASH).code_hash,
        wipe_storage: wipe,
        storage,
    };
    let changes = vec![
        (
            addr(3),
            Some(up(
                3,
                false,
                vec![(U256::from(1), U256::ZERO), (U256::from(50), U256::from(5))],
            )),
        ),
        (
            addr(6),
            Some(up(6, true, vec![(U256::from(2), U256::from(1))])),
        ),
        (addr(7), None),
        (
            addr(500),
            Some(up(500, false, vec![(U256::from(1), U256::from(1))])),
        ),
    ];
    for (a, u) in &changes {
        t.set_account(*a, u.as_ref()).unwrap();
        match u {
            None => {
                accs.remove(a);
                storages.remove(a);
            }
            Some(u) => {
                let s = storages.entry(*a).or_default();
                if u.wipe_storage {
                    s.clear();
                }
                for (k, v) in &u.storage {
                    s.insert(*k, *v);
                }
                accs.insert(
                    *a,
                    TrieAccount {
                        nonce: u.nonce,
                        balance: u.balance,
                        storage_root: EMPTY_ROOT_HASH,
                        code_hash: u.code_hash,
                    },
                );
            }
        }
    }
    assert_eq!(t.root(), state(&storages, &accs));
}

#[test]
fn state_errors_name_the_account_or_slot() {
    let a = Address::repeat_byte(0xaa);
    let kv: Kv = [
        (
            keccak256(a),
            alloy_rlp::encode(account(1, B256::repeat_byte(7))),
        ),
        (key(1), value(1)),
    ]
    .into_iter()
    .collect();
    let (root, nodes) = build(&kv, [keccak256(a)]);
    let mut t = StateTrie::new(root, Arc::new(NodeSet::new(nodes)));
    // the storage root's node is not in the witness
    let e = t.storage(a, U256::from(5)).unwrap_err();
    assert_eq!(e.key, Key::Slot(a, U256::from(5)));
    let s = e.to_string();
    assert!(s.starts_with(&format!("slot 0x5 of {a}")), "{s}");
    assert!(s.contains(&B256::repeat_byte(7).to_string()), "{s}");
}

#[test]
fn random_operations_on_keys_with_shared_prefixes() {
    // keys drawn from few nibble patterns share long prefixes: extensions everywhere, and
    // deletions collapse branches onto leaves, extensions and branches alike
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pick = |r: u64| {
        let bytes = [0x00, 0x01, 0x10, 0x11];
        let mut b = [0u8; 32];
        for (i, x) in b.iter_mut().take(4).enumerate() {
            *x = bytes[((r >> (2 * i)) & 3) as usize];
        }
        b[31] = (r >> 8) as u8 & 1;
        B256::from(b)
    };
    for round in 0..200 {
        let n = 2 + next() % 12;
        let kv: Kv = (0..n)
            .map(|_| (pick(next()), value(next() % 1000)))
            .collect();
        let (_, all) = build(&kv, kv.keys().copied());
        let ops: Vec<_> = (0..1 + next() % 10)
            .map(|_| {
                let k = pick(next());
                (
                    k,
                    (next() % 3 != 0)
                        .then(|| value(next() % 1000))
                        .filter(|_| next() % 2 == 0),
                )
            })
            .collect();
        check(&kv, all, &ops).unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
}
