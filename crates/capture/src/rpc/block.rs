//! One block from the node: everything a replay needs, pinned to the block hash.

use std::collections::BTreeMap;

use alloy_consensus::TxEnvelope;
use alloy_primitives::{B256, U64};
use alloy_rpc_types_eth::{Block, Transaction};
use alloy_rpc_types_trace::geth::pre_state::{DiffMode, PreStateMode};
use serde::Deserialize;
use serde_json::json;
use txshadow_corpus::ExpectedTx;
use txshadow_rpc::{
    cleared_delegations, created_accounts, rpc_block_to_record,
    tracer::{CodeMap, merge_pre_states},
    tx_post_state,
};

use super::{
    CaptureError,
    ctx::{BlockCtx, Fetched, HeaderInfo, node_err},
    outside::{apply_outside, fetch_outside},
    receipts::{expected_receipts, fetch_receipts},
    witness::fetch_witness,
};

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
        .map_err(CaptureError::from)
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
        .map_err(CaptureError::from)
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
        // held to the header once here, so that replays compare receipts field by field
        if let Err(e) = txshadow_corpus::seal_receipts(&mut record) {
            tracing::warn!(
                block = n,
                "receipts not sealed (replays compute their trie): {e}"
            );
        }
    }

    // traces: one per tx, in block order
    let pre = check_traces(n, "prestate", &tx_hashes, pre)?;
    let diff = check_traces(n, "prestate diff", &tx_hashes, diff)?;
    let mut codes = CodeMap::new();
    let pre_maps: Vec<_> = pre.into_iter().map(|p| p.0).collect();
    let created: Vec<_> = diff.iter().map(created_accounts).collect();
    record.pre_state = merge_pre_states(&pre_maps, &created, &mut codes);
    record.expected.txs = expected_txs(&block, &diff);

    // accounts the block touches outside its txs
    apply_outside(&mut record, &mut codes, outside);

    if ctx.witness {
        record.witness = Some(fetch_witness(ctx, info, &record).await?);
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

/// Each tx's recorded post-state, from its diff-mode trace.
fn expected_txs(block: &Block<Transaction>, diff: &[DiffMode]) -> Vec<Option<ExpectedTx>> {
    let envelopes: Vec<&TxEnvelope> = match &block.transactions {
        alloy_rpc_types_eth::BlockTransactions::Full(txs) => {
            txs.iter().map(|t| t.inner.inner()).collect()
        }
        _ => vec![],
    };
    diff.iter()
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
        .collect()
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
