//! The rules a header must keep against its parent, before anything runs: what a node checks
//! of a block it is given (a conformance test's invalid blocks). Execution-level checks (the
//! state root, receipts root, bloom and gas the block's txs give) are the replay's own.
//!
//! The arithmetic is alloy's (`next_block_base_fee`, `next_block_excess_blob_gas`); the rules
//! are those of the forks the chain has at the block: gas limit bounds (EIP-1559's elasticity
//! at London's first block), timestamps, extra data, the base fee (London), the merge's zero
//! difficulty, nonce and ommers (Paris), withdrawals (Shanghai), blob gas and the beacon root
//! (Cancun), requests (Prague).

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header, Transaction};
use alloy_eips::{eip1559::BaseFeeParams, eip4844::DATA_GAS_PER_BLOB};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::B64;
use txshadow_corpus::{BlockRecord, ChainConfig, decode_tx};

/// The smallest gas limit a block may have.
const MIN_GAS_LIMIT: u64 = 5000;
/// A block's gas limit moves less than the parent's over this from one block to the next.
const GAS_LIMIT_BOUND_DIVISOR: u64 = 1024;
/// Extra data is at most this long.
const MAX_EXTRA_DATA: usize = 32;

/// Checks `block`'s header against its parent's under `chain`'s rules: the first rule broken,
/// or `Ok`.
pub fn check_header(
    block: &BlockRecord,
    parent: &Header,
    chain: &ChainConfig,
) -> Result<(), String> {
    let h = &block.header;
    let hf = chain.hardforks();
    let (n, ts) = (h.number, h.timestamp);
    let fail = |s: String| Err(format!("header rule: {s}"));
    if n != parent.number + 1 || h.parent_hash != parent.hash_slow() {
        return fail(format!(
            "block {n} does not follow block {} ({})",
            parent.number,
            parent.hash_slow()
        ));
    }
    if ts <= parent.timestamp {
        return fail(format!(
            "timestamp {ts} is not after the parent's {}",
            parent.timestamp
        ));
    }
    if h.extra_data.len() > MAX_EXTRA_DATA {
        return fail(format!(
            "extra data of {} bytes (at most {MAX_EXTRA_DATA})",
            h.extra_data.len()
        ));
    }
    if h.gas_used > h.gas_limit {
        return fail(format!(
            "gas used {} over the gas limit {}",
            h.gas_used, h.gas_limit
        ));
    }
    let london = hf.is_london_active_at_block(n);
    let parent_limit = if london && !hf.is_london_active_at_block(parent.number) {
        parent.gas_limit * 2 // EIP-1559's elasticity multiplier at the fork
    } else {
        parent.gas_limit
    };
    let bound = parent_limit / GAS_LIMIT_BOUND_DIVISOR;
    if h.gas_limit.abs_diff(parent_limit) >= bound || h.gas_limit < MIN_GAS_LIMIT {
        return fail(format!(
            "gas limit {} outside the bounds of the parent's {parent_limit} (± under {bound}, at least {MIN_GAS_LIMIT})",
            h.gas_limit
        ));
    }
    if london {
        let want = if hf.is_london_active_at_block(parent.number) {
            parent.next_block_base_fee(BaseFeeParams::ethereum())
        } else {
            Some(alloy_eips::eip1559::INITIAL_BASE_FEE)
        };
        if h.base_fee_per_gas != want {
            return fail(format!(
                "base fee {:?}, the parent gives {want:?}",
                h.base_fee_per_gas
            ));
        }
    }
    if hf.is_paris_active_at_block(n)
        && (!h.difficulty.is_zero()
            || h.nonce != B64::ZERO
            || h.ommers_hash != EMPTY_OMMER_ROOT_HASH)
    {
        return fail("a post-merge header with a difficulty, a nonce or ommers".into());
    }
    let shanghai = hf.is_shanghai_active_at_timestamp(ts);
    if shanghai != h.withdrawals_root.is_some() || shanghai != block.withdrawals.is_some() {
        return fail(format!(
            "withdrawals {} Shanghai",
            if shanghai { "missing after" } else { "before" }
        ));
    }
    check_blobs(block, parent, chain)?;
    let prague = hf.is_prague_active_at_timestamp(ts);
    if prague != h.requests_hash.is_some() {
        return fail(format!(
            "requests hash {} Prague",
            if prague { "missing after" } else { "before" }
        ));
    }
    Ok(())
}

/// Cancun's fields: blob gas used (the txs' own, at most the block's maximum), the excess blob
/// gas the parent gives, the beacon root.
fn check_blobs(block: &BlockRecord, parent: &Header, chain: &ChainConfig) -> Result<(), String> {
    let h = &block.header;
    let cancun = chain.hardforks().is_cancun_active_at_timestamp(h.timestamp);
    let fields = [
        h.blob_gas_used.is_some(),
        h.excess_blob_gas.is_some(),
        h.parent_beacon_block_root.is_some(),
    ];
    if fields.iter().any(|f| *f != cancun) {
        return Err(format!(
            "header rule: blob gas fields or beacon root {} Cancun",
            if cancun { "missing after" } else { "before" }
        ));
    }
    let Some(params) = chain.blob_params_at(h.timestamp).filter(|_| cancun) else {
        return Ok(());
    };
    let blobs: u64 = block
        .transactions
        .iter()
        .filter_map(|t| decode_tx(&t.raw).ok())
        .filter_map(|t| t.blob_versioned_hashes().map(|v| v.len() as u64))
        .sum();
    let used = blobs * DATA_GAS_PER_BLOB;
    if h.blob_gas_used != Some(used) || used > params.max_blob_gas_per_block() {
        return Err(format!(
            "header rule: blob gas used {:?}, the txs use {used} (at most {})",
            h.blob_gas_used,
            params.max_blob_gas_per_block()
        ));
    }
    let want = if chain
        .hardforks()
        .is_cancun_active_at_timestamp(parent.timestamp)
    {
        parent.next_block_excess_blob_gas(params)
    } else {
        Some(0)
    };
    if h.excess_blob_gas != want {
        return Err(format!(
            "header rule: excess blob gas {:?}, the parent gives {want:?}",
            h.excess_blob_gas
        ));
    }
    Ok(())
}
