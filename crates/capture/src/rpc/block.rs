//! One block from the node: everything a replay needs, pinned to the block hash.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicBool, Ordering},
};

use alloy_consensus::{Eip658Value, Header, TxEnvelope};
use alloy_eips::{
    eip2935::{HISTORY_SERVE_WINDOW, HISTORY_STORAGE_ADDRESS},
    eip4788::BEACON_ROOTS_ADDRESS,
    eip4895::Withdrawal,
    eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
    eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{Block, Transaction, TransactionReceipt};
use alloy_rpc_types_trace::geth::pre_state::{DiffMode, PreStateMode};
use serde::Deserialize;
use serde_json::json;
use txshadow_corpus::{AccountState, BlockRecord, ChainConfig, ExpectedReceipt, ExpectedTx};

use super::{
    CaptureError, Rpc,
    state::{CodeMap, created_accounts, merge_pre_states, tx_post_state},
};
use crate::import::rpc_block_to_record;

/// What the capture needs of a header before fetching the block (from
/// `eth_getBlockByNumber(n, false)`): enough to skip complete blocks, list the ancestors and
/// plan the block's calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeaderInfo {
    pub(crate) hash: B256,
    pub(crate) parent_hash: B256,
    pub(crate) number: U64,
    pub(crate) timestamp: U64,
    pub(crate) miner: Address,
    #[serde(default)]
    pub(crate) transactions: Vec<B256>,
    #[serde(default)]
    pub(crate) withdrawals: Option<Vec<Withdrawal>>,
    #[serde(default)]
    pub(crate) uncles: Vec<B256>,
    #[serde(default)]
    pub(crate) parent_beacon_block_root: Option<B256>,
}

impl HeaderInfo {
    pub(crate) fn number(&self) -> u64 {
        self.number.to::<u64>()
    }
}

/// One entry of a `debug_traceBlockBy*` answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TxTrace<T> {
    #[serde(default)]
    tx_hash: Option<B256>,
    #[serde(default = "Option::default")]
    result: Option<T>,
    #[serde(default)]
    error: Option<String>,
}

/// Settings shared by every block of a capture.
#[derive(Debug)]
pub(crate) struct BlockCtx {
    pub(crate) rpc: Rpc,
    pub(crate) chain: ChainConfig,
    /// Whether `eth_getBlockReceipts` works (cleared at the first "method not found").
    pub(crate) block_receipts: AtomicBool,
    /// Blocks above this may still be reorganised: their hash is checked again at the end.
    pub(crate) final_below: u64,
    /// Fetch a state witness per block.
    pub(crate) witness: bool,
    /// Whether `debug_executionWitness` works (cleared at the first "method not found").
    pub(crate) execution_witness: AtomicBool,
}

/// A block ready to be written: the record and the codes its pre-state refers to.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) record: BlockRecord,
    pub(crate) codes: CodeMap,
}

fn node_err(block: u64, reason: impl Into<String>) -> CaptureError {
    CaptureError::Node {
        block,
        reason: reason.into(),
    }
}

