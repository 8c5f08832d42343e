//! The run's files as a sink: rows streamed to `results.csv` as blocks arrive, the other files
//! rewritten as the run goes and at its end.

use std::{
    collections::HashMap,
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use txshadow_corpus::replace_atomic;
use txshadow_diff::Finding;

use crate::{
    BlockResult, Report, RunStatus, Sink,
    aggregate::Aggregates,
    html,
    junit::{self, Case, Unlisted},
    markdown,
};

/// Passing test cases `junit.xml` lists, at most (the first ones); the others are counted.
pub const LISTED_PASSING_CASES: usize = 10_000;
/// Failing, erroring and skipped test cases `junit.xml` lists, at most (the first ones); the
/// others are counted.
pub const LISTED_PROBLEM_CASES: usize = 10_000;

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
    /// A sink of another kind failed (metrics, a push).
    #[error("{0}")]
    Other(String),
}

/// Writes a run's files into one directory: `report.json`, `summary.md`, `results.csv`,
/// `junit.xml`, `index.html`. Every file exists from [`Self::create`] on (a bad path fails before the run);
/// `results.csv` gets each block's rows as it arrives; `report.json` and `summary.md` are
/// rewritten every few seconds (after each block when blocks come more than a second apart)
/// and at the end; whole files are written atomically.
#[derive(Debug)]
pub struct ReportWriter {
    dir: PathBuf,
    csv: File,
    /// A block's `results.csv` rows, written with one call.
    row_buf: Vec<u8>,
    pub(crate) cases: Vec<Case>,
    /// Passing and other cases in `cases` (conformance cases aside).
    listed: (usize, usize),
    /// Cases counted, not listed (past the caps).
    pub(crate) unlisted: Unlisted,
    /// Conformance cases by id: where each is in `cases`.
    case_index: HashMap<String, usize>,
    pub(crate) agg: Aggregates,
    started: Instant,
    txs_done: usize,
    last_flush: Instant,
    last_block: Instant,
    per_tx_cases: bool,
}

