//! A block's witness at work: the pre-state checked against the parent's state root, leaving
//! the revealed tries ready for the post-block state root (computed in the `state_root` module
//! with every other root a replay computes).
//!
//! A corpus block holds the accounts and slots the block touches; its witness holds the trie
//! nodes on their paths under the parent's state root. Before the block runs, every pre-state
//! account (balance, nonce, code hash, or its absence) and every pre-state slot is read from the
//! witness and compared: a value a source got wrong fails the block, naming the account or slot.
//! After the block, the post-state (changed accounts and slots, wiped storages) is written into
//! the same sparse tries and the root is the state root the header should carry. A node the
//! computation needs and the witness lacks (the sibling a deletion collapses onto) fails the
//! root, naming its path and hash; no root is guessed.
//!
//! A pre-state value whose proof ends in a node the witness lacks is *unproven*, not wrong: it
//! is kept from the corpus, and the block runs watching it ([`Unproven`]). A value the block
//! reads (an account it loads and leaves unchanged, or whose code it runs; a slot it loads and
//! leaves unchanged) fails the block, naming the account or slot. A value it only changes
//! (checked after the block against the chain's post-state and receipts) or never reads is a
//! warning in [`WitnessOutcome::unproven`]; the post-block root is then computed if the witness
//! allows, and a root it cannot give is a warning too.
//!
//! An account the block only *touches* is written, not read: from Spurious Dragon on (EIP-161),
//! the target of a call or tx that carries no value and runs no code (an L2's batch inbox, the
//! recipient of blob txs, absent or holding a balance) is loaded and touched, and its balance
//! and nonce cannot change what the block does; an absent one stays absent (deleted if empty).
//! It is a warning; had it code, the code would have run, and that is a read. Before Spurious
//! Dragon a call to an account that does not exist costs more gas, so its existence is read.

use std::{sync::Arc, time::Instant};

use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use txshadow_corpus::{AccountState, BlockRecord, KECCAK_EMPTY, StateMap, Witness};
use txshadow_trie::{Key, Need, NodeSet, SparseError, StateTrie, TrieError};

/// What a block's witness gave a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessOutcome {
    /// The parent's state root (the root the pre-state is checked under).
    pub parent_state_root: B256,
    /// Whether every pre-state account and slot matched the parent state.
    pub pre_state_verified: bool,
    /// Pre-state accounts checked.
    pub accounts: usize,
    /// Pre-state slots checked.
    pub slots: usize,
    /// Witness nodes.
    pub nodes: usize,
    /// Witness bytes.
    pub bytes: usize,
    /// Microseconds to check the pre-state (indexing the nodes included).
    pub verify_micros: u64,
    /// Microseconds to compute the post-block root.
    pub root_micros: u64,
    /// Whether the state roots after each tx were computed from the witness (pre-Byzantium
    /// receipts carry them; the receipts root is then exact).
    #[serde(default, skip_serializing_if = "is_false")]
    pub receipt_roots: bool,
    /// Why the pre-state check or the root computation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Warnings: pre-state values the witness cannot prove that the block only changes or never
    /// reads (each naming the account or slot and the missing node), and a post-block root the
    /// witness then cannot give.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unproven: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// A pre-state checked against its witness: the revealed tries, ready to take the post-state.
#[derive(Debug, Clone)]
pub struct VerifiedPreState {
    /// The parent state's tries, revealed along the pre-state's paths.
    pub(crate) trie: StateTrie,
    /// The figures so far (root fields filled by [`VerifiedPreState::post_state_root`]).
    pub outcome: WitnessOutcome,
    /// Pre-state values whose proof the witness lacks: the block runs watching them.
    pub(crate) unproven: Vec<Unproven>,
}

/// A pre-state account or slot the witness cannot prove (a node on its path is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unproven {
    /// The account or slot.
    pub key: Key,
    /// Why: the missing node, its path and hash.
    pub reason: String,
}

/// The trie error of a value whose proof lacks a node, as an [`Unproven`]; any other error
/// (an invalid node) as a problem.
fn unproven_or_problem(e: TrieError, unproven: &mut Vec<Unproven>, out: &mut Vec<String>) {
    match *e.source {
        SparseError::MissingNode {
            need: Need::Read, ..
        } => unproven.push(Unproven {
            key: e.key,
            reason: e.source.to_string(),
        }),
        _ => out.push(format!("cannot check {e}")),
    }
}

