//! Block mode: one block run as a node runs it, under one configuration: the pre-block system
//! calls, every tx in order on the state the earlier ones left, rewards, withdrawals and
//! requests, then the receipts root, logs bloom, post-state and (when computable) state root.
//!
//! One entry point, [`run_block`], runs a block under a [`BlockRunOptions`] saying what to
//! record besides the block-level results; [`run_block_pair`] runs it under a baseline and a
//! candidate side by side, decoding its txs once for both.

use std::{
    collections::HashMap,
    panic::{AssertUnwindSafe, catch_unwind},
};

use alloy_consensus::{Eip658Value, ReceiptEnvelope, TxReceipt};
use alloy_eips::eip2718::Encodable2718;
use alloy_evm::{
    Evm, EvmEnv, EvmFactory,
    block::BlockExecutor,
    eth::{EthBlockExecutor, EthEvmFactory},
};
use alloy_hardforks::{EthereumHardfork, EthereumHardforks};
use alloy_primitives::{B256, Bloom};
use revm::{
    bytecode::Bytecode, context_interface::result::ResultAndState,
    database::AccountState as DbAccountState, database_interface::DatabaseRef,
    inspector::NoOpInspector, primitives::hardfork::SpecId, state::EvmState,
};
use txshadow_corpus::{AccountState, BlockRecord, ChainConfig, StateMap};

use crate::{
    BlockDb, BlockOutcome, ChainRules, Codes, ReceiptsCheck, SideConfig, VerifiedPreState,
    db::block_db_watching,
    env::Prepared,
    outcome::{collect_new_codes, panic_text, tx_exec},
    receipts::{BlockReceiptBuilder, fill_blooms},
    state_root::{receipt_state_roots, set_post_state_root},
    witness::{judge_unproven, verify_pre_state},
};

/// What a block run records besides the block-level results (receipts root, logs bloom, gas,
/// post-state, state root), which every run gives. [`Default`] records each tx's state changes
/// and no new codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRunOptions {
    /// Record each tx's state changes (`TxExec::state`, `TxExec::storage_reset`). Off, both are
    /// left empty: what a comparison against the chain needs when the chain recorded receipts
    /// and the post-block state but no per-tx state; building those maps for every tx is the
    /// largest cost of block mode outside revm. (Before Byzantium they are built all the same:
    /// the receipts' state roots are computed from them.)
    pub tx_state: bool,
    /// Collect the codes the block deployed that the given codes do not hold
    /// ([`BlockRun::new_codes`]), so a caller can carry the post-state forward as the next
    /// block's pre-state.
    pub new_codes: bool,
    /// Compute the receipts trie and the blooms even where the block's sealed receipts would
    /// do (see [`ReceiptsCheck`]): what sealing does, and a bench of the trie path.
    pub receipts_trie: bool,
    /// Read the block's post-state back from the database into [`BlockOutcome::post_state`]
    /// and `storage_reset`. Off, both are left empty unless a state root needs them (a full
    /// pre-state or a witness): what a comparison against the chain needs when the chain
    /// recorded no post-state to compare them with.
    pub post_state: bool,
    /// Compute the receipts root of a block whose header's root the replay cannot reproduce:
    /// before Byzantium without the per-tx state roots its receipts hold (no full pre-state,
    /// no witness). Off, such a block gets no receipts root ([`BlockOutcome::receipts_root`]
    /// left zero, [`ReceiptsCheck::Bloom`]) and no per-tx state maps to compute those roots
    /// from: what a comparison against the chain needs, which cannot compare that root (the
    /// logs bloom is still computed and compared). Two replays compared with each other need
    /// it.
    pub unmatchable_receipts_root: bool,
}

impl Default for BlockRunOptions {
    fn default() -> Self {
        Self {
            tx_state: true,
            new_codes: false,
            receipts_trie: false,
            post_state: true,
            unmatchable_receipts_root: true,
        }
    }
}

impl BlockRunOptions {
    /// Block-level results only: no per-tx state changes (see [`Self::tx_state`]).
    pub fn receipts_only() -> Self {
        Self {
            tx_state: false,
            ..Self::default()
        }
    }

    /// The default, also collecting the codes the block deployed (see [`Self::new_codes`]).
    pub fn with_new_codes() -> Self {
        Self {
            new_codes: true,
            ..Self::default()
        }
    }
}

