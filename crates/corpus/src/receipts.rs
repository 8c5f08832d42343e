//! Recorded receipts held to the header: the receipts root and logs bloom they give.
//!
//! A block's recorded receipts ([`crate::Expected::receipts`]) let a replay check its receipts
//! field by field (type, status, cumulative gas, logs byte for byte) instead of building the
//! receipts trie and the blooms of every block it replays. That check is only as good as the
//! recorded receipts, so they are held once to the header's `receiptsRoot` and `logsBloom`
//! ([`seal_receipts`]): at capture, by `corpus seal` (receipts written by a replay that matched
//! the header) and again by `corpus verify`. A sealed block carries
//! [`crate::Expected::receipts_sealed`]; the corpus's checksums keep its receipts as they were.
//!
//! A receipt's trie entry is its EIP-2718 encoding: type, status (or the pre-Byzantium state
//! root), cumulative gas, bloom and logs. The bloom is a function of the logs; gas used per tx
//! and the created address are not in the trie (they follow from the cumulative gas and the
//! tx). So receipts equal to sealed ones in type, status, cumulative gas and logs have the
//! header's receipts root and logs bloom.

use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxType};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{B256, Bloom};

use crate::{BlockRecord, ExpectedReceipt};

impl ExpectedReceipt {
    /// The status as the trie encodes it: EIP-658 status, or the pre-Byzantium state root
    /// (`None` when the receipt has neither).
    pub fn status_value(&self) -> Option<Eip658Value> {
        match (self.status, self.state_root) {
            (Some(s), _) => Some(Eip658Value::Eip658(s)),
            (None, Some(r)) => Some(Eip658Value::PostState(r)),
            (None, None) => None,
        }
    }

    /// The receipt as the chain encodes it (bloom computed from the logs); `None` for an
    /// unknown tx type or a receipt with neither status nor state root.
    pub fn envelope(&self) -> Option<ReceiptEnvelope> {
        let receipt = Receipt {
            status: self.status_value()?,
            cumulative_gas_used: self.cumulative_gas_used,
            logs: self.logs.clone(),
        };
        let r = ReceiptWithBloom {
            logs_bloom: receipt.bloom_slow(),
            receipt,
        };
        Some(match TxType::try_from(self.tx_type).ok()? {
            TxType::Legacy => ReceiptEnvelope::Legacy(r),
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(r),
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(r),
            TxType::Eip4844 => ReceiptEnvelope::Eip4844(r),
            TxType::Eip7702 => ReceiptEnvelope::Eip7702(r),
        })
    }
}

