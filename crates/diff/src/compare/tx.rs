//! Tx-level field comparison: execution errors, status, gas, output, logs, created address and
//! cumulative gas, against the chain's receipts and recorded results or against the baseline.

use alloy_primitives::{Address, B256, Log};
use txshadow_corpus::{BlockRecord, ExpectedReceipt, ExpectedTx};
use txshadow_replay::{BlockOutcome, TxExec, TxOutcome};

use super::{Ctx, Mode, state};
use crate::Kind;

/// Tx `t` of `out` against what the chain recorded: its receipt, then the source's recorded
/// result and post-state.
pub(super) fn against_chain(
    c: &mut Ctx<'_>,
    block: &BlockRecord,
    out: &BlockOutcome,
    t: &TxOutcome,
    mode: Mode,
) {
    let rejected = block
        .expected
        .txs
        .get(t.index)
        .and_then(|x| x.as_ref()?.rejected.as_deref());
    let e = match (&t.result, rejected) {
        (Err(err), Some(want)) => {
            // the source expects a rejection: one of the same class is a match
            if !crate::rejection_matches(want, err) {
                c.tx(t, Kind::Status, "rejected", err, want);
            }
            return;
        }
        (Ok(_), Some(want)) => {
            c.tx(t, Kind::Status, "rejected", "(executes)", want);
            return;
        }
        (Ok(e), None) => e,
        (Err(err), None) => {
            c.tx(t, Kind::Error, "execution", err, "(executes)");
            return;
        }
    };
    if let Some(r) = block
        .expected
        .receipts
        .as_ref()
        .and_then(|r| r.get(t.index))
    {
        against_receipt(c, t, e, r, mode);
    }
    if let Some(Some(x)) = block.expected.txs.get(t.index) {
        compare_exec_with_expected_tx(c, t, e, x);
        if let Some(post) = &x.post_state {
            state::tx_against_expected(c, block, &out.txs, t, e, post);
        }
    }
}

/// The tx's result against its receipt.
fn against_receipt(c: &mut Ctx<'_>, t: &TxOutcome, e: &TxExec, r: &ExpectedReceipt, mode: Mode) {
    if let Some(s) = r.status
        && s != e.status
    {
        c.tx(t, Kind::Status, "status", e.status, s);
    }
    if r.gas_used != e.gas_used {
        c.tx(t, Kind::Gas, "gas_used", e.gas_used, r.gas_used);
    }
    logs_diff(c, t, &e.logs, &r.logs);
    if r.contract_address.is_some() && r.contract_address != e.created && e.status {
        c.tx(
            t,
            Kind::CreatedAddress,
            "created_address",
            created(e.created),
            created(r.contract_address),
        );
    }
    if mode == Mode::Block && r.cumulative_gas_used != e.cumulative_gas_used {
        c.tx(
            t,
            Kind::CumulativeGas,
            "cumulative_gas_used",
            e.cumulative_gas_used,
            r.cumulative_gas_used,
        );
    }
}

/// The candidate's tx `t` against the baseline's `b`: field by field, then the state changes.
pub(super) fn against_baseline(
    c: &mut Ctx<'_>,
    block: &BlockRecord,
    base: &BlockOutcome,
    b: &TxOutcome,
    t: &TxOutcome,
    mode: Mode,
) {
    let (be, te) = match (&b.result, &t.result) {
        (Ok(be), Ok(te)) => (be, te),
        // the same rejection, however the engine's path words it
        (Err(x), Err(y)) if crate::same_rejection(x, y) => return,
        (x, y) => {
            let s = |r: &Result<TxExec, String>| match r {
                Ok(_) => "(executes)".to_string(),
                Err(e) => e.clone(),
            };
            c.tx(t, Kind::Error, "execution", s(y), s(x));
            return;
        }
    };
    if be.status != te.status {
        c.tx(t, Kind::Status, "status", te.status, be.status);
    }
    if be.gas_used != te.gas_used {
        c.tx(t, Kind::Gas, "gas_used", te.gas_used, be.gas_used);
    }
    if be.output != te.output {
        c.tx(t, Kind::Output, "output", &te.output, &be.output);
    }
    logs_diff(c, t, &te.logs, &be.logs);
    if be.created != te.created {
        c.tx(
            t,
            Kind::CreatedAddress,
            "created_address",
            created(te.created),
            created(be.created),
        );
    }
    state::tx_against_baseline(c, block, &base.txs, b.index, t, te, be);
    if mode == Mode::Block && be.cumulative_gas_used != te.cumulative_gas_used {
        c.tx(
            t,
            Kind::CumulativeGas,
            "cumulative_gas_used",
            te.cumulative_gas_used,
            be.cumulative_gas_used,
        );
    }
}

