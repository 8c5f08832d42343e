//! risc0/zeth provider caches: one JSON file per block `N` with
//!
//! - `full_blocks`: `[{block_no}, eth_getBlockByNumber(n, true)]` for the parent `N-1` and the
//!   target `N` (older caches may hold more ancestors);
//! - `proofs`: `[{block_no, address, indices}, eth_getProof]` at `N-1` and at `N` for every
//!   account and slot the block touches;
//! - flat `balance`, `transaction_count`, `code` (`[{block_no, address}, value]`) and `storage`
//!   (`[{block_no, address, index}, value]`) lists, mostly at `N-1`;
//! - `uncle_blocks` and `receipts`, empty in the published caches.
//!
//! The block pre-state is the state at `N-1` of every proved account and slot; the expected
//! post-state is the state at `N` of the same accounts and slots (full values: balance, nonce,
//! code hash and every proved slot). Every proof is checked against the state root of its block
//! (`N-1`: the parent's, `N`: the block's own), so the pre-state is the chain's and the
//! post-state is the one the block's header commits to. The flat lists must agree with the
//! proofs. An account whose proof shows it absent from the trie did not exist; it is recorded as
//! `None` (an empty account that is in the trie, possible before EIP-161, stays an account).
//!
//! The block keeps a witness: the proof nodes at `N-1` reachable from the parent's state root,
//! completed with the nodes at `N` that a deletion's branch collapse needs (see [`witness`]).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use alloy_primitives::{Address, B256, Bytes, U64, U256, keccak256};
use alloy_rpc_types_eth::{Block, Header as RpcHeader, Transaction};
use alloy_trie::EMPTY_ROOT_HASH;
use serde::Deserialize;
use txshadow_corpus::{
    AccountState, BlockRecord, CorpusWriter, KECCAK_EMPTY, Provenance, StateMap, Witness,
};
use txshadow_trie::{NodeSet, witness};

use super::{ImportError, ImportOptions, ImportSummary, common};

#[derive(Deserialize)]
struct BlockKey {
    block_no: u64,
}

#[derive(Deserialize)]
struct AccountKey {
    block_no: u64,
    address: Address,
}

#[derive(Deserialize)]
struct SlotKey {
    block_no: u64,
    address: Address,
    index: U256,
}

