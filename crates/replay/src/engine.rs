//! The revm engine: block mode and tx mode over one corpus block.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
    panic::{AssertUnwindSafe, catch_unwind},
};

use alloy_consensus::{Eip658Value, Transaction, TxEnvelope, TxReceipt, transaction::Recovered};
use alloy_eips::eip2718::Encodable2718;
use alloy_evm::{
    Evm, EvmEnv, EvmFactory, FromRecoveredTx,
    block::BlockExecutor,
    eth::{EthBlockExecutionCtx, EthBlockExecutor, EthEvmFactory, spec::EthExecutorSpec},
};
use alloy_hardforks::{EthereumChainHardforks, EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::{Address, B256, Bloom, Bytes, U256};
use alloy_trie::{EMPTY_ROOT_HASH, TrieAccount};
use rayon::prelude::*;
use revm::{
    bytecode::Bytecode,
    context::{CfgEnv, TxEnv},
    context_interface::result::{ExecutionResult, HaltReason, ResultAndState},
    database::{AccountState as DbAccountState, State},
    database_interface::Database,
    database_interface::DatabaseRef,
    primitives::{StorageKey, hardfork::SpecId},
    state::{AccountInfo, EvmState},
};
use txshadow_corpus::{AccountState, BlockRecord, ChainConfig, KECCAK_EMPTY, StateMap, decode_tx};

use crate::{
    BlockDb, BlockOutcome, Codes, CorpusDb, DbError, OverlayDb, SideConfig, TxExec, TxOutcome,
    config::spec_name, db::block_db, receipts::BlockReceiptBuilder, witness::verify_pre_state,
};

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

/// Everything needed to run one block: decoded txs and the environment per side.
struct Prepared<'a> {
    block: &'a BlockRecord,
    chain: &'a ChainConfig,
    txs: Vec<Result<Recovered<TxEnvelope>, String>>,
    /// Whether block mode records each tx's state changes (`TxExec::state`).
    tx_state: bool,
}

impl<'a> Prepared<'a> {
    fn new(block: &'a BlockRecord, default_chain: &'a ChainConfig) -> Self {
        let chain = block.chain.as_ref().unwrap_or(default_chain);
        let txs = block
            .transactions
            .iter()
            .map(|t| decode_tx(&t.raw).map(|env| Recovered::new_unchecked(env, t.from)))
            .collect();
        Self {
            block,
            chain,
            txs,
            tx_state: true,
        }
    }

    fn env(&self, side: &SideConfig) -> EvmEnv {
        block_env(self.block, self.chain, side)
    }

    fn ctx(&self) -> EthBlockExecutionCtx<'a> {
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

