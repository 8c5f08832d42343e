//! What the tracer recorded, as expected results: a call frame's status, gas, output and logs,
//! or a prestate diff's post-state.

use alloy_primitives::{Address, B256, Bytes, Log, U256, keccak256};
use serde_json::{Map, Value};
use txshadow_corpus::{AccountState, ExpectedTx, KECCAK_EMPTY, StateMap};

use super::json::{bytes, field, is_true, opt_u64, parse, quantity, quantity_u64};

/// A call frame's logs in emission order: logs interleaved with sub-calls by `position`; a frame
/// with an error is reverted together with its sub-calls.
pub(super) fn frame_logs(frame: &Value, out: &mut Vec<Log>) -> Result<(), String> {
    if frame.get("error").is_some_and(|e| !e.is_null()) {
        return Ok(());
    }
    let mut logs = vec![];
    for l in frame
        .get("logs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let address: Address = parse(
            field(l, "address")?.as_str().ok_or("log address")?,
            "log address",
        )?;
        let topics = l
            .get("topics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| parse::<B256>(t.as_str().unwrap_or_default(), "log topic"))
            .collect::<Result<Vec<_>, _>>()?;
        let data = match l.get("data") {
            Some(d) if !d.is_null() => bytes(d)?,
            _ => Bytes::new(),
        };
        let position = opt_u64(l, "position")?.unwrap_or(0);
        logs.push((position, Log::new_unchecked(address, topics, data)));
    }
    // stable: logs at the same position keep their order
    logs.sort_by_key(|(p, _)| *p);
    let mut logs = logs.into_iter().peekable();
    let calls = frame
        .get("calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, call) in calls.iter().enumerate() {
        while let Some((_, l)) = logs.next_if(|(p, _)| *p <= i as u64) {
            out.push(l);
        }
        frame_logs(call, out)?;
    }
    out.extend(logs.map(|(_, l)| l));
    Ok(())
}

/// What a callTracer-like top frame (callTracer, legacy JS callTracer, erc7562Tracer) records.
pub(super) fn expected_from_frame(
    top: &Value,
    tracer_cfg: Option<&Value>,
) -> Result<ExpectedTx, String> {
    let error = top.get("error").and_then(Value::as_str).map(str::to_string);
    let output = match top.get("output") {
        Some(o) if !o.is_null() => bytes(o)?,
        _ => Bytes::new(),
    };
    let logs = if is_true(tracer_cfg, "withLog") && !is_true(tracer_cfg, "onlyTopCall") {
        let mut logs = vec![];
        frame_logs(top, &mut logs)?;
        Some(logs)
    } else {
        None
    };
    Ok(ExpectedTx {
        status: Some(error.is_none()),
        gas_used: opt_u64(top, "gasUsed")?,
        output: Some(output),
        error,
        logs,
        ..Default::default()
    })
}

/// What a flatCallTracer's top trace records.
pub(super) fn expected_from_flat(top: &Value) -> Result<ExpectedTx, String> {
    let error = top.get("error").and_then(Value::as_str).map(str::to_string);
    let mut x = ExpectedTx {
        status: Some(error.is_none()),
        error,
        ..Default::default()
    };
    if let Some(res) = top.get("result").filter(|r| r.get("gasUsed").is_some()) {
        x.gas_used = opt_u64(res, "gasUsed")?;
        let key = if top.get("type").and_then(Value::as_str) == Some("create") {
            "code"
        } else {
            "output"
        };
        x.output = Some(match res.get(key) {
            Some(o) if !o.is_null() => bytes(o)?,
            _ => Bytes::new(),
        });
    }
    Ok(x)
}

/// The post-state of a prestateTracer diff: `post` merged over the genesis account.
pub(super) fn expected_from_diff(
    result: &Value,
    pre_state: &StateMap,
    tracer_cfg: Option<&Value>,
) -> Result<ExpectedTx, String> {
    let obj = |k: &str| -> Result<&Map<String, Value>, String> {
        field(result, k)?
            .as_object()
            .ok_or_else(|| format!("result.{k} is not an object"))
    };
    let (pre, post) = (obj("pre")?, obj("post")?);
    let storage_kept = !is_true(tracer_cfg, "disableStorage");
    let mut out = StateMap::new();
    for (a, p) in post {
        let addr: Address = parse(a, "address")?;
        let mut acc = pre_state
            .get(&addr)
            .cloned()
            .flatten()
            .unwrap_or_else(|| AccountState {
                code_hash: KECCAK_EMPTY,
                ..Default::default()
            });
        // only the slots the diff names are expectations
        acc.storage.clear();
        if let Some(b) = p.get("balance") {
            acc.balance = quantity(b).map_err(|e| format!("post.{a}.balance: {e}"))?;
        }
        if let Some(n) = p.get("nonce") {
            acc.nonce = quantity_u64(n).map_err(|e| format!("post.{a}.nonce: {e}"))?;
        }
        if let Some(h) = p.get("codeHash") {
            let h: B256 = parse(h.as_str().unwrap_or_default(), "codeHash")?;
            acc.code_hash = if h == B256::ZERO { KECCAK_EMPTY } else { h };
        } else if let Some(c) = p.get("code") {
            acc.code_hash = keccak256(bytes(c)?);
        }
        if storage_kept {
            // a changed slot that is in `pre` but not in `post` became zero
            let changed = pre
                .get(a)
                .and_then(|x| x.get("storage"))
                .and_then(Value::as_object);
            for k in changed.into_iter().flat_map(|m| m.keys()) {
                acc.storage.insert(parse(k, "slot")?, U256::ZERO);
            }
            for (k, v) in p
                .get("storage")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                acc.storage.insert(
                    parse(k, "slot")?,
                    quantity(v).map_err(|e| format!("post.{a}.storage.{k}: {e}"))?,
                );
            }
        }
        out.insert(addr, Some(acc));
    }
    // an account in `pre` but not in `post` was deleted
    for a in pre.keys().filter(|a| !post.contains_key(*a)) {
        out.insert(parse(a, "address")?, None);
    }
    // a diff lists every account the tx changed: any other genesis account is unchanged, slots
    // included (an account's storage is wiped only by a selfdestruct or a creation, both listed)
    // unless the tracer ignored storage
    for (addr, acc) in pre_state {
        if let (false, Some(acc)) = (out.contains_key(addr), acc) {
            let mut acc = acc.clone();
            if !storage_kept {
                acc.storage.clear();
            }
            out.insert(*addr, Some(acc));
        }
    }
    Ok(ExpectedTx {
        post_state: Some(out),
        ..Default::default()
    })
}
