//! `corpus stats`: what a corpus holds, read one block at a time.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::{Corpus, CorpusError, Manifest, Provenance};

/// What a corpus holds.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusStats {
    /// Version of this JSON.
    pub schema_version: u32,
    /// The directory.
    pub dir: String,
    /// On-disk format version.
    pub format_version: u32,
    /// Chain id.
    pub chain_id: u64,
    /// Chain name.
    pub chain: String,
    /// Blocks.
    pub blocks: usize,
    /// Lowest block number.
    pub first_block: u64,
    /// Highest block number.
    pub last_block: u64,
    /// Transactions.
    pub txs: usize,
    /// Gas used by the blocks.
    pub gas: u64,
    /// Txs by EIP-2718 type.
    pub tx_types: BTreeMap<u8, usize>,
    /// Pre-state accounts over all blocks.
    pub pre_state_accounts: usize,
    /// Pre-state slots over all blocks.
    pub pre_state_slots: usize,
    /// Distinct codes referred to.
    pub codes: usize,
    /// Their bytes.
    pub code_bytes: usize,
    /// The code packs: codes held, how many stored compressed, bytes as read and as stored.
    pub packs: crate::pack::PackSizes,
    /// Blocks marked not replayable.
    pub unsupported_blocks: usize,
    /// Blocks with a state witness.
    pub witness_blocks: usize,
    /// Their trie nodes.
    pub witness_nodes: usize,
    /// Their bytes.
    pub witness_bytes: usize,
    /// Where the data came from.
    pub provenance: Provenance,
}

impl Corpus {
    /// Reads every block (one at a time, each checked) and counts what the corpus holds.
    pub fn stats(&self) -> Result<CorpusStats, CorpusError> {
        let m: &Manifest = self.manifest();
        let mut s = CorpusStats {
            schema_version: 1,
            dir: self.dir().display().to_string(),
            format_version: m.version,
            chain_id: m.chain.chain_id,
            chain: m.chain.name.clone(),
            blocks: m.blocks.len(),
            first_block: m.blocks.iter().map(|e| e.number).min().unwrap_or(0),
            last_block: m.blocks.iter().map(|e| e.number).max().unwrap_or(0),
            txs: 0,
            gas: 0,
            tx_types: BTreeMap::new(),
            pre_state_accounts: 0,
            pre_state_slots: 0,
            codes: 0,
            code_bytes: 0,
            packs: crate::pack_sizes(self.dir())?,
            unsupported_blocks: 0,
            witness_blocks: 0,
            witness_nodes: 0,
            witness_bytes: 0,
            provenance: m.provenance.clone(),
        };
        let mut hashes = HashSet::new();
        for e in &m.blocks {
            let b = self.load_block(e)?;
            s.txs += b.transactions.len();
            s.gas += b.gas_used();
            for t in &b.transactions {
                let ty = t.raw.first().copied().filter(|x| *x < 0x7f).unwrap_or(0);
                *s.tx_types.entry(ty).or_default() += 1;
            }
            s.pre_state_accounts += b.pre_state.len();
            s.pre_state_slots += b
                .pre_state
                .values()
                .flatten()
                .map(|a| a.storage.len())
                .sum::<usize>();
            s.unsupported_blocks += usize::from(b.unsupported.is_some());
            if let Some(w) = &b.witness {
                s.witness_blocks += 1;
                s.witness_nodes += w.nodes.len();
                s.witness_bytes += w.bytes();
            }
            hashes.extend(b.code_hashes());
        }
        let codes = self.code_reader()?.load_hashes(hashes, false)?;
        s.codes = codes.len();
        s.code_bytes = codes.bytes();
        Ok(s)
    }
}
