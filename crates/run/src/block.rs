//! One block through both sides and the diff: a [`BlockResult`] with a typed row per tx.

use std::collections::{BTreeMap, HashMap};

use txshadow_corpus::BlockRecord;
use txshadow_diff::{
    AcceptedFile, Comparison, Finding, Kind, Mode, apply_accepted, diff_against_chain,
    diff_outcomes,
};
use txshadow_replay::{
    BlockOutcome, BlockRunOptions, ReceiptsCheck, TxOutcome, run_block, run_block_pair,
    run_block_tx_mode,
};
use txshadow_report::{BlockResult, NotComparable, TxRow, Verdict};

use crate::{RunConfig, SourceBlock, node::NodeSides};

/// What the sides gave for one block, before the diff.
struct Sides {
    /// The baseline when a candidate runs (`None`: the replayed side is compared with the
    /// chain).
    reference: Option<BlockOutcome>,
    /// The side compared: the candidate, or the baseline against the chain.
    got: BlockOutcome,
    /// A node baseline against a corpus without receipts: the verified block run each of the
    /// node's txs is also held to.
    block_run: Option<BlockOutcome>,
    /// Txs a node side cannot reproduce, with reasons.
    not_comparable: BTreeMap<usize, String>,
    /// Whether tx state changes are compared (a node path without post-state: no).
    state_compared: bool,
}

fn run_sides(
    sb: &SourceBlock,
    cfg: &RunConfig,
    nodes: NodeSides<'_>,
) -> Result<Sides, txshadow_node::NodeError> {
    let (block, chain, codes) = (&sb.block, &sb.chain, &sb.codes);
    let base = &cfg.baseline.config;
    let cand = cfg.candidate.as_ref().map(|c| &c.config);
    let sides = |reference, got| Sides {
        reference,
        got,
        block_run: None,
        not_comparable: BTreeMap::new(),
        state_compared: true,
    };
    Ok(match (cfg.mode, cand) {
        _ if nodes.any() => {
            let o = crate::node::run(block, chain, codes, base, cand, nodes)?;
            Sides {
                reference: o.reference,
                got: o.got,
                block_run: o.block_run,
                not_comparable: o.not_comparable,
                state_compared: o.state_compared,
            }
        }
        (Mode::Block, None) => {
            // per-tx state maps only where the chain recorded per-tx state to compare them with
            // the same for the block's post-state
            let opts = BlockRunOptions {
                tx_state: block.expected.has_tx_post_states(),
                post_state: block.expected.post_state.is_some(),
                // against the chain, a receipts root its header's cannot match is compared
                // with nothing
                unmatchable_receipts_root: false,
                ..Default::default()
            };
            sides(None, run_block(block, chain, codes, base, &opts).outcome)
        }
        (Mode::Tx, None) => sides(
            None,
            run_block_tx_mode(block, chain, codes, base, None).baseline,
        ),
        (Mode::Block, Some(c)) => {
            let (b, k) = run_block_pair(block, chain, codes, base, c, &BlockRunOptions::default());
            sides(Some(b.outcome), k.outcome)
        }
        (Mode::Tx, Some(c)) => {
            let o = run_block_tx_mode(block, chain, codes, base, Some(c));
            sides(Some(o.baseline), o.candidate.expect("candidate requested"))
        }
    })
}

