//! The comparisons.

use alloy_primitives::{Address, B256, Log, U256, hex};
use txshadow_corpus::{AccountState, BlockRecord, ChainConfig, StateMap};
use txshadow_replay::{BlockOutcome, TxExec, TxOutcome};

use crate::{Comparison, Finding, Kind};

/// Replay mode (decides which block-level checks apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Whole blocks in order.
    #[default]
    Block,
    /// Each tx on its own pre-state.
    Tx,
}

struct Ctx<'a> {
    block: u64,
    hash: B256,
    side: Comparison,
    out: &'a mut Vec<Finding>,
}

impl Ctx<'_> {
    fn tx(
        &mut self,
        t: &TxOutcome,
        kind: Kind,
        field: impl Into<String>,
        got: impl ToString,
        exp: impl ToString,
    ) {
        self.out.push(Finding {
            block: self.block,
            block_hash: self.hash,
            tx_index: Some(t.index),
            tx_hash: Some(t.hash),
            to: t.to,
            selector: t.selector.map(hex::encode_prefixed),
            side: self.side,
            kind,
            field: field.into(),
            got: got.to_string(),
            expected: exp.to_string(),
            accepted: None,
        });
    }

    fn blk(
        &mut self,
        kind: Kind,
        field: impl Into<String>,
        got: impl ToString,
        exp: impl ToString,
    ) {
        let mut f = Finding::block(self.block, self.hash, kind, field, got, exp);
        f.side = self.side;
        self.out.push(f);
    }
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

fn fmt_acc(a: &Option<AccountState>) -> String {
    match a {
        None => "(absent)".into(),
        Some(a) => format!(
            "balance={} nonce={} code={}",
            a.balance, a.nonce, a.code_hash
        ),
    }
}

/// Compares account/slot post-values: `got` and `exp` name changed accounts; `base` answers
/// for an account one side did not change.
fn state_diff<F>(
    mut emit: F,
    got: &StateMap,
    exp: &StateMap,
    only_expected: bool,
    unchanged: &dyn Fn(&Address) -> Option<AccountState>,
    unchanged_slot: &dyn Fn(&Address, &U256) -> U256,
) where
    F: FnMut(String, String, String),
{
    let mut addrs: Vec<&Address> = exp.keys().collect();
    if !only_expected {
        addrs.extend(got.keys().filter(|a| !exp.contains_key(*a)));
    }
    for a in addrs {
        let g = got.get(a).cloned().unwrap_or_else(|| unchanged(a));
        let e = exp.get(a).cloned().unwrap_or_else(|| unchanged(a));
        match (&g, &e) {
            (Some(g), Some(e)) => {
                if g.balance != e.balance {
                    emit(
                        format!("state.{a}.balance"),
                        g.balance.to_string(),
                        e.balance.to_string(),
                    );
                }
                if g.nonce != e.nonce {
                    emit(
                        format!("state.{a}.nonce"),
                        g.nonce.to_string(),
                        e.nonce.to_string(),
                    );
                }
                if g.code_hash != e.code_hash {
                    emit(
                        format!("state.{a}.code_hash"),
                        g.code_hash.to_string(),
                        e.code_hash.to_string(),
                    );
                }
                let mut slots: Vec<&U256> = e.storage.keys().collect();
                if !only_expected {
                    slots.extend(g.storage.keys().filter(|k| !e.storage.contains_key(*k)));
                }
                for k in slots {
                    let gv = g
                        .storage
                        .get(k)
                        .copied()
                        .unwrap_or_else(|| unchanged_slot(a, k));
                    let ev = e
                        .storage
                        .get(k)
                        .copied()
                        .unwrap_or_else(|| unchanged_slot(a, k));
                    if gv != ev {
                        emit(
                            format!("state.{a}.storage[{k:#x}]"),
                            format!("{gv:#x}"),
                            format!("{ev:#x}"),
                        );
                    }
                }
            }
            (g, e) if g.is_some() != e.is_some() => {
                // an empty account and an absent one are the same state
                let empty = |x: &Option<AccountState>| {
                    x.as_ref().is_none_or(|a| {
                        a.balance.is_zero()
                            && a.nonce == 0
                            && a.code_hash == txshadow_corpus::KECCAK_EMPTY
                    })
                };
                if !(empty(g) && empty(e)) {
                    emit(format!("state.{a}"), fmt_acc(g), fmt_acc(e));
                }
            }
            _ => {}
        }
    }
}

/// The pre-tx value of an account for tx `index`: the latest change by an earlier tx, else the
/// block pre-state.
fn value_before(
    block: &BlockRecord,
    txs: &[TxOutcome],
    index: usize,
    a: &Address,
) -> Option<AccountState> {
    for t in txs[..index].iter().rev() {
        if let Some(e) = t.exec()
            && let Some(s) = e.state.get(a)
        {
            return s.clone();
        }
    }
    block.pre_state.get(a).cloned().flatten()
}