/// Fetches block `info` and builds its record. `ancestors` are the hashes BLOCKHASH may read.
pub(crate) async fn fetch_block(
    ctx: &BlockCtx,
    info: &HeaderInfo,
    ancestors: BTreeMap<u64, B256>,
) -> Result<Fetched, CaptureError> {
    let n = info.number();
    let has_txs = !info.transactions.is_empty();
    let rpc = &ctx.rpc;
    let timeout = format!("{}s", rpc.config().timeout.as_secs().max(1));

    let block = async {
        rpc.call::<_, Option<Block<Transaction>>>("eth_getBlockByHash", (info.hash, true), Some(n))
            .await?
            .ok_or_else(|| {
                node_err(
                    n,
                    format!("eth_getBlockByHash({}) returned null", info.hash),
                )
            })
    };
    let receipts = async {
        if has_txs {
            fetch_receipts(ctx, info).await
        } else {
            Ok(vec![])
        }
    };
    let pre = async {
        if !has_txs {
            return Ok(vec![]);
        }
        rpc.call::<_, Vec<TxTrace<PreStateMode>>>(
            "debug_traceBlockByNumber",
            (
                U64::from(n),
                json!({"tracer": "prestateTracer", "timeout": timeout}),
            ),
            Some(n),
        )
        .await
    };
    let diff = async {
        if !has_txs {
            return Ok(vec![]);
        }
        rpc.call::<_, Vec<TxTrace<DiffMode>>>(
            "debug_traceBlockByNumber",
            (
                U64::from(n),
                json!({"tracer": "prestateTracer", "tracerConfig": {"diffMode": true},
                       "timeout": timeout}),
            ),
            Some(n),
        )
        .await
    };
    let outside = fetch_outside(ctx, info);
    let (block, receipts, pre, diff, (ommers, outside)) =
        tokio::try_join!(block, receipts, pre, diff, outside)?;

    let mut record = rpc_block_to_record(&block).map_err(|e| node_err(n, e))?;
    if record.hash != info.hash {
        return Err(node_err(
            n,
            format!("eth_getBlockByHash returned block {}", record.hash),
        ));
    }
    let tx_hashes: Vec<B256> = record.transactions.iter().map(|t| t.hash).collect();
    if tx_hashes != info.transactions {
        return Err(node_err(
            n,
            "the block's transactions differ from its header's list",
        ));
    }
    record.ommers_missing = record.ommers_missing.saturating_sub(ommers.len());
    record.ommers = ommers;
    record.block_hashes = ancestors;

    // receipts
    if has_txs {
        record.expected.receipts = Some(expected_receipts(n, info, &receipts)?);
    }

    // traces: one per tx, in block order
    let pre = check_traces(n, "prestate", &tx_hashes, pre)?;
    let diff = check_traces(n, "prestate diff", &tx_hashes, diff)?;
    let mut codes = CodeMap::new();
    let pre_maps: Vec<_> = pre.into_iter().map(|p| p.0).collect();
    let created: Vec<_> = diff.iter().map(created_accounts).collect();
    record.pre_state = merge_pre_states(&pre_maps, &created, &mut codes);
    let envelopes: Vec<&TxEnvelope> = match &block.transactions {
        alloy_rpc_types_eth::BlockTransactions::Full(txs) => {
            txs.iter().map(|t| t.inner.inner()).collect()
        }
        _ => vec![],
    };
    record.expected.txs = diff
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let cleared = envelopes
                .get(i)
                .map(|e| cleared_delegations(e))
                .unwrap_or_default();
            Some(ExpectedTx {
                post_state: Some(tx_post_state(d, &cleared)),
                ..Default::default()
            })
        })
        .collect();

    // accounts the block touches outside its txs
    for o in outside {
        if let Some(Some(acc)) = &o.state
            && !acc.code.is_empty()
        {
            codes
                .entry(acc.code_hash)
                .or_insert_with(|| acc.code.clone());
        }
        let state = o.state.map(|s| {
            s.map(|a| AccountState {
                balance: a.balance,
                nonce: a.nonce,
                code_hash: a.code_hash,
                storage: a.storage,
            })
        });
        let Some(state) = state else { continue };
        match (o.authoritative, record.pre_state.get_mut(&o.address)) {
            (false, Some(_)) => {}
            (_, None) | (true, Some(None)) => {
                record.pre_state.insert(o.address, state);
            }
            (true, Some(Some(known))) => match state {
                // the parent state is the block's pre-state; slots only the txs read stay
                Some(parent) => {
                    known.balance = parent.balance;
                    known.nonce = parent.nonce;
                    known.code_hash = parent.code_hash;
                    known.storage.extend(parent.storage);
                }
                None => {
                    record.pre_state.insert(o.address, None);
                }
            },
        }
    }

    if ctx.witness {
        record.witness = Some(super::witness::fetch_witness(ctx, info, &record).await?);
    }

    if n >= ctx.final_below {
        // a block near the head may be replaced while it is captured: the trace is by number
        let now: Option<HeaderInfo> = rpc
            .call("eth_getBlockByNumber", (U64::from(n), false), Some(n))
            .await?;
        if now.map(|h| h.hash) != Some(info.hash) {
            return Err(node_err(
                n,
                "the block was replaced while it was captured (reorg); run the capture again",
            ));
        }
    }
    Ok(Fetched { record, codes })
}

