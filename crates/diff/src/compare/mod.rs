//! The comparisons.
//!
//! [`diff_against_chain`] and [`diff_outcomes`] walk a block's txs and then its block-level
//! fields; the tx-level field comparison is in `tx`, the block-level checks in `block`, the
//! state comparison in `state`.

mod block;
mod state;
mod tx;

use alloy_primitives::{B256, hex};
use txshadow_corpus::{BlockRecord, ChainConfig};
use txshadow_replay::{BlockOutcome, TxOutcome};

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

/// Where findings go, and the block and side they are about.
struct Ctx<'a> {
    block: u64,
    hash: B256,
    side: Comparison,
    out: &'a mut Vec<Finding>,
}

impl Ctx<'_> {
    /// Records a finding about tx `t`.
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

    /// Records a block-level finding.
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
    for t in &out.txs {
        tx::against_chain(&mut c, block, out, t, mode);
    }
    if out.error.is_none() && block.expected.header_checks {
        block::against_header(&mut c, block, chain, out);
    }
    if out.error.is_none()
        && let Some(e) = block::witness_error(out)
    {
        c.blk(Kind::Error, "state_root", e, block::WITNESS_ROOT);
    }
    if out.error.is_none()
        && let Some(post) = &block.expected.post_state
    {
        state::block_against_expected(&mut c, block, out, post);
    }
    if out.error.is_none() {
        block::against_expected_roots(&mut c, block, out);
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
        tx::against_baseline(&mut c, block, base, b, t, mode);
    }
    if mode == Mode::Block && base.error.is_none() && cand.error.is_none() {
        block::against_baseline(&mut c, block, base, cand);
    }
    findings
}
