//! Tx mode: every tx of a block on its own pre-state (the block's pre-state with the changes of
//! the earlier txs, as the baseline's block run made them, layered on top), none seeing another's
//! changes:
//! [`run_block_tx_mode`] runs a candidate's txs so, in parallel, the baseline's being those of
//! its block run; [`TxRunner`] runs one at a time with an inspector attached (traces, triage).

use std::{
    collections::{BTreeMap, HashMap},
    panic::{AssertUnwindSafe, catch_unwind},
};

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_evm::{Evm, EvmEnv, EvmFactory, FromRecoveredTx, eth::EthEvmFactory};
use alloy_primitives::{
    Address, B256, Bytes, FixedBytes, U256,
    map::{AddressMap, FbMap},
};
use rayon::prelude::*;
use revm::{
    bytecode::Bytecode,
    context::TxEnv,
    context_interface::result::ResultAndState,
    database::State,
    database_interface::Database,
    primitives::StorageKey,
    state::{AccountInfo, EvmState},
};
use txshadow_corpus::{AccountState, BlockRecord, ChainConfig, KECCAK_EMPTY, StateMap};

use crate::{
    BlockOutcome, BlockRunOptions, Codes, CorpusDb, DbError, OverlayDb, SideConfig, TxOutcome,
    block::{BlockTrace, run_prepared},
    env::Prepared,
    outcome::{panic_text, tx_exec},
};

/// The options of the reference block run: every tx's changes and the codes the block deployed
/// are the layers of the txs' pre-states.
const REFERENCE: BlockRunOptions = BlockRunOptions {
    tx_state: true,
    new_codes: true,
    receipts_trie: false,
    post_state: true,
    unmatchable_receipts_root: true,
};

/// A tx's own pre-state: the block pre-state with the changes of the earlier txs (and the
/// pre-block system calls) layered on top, looked up by binary search per account and slot.
#[derive(Debug)]
struct TxLayers {
    /// The account (its storage aside: that is in `slots`) after each layer that changed it.
    accounts: AddressMap<Vec<(usize, Option<LayerAccount>)>>,
    slots: FbMap<52, Vec<(usize, U256)>>,
    resets: AddressMap<Vec<usize>>,
    codes: HashMap<B256, Bytecode>,
}

impl TxLayers {
    /// Layer 0 holds the system calls' writes; tx `i`'s changes are layer `i + 1`.
    fn build(system: &StateMap, txs: &[TxOutcome], codes: HashMap<B256, Bytecode>) -> Self {
        let mut l = Self {
            accounts: AddressMap::default(),
            slots: FbMap::default(),
            resets: AddressMap::default(),
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
                let account = s.as_ref().map(|s| LayerAccount {
                    balance: s.balance,
                    nonce: s.nonce,
                    code_hash: s.code_hash,
                });
                l.accounts.entry(*a).or_default().push((i, account));
                if let Some(s) = s {
                    for (k, v) in &s.storage {
                        l.slots.entry(slot_key(*a, *k)).or_default().push((i, *v));
                    }
                }
            }
        }
        l
    }

    /// The layers of a reference block run, and its outcome.
    fn from_reference(trace: BlockTrace) -> (BlockOutcome, Self) {
        let layers = Self::build(&trace.system_changes, &trace.outcome.txs, trace.new_codes);
        (trace.outcome, layers)
    }
}

/// An account as a layer left it, without its storage.
#[derive(Debug, Clone, Copy)]
struct LayerAccount {
    balance: U256,
    nonce: u64,
    code_hash: B256,
}