/// One value of the pre-state the parent state contradicts or cannot prove.
fn mismatch(
    trie: &mut StateTrie,
    a: &Address,
    want: &Option<AccountState>,
    empty_is_absent: bool,
    unproven: &mut Vec<Unproven>,
    out: &mut Vec<String>,
) -> usize {
    let got = match trie.account(*a) {
        Ok(g) => g,
        Err(e) => {
            let before = unproven.len();
            unproven_or_problem(e, unproven, out);
            if unproven.len() > before {
                // the account's slots cannot be proven either: watch them too
                let reason = format!("its account is unproven: {}", unproven[before].reason);
                for k in want.iter().flat_map(|w| w.storage.keys()) {
                    unproven.push(Unproven {
                        key: Key::Slot(*a, *k),
                        reason: reason.clone(),
                    });
                }
            }
            return 0;
        }
    };
    let Some(w) = want else {
        if let Some(g) = got {
            out.push(format!(
                "account {a}: absent in the corpus, the parent state has it (balance {}, nonce {})",
                g.balance, g.nonce
            ));
        }
        return 0;
    };
    let Some(g) = got else {
        if empty_is_absent && w.balance.is_zero() && w.nonce == 0 && w.code_hash == KECCAK_EMPTY {
            // EIP-161: an empty account and an absent one are the same state (a prestate
            // tracer lists a touched empty account)
            return w.storage.len();
        }
        out.push(format!(
            "account {a}: in the corpus (balance {}, nonce {}), absent from the parent state",
            w.balance, w.nonce
        ));
        return 0;
    };
    if g.balance != w.balance {
        out.push(format!(
            "account {a} balance: {} in the corpus, {} in the parent state",
            w.balance, g.balance
        ));
    }
    if g.nonce != w.nonce {
        out.push(format!(
            "account {a} nonce: {} in the corpus, {} in the parent state",
            w.nonce, g.nonce
        ));
    }
    if g.code_hash != w.code_hash {
        out.push(format!(
            "account {a} code hash: {} in the corpus, {} in the parent state",
            w.code_hash, g.code_hash
        ));
    }
    for (k, v) in &w.storage {
        match trie.storage(*a, *k) {
            Ok(got) if got == *v => {}
            Ok(got) => out.push(format!(
                "slot {k:#x} of {a}: {v:#x} in the corpus, {got:#x} in the parent state"
            )),
            Err(e) => unproven_or_problem(e, unproven, out),
        }
    }
    w.storage.len()
}

/// Checks `block`'s pre-state against its witness. The error names every account and slot
/// that differs (the first five, and how many more). With `empty_is_absent` (EIP-161, from
/// Spurious Dragon on), an empty account the pre-state lists may be absent from the trie.
pub fn verify_pre_state(
    block: &BlockRecord,
    witness: &Witness,
    empty_is_absent: bool,
) -> Result<VerifiedPreState, Box<WitnessOutcome>> {
    let t = Instant::now();
    let root = witness.parent_state_root();
    let nodes = Arc::new(NodeSet::new(witness.nodes.iter().cloned()));
    let mut outcome = WitnessOutcome {
        parent_state_root: root,
        pre_state_verified: false,
        accounts: block.pre_state.len(),
        slots: 0,
        nodes: nodes.len(),
        bytes: nodes.bytes(),
        verify_micros: 0,
        root_micros: 0,
        receipt_roots: false,
        error: None,
        unproven: vec![],
    };
    let mut problems = vec![];
    let mut unproven = vec![];
    if !block.synthetic && witness.parent.hash_slow() != block.header.parent_hash {
        problems.push(format!(
            "the witness's parent header hashes to {}, the block's parent hash is {}",
            witness.parent.hash_slow(),
            block.header.parent_hash
        ));
    }
    let mut trie = StateTrie::new(root, nodes);
    for (a, want) in &block.pre_state {
        outcome.slots += mismatch(
            &mut trie,
            a,
            want,
            empty_is_absent,
            &mut unproven,
            &mut problems,
        );
    }
    outcome.verify_micros = t.elapsed().as_micros() as u64;
    if problems.is_empty() {
        outcome.pre_state_verified = unproven.is_empty();
        return Ok(VerifiedPreState {
            trie,
            outcome,
            unproven,
        });
    }
    let more = problems.len().saturating_sub(5);
    let mut msg = format!(
        "pre-state does not match the parent state root {root}: {}",
        problems[..problems.len().min(5)].join("; ")
    );
    if more > 0 {
        msg.push_str(&format!("; and {more} more"));
    }
    outcome.error = Some(msg);
    Err(Box::new(outcome))
}

