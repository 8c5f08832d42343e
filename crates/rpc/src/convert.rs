//! Node answers into corpus types: a JSON-RPC block into a [`BlockRecord`], a go-ethereum chain
//! config into a fork schedule.
//!
//! Both capture (blocks fetched from a node) and the importers (block dumps saved from a node's
//! answers, geth chain configs) convert these, so the conversion lives with the response types
//! rather than in either of them; the corpus itself stays free of RPC types.

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::Bytes;
use alloy_rpc_types_eth::{Block, BlockTransactions, Transaction};
use txshadow_corpus::{BlockRecord, TxRecord};

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
        ommers_missing: block.uncles.len(),
        withdrawals: block.withdrawals.as_ref().map(|w| w.0.clone()),
        ..BlockRecord::new(block.header.hash, header, transactions)
    })
}

/// The fork schedule of a go-ethereum chain config, as go-ethereum reads it: Spurious Dragon
/// follows `eip158Block`, an unset Petersburg comes with Constantinople, the DAO fork only with
/// `daoForkSupport`. `paris` is decided by the caller (it may need the chain's difficulty
/// history). Forks the config does not schedule are left out.
pub fn geth_fork_schedule(
    c: &alloy_genesis::ChainConfig,
    paris: alloy_hardforks::ForkCondition,
) -> Vec<(
    alloy_hardforks::EthereumHardfork,
    alloy_hardforks::ForkCondition,
)> {
    use alloy_hardforks::{EthereumHardfork as F, ForkCondition};
    let block = |b: Option<u64>| b.map_or(ForkCondition::Never, ForkCondition::Block);
    let time = |t: Option<u64>| t.map_or(ForkCondition::Never, ForkCondition::Timestamp);
    let mut forks = vec![
        (F::Frontier, ForkCondition::Block(0)),
        (F::Homestead, block(c.homestead_block)),
    ];
    if c.dao_fork_support {
        forks.push((F::Dao, block(c.dao_fork_block)));
    }
    forks.extend([
        (F::Tangerine, block(c.eip150_block)),
        (F::SpuriousDragon, block(c.eip158_block.or(c.eip155_block))),
        (F::Byzantium, block(c.byzantium_block)),
        (F::Constantinople, block(c.constantinople_block)),
        (
            F::Petersburg,
            block(c.petersburg_block.or(c.constantinople_block)),
        ),
        (F::Istanbul, block(c.istanbul_block)),
        (F::MuirGlacier, block(c.muir_glacier_block)),
        (F::Berlin, block(c.berlin_block)),
        (F::London, block(c.london_block)),
        (F::ArrowGlacier, block(c.arrow_glacier_block)),
        (F::GrayGlacier, block(c.gray_glacier_block)),
        (F::Paris, paris),
        (F::Shanghai, time(c.shanghai_time)),
        (F::Cancun, time(c.cancun_time)),
        (F::Prague, time(c.prague_time)),
        (F::Osaka, time(c.osaka_time)),
        (F::Bpo1, time(c.bpo1_time)),
        (F::Bpo2, time(c.bpo2_time)),
        (F::Bpo3, time(c.bpo3_time)),
        (F::Bpo4, time(c.bpo4_time)),
        (F::Bpo5, time(c.bpo5_time)),
        (F::Amsterdam, time(c.amsterdam_time)),
    ]);
    forks.retain(|(_, cond)| *cond != ForkCondition::Never);
    forks
}