fn check_traces<T>(
    n: u64,
    what: &str,
    tx_hashes: &[B256],
    traces: Vec<TxTrace<T>>,
) -> Result<Vec<T>, CaptureError> {
    if traces.len() != tx_hashes.len() {
        return Err(node_err(
            n,
            format!(
                "the {what} trace has {} results for {} transactions",
                traces.len(),
                tx_hashes.len()
            ),
        ));
    }
    traces
        .into_iter()
        .zip(tx_hashes)
        .enumerate()
        .map(|(i, (t, h))| {
            if let Some(th) = t.tx_hash
                && th != *h
            {
                return Err(node_err(
                    n,
                    format!("the {what} trace of tx {i} is for {th}, not {h} (reorg?)"),
                ));
            }
            match (t.result, t.error) {
                (Some(r), None) => Ok(r),
                (_, Some(e)) => Err(node_err(
                    n,
                    format!("the {what} trace of tx {i} ({h}) failed: {e}"),
                )),
                (None, None) => Err(node_err(
                    n,
                    format!("the {what} trace of tx {i} ({h}) is empty"),
                )),
            }
        })
        .collect()
}

/// The accounts whose EIP-7702 delegation `tx` resets to the zero address.
pub fn cleared_delegations(tx: &TxEnvelope) -> Vec<Address> {
    let TxEnvelope::Eip7702(signed) = tx else {
        return vec![];
    };
    signed
        .tx()
        .authorization_list
        .iter()
        .filter(|a| a.address == Address::ZERO)
        .filter_map(|a| a.recover_authority().ok())
        .collect()
}

async fn fetch_receipts(
    ctx: &BlockCtx,
    info: &HeaderInfo,
) -> Result<Vec<TransactionReceipt>, CaptureError> {
    let n = info.number();
    if ctx.block_receipts.load(Ordering::Relaxed) {
        match ctx
            .rpc
            .call::<_, Option<Vec<TransactionReceipt>>>(
                "eth_getBlockReceipts",
                (info.hash,),
                Some(n),
            )
            .await
        {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => {
                return Err(node_err(n, "eth_getBlockReceipts returned null"));
            }
            Err(CaptureError::MethodUnavailable { .. }) => {
                if ctx.block_receipts.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        "the node has no eth_getBlockReceipts: fetching receipts one tx at a time"
                    );
                }
            }
            Err(e) => return Err(e),
        }
    }
    let calls: Vec<_> = info
        .transactions
        .iter()
        .map(|h| ("eth_getTransactionReceipt", json!([h])))
        .collect();
    let values = ctx.rpc.call_many(&calls, Some(n)).await?;
    values
        .into_iter()
        .zip(&info.transactions)
        .map(|(v, h)| {
            if v.is_null() {
                return Err(node_err(n, format!("no receipt for tx {h}")));
            }
            serde_json::from_value(v)
                .map_err(|e| node_err(n, format!("receipt of tx {h} does not parse: {e}")))
        })
        .collect()
}

fn expected_receipts(
    n: u64,
    info: &HeaderInfo,
    receipts: &[TransactionReceipt],
) -> Result<Vec<ExpectedReceipt>, CaptureError> {
    if receipts.len() != info.transactions.len() {
        return Err(node_err(
            n,
            format!(
                "{} receipts for {} transactions",
                receipts.len(),
                info.transactions.len()
            ),
        ));
    }
    receipts
        .iter()
        .zip(&info.transactions)
        .enumerate()
        .map(|(i, (r, h))| {
            if r.transaction_hash != *h {
                return Err(node_err(
                    n,
                    format!("receipt {i} is for tx {}, not {h}", r.transaction_hash),
                ));
            }
            if r.block_hash.is_some_and(|b| b != info.hash) {
                return Err(node_err(
                    n,
                    format!("the receipt of tx {h} is from another block (reorg?)"),
                ));
            }
            let env = &r.inner;
            let rec = env.as_receipt().ok_or_else(|| {
                node_err(n, format!("receipt of tx {h}: unsupported receipt type"))
            })?;
            let (status, state_root) = match rec.status {
                Eip658Value::Eip658(s) => (Some(s), None),
                Eip658Value::PostState(root) => (None, Some(root)),
            };
            Ok(ExpectedReceipt {
                tx_type: env.tx_type() as u8,
                status,
                state_root,
                gas_used: r.gas_used,
                cumulative_gas_used: rec.cumulative_gas_used,
                logs: rec.logs.iter().map(|l| l.inner.clone()).collect(),
                contract_address: r.contract_address,
            })
        })
        .collect()
}

