//! What a block touches outside its transactions: uncle headers, and the state at the parent
//! block of the system contracts, withdrawal recipients and (before the merge) rewarded
//! accounts.

use std::collections::BTreeMap;

use alloy_consensus::Header;
use alloy_eips::{
    eip2935::{HISTORY_SERVE_WINDOW, HISTORY_STORAGE_ADDRESS},
    eip4788::BEACON_ROOTS_ADDRESS,
    eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
    eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
};
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{Block, Transaction};
use serde_json::json;
use txshadow_corpus::{AccountState, BlockRecord};
use txshadow_rpc::{Rpc, tracer::CodeMap};

use super::{
    CaptureError,
    ctx::{BlockCtx, HeaderInfo, node_err},
};

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
pub(crate) struct Outside {
    address: Address,
    /// `Some(None)`: absent at the parent. `None`: not read.
    state: Option<Option<ParentAccount>>,
    /// The parent state overrides what the txs' traces saw (system contracts, which the
    /// pre-block system calls change before any tx runs).
    authoritative: bool,
}

/// An account to read at the parent block: its address, the slots to read, and whether the
/// parent state overrides what the txs' traces saw.
type Wanted = (Address, Vec<U256>, bool);

/// Uncle headers, and the state at the parent block of the accounts the block touches outside
/// its txs: the system contracts of EIP-4788/2935/7002/7251 (with the slots the system calls
/// read or write), withdrawal recipients, and (before the merge) the coinbase and the uncles'
/// beneficiaries, which receive rewards.
pub(crate) async fn fetch_outside(
    ctx: &BlockCtx,
    info: &HeaderInfo,
) -> Result<(Vec<Header>, Vec<Outside>), CaptureError> {
    let n = info.number();
    if n == 0 {
        return Ok((vec![], vec![]));
    }
    let rpc = &ctx.rpc;
    let ommers = fetch_ommers(rpc, info).await?;
    let wanted = wanted_accounts(&ctx.chain.hardforks(), info, &ommers);
    if wanted.is_empty() {
        return Ok((ommers, vec![]));
    }
    let at = json!({ "blockHash": info.parent_hash });
    let mut accounts = read_accounts(rpc, n, &at, &wanted).await?;
    read_request_queues(rpc, n, &at, &mut accounts).await?;
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

/// The block's uncle headers, in order.
async fn fetch_ommers(rpc: &Rpc, info: &HeaderInfo) -> Result<Vec<Header>, CaptureError> {
    let n = info.number();
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
    Ok(ommers)
}

/// The accounts the block touches outside its txs under the fork schedule `hf`: the system
/// contracts with the slots their calls read or write, then withdrawal recipients, then
/// (before the merge) the rewarded coinbase and uncle beneficiaries.
fn wanted_accounts(
    hf: &impl EthereumHardforks,
    info: &HeaderInfo,
    ommers: &[Header],
) -> Vec<Wanted> {
    let n = info.number();
    let ts = info.timestamp.to::<u64>();
    let mut wanted: Vec<Wanted> = vec![];
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
    wanted
}

/// Reads at `at` the request queue entries the EIP-7002/7251 system calls take (up to the
/// per-block maximum, from the queue head the accounts were read with) into `accounts`.
async fn read_request_queues(
    rpc: &Rpc,
    n: u64,
    at: &serde_json::Value,
    accounts: &mut [(Address, Option<ParentAccount>)],
) -> Result<(), CaptureError> {
    // the request queues: the system call reads up to the per-block maximum of entries
    let mut more: Vec<Wanted> = vec![];
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
    if more.is_empty() {
        return Ok(());
    }
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
    Ok(())
}

/// Merges the accounts read at the parent block into the block's pre-state: an authoritative
/// account (a system contract) overrides what the txs' traces saw, the others fill in accounts
/// the traces did not list. Their codes go to `codes`.
pub(crate) fn apply_outside(record: &mut BlockRecord, codes: &mut CodeMap, outside: Vec<Outside>) {
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
    wanted: &[Wanted],
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
