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

use std::{sync::Arc, time::Instant};

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use txshadow_corpus::{AccountState, BlockRecord, KECCAK_EMPTY, Witness};
use txshadow_trie::{NodeSet, StateTrie};

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
}

/// One value of the pre-state the parent state contradicts or cannot prove.
fn mismatch(
    trie: &mut StateTrie,
    a: &Address,
    want: &Option<AccountState>,
    empty_is_absent: bool,
    out: &mut Vec<String>,
) -> usize {
    let got = match trie.account(*a) {
        Ok(g) => g,
        Err(e) => {
            out.push(format!("cannot check {e}"));
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
            Err(e) => out.push(format!("cannot check {e}")),
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
) -> Result<VerifiedPreState, WitnessOutcome> {
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
    };
    let mut problems = vec![];
    if !block.synthetic && witness.parent.hash_slow() != block.header.parent_hash {
        problems.push(format!(
            "the witness's parent header hashes to {}, the block's parent hash is {}",
            witness.parent.hash_slow(),
            block.header.parent_hash
        ));
    }
    let mut trie = StateTrie::new(root, nodes);
    for (a, want) in &block.pre_state {
        outcome.slots += mismatch(&mut trie, a, want, empty_is_absent, &mut problems);
    }
    outcome.verify_micros = t.elapsed().as_micros() as u64;
    if problems.is_empty() {
        outcome.pre_state_verified = true;
        return Ok(VerifiedPreState { trie, outcome });
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
    Err(outcome)
}
