//! A run's results as they arrive: one [`BlockResult`] per block, tallied into the [`Report`]
//! and handed to every [`Sink`] in block order.

use txshadow_diff::{Finding, Kind};

use crate::{
    NotComparable, Report, ReportError, RunStatus, RunVerdict, Skipped, StateRootEntry, TxRow,
    Verdict, markdown::impact_rank,
};

/// Findings a report lists, at most: past it, the findings of most impact are kept (open ones
/// before accepted ones; errors, status flips, the largest gas changes, then the rest; the
/// earliest block first among equals) and the others counted in [`Report::left_out`]. While a run
/// goes the list may hold up to twice as many (it is cut back when it reaches that).
pub const LISTED_FINDINGS: usize = 10_000;
/// Skipped blocks, not-comparable txs and state-root checks a report lists, at most each (the
/// first ones; the rest are counted in [`Report::left_out`]).
pub const LISTED_ENTRIES: usize = 10_000;
/// Warnings a report lists, at most (the first ones; the rest are counted).
pub const LISTED_WARNINGS: usize = 1_000;

/// Appends `items` to `list` up to `cap` entries; counts the rest in `left_out`.
fn push_capped<T>(
    list: &mut Vec<T>,
    left_out: &mut usize,
    cap: usize,
    items: impl IntoIterator<Item = T>,
) {
    for item in items {
        if list.len() < cap {
            list.push(item);
        } else {
            *left_out += 1;
        }
    }
}

/// What one block contributed.
#[derive(Debug, Clone, Default)]
pub struct BlockResult {
    /// Block number.
    pub block: u64,
    /// Label.
    pub label: Option<String>,
    /// One row per tx, its verdict set.
    pub rows: Vec<TxRow>,
    /// Findings (tx- and block-level).
    pub findings: Vec<Finding>,
    /// Set when the block is skipped.
    pub skipped: Option<String>,
    /// Block-level error.
    pub error: Option<String>,
    /// Per-tx errors by index.
    pub tx_errors: Vec<(usize, String)>,
    /// Gas executed by the sides (for throughput).
    pub gas: u64,
    /// How the sides' block runs checked their receipts.
    pub receipts_checks: crate::ReceiptsChecks,
    /// Warnings.
    pub warnings: Vec<String>,
    /// The block's state root check, when the real root was computed.
    pub state_root: Option<StateRootEntry>,
    /// Txs that cannot be compared (their findings already removed), with reasons.
    pub not_comparable: Vec<NotComparable>,
    /// Wall seconds the block took to replay and diff (0 when not measured).
    pub seconds: f64,
    /// The suite case the block belongs to (conformance corpora).
    pub case: Option<txshadow_corpus::SuiteCase>,
}

impl BlockResult {
    /// Whether the block has an unaccepted finding of its own or a differing tx.
    pub fn differs(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Differ)
            || self
                .findings
                .iter()
                .any(|f| f.accepted.is_none() && f.tx_index.is_none() && f.kind != Kind::Error)
    }
}

/// Where a run's results go: the report files, metrics, a push. A sink gets every block's
/// result in block order, with the report as it stands after that block, then the final
/// report once.
pub trait Sink: Send {
    /// One block's result.
    fn block(&mut self, result: &BlockResult, report: &Report) -> Result<(), ReportError>;
    /// The run ended (or stopped: `report.run.status` says which).
    fn finish(&mut self, report: &Report) -> Result<(), ReportError>;
}

impl Report {
    /// Counts one block's result in: every row in the count of its verdict, the block's
    /// findings, skips, errors, warnings and state root.
    pub fn add_block(&mut self, r: &BlockResult) {
        if let Some(case) = &r.case {
            self.conformance.get_or_insert_default().add(case, r);
        }
        let c = &mut self.counts;
        if let Some(reason) = &r.skipped {
            c.skipped += r.rows.len();
            let skipped = Skipped {
                block: r.block,
                label: r.label.clone(),
                txs: r.rows.len(),
                reason: reason.clone(),
            };
            let left = &mut self.left_out.skipped;
            push_capped(&mut self.skipped, left, LISTED_ENTRIES, [skipped]);
            return;
        }
        c.blocks += 1;
        c.txs += r.rows.len();
        for row in &r.rows {
            match row.verdict {
                Verdict::Match | Verdict::Accepted => c.matched += 1,
                Verdict::Differ => c.differing += 1,
                Verdict::Error => c.errors += 1,
                Verdict::NotComparable => c.not_comparable += 1,
                Verdict::Skipped => c.skipped += 1,
            }
            if let (Some(g), Some(e)) = (row.got_gas, row.expected_gas) {
                c.gas_got += g;
                c.gas_expected += e;
            }
        }
        c.findings += r.findings.len();
        c.accepted += r.findings.iter().filter(|f| f.accepted.is_some()).count();
        if r.differs() {
            c.differing_blocks += 1;
        }
        if r.error.is_some() {
            c.block_errors += 1;
        }
        self.throughput.gas += r.gas;
        self.throughput.receipts_checks.add(r.receipts_checks);
        self.list(r);
    }

