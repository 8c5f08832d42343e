//! Block-level checks: gas, logs bloom, receipts root and state root, against the header or
//! against the baseline.

use alloy_primitives::B256;
use txshadow_corpus::{BlockRecord, ChainConfig};
use txshadow_replay::BlockOutcome;

use super::Ctx;
use crate::Kind;

/// What a side that computed its state root from the witness shows instead of an error.
pub(super) const WITNESS_ROOT: &str = "(state root computed from the witness)";

/// Why the block's witness could not give its post-block state root.
pub(super) fn witness_error(out: &BlockOutcome) -> Option<&str> {
    out.witness.as_ref()?.error.as_deref()
}

/// The replay's block-level fields against the header.
pub(super) fn against_header(
    c: &mut Ctx<'_>,
    block: &BlockRecord,
    chain: &ChainConfig,
    out: &BlockOutcome,
) {
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
    // before Byzantium a receipt holds the state root after its tx: exact from the full
    // pre-state or a witness
    let intermediate_roots =
        out.receipt_state_roots || out.witness.as_ref().is_some_and(|w| w.receipt_roots);
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

/// The post-state root and logs hash the source expects where the header does not carry them
/// (a state test's `hash` and `logs`).
pub(super) fn against_expected_roots(c: &mut Ctx<'_>, block: &BlockRecord, out: &BlockOutcome) {
    let x = &block.expected;
    if let Some(want) = x.state_root {
        match out.state_root.filter(|_| out.state_root_exact) {
            Some(got) if got != want => c.blk(Kind::StateRoot, "state_root", got, want),
            Some(_) => {}
            None => c.blk(
                Kind::Error,
                "state_root",
                "(not computable: the pre-state is not full)",
                want,
            ),
        }
    }
    if let Some(want) = x.logs_hash {
        let got = logs_hash(out);
        if got != want {
            c.blk(Kind::Logs, "logs_hash", got, want);
        }
    }
}

/// keccak256 of the RLP list of every log the block's txs emitted, in order.
fn logs_hash(out: &BlockOutcome) -> B256 {
    let logs: Vec<&alloy_primitives::Log> = out
        .txs
        .iter()
        .filter_map(|t| t.exec())
        .flat_map(|e| e.logs.iter())
        .collect();
    let mut buf = Vec::new();
    alloy_rlp::encode_list::<_, alloy_primitives::Log>(&logs, &mut buf);
    alloy_primitives::keccak256(buf)
}

/// The candidate's block-level fields against the baseline's.
pub(super) fn against_baseline(
    c: &mut Ctx<'_>,
    block: &BlockRecord,
    base: &BlockOutcome,
    cand: &BlockOutcome,
) {
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
    state_root_against_baseline(c, block, base, cand);
}

/// The state roots: the witness's errors, else the exact roots, else a root over the touched
/// accounts when the post-states differ.
fn state_root_against_baseline(
    c: &mut Ctx<'_>,
    block: &BlockRecord,
    base: &BlockOutcome,
    cand: &BlockOutcome,
) {
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
