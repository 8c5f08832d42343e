//! The corpus index: `manifest.json`.

use std::collections::BTreeMap;

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use crate::{ChainConfig, Provenance, fsutil::hex_sha256};

/// Name of the format in the manifest.
pub const FORMAT_NAME: &str = "txshadow-corpus";
/// Current on-disk format version.
pub const FORMAT_VERSION: u32 = 1;
pub(crate) const MANIFEST: &str = "manifest.json";

/// One block in the manifest's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// File name under `blocks/`.
    pub file: String,
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Number of transactions.
    pub txs: usize,
    /// Gas used by the block.
    pub gas_used: u64,
    /// sha256 of the file's bytes (`corpus verify` checks it).
    pub sha256: String,
    /// CRC-32 of the file's bytes: what a load checks, a fifth of the cost of sha256 on every
    /// replay. An entry without it (a corpus written before this field) is checked by sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<u32>,
    /// Label (fixture name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The corpus index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// On-disk format version.
    pub version: u32,
    /// The chain's id and schedule (blocks may override it).
    pub chain: ChainConfig,
    /// Where the data came from.
    pub provenance: Provenance,
    /// Blocks, sorted by number then hash.
    pub blocks: Vec<BlockEntry>,
    /// CRC-32 of each code file by its hash: a load checks a code with it instead of hashing
    /// the code again with keccak (`corpus verify` does both). A code missing here (a corpus
    /// written before this field) is checked with keccak.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub code_crc32: BTreeMap<B256, u32>,
    /// sha256 of this manifest serialised with `checksum: null`.
    #[serde(default)]
    pub checksum: Option<String>,
}

impl Manifest {
    /// The checksum this manifest should carry: the sha256 of it serialised with
    /// `checksum: null`.
    pub fn digest(&self) -> String {
        let mut m = self.clone();
        m.checksum = None;
        hex_sha256(&serde_json::to_vec(&m).expect("manifest serialises"))
    }

    /// Total transactions.
    pub fn tx_count(&self) -> usize {
        self.blocks.iter().map(|b| b.txs).sum()
    }
}
