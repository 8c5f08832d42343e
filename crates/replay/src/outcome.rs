//! What a replay produced: per tx and per block, and how a tx's outcome is read from revm's
//! result.

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::{Address, B256, Bloom, Bytes, Log, U256};
use revm::{
    bytecode::Bytecode,
    context_interface::result::{ExecutionResult, HaltReason},
    primitives::hardfork::SpecId,
    state::{Account, EvmState},
};
use serde::{Deserialize, Serialize};
use txshadow_corpus::{AccountState, KECCAK_EMPTY, StateMap};

use crate::Codes;

/// The execution of one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxExec {
    /// Success (EIP-658 status 1).
    pub status: bool,
    /// Gas used as the receipt reports it (refund cap and EIP-7623 floor applied).
    pub gas_used: u64,
    /// Gas spent before refunds.
    pub gas_spent: u64,
    /// Gas refunded.
    pub gas_refunded: u64,
    /// Cumulative gas used in the block up to this tx (block mode).
    pub cumulative_gas_used: u64,
    /// Return data, or revert data.
    pub output: Bytes,
    /// `reverted`, or the halt reason (`OutOfGas(Basic)`, ...); `None` on success.
    pub reason: Option<String>,
    /// Emitted logs.
    pub logs: Vec<Log>,
    /// Created contract address.
    pub created: Option<Address>,
    /// Post-values of the accounts and slots this tx changed (`None` = account deleted).
    pub state: StateMap,
    /// Accounts whose storage was wiped before the changes (created or destroyed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_reset: Vec<Address>,
    /// The state root after this tx that its receipt carries before Byzantium, where the block
    /// run could compute it (from the full pre-state or a witness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_state_root: Option<B256>,
}

/// One transaction's outcome: executed, or an error of the harness or of validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxOutcome {
    /// Index in the block.
    pub index: usize,
    /// Transaction hash.
    pub hash: B256,
    /// Sender.
    pub from: Address,
    /// Recipient (`None` for creations).
    pub to: Option<Address>,
    /// First four bytes of calldata.
    pub selector: Option<[u8; 4]>,
    /// EIP-2718 type.
    pub tx_type: u8,
    /// The result, or why the tx could not be executed (invalid tx, unknown state, panic).
    pub result: Result<TxExec, String>,
}

impl TxOutcome {
    /// The execution, if there was one.
    pub fn exec(&self) -> Option<&TxExec> {
        self.result.as_ref().ok()
    }
}

/// One block's outcome under one configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockOutcome {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Label (fixture name).
    pub label: Option<String>,
    /// The spec the block ran under.
    pub spec: String,
    /// Per-tx outcomes, in order.
    pub txs: Vec<TxOutcome>,
    /// Total gas used (block mode).
    pub gas_used: u64,
    /// Receipts root of the produced receipts (block mode).
    pub receipts_root: B256,
    /// Logs bloom of the block (block mode).
    pub logs_bloom: Bloom,
    /// How the receipts root and logs bloom were obtained (block mode).
    #[serde(default)]
    pub receipts_check: ReceiptsCheck,
    /// Before Byzantium: the receipts carry the state root after each tx (from the full
    /// pre-state or the witness), so their root is the one the header holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub receipt_state_roots: bool,
    /// State root: the real one when the corpus holds the full pre-state (`state_root_exact`),
    /// else `None` (a root over the touched accounts is computed on demand by
    /// `post_state_root` when two replays' post-states differ).
    pub state_root: Option<B256>,
    /// Whether `state_root` is the real state root.
    pub state_root_exact: bool,
    /// The block's witness at work: the pre-state check and the root computation (block mode,
    /// corpora with a witness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<crate::WitnessOutcome>,
    /// Post-state of every account and slot the block changed (block mode).
    pub post_state: StateMap,
    /// Accounts whose storage the block wiped (destroyed, or created over an existing address)
    /// before the slots listed in `post_state` were written: their other pre-state slots are
    /// zero after the block. Sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_reset: Vec<Address>,
    /// Accounts read that the corpus pre-state does not list (treated as absent).
    pub unknown_accounts: Vec<Address>,
    /// Why the block could not be replayed (a block-level failure).
    pub error: Option<String>,
    /// Gas executed (sum of tx gas used), for throughput.
    pub gas_executed: u64,
}