/// The key of a slot in the layers: address and slot, as 52 bytes for the fixed-bytes hasher.
fn slot_key(address: Address, slot: U256) -> FixedBytes<52> {
    let mut k = [0u8; 52];
    k[..20].copy_from_slice(address.as_slice());
    k[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    FixedBytes(k)
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
            .get(&slot_key(address, index))
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

/// The EVM a candidate's txs run in, on the layers of their pre-states.
type LayeredEvm<'a> =
    <EthEvmFactory as EvmFactory>::Evm<OverlayDb<'a, TxDb<'a>>, revm::inspector::NoOpInspector>;

/// Runs tx `index` (0-based) of the block on its own pre-state in `evm`, built on first use.
///
/// One EVM serves every tx a rayon job takes, as a block executor's serves a block: `transact`
/// finalizes its journal (state, logs, warm accounts, transient storage) and commits nothing, and
/// the database holds no cache, so the next tx sees only the layer the index selects, exactly as
/// in a fresh EVM. Building one per tx was 4.8% of a candidate tx-mode run. After a panic the EVM
/// is dropped and the next tx gets a new one.
fn run_layered_tx<'a>(
    evm: &mut Option<LayeredEvm<'a>>,
    new_db: impl FnOnce() -> OverlayDb<'a, TxDb<'a>>,
    env: &EvmEnv,
    index: usize,
    tx: &Recovered<TxEnvelope>,
    o: &mut TxOutcome,
    codes: &Codes,
) {
    let spec = env.cfg_env.spec;
    let r = catch_unwind(AssertUnwindSafe(|| {
        let e =
            evm.get_or_insert_with(|| EthEvmFactory::default().create_evm(new_db(), env.clone()));
        e.db_mut().inner.index = index + 1;
        e.transact(TxEnv::from_recovered_tx(tx.inner(), tx.signer()))
    }));
    if r.is_err() {
        *evm = None;
    }
    o.result = match r {
        Ok(Ok(ResultAndState { result, state })) => {
            let mut e = tx_exec(&result, &state, spec, result.tx_gas_used(), None, codes);
            e.logs = result.into_logs();
            Ok(e)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => Err(format!("panic: {}", panic_text(p))),
    };
}

/// Tx mode: every tx of the block judged on its own, in parallel across txs.
///
/// The baseline's per-tx outcomes are those of its block run: a tx run alone on the pre-state
/// that run gave it (the block's pre-state with the changes of the earlier txs) repeats the
/// block run's own execution of it, so nothing is run twice. Against the chain that block run
/// is all there is (per-tx state changes recorded only where the chain recorded per-tx state to
/// compare them with). With a candidate, the block run's changes are the layers of every tx's
/// pre-state and the candidate runs each tx alone on them (committing nothing, in an EVM reused
/// across txs only as a block executor reuses one: see [`run_layered_tx`]): a candidate with the
/// chain's rules reproduces the baseline tx for tx, which is what checks the layering.
pub fn run_block_tx_mode(
    block: &BlockRecord,
    chain: &ChainConfig,
    codes: &Codes,
    baseline: &SideConfig,
    candidate: Option<&SideConfig>,
) -> TxModeOutcome {
    let p = Prepared::new(block, chain);
    let Some(candidate) = candidate else {
        let opts = BlockRunOptions {
            tx_state: block.expected.has_tx_post_states(),
            post_state: block.expected.post_state.is_some(),
            // against the chain alone: a receipts root its header's cannot match is unused
            unmatchable_receipts_root: false,
            ..BlockRunOptions::default()
        };
        return TxModeOutcome {
            baseline: run_prepared(&p, codes, baseline, &opts).outcome,
            candidate: None,
        };
    };
    // the block run gives every tx's pre-state, the baseline's outcomes and block-level results
    // (tx mode compares no block post-state: read back only where recorded or for a state root)
    let opts = BlockRunOptions {
        post_state: block.expected.post_state.is_some(),
        ..REFERENCE
    };
    let (base, layers) = TxLayers::from_reference(run_prepared(&p, codes, baseline, &opts));
    let env = p.env(candidate);
    let mut out = p.skeleton(env.cfg_env.spec);
    out.txs = (0..p.txs.len())
        .into_par_iter()
        .map_init(
            || None,
            |evm, i| {
                let mut o = p.tx_meta(i);
                match &p.txs[i] {
                    Err(e) => o.result = Err(e.clone()),
                    Ok(tx) => {
                        // no commit: the EVM's journal is the only cache a tx needs
                        let new_db = || {
                            let db = TxDb {
                                base: CorpusDb::new(block, codes),
                                layers: &layers,
                                index: 0,
                            };
                            OverlayDb::new(db, &candidate.overrides)
                        };
                        run_layered_tx(evm, new_db, &env, i, tx, &mut o, codes);
                    }
                }
                o
            },
        )
        .collect();
    // cumulative gas as the block would have it
    let mut cumulative = 0;
    for e in out.txs.iter_mut().filter_map(|t| t.result.as_mut().ok()) {
        cumulative += e.gas_used;
        e.cumulative_gas_used = cumulative;
    }
    out.gas_executed = cumulative;
    out.error = base.error.clone();
    TxModeOutcome {
        baseline: base,
        candidate: Some(out),
    }
}

/// The result of [`run_block_tx_mode`].
#[derive(Debug, Clone)]
pub struct TxModeOutcome {
    /// The baseline: its block run, whose per-tx outcomes are the txs' outcomes.
    pub baseline: BlockOutcome,
    /// The candidate, each tx alone on the pre-state the baseline's block run gave it (its
    /// block-level fields are not computed).
    pub candidate: Option<BlockOutcome>,
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
        let (reference, layers) =
            TxLayers::from_reference(run_prepared(&p, codes, baseline, &REFERENCE));
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
                let mut e = tx_exec(
                    &result,
                    &state,
                    spec,
                    result.tx_gas_used(),
                    None,
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
