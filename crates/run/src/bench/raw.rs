//! The physical limit the harness is measured against: revm alone, the same txs, the pre-state
//! already in an in-memory database, nothing else around it (no diff, no report, no receipts).
//!
//! Everything that is not execution is done before the clock starts: the pre-state goes into a
//! revm [`CacheDB`] (accounts, slots, decoded code shared by hash, ancestor hashes), the txs are
//! decoded into [`TxEnv`]s, the cfg and block env are the ones the harness uses (same spec, same
//! chain id, same blob parameters), and each timed run gets its own copy of all of it. The timed
//! part executes and commits each tx of a block in order; system calls (EIP-2935/4788 before,
//! rewards/withdrawals/requests after) are left aside.

use std::time::Instant;

use alloy_evm::FromRecoveredTx;
use alloy_primitives::U256;
use rayon::prelude::*;
use revm::{
    Context, DatabaseCommit, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext,
    context::{BlockEnv, CfgEnv, TxEnv},
    database::{CacheDB, EmptyDB},
    state::AccountInfo,
};
use txshadow_corpus::{BlockRecord, ChainConfig, KECCAK_EMPTY, decode_tx};
use txshadow_replay::{Codes, SideConfig, evm_env};

/// One block ready for the raw loop.
#[derive(Debug, Clone)]
pub struct RawBlock {
    /// Block number.
    pub number: u64,
    /// Gas used according to the header.
    pub header_gas: u64,
    cfg: CfgEnv,
    block: BlockEnv,
    db: CacheDB<EmptyDB>,
    txs: Vec<TxEnv>,
}

impl RawBlock {
    /// Builds the in-memory pre-state and the tx envs of `block` (txs that do not decode are
    /// left out: the harness reports them as errors without executing anything).
    pub fn new(block: &BlockRecord, chain: &ChainConfig, codes: &Codes) -> Self {
        let chain = block.chain.as_ref().unwrap_or(chain);
        let env = evm_env(block, chain, &SideConfig::chain("raw"));
        let mut db = CacheDB::new(EmptyDB::default());
        for (addr, acc) in &block.pre_state {
            let Some(acc) = acc else { continue };
            let code_hash = if acc.code_hash.is_zero() {
                KECCAK_EMPTY
            } else {
                acc.code_hash
            };
            let code = (code_hash != KECCAK_EMPTY)
                .then(|| codes.get(&code_hash).cloned())
                .flatten();
            db.insert_account_info(
                *addr,
                AccountInfo {
                    balance: acc.balance,
                    nonce: acc.nonce,
                    code_hash,
                    code,
                    ..Default::default()
                },
            );
            let entry = db.cache.accounts.get_mut(addr).expect("just inserted");
            entry
                .storage
                .extend(acc.storage.iter().map(|(k, v)| (*k, *v)));
        }
        for (n, h) in &block.block_hashes {
            db.cache.block_hashes.insert(U256::from(*n), *h);
        }
        if block.number() > 0 && !block.synthetic {
            db.cache
                .block_hashes
                .insert(U256::from(block.number() - 1), block.header.parent_hash);
        }
        let txs = block
            .transactions
            .iter()
            .filter_map(|t| {
                decode_tx(&t.raw)
                    .ok()
                    .map(|e| TxEnv::from_recovered_tx(&e, t.from))
            })
            .collect();
        Self {
            number: block.number(),
            header_gas: block.gas_used(),
            cfg: env.cfg_env,
            block: env.block_env,
            db,
            txs,
        }
    }

    /// Number of txs.
    pub fn txs(&self) -> usize {
        self.txs.len()
    }
}

/// Prepares every replayable block of a loaded corpus.
pub fn prepare(blocks: &[BlockRecord], chain: &ChainConfig, codes: &Codes) -> Vec<RawBlock> {
    blocks
        .par_iter()
        .filter(|b| b.unsupported.is_none())
        .map(|b| RawBlock::new(b, chain, codes))
        .collect()
}