#[derive(Deserialize)]
struct UncleKey {
    block_no: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountProof {
    address: Address,
    balance: U256,
    code_hash: B256,
    nonce: U64,
    storage_hash: B256,
    account_proof: Vec<Bytes>,
    #[serde(default)]
    storage_proof: Vec<SlotProof>,
}

#[derive(Deserialize)]
struct SlotProof {
    key: U256,
    value: U256,
    proof: Vec<Bytes>,
}

#[derive(Deserialize)]
struct ZethCache {
    full_blocks: Vec<(BlockKey, Block<Transaction>)>,
    #[serde(default)]
    uncle_blocks: Vec<(UncleKey, RpcHeader)>,
    #[serde(default)]
    receipts: Vec<serde_json::Value>,
    proofs: Vec<(AccountKey, AccountProof)>,
    #[serde(default)]
    transaction_count: Vec<(AccountKey, U256)>,
    #[serde(default)]
    balance: Vec<(AccountKey, U256)>,
    #[serde(default)]
    code: Vec<(AccountKey, Bytes)>,
    #[serde(default)]
    storage: Vec<(SlotKey, U256)>,
}

/// The accounts and slots at one block, as proved: `None` = the account did not exist.
type ProvedState = BTreeMap<Address, Option<AccountState>>;

/// Checks every proof of block `number` against `root` and returns the proved state.
fn proved_state(cache: &ZethCache, number: u64, root: B256) -> Result<ProvedState, String> {
    let mut state = ProvedState::new();
    for (key, p) in cache.proofs.iter().filter(|(k, _)| k.block_no == number) {
        if key.address != p.address {
            return Err(format!(
                "proof keyed by {} at block {number} is for {}",
                key.address, p.address
            ));
        }
        let addr = p.address;
        // Nodes answer eth_getProof for a missing account with zero values and either zero or
        // empty code and storage hashes; an account that exists can be empty too (before
        // EIP-161). The proof decides: an empty answer is absent when the trie proves it so.
        let empty = p.balance.is_zero()
            && p.nonce == U64::ZERO
            && (p.code_hash == B256::ZERO || p.code_hash == KECCAK_EMPTY)
            && (p.storage_hash == B256::ZERO || p.storage_hash == EMPTY_ROOT_HASH);
        let absent = empty
            && common::verify_trie_proof(root, addr.as_slice(), None, &p.account_proof).is_ok();
        let exists = !absent;
        if exists {
            if p.code_hash == B256::ZERO || p.storage_hash == B256::ZERO {
                return Err(format!(
                    "{addr} at block {number}: zero code or storage hash, but the proof does not \
                     show the account absent"
                ));
            }
            let leaf = common::trie_account_rlp(
                p.nonce.to::<u64>(),
                p.balance,
                p.storage_hash,
                p.code_hash,
            );
            common::verify_trie_proof(root, addr.as_slice(), Some(leaf), &p.account_proof)
                .map_err(|e| format!("{addr} at block {number}: account proof: {e}"))?;
        }
        let mut storage = BTreeMap::new();
        for s in &p.storage_proof {
            if exists {
                common::verify_trie_proof(
                    p.storage_hash,
                    &B256::from(s.key).0,
                    common::trie_slot_rlp(s.value),
                    &s.proof,
                )
                .map_err(|e| {
                    format!(
                        "{addr} at block {number}: storage proof of {:#x}: {e}",
                        s.key
                    )
                })?;
            } else if !s.value.is_zero() {
                return Err(format!(
                    "{addr} at block {number}: absent account with storage {:#x} = {:#x}",
                    s.key, s.value
                ));
            }
            storage.insert(s.key, s.value);
        }
        let acc = exists.then(|| AccountState {
            balance: p.balance,
            nonce: p.nonce.to::<u64>(),
            code_hash: p.code_hash,
            storage,
        });
        if state.insert(addr, acc).is_some() {
            return Err(format!("{addr} proved twice at block {number}"));
        }
    }
    Ok(state)
}

/// Checks the flat `balance`/`transaction_count`/`code`/`storage` lists against the proofs of
/// the same block. Entries of blocks other than `blocks` are ignored (counted in the result).
fn check_flat_lists(
    cache: &ZethCache,
    proved: &BTreeMap<u64, ProvedState>,
) -> Result<usize, String> {
    let mut ignored = 0;
    let account = |block: u64, a: &Address| -> Option<Option<&AccountState>> {
        proved.get(&block)?.get(a).map(Option::as_ref)
    };
    for (k, v) in &cache.balance {
        match account(k.block_no, &k.address) {
            None => ignored += 1,
            Some(acc) => {
                let got = acc.map(|a| a.balance).unwrap_or_default();
                if got != *v {
                    return Err(format!(
                        "balance of {} at block {} is {v}, its proof says {got}",
                        k.address, k.block_no
                    ));
                }
            }
        }
    }
    for (k, v) in &cache.transaction_count {
        match account(k.block_no, &k.address) {
            None => ignored += 1,
            Some(acc) => {
                let got = U256::from(acc.map(|a| a.nonce).unwrap_or_default());
                if got != *v {
                    return Err(format!(
                        "transaction count of {} at block {} is {v}, its proof says {got}",
                        k.address, k.block_no
                    ));
                }
            }
        }
    }
    for (k, v) in &cache.code {
        match account(k.block_no, &k.address) {
            None => ignored += 1,
            Some(acc) => {
                let want = acc.map(|a| a.code_hash).unwrap_or(KECCAK_EMPTY);
                if keccak256(v) != want {
                    return Err(format!(
                        "code of {} at block {} hashes to {}, its proof says {want}",
                        k.address,
                        k.block_no,
                        keccak256(v)
                    ));
                }
            }
        }
    }
    for (k, v) in &cache.storage {
        match account(k.block_no, &k.address) {
            None => ignored += 1,
            Some(acc) => {
                let got = acc.and_then(|a| a.storage.get(&k.index));
                if got != Some(v) && !(acc.is_none() && v.is_zero()) {
                    return Err(format!(
                        "storage {:#x} of {} at block {} is {v:#x}, its proof says {}",
                        k.index,
                        k.address,
                        k.block_no,
                        got.map_or_else(
                            || "nothing (slot not proved)".into(),
                            |g| format!("{g:#x}")
                        )
                    ));
                }
            }
        }
    }
    Ok(ignored)
}

/// The witness: every proof node at `N-1`, plus the nodes at `N` a deletion's collapse needs.
///
/// A deletion that leaves a branch with one child replaces the branch by that child, whose node
/// the proofs at `N-1` hold only as a hash. The proof at `N` of the deleted key ends at that
/// child with its path lengthened; shortened again ([`witness::shortened`]) it is the parent
/// state's node. Every candidate counts only if it is reachable from the parent's state root
/// (found by hash from a node of that trie), so a node of `N` can fill a blinded node of `N-1`
/// and nothing else.
fn witness(cache: &ZethCache, n: u64, parent: &alloy_consensus::Header) -> Witness {
    let mut candidates = NodeSet::default();
    for (k, p) in &cache.proofs {
        let post = k.block_no == n;
        if k.block_no + 1 != n && !post {
            continue;
        }
        let nodes = p
            .account_proof
            .iter()
            .chain(p.storage_proof.iter().flat_map(|s| &s.proof));
        for node in nodes.filter(|n| !n.is_empty()) {
            if post {
                for s in witness::shortened(node) {
                    candidates.insert(s);
                }
            }
            candidates.insert(node.clone());
        }
    }
    let nodes = witness::reachable(parent.state_root, &candidates);
    Witness::new(
        parent.clone(),
        nodes,
        "zeth: eth_getProof at N-1, collapse siblings from the proofs at N",
    )
}

fn import_file(
    path: &Path,
    w: &mut CorpusWriter,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let bad = |reason: String| ImportError::source(path, reason);
    let cache: ZethCache = common::read_json(path)?;

    let Target {
        blocks,
        n,
        block: target,
        parent,
    } = target_and_parent(&cache).map_err(&bad)?;
    if w.has_block(&target.header.hash) {
        summary.skipped_existing += 1;
        return Ok(());
    }
    let mut rec =
        txshadow_rpc::rpc_block_to_record(target).map_err(|e| bad(format!("block {n}: {e}")))?;

    // uncle headers, when the cache has them (none of the published blocks has uncles)
    add_uncles(&cache, target, n, &mut rec).map_err(&bad)?;

    common::check_body_roots(&rec).map_err(|e| bad(format!("block {n}: {e}")))?;

    // ancestors' hashes for BLOCKHASH: every block of the cache below N and its parent hash
    add_ancestor_hashes(&blocks, n, &mut rec).map_err(&bad)?;

    // pre-state: the proofs at N-1 under the parent's root; post-state: at N under N's root
    let pre = proved_state(&cache, n - 1, parent.header.state_root).map_err(&bad)?;
    let post = proved_state(&cache, n, target.header.state_root).map_err(&bad)?;
    if pre.is_empty() {
        return Err(bad(format!("no eth_getProof result at block {}", n - 1)));
    }
    if let Some(a) = post.keys().find(|a| !pre.contains_key(*a)) {
        return Err(bad(format!(
            "{a} is proved at block {n} but not at {}: its pre-state is unknown",
            n - 1
        )));
    }
    let proved: BTreeMap<u64, ProvedState> = [(n - 1, pre), (n, post)].into_iter().collect();
    let ignored = check_flat_lists(&cache, &proved).map_err(&bad)?;
    let other_proofs = cache
        .proofs
        .iter()
        .filter(|(k, _)| k.block_no + 1 != n && k.block_no != n)
        .count();
    if ignored + other_proofs > 0 {
        w.add_note(format!(
            "{}: {} entries not used (other blocks than {} and {n}, or accounts without a proof)",
            common::file_name(path),
            ignored + other_proofs,
            n - 1
        ));
    }
    if !cache.receipts.is_empty() {
        w.add_note(format!(
            "{}: {} receipts entries not read (the header's roots are checked instead)",
            common::file_name(path),
            cache.receipts.len()
        ));
    }
    let mut proved = proved.into_values();
    let pre = proved.next().expect("two states");
    let post = proved.next().expect("two states");

    // codes, once per hash: the pre-state's (required) and those created by the block
    put_codes(path, &cache, n, &pre, &post, w)?;

    rec.pre_state = pre;
    rec.expected.post_state = Some(post as StateMap);
    rec.witness = Some(witness(&cache, n, &parent.header.inner));
    summary.blocks += 1;
    summary.txs += rec.transactions.len();
    w.put_block(&rec)?;
    Ok(())
}

/// Blocks of a cache by number.
type Blocks<'a> = BTreeMap<u64, &'a Block<Transaction>>;

/// The blocks of a cache, and the target block (number `n`) with its parent.
struct Target<'a> {
    blocks: Blocks<'a>,
    n: u64,
    block: &'a Block<Transaction>,
    parent: &'a Block<Transaction>,
}