    fn skeleton(&self, spec: SpecId) -> BlockOutcome {
        BlockOutcome {
            number: self.block.number(),
            hash: self.block.hash,
            label: self.block.label.clone(),
            spec: spec_name(spec),
            txs: Vec::with_capacity(self.txs.len()),
            gas_used: 0,
            receipts_root: B256::ZERO,
            logs_bloom: Bloom::ZERO,
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

    fn tx_meta(&self, index: usize) -> TxOutcome {
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

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn tx_exec(
    result: &ExecutionResult<HaltReason>,
    state: &EvmState,
    spec: SpecId,
    cumulative: u64,
    new_codes: &mut HashMap<B256, Bytecode>,
    known: &Codes,
) -> TxExec {
    let gas = result.gas();
    let (output, reason) = match result {
        ExecutionResult::Success { output, .. } => (output.data().clone(), None),
        ExecutionResult::Revert { output, .. } => (output.clone(), Some("reverted".to_string())),
        ExecutionResult::Halt { reason, .. } => (Bytes::new(), Some(format!("{reason:?}"))),
    };
    let mut changes = StateMap::new();
    let mut storage_reset = Vec::new();
    for (addr, acc) in state {
        if !acc.is_touched() {
            continue;
        }
        if acc.is_selfdestructed() || acc.state_clear_aware_is_empty(spec) {
            changes.insert(*addr, None);
            storage_reset.push(*addr);
            continue;
        }
        if acc.is_created() {
            storage_reset.push(*addr);
        }
        if acc.info.code_hash != KECCAK_EMPTY
            && !known.contains(&acc.info.code_hash)
            && let Some(code) = &acc.info.code
        {
            new_codes
                .entry(acc.info.code_hash)
                .or_insert_with(|| code.clone());
        }
        let storage: BTreeMap<U256, U256> = acc
            .changed_storage_slots()
            .map(|(k, v)| (*k, v.present_value()))
            .collect();
        changes.insert(
            *addr,
            Some(AccountState {
                balance: acc.info.balance,
                nonce: acc.info.nonce,
                code_hash: acc.info.code_hash,
                storage,
            }),
        );
    }
    TxExec {
        status: result.is_success(),
        gas_used: result.tx_gas_used(),
        gas_spent: gas.total_gas_spent(),
        gas_refunded: gas.final_refunded(),
        cumulative_gas_used: cumulative,
        output,
        reason,
        // block mode moves the logs out of the receipts, tx mode out of the result
        logs: Vec::new(),
        created: result.created_address(),
        state: changes,
        storage_reset,
    }
}

/// Replays a block in block mode under one configuration: system calls, every tx in order,
/// rewards/withdrawals/requests, then receipts root, logs bloom and post-state.
pub fn run_block(
    block: &BlockRecord,
    chain: &ChainConfig,
    codes: &Codes,
    side: &SideConfig,
) -> BlockOutcome {
    let p = Prepared::new(block, chain);
    run_prepared(&p, codes, side).0
}

/// [`run_block`] without each tx's state changes (`TxExec::state` and `storage_reset` left
/// empty): what a comparison against the chain needs when the chain recorded receipts and the
/// post-block state but no per-tx state. Building those maps for every tx was the largest cost
/// of block mode outside revm.
pub fn run_block_receipts_only(
    block: &BlockRecord,
    chain: &ChainConfig,
    codes: &Codes,
    side: &SideConfig,
) -> BlockOutcome {
    let mut p = Prepared::new(block, chain);
    p.tx_state = false;
    run_prepared(&p, codes, side).0
}

/// [`run_block`] under two configurations side by side (baseline, candidate), decoding the
/// block's txs once for both.
pub fn run_block_pair(
    block: &BlockRecord,
    chain: &ChainConfig,
    codes: &Codes,
    baseline: &SideConfig,
    candidate: &SideConfig,
) -> (BlockOutcome, BlockOutcome) {
    let p = Prepared::new(block, chain);
    let (b, c) = rayon::join(
        || run_prepared(&p, codes, baseline),
        || run_prepared(&p, codes, candidate),
    );
    (b.0, c.0)
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

/// [`run_block`], also returning the codes the block deployed that `codes` does not hold (by
/// hash), so a caller can carry the post-state forward as the next block's pre-state.
pub fn run_block_with_new_codes(
    block: &BlockRecord,
    chain: &ChainConfig,
    codes: &Codes,
    side: &SideConfig,
) -> (BlockOutcome, HashMap<B256, Bytecode>) {
    let p = Prepared::new(block, chain);
    let (out, trace) = run_prepared(&p, codes, side);
    (out, trace.new_codes)
}

/// What the block run leaves for tx mode: per-tx changes and the codes created in the block.
struct BlockTrace {
    new_codes: HashMap<B256, Bytecode>,
    /// State after the pre-execution system calls.
    system_changes: StateMap,
}

fn run_prepared(p: &Prepared<'_>, codes: &Codes, side: &SideConfig) -> (BlockOutcome, BlockTrace) {
    let env = p.env(side);
    let spec = env.cfg_env.spec;
    let mut out = p.skeleton(spec);
    let mut trace = BlockTrace {
        new_codes: HashMap::new(),
        system_changes: StateMap::new(),
    };
    let res = catch_unwind(AssertUnwindSafe(|| {
        execute_block(p, codes, side, env, &mut out, &mut trace)
    }));
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => out.error = Some(e),
        Err(panic) => out.error = Some(format!("panic during replay: {}", panic_text(panic))),
    }
    (out, trace)
}

fn execute_block(
    p: &Prepared<'_>,
    codes: &Codes,
    side: &SideConfig,
    env: EvmEnv,
    out: &mut BlockOutcome,
    trace: &mut BlockTrace,
) -> Result<(), String> {
    let block = p.block;
    let spec = env.cfg_env.spec;
    let empty_is_absent = spec.is_enabled_in(SpecId::SPURIOUS_DRAGON);
    let mut witness = match block
        .witness
        .as_ref()
        .map(|w| verify_pre_state(block, w, empty_is_absent))
    {
        Some(Err(w)) => {
            let e = w.error.clone().unwrap_or_default();
            out.witness = Some(w);
            return Err(e);
        }
        Some(Ok(v)) => Some(v),
        None => None,
    };
    let rules = ChainRules::new(p.chain, block.conventions.rewards);
    // the pre-state in memory; the post-state is read from it at the end (`post_state_from_db`)
    let mut state = block_db(block, codes, &side.overrides);
    let factory = EthEvmFactory::default();
    {
        let evm = factory.create_evm(&mut state, env);
        let mut ex = EthBlockExecutor::new(evm, p.ctx(), &rules, BlockReceiptBuilder::default());
        if block.conventions.system_calls {
            ex.apply_pre_execution_changes()
                .map_err(|e| format!("pre-block system calls: {e}"))?;
            let db = ex.evm_mut().db_mut();
            for addr in [
                alloy_eips::eip4788::BEACON_ROOTS_ADDRESS,
                alloy_eips::eip2935::HISTORY_STORAGE_ADDRESS,
            ] {
                if let Some(acc) = db.cache.accounts.get(&addr)
                    && let Some(info) = acc.info()
                {
                    trace.system_changes.insert(
                        addr,
                        Some(AccountState {
                            balance: info.balance,
                            nonce: info.nonce,
                            code_hash: info.code_hash,
                            storage: acc.storage.iter().map(|(k, v)| (*k, *v)).collect(),
                        }),
                    );
                }
            }
        }
        // before Byzantium a receipt holds the state root after its tx, built from the changes
        let tx_state = p.tx_state || !spec.is_enabled_in(SpecId::BYZANTIUM);
        let no_changes = EvmState::default();
        let mut cumulative = 0u64;
        for (i, tx) in p.txs.iter().enumerate() {
            let mut o = p.tx_meta(i);
            let tx = match tx {
                Ok(tx) => tx,
                Err(e) => {
                    o.result = Err(e.clone());
                    out.txs.push(o);
                    continue;
                }
            };
            let mut exec = None;
            let new_codes = &mut trace.new_codes;
            let r = catch_unwind(AssertUnwindSafe(|| {
                ex.execute_transaction_with_result_closure(tx, |r| {
                    let ResultAndState { result, state } = &r.result;
                    let g = result.tx_gas_used();
                    let state = if tx_state { state } else { &no_changes };
                    exec = Some(tx_exec(
                        result,
                        state,
                        spec,
                        cumulative + g,
                        new_codes,
                        codes,
                    ));
                })
            }));
            o.result = match r {
                Ok(Ok(_)) => {
                    let e = exec.expect("closure ran");
                    cumulative = e.cumulative_gas_used;
                    Ok(e)
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(panic) => Err(format!("panic: {}", panic_text(panic))),
            };
            out.txs.push(o);
        }
        let mut receipts = if block.conventions.rewards || block.conventions.system_calls {
            let (_evm, result) = ex
                .finish()
                .map_err(|e| format!("post-block changes: {e}"))?;
            out.gas_used = result.gas_used;
            result.receipts
        } else {
            let r = ex.receipts().to_vec();
            out.gas_used = cumulative;
            r
        };
        if !spec.is_enabled_in(SpecId::BYZANTIUM)
            && !rules
                .ethereum_fork_activation(EthereumHardfork::Dao)
                .transitions_at_block(block.number())
            && let Some(roots) = intermediate_state_roots(block, &out.txs)
                .or_else(|| witness.as_mut()?.intermediate_roots(&out.txs))
        {
            for (r, root) in receipts.iter_mut().zip(roots) {
                if let Some(r) = r.as_receipt_with_bloom_mut() {
                    r.receipt.status = Eip658Value::PostState(root);
                }
            }
        }
        out.receipts_root =
            alloy_trie::root::ordered_trie_root_with_encoder(&receipts, |r, buf| {
                r.encode_2718(buf)
            });
        let mut bloom = Bloom::ZERO;
        for r in &receipts {
            bloom.accrue_bloom(&r.bloom());
        }
        out.logs_bloom = bloom;
        // every executed tx has its receipt, in order: the logs move into the outcome
        let executed = out.txs.iter().filter(|t| t.result.is_ok()).count();
        if executed != receipts.len() {
            return Err(format!(
                "{executed} txs executed but {} receipts built",
                receipts.len()
            ));
        }
        let execs = out.txs.iter_mut().filter_map(|t| t.result.as_mut().ok());
        for (e, r) in execs.zip(receipts) {
            e.logs = r.into_logs();
        }
    }
    out.gas_executed = out
        .txs
        .iter()
        .filter_map(|t| t.exec())
        .map(|e| e.gas_used)
        .sum();
    post_state_from_db(&state, spec, out);
    out.unknown_accounts = state.db.take_unknown();
    out.unknown_accounts.sort();
    out.unknown_accounts.dedup();
    if block.pre_state_is_full {
        // the real state root; over a partial pre-state a root says nothing the post-state does
        // not, so it is only computed when two replays differ (see `post_state_root`)
        let (root, exact) = post_state_root(block, &out.post_state, &out.storage_reset);
        out.state_root = Some(root);
        out.state_root_exact = exact;
    }
    if let Some(w) = witness {
        let (root, info) = w.finish(&out.post_state, &out.storage_reset);
        if let Some(root) = root {
            out.state_root = Some(root);
            out.state_root_exact = true;
        }
        out.witness = Some(info);
    }
    Ok(())
}

/// The block's post-state, read from the in-memory state: every account the block changed,
/// with the slots whose value differs from the pre-state (under the side's overrides); an
/// account whose storage was wiped (destroyed, or created over an address) is listed in
/// `storage_reset` with every slot it has since. From Spurious Dragon on, an account left empty
/// is deleted (EIP-161).
fn post_state_from_db(db: &BlockDb<'_>, spec: SpecId, out: &mut BlockOutcome) {
    let pre = &db.db;
    for (addr, acc) in &db.cache.accounts {
        let post = match acc.account_state {
            // loaded (or in the pre-state) and never written
            DbAccountState::None => continue,
            DbAccountState::NotExisting => {
                // destroyed, or never there: only a change if it existed before
                if matches!(pre.basic_ref(*addr), Ok(Some(_))) {
                    out.storage_reset.push(*addr);
                    None
                } else {
                    continue;
                }
            }
            DbAccountState::StorageCleared | DbAccountState::Touched => {
                let cleared = acc.account_state == DbAccountState::StorageCleared;
                if cleared {
                    out.storage_reset.push(*addr);
                }
                let info = &acc.info;
                if spec.is_enabled_in(SpecId::SPURIOUS_DRAGON) && info.is_empty() {
                    None
                } else {
                    Some(AccountState {
                        balance: info.balance,
                        nonce: info.nonce,
                        code_hash: info.code_hash,
                        storage: acc
                            .storage
                            .iter()
                            .filter(|(k, v)| {
                                cleared || pre.storage_ref(*addr, **k).ok() != Some(**v)
                            })
                            .map(|(k, v)| (*k, *v))
                            .collect(),
                    })
                }
            }
        };
        out.post_state.insert(*addr, post);
    }
    out.storage_reset.sort();
}

/// The state root after the block: the real one when the pre-state is the full state, otherwise
/// a root over the accounts the pre-state lists plus those the block changed (comparable between
/// two replays of the same corpus, not with the header).
pub fn post_state_root(
    block: &BlockRecord,
    post: &StateMap,
    storage_reset: &[Address],
) -> (B256, bool) {
    let mut accounts = existing_accounts(&block.pre_state);
    apply_changes(&mut accounts, post, storage_reset);
    (state_root(&accounts), block.pre_state_is_full)
}

/// Pre-Byzantium receipts carry the state root after their tx instead of a status (EIP-658
/// replaced it). With the full state as pre-state those roots are computable: the pre-state with
/// the changes of the txs up to and including each one (block rewards come after the last tx, as
/// in go-ethereum). `None` when the pre-state is partial or a tx did not execute.
fn intermediate_state_roots(block: &BlockRecord, txs: &[TxOutcome]) -> Option<Vec<B256>> {
    if !block.pre_state_is_full {
        return None;
    }
    let mut accounts = existing_accounts(&block.pre_state);
    txs.iter()
        .map(|t| {
            let e = t.exec()?;
            apply_changes(&mut accounts, &e.state, &e.storage_reset);
            Some(state_root(&accounts))
        })
        .collect()
}

/// The state root of `pre` (taken as the whole state) after `post`'s changes; `storage_reset`
/// lists accounts whose storage was wiped before the changes.
pub fn state_root_after(pre: &StateMap, post: &StateMap, storage_reset: &[Address]) -> B256 {
    let mut accounts = existing_accounts(pre);
    apply_changes(&mut accounts, post, storage_reset);
    state_root(&accounts)
}

fn existing_accounts(pre: &StateMap) -> BTreeMap<Address, AccountState> {
    pre.iter()
        .filter_map(|(a, s)| s.as_ref().map(|s| (*a, s.clone())))
        .collect()
}

/// Lays changed accounts over `accounts`: `None` removes; an account in `storage_reset` loses
/// its storage before its changed slots are written; a slot set to zero is removed (a zero slot
/// and an absent one are the same state).
pub fn apply_changes(
    accounts: &mut BTreeMap<Address, AccountState>,
    post: &StateMap,
    storage_reset: &[Address],
) {
    for (a, s) in post {
        match s {
            None => {
                accounts.remove(a);
            }
            Some(s) => {
                let e = accounts.entry(*a).or_default();
                if storage_reset.contains(a) {
                    e.storage.clear();
                }
                e.balance = s.balance;
                e.nonce = s.nonce;
                e.code_hash = s.code_hash;
                for (k, v) in &s.storage {
                    if v.is_zero() {
                        e.storage.remove(k);
                    } else {
                        e.storage.insert(*k, *v);
                    }
                }
            }
        }
    }
}

/// The state root over `accounts` (zero slots are absent from the trie).
pub fn state_root(accounts: &BTreeMap<Address, AccountState>) -> B256 {
    alloy_trie::root::state_root_unhashed(accounts.iter().map(|(a, s)| {
        let storage_root = if s.storage.values().all(|v| v.is_zero()) {
            EMPTY_ROOT_HASH
        } else {
            alloy_trie::root::storage_root_unhashed(
                s.storage
                    .iter()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(k, v)| (B256::from(*k), *v)),
            )
        };
        (
            *a,
            TrieAccount {
                nonce: s.nonce,
                balance: s.balance,
                storage_root,
                code_hash: s.code_hash,
            },
        )
    }))
}

#[derive(Debug)]
/// A tx's own pre-state: the block pre-state with the changes of the earlier txs (and the
/// pre-block system calls) layered on top, looked up by binary search per account and slot.
struct TxLayers {
    accounts: HashMap<Address, Vec<(usize, Option<AccountState>)>>,
    slots: HashMap<(Address, U256), Vec<(usize, U256)>>,
    resets: HashMap<Address, Vec<usize>>,
    codes: HashMap<B256, Bytecode>,
}

impl TxLayers {
    /// Layer 0 holds the system calls' writes; tx `i`'s changes are layer `i + 1`.
    fn build(system: &StateMap, txs: &[TxOutcome], codes: HashMap<B256, Bytecode>) -> Self {
        let mut l = Self {
            accounts: HashMap::new(),
            slots: HashMap::new(),
            resets: HashMap::new(),
            codes,
        };
        let layers = std::iter::once((0, system, &[][..])).chain(
            txs.iter().enumerate().filter_map(|(i, t)| {
                t.exec()
                    .map(|e| (i + 1, &e.state, e.storage_reset.as_slice()))
            }),
        );
        for (i, state, resets) in layers {
            for a in resets {
                l.resets.entry(*a).or_default().push(i);
            }
            for (a, s) in state {
                l.accounts.entry(*a).or_default().push((i, s.clone()));
                if let Some(s) = s {
                    for (k, v) in &s.storage {
                        l.slots.entry((*a, *k)).or_default().push((i, *v));
                    }
                }
            }
        }
        l
    }
}

/// Database of tx layer `index` (tx `index - 1`): the layers below it over the block's pre-state.
#[derive(Debug)]
pub struct TxDb<'a> {
    base: CorpusDb<'a>,
    layers: &'a TxLayers,
    index: usize,
}

fn last_before<T>(v: &[(usize, T)], index: usize) -> Option<&(usize, T)> {
    let n = v.partition_point(|(i, _)| *i < index);
    n.checked_sub(1).map(|k| &v[k])
}

impl Database for TxDb<'_> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        match self
            .layers
            .accounts
            .get(&address)
            .and_then(|v| last_before(v, self.index))
        {
            Some((_, None)) => Ok(None),
            Some((_, Some(s))) => {
                let code = if s.code_hash == KECCAK_EMPTY {
                    Bytecode::default()
                } else {
                    self.code_by_hash(s.code_hash)?
                };
                Ok(Some(AccountInfo {
                    balance: s.balance,
                    nonce: s.nonce,
                    code_hash: s.code_hash,
                    code: Some(code),
                    ..Default::default()
                }))
            }
            None => self.base.basic(address),
        }
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        if let Some(c) = self.layers.codes.get(&code_hash) {
            return Ok(c.clone());
        }
        self.base.code_by_hash(code_hash)
    }

    fn storage(&mut self, address: Address, index: StorageKey) -> Result<U256, DbError> {
        let reset = self.layers.resets.get(&address).and_then(|v| {
            let n = v.partition_point(|i| *i < self.index);
            n.checked_sub(1).map(|k| v[k])
        });
        if let Some((i, v)) = self
            .layers
            .slots
            .get(&(address, index))
            .and_then(|v| last_before(v, self.index))
            && reset.is_none_or(|r| *i >= r)
        {
            return Ok(*v);
        }
        if reset.is_some() {
            return Ok(U256::ZERO);
        }
        self.base.storage(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        self.base.block_hash(number)
    }
}

/// Runs one tx on its own pre-state in a fresh EVM.
fn run_one_tx<DB: alloy_evm::Database>(
    db: DB,
    env: EvmEnv,
    tx: &Recovered<TxEnvelope>,
    o: &mut TxOutcome,
    codes: &Codes,
) {
    let spec = env.cfg_env.spec;
    let factory = EthEvmFactory::default();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut evm = factory.create_evm(db, env);
        let tx_env = TxEnv::from_recovered_tx(tx.inner(), tx.signer());
        evm.transact(tx_env)
    }));
    o.result = match r {
        Ok(Ok(ResultAndState { result, state })) => {
            let mut scratch = HashMap::new();
            let mut e = tx_exec(
                &result,
                &state,
                spec,
                result.tx_gas_used(),
                &mut scratch,
                codes,
            );
            e.logs = result.into_logs();
            Ok(e)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => Err(format!("panic: {}", panic_text(p))),
    };
}

