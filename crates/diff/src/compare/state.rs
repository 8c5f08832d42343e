//! State comparison: account and slot post-values, with what an account or slot one side did
//! not change holds (the block pre-state, or an earlier tx's change).

use std::borrow::Cow;

use alloy_primitives::{Address, U256};
use txshadow_corpus::{AccountState, BlockRecord, StateMap};
use txshadow_replay::{BlockOutcome, TxExec, TxOutcome};

use super::Ctx;
use crate::Kind;

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
pub(super) fn state_diff<F>(
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
        let (g, e) = (got.get(a), exp.get(a));
        // both sides changed it alike (nearly every account of a run that matches): nothing to
        // compare slot by slot, and nothing to copy
        if g.is_some() && g == e {
            continue;
        }
        // a side that did not change it holds what it held before: looked up, not copied
        let g = g.map_or_else(|| Cow::Owned(unchanged(a)), Cow::Borrowed);
        let e = e.map_or_else(|| Cow::Owned(unchanged(a)), Cow::Borrowed);
        match (&*g, &*e) {
            (Some(g), Some(e)) => account_diff(&mut emit, a, g, e, only_expected, unchanged_slot),
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

/// Compares one account both sides hold: balance, nonce, code hash, then the slots (`e`'s, and
/// `g`'s others unless `only_expected`).
fn account_diff<F>(
    emit: &mut F,
    a: &Address,
    g: &AccountState,
    e: &AccountState,
    only_expected: bool,
    unchanged_slot: &dyn Fn(&Address, &U256) -> U256,
) where
    F: FnMut(String, String, String),
{
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

/// The pre-tx value of a slot for tx `index`: the latest write by an earlier tx (zero after a
/// storage reset), else the block pre-state.
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

/// Tx `t`'s state changes against the post-state the source recorded for it (only the
/// recorded accounts and slots).
pub(super) fn tx_against_expected(
    c: &mut Ctx<'_>,
    block: &BlockRecord,
    txs: &[TxOutcome],
    t: &TxOutcome,
    e: &TxExec,
    post: &StateMap,
) {
    let before = |a: &Address| value_before(block, txs, t.index, a);
    let slot = |a: &Address, k: &U256| slot_before(block, txs, t.index, a, k);
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

/// The candidate's state changes for tx `t` against the baseline's (`be`, `base_txs`).
pub(super) fn tx_against_baseline(
    c: &mut Ctx<'_>,
    block: &BlockRecord,
    base_txs: &[TxOutcome],
    index: usize,
    t: &TxOutcome,
    te: &TxExec,
    be: &TxExec,
) {
    let before_b = |a: &Address| value_before(block, base_txs, index, a);
    let slot_b = |a: &Address, k: &U256| slot_before(block, base_txs, index, a, k);
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
}

/// The block's post-state against the one the source recorded (only the recorded accounts and
/// slots; the block pre-state answers for the others).
pub(super) fn block_against_expected(
    c: &mut Ctx<'_>,
    block: &BlockRecord,
    out: &BlockOutcome,
    post: &StateMap,
) {
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
