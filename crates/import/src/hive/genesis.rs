//! The chain config and genesis of a hive chain, as go-ethereum reads `genesis.json`.

use std::path::Path;

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header};
use alloy_eips::{eip1559::INITIAL_BASE_FEE, eip7685::EMPTY_REQUESTS_HASH, eip7840::BlobParams};
use alloy_genesis::Genesis;
use alloy_hardforks::{EthereumHardfork, ForkCondition};
use alloy_primitives::{Address, B64, B256, Bytes, U256};
use alloy_trie::EMPTY_ROOT_HASH;
use txshadow_corpus::{AccountState, ChainConfig, KECCAK_EMPTY, default_blob_schedule, parse_fork};

use crate::ImportError;
use crate::chain::{ChainBlock, FullState};

/// Paris as geth decides it: a block is post-merge when its parent's total difficulty reached
/// the terminal total difficulty (a genesis of difficulty 0 under a TTD of 0 is post-merge). Checked against `mergeNetsplitBlock` and against the first
/// header with zero difficulty; a disagreement is an error (the chain would not be valid).
fn paris(
    genesis: &Genesis,
    blocks: &[ChainBlock],
    path: &Path,
) -> Result<ForkCondition, ImportError> {
    let cfg = &genesis.config;
    let Some(ttd) = cfg.terminal_total_difficulty else {
        if let Some(b) = blocks.iter().find(|b| b.block.header.difficulty.is_zero()) {
            return Err(ImportError::source(
                path,
                format!(
                    "block {} has zero difficulty but the config has no terminalTotalDifficulty",
                    b.block.header.number
                ),
            ));
        }
        return Ok(ForkCondition::Never);
    };
    let genesis_number = genesis.number.unwrap_or_default();
    // the first block whose parent's total difficulty reaches the TTD
    let mut activation = None;
    let mut td = genesis.difficulty;
    if ttd.is_zero() && genesis.difficulty.is_zero() {
        activation = Some(genesis_number);
    } else if td >= ttd {
        activation = Some(genesis_number + 1);
    } else {
        for b in blocks {
            td += b.block.header.difficulty;
            if td >= ttd {
                activation = Some(b.block.header.number + 1);
                break;
            }
        }
    }
    let first_pos = blocks
        .iter()
        .find(|b| b.block.header.difficulty.is_zero())
        .map(|b| b.block.header.number);
    let last = blocks
        .last()
        .map_or(genesis_number, |b| b.block.header.number);
    // the first post-merge block of the chain file: the activation block, or the file's first
    // block when the genesis itself is post-merge (a chain merged from genesis: difficulty 0,
    // terminalTotalDifficulty 0, as every Paris-or-later test chain)
    let first_number = blocks
        .first()
        .map_or(genesis_number, |b| b.block.header.number);
    match (activation, first_pos) {
        (Some(a), Some(f)) if a.max(first_number) != f => {
            return Err(ImportError::source(
                path,
                format!(
                    "terminalTotalDifficulty {ttd} is reached before block {a}, but the first \
                     zero-difficulty block is {f}"
                ),
            ));
        }
        (Some(a), None) if a <= last => {
            return Err(ImportError::source(
                path,
                format!("block {a} is past terminalTotalDifficulty {ttd} but has a difficulty"),
            ));
        }
        (None, Some(f)) => {
            return Err(ImportError::source(
                path,
                format!("block {f} has zero difficulty before terminalTotalDifficulty {ttd}"),
            ));
        }
        _ => {}
    }
    if let (Some(a), Some(split)) = (activation, cfg.merge_netsplit_block)
        && a != split
    {
        return Err(ImportError::source(
            path,
            format!("mergeNetsplitBlock is {split} but terminalTotalDifficulty is reached at {a}"),
        ));
    }
    Ok(
        match activation.or(cfg.merge_netsplit_block).or(first_pos) {
            Some(activation_block_number) => ForkCondition::TTD {
                activation_block_number,
                fork_block: cfg.merge_netsplit_block,
                total_difficulty: ttd,
            },
            None => ForkCondition::Never,
        },
    )
}

/// The chain config as go-ethereum reads `genesis.json`.
pub(super) fn chain_config(
    genesis: &Genesis,
    blocks: &[ChainBlock],
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<ChainConfig, ImportError> {
    use EthereumHardfork as F;
    let c = &genesis.config;
    if c.clique.is_some() {
        return Err(ImportError::source(
            path,
            "clique (proof-of-authority) chains are not supported: their rewards and signer \
             rules differ",
        ));
    }
    if c.eip155_block != c.eip158_block {
        notes.push(format!(
            "eip155Block {:?} differs from eip158Block {:?}: Spurious Dragon follows eip158Block",
            c.eip155_block, c.eip158_block
        ));
    }
    let forks = txshadow_rpc::geth_fork_schedule(c, paris(genesis, blocks, path)?);

    // blob parameters: the genesis's, else Ethereum's for that fork
    let defaults = default_blob_schedule();
    let mut blob_schedule: Vec<(F, BlobParams)> = vec![];
    for (fork, _) in &forks {
        let key = fork.name().to_ascii_lowercase();
        let given = c
            .blob_schedule
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&key))
            .map(|(_, p)| *p);
        let default = defaults.iter().find(|(f, _)| f == fork).map(|(_, p)| *p);
        let params = match (given, default) {
            (Some(p), _) if *fork >= F::Osaka => Some(
                // as alloy-genesis reads it: from Osaka on, the base cost and per-tx cap apply
                p.with_blob_base_cost(alloy_eips::eip7840::BLOB_BASE_COST)
                    .with_max_blobs_per_tx(alloy_eips::eip7594::MAX_BLOBS_PER_TX_FUSAKA),
            ),
            (Some(p), _) => Some(p),
            (None, Some(d)) => {
                notes.push(format!(
                    "genesis.json has no blobSchedule for {key}: Ethereum's default is used"
                ));
                Some(d)
            }
            (None, None) => None,
        };
        if let Some(p) = params {
            blob_schedule.push((*fork, p));
        }
    }
    for key in c.blob_schedule.keys() {
        if !parse_fork(key).is_some_and(|f| forks.iter().any(|(g, _)| *g == f)) {
            notes.push(format!(
                "blobSchedule.{key} ignored: the chain does not schedule that fork"
            ));
        }
    }
    Ok(ChainConfig {
        chain_id: c.chain_id,
        name: "hive".into(),
        forks,
        deposit_contract: Some(c.deposit_contract_address.unwrap_or(Address::ZERO)),
        blob_schedule,
    })
}