/// Tx mode: every tx of the block on its own pre-state (the block pre-state plus the changes of
/// the earlier txs as the baseline made them), each in a fresh EVM, in parallel across txs.
/// Returns the baseline's block outcome (whose tx results are the per-tx runs), the candidate's
/// tx outcomes when a candidate is given, and the reference block run the pre-states came from.
pub fn run_block_tx_mode(
    block: &BlockRecord,
    chain: &ChainConfig,
    codes: &Codes,
    baseline: &SideConfig,
    candidate: Option<&SideConfig>,
) -> TxModeOutcome {
    let p = Prepared::new(block, chain);
    // the reference run gives every tx's pre-state (and the block-level results)
    let (reference, trace) = run_prepared(&p, codes, baseline);
    let layers = TxLayers::build(&trace.system_changes, &reference.txs, trace.new_codes);
    let run_side = |side: &SideConfig| -> BlockOutcome {
        let env = p.env(side);
        let mut out = p.skeleton(env.cfg_env.spec);
        out.txs = (0..p.txs.len())
            .into_par_iter()
            .map(|i| {
                let mut o = p.tx_meta(i);
                match &p.txs[i] {
                    Err(e) => o.result = Err(e.clone()),
                    Ok(tx) => {
                        let db = TxDb {
                            base: CorpusDb::new(block, codes),
                            layers: &layers,
                            index: i + 1,
                        };
                        // one tx, no commit: the EVM's journal is the only cache it needs
                        let db = OverlayDb::new(db, &side.overrides);
                        run_one_tx(db, env.clone(), tx, &mut o, codes);
                    }
                }
                o
            })
            .collect();
        out.gas_executed = out
            .txs
            .iter()
            .filter_map(|t| t.exec())
            .map(|e| e.gas_used)
            .sum();
        out.error = reference.error.clone();
        out
    };
    let mut base = run_side(baseline);
    // block-level results come from the reference (block) run
    base.gas_used = reference.gas_used;
    base.receipts_root = reference.receipts_root;
    base.logs_bloom = reference.logs_bloom;
    base.state_root = reference.state_root;
    base.state_root_exact = reference.state_root_exact;
    base.witness = reference.witness.clone();
    base.post_state = reference.post_state.clone();
    base.storage_reset = reference.storage_reset.clone();
    base.unknown_accounts = reference.unknown_accounts.clone();
    // cumulative gas as the block would have it
    let mut cum = 0;
    for t in base.txs.iter_mut() {
        if let Ok(e) = &mut t.result {
            cum += e.gas_used;
            e.cumulative_gas_used = cum;
        }
    }
    let candidate = candidate.map(run_side);
    TxModeOutcome {
        baseline: base,
        candidate,
        reference,
    }
}