/// The blocks of the cache by number, each checked against its key and its hash; the target
/// block (the highest) and its parent, whose state root the pre-state is proved under.
fn target_and_parent(cache: &ZethCache) -> Result<Target<'_>, String> {
    let mut blocks = Blocks::new();
    for (k, b) in &cache.full_blocks {
        if k.block_no != b.header.number {
            return Err(format!(
                "full_blocks entry keyed {} holds block {}",
                k.block_no, b.header.number
            ));
        }
        let h = b.header.inner.hash_slow();
        if h != b.header.hash {
            return Err(format!(
                "block {}: header hashes to {h}, the source says {}",
                b.header.number, b.header.hash
            ));
        }
        blocks.insert(k.block_no, b);
    }
    let Some((&n, &target)) = blocks.last_key_value() else {
        return Err("full_blocks is empty".into());
    };
    if n == 0 {
        return Err("the target block is genesis (no parent state)".into());
    }
    let Some(&parent) = blocks.get(&(n - 1)) else {
        return Err(format!("full_blocks lacks the parent block {}", n - 1));
    };
    if parent.header.hash != target.header.parent_hash {
        return Err(format!(
            "block {n}'s parent hash is {}, block {} hashes to {}",
            target.header.parent_hash,
            n - 1,
            parent.header.hash
        ));
    }
    Ok(Target {
        blocks,
        n,
        block: target,
        parent,
    })
}