/// EIP-4788's ring buffer length: a root is stored at `timestamp % N` (timestamp) and
/// `timestamp % N + N` (root).
const BEACON_ROOTS_BUFFER: u64 = 8191;

/// An account read at the parent block.
#[derive(Debug)]
struct ParentAccount {
    balance: U256,
    nonce: u64,
    code: Bytes,
    code_hash: B256,
    storage: BTreeMap<U256, U256>,
}

/// An account the block touches outside its transactions.
#[derive(Debug)]
struct Outside {
    address: Address,
    /// `Some(None)`: absent at the parent. `None`: not read.
    state: Option<Option<ParentAccount>>,
    /// The parent state overrides what the txs' traces saw (system contracts, which the
    /// pre-block system calls change before any tx runs).
    authoritative: bool,
}

/// Uncle headers, and the state at the parent block of the accounts the block touches outside
/// its txs: the system contracts of EIP-4788/2935/7002/7251 (with the slots the system calls
/// read or write), withdrawal recipients, and (before the merge) the coinbase and the uncles'
/// beneficiaries, which receive rewards.
async fn fetch_outside(
    ctx: &BlockCtx,
    info: &HeaderInfo,
) -> Result<(Vec<Header>, Vec<Outside>), CaptureError> {
    let n = info.number();
    if n == 0 {
        return Ok((vec![], vec![]));
    }
    let rpc = &ctx.rpc;
    let hf = ctx.chain.hardforks();
    let ts = info.timestamp.to::<u64>();

    let mut ommers = vec![];
    for i in 0..info.uncles.len() {
        let u: Option<Block<Transaction>> = rpc
            .call(
                "eth_getUncleByBlockHashAndIndex",
                (info.hash, U64::from(i)),
                Some(n),
            )
            .await?;
        match u {
            Some(u) => ommers.push(u.header.inner),
            None => {
                return Err(node_err(n, format!("uncle {i} not found")));
            }
        }
    }

    // (address, slots, authoritative)
    let mut wanted: Vec<(Address, Vec<U256>, bool)> = vec![];
    if hf.is_cancun_active_at_timestamp(ts) && info.parent_beacon_block_root.is_some() {
        let k = U256::from(ts % BEACON_ROOTS_BUFFER);
        let len = U256::from(BEACON_ROOTS_BUFFER);
        wanted.push((BEACON_ROOTS_ADDRESS, vec![k, k + len], true));
    }
    let prague = hf.is_prague_active_at_timestamp(ts);
    if prague {
        let k = U256::from((n - 1) % HISTORY_SERVE_WINDOW as u64);
        wanted.push((HISTORY_STORAGE_ADDRESS, vec![k], true));
        for a in [
            WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
            CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
        ] {
            // excess, count, queue head, queue tail
            wanted.push((a, (0..4).map(U256::from).collect(), true));
        }
    }
    for w in info.withdrawals.iter().flatten() {
        if !wanted.iter().any(|(a, _, _)| *a == w.address) {
            wanted.push((w.address, vec![], false));
        }
    }
    if !hf.is_paris_active_at_block(n) {
        let mut rewarded = vec![info.miner];
        rewarded.extend(ommers.iter().map(|o| o.beneficiary));
        for a in rewarded {
            if !wanted.iter().any(|(x, _, _)| *x == a) {
                wanted.push((a, vec![], false));
            }
        }
    }
    if wanted.is_empty() {
        return Ok((ommers, vec![]));
    }
    let at = json!({ "blockHash": info.parent_hash });
    let mut accounts = read_accounts(rpc, n, &at, &wanted).await?;

    // the request queues: the system call reads up to the per-block maximum of entries
    let mut more: Vec<(Address, Vec<U256>, bool)> = vec![];
    for (addr, per_entry, max) in [
        (WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, 3u64, 16u64),
        (CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, 4, 2),
    ] {
        let Some(Some(acc)) = accounts.iter().find(|(a, _)| *a == addr).map(|(_, s)| s) else {
            continue;
        };
        let head = acc.storage.get(&U256::from(2)).copied().unwrap_or_default();
        let tail = acc.storage.get(&U256::from(3)).copied().unwrap_or_default();
        if tail > head {
            let head = head.saturating_to::<u64>();
            let count = (tail.saturating_to::<u64>() - head).min(max);
            let slots = (head..head + count)
                .flat_map(|i| (0..per_entry).map(move |j| U256::from(4 + i * per_entry + j)))
                .collect();
            more.push((addr, slots, true));
        }
    }
    if !more.is_empty() {
        let at = &at;
        let calls: Vec<_> = more
            .iter()
            .flat_map(|(a, slots, _)| {
                slots
                    .iter()
                    .map(move |k| ("eth_getStorageAt", json!([a, B256::from(*k), at])))
            })
            .collect();
        let values = rpc.call_many(&calls, Some(n)).await?;
        let mut it = values.into_iter();
        for (a, slots, _) in &more {
            let mut acc = accounts
                .iter_mut()
                .find(|(x, _)| x == a)
                .and_then(|(_, s)| s.as_mut());
            for k in slots {
                let v = parse::<U256>(n, "eth_getStorageAt", it.next())?;
                if let Some(acc) = acc.as_deref_mut() {
                    acc.storage.insert(*k, v);
                }
            }
        }
    }
    let out = wanted
        .iter()
        .zip(accounts)
        .map(|((address, _, authoritative), (_, state))| Outside {
            address: *address,
            state: Some(state),
            authoritative: *authoritative,
        })
        .collect();
    Ok((ommers, out))
}