/// What a raw run did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RawRun {
    /// Wall seconds of the execution.
    pub seconds: f64,
    /// CPU seconds of the execution (all threads).
    pub cpu_seconds: f64,
    /// Txs executed.
    pub txs: usize,
    /// Gas used by the txs (receipt gas).
    pub gas: u64,
    /// Txs revm rejected (invalid on this state).
    pub invalid: usize,
    /// Blocks whose tx gas differs from the header's gas used.
    pub gas_mismatch_blocks: usize,
}

/// How the raw loop runs each tx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawMode {
    /// One EVM per block, each tx executed and committed in order.
    Block,
    /// A fresh EVM per tx on the state the earlier txs left (executed, then committed so the
    /// next tx finds its own pre-state).
    Tx,
}

type Done = (usize, u64, usize, bool, CacheDB<EmptyDB>);

#[inline(never)]
fn exec_block(b: RawBlock, mode: RawMode) -> Done {
    let RawBlock {
        header_gas,
        cfg,
        block,
        db,
        txs,
        ..
    } = b;
    let n = txs.len();
    let (mut gas, mut invalid) = (0u64, 0usize);
    let db = match mode {
        RawMode::Block => {
            let mut evm = Context::mainnet()
                .with_cfg(cfg)
                .with_block(block)
                .with_db(db)
                .build_mainnet();
            for tx in txs {
                match evm.transact_commit(tx) {
                    Ok(r) => gas += r.tx_gas_used(),
                    Err(_) => invalid += 1,
                }
            }
            evm.ctx.journaled_state.database
        }
        RawMode::Tx => {
            let mut db = db;
            for tx in txs {
                let mut evm = Context::mainnet()
                    .with_cfg(cfg.clone())
                    .with_block(block.clone())
                    .with_db(db)
                    .build_mainnet();
                let r = evm.transact(tx);
                db = evm.ctx.journaled_state.database;
                match r {
                    Ok(r) => {
                        gas += r.result.tx_gas_used();
                        db.commit(r.state);
                    }
                    Err(_) => invalid += 1,
                }
            }
            db
        }
    };
    // the state is handed back so that freeing it happens after the clock stops
    (n, gas, invalid, gas != header_gas, db)
}

/// Runs the raw loop over `blocks` on `jobs` threads (0 = all cores), largest blocks first as
/// the harness schedules them. Copies of the prepared blocks are made before the clock starts.
pub fn run(blocks: &[RawBlock], jobs: usize, mode: RawMode) -> RawRun {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("raw-{i}"))
        .build()
        .expect("thread pool");
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(blocks[*i].header_gas));
    // each block's own copy of its state and txs, made before the clock starts
    let work: Vec<std::sync::Mutex<Option<RawBlock>>> = blocks
        .iter()
        .map(|b| std::sync::Mutex::new(Some(b.clone())))
        .collect();
    let done: Vec<std::sync::Mutex<Option<Done>>> =
        blocks.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let t = Instant::now();
    let cpu = crate::process_cpu_seconds();
    for_each_queued(&pool, &order, |i| {
        let b = work[i]
            .lock()
            .expect("unpoisoned")
            .take()
            .expect("run once");
        let r = exec_block(b, mode);
        *done[i].lock().expect("unpoisoned") = Some(r);
    });
    let seconds = t.elapsed().as_secs_f64();
    let cpu_seconds = crate::process_cpu_seconds() - cpu;
    let mut r = RawRun {
        seconds,
        cpu_seconds,
        ..Default::default()
    };
    for (n, g, i, m, _db) in done
        .into_iter()
        .filter_map(|d| d.into_inner().expect("unpoisoned"))
    {
        r.txs += n;
        r.gas += g;
        r.invalid += i;
        r.gas_mismatch_blocks += usize::from(m);
    }
    r
}

/// Runs `f` on every item of `order` on the pool's threads: one task per thread pulls the next
/// item of the shared queue until it is empty, so with `order` sorted largest first no thread
/// idles while a large item waits.
fn for_each_queued<F: Fn(usize) + Sync>(pool: &rayon::ThreadPool, order: &[usize], f: F) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..pool.current_num_threads() {
            s.spawn(|_| {
                while let Some(&i) =
                    order.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    f(i);
                }
            });
        }
    });
}
