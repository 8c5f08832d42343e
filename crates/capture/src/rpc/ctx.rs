//! What the steps of a block capture share: the header summary a block is planned from, the
//! settings of the capture, and the fetched result.

use std::sync::atomic::AtomicBool;

use alloy_eips::eip4895::Withdrawal;
use alloy_primitives::{Address, B256, U64};
use serde::Deserialize;
use txshadow_corpus::{BlockRecord, ChainConfig};
use txshadow_rpc::{Rpc, tracer::CodeMap};

use super::CaptureError;

/// What the capture needs of a header before fetching the block (from
/// `eth_getBlockByNumber(n, false)`): enough to skip complete blocks, list the ancestors and
/// plan the block's calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeaderInfo {
    pub(crate) hash: B256,
    pub(crate) parent_hash: B256,
    pub(crate) number: U64,
    pub(crate) timestamp: U64,
    pub(crate) miner: Address,
    #[serde(default)]
    pub(crate) transactions: Vec<B256>,
    #[serde(default)]
    pub(crate) withdrawals: Option<Vec<Withdrawal>>,
    #[serde(default)]
    pub(crate) uncles: Vec<B256>,
    #[serde(default)]
    pub(crate) parent_beacon_block_root: Option<B256>,
}

impl HeaderInfo {
    pub(crate) fn number(&self) -> u64 {
        self.number.to::<u64>()
    }
}

/// Settings shared by every block of a capture.
#[derive(Debug)]
pub(crate) struct BlockCtx {
    pub(crate) rpc: Rpc,
    pub(crate) chain: ChainConfig,
    /// Whether `eth_getBlockReceipts` works (cleared at the first "method not found").
    pub(crate) block_receipts: AtomicBool,
    /// Blocks above this may still be reorganised: their hash is checked again at the end.
    pub(crate) final_below: u64,
    /// Fetch a state witness per block.
    pub(crate) witness: bool,
    /// Whether `debug_executionWitness` works (cleared at the first "method not found").
    pub(crate) execution_witness: AtomicBool,
}

/// A block ready to be written: the record and the codes its pre-state refers to.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) record: BlockRecord,
    pub(crate) codes: CodeMap,
}

/// An error about block `block`: the node's answers do not fit together.
pub(crate) fn node_err(block: u64, reason: impl Into<String>) -> CaptureError {
    CaptureError::Node {
        block,
        reason: reason.into(),
    }
}