/// What the block did with its unproven values: `reads` are the accounts and slots the EVM
/// loaded (an account also counts as read when its code was loaded: `code_reads`), `post` the
/// block's changes. A value read and left unchanged is the block's error, naming it; the others
/// become warnings in the outcome.
///
/// `touch_is_write`: the block runs under EIP-161 (Spurious Dragon on), where an account the
/// block touched without running its code (`post` lists it, unchanged) was written, not read.
pub(crate) fn judge_unproven(
    w: &mut VerifiedPreState,
    block: &BlockRecord,
    reads: &[Key],
    code_reads: &[Address],
    post: &StateMap,
    touch_is_write: bool,
) -> Result<(), String> {
    let mut errors = vec![];
    for u in &w.unproven {
        let changed = changed(block, post, &u.key);
        let code_run = matches!(u.key, Key::Account(a) if code_reads.contains(&a));
        let touched = touch_is_write && matches!(u.key, Key::Account(a) if post.contains_key(&a));
        let read = reads.contains(&u.key) || code_run;
        let what = match (read, changed, code_run) {
            (true, false, false) if touched => {
                "touched by the block without running code (the target of a call or tx of no \
                 value), not read; its post-block value is compared with the chain's"
            }
            (true, _, true) | (true, false, _) => {
                errors.push(format!(
                    "{}: the block reads it, and the witness cannot prove its value under the \
                     parent state root {} ({}); export the block again with a complete witness",
                    u.key, w.outcome.parent_state_root, u.reason
                ));
                continue;
            }
            (_, true, _) => {
                "changed by the block (its post-block value is compared with the chain's)"
            }
            (false, false, _) => "never read by the block",
        };
        w.outcome.unproven.push(format!(
            "{}: {what}; the witness cannot prove its pre-block value ({}), taken from the corpus unverified",
            u.key, u.reason
        ));
    }
    if errors.is_empty() {
        return Ok(());
    }
    w.outcome.error = Some(errors.join("; "));
    Err(errors.join("; "))
}

/// Whether the block changed an account (any field, or its existence) or a slot.
fn changed(block: &BlockRecord, post: &StateMap, key: &Key) -> bool {
    let pre = |a: &Address| block.pre_state.get(a).cloned().flatten();
    match key {
        Key::Account(a) => post.get(a).is_some_and(|p| {
            let before = pre(a);
            match (p, &before) {
                (Some(p), Some(b)) => {
                    p.balance != b.balance || p.nonce != b.nonce || p.code_hash != b.code_hash
                }
                (None, None) => false,
                _ => true,
            }
        }),
        Key::Slot(a, k) => post.get(a).is_some_and(|p| {
            let before: U256 = pre(a)
                .and_then(|b| b.storage.get(k).copied())
                .unwrap_or_default();
            p.as_ref().map_or(!before.is_zero(), |p| {
                p.storage.get(k).is_some_and(|v| *v != before)
            })
        }),
    }
}

impl VerifiedPreState {
    /// The accounts and slots the block must run watching (empty when the witness proves all).
    pub(crate) fn watch(&self, block: &BlockRecord) -> crate::db::Watch {
        let mut w = crate::db::Watch::default();
        for u in &self.unproven {
            match u.key {
                Key::Account(a) => {
                    let code = block
                        .pre_state
                        .get(&a)
                        .cloned()
                        .flatten()
                        .map(|s| s.code_hash);
                    w.add_account(a, code);
                }
                Key::Slot(a, k) => w.add_slot(a, k),
            }
        }
        w
    }
}