/// The result of [`run_block_tx_mode`].
#[derive(Debug, Clone)]
pub struct TxModeOutcome {
    /// The baseline: each tx on its own pre-state; block-level fields from the reference run.
    pub baseline: BlockOutcome,
    /// The candidate, each tx on the same pre-states as the baseline.
    pub candidate: Option<BlockOutcome>,
    /// The block-mode run of the baseline that produced the pre-states.
    pub reference: BlockOutcome,
}

/// The database one tx runs on in tx mode (its pre-state, behind a configuration's overrides).
pub type TxState<'a> = State<OverlayDb<'a, TxDb<'a>>>;

/// A block prepared for running its txs one at a time, with an inspector (traces, triage): the
/// reference block run of the baseline and every tx's own pre-state.
pub struct TxRunner<'a> {
    p: Prepared<'a>,
    codes: &'a Codes,
    layers: TxLayers,
    /// The baseline's block run the pre-states come from.
    pub reference: BlockOutcome,
}

impl std::fmt::Debug for TxRunner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxRunner")
            .field("block", &self.p.block.number())
            .finish_non_exhaustive()
    }
}

impl<'a> TxRunner<'a> {
    /// Runs the block once under `baseline` to derive each tx's pre-state.
    pub fn new(
        block: &'a BlockRecord,
        chain: &'a ChainConfig,
        codes: &'a Codes,
        baseline: &SideConfig,
    ) -> Self {
        let p = Prepared::new(block, chain);
        let (reference, trace) = run_prepared(&p, codes, baseline);
        let layers = TxLayers::build(&trace.system_changes, &reference.txs, trace.new_codes);
        Self {
            p,
            codes,
            layers,
            reference,
        }
    }