/// The uncle headers of block `n` that the cache has; the others are counted as missing.
fn add_uncles(
    cache: &ZethCache,
    target: &Block<Transaction>,
    n: u64,
    rec: &mut BlockRecord,
) -> Result<(), String> {
    rec.ommers_missing = 0;
    for u in &target.uncles {
        match cache
            .uncle_blocks
            .iter()
            .find(|(k, h)| k.block_no == n && h.hash == *u)
        {
            Some((_, h)) => {
                if h.inner.hash_slow() != *u {
                    return Err(format!(
                        "uncle {u}: header hashes to {}",
                        h.inner.hash_slow()
                    ));
                }
                rec.ommers.push(h.inner.clone());
            }
            None => rec.ommers_missing += 1,
        }
    }

    Ok(())
}

/// The hashes BLOCKHASH may read: every block of the cache below `n`, and each one's parent.
fn add_ancestor_hashes(blocks: &Blocks<'_>, n: u64, rec: &mut BlockRecord) -> Result<(), String> {
    for (&num, b) in blocks {
        if num < n {
            rec.block_hashes.insert(num, b.header.hash);
        }
        if num > 0 && num <= n {
            let prev = rec.block_hashes.insert(num - 1, b.header.parent_hash);
            if prev.is_some_and(|p| p != b.header.parent_hash) {
                return Err(format!("inconsistent hashes for block {}", num - 1));
            }
        }
    }

    Ok(())
}

/// Stores the codes of the cache's list, once per hash, that the pre-state (at `n - 1`) and the
/// post-state (at `n`) refer to; every pre-state code must be there.
fn put_codes(
    path: &Path,
    cache: &ZethCache,
    n: u64,
    pre: &StateMap,
    post: &StateMap,
    w: &mut CorpusWriter,
) -> Result<(), ImportError> {
    let bad = |reason: String| ImportError::source(path, reason);
    for (k, code) in &cache.code {
        let state = if k.block_no + 1 == n {
            pre
        } else if k.block_no == n {
            post
        } else {
            continue;
        };
        if let Some(Some(acc)) = state.get(&k.address)
            && acc.code_hash != KECCAK_EMPTY
        {
            w.put_code(code)?;
        }
    }
    for (a, acc) in pre.iter().filter_map(|(a, acc)| Some((a, acc.as_ref()?))) {
        if acc.code_hash != KECCAK_EMPTY && !w.has_code(&acc.code_hash) {
            return Err(bad(format!(
                "{a}: code {} at block {} is not in the code list",
                acc.code_hash,
                n - 1
            )));
        }
    }
    Ok(())
}

pub(crate) fn import(
    inputs: &[PathBuf],
    out: &Path,
    opts: &ImportOptions,
    prov: Provenance,
) -> Result<ImportSummary, ImportError> {
    common::import_json_files(inputs, "zeth cache", out, opts, prov, import_file)
}
