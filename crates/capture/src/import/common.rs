//! Helpers shared by importers.

use std::{fs, path::Path};

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::Bytes;
use alloy_rpc_types_eth::{Block, BlockTransactions, Transaction};
use serde::de::DeserializeOwned;
use txshadow_corpus::{BlockRecord, Conventions, Expected, StateMap, TxRecord};

use super::ImportError;

/// Now, RFC 3339.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Reads and parses a JSON file, naming it on error.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ImportError> {
    let bytes = fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ImportError::source(path, format!("invalid JSON: {e}")))
}

/// Converts an `eth_getBlockByNumber(n, true)` block into a corpus block (pre-state empty).
pub fn rpc_block_to_record(block: &Block<Transaction>) -> Result<BlockRecord, String> {
    let header = block.header.inner.clone();
    let BlockTransactions::Full(txs) = &block.transactions else {
        return Err("block has no full transactions (fetch it with full txs)".into());
    };
    let transactions = txs
        .iter()
        .map(|t| {
            let env = t.inner.inner();
            TxRecord {
                hash: *env.tx_hash(),
                from: t.inner.signer(),
                raw: Bytes::from(env.encoded_2718()),
            }
        })
        .collect();
    Ok(BlockRecord {
        hash: block.header.hash,
        header,
        transactions,
        ommers: vec![],
        ommers_missing: block.uncles.len(),
        withdrawals: block.withdrawals.as_ref().map(|w| w.0.clone()),
        pre_state: StateMap::new(),
        pre_state_is_full: false,
        block_hashes: Default::default(),
        expected: Expected {
            header_checks: true,
            ..Default::default()
        },
        conventions: Conventions::default(),
        chain: None,
        synthetic: false,
        label: None,
        unsupported: None,
    })
}
