//! The receipts of a block: `eth_getBlockReceipts`, else one `eth_getTransactionReceipt` per
//! tx, checked against the block and turned into expected receipts.

use std::sync::atomic::Ordering;

use alloy_consensus::Eip658Value;
use alloy_rpc_types_eth::TransactionReceipt;
use serde_json::json;
use txshadow_corpus::ExpectedReceipt;
use txshadow_rpc::RpcError;

use super::{
    CaptureError,
    ctx::{BlockCtx, HeaderInfo, node_err},
};

/// The receipts of the block's txs, in block order.
pub(crate) async fn fetch_receipts(
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
            Err(RpcError::MethodUnavailable { .. }) => {
                if ctx.block_receipts.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        "the node has no eth_getBlockReceipts: fetching receipts one tx at a time"
                    );
                }
            }
            Err(e) => return Err(e.into()),
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

/// The receipts checked against the block (one per tx, for its tx and block) as expected
/// receipts.
pub(crate) fn expected_receipts(
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
