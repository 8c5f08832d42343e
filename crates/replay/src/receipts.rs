//! Receipts as block mode builds them: alloy's receipt envelopes, their blooms left empty while
//! the block runs. A block whose recorded receipts are sealed compares its receipts with them
//! field by field and needs no bloom at all; otherwise [`fill_blooms`] computes them, each
//! log's bloom bits once per distinct address and topic of the block instead of once per log.
//!
//! A block's logs repeat a few addresses (the token contracts) and topics (the event
//! signatures, the same holders) many times; the bloom of each needs keccak256 of each of them.
//! Remembering those hashes for the block removes most of that hashing and gives the same
//! blooms bit for bit.

use alloy_consensus::{
    Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope, TxType,
};
use alloy_evm::{
    Evm,
    eth::receipt_builder::{ReceiptBuilder, ReceiptBuilderCtx},
};
use alloy_primitives::{Address, B256, Bloom, Log, keccak256, map::HashMap};

/// The hashes a block's blooms need, by address and by topic.
#[derive(Debug, Default)]
struct BloomHashes {
    addresses: HashMap<Address, B256>,
    topics: HashMap<B256, B256>,
}

impl BloomHashes {
    fn bloom(&mut self, logs: &[Log]) -> Bloom {
        let mut bloom = Bloom::ZERO;
        for log in logs {
            let h = self
                .addresses
                .entry(log.address)
                .or_insert_with(|| keccak256(log.address));
            bloom.m3_2048_hashed(h);
            for t in log.topics() {
                let h = self.topics.entry(*t).or_insert_with(|| keccak256(t));
                bloom.m3_2048_hashed(h);
            }
        }
        bloom
    }
}

/// Sets the bloom of every receipt from its logs (the builder leaves them empty).
pub(crate) fn fill_blooms(receipts: &mut [ReceiptEnvelope]) {
    let mut hashes = BloomHashes::default();
    for r in receipts {
        if let Some(r) = r.as_receipt_with_bloom_mut() {
            r.logs_bloom = hashes.bloom(&r.receipt.logs);
        }
    }
}

/// Builds [`ReceiptEnvelope`]s like alloy-evm's `AlloyReceiptBuilder`, with empty blooms (see
/// [`fill_blooms`]).
#[derive(Debug, Default)]
pub(crate) struct BlockReceiptBuilder;

impl ReceiptBuilder for BlockReceiptBuilder {
    type Transaction = TxEnvelope;
    type Receipt = ReceiptEnvelope;

    fn build_receipt<E: Evm>(&self, ctx: ReceiptBuilderCtx<'_, TxType, E>) -> ReceiptEnvelope {
        let status = Eip658Value::Eip658(ctx.result.is_success());
        let logs = ctx.result.into_logs();
        let logs_bloom = Bloom::ZERO;
        let receipt = ReceiptWithBloom {
            receipt: Receipt {
                status,
                cumulative_gas_used: ctx.cumulative_gas_used,
                logs,
            },
            logs_bloom,
        };
        match ctx.tx_type {
            TxType::Legacy => ReceiptEnvelope::Legacy(receipt),
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(receipt),
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(receipt),
            TxType::Eip4844 => ReceiptEnvelope::Eip4844(receipt),
            TxType::Eip7702 => ReceiptEnvelope::Eip7702(receipt),
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{LogData, address, b256};

    use super::*;

    #[test]
    fn remembered_hashes_give_alloys_bloom() {
        let a = address!("0xdac17f958d2ee523a2206206994597c13d831ec7");
        let t = b256!("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
        let log = |topics: Vec<B256>| Log {
            address: a,
            data: LogData::new_unchecked(topics, Default::default()),
        };
        let logs = vec![
            log(vec![t]),
            log(vec![t, B256::with_last_byte(7)]),
            log(vec![]),
        ];
        let mut h = BloomHashes::default();
        let mut want = Bloom::ZERO;
        want.accrue_logs(&logs);
        assert_eq!(h.bloom(&logs), want);
        assert_eq!(h.bloom(&logs), want, "second use, from remembered hashes");
        assert_eq!(h.topics.len(), 2);
    }
}