/// The genesis state from `alloc` (zero slots dropped).
pub(super) fn genesis_state(genesis: &Genesis) -> (FullState, Vec<Bytes>) {
    let mut state = FullState::new();
    let mut codes = vec![];
    for (addr, acc) in &genesis.alloc {
        let code_hash = match acc.code.as_ref().filter(|c| !c.is_empty()) {
            Some(code) => {
                codes.push(code.clone());
                alloy_primitives::keccak256(code)
            }
            None => KECCAK_EMPTY,
        };
        let storage = acc
            .storage_slots()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (U256::from_be_bytes(k.0), v))
            .collect();
        state.insert(
            *addr,
            AccountState {
                balance: acc.balance,
                nonce: acc.nonce.unwrap_or_default(),
                code_hash,
                storage,
            },
        );
    }
    (state, codes)
}

/// The genesis header as go-ethereum builds it (`Genesis.ToBlock`).
pub(super) fn genesis_header(genesis: &Genesis, chain: &ChainConfig, state_root: B256) -> Header {
    let number = genesis.number.unwrap_or_default();
    let ts = genesis.timestamp;
    let active = |f: EthereumHardfork| {
        let cond = chain.activation(f);
        cond.active_at_block(number) || cond.active_at_timestamp(ts)
    };
    let cancun = active(EthereumHardfork::Cancun);
    Header {
        parent_hash: genesis.parent_hash.unwrap_or_default(),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: genesis.coinbase,
        state_root,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        logs_bloom: Default::default(),
        difficulty: genesis.difficulty,
        number,
        gas_limit: genesis.gas_limit,
        gas_used: 0,
        timestamp: ts,
        extra_data: genesis.extra_data.clone(),
        mix_hash: genesis.mix_hash,
        nonce: B64::from(genesis.nonce),
        base_fee_per_gas: active(EthereumHardfork::London).then(|| {
            genesis
                .base_fee_per_gas
                .map_or(INITIAL_BASE_FEE, |f| f as u64)
        }),
        withdrawals_root: active(EthereumHardfork::Shanghai).then_some(EMPTY_ROOT_HASH),
        blob_gas_used: cancun.then(|| genesis.blob_gas_used.unwrap_or_default()),
        excess_blob_gas: cancun.then(|| genesis.excess_blob_gas.unwrap_or_default()),
        parent_beacon_block_root: cancun.then_some(B256::ZERO),
        requests_hash: active(EthereumHardfork::Prague).then_some(EMPTY_REQUESTS_HASH),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{Block, BlockBody, Header};
    use alloy_primitives::U256;

    use super::*;

    fn chain_block(number: u64, difficulty: u64) -> ChainBlock {
        ChainBlock {
            hash: B256::with_last_byte(number as u8),
            block: Block {
                header: Header {
                    number,
                    difficulty: U256::from(difficulty),
                    ..Default::default()
                },
                body: BlockBody::default(),
            },
            txs: vec![],
        }
    }

    #[test]
    fn a_chain_merged_from_genesis_is_post_merge_from_its_first_block() {
        let mut g = Genesis {
            difficulty: U256::ZERO,
            ..Default::default()
        };
        g.config.terminal_total_difficulty = Some(U256::ZERO);
        g.config.terminal_total_difficulty_passed = true;
        let blocks = [chain_block(1, 0), chain_block(2, 0)];
        let c = paris(&g, &blocks, Path::new("genesis.json")).unwrap();
        assert!(c.active_at_block(0) && c.active_at_block(1), "{c:?}");
        // a proof-of-work chain that reaches its TTD at block 2 still is checked
        g.difficulty = U256::from(1);
        g.config.terminal_total_difficulty = Some(U256::from(2));
        let blocks = [chain_block(1, 1), chain_block(2, 0)];
        let c = paris(&g, &blocks, Path::new("genesis.json")).unwrap();
        assert!(!c.active_at_block(1) && c.active_at_block(2), "{c:?}");
        let blocks = [chain_block(1, 0), chain_block(2, 0)];
        let e = paris(&g, &blocks, Path::new("genesis.json")).unwrap_err();
        assert!(
            e.to_string().contains("block 1 has zero difficulty before"),
            "{e}"
        );
    }
}
