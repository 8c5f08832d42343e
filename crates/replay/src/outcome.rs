//! What a replay produced: per tx and per block.

use alloy_primitives::{Address, B256, Bloom, Bytes, Log};
use serde::{Deserialize, Serialize};
use txshadow_corpus::StateMap;

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
