//! `corpus verify`: every file, hash, sender and code checked in full.

use std::{collections::HashSet, fs, path::Path};

use alloy_consensus::{TxEnvelope, transaction::SignerRecoverable};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::B256;
use rayon::prelude::*;

use crate::{
    BlockRecord, Corpus, CorpusError,
    codes::{check_analysis, check_code},
    fsutil::io_err,
};

impl Corpus {
    /// Full check of every file: checksums, header hashes, tx hashes and senders, code hashes,
    /// and that every referenced code is present. Returns the number of blocks checked.
    pub fn verify(&self) -> Result<VerifySummary, CorpusError> {
        let blocks = self
            .manifest()
            .blocks
            .par_iter()
            .map(|e| self.load_block_checked(e, true))
            .collect::<Result<Vec<_>, _>>()?;
        let reader = self.code_reader()?;
        let codes = reader.load_checked(&blocks, true)?;
        let txs: usize = blocks
            .par_iter()
            .zip(self.manifest().blocks.par_iter())
            .map(|(b, e)| verify_block(b, &self.block_path(e)))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .sum();
        // stray codes (loose or packed) are fine; damaged ones are not
        let mut extra: HashSet<B256> = HashSet::new();
        for pack in reader.packs() {
            for h in pack.hashes() {
                if codes.get(h).is_none() {
                    let entry = pack.get(h).expect("listed in the pack");
                    check_code(pack.path(), h, &entry.code(), None, true)?;
                    check_analysis(pack.path(), h, &entry, true)?;
                    extra.insert(*h);
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.dir().join("codes")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let Some(hex) = name.strip_suffix(".bin") else {
                    continue;
                };
                let Ok(h) = hex.parse::<B256>() else { continue };
                if codes.get(&h).is_none() {
                    let bytes = fs::read(e.path()).map_err(io_err(&e.path()))?;
                    check_code(&e.path(), &h, &bytes, None, true)?;
                    extra.insert(h);
                }
            }
        }
        Ok(VerifySummary {
            blocks: blocks.len(),
            txs,
            codes: codes.len() + extra.len(),
        })
    }
}

/// What `verify` checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifySummary {
    /// Blocks checked.
    pub blocks: usize,
    /// Transactions checked.
    pub txs: usize,
    /// Codes checked.
    pub codes: usize,
}

fn verify_block(b: &BlockRecord, path: &Path) -> Result<usize, CorpusError> {
    let invalid = |reason: String| CorpusError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    if !b.synthetic {
        let h = b.header.hash_slow();
        if h != b.hash {
            return Err(invalid(format!(
                "header hashes to {h}, block says {}",
                b.hash
            )));
        }
    }
    if let Some(w) = &b.witness
        && !b.synthetic
    {
        let h = w.parent.hash_slow();
        if h != b.header.parent_hash {
            return Err(invalid(format!(
                "the witness's parent header hashes to {h}, the block's parent hash is {}",
                b.header.parent_hash
            )));
        }
    }
    for (i, tx) in b.transactions.iter().enumerate() {
        let env = decode_tx(&tx.raw).map_err(|e| invalid(format!("tx {i} ({}): {e}", tx.hash)))?;
        if *env.tx_hash() != tx.hash {
            return Err(invalid(format!(
                "tx {i}: raw bytes hash to {}, recorded {}",
                env.tx_hash(),
                tx.hash
            )));
        }
        let from = env
            .recover_signer()
            .map_err(|e| invalid(format!("tx {i} ({}): cannot recover sender: {e}", tx.hash)))?;
        if from != tx.from {
            return Err(invalid(format!(
                "tx {i} ({}): signer is {from}, recorded {}",
                tx.hash, tx.from
            )));
        }
    }
    Ok(b.transactions.len())
}

/// Decodes an EIP-2718 transaction, naming an unknown type.
pub fn decode_tx(raw: &[u8]) -> Result<TxEnvelope, String> {
    let mut buf = raw;
    let env = TxEnvelope::decode_2718(&mut buf).map_err(|e| match raw.first() {
        Some(t) if *t < 0x7f && *t > 4 => format!("unsupported transaction type 0x{t:02x}: {e}"),
        _ => format!("cannot decode transaction: {e}"),
    })?;
    if !buf.is_empty() {
        return Err(format!(
            "{} trailing bytes after the transaction",
            buf.len()
        ));
    }
    Ok(env)
}
