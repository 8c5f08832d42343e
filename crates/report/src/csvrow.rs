use serde::{Deserialize, Serialize};

/// One row of `results.csv`: one tx, both sides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRow {
    /// Block number.
    pub block: u64,
    /// Index in the block.
    pub index: usize,
    /// Tx hash.
    pub hash: String,
    /// Sender.
    pub from: String,
    /// Recipient (empty for creations).
    pub to: String,
    /// 4-byte selector (empty if none).
    pub selector: String,
    /// EIP-2718 type.
    pub tx_type: u8,
    /// Status on the reference side (the chain, or the baseline): 1, 0, or empty if unknown.
    pub expected_status: String,
    /// Gas on the reference side (empty if unknown).
    pub expected_gas: String,
    /// Status on the replayed side (baseline vs chain, or candidate).
    pub got_status: String,
    /// Gas on the replayed side.
    pub got_gas: String,
    /// got - expected gas (empty if either is unknown).
    pub gas_delta: String,
    /// Logs equal (`true`/`false`/empty if not compared).
    pub logs_equal: String,
    /// State equal (`true`/`false`/empty if not compared).
    pub state_equal: String,
    /// `match`, `differ`, `accepted`, `error`, `skipped` or `not-comparable`.
    pub verdict: String,
    /// Kinds of the findings, `;`-separated.
    pub kinds: String,
    /// Why the tx is not comparable (empty otherwise).
    pub note: String,
}