fn parse<T: serde::de::DeserializeOwned>(
    n: u64,
    method: &str,
    v: Option<serde_json::Value>,
) -> Result<T, CaptureError> {
    let v = v.ok_or_else(|| node_err(n, format!("{method}: missing answer")))?;
    serde_json::from_value(v.clone())
        .map_err(|e| node_err(n, format!("{method} answered {v}: {e}")))
}

/// Balance, nonce, code and the given slots of each account at `at`, in one batch.
async fn read_accounts(
    rpc: &Rpc,
    n: u64,
    at: &serde_json::Value,
    wanted: &[(Address, Vec<U256>, bool)],
) -> Result<Vec<(Address, Option<ParentAccount>)>, CaptureError> {
    let mut calls = vec![];
    for (a, slots, _) in wanted {
        calls.push(("eth_getBalance", json!([a, at])));
        calls.push(("eth_getTransactionCount", json!([a, at])));
        calls.push(("eth_getCode", json!([a, at])));
        for k in slots {
            calls.push(("eth_getStorageAt", json!([a, B256::from(*k), at])));
        }
    }
    let values = rpc.call_many(&calls, Some(n)).await?;
    let mut it = values.into_iter();
    let mut out = vec![];
    for (a, slots, _) in wanted {
        let balance: U256 = parse(n, "eth_getBalance", it.next())?;
        let nonce: U64 = parse(n, "eth_getTransactionCount", it.next())?;
        let code: Bytes = parse(n, "eth_getCode", it.next())?;
        let mut storage = BTreeMap::new();
        for k in slots {
            let v: U256 = parse(n, "eth_getStorageAt", it.next())?;
            storage.insert(*k, v);
        }
        let exists = !balance.is_zero()
            || nonce != U64::ZERO
            || !code.is_empty()
            || storage.values().any(|v| !v.is_zero());
        let code_hash = if code.is_empty() {
            txshadow_corpus::KECCAK_EMPTY
        } else {
            alloy_primitives::keccak256(&code)
        };
        out.push((
            *a,
            exists.then_some(ParentAccount {
                balance,
                nonce: nonce.to::<u64>(),
                code,
                code_hash,
                storage,
            }),
        ));
    }
    Ok(out)
}