impl ReportWriter {
    /// Creates `dir` and every output file (so a bad path fails before the run). With
    /// `per_tx_cases`, `junit.xml` has a test case per tx (tx mode), else one per block.
    pub fn create(dir: &Path, report: &Report, per_tx_cases: bool) -> Result<Self, ReportError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReportError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let csv_path = dir.join("results.csv");
        let mut csv = File::create(&csv_path).map_err(io(&csv_path))?;
        // the header at once: a run killed before its first block leaves a valid CSV
        let header = crate::csvrow::CSV_HEADER.join(",") + "\n";
        csv.write_all(header.as_bytes()).map_err(io(&csv_path))?;
        let w = Self {
            dir: dir.to_path_buf(),
            csv,
            row_buf: vec![],
            cases: vec![],
            listed: (0, 0),
            unlisted: Unlisted::default(),
            case_index: HashMap::new(),
            agg: Aggregates::default(),
            started: Instant::now(),
            txs_done: 0,
            last_flush: Instant::now(),
            last_block: Instant::now(),
            per_tx_cases,
        };
        w.write_json(report)?;
        w.write_text(
            "summary.md",
            "# txshadow: running\n\nThe run has not finished; see report.json.\n",
        )?;
        w.write_text(
            "junit.xml",
            &junit::render(report, &[], &Unlisted::default()),
        )?;
        w.write_text(
            "index.html",
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>txshadow: running</title></head>\
             <body><h1>txshadow: running</h1><p>The run has not finished; see report.json.</p></body></html>\n",
        )?;
        Ok(w)
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces a file of the run: atomic (a kill leaves the old file or the new one), not
    /// fsynced (a report is cheap to make again where a corpus is not: the corpus is).
    fn write_text(&self, name: &str, s: &str) -> Result<(), ReportError> {
        let p = self.dir.join(name);
        replace_atomic(&p, s.as_bytes()).map_err(|e| ReportError::Io {
            path: p.clone(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    fn write_json(&self, report: &Report) -> Result<(), ReportError> {
        self.write_text("report.json", &render_json(report))
    }

    fn write_rows(&mut self, r: &BlockResult) -> Result<(), ReportError> {
        // a block's rows in one write: the file only ever ends at a row's end
        self.row_buf.clear();
        for row in &r.rows {
            row.write_csv(&mut self.row_buf);
            // the recipient's hex on the stack: no allocation per row
            let mut hex = [0u8; 42];
            let to = row.to.map_or("", |a| {
                hex[..2].copy_from_slice(b"0x");
                alloy_primitives::hex::encode_to_slice(a, &mut hex[2..]).expect("40 hex digits");
                std::str::from_utf8(&hex).expect("hex is ASCII")
            });
            self.agg.add(
                row.block,
                to,
                row.verdict.as_str(),
                row.expected_gas,
                row.got_gas,
            );
        }
        self.csv
            .write_all(&self.row_buf)
            .map_err(|source| ReportError::Io {
                path: self.dir.join("results.csv"),
                source,
            })
    }

    fn add_cases(&mut self, r: &BlockResult) {
        if let Some(case) = &r.case {
            self.add_suite_case(case, r);
            return;
        }
        let name = |tx| case_name(r.block, r.label.as_deref(), tx);
        if let Some(reason) = &r.skipped {
            self.push_case(Case {
                block: r.block,
                name: name(None),
                findings: vec![],
                error: None,
                skipped: Some(reason.clone()),
                classname: None,
            });
            return;
        }
        let open: Vec<&Finding> = r.findings.iter().filter(|f| f.accepted.is_none()).collect();
        if !self.per_tx_cases {
            let errors: Vec<String> = r
                .error
                .iter()
                .cloned()
                .chain(r.tx_errors.iter().map(|(i, e)| format!("tx {i}: {e}")))
                .collect();
            self.push_case(Case {
                block: r.block,
                name: name(None),
                findings: open.into_iter().cloned().collect(),
                error: (!errors.is_empty()).then(|| errors.join("\n")),
                skipped: None,
                classname: None,
            });
            return;
        }
        let mut by_tx: HashMap<usize, Vec<Finding>> = HashMap::new();
        for f in &open {
            if let Some(i) = f.tx_index {
                by_tx.entry(i).or_default().push((*f).clone());
            }
        }
        let mut errors: HashMap<usize, String> = r.tx_errors.iter().cloned().collect();
        for row in &r.rows {
            let hash = row.hash.to_string();
            self.push_case(Case {
                block: r.block,
                name: case_name(r.block, r.label.as_deref(), Some((row.index, &hash))),
                findings: by_tx.remove(&row.index).unwrap_or_default(),
                error: errors.remove(&row.index),
                skipped: None,
                classname: None,
            });
        }
        let block_findings: Vec<Finding> = open
            .iter()
            .filter(|f| f.tx_index.is_none())
            .map(|f| (*f).clone())
            .collect();
        if !block_findings.is_empty() || r.error.is_some() {
            self.push_case(Case {
                block: r.block,
                name: name(None),
                findings: block_findings,
                error: r.error.clone(),
                skipped: None,
                classname: None,
            });
        }
    }

    /// Lists a block's or tx's case, up to the caps; past them counts it by its outcome.
    fn push_case(&mut self, c: Case) {
        let passed = c.skipped.is_none() && c.error.is_none() && c.findings.is_empty();
        let (n, cap) = if passed {
            (&mut self.listed.0, LISTED_PASSING_CASES)
        } else {
            (&mut self.listed.1, LISTED_PROBLEM_CASES)
        };
        if *n < cap {
            *n += 1;
            self.cases.push(c);
            return;
        }
        let u = &mut self.unlisted;
        if c.skipped.is_some() {
            u.skipped += 1;
        } else if c.error.is_some() {
            u.errors += 1;
        } else if !c.findings.is_empty() {
            u.failures += 1;
        } else {
            u.passed += 1;
        }
    }

    /// A conformance case is one test case, whatever its blocks: a later block's findings,
    /// errors and skip join the case's (a failure outranks a skip, a skip a pass).
    fn add_suite_case(&mut self, case: &txshadow_corpus::SuiteCase, r: &BlockResult) {
        let findings: Vec<Finding> = r
            .findings
            .iter()
            .filter(|f| f.accepted.is_none())
            .cloned()
            .collect();
        let errors: Vec<String> = r
            .error
            .iter()
            .cloned()
            .chain(
                r.tx_errors
                    .iter()
                    .map(|(i, e)| format!("block {} tx {i}: {e}", r.block)),
            )
            .collect();
        let error = (!errors.is_empty()).then(|| errors.join("\n"));
        if let Some(&i) = self.case_index.get(&case.id) {
            let c = &mut self.cases[i];
            c.findings.extend(findings);
            c.error = match (c.error.take(), error) {
                (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
                (a, b) => a.or(b),
            };
            if c.skipped.is_none() {
                c.skipped = r.skipped.clone();
            }
        } else {
            self.case_index.insert(case.id.clone(), self.cases.len());
            self.cases.push(Case {
                block: r.block,
                classname: Some(case.folder.clone()),
                name: case.id.clone(),
                findings,
                error,
                skipped: r.skipped.clone(),
            });
        }
    }

    /// Writes the final files of `report` (its verdict and status set).
    fn write_final(&mut self, report: &Report) -> Result<(), ReportError> {
        // in block order, each block's cases as they came (its txs in order, then the block's
        // own case): the sort is stable, and blocks are emitted in order, so it finds them so
        self.cases.sort_by_key(|c| c.block);
        // the four files are rendered side by side (the workers are done by now, their cores
        // free: a tx-mode run's JUnit file lists thousands of cases), then written in order
        let (json, summary, junit, html) = std::thread::scope(|s| {
            let junit = s.spawn(|| junit::render(report, &self.cases, &self.unlisted));
            let html = s.spawn(|| html::render(report, &self.agg));
            let json = render_json(report);
            let summary = markdown::render(report, &self.agg.gas_buckets);
            let join = |h: std::thread::ScopedJoinHandle<'_, String>| {
                h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
            };
            (json, summary, join(junit), join(html))
        });
        // replaced atomically like every write of the run, not fsynced: a kill at any point
        // leaves whole files, and a report is cheap to make again where a corpus is not
        self.write_text("report.json", &json)?;
        self.write_text("summary.md", &summary)?;
        self.write_text("junit.xml", &junit)?;
        self.write_text("index.html", &html)
    }
}

impl Sink for ReportWriter {
    fn block(&mut self, r: &BlockResult, report: &Report) -> Result<(), ReportError> {
        self.write_rows(r)?;
        self.add_cases(r);
        if r.skipped.is_none() {
            self.txs_done += r.rows.len();
            self.agg
                .add_progress(self.started.elapsed().as_secs_f64(), self.txs_done);
        }
        // blocks that come slowly (a live run waiting for the chain) are written at once, so
        // the files never lag a block behind while the run waits for the next one
        let slow = self.last_block.elapsed() > Duration::from_secs(1);
        self.last_block = Instant::now();
        if slow || self.last_flush.elapsed() > Duration::from_secs(2) {
            self.last_flush = Instant::now();
            self.write_json(report)?;
            // a long (or endless, live) run keeps its summary current too
            self.write_text(
                "summary.md",
                &markdown::render(report, &self.agg.gas_buckets),
            )?;
        }
        Ok(())
    }

    fn finish(&mut self, report: &Report) -> Result<(), ReportError> {
        if report.run.status == RunStatus::Running {
            // not finished: report.json only, as it stands
            return self.write_json(report);
        }
        self.write_final(report)
    }
}

fn render_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("report serialises")
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
