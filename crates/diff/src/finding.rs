//! Findings: one typed difference each.

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

/// What differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A tx or block could not be replayed (invalid tx, missing state, panic).
    Error,
    /// Success/failure.
    Status,
    /// Gas used.
    Gas,
    /// Return data.
    Output,
    /// Logs (count, address, topics, data).
    Logs,
    /// Created contract address.
    CreatedAddress,
    /// Post-state of an account or slot.
    State,
    /// Cumulative gas in the block.
    CumulativeGas,
    /// Block gas used.
    BlockGas,
    /// Receipts root.
    ReceiptsRoot,
    /// Logs bloom.
    LogsBloom,
    /// State root (full, or over touched accounts).
    StateRoot,
}

impl Kind {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Status => "status",
            Self::Gas => "gas",
            Self::Output => "output",
            Self::Logs => "logs",
            Self::CreatedAddress => "created_address",
            Self::State => "state",
            Self::CumulativeGas => "cumulative_gas",
            Self::BlockGas => "block_gas",
            Self::ReceiptsRoot => "receipts_root",
            Self::LogsBloom => "logs_bloom",
            Self::StateRoot => "state_root",
        }
    }

    /// Parses a snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Error,
            Self::Status,
            Self::Gas,
            Self::Output,
            Self::Logs,
            Self::CreatedAddress,
            Self::State,
            Self::CumulativeGas,
            Self::BlockGas,
            Self::ReceiptsRoot,
            Self::LogsBloom,
            Self::StateRoot,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Which comparison produced a finding (serialised as the finding's `side`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// `got` is the baseline replay, `expected` what the chain recorded.
    BaselineVsChain,
    /// `got` is the candidate, `expected` the baseline.
    CandidateVsBaseline,
    /// `got` is the candidate replay, `expected` what the chain recorded.
    CandidateVsChain,
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Block number.
    pub block: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Index of the tx in the block (`None` for block-level findings).
    pub tx_index: Option<usize>,
    /// Tx hash.
    pub tx_hash: Option<B256>,
    /// The tx's recipient (the contract it calls).
    pub to: Option<Address>,
    /// The tx's 4-byte selector, hex.
    pub selector: Option<String>,
    /// Which comparison.
    pub side: Comparison,
    /// Category.
    pub kind: Kind,
    /// The exact field (`gas_used`, `logs[2].topics[0]`, `state.0xab…/storage/0x01`).
    pub field: String,
    /// Value on the replayed side (candidate, or baseline against the chain).
    pub got: String,
    /// Reference value (baseline, or the chain).
    pub expected: String,
    /// Why the difference is accepted, when an accepted-differences entry matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
}

impl Finding {
    /// A block-level finding.
    pub fn block(
        block: u64,
        block_hash: B256,
        kind: Kind,
        field: impl Into<String>,
        got: impl ToString,
        expected: impl ToString,
    ) -> Self {
        Self {
            block,
            block_hash,
            tx_index: None,
            tx_hash: None,
            to: None,
            selector: None,
            side: Comparison::BaselineVsChain,
            kind,
            field: field.into(),
            got: got.to_string(),
            expected: expected.to_string(),
            accepted: None,
        }
    }

    /// Gas pair (got, expected) when this is a gas finding.
    pub fn gas_pair(&self) -> Option<(u64, u64)> {
        match self.kind {
            Kind::Gas | Kind::BlockGas | Kind::CumulativeGas => {
                Some((self.got.parse().ok()?, self.expected.parse().ok()?))
            }
            _ => None,
        }
    }
}
