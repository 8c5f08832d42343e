//! `corpus verify`: every file, hash, sender and code checked in full, and sealed receipts
//! held to their header.

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
            .map(|(b, e)| {
                let chain = b.chain.as_ref().unwrap_or(&self.manifest().chain);
                verify_block(b, chain, &self.block_path(e))
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .sum();
        // stray codes (loose or packed) are fine; damaged ones are not
        let mut extra: HashSet<B256> = HashSet::new();
        for pack in reader.packs() {
            for h in pack.hashes() {
                if codes.get(h).is_none() {
                    let entry = pack.get(h)?.expect("listed in the pack");
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

fn verify_block(
    b: &BlockRecord,
    chain: &crate::ChainConfig,
    path: &Path,
) -> Result<usize, CorpusError> {
    // before Homestead a signature's s may be in the upper half of the curve order (EIP-2
    // made that invalid from Homestead on)
    let homestead = chain
        .activation(alloy_hardforks::EthereumHardfork::Homestead)
        .active_at_block(b.number());
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
            .recover_signer_unchecked_if(!homestead)
            .map_err(|e| invalid(format!("tx {i} ({}): cannot recover sender: {e}", tx.hash)))?;
        if from != tx.from {
            return Err(invalid(format!(
                "tx {i} ({}): signer is {from}, recorded {}",
                tx.hash, tx.from
            )));
        }
    }
    if b.expected.receipts_sealed {
        crate::check_receipts(b).map_err(|e| {
            invalid(format!(
                "sealed receipts: {e}: the receipts or the header changed after sealing; \
                 re-capture or re-import the block"
            ))
        })?;
    }
    Ok(b.transactions.len())
}

/// Sender recovery under the rules of the tx's block: with `unchecked`, a high-s signature is
/// accepted (pre-Homestead).
trait RecoverUnder {
    fn recover_signer_unchecked_if(
        &self,
        unchecked: bool,
    ) -> Result<alloy_primitives::Address, alloy_consensus::crypto::RecoveryError>;
}

impl RecoverUnder for TxEnvelope {
    fn recover_signer_unchecked_if(
        &self,
        unchecked: bool,
    ) -> Result<alloy_primitives::Address, alloy_consensus::crypto::RecoveryError> {
        if unchecked {
            self.recover_signer_unchecked()
        } else {
            self.recover_signer()
        }
    }
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

#[cfg(test)]
mod tests {
    use alloy_consensus::{Signed, TxEnvelope};
    use alloy_eips::eip2718::Encodable2718;
    use alloy_primitives::{Signature, U256};

    use crate::{Corpus, CorpusWriter};

    /// secp256k1's group order.
    const N: U256 = U256::from_limbs([
        0xbfd25e8cd0364141,
        0xbaaedce6af48a03b,
        0xfffffffffffffffe,
        0xffffffffffffffff,
    ]);

    /// Block 46147 (Frontier) of the shipped corpus with its first tx's signature moved to the
    /// high-s twin (the same signer), as pre-Homestead txs on mainnet may be signed.
    fn high_s_corpus(dir: &std::path::Path, number: Option<u64>) -> Corpus {
        let shipped = Corpus::open(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpora/mainnet"),
        )
        .unwrap();
        let e = shipped
            .manifest()
            .blocks
            .iter()
            .find(|e| e.number == 46147)
            .unwrap();
        let mut b = shipped.load_block(e).unwrap();
        let TxEnvelope::Legacy(signed) = super::decode_tx(&b.transactions[0].raw).unwrap() else {
            panic!("a legacy tx");
        };
        let sig = signed.signature();
        let high = Signature::new(sig.r(), N - sig.s(), !sig.v());
        let tx = TxEnvelope::Legacy(Signed::new_unhashed(signed.tx().clone(), high));
        b.transactions[0].raw = tx.encoded_2718().into();
        b.transactions[0].hash = *tx.tx_hash();
        if let Some(n) = number {
            // a block after Homestead: its header no longer hashes to the block's hash
            b.header.number = n;
            b.synthetic = true;
        }
        let m = shipped.manifest();
        let mut w =
            CorpusWriter::create(dir, m.chain.clone(), m.provenance.clone(), false).unwrap();
        w.put_block(&b).unwrap();
        for h in b.code_hashes() {
            if let Some(c) = shipped.load_codes([&b]).unwrap().get(&h) {
                w.put_code(c).unwrap();
            }
        }
        w.finish().unwrap()
    }

    #[test]
    fn a_high_s_signature_verifies_before_homestead_only() {
        let dir = tempfile::tempdir().unwrap();
        let c = high_s_corpus(&dir.path().join("frontier"), None);
        assert_eq!(c.verify().unwrap().txs, 1);
        let c = high_s_corpus(&dir.path().join("homestead"), Some(1_200_000));
        let e = c.verify().unwrap_err().to_string();
        assert!(e.contains("cannot recover sender"), "{e}");
    }
}