    /// Lists a block's entries, each list up to its cap (the rest counted in `left_out`).
    fn list(&mut self, r: &BlockResult) {
        let o = &mut self.left_out;
        let nc = r.not_comparable.iter().cloned();
        push_capped(
            &mut self.not_comparable,
            &mut o.not_comparable,
            LISTED_ENTRIES,
            nc,
        );
        let w = r.warnings.iter().cloned();
        push_capped(&mut self.warnings, &mut o.warnings, LISTED_WARNINGS, w);
        let sr = r.state_root.iter().cloned();
        push_capped(
            &mut self.state_roots,
            &mut o.state_roots,
            LISTED_ENTRIES,
            sr,
        );
        self.findings.extend(r.findings.iter().cloned());
        if self.findings.len() >= 2 * LISTED_FINDINGS {
            self.cut_findings();
        }
    }

    /// Holds every list to its cap (after lists were joined, as a merge does), counting the
    /// entries cut in `left_out`.
    pub(crate) fn cap_lists(&mut self) {
        fn cut<T>(list: &mut Vec<T>, left_out: &mut usize, cap: usize) {
            if list.len() > cap {
                *left_out += list.len() - cap;
                list.truncate(cap);
            }
        }
        let o = &mut self.left_out;
        cut(&mut self.skipped, &mut o.skipped, LISTED_ENTRIES);
        cut(
            &mut self.not_comparable,
            &mut o.not_comparable,
            LISTED_ENTRIES,
        );
        cut(&mut self.warnings, &mut o.warnings, LISTED_WARNINGS);
        cut(&mut self.state_roots, &mut o.state_roots, LISTED_ENTRIES);
        self.cut_findings();
    }

    /// Cuts the findings back to the [`LISTED_FINDINGS`] of most impact, counting the others
    /// by kind in `left_out`.
    pub(crate) fn cut_findings(&mut self) {
        if self.findings.len() <= LISTED_FINDINGS {
            return;
        }
        // a total order (impact, then block, tx, field, side, values): the same findings keep
        // the same ones whatever order they came in, so a merge of shards lists what the
        // whole run lists
        self.findings.sort_by(|a, b| {
            let key = |f: &Finding| {
                (
                    f.accepted.is_some(),
                    impact_rank(f),
                    f.block,
                    f.block_hash,
                    f.tx_index,
                    f.field.clone(),
                    f.side,
                    f.got.clone(),
                    f.expected.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        for f in self.findings.drain(LISTED_FINDINGS..) {
            self.left_out.findings += 1;
            let k = self
                .left_out
                .findings_by_kind
                .entry(f.kind.as_str().to_string())
                .or_default();
            if f.accepted.is_some() {
                k.accepted += 1;
            } else {
                k.open += 1;
            }
        }
        self.findings.sort_by_key(|a| (a.block, a.tx_index));
    }

    /// Ends the report: the verdict, the end time, the status that goes with the verdict
    /// (`pending` leaves the run `interrupted`), and everything listed in block order.
    pub fn close(&mut self, verdict: RunVerdict, finished: String) {
        self.verdict = verdict;
        self.run.finished = finished;
        self.run.status = match verdict {
            RunVerdict::Pass | RunVerdict::Fail => RunStatus::Complete,
            RunVerdict::Error => RunStatus::Failed,
            RunVerdict::Pending => RunStatus::Interrupted,
        };
        self.cut_findings();
        self.findings.sort_by_key(|a| (a.block, a.tx_index));
        if let Some(c) = &mut self.conformance {
            c.failed_cases.sort();
        }
        self.not_comparable.sort_by_key(|n| (n.block, n.tx_index));
        self.state_roots
            .sort_by(|a, b| (a.block, &a.label).cmp(&(b.block, &b.label)));
    }
}
