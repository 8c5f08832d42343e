//! The node's traces as a [`TxExec`].

use alloy_primitives::{Address, B256, Bytes, Log, LogData};
use alloy_rpc_types_trace::geth::pre_state::DiffMode;
use serde_json::Value;
use txshadow_replay::TxExec;
use txshadow_rpc::{created_accounts, tx_post_state};

fn field<T: serde::de::DeserializeOwned>(v: &Value, k: &str) -> Result<Option<T>, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => serde_json::from_value(x.clone())
            .map(Some)
            .map_err(|e| format!("field {k}: {e}")),
    }
}

fn hex_u64(v: &Value, k: &str) -> Result<u64, String> {
    let s: String = field(v, k)?.ok_or_else(|| format!("no {k}"))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{k}: {e}"))
}

/// The logs a call tree emitted, in execution order, without those of failed frames (a failed
/// frame's logs, and its callees', are discarded like its state changes). A log's `position` is
/// the number of the frame's subcalls made before it.
pub fn logs_in_order(frame: &Value) -> Result<Vec<Log>, String> {
    let mut out = vec![];
    walk(frame, &mut out)?;
    Ok(out)
}

fn walk(frame: &Value, out: &mut Vec<Log>) -> Result<(), String> {
    if frame.get("error").is_some_and(|e| !e.is_null()) {
        return Ok(());
    }
    let empty = vec![];
    let logs = frame
        .get("logs")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let calls = frame
        .get("calls")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let mut parsed = Vec::with_capacity(logs.len());
    for (k, l) in logs.iter().enumerate() {
        let pos = match l.get("position") {
            Some(_) => hex_u64(l, "position")? as usize,
            None => calls.len(),
        };
        let address: Address = field(l, "address")?.ok_or("log without address")?;
        let topics: Vec<B256> = field(l, "topics")?.unwrap_or_default();
        let data: Bytes = field(l, "data")?.unwrap_or_default();
        let log = Log {
            address,
            data: LogData::new_unchecked(topics, data),
        };
        parsed.push((pos, k, log));
    }
    parsed.sort_by_key(|(p, k, _)| (*p, *k));
    let mut it = parsed.into_iter().peekable();
    for (i, c) in calls.iter().enumerate() {
        while let Some((_, _, l)) = it.next_if(|(p, _, _)| *p <= i) {
            out.push(l);
        }
        walk(c, out)?;
    }
    out.extend(it.map(|(_, _, l)| l));
    Ok(())
}

/// A tx's execution from the node's prestate-tracer diff (`diff`) and call-tracer-with-logs
/// (`call`) results. `cleared` names the accounts whose EIP-7702 delegation the tx resets.
///
/// Gas used is the call tracer's top-level `gasUsed`, which nodes report as the receipt does
/// (refunds and the calldata floor applied); gas before refunds is not known (`gas_spent` =
/// `gas_used`, `gas_refunded` = 0).
pub fn exec_from_traces(diff: &Value, call: &Value, cleared: &[Address]) -> Result<TxExec, String> {
    let diff: DiffMode =
        serde_json::from_value(diff.clone()).map_err(|e| format!("prestate diff: {e}"))?;
    let error: Option<String> = field(call, "error")?;
    let status = error.is_none();
    let gas_used = hex_u64(call, "gasUsed")?;
    let output: Bytes = field(call, "output")?.unwrap_or_default();
    let kind: String = field(call, "type")?.unwrap_or_default();
    let created = if status && kind.starts_with("CREATE") {
        field::<Address>(call, "to")?
    } else {
        None
    };
    let reason = error.map(|e| {
        if e.to_ascii_lowercase().contains("revert") {
            "reverted".to_string()
        } else {
            e
        }
    });
    let logs = if status { logs_in_order(call)? } else { vec![] };
    let state = tx_post_state(&diff, cleared);
    let mut storage_reset: Vec<Address> = created_accounts(&diff).into_iter().collect();
    storage_reset.extend(state.iter().filter(|(_, s)| s.is_none()).map(|(a, _)| *a));
    storage_reset.sort();
    storage_reset.dedup();
    Ok(TxExec {
        status,
        gas_used,
        gas_spent: gas_used,
        gas_refunded: 0,
        cumulative_gas_used: gas_used,
        output,
        reason,
        logs,
        created,
        state,
        storage_reset,
        receipt_state_root: None,
    })
}

/// A tx's execution from an `eth_simulateV1` result with one block of one call: status, gas
/// used (the receipt's), return data, logs, and the created address (derived from the sender
/// and nonce). The post-state is not known (`state` stays empty; the runner does not compare it).
pub fn exec_from_simulate(
    v: &Value,
    env: &alloy_consensus::TxEnvelope,
    from: Address,
) -> Result<TxExec, String> {
    use alloy_consensus::Transaction;
    let c = v
        .get(0)
        .and_then(|b| b.get("calls"))
        .and_then(|c| c.get(0))
        .ok_or("no calls[0] in the first block")?;
    let status = hex_u64(c, "status")? == 1;
    let gas_used = hex_u64(c, "gasUsed")?;
    let output: Bytes = field(c, "returnData")?.unwrap_or_default();
    let mut logs = vec![];
    for l in c
        .get("logs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let address: Address = field(l, "address")?.ok_or("log without address")?;
        let topics: Vec<B256> = field(l, "topics")?.unwrap_or_default();
        let data: Bytes = field(l, "data")?.unwrap_or_default();
        logs.push(Log {
            address,
            data: LogData::new_unchecked(topics, data),
        });
    }
    let reason = (!status).then(|| {
        let m = c
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("failed");
        if m.to_ascii_lowercase().contains("revert") {
            "reverted".to_string()
        } else {
            m.to_string()
        }
    });
    let created = (status && env.to().is_none()).then(|| from.create(env.nonce()));
    Ok(TxExec {
        status,
        gas_used,
        gas_spent: gas_used,
        gas_refunded: 0,
        cumulative_gas_used: gas_used,
        output,
        reason,
        logs,
        created,
        state: Default::default(),
        storage_reset: vec![],
        receipt_state_root: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn logs_follow_execution_order_and_skip_failed_frames() {
        let a = "0x00000000000000000000000000000000000000aa";
        let log = |d: &str, p: u64| json!({"address": a, "topics": [], "data": d, "position": format!("{p:#x}")});
        let call = json!({
            "type": "CALL", "gasUsed": "0x5208",
            "logs": [log("0x01", 0), log("0x04", 2), log("0x03", 1)],
            "calls": [
                {"type": "CALL", "logs": [log("0x02", 0)]},
                {"type": "CALL", "error": "execution reverted", "logs": [log("0xff", 0)]},
            ]
        });
        let got: Vec<u8> = logs_in_order(&call)
            .unwrap()
            .iter()
            .map(|l| l.data.data[0])
            .collect();
        assert_eq!(got, vec![1, 2, 3, 4]);
    }

    #[test]
    fn failed_tx_has_no_logs_and_reason() {
        let call = json!({"type": "CALL", "gasUsed": "0x5800", "error": "out of gas",
            "logs": [{"address": "0x00000000000000000000000000000000000000aa", "topics": [], "data": "0x"}]});
        let e = exec_from_traces(&json!({"pre": {}, "post": {}}), &call, &[]).unwrap();
        assert!(!e.status);
        assert!(e.logs.is_empty());
        assert_eq!(e.gas_used, 0x5800);
        assert_eq!(e.reason.as_deref(), Some("out of gas"));
    }
}