    /// Number of txs.
    pub fn len(&self) -> usize {
        self.p.txs.len()
    }

    /// Whether the block has no tx.
    pub fn is_empty(&self) -> bool {
        self.p.txs.is_empty()
    }

    /// The EVM environment a side runs with (spec, block env).
    pub fn env(&self, side: &SideConfig) -> EvmEnv {
        self.p.env(side)
    }

    /// Runs tx `index` alone on its pre-state under `side`, with `inspector` attached.
    pub fn run<I>(&self, side: &SideConfig, index: usize, inspector: I) -> TxOutcome
    where
        I: for<'x> revm::Inspector<alloy_evm::eth::EthEvmContext<TxState<'x>>>,
    {
        self.run_with_state(side, index, inspector).0
    }

    /// Like [`Self::run`], also returning revm's state of every account and slot the tx loaded.
    pub fn run_with_state<I>(
        &self,
        side: &SideConfig,
        index: usize,
        inspector: I,
    ) -> (TxOutcome, Option<EvmState>)
    where
        I: for<'x> revm::Inspector<alloy_evm::eth::EthEvmContext<TxState<'x>>>,
    {
        let mut o = self.p.tx_meta(index);
        let tx = match &self.p.txs[index] {
            Ok(tx) => tx,
            Err(e) => {
                o.result = Err(e.clone());
                return (o, None);
            }
        };
        let env = self.p.env(side);
        let spec = env.cfg_env.spec;
        let db = TxDb {
            base: CorpusDb::new(self.p.block, self.codes),
            layers: &self.layers,
            index: index + 1,
        };
        let db = State::builder()
            .with_database(OverlayDb::new(db, &side.overrides))
            .build();
        let factory = EthEvmFactory::default();
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mut evm = factory.create_evm_with_inspector(db, env, inspector);
            evm.transact(TxEnv::from_recovered_tx(tx.inner(), tx.signer()))
        }));
        let mut full = None;
        o.result = match r {
            Ok(Ok(ResultAndState { result, state })) => {
                let mut scratch = HashMap::new();
                let mut e = tx_exec(
                    &result,
                    &state,
                    spec,
                    result.tx_gas_used(),
                    &mut scratch,
                    self.codes,
                );
                e.logs = result.into_logs();
                full = Some(state);
                Ok(e)
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(p) => Err(format!("panic: {}", panic_text(p))),
        };
        (o, full)
    }

    /// The pre-state values of tx `index` (under `side`'s overrides) of every account and slot in
    /// `loaded`, with the codes they hold. Accounts that did not exist are left out.
    pub fn pre_values(
        &self,
        side: &SideConfig,
        index: usize,
        loaded: &EvmState,
    ) -> Result<(StateMap, BTreeMap<B256, Bytes>), DbError> {
        let db = TxDb {
            base: CorpusDb::new(self.p.block, self.codes),
            layers: &self.layers,
            index: index + 1,
        };
        let mut db = OverlayDb::new(db, &side.overrides);
        let mut pre = StateMap::new();
        let mut codes = BTreeMap::new();
        for (addr, acc) in loaded {
            let Some(info) = db.basic(*addr)? else {
                continue;
            };
            if info.code_hash != KECCAK_EMPTY {
                let code = match info.code {
                    Some(c) => c,
                    None => db.code_by_hash(info.code_hash)?,
                };
                codes.insert(info.code_hash, code.original_bytes());
            }
            let mut storage = BTreeMap::new();
            for k in acc.storage.keys() {
                storage.insert(*k, db.storage(*addr, *k)?);
            }
            pre.insert(
                *addr,
                Some(AccountState {
                    balance: info.balance,
                    nonce: info.nonce,
                    code_hash: info.code_hash,
                    storage,
                }),
            );
        }
        Ok((pre, codes))
    }
}
