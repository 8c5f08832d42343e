//! txshadow reports: what a run found, written while it runs.
//!
//! The last stage of `capture → corpus → replay → diff → report`. A [`ReportWriter`] creates
//! every output file before the long work starts (a bad path fails at once), streams one CSV row
//! per tx as blocks finish, rewrites `report.json` periodically, and writes the final
//! `report.json`, `summary.md` and `junit.xml` at the end, so a killed run still leaves valid
//! files. All writes of whole files are atomic.
//!
//! Files in `reports/<run-id>/`:
//! - `report.json`: versioned envelope ([`SCHEMA_VERSION`]): run, inputs, configurations,
//!   counts, findings, skipped items, throughput, per-block state roots;
//! - `summary.md`: verdict, counts, findings grouped by kind and by contract, gas deltas,
//!   state roots;
//! - `results.csv`: one row per tx ([`TxRow`]);
//! - `junit.xml`: one test case per tx with findings or error, and per block.

mod csvrow;
mod envelope;
mod junit;
mod markdown;
mod writer;

pub use csvrow::TxRow;
pub use envelope::{
    Counts, NotComparable, Report, RunInfo, SCHEMA_VERSION, SideStateRoot, Skipped, StateRootEntry,
    Throughput,
};
pub use writer::{BlockResult, ReportError, ReportWriter};
