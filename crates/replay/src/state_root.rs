//! Every state root a replay computes, in one place.
//!
//! - From a full pre-state (the whole state, as a hive or fixture corpus holds it): the
//!   accounts as a map, the block's changes laid over them ([`apply_changes`]) and the root
//!   computed from scratch ([`state_root`], [`state_root_after`], [`post_state_root`]). Over a
//!   partial pre-state the same computation gives a root over the touched accounts: comparable
//!   between two replays of one corpus, not with the header.
//! - From a block's witness (a sparse trie under the parent's state root, checked by
//!   [`crate::verify_pre_state`]): the changes written into the revealed tries
//!   ([`VerifiedPreState::post_state_root`]).
//! - Pre-Byzantium receipts carry the state root after each tx: the same two ways, tx by tx.
//!
//! The trie code itself (the sparse tries, node sets) is the `txshadow-trie` crate's.

use std::{collections::BTreeMap, time::Instant};

use alloy_primitives::{Address, B256};
use alloy_trie::{EMPTY_ROOT_HASH, TrieAccount};
use txshadow_corpus::{AccountState, BlockRecord, StateMap};
use txshadow_trie::{AccountUpdate, StateTrie, TrieError};

use crate::{BlockOutcome, TxOutcome, VerifiedPreState, WitnessOutcome};

/// The roots pre-Byzantium receipts carry, one per tx: from the full pre-state when the corpus
/// has it, else from the witness (which then records that it gave them). `None` when neither
/// can give them or a tx did not execute.
pub(crate) fn receipt_state_roots(
    block: &BlockRecord,
    txs: &[TxOutcome],
    witness: Option<&mut VerifiedPreState>,
) -> Option<Vec<B256>> {
    intermediate_state_roots(block, txs).or_else(|| witness?.intermediate_roots(txs))
}

/// Sets `out`'s post-block state root from its post-state: the real root when the pre-state is
/// the full state, or from the witness (which also records its figures in `out.witness`). Over
/// a partial pre-state without a witness no root is set: a root over the touched accounts says
/// nothing the post-state does not, so it is only computed when two replays differ (see
/// [`post_state_root`]).
pub(crate) fn set_post_state_root(
    block: &BlockRecord,
    witness: Option<VerifiedPreState>,
    out: &mut BlockOutcome,
) {
    if block.pre_state_is_full {
        let (root, exact) = post_state_root(block, &out.post_state, &out.storage_reset);
        out.state_root = Some(root);
        out.state_root_exact = exact;
    }
    if let Some(w) = witness {
        let (root, info) = w.finish(&out.post_state, &out.storage_reset);
        if let Some(root) = root {
            out.state_root = Some(root);
            out.state_root_exact = true;
        }
        out.witness = Some(info);
    }
}

/// The state root after the block: the real one when the pre-state is the full state, otherwise
/// a root over the accounts the pre-state lists plus those the block changed (comparable between
/// two replays of the same corpus, not with the header).
pub fn post_state_root(
    block: &BlockRecord,
    post: &StateMap,
    storage_reset: &[Address],
) -> (B256, bool) {
    let mut accounts = existing_accounts(&block.pre_state);
    apply_changes(&mut accounts, post, storage_reset);
    (state_root(&accounts), block.pre_state_is_full)
}

/// Pre-Byzantium receipts carry the state root after their tx instead of a status (EIP-658
/// replaced it). With the full state as pre-state those roots are computable: the pre-state with
/// the changes of the txs up to and including each one (block rewards come after the last tx, as
/// in go-ethereum). `None` when the pre-state is partial or a tx did not execute.
fn intermediate_state_roots(block: &BlockRecord, txs: &[TxOutcome]) -> Option<Vec<B256>> {
    if !block.pre_state_is_full {
        return None;
    }
    let mut accounts = existing_accounts(&block.pre_state);
    txs.iter()
        .map(|t| {
            let e = t.exec()?;
            apply_changes(&mut accounts, &e.state, &e.storage_reset);
            Some(state_root(&accounts))
        })
        .collect()
}

/// The state root of `pre` (taken as the whole state) after `post`'s changes; `storage_reset`
/// lists accounts whose storage was wiped before the changes.
pub fn state_root_after(pre: &StateMap, post: &StateMap, storage_reset: &[Address]) -> B256 {
    let mut accounts = existing_accounts(pre);
    apply_changes(&mut accounts, post, storage_reset);
    state_root(&accounts)
}