fn slot_before(
    block: &BlockRecord,
    txs: &[TxOutcome],
    index: usize,
    a: &Address,
    k: &U256,
) -> U256 {
    for t in txs[..index].iter().rev() {
        if let Some(e) = t.exec() {
            if let Some(v) = e
                .state
                .get(a)
                .and_then(|s| s.as_ref())
                .and_then(|s| s.storage.get(k))
            {
                return *v;
            }
            if e.storage_reset.contains(a) {
                return U256::ZERO;
            }
        }
    }
    block
        .pre_state
        .get(a)
        .and_then(|s| s.as_ref())
        .and_then(|s| s.storage.get(k).copied())
        .unwrap_or_default()
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

fn compare_exec_with_expected_tx(
    c: &mut Ctx<'_>,
    t: &TxOutcome,
    e: &TxExec,
    x: &txshadow_corpus::ExpectedTx,
) {
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

/// What a side that computed its state root from the witness shows instead of an error.
const WITNESS_ROOT: &str = "(state root computed from the witness)";

/// Why the block's witness could not give its post-block state root.
fn witness_error(out: &BlockOutcome) -> Option<&str> {
    out.witness.as_ref()?.error.as_deref()
}

/// Compares a replay with what the chain (or the source) recorded.
pub fn diff_against_chain(
    block: &BlockRecord,
    chain: &ChainConfig,
    out: &BlockOutcome,
    mode: Mode,
    side: Comparison,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut c = Ctx {
        block: out.number,
        hash: out.hash,
        side,
        out: &mut findings,
    };
    if let Some(err) = &out.error {
        c.blk(Kind::Error, "block", err, "(replays)");
    }
    let receipts = block.expected.receipts.as_ref();
    for t in &out.txs {
        let e = match &t.result {
            Ok(e) => e,
            Err(err) => {
                c.tx(t, Kind::Error, "execution", err, "(executes)");
                continue;
            }
        };
        if let Some(r) = receipts.and_then(|r| r.get(t.index)) {
            if let Some(s) = r.status
                && s != e.status
            {
                c.tx(t, Kind::Status, "status", e.status, s);
            }
            if r.gas_used != e.gas_used {
                c.tx(t, Kind::Gas, "gas_used", e.gas_used, r.gas_used);
            }
            logs_diff(&mut c, t, &e.logs, &r.logs);
            if r.contract_address.is_some() && r.contract_address != e.created && e.status {
                let s = |a: Option<Address>| a.map_or_else(|| "(none)".into(), |a| a.to_string());
                c.tx(
                    t,
                    Kind::CreatedAddress,
                    "created_address",
                    s(e.created),
                    s(r.contract_address),
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
        if let Some(Some(x)) = block.expected.txs.get(t.index) {
            compare_exec_with_expected_tx(&mut c, t, e, x);
            if let Some(post) = &x.post_state {
                let before = |a: &Address| value_before(block, &out.txs, t.index, a);
                let slot = |a: &Address, k: &U256| slot_before(block, &out.txs, t.index, a, k);
                let mut found = vec![];
                state_diff(
                    |f, g, x| found.push((f, g, x)),
                    &e.state,
                    post,
                    true,
                    &before,
                    &slot,
                );
                for (f, g, x) in found {
                    c.tx(t, Kind::State, f, g, x);
                }
            }
        }
    }
    if out.error.is_none() && block.expected.header_checks {
        let h = &block.header;
        if out.gas_used != h.gas_used {
            c.blk(Kind::BlockGas, "gas_used", out.gas_used, h.gas_used);
        }
        if out.logs_bloom != h.logs_bloom {
            c.blk(Kind::LogsBloom, "logs_bloom", out.logs_bloom, h.logs_bloom);
        }
        let byzantium = chain
            .activation(alloy_hardforks::EthereumHardfork::Byzantium)
            .active_at_block(h.number);
        // before Byzantium a receipt holds the state root after its tx: exact with a witness
        let intermediate_roots = out.witness.as_ref().is_some_and(|w| w.receipt_roots);
        if (byzantium || intermediate_roots) && out.receipts_root != h.receipts_root {
            c.blk(
                Kind::ReceiptsRoot,
                "receipts_root",
                out.receipts_root,
                h.receipts_root,
            );
        }
        if out.state_root_exact
            && let Some(r) = out.state_root
            && r != h.state_root
        {
            c.blk(Kind::StateRoot, "state_root", r, h.state_root);
        }
    }
    if out.error.is_none()
        && let Some(e) = witness_error(out)
    {
        c.blk(Kind::Error, "state_root", e, WITNESS_ROOT);
    }
    if out.error.is_none()
        && let Some(post) = &block.expected.post_state
    {
        let pre = |a: &Address| block.pre_state.get(a).cloned().flatten();
        let slot = |a: &Address, k: &U256| {
            block
                .pre_state
                .get(a)
                .and_then(|s| s.as_ref())
                .and_then(|s| s.storage.get(k).copied())
                .unwrap_or_default()
        };
        let mut found = vec![];
        state_diff(
            |f, g, x| found.push((f, g, x)),
            &out.post_state,
            post,
            true,
            &pre,
            &slot,
        );
        for (f, g, x) in found {
            c.blk(Kind::State, f, g, x);
        }
    }
    findings
}

/// Compares a candidate's outcome with the baseline's, field by field.
pub fn diff_outcomes(
    block: &BlockRecord,
    base: &BlockOutcome,
    cand: &BlockOutcome,
    mode: Mode,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut c = Ctx {
        block: base.number,
        hash: base.hash,
        side: Comparison::CandidateVsBaseline,
        out: &mut findings,
    };
    match (&cand.error, &base.error) {
        (Some(g), e) => c.blk(Kind::Error, "block", g, e.as_deref().unwrap_or("(replays)")),
        (None, Some(e)) => c.blk(Kind::Error, "block", "(replays)", e),
        _ => {}
    }
    for (b, t) in base.txs.iter().zip(&cand.txs) {
        let (be, te) = match (&b.result, &t.result) {
            (Ok(be), Ok(te)) => (be, te),
            (Err(x), Err(y)) if x == y => continue,
            (x, y) => {
                let s = |r: &Result<TxExec, String>| match r {
                    Ok(_) => "(executes)".to_string(),
                    Err(e) => e.clone(),
                };
                c.tx(t, Kind::Error, "execution", s(y), s(x));
                continue;
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
        logs_diff(&mut c, t, &te.logs, &be.logs);
        if be.created != te.created {
            let s = |a: Option<Address>| a.map_or_else(|| "(none)".into(), |a| a.to_string());
            c.tx(
                t,
                Kind::CreatedAddress,
                "created_address",
                s(te.created),
                s(be.created),
            );
        }
        let before_b = |a: &Address| value_before(block, &base.txs, b.index, a);
        let slot_b = |a: &Address, k: &U256| slot_before(block, &base.txs, b.index, a, k);
        let mut found = vec![];
        state_diff(
            |f, g, x| found.push((f, g, x)),
            &te.state,
            &be.state,
            false,
            &before_b,
            &slot_b,
        );
        for (f, g, x) in found {
            c.tx(t, Kind::State, f, g, x);
        }
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
    if mode == Mode::Block && base.error.is_none() && cand.error.is_none() {
        if base.gas_used != cand.gas_used {
            c.blk(Kind::BlockGas, "gas_used", cand.gas_used, base.gas_used);
        }
        if base.receipts_root != cand.receipts_root {
            c.blk(
                Kind::ReceiptsRoot,
                "receipts_root",
                cand.receipts_root,
                base.receipts_root,
            );
        }
        if base.logs_bloom != cand.logs_bloom {
            c.blk(
                Kind::LogsBloom,
                "logs_bloom",
                cand.logs_bloom,
                base.logs_bloom,
            );
        }
        match (witness_error(cand), witness_error(base)) {
            (Some(g), e) => c.blk(Kind::Error, "state_root", g, e.unwrap_or(WITNESS_ROOT)),
            (None, Some(e)) => c.blk(Kind::Error, "state_root", WITNESS_ROOT, e),
            (None, None) => {}
        }
        let s = |r: Option<B256>| r.map_or_else(|| "(none)".into(), |r| r.to_string());
        if witness_error(cand).is_some() || witness_error(base).is_some() {
            // reported above
        } else if base.state_root_exact || cand.state_root_exact {
            if base.state_root != cand.state_root {
                c.blk(
                    Kind::StateRoot,
                    "state_root",
                    s(cand.state_root),
                    s(base.state_root),
                );
            }
        } else if base.post_state != cand.post_state || base.storage_reset != cand.storage_reset {
            // a root over the pre-state and the touched accounts, computed only when the
            // post-states differ (equal post-states give equal roots)
            let root = |o: &BlockOutcome| {
                txshadow_replay::post_state_root(block, &o.post_state, &o.storage_reset).0
            };
            let (b, k) = (root(base), root(cand));
            if b != k {
                c.blk(
                    Kind::StateRoot,
                    "state_root(touched)",
                    s(Some(k)),
                    s(Some(b)),
                );
            }
        }
    }
    findings
}
