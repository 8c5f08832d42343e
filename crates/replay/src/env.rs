//! What a block runs with: the chain's rules, the EVM environment under a configuration, and
//! the block prepared once (txs decoded and recovered) for every run of it, block mode or tx
//! mode, baseline or candidate.

use std::borrow::Cow;

use alloy_consensus::{Transaction, TxEnvelope, transaction::Recovered};
use alloy_evm::{
    EvmEnv,
    eth::{EthBlockExecutionCtx, spec::EthExecutorSpec},
};
use alloy_hardforks::{EthereumChainHardforks, EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::{Address, B256, Bloom};
use revm::{context::CfgEnv, primitives::hardfork::SpecId};
use txshadow_corpus::{BlockRecord, ChainConfig, StateMap, decode_tx};

use crate::{BlockOutcome, SideConfig, TxOutcome, config::spec_name};

/// The chain rules the block executor follows (fork schedule and deposit contract).
#[derive(Debug, Clone)]
pub struct ChainRules {
    hardforks: EthereumChainHardforks,
    deposit_contract: Option<Address>,
    rewards: bool,
}

impl ChainRules {
    /// Rules of `chain`; `rewards: false` removes block rewards (fixtures that pay none).
    pub fn new(chain: &ChainConfig, rewards: bool) -> Self {
        Self {
            hardforks: chain.hardforks(),
            deposit_contract: chain.deposit_contract,
            rewards,
        }
    }
}

impl EthereumHardforks for ChainRules {
    fn ethereum_fork_activation(&self, fork: EthereumHardfork) -> ForkCondition {
        if !self.rewards && fork == EthereumHardfork::Paris {
            // block rewards stop at Paris: a harness that pays none behaves as if merged
            // for reward purposes only (the EVM spec is chosen separately).
            return ForkCondition::Block(0);
        }
        self.hardforks.ethereum_fork_activation(fork)
    }
}

impl EthExecutorSpec for ChainRules {
    fn deposit_contract_address(&self) -> Option<Address> {
        self.deposit_contract
    }
}

/// Everything needed to run one block, under any configuration: the block, the chain it is on
/// and its txs, decoded and recovered once.
pub(crate) struct Prepared<'a> {
    pub(crate) block: &'a BlockRecord,
    pub(crate) chain: &'a ChainConfig,
    /// Each tx decoded, or why it could not be.
    pub(crate) txs: Vec<Result<Recovered<TxEnvelope>, String>>,
}

impl<'a> Prepared<'a> {
    /// Decodes `block`'s txs; the block's own chain config, if any, wins over `default_chain`.
    pub(crate) fn new(block: &'a BlockRecord, default_chain: &'a ChainConfig) -> Self {
        let chain = block.chain.as_ref().unwrap_or(default_chain);
        let txs = block
            .transactions
            .iter()
            .map(|t| decode_tx(&t.raw).map(|env| Recovered::new_unchecked(env, t.from)))
            .collect();
        Self { block, chain, txs }
    }

    /// The EVM environment under `side`.
    pub(crate) fn env(&self, side: &SideConfig) -> EvmEnv {
        block_env(self.block, self.chain, side)
    }

    /// The block executor's context (parent hash, ommers, withdrawals, ...).
    pub(crate) fn ctx(&self) -> EthBlockExecutionCtx<'a> {
        let b = self.block;
        EthBlockExecutionCtx {
            parent_hash: b.header.parent_hash,
            parent_beacon_block_root: b.header.parent_beacon_block_root,
            ommers: if b.conventions.rewards {
                &b.ommers
            } else {
                &[]
            },
            withdrawals: b.withdrawals.as_deref().map(Cow::Borrowed),
            extra_data: b.header.extra_data.clone(),
            tx_count_hint: Some(b.transactions.len()),
            slot_number: None,
        }
    }

    /// An outcome with the block's identity and nothing run yet.
    pub(crate) fn skeleton(&self, spec: SpecId) -> BlockOutcome {
        BlockOutcome {
            number: self.block.number(),
            hash: self.block.hash,
            label: self.block.label.clone(),
            spec: spec_name(spec),
            txs: Vec::with_capacity(self.txs.len()),
            gas_used: 0,
            receipts_root: B256::ZERO,
            logs_bloom: Bloom::ZERO,
            receipts_check: crate::ReceiptsCheck::default(),
            receipt_state_roots: false,
            state_root: None,
            state_root_exact: false,
            witness: None,
            post_state: StateMap::new(),
            storage_reset: vec![],
            unknown_accounts: vec![],
            error: None,
            gas_executed: 0,
        }
    }

    /// Tx `index`'s identity (hash, sender, recipient, selector, type), its result not set.
    pub(crate) fn tx_meta(&self, index: usize) -> TxOutcome {
        let rec = &self.block.transactions[index];
        let (to, selector, tx_type) = match &self.txs[index] {
            Ok(tx) => (
                tx.to(),
                tx.input()
                    .get(..4)
                    .map(|s| <[u8; 4]>::try_from(s).expect("4 bytes")),
                tx.tx_type() as u8,
            ),
            Err(_) => (
                None,
                None,
                rec.raw.first().copied().filter(|t| *t < 0x7f).unwrap_or(0),
            ),
        };
        TxOutcome {
            index,
            hash: rec.hash,
            from: rec.from,
            to,
            selector,
            tx_type,
            result: Err(String::new()),
        }
    }
}

/// The EVM environment (cfg with spec and chain id, block env) a block runs with under `side`:
/// the same one block mode and tx mode use.
pub fn evm_env(block: &BlockRecord, chain: &ChainConfig, side: &SideConfig) -> EvmEnv {
    block_env(block, block.chain.as_ref().unwrap_or(chain), side)
}

/// The header's block env and the chain's cfg at the block, with `side`'s forced spec.
fn block_env(block: &BlockRecord, chain: &ChainConfig, side: &SideConfig) -> EvmEnv {
    let h = &block.header;
    let hf = chain.hardforks();
    let blob = chain.blob_params_at(h.timestamp);
    let mut env = EvmEnv::for_eth_block(h, &hf, chain.chain_id, blob);
    if let Some(spec) = side.spec {
        let mut cfg = CfgEnv::new_with_spec(spec).with_chain_id(chain.chain_id);
        if let Some(b) = blob {
            cfg.set_max_blobs_per_tx(b.max_blobs_per_tx);
        }
        if spec.is_enabled_in(SpecId::OSAKA) {
            cfg.tx_gas_limit_cap = Some(alloy_eips::eip7825::MAX_TX_GAS_LIMIT_OSAKA);
        }
        env.cfg_env = cfg;
    }
    env
}