/// The rows of a block the corpus marks as not replayable.
fn skipped(block: &BlockRecord, reason: &str) -> BlockResult {
    BlockResult {
        block: block.number(),
        label: block.label.clone(),
        case: block.case.clone(),
        skipped: Some(reason.to_string()),
        rows: block
            .transactions
            .iter()
            .enumerate()
            .map(|(i, t)| TxRow {
                block: block.number(),
                index: i,
                hash: t.hash,
                from: t.from,
                verdict: Verdict::Skipped,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Replays one block under the run's configuration and diffs it. The rows' verdicts are set
/// by [`settle`], once accepted differences are applied. Fails only when a node the run
/// depends on fails for good (a harness failure).
pub(crate) fn process(
    sb: &SourceBlock,
    cfg: &RunConfig,
    nodes: NodeSides<'_>,
) -> Result<BlockResult, txshadow_node::NodeError> {
    let block = &sb.block;
    if let Some(reason) = &block.unsupported {
        return Ok(skipped(block, reason));
    }
    if let Some(inv) = &block.expected.invalid_block {
        return Ok(expected_invalid(sb, cfg, nodes, inv));
    }
    let s = run_sides(sb, cfg, nodes)?;
    let mut r = BlockResult {
        block: block.number(),
        label: block.label.clone(),
        case: block.case.clone(),
        ..Default::default()
    };
    r.findings = match &s.reference {
        None => diff_against_chain(
            block,
            &sb.chain,
            &s.got,
            cfg.mode,
            Comparison::BaselineVsChain,
        ),
        Some(b) => diff_outcomes(block, b, &s.got, cfg.mode),
    };
    if let Some(block_run) = &s.block_run {
        // a node's txs against the block run, whose block fields the test's roots vouch for
        let mut agree = diff_outcomes(block, block_run, &s.got, Mode::Tx);
        for f in &mut agree {
            f.side = Comparison::BaselineVsChain;
            f.field = format!("{} (node vs block run)", f.field);
        }
        r.findings.extend(agree);
    }
    let witness_error = |o: &BlockOutcome| o.witness.as_ref()?.error.clone();
    let reference = s.reference.as_ref();
    r.error = s
        .got
        .error
        .clone()
        .or_else(|| reference.and_then(|b| b.error.clone()))
        .or_else(|| witness_error(&s.got).or_else(|| reference.and_then(witness_error)));
    r.state_root = crate::state_roots::entry(
        block,
        reference.unwrap_or(&s.got),
        reference.map(|_| &s.got),
    );
    r.gas = s.got.gas_executed + reference.map_or(0, |b| b.gas_executed);
    let block_runs: Vec<&BlockOutcome> = match (cfg.mode, reference) {
        // tx mode's candidate runs each tx alone and builds no receipts
        (Mode::Tx, Some(b)) => vec![b],
        (_, b) => std::iter::once(&s.got).chain(b).collect(),
    };
    for o in block_runs.into_iter().filter(|o| o.error.is_none()) {
        match o.receipts_check {
            ReceiptsCheck::Trie => r.receipts_checks.trie += 1,
            ReceiptsCheck::Bloom => r.receipts_checks.bloom += 1,
            ReceiptsCheck::Recorded => r.receipts_checks.recorded += 1,
        }
    }
    let (errors, one_sided) = tx_failures(block, &s.got, reference);
    r.tx_errors = errors;
    if !s.state_compared {
        // a node path without post-state (eth_simulateV1): tx state changes are not compared
        r.findings
            .retain(|f| f.kind != Kind::State || f.tx_index.is_none());
    }
    set_aside_not_comparable(block, &s.not_comparable, &mut r);
    r.rows = s.got.txs.iter().map(|t| row(block, t, &s, cfg)).collect();
    let side = if reference.is_some() {
        Comparison::CandidateVsBaseline
    } else {
        Comparison::BaselineVsChain
    };
    error_findings(block, side, &r.tx_errors.clone(), &mut r);
    let one_sided: Vec<_> = one_sided
        .into_iter()
        .filter(|(i, _)| !s.not_comparable.contains_key(i))
        .collect();
    error_findings(block, side, &one_sided, &mut r);
    Ok(r)
}

/// A block the source expects to be rejected: it must break a header rule against its parent,
/// or fail to replay to what its header says (a tx invalid, a root, the bloom or the gas). A
/// block that passes both is a difference: the engine would have taken a block the test says
/// no node may take. Checked in block mode against the chain only.
fn expected_invalid(
    sb: &SourceBlock,
    cfg: &RunConfig,
    nodes: NodeSides<'_>,
    inv: &txshadow_corpus::InvalidBlock,
) -> BlockResult {
    let block = &sb.block;
    if cfg.mode != Mode::Block || cfg.candidate.is_some() || nodes.any() {
        return skipped(
            block,
            "a block the source expects to be invalid is checked in block mode against the \
             chain only",
        );
    }
    let rejected = match txshadow_replay::check_header(block, &inv.parent, &sb.chain) {
        Err(e) => Some(e),
        Ok(()) => {
            let opts = BlockRunOptions::receipts_only();
            let out = run_block(block, &sb.chain, &sb.codes, &cfg.baseline.config, &opts).outcome;
            let tx_error = out.txs.iter().find_map(|t| {
                t.result
                    .as_ref()
                    .err()
                    .map(|e| format!("tx {}: {e}", t.index))
            });
            let f = diff_against_chain(
                block,
                &sb.chain,
                &out,
                Mode::Block,
                Comparison::BaselineVsChain,
            );
            out.error.or(tx_error).or_else(|| {
                f.first().map(|f| {
                    format!(
                        "{}: the block gives {}, its header says {}",
                        f.field, f.got, f.expected
                    )
                })
            })
        }
    };
    let mut r = BlockResult {
        block: block.number(),
        label: block.label.clone(),
        case: block.case.clone(),
        ..Default::default()
    };
    match rejected {
        Some(why) => r.warnings.push(format!(
            "block {} ({}): rejected as the source expects ({}): {why}",
            block.number(),
            block.hash,
            inv.reason
        )),
        None => {
            let mut f = Finding::block(
                block.number(),
                block.hash,
                Kind::Status,
                "block_validity",
                "(valid: every header rule and the replay agree with its header)",
                format!("invalid: {}", inv.reason),
            );
            f.side = Comparison::BaselineVsChain;
            r.findings.push(f);
        }
    }
    r
}

/// Txs by index, each with its message.
type Failures = Vec<(usize, String)>;

/// The txs that fail, by index: `errors` cannot be compared (a tx that fails on the only side
/// replayed, or on both), `one_sided` fail on one side of two: a difference the candidate (or
/// the baseline) makes, counted as differing.
///
/// Against the chain, a tx the source expects to be rejected is not a failure: the diff holds
/// its rejection to the expected one.
fn tx_failures(
    block: &BlockRecord,
    got: &BlockOutcome,
    reference: Option<&BlockOutcome>,
) -> (Failures, Failures) {
    let (mut errors, mut one_sided) = (vec![], vec![]);
    for t in &got.txs {
        if reference.is_none() && expected_rejection(block, t.index).is_some() {
            continue;
        }
        let base = reference
            .and_then(|b| b.txs.get(t.index))
            .map(|x| &x.result);
        match (&t.result, base) {
            (Err(e), None) => errors.push((t.index, e.clone())),
            (Err(e), Some(Err(b))) if e == b => errors.push((t.index, e.clone())),
            (Err(e), Some(Err(b))) => {
                errors.push((t.index, format!("baseline: {b}; candidate: {e}")));
            }
            (Err(e), Some(Ok(_))) => one_sided.push((t.index, format!("candidate: {e}"))),
            (Ok(_), Some(Err(b))) => one_sided.push((t.index, format!("baseline: {b}"))),
            (Ok(_), _) => {}
        }
    }
    (errors, one_sided)
}

/// The rejection the source expects of tx `index`, if any.
fn expected_rejection(block: &BlockRecord, index: usize) -> Option<&str> {
    block.expected.txs.get(index)?.as_ref()?.rejected.as_deref()
}

/// Txs a side cannot reproduce: their findings and errors set aside, the reason kept.
fn set_aside_not_comparable(
    block: &BlockRecord,
    not_comparable: &BTreeMap<usize, String>,
    r: &mut BlockResult,
) {
    if not_comparable.is_empty() {
        return;
    }
    let mut set_aside: BTreeMap<usize, usize> = BTreeMap::new();
    r.findings.retain(|f| match f.tx_index {
        Some(i) if not_comparable.contains_key(&i) => {
            *set_aside.entry(i).or_default() += 1;
            false
        }
        _ => true,
    });
    r.tx_errors.retain(|(i, _)| !not_comparable.contains_key(i));
    for (i, reason) in not_comparable {
        r.not_comparable.push(NotComparable {
            block: block.number(),
            tx_index: *i,
            tx_hash: block.transactions[*i].hash.to_string(),
            reason: reason.clone(),
            findings_set_aside: set_aside.get(i).copied().unwrap_or_default(),
        });
    }
}

/// An error on either side is a finding with its message, so every list of findings (the
/// report, the summary, JUnit) shows it: added where the diff gave none for that tx.
fn error_findings(
    block: &BlockRecord,
    side: Comparison,
    failures: &[(usize, String)],
    r: &mut BlockResult,
) {
    for (i, e) in failures {
        let has = r
            .findings
            .iter()
            .any(|f| f.kind == Kind::Error && f.tx_index == Some(*i));
        if has {
            continue;
        }
        let row = &r.rows[*i];
        let mut f = Finding::block(block.number(), block.hash, Kind::Error, "error", e, "");
        f.side = side;
        f.tx_index = Some(*i);
        f.tx_hash = Some(row.hash);
        f.to = row.to;
        f.selector = row.selector.map(alloy_primitives::hex::encode_prefixed);
        r.findings.push(f);
    }
}

/// A tx's row: both sides' status and gas, and which fields were compared (their verdicts come
/// in [`settle`]).
fn row(block: &BlockRecord, t: &TxOutcome, s: &Sides, cfg: &RunConfig) -> TxRow {
    let mut row = TxRow {
        block: block.number(),
        index: t.index,
        hash: t.hash,
        from: t.from,
        to: t.to,
        selector: t.selector,
        tx_type: t.tx_type,
        ..Default::default()
    };
    if let Some(reason) = s.not_comparable.get(&t.index) {
        row.verdict = Verdict::NotComparable;
        row.note = Some(reason.clone());
        return row;
    }
    if let Some(e) = t.exec() {
        row.got_status = Some(e.status);
        row.got_gas = Some(e.gas_used);
    }
    let (logs, state) = match &s.reference {
        Some(b) => {
            if let Some(e) = b.txs.get(t.index).and_then(|x| x.exec()) {
                row.expected_status = Some(e.status);
                row.expected_gas = Some(e.gas_used);
            }
            (true, true)
        }
        None => {
            let rc = block
                .expected
                .receipts
                .as_ref()
                .and_then(|r| r.get(t.index));
            let x = block.expected.txs.get(t.index).and_then(|x| x.as_ref());
            if let Some(want) = expected_rejection(block, t.index) {
                row.note = Some(match &t.result {
                    Err(e) => format!("rejected ({e}); expected {want}"),
                    Ok(_) => format!("executed; expected a rejection: {want}"),
                });
            } else if let Some(rc) = rc {
                row.expected_status = rc.status;
                row.expected_gas = Some(rc.gas_used);
            } else if let Some(x) = x {
                row.expected_status = x.status;
                row.expected_gas = x.gas_used;
            }
            (
                rc.is_some() || x.is_some_and(|x| x.logs.is_some()),
                x.is_some_and(|x| x.post_state.is_some()),
            )
        }
    };
    // compared: `Some`, settled once the findings are final
    row.logs_equal = logs.then_some(true);
    row.state_equal = (state && s.state_compared).then_some(true);
    let _ = cfg;
    row
}

/// Applies the accepted differences and sets every row's verdict from its findings and errors:
/// run on the emitting thread, in block order, so rule counts are exact.
pub(crate) fn settle(
    r: &mut BlockResult,
    accepted: Option<&AcceptedFile>,
    counts: &mut Vec<usize>,
) {
    if let Some(a) = accepted {
        apply_accepted(a, &mut r.findings, counts);
    }
    if r.skipped.is_some() {
        return;
    }
    let mut by_tx: HashMap<usize, Vec<&Finding>> = HashMap::new();
    for f in &r.findings {
        if let Some(i) = f.tx_index {
            by_tx.entry(i).or_default().push(f);
        }
    }
    let errors: HashMap<usize, &String> = r.tx_errors.iter().map(|(i, e)| (*i, e)).collect();
    for row in &mut r.rows {
        if row.verdict == Verdict::NotComparable {
            continue;
        }
        let mine = by_tx.get(&row.index).map_or(&[][..], Vec::as_slice);
        let has = |k: Kind| mine.iter().any(|f| f.kind == k);
        if row.logs_equal.is_some() {
            row.logs_equal = Some(!has(Kind::Logs));
        }
        if row.state_equal.is_some() {
            row.state_equal = Some(!has(Kind::State));
        }
        row.kinds.clear();
        for f in mine {
            if row.kinds.last() != Some(&f.kind) {
                row.kinds.push(f.kind);
            }
        }
        // an error is a tx that cannot be compared; a tx that fails on one side of two is a
        // difference (its `error` finding says which side)
        let error = errors.get(&row.index);
        row.verdict = if error.is_some() {
            Verdict::Error
        } else if mine.iter().any(|f| f.accepted.is_none()) {
            Verdict::Differ
        } else if !mine.is_empty() {
            Verdict::Accepted
        } else {
            Verdict::Match
        };
        if let Some(e) = error {
            row.note = Some((*e).clone());
        } else if let Some(f) = mine.iter().find(|f| f.kind == Kind::Error) {
            row.note = Some(if f.got.is_empty() {
                f.expected.clone()
            } else {
                f.got.clone()
            });
        }
    }
}
