//! `--witness`: the trie nodes that prove a block's pre-state under its parent's state root, so
//! a replay can check the pre-state and compute the real post-block state root.
//!
//! Where the node serves `debug_executionWitness` (reth, recent geth), its `state` nodes are the
//! witness. Elsewhere, `eth_getProof` at the parent block for every account of the pre-state
//! with all its slots, in JSON-RPC batches sent concurrently (the client bounds requests in
//! flight). A deletion may collapse a branch onto a sibling that no proof at the parent holds:
//! for the keys the block deletes (cleared slots and destroyed accounts in the traces' diffs,
//! and every slot the system calls may clear), `eth_getProof` at the block itself supplies the
//! sibling with its path lengthened, which [`witness::shortened`] turns back into the parent's
//! node. Only nodes reachable from the parent's state root are kept
//! ([`witness::reachable`]): a node of the block's state can fill a hash of the parent's trie
//! and nothing else.

use std::{collections::BTreeMap, sync::atomic::Ordering};

use alloy_consensus::Header;
use alloy_eips::{
    eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{Block, EIP1186AccountProofResponse, Transaction};
use serde::Deserialize;
use serde_json::json;
use txshadow_corpus::{BlockRecord, Witness};
use txshadow_trie::{NodeSet, witness};

use txshadow_rpc::RpcError;

use super::{
    CaptureError,
    ctx::{BlockCtx, HeaderInfo, node_err},
};

/// Accounts asked for in one `eth_getProof` batch.
const PROOFS_PER_BATCH: usize = 32;

/// What `debug_executionWitness` answers (reth and geth agree on `state`).
#[derive(Debug, Deserialize)]
struct ExecutionWitness {
    #[serde(default)]
    state: Vec<Bytes>,
}

/// The witness of block `info`, whose pre-state `record` holds.
pub(crate) async fn fetch_witness(
    ctx: &BlockCtx,
    info: &HeaderInfo,
    record: &BlockRecord,
) -> Result<Witness, CaptureError> {
    let n = info.number();
    let parent: Option<Block<Transaction>> = ctx
        .rpc
        .call("eth_getBlockByHash", (info.parent_hash, false), Some(n))
        .await?;
    let parent: Header = parent
        .ok_or_else(|| node_err(n, format!("parent block {} not found", info.parent_hash)))?
        .header
        .inner;
    if parent.hash_slow() != info.parent_hash {
        return Err(node_err(
            n,
            format!(
                "the parent header hashes to {}, the block's parent hash is {}",
                parent.hash_slow(),
                info.parent_hash
            ),
        ));
    }
    let root = parent.state_root;

    if ctx.execution_witness.load(Ordering::Relaxed) {
        match ctx
            .rpc
            .call::<_, ExecutionWitness>("debug_executionWitness", (U64::from(n),), Some(n))
            .await
        {
            Ok(w) => {
                let nodes = witness::reachable(root, &NodeSet::new(w.state));
                return Ok(Witness::new(parent, nodes, "debug_executionWitness"));
            }
            Err(RpcError::MethodUnavailable { .. }) => {
                if ctx.execution_witness.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        "the node has no debug_executionWitness: witnesses from eth_getProof"
                    );
                }
            }
            // the node answered, with an error (a witness it cannot build for this block, a
            // state scheme that has none): eth_getProof proves the same pre-state. A node that
            // did not answer at all ("gave up after ...") stops the capture as any call does.
            Err(e @ RpcError::Failed { .. }) if !e.gave_up() => {
                if ctx.execution_witness.swap(false, Ordering::Relaxed) {
                    tracing::warn!("{e}: witnesses from eth_getProof from here on");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }

    let touched: Vec<(Address, Vec<U256>)> = record
        .pre_state
        .iter()
        .map(|(a, s)| {
            let slots = s
                .as_ref()
                .map(|s| s.storage.keys().copied().collect())
                .unwrap_or_default();
            (*a, slots)
        })
        .collect();
    let deleted = deleted_keys(record);
    let at_parent = json!({ "blockHash": info.parent_hash });
    let at_block = json!({ "blockHash": info.hash });
    let (parent_proofs, block_proofs) = tokio::try_join!(
        proofs(ctx, n, &touched, &at_parent),
        proofs(ctx, n, &deleted, &at_block)
    )?;
    let mut candidates = NodeSet::default();
    for p in &parent_proofs {
        for node in proof_nodes(p) {
            candidates.insert(node.clone());
        }
    }
    for p in &block_proofs {
        for node in proof_nodes(p) {
            for s in witness::shortened(node) {
                candidates.insert(s);
            }
            candidates.insert(node.clone());
        }
    }
    let genesis_root = genesis_trie_root(&parent, &parent_proofs);
    let root = genesis_root.unwrap_or(root);
    let nodes = witness::reachable(root, &candidates);
    let mut w = Witness::new(
        parent,
        nodes,
        "eth_getProof at the parent block (collapse siblings from the block)",
    );
    if let Some(r) = genesis_root {
        tracing::warn!(
            "block {n}: the genesis header's state root {} is not the root of the node's \
             genesis state {r}; the pre-state is proved under the node's root",
            w.parent.state_root
        );
        w.genesis_trie_root = Some(r);
    }
    Ok(w)
}

/// The root of the node's genesis trie when `parent` is the genesis block and its header's
/// state root is not that root (anvil's genesis header carries the empty-trie root while its
/// state funds the dev accounts). Every account proof starts at the trie's root node, so its
/// hash is the root; all proofs must agree on it. `None` for any other parent.
fn genesis_trie_root(parent: &Header, proofs: &[EIP1186AccountProofResponse]) -> Option<B256> {
    if parent.number != 0 {
        return None;
    }
    let mut roots = proofs
        .iter()
        .map(|p| p.account_proof.first().map(alloy_primitives::keccak256));
    let first = roots.next()??;
    (roots.all(|r| r == Some(first)) && first != parent.state_root).then_some(first)
}

fn proof_nodes(p: &EIP1186AccountProofResponse) -> impl Iterator<Item = &Bytes> {
    p.account_proof
        .iter()
        .chain(p.storage_proof.iter().flat_map(|s| &s.proof))
}

/// `eth_getProof` of every account (with its slots) at `at`, in batches sent concurrently.
async fn proofs(
    ctx: &BlockCtx,
    n: u64,
    keys: &[(Address, Vec<U256>)],
    at: &serde_json::Value,
) -> Result<Vec<EIP1186AccountProofResponse>, CaptureError> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let calls: Vec<(&'static str, serde_json::Value)> = keys
        .iter()
        .map(|(a, slots)| {
            let slots: Vec<B256> = slots.iter().map(|k| B256::from(*k)).collect();
            ("eth_getProof", json!([a, slots, at]))
        })
        .collect();
    let batches = calls
        .chunks(PROOFS_PER_BATCH)
        .map(|c| ctx.rpc.call_many(c, Some(n)));
    let answers = futures_util::future::try_join_all(batches).await?;
    answers
        .into_iter()
        .flatten()
        .zip(keys)
        .map(|(v, (a, _))| {
            let p: EIP1186AccountProofResponse = serde_json::from_value(v)
                .map_err(|e| node_err(n, format!("eth_getProof({a}): unexpected answer: {e}")))?;
            if p.address != *a {
                return Err(node_err(
                    n,
                    format!("eth_getProof({a}) answered for {}", p.address),
                ));
            }
            Ok(p)
        })
        .collect()
}

/// The keys the block may delete: slots its txs leave zero that were not, accounts its txs
/// destroy, and every slot of the request contracts (EIP-7002/7251), whose system call clears
/// its queue after the txs.
fn deleted_keys(record: &BlockRecord) -> Vec<(Address, Vec<U256>)> {
    let mut last: BTreeMap<Address, Option<BTreeMap<U256, U256>>> = BTreeMap::new();
    for post in record
        .expected
        .txs
        .iter()
        .flatten()
        .filter_map(|x| x.post_state.as_ref())
    {
        for (a, s) in post {
            match s {
                None => {
                    last.insert(*a, None);
                }
                Some(s) => {
                    let slots = last
                        .entry(*a)
                        .or_insert(None)
                        .get_or_insert_with(BTreeMap::new);
                    slots.extend(s.storage.iter().map(|(k, v)| (*k, *v)));
                }
            }
        }
    }
    let mut out = vec![];
    for (a, pre) in &record.pre_state {
        let Some(pre) = pre else { continue };
        let slots: Vec<U256> = if [
            WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
            CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
        ]
        .contains(a)
        {
            pre.storage.keys().copied().collect()
        } else {
            match last.get(a) {
                None => continue,
                // destroyed: the account's leaf goes
                Some(None) => vec![],
                Some(Some(post)) => post
                    .iter()
                    .filter(|(k, v)| {
                        v.is_zero() && pre.storage.get(*k).is_some_and(|p| !p.is_zero())
                    })
                    .map(|(k, _)| *k)
                    .collect(),
            }
        };
        let destroyed = matches!(last.get(a), Some(None));
        if destroyed || !slots.is_empty() {
            out.push((*a, slots));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use alloy_primitives::address;
    use txshadow_corpus::{AccountState, ExpectedTx, StateMap};

    use super::*;

    fn acc(storage: &[(u64, u64)]) -> Option<AccountState> {
        Some(AccountState {
            storage: storage
                .iter()
                .map(|(k, v)| (U256::from(*k), U256::from(*v)))
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn deleted_keys_are_the_cleared_slots_and_destroyed_accounts() {
        let (a, b, c) = (
            address!("0x00000000000000000000000000000000000000aa"),
            address!("0x00000000000000000000000000000000000000bb"),
            address!("0x00000000000000000000000000000000000000cc"),
        );
        let block = Block::<Transaction> {
            transactions: alloy_rpc_types_eth::BlockTransactions::Full(vec![]),
            ..Default::default()
        };
        let mut record = txshadow_rpc::rpc_block_to_record(&block).unwrap();
        record.pre_state = [
            (a, acc(&[(1, 5), (2, 6), (3, 0)])),
            (b, acc(&[])),
            (c, None),
            (WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, acc(&[(0, 1), (1, 0)])),
        ]
        .into_iter()
        .collect();
        let tx = |post: StateMap| {
            Some(ExpectedTx {
                post_state: Some(post),
                ..Default::default()
            })
        };
        record.expected.txs = vec![
            // slot 1 cleared, slot 2 cleared then set again, slot 3 (empty) written zero
            tx([(a, acc(&[(1, 0), (2, 0), (3, 0)]))].into_iter().collect()),
            tx([(a, acc(&[(2, 9)])), (b, None), (c, acc(&[(1, 1)]))]
                .into_iter()
                .collect()),
        ];
        let d = deleted_keys(&record);
        assert_eq!(
            d,
            vec![
                (a, vec![U256::from(1)]),
                (b, vec![]),
                (
                    WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
                    vec![U256::from(0), U256::from(1)]
                ),
            ]
        );
    }
}