/// How a block run obtained its receipts root and logs bloom. Either way they are checked the
/// same: against the header (against the chain) or against the other side's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptsCheck {
    /// Computed: the receipts trie root over the built receipts and the OR of their blooms.
    #[default]
    Trie,
    /// The built receipts equal the block's sealed recorded receipts (held to the header's
    /// receipts root and logs bloom when they were written) in type, status, cumulative gas
    /// and logs byte for byte: the root and bloom are the header's, no trie or bloom computed.
    Recorded,
    /// The bloom alone: a block whose receipts root the replay cannot reproduce (before
    /// Byzantium without the per-tx state roots), compared with nothing that needs the root
    /// (see `BlockRunOptions::unmatchable_receipts_root`).
    Bloom,
}

/// The message of a caught panic.
pub(crate) fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// A tx's execution from revm's result and the state it left: the accounts and slots it
/// changed (`None`: deleted), the accounts whose storage it wiped. `new_codes`, if given,
/// collects the codes it deployed that `known` does not hold.
pub(crate) fn tx_exec(
    result: &ExecutionResult<HaltReason>,
    state: &EvmState,
    spec: SpecId,
    cumulative: u64,
    mut new_codes: Option<&mut HashMap<B256, Bytecode>>,
    known: &Codes,
) -> TxExec {
    let gas = result.gas();
    let (output, reason) = match result {
        ExecutionResult::Success { output, .. } => (output.data().clone(), None),
        ExecutionResult::Revert { output, .. } => (output.clone(), Some("reverted".to_string())),
        ExecutionResult::Halt { reason, .. } => (Bytes::new(), Some(format!("{reason:?}"))),
    };
    let mut changes = StateMap::new();
    let mut storage_reset = Vec::new();
    for (addr, acc) in state {
        if !acc.is_touched() {
            continue;
        }
        if acc.is_selfdestructed() || acc.state_clear_aware_is_empty(spec) {
            changes.insert(*addr, None);
            storage_reset.push(*addr);
            continue;
        }
        if acc.is_created() {
            storage_reset.push(*addr);
        }
        if let Some(new_codes) = new_codes.as_deref_mut() {
            note_new_code(acc, known, new_codes);
        }
        let storage: BTreeMap<U256, U256> = acc
            .changed_storage_slots()
            .map(|(k, v)| (*k, v.present_value()))
            .collect();
        changes.insert(
            *addr,
            Some(AccountState {
                balance: acc.info.balance,
                nonce: acc.info.nonce,
                code_hash: acc.info.code_hash,
                storage,
            }),
        );
    }
    TxExec {
        status: result.is_success(),
        gas_used: result.tx_gas_used(),
        gas_spent: gas.total_gas_spent(),
        gas_refunded: gas.final_refunded(),
        cumulative_gas_used: cumulative,
        output,
        reason,
        // block mode moves the logs out of the receipts, tx mode out of the result
        logs: Vec::new(),
        created: result.created_address(),
        state: changes,
        storage_reset,
        receipt_state_root: None,
    }
}

/// Collects the codes the tx deployed that `known` does not hold, without recording its state
/// changes: the accounts [`tx_exec`] would list as changed, not deleted.
pub(crate) fn collect_new_codes(
    state: &EvmState,
    spec: SpecId,
    known: &Codes,
    new_codes: &mut HashMap<B256, Bytecode>,
) {
    for acc in state.values() {
        if acc.is_touched() && !acc.is_selfdestructed() && !acc.state_clear_aware_is_empty(spec) {
            note_new_code(acc, known, new_codes);
        }
    }
}

fn note_new_code(acc: &Account, known: &Codes, new_codes: &mut HashMap<B256, Bytecode>) {
    if acc.info.code_hash != KECCAK_EMPTY
        && !known.contains(&acc.info.code_hash)
        && let Some(code) = &acc.info.code
    {
        new_codes
            .entry(acc.info.code_hash)
            .or_insert_with(|| code.clone());
    }
}
