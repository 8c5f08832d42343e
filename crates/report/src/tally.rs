//! A run's results as they arrive: one [`BlockResult`] per block, tallied into the [`Report`]
//! and handed to every [`Sink`] in block order.

use txshadow_diff::{Finding, Kind};

use crate::{
    NotComparable, Report, ReportError, RunStatus, RunVerdict, Skipped, StateRootEntry, TxRow,
    Verdict,
};

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
            self.skipped.push(Skipped {
                block: r.block,
                label: r.label.clone(),
                txs: r.rows.len(),
                reason: reason.clone(),
            });
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
        self.not_comparable.extend(r.not_comparable.iter().cloned());
        self.warnings.extend(r.warnings.iter().cloned());
        self.state_roots.extend(r.state_root.clone());
        self.findings.extend(r.findings.iter().cloned());
        self.throughput.gas += r.gas;
        self.throughput.receipts_checks.add(r.receipts_checks);
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
        self.findings.sort_by_key(|a| (a.block, a.tx_index));
        if let Some(c) = &mut self.conformance {
            c.failed_cases.sort();
        }
        self.not_comparable.sort_by_key(|n| (n.block, n.tx_index));
        self.state_roots
            .sort_by(|a, b| (a.block, &a.label).cmp(&(b.block, &b.label)));
    }
}
