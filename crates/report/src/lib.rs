//! txshadow reports: what a run found, written while it runs.
//!
//! The last stage of `capture → corpus → replay → diff → report`. A run tallies each block's
//! [`BlockResult`] into its [`Report`] ([`Report::add_block`]) and hands it to every [`Sink`] in
//! block order. [`ReportWriter`] is the sink of the run directory: it creates every file before
//! the long work starts (a bad path fails at once), streams one CSV row per tx as blocks arrive,
//! rewrites `report.json` periodically, and writes the final `report.json`, `summary.md` and
//! `junit.xml` at the end, so a killed run still leaves valid files. All writes of whole files
//! are atomic. The model is typed ([`Verdict`], [`RunVerdict`], [`Configurations`], numbers as
//! numbers); strings are made only by the writers.
//!
//! A run of any length (a live one has no end) is kept in bounded memory: the aggregates are
//! fixed-size, and every list a report or a file keeps has a cap a batch run of normal size
//! does not reach ([`LISTED_FINDINGS`], [`LISTED_ENTRIES`], [`LISTED_WARNINGS`],
//! [`LISTED_PASSING_CASES`], [`LISTED_PROBLEM_CASES`]); past it the entries are counted, not
//! listed ([`LeftOut`], the `txshadow.unlisted.*` properties of `junit.xml`), and the counts
//! stay exact.
//!
//! Files in `reports/<run-id>/`:
//! - `report.json`: versioned envelope ([`SCHEMA_VERSION`]): run, inputs, configurations,
//!   counts, findings, skipped items, throughput, per-block state roots, what was left out;
//! - `summary.md`: verdict, counts, findings grouped by kind and by contract, gas deltas,
//!   state roots;
//! - `results.csv`: one row per tx ([`CsvRow`]);
//! - `junit.xml`: one test case per tx with findings or error, and per block;
//! - `index.html`: one offline page: verdict, counts, plots (inline SVG), the findings of
//!   most impact with filters.
//!
//! [`metrics`] keeps a run's results as Prometheus metrics (a sink), served live or written to
//! a file for a textfile collector.
//!
//! [`merge`] joins the run directories of a sharded run into one, as if it had run whole.
//!
//! ```
//! use txshadow_report::{BlockResult, Report, RunVerdict, TxRow, Verdict};
//! let mut report = Report::default();
//! let row = TxRow { block: 1, verdict: Verdict::Match, ..Default::default() };
//! report.add_block(&BlockResult { block: 1, rows: vec![row], ..Default::default() });
//! report.close(RunVerdict::Pass, "2026-01-01T00:00:00Z".into());
//! assert_eq!((report.counts.txs, report.counts.matched), (1, 1));
//! ```

mod aggregate;
#[cfg(test)]
mod bounded_tests;
mod conformance;
mod csvrow;
mod envelope;
mod html;
mod junit;
mod markdown;
mod merge;
pub mod metrics;
mod serve;
mod tally;
mod writer;

pub use conformance::{CaseCounts, CaseVerdict, Conformance};
pub use csvrow::{CsvRow, TxRow, Verdict};
pub use envelope::{
    Configurations, Counts, KindCounts, LeftOut, NotComparable, ReceiptsChecks, Report, RunInfo,
    RunStatus, RunVerdict, SCHEMA_VERSION, SideStateRoot, Skipped, StateRootEntry, Throughput,
};
pub use merge::{MergeError, merge};
pub use metrics::{BuildInfo, Metrics, MetricsSink, Pushgateway};
pub use serve::serve_metrics;
pub use tally::{BlockResult, LISTED_ENTRIES, LISTED_FINDINGS, LISTED_WARNINGS, Sink};
pub use writer::{LISTED_PASSING_CASES, LISTED_PROBLEM_CASES, ReportError, ReportWriter};