/// A block run: the outcome, and what the options asked for besides.
#[derive(Debug, Clone)]
pub struct BlockRun {
    /// The block's outcome.
    pub outcome: BlockOutcome,
    /// The codes the block deployed that the given codes do not hold, by hash (empty unless
    /// [`BlockRunOptions::new_codes`]).
    pub new_codes: HashMap<B256, Bytecode>,
}

/// Runs `block` in block mode under `side`, recording what `opts` asks for. `chain` is the
/// corpus's chain config (a block's own config, if it has one, wins).
pub fn run_block(
    block: &BlockRecord,
    chain: &ChainConfig,
    codes: &Codes,
    side: &SideConfig,
    opts: &BlockRunOptions,
) -> BlockRun {
    let p = Prepared::new(block, chain);
    run_prepared(&p, codes, side, opts).into_run()
}

/// [`run_block`] under two configurations side by side (baseline, candidate), in parallel,
/// decoding the block's txs once for both.
pub fn run_block_pair(
    block: &BlockRecord,
    chain: &ChainConfig,
    codes: &Codes,
    baseline: &SideConfig,
    candidate: &SideConfig,
    opts: &BlockRunOptions,
) -> (BlockRun, BlockRun) {
    let p = Prepared::new(block, chain);
    let (b, c) = rayon::join(
        || run_prepared(&p, codes, baseline, opts),
        || run_prepared(&p, codes, candidate, opts),
    );
    (b.into_run(), c.into_run())
}

/// A block run with what tx mode needs of it besides the outcome.
pub(crate) struct BlockTrace {
    pub(crate) outcome: BlockOutcome,
    /// Codes deployed in the block that the corpus does not hold (when asked for).
    pub(crate) new_codes: HashMap<B256, Bytecode>,
    /// State after the pre-execution system calls.
    pub(crate) system_changes: StateMap,
}

impl BlockTrace {
    fn into_run(self) -> BlockRun {
        BlockRun {
            outcome: self.outcome,
            new_codes: self.new_codes,
        }
    }
}

/// Runs a prepared block under `side`; a failure or panic of the block is its outcome's error.
pub(crate) fn run_prepared(
    p: &Prepared<'_>,
    codes: &Codes,
    side: &SideConfig,
    opts: &BlockRunOptions,
) -> BlockTrace {
    let env = p.env(side);
    let spec = env.cfg_env.spec;
    let mut trace = BlockTrace {
        outcome: p.skeleton(spec),
        new_codes: HashMap::new(),
        system_changes: StateMap::new(),
    };
    let res = catch_unwind(AssertUnwindSafe(|| {
        execute_block(p, codes, side, opts, env, &mut trace)
    }));
    let out = &mut trace.outcome;
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => out.error = Some(e),
        Err(panic) => out.error = Some(format!("panic during replay: {}", panic_text(panic))),
    }
    trace
}

/// The block executor over a block's in-memory state.
type Executor<'a, 'db> = EthBlockExecutor<
    'a,
    <EthEvmFactory as EvmFactory>::Evm<&'db mut BlockDb<'a>, NoOpInspector>,
    &'a ChainRules,
    BlockReceiptBuilder,
>;

fn execute_block(
    p: &Prepared<'_>,
    codes: &Codes,
    side: &SideConfig,
    opts: &BlockRunOptions,
    env: EvmEnv,
    trace: &mut BlockTrace,
) -> Result<(), String> {
    let block = p.block;
    let spec = env.cfg_env.spec;
    let mut witness = check_witness(block, spec, &mut trace.outcome)?;
    let rules = ChainRules::new(p.chain, block.conventions.rewards);
    // the pre-state in memory; the post-state is read from it at the end (`post_state_from_db`)
    let watch = witness.as_ref().map(|w| w.watch(block)).unwrap_or_default();
    let mut state = block_db_watching(block, codes, &side.overrides, watch);
    {
        let evm = EthEvmFactory::default().create_evm(&mut state, env);
        let mut ex = EthBlockExecutor::new(evm, p.ctx(), &rules, BlockReceiptBuilder);
        if block.conventions.system_calls {
            system_calls(&mut ex, &mut trace.system_changes)?;
        }
        let cumulative = execute_txs(&mut ex, p, codes, spec, opts, trace);
        let out = &mut trace.outcome;
        let mut receipts = finish_block(ex, block, cumulative, out)?;
        if !spec.is_enabled_in(SpecId::BYZANTIUM)
            && !rules
                .ethereum_fork_activation(EthereumHardfork::Dao)
                .transitions_at_block(block.number())
        {
            set_receipt_state_roots(&mut receipts, block, witness.as_mut(), out);
        }
        out.receipt_state_roots = !spec.is_enabled_in(SpecId::BYZANTIUM)
            && receipts
                .iter()
                .all(|r| matches!(r.status_or_post_state(), Eip658Value::PostState(_)));
        let root_matchable = spec.is_enabled_in(SpecId::BYZANTIUM) || out.receipt_state_roots;
        check_receipts(receipts, block, opts, root_matchable, out)?;
    }
    let (reads, code_reads) = state.db.take_watched();
    let out = &mut trace.outcome;
    out.gas_executed = out
        .txs
        .iter()
        .filter_map(|t| t.exec())
        .map(|e| e.gas_used)
        .sum();
    if opts.post_state || block.pre_state_is_full || witness.is_some() {
        post_state_from_db(&state, spec, out);
    }
    out.unknown_accounts = state.db.take_unknown();
    out.unknown_accounts.sort();
    out.unknown_accounts.dedup();
    if let Some(w) = witness.as_mut()
        && let Err(e) = judge_unproven(
            w,
            block,
            &reads,
            &code_reads,
            &out.post_state,
            spec.is_enabled_in(SpecId::SPURIOUS_DRAGON),
        )
    {
        out.witness = Some(w.outcome.clone());
        return Err(e);
    }
    set_post_state_root(block, witness, out);
    Ok(())
}