/// The receipts root and logs bloom of `receipts`, or why they cannot be computed (a receipt
/// of an unknown type, or with neither status nor state root).
pub fn receipts_root_and_bloom(receipts: &[ExpectedReceipt]) -> Result<(B256, Bloom), String> {
    let envelopes = receipts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.envelope().ok_or_else(|| {
                format!(
                    "receipt {i} has tx type {} or neither status nor state root",
                    r.tx_type
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let root = alloy_trie::root::ordered_trie_root_with_encoder(&envelopes, |r, buf| {
        r.encode_2718(buf);
    });
    let mut bloom = Bloom::ZERO;
    for r in &envelopes {
        if let Some(r) = r.as_receipt_with_bloom() {
            bloom |= r.logs_bloom;
        }
    }
    Ok((root, bloom))
}

/// Checks `block`'s recorded receipts against its header: one per tx, the receipts root and
/// the logs bloom. `Err` says what differs.
pub fn check_receipts(block: &BlockRecord) -> Result<(), String> {
    let Some(receipts) = &block.expected.receipts else {
        return Err("the block records no receipts".into());
    };
    if receipts.len() != block.transactions.len() {
        return Err(format!(
            "{} receipts recorded for {} txs",
            receipts.len(),
            block.transactions.len()
        ));
    }
    let h = &block.header;
    let (root, bloom) = receipts_root_and_bloom(receipts)?;
    if root != h.receipts_root {
        return Err(format!(
            "the recorded receipts hash to {root}, the header's receipts root is {}",
            h.receipts_root
        ));
    }
    if bloom != h.logs_bloom {
        return Err("the recorded receipts' logs bloom is not the header's".into());
    }
    Ok(())
}

/// Holds `block`'s recorded receipts to its header ([`check_receipts`]) and, when they agree,
/// marks them sealed ([`crate::Expected::receipts_sealed`]). A block without header checks
/// (a synthetic block) is never sealed.
pub fn seal_receipts(block: &mut BlockRecord) -> Result<(), String> {
    if !block.expected.header_checks {
        return Err("the block's header does not describe its txs (no header checks)".into());
    }
    check_receipts(block)?;
    block.expected.receipts_sealed = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, Log, LogData};

    use super::*;

    fn receipt(cum: u64, logs: Vec<Log>) -> ExpectedReceipt {
        ExpectedReceipt {
            tx_type: 2,
            status: Some(true),
            state_root: None,
            gas_used: 21_000,
            cumulative_gas_used: cum,
            logs,
            contract_address: None,
        }
    }

    /// A block whose header carries the root and bloom of `receipts`.
    fn block_with(receipts: Vec<ExpectedReceipt>) -> BlockRecord {
        let (root, bloom) = receipts_root_and_bloom(&receipts).unwrap();
        let header = alloy_consensus::Header {
            receipts_root: root,
            logs_bloom: bloom,
            ..Default::default()
        };
        let txs = receipts
            .iter()
            .map(|_| crate::TxRecord {
                hash: B256::ZERO,
                from: Address::ZERO,
                raw: Default::default(),
            })
            .collect();
        let mut b = BlockRecord::new(header.hash_slow(), header, txs);
        b.expected.receipts = Some(receipts);
        b
    }

    #[test]
    fn receipts_are_sealed_only_when_they_hash_to_the_header() {
        let log = Log {
            address: Address::repeat_byte(7),
            data: LogData::new_unchecked(vec![B256::repeat_byte(1)], vec![1, 2, 3].into()),
        };
        let receipts = vec![receipt(21_000, vec![log]), receipt(42_000, vec![])];
        let mut b = block_with(receipts.clone());
        assert_ne!(b.header.logs_bloom, Bloom::ZERO);
        seal_receipts(&mut b).unwrap();
        assert!(b.expected.receipts_sealed);

        // one byte of one log's data changed: the root differs, nothing is sealed
        let mut bad = block_with(receipts.clone());
        bad.expected.receipts.as_mut().unwrap()[0].logs[0].data =
            LogData::new_unchecked(vec![B256::repeat_byte(1)], vec![1, 2, 4].into());
        let e = seal_receipts(&mut bad).unwrap_err();
        assert!(e.contains("receipts root"), "{e}");
        assert!(!bad.expected.receipts_sealed);

        // a receipt missing
        let mut short = block_with(receipts.clone());
        short.expected.receipts.as_mut().unwrap().pop();
        assert!(
            seal_receipts(&mut short)
                .unwrap_err()
                .contains("1 receipts")
        );

        // a synthetic block (no header checks) is never sealed
        let mut synthetic = block_with(receipts);
        synthetic.expected.header_checks = false;
        assert!(seal_receipts(&mut synthetic).is_err());
    }

    #[test]
    fn a_pre_byzantium_receipt_encodes_its_state_root() {
        let mut r = receipt(21_000, vec![]);
        r.status = None;
        r.state_root = Some(B256::repeat_byte(9));
        assert_eq!(
            r.status_value(),
            Some(Eip658Value::PostState(B256::repeat_byte(9)))
        );
        let b = block_with(vec![r.clone()]);
        check_receipts(&b).unwrap();
        r.state_root = None;
        assert!(receipts_root_and_bloom(&[r]).is_err());
    }
}