fn existing_accounts(pre: &StateMap) -> BTreeMap<Address, AccountState> {
    pre.iter()
        .filter_map(|(a, s)| s.as_ref().map(|s| (*a, s.clone())))
        .collect()
}

/// Lays changed accounts over `accounts`: `None` removes; an account in `storage_reset` loses
/// its storage before its changed slots are written; a slot set to zero is removed (a zero slot
/// and an absent one are the same state).
pub fn apply_changes(
    accounts: &mut BTreeMap<Address, AccountState>,
    post: &StateMap,
    storage_reset: &[Address],
) {
    for (a, s) in post {
        match s {
            None => {
                accounts.remove(a);
            }
            Some(s) => {
                let e = accounts.entry(*a).or_default();
                if storage_reset.contains(a) {
                    e.storage.clear();
                }
                e.balance = s.balance;
                e.nonce = s.nonce;
                e.code_hash = s.code_hash;
                for (k, v) in &s.storage {
                    if v.is_zero() {
                        e.storage.remove(k);
                    } else {
                        e.storage.insert(*k, *v);
                    }
                }
            }
        }
    }
}

/// The state root over `accounts` (zero slots are absent from the trie).
pub fn state_root(accounts: &BTreeMap<Address, AccountState>) -> B256 {
    alloy_trie::root::state_root_unhashed(accounts.iter().map(|(a, s)| {
        let storage_root = if s.storage.values().all(|v| v.is_zero()) {
            EMPTY_ROOT_HASH
        } else {
            alloy_trie::root::storage_root_unhashed(
                s.storage
                    .iter()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(k, v)| (B256::from(*k), *v)),
            )
        };
        (
            *a,
            TrieAccount {
                nonce: s.nonce,
                balance: s.balance,
                storage_root,
                code_hash: s.code_hash,
            },
        )
    }))
}

impl VerifiedPreState {
    /// The state root after `post` (changed accounts, `None` = deleted) with the storage of
    /// `storage_reset`'s accounts wiped first. Leaves this pre-state untouched.
    pub fn post_state_root(
        &self,
        post: &StateMap,
        storage_reset: &[Address],
    ) -> Result<B256, TrieError> {
        let mut trie = self.trie.clone();
        apply_to_trie(&mut trie, post, storage_reset)?;
        Ok(trie.root())
    }

    /// The state root after each tx (pre-Byzantium receipts carry it): the pre-state with the
    /// changes of the txs up to and including each one. `None` when a tx did not execute or the
    /// witness cannot give a root.
    pub(crate) fn intermediate_roots(&mut self, txs: &[TxOutcome]) -> Option<Vec<B256>> {
        let mut trie = self.trie.clone();
        let roots = txs
            .iter()
            .map(|t| {
                let e = t.exec()?;
                apply_to_trie(&mut trie, &e.state, &e.storage_reset).ok()?;
                Some(trie.root())
            })
            .collect::<Option<Vec<_>>>()?;
        self.outcome.receipt_roots = true;
        Some(roots)
    }

    /// Computes the root after `post` and records it in the outcome (time, or the failure).
    pub(crate) fn finish(
        self,
        post: &StateMap,
        storage_reset: &[Address],
    ) -> (Option<B256>, WitnessOutcome) {
        let t = Instant::now();
        let r = self.post_state_root(post, storage_reset);
        let mut outcome = self.outcome;
        outcome.root_micros = t.elapsed().as_micros() as u64;
        match r {
            Ok(root) => (Some(root), outcome),
            Err(e) => {
                let msg =
                    format!("the post-block state root cannot be computed from the witness: {e}");
                if self.unproven.is_empty() {
                    outcome.error = Some(msg);
                } else {
                    // the witness lacks nodes the pre-state check already reported as warnings:
                    // no root is guessed, and the block is not failed for it
                    outcome.unproven.push(msg);
                }
                (None, outcome)
            }
        }
    }
}

fn apply_to_trie(
    trie: &mut StateTrie,
    post: &StateMap,
    storage_reset: &[Address],
) -> Result<(), TrieError> {
    for (a, s) in post {
        let update = s.as_ref().map(|s| AccountUpdate {
            balance: s.balance,
            nonce: s.nonce,
            code_hash: s.code_hash,
            wipe_storage: storage_reset.contains(a),
            storage: s.storage.iter().map(|(k, v)| (*k, *v)).collect(),
        });
        trie.set_account(*a, update.as_ref())?;
    }
    Ok(())
}