/// A created address, or `(none)`.
fn created(a: Option<Address>) -> String {
    a.map_or_else(|| "(none)".into(), |a| a.to_string())
}

fn logs_diff(c: &mut Ctx<'_>, t: &TxOutcome, got: &[Log], exp: &[Log]) {
    if got == exp {
        return;
    }
    if got.len() != exp.len() {
        c.tx(t, Kind::Logs, "logs.len", got.len(), exp.len());
    }
    for (i, (g, e)) in got.iter().zip(exp).enumerate() {
        if g.address != e.address {
            c.tx(
                t,
                Kind::Logs,
                format!("logs[{i}].address"),
                g.address,
                e.address,
            );
        }
        if g.topics() != e.topics() {
            let n = g.topics().len().max(e.topics().len());
            for k in 0..n {
                let (gt, et) = (g.topics().get(k), e.topics().get(k));
                if gt != et {
                    let s = |x: Option<&B256>| {
                        x.map_or_else(|| "(none)".to_string(), |v| v.to_string())
                    };
                    c.tx(
                        t,
                        Kind::Logs,
                        format!("logs[{i}].topics[{k}]"),
                        s(gt),
                        s(et),
                    );
                }
            }
        }
        if g.data.data != e.data.data {
            c.tx(
                t,
                Kind::Logs,
                format!("logs[{i}].data"),
                &g.data.data,
                &e.data.data,
            );
        }
    }
}

/// Normalises an error text to a class, so geth's words and revm's halt reasons compare.
fn error_class(s: &str) -> &'static str {
    let l = s.to_ascii_lowercase();
    if l.contains("revert") {
        "revert"
    } else if l.contains("out of gas")
        || l.contains("outofgas")
        || l.contains("gas uint64 overflow")
    {
        "out_of_gas"
    } else if l.contains("invalid opcode")
        || l.contains("opcodenotfound")
        || l.contains("invalidfeopcode")
        || l.contains("not defined")
    {
        "invalid_opcode"
    } else if l.contains("stack underflow") || l.contains("stackunderflow") {
        "stack_underflow"
    } else if l.contains("stack overflow")
        || l.contains("stackoverflow")
        || l.contains("stack limit")
    {
        "stack_overflow"
    } else if l.contains("jump") {
        "invalid_jump"
    } else if l.contains("write protection") || l.contains("statechangeduringstaticcall") {
        "write_protection"
    } else if l.contains("contract address collision") || l.contains("createcollision") {
        "create_collision"
    } else if l.contains("max code size") || l.contains("createcontractsizelimit") {
        "code_size"
    } else if l.contains("invalid code: must not begin with 0xef")
        || l.contains("createcontractstartingwithef")
    {
        "code_starts_ef"
    } else if l.contains("return data out of bounds") || l.contains("outofoffset") {
        "returndata_oob"
    } else if l.contains("precompile") {
        "precompile"
    } else if l.contains("insufficient balance") {
        "insufficient_balance"
    } else {
        "other"
    }
}

fn compare_exec_with_expected_tx(c: &mut Ctx<'_>, t: &TxOutcome, e: &TxExec, x: &ExpectedTx) {
    if let Some(s) = x.status
        && s != e.status
    {
        c.tx(t, Kind::Status, "status", e.status, s);
    }
    if let Some(g) = x.gas_used
        && g != e.gas_used
    {
        c.tx(t, Kind::Gas, "gas_used", e.gas_used, g);
    }
    if let Some(o) = &x.output
        && *o != e.output
    {
        c.tx(t, Kind::Output, "output", &e.output, o);
    }
    if let Some(err) = &x.error {
        let got = e.reason.as_deref().unwrap_or("(none)");
        if e.status || error_class(err) != error_class(got) && error_class(err) != "other" {
            c.tx(t, Kind::Status, "error", got, err);
        }
    } else if x.status.is_some() || x.gas_used.is_some() {
        // a fixture that records no error expects success
        if !e.status && x.status.is_none() {
            c.tx(
                t,
                Kind::Status,
                "error",
                e.reason.as_deref().unwrap_or("failed"),
                "(none)",
            );
        }
    }
    if let Some(l) = &x.logs {
        logs_diff(c, t, &e.logs, l);
    }
}
