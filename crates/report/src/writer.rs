//! The streaming writer.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use txshadow_corpus::write_atomic;
use txshadow_diff::Finding;

use crate::{
    Report, Skipped, TxRow,
    junit::{self, Case},
    markdown,
};

/// A report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// I/O on a report file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// CSV writing.
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: csv::Error,
    },
}

/// What one block contributed.
#[derive(Debug, Clone, Default)]
pub struct BlockResult {
    /// Block number.
    pub block: u64,
    /// Label.
    pub label: Option<String>,
    /// One row per tx.
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
    /// Warnings.
    pub warnings: Vec<String>,
    /// The block's state root check, when the real root was computed.
    pub state_root: Option<crate::StateRootEntry>,
    /// Txs that cannot be compared (their findings already removed), with reasons.
    pub not_comparable: Vec<crate::NotComparable>,
}

/// Writes a run's reports into `dir`, streaming as results arrive.
#[derive(Debug)]
pub struct ReportWriter {
    dir: PathBuf,
    csv: csv::Writer<File>,
    /// The report as it stands.
    pub report: Report,
    cases: Vec<Case>,
    gas_deltas: Vec<f64>,
    last_flush: Instant,
    per_tx_cases: bool,
}

impl ReportWriter {
    /// Creates `dir` and every output file (so a bad path fails before the run).
    pub fn create(dir: &Path, mut report: Report, per_tx_cases: bool) -> Result<Self, ReportError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReportError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let csv_path = dir.join("results.csv");
        let file = File::create(&csv_path).map_err(io(&csv_path))?;
        let csv = csv::Writer::from_writer(file);
        report.run.status = "running".into();
        let w = Self {
            dir: dir.to_path_buf(),
            csv,
            report,
            cases: vec![],
            gas_deltas: vec![],
            last_flush: Instant::now(),
            per_tx_cases,
        };
        w.write_json()?;
        w.write_text(
            "summary.md",
            "# txshadow: running\n\nThe run has not finished; see report.json.\n",
        )?;
        w.write_text("junit.xml", &junit::render(&w.report, &[]))?;
        Ok(w)
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_text(&self, name: &str, s: &str) -> Result<(), ReportError> {
        let p = self.dir.join(name);
        write_atomic(&p, s.as_bytes()).map_err(|e| ReportError::Io {
            path: p.clone(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    fn write_json(&self) -> Result<(), ReportError> {
        let s = serde_json::to_string_pretty(&self.report).expect("report serialises");
        self.write_text("report.json", &s)
    }

    /// Adds one block's results: CSV rows now, the rest kept for the final files.
    pub fn add(&mut self, r: BlockResult) -> Result<(), ReportError> {
        let csv_path = self.dir.join("results.csv");
        for row in &r.rows {
            self.csv.serialize(row).map_err(|source| ReportError::Csv {
                path: csv_path.clone(),
                source,
            })?;
            if let (Ok(g), Ok(e)) = (row.got_gas.parse::<u64>(), row.expected_gas.parse::<u64>()) {
                self.report.counts.gas_got += g;
                self.report.counts.gas_expected += e;
                if e > 0 {
                    self.gas_deltas
                        .push((g as f64 - e as f64) / e as f64 * 100.0);
                }
            }
        }
        self.csv.flush().map_err(|source| ReportError::Io {
            path: csv_path,
            source,
        })?;
        let c = &mut self.report.counts;
        if let Some(reason) = &r.skipped {
            c.skipped += r.rows.len();
            self.report.skipped.push(Skipped {
                block: r.block,
                label: r.label.clone(),
                txs: r.rows.len(),
                reason: reason.clone(),
            });
            self.cases.push(Case {
                block: r.block,
                name: case_name(r.block, r.label.as_deref(), None),
                findings: vec![],
                error: None,
                skipped: Some(reason.clone()),
            });
            return self.maybe_flush();
        }
        c.blocks += 1;
        c.txs += r.rows.len();
        c.findings += r.findings.len();
        c.accepted += r.findings.iter().filter(|f| f.accepted.is_some()).count();
        let open = |f: &&Finding| f.accepted.is_none();
        let mut tx_diff = std::collections::BTreeSet::new();
        let mut block_level = false;
        for f in r.findings.iter().filter(open) {
            match f.tx_index {
                Some(i) if f.kind != txshadow_diff::Kind::Error => {
                    tx_diff.insert(i);
                }
                Some(_) => {}
                None if f.kind != txshadow_diff::Kind::Error => block_level = true,
                None => {}
            }
        }
        let nc: std::collections::BTreeSet<usize> =
            r.not_comparable.iter().map(|n| n.tx_index).collect();
        let err_txs: std::collections::BTreeSet<usize> = r
            .tx_errors
            .iter()
            .map(|(i, _)| *i)
            .filter(|i| !nc.contains(i))
            .collect();
        let tx_diff: std::collections::BTreeSet<usize> = tx_diff.difference(&nc).copied().collect();
        c.errors += err_txs.len() + usize::from(r.error.is_some());
        c.not_comparable += nc.len();
        let differing_txs = tx_diff.difference(&err_txs).count();
        c.differing += differing_txs + usize::from(block_level && differing_txs == 0);
        c.matched += r
            .rows
            .len()
            .saturating_sub(differing_txs + err_txs.len() + nc.len());
        self.report
            .not_comparable
            .extend(r.not_comparable.iter().cloned());
        if !tx_diff.is_empty() || block_level {
            c.differing_blocks += 1;
        }
        self.report.warnings.extend(r.warnings.iter().cloned());
        self.report.state_roots.extend(r.state_root.clone());
        if self.per_tx_cases {
            let mut by_tx: std::collections::HashMap<usize, Vec<Finding>> = Default::default();
            for f in &r.findings {
                if let Some(i) = f.tx_index {
                    by_tx.entry(i).or_default().push(f.clone());
                }
            }
            let mut errors: std::collections::HashMap<usize, String> =
                r.tx_errors.iter().cloned().collect();
            for row in &r.rows {
                let f = by_tx.remove(&row.index).unwrap_or_default();
                let e = errors.remove(&row.index);
                self.cases.push(Case {
                    block: r.block,
                    name: case_name(r.block, r.label.as_deref(), Some((row.index, &row.hash))),
                    findings: f,
                    error: e,
                    skipped: None,
                });
            }
            let bf: Vec<Finding> = r
                .findings
                .iter()
                .filter(|f| f.tx_index.is_none())
                .cloned()
                .collect();
            if !bf.is_empty() || r.error.is_some() {
                self.cases.push(Case {
                    block: r.block,
                    name: case_name(r.block, r.label.as_deref(), None),
                    findings: bf,
                    error: r.error.clone(),
                    skipped: None,
                });
            }
        } else {
            let errors: Vec<String> = r
                .error
                .iter()
                .cloned()
                .chain(r.tx_errors.iter().map(|(i, e)| format!("tx {i}: {e}")))
                .collect();
            self.cases.push(Case {
                block: r.block,
                name: case_name(r.block, r.label.as_deref(), None),
                findings: r.findings.clone(),
                error: (!errors.is_empty()).then(|| errors.join("\n")),
                skipped: None,
            });
        }
        self.report.findings.extend(r.findings);
        self.report.throughput.gas += r.gas;
        self.maybe_flush()
    }

    fn maybe_flush(&mut self) -> Result<(), ReportError> {
        if self.last_flush.elapsed() > Duration::from_secs(2) {
            self.last_flush = Instant::now();
            self.write_json()?;
        }
        Ok(())
    }

    /// Writes the final files. `verdict` is `pass`, `fail` or `error`.
    pub fn finish(mut self, verdict: &str, finished: String) -> Result<Report, ReportError> {
        self.report.verdict = verdict.into();
        self.report.run.finished = finished;
        self.report.run.status = if verdict == "error" {
            "failed".into()
        } else {
            "complete".into()
        };
        self.report.findings.sort_by_key(|a| (a.block, a.tx_index));
        self.report
            .not_comparable
            .sort_by_key(|n| (n.block, n.tx_index));
        self.report
            .state_roots
            .sort_by(|a, b| (a.block, &a.label).cmp(&(b.block, &b.label)));
        self.cases
            .sort_by(|a, b| (a.block, &a.name).cmp(&(b.block, &b.name)));
        self.write_json()?;
        self.write_text(
            "summary.md",
            &markdown::render(&self.report, &self.gas_deltas),
        )?;
        self.write_text("junit.xml", &junit::render(&self.report, &self.cases))?;
        Ok(self.report)
    }
}

fn case_name(block: u64, label: Option<&str>, tx: Option<(usize, &str)>) -> String {
    let mut s = match label {
        Some(l) => format!("{l} (block {block})"),
        None => format!("block {block}"),
    };
    if let Some((i, h)) = tx {
        s.push_str(&format!(" tx {i} {h}"));
    }
    s
}