/// Checks the pre-state against the block's witness, if it has one: the checked tries, or the
/// block's error (the witness's figures go into `out`).
fn check_witness(
    block: &BlockRecord,
    spec: SpecId,
    out: &mut BlockOutcome,
) -> Result<Option<VerifiedPreState>, String> {
    let empty_is_absent = spec.is_enabled_in(SpecId::SPURIOUS_DRAGON);
    match block
        .witness
        .as_ref()
        .map(|w| verify_pre_state(block, w, empty_is_absent))
    {
        Some(Err(w)) => {
            let e = w.error.clone().unwrap_or_default();
            out.witness = Some(*w);
            Err(e)
        }
        Some(Ok(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

/// The pre-block system calls (beacon root, history storage); the state of their contracts
/// after them goes into `system_changes` (tx mode's bottom layer).
fn system_calls(ex: &mut Executor<'_, '_>, system_changes: &mut StateMap) -> Result<(), String> {
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
            system_changes.insert(
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
    Ok(())
}

/// Every tx in order, each outcome pushed to the trace's outcome (a tx that cannot be decoded,
/// is invalid or panics is an outcome with an error). Returns the cumulative gas used.
fn execute_txs(
    ex: &mut Executor<'_, '_>,
    p: &Prepared<'_>,
    codes: &Codes,
    spec: SpecId,
    opts: &BlockRunOptions,
    trace: &mut BlockTrace,
) -> u64 {
    // before Byzantium a receipt holds the state root after its tx, built from the changes
    // (where a full pre-state or a witness can give the roots, or a root is wanted anyway)
    let roots_wanted =
        opts.unmatchable_receipts_root || p.block.pre_state_is_full || p.block.witness.is_some();
    let tx_state = opts.tx_state || (!spec.is_enabled_in(SpecId::BYZANTIUM) && roots_wanted);
    let no_changes = EvmState::default();
    let mut cumulative = 0u64;
    for (i, tx) in p.txs.iter().enumerate() {
        let mut o = p.tx_meta(i);
        let tx = match tx {
            Ok(tx) => tx,
            Err(e) => {
                o.result = Err(e.clone());
                trace.outcome.txs.push(o);
                continue;
            }
        };
        let mut exec = None;
        let new_codes = &mut trace.new_codes;
        let r = catch_unwind(AssertUnwindSafe(|| {
            ex.execute_transaction_with_result_closure(tx, |r| {
                let ResultAndState { result, state } = &r.result;
                let g = result.tx_gas_used();
                let recorded = if tx_state { state } else { &no_changes };
                let codes_into = opts.new_codes.then_some(&mut *new_codes);
                exec = Some(tx_exec(
                    result,
                    recorded,
                    spec,
                    cumulative + g,
                    codes_into,
                    codes,
                ));
                if opts.new_codes && !tx_state {
                    collect_new_codes(state, spec, codes, new_codes);
                }
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
        trace.outcome.txs.push(o);
    }
    cumulative
}

/// The post-block changes (rewards, withdrawals, requests) where the block's conventions have
/// them, and the receipts; sets the block's gas used.
fn finish_block(
    ex: Executor<'_, '_>,
    block: &BlockRecord,
    cumulative: u64,
    out: &mut BlockOutcome,
) -> Result<Vec<ReceiptEnvelope>, String> {
    if block.conventions.rewards || block.conventions.system_calls {
        let (_evm, result) = ex
            .finish()
            .map_err(|e| format!("post-block changes: {e}"))?;
        out.gas_used = result.gas_used;
        Ok(result.receipts)
    } else {
        out.gas_used = cumulative;
        Ok(ex.receipts().to_vec())
    }
}

/// Pre-Byzantium receipts carry the state root after their tx instead of a status: set them
/// where the full pre-state or the witness can give them.
fn set_receipt_state_roots(
    receipts: &mut [ReceiptEnvelope],
    block: &BlockRecord,
    witness: Option<&mut VerifiedPreState>,
    out: &BlockOutcome,
) {
    let Some(roots) = receipt_state_roots(block, &out.txs, witness) else {
        return;
    };
    for (r, root) in receipts.iter_mut().zip(roots) {
        if let Some(r) = r.as_receipt_with_bloom_mut() {
            r.receipt.status = Eip658Value::PostState(root);
        }
    }
}

/// The receipts root and logs bloom of `receipts`, and the logs moved into the txs' outcomes.
///
/// Where the block's recorded receipts are sealed (held to the header's receipts root and logs
/// bloom when they were written) and the built receipts equal them field by field (type,
/// status, cumulative gas, logs byte for byte), the root and bloom are the header's: the trie
/// and the blooms of equal receipts are equal. Otherwise they are computed.
fn check_receipts(
    mut receipts: Vec<ReceiptEnvelope>,
    block: &BlockRecord,
    opts: &BlockRunOptions,
    root_matchable: bool,
    out: &mut BlockOutcome,
) -> Result<(), String> {
    // every executed tx has its receipt, in order
    let executed = out.txs.iter().filter(|t| t.result.is_ok()).count();
    if executed != receipts.len() {
        return Err(format!(
            "{executed} txs executed but {} receipts built",
            receipts.len()
        ));
    }
    if !opts.receipts_trie && equal_to_sealed(&receipts, block) {
        out.receipts_root = block.header.receipts_root;
        out.logs_bloom = block.header.logs_bloom;
        out.receipts_check = ReceiptsCheck::Recorded;
    } else if !root_matchable && !opts.unmatchable_receipts_root && !opts.receipts_trie {
        // a root the header's cannot be compared with: the bloom alone
        fill_blooms(&mut receipts);
        let mut bloom = Bloom::ZERO;
        for r in &receipts {
            bloom.accrue_bloom(&r.bloom());
        }
        out.logs_bloom = bloom;
        out.receipts_root = B256::ZERO;
        out.receipts_check = ReceiptsCheck::Bloom;
    } else {
        fill_blooms(&mut receipts);
        out.receipts_root =
            alloy_trie::root::ordered_trie_root_with_encoder(&receipts, |r, buf| {
                r.encode_2718(buf);
            });
        let mut bloom = Bloom::ZERO;
        for r in &receipts {
            bloom.accrue_bloom(&r.bloom());
        }
        out.logs_bloom = bloom;
        out.receipts_check = ReceiptsCheck::Trie;
    }
    let execs = out.txs.iter_mut().filter_map(|t| t.result.as_mut().ok());
    for (e, r) in execs.zip(receipts) {
        if let Eip658Value::PostState(root) = r.status_or_post_state() {
            e.receipt_state_root = Some(root);
        }
        e.logs = r.into_logs();
    }
    Ok(())
}

/// Whether `receipts` (one per tx) equal the block's sealed receipts in everything the
/// receipts trie encodes: type, status (or state root), cumulative gas and logs.
fn equal_to_sealed(receipts: &[ReceiptEnvelope], block: &BlockRecord) -> bool {
    let x = &block.expected;
    let Some(recorded) = x
        .receipts
        .as_ref()
        .filter(|_| x.receipts_sealed && x.header_checks)
    else {
        return false;
    };
    recorded.len() == receipts.len()
        && receipts.len() == block.transactions.len()
        && recorded.iter().zip(receipts).all(|(want, got)| {
            got.tx_type() as u8 == want.tx_type
                && Some(got.status_or_post_state()) == want.status_value()
                && got.cumulative_gas_used() == want.cumulative_gas_used
                && got.logs() == want.logs.as_slice()
        })
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
