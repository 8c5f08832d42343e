//! `report merge`: the run directories of a sharded run joined into one, the same as the
//! unsharded run would have written (counts, findings, accepted, skipped, not comparable,
//! verdict, `results.csv` rows, `junit.xml` cases), timing aside.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use txshadow_corpus::write_atomic;
use txshadow_diff::{CriteriaTally, Criterion, Kind, Totals};

use crate::{
    CsvRow, Report, RunStatus, RunVerdict, aggregate::Aggregates, csvrow::CSV_HEADER, html,
    markdown,
};

/// Why shards cannot be merged: each names the directory it is about.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A shard's file cannot be read or parsed.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The shards do not belong together, overlap, or some are missing.
    #[error("{dir}: {reason}")]
    Mismatch {
        /// The directory the mismatch shows in.
        dir: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// The merged directory could not be written.
    #[error("{path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

struct Shard {
    dir: PathBuf,
    report: Report,
    rows: Vec<CsvRow>,
    cases: Vec<(u64, String)>,
    /// Cases its `junit.xml` counts but does not list.
    unlisted: crate::junit::Unlisted,
}

fn read_shard(dir: &Path) -> Result<Shard, MergeError> {
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read_to_string(&path).map_err(|e| MergeError::Read {
            path: path.clone(),
            reason: format!("{e}: is this a txshadow run directory?"),
        })
    };
    let path = dir.join("report.json");
    let report: Report =
        serde_json::from_str(&read("report.json")?).map_err(|e| MergeError::Read {
            path: path.clone(),
            reason: format!(
                "not a txshadow report of schema {}: {e}",
                crate::SCHEMA_VERSION
            ),
        })?;
    let csv_path = dir.join("results.csv");
    let rows = csv::Reader::from_path(&csv_path)
        .and_then(|mut r| r.deserialize().collect::<Result<Vec<CsvRow>, _>>())
        .map_err(|e| MergeError::Read {
            path: csv_path,
            reason: e.to_string(),
        })?;
    let xml = read("junit.xml")?;
    let mut unlisted = crate::junit::Unlisted::default();
    unlisted.add_from_xml(&xml);
    Ok(Shard {
        dir: dir.to_path_buf(),
        report,
        rows,
        cases: junit_cases(&xml),
        unlisted,
    })
}

/// The `<testcase>` elements of a `junit.xml` txshadow wrote, with their block numbers.
fn junit_cases(xml: &str) -> Vec<(u64, String)> {
    let mut out = vec![];
    let mut cur: Option<String> = None;
    for line in xml.lines() {
        if line.trim_start().starts_with("<testcase ") {
            let block = line
                .split("classname=\"block.")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if line.trim_end().ends_with("/>") {
                out.push((block, format!("{line}\n")));
            } else {
                cur = Some(format!("{line}\n"));
                out.push((block, String::new()));
            }
            continue;
        }
        if let Some(c) = cur.as_mut() {
            c.push_str(line);
            c.push('\n');
            if line.trim_start().starts_with("</testcase>") {
                let done = cur.take().expect("open case");
                out.last_mut().expect("case").1 = done;
            }
        }
    }
    out
}

fn mismatch(dir: &Path, reason: impl Into<String>) -> MergeError {
    MergeError::Mismatch {
        dir: dir.to_path_buf(),
        reason: reason.into(),
    }
}

/// Checks that the shards are the shards of one run: same schema, corpus, mode,
/// configurations and criteria, each finished, every shard of `0..n` once.
fn check(shards: &[Shard]) -> Result<(), MergeError> {
    let first = &shards[0];
    let parse_shard = |s: &Shard| -> Result<(usize, usize), MergeError> {
        let v = s.report.run.shard.as_deref().ok_or_else(|| {
            mismatch(
                &s.dir,
                "not a shard run (no run.shard): replay it with --shard I/N",
            )
        })?;
        v.split_once('/')
            .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
            .ok_or_else(|| mismatch(&s.dir, format!("bad shard {v:?}")))
    };
    let (_, n) = parse_shard(first)?;
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for s in shards {
        let r = &s.report;
        if r.schema_version != crate::SCHEMA_VERSION
            || r.schema_version != first.report.schema_version
        {
            return Err(mismatch(
                &s.dir,
                format!(
                    "report schema {} (this txshadow merges schema {})",
                    r.schema_version,
                    crate::SCHEMA_VERSION
                ),
            ));
        }
        let same = |what: &str, a: String, b: String| {
            if a == b {
                Ok(())
            } else {
                Err(mismatch(
                    &s.dir,
                    format!("another {what} than {}: {a} vs {b}", first.dir.display()),
                ))
            }
        };
        same(
            "corpus",
            r.run
                .corpus_checksum
                .clone()
                .unwrap_or_else(|| r.run.corpus.clone()),
            first
                .report
                .run
                .corpus_checksum
                .clone()
                .unwrap_or_else(|| first.report.run.corpus.clone()),
        )?;
        same("mode", r.run.mode.clone(), first.report.run.mode.clone())?;
        same(
            "configuration",
            format!("{:?}", r.configurations),
            format!("{:?}", first.report.configurations),
        )?;
        same(
            "set of launch criteria",
            r.launch_criteria.join(","),
            first.report.launch_criteria.join(","),
        )?;
        let status = r.status_now();
        if status != RunStatus::Complete {
            return Err(mismatch(
                &s.dir,
                format!(
                    "the shard's run is {}, not complete: run it again",
                    status.as_str()
                ),
            ));
        }
        let (i, m) = parse_shard(s)?;
        if m != n {
            return Err(mismatch(
                &s.dir,
                format!("shard {i}/{m} of a run in {n} shards"),
            ));
        }
        if let Some(other) = seen.insert(i, &s.dir) {
            return Err(mismatch(
                &s.dir,
                format!("shard {i}/{n} is given twice (also {})", other.display()),
            ));
        }
    }
    let missing: Vec<String> = (0..n)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(mismatch(
            &first.dir,
            format!(
                "shard(s) {} missing: give every shard's directory",
                missing.join(", ")
            ),
        ));
    }
    let mut txs = BTreeSet::new();
    for s in shards {
        for r in &s.rows {
            if !txs.insert((r.block, r.index, r.hash.clone())) {
                return Err(mismatch(
                    &s.dir,
                    format!("tx {} of block {} is in two shards", r.index, r.block),
                ));
            }
        }
    }
    Ok(())
}

/// Sums the shards' reports into one.
fn combine(shards: &[Shard]) -> Report {
    let mut r = shards[0].report.clone();
    r.run.shard = None;
    r.run.merged_from = shards.iter().map(|s| s.dir.display().to_string()).collect();
    r.counts = Default::default();
    r.findings.clear();
    r.skipped.clear();
    r.not_comparable.clear();
    r.warnings.clear();
    r.state_roots.clear();
    r.left_out = Default::default();
    r.conformance = None;
    r.throughput = Default::default();
    for rule in &mut r.accepted_rules {
        rule.matched = 0;
    }
    for s in shards {
        let (c, x) = (&mut r.counts, &s.report.counts);
        c.blocks += x.blocks;
        c.txs += x.txs;
        c.matched += x.matched;
        c.differing += x.differing;
        c.errors += x.errors;
        c.skipped += x.skipped;
        c.findings += x.findings;
        c.accepted += x.accepted;
        c.differing_blocks += x.differing_blocks;
        c.block_errors += x.block_errors;
        c.gas_expected += x.gas_expected;
        c.gas_got += x.gas_got;
        c.not_comparable += x.not_comparable;
        r.findings.extend(s.report.findings.iter().cloned());
        r.skipped.extend(s.report.skipped.iter().cloned());
        r.not_comparable
            .extend(s.report.not_comparable.iter().cloned());
        r.warnings.extend(s.report.warnings.iter().cloned());
        r.state_roots.extend(s.report.state_roots.iter().cloned());
        r.left_out.add(&s.report.left_out);
        if let Some(x) = &s.report.conformance {
            // shards keep a case's blocks together, so a case is counted in one shard
            r.conformance.get_or_insert_default().merge(x);
        }
        for (rule, x) in r.accepted_rules.iter_mut().zip(&s.report.accepted_rules) {
            rule.matched += x.matched;
        }
        let (t, x) = (&mut r.throughput, &s.report.throughput);
        t.load_seconds += x.load_seconds;
        t.load_cpu_seconds += x.load_cpu_seconds;
        t.replay_seconds = t.replay_seconds.max(x.replay_seconds);
        t.gas += x.gas;
        t.jobs += x.jobs;
        t.receipts_checks.add(x.receipts_checks);
    }
    r.skipped
        .sort_by(|a, b| (a.block, &a.label).cmp(&(b.block, &b.label)));
    r.cap_lists();
    let t = &mut r.throughput;
    t.mgas_per_s = t.gas as f64 / 1e6 / t.replay_seconds.max(1e-9);
    t.tx_per_s = r.counts.txs as f64 / t.replay_seconds.max(1e-9);
    r
}

/// Merges shard run directories into `out` (created; its files written atomically) and
/// returns the merged report, its verdict by the shards' launch criteria.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Report, MergeError> {
    let Some(first) = dirs.first() else {
        return Err(mismatch(Path::new("."), "no shard directories given"));
    };
    let shards = dirs
        .iter()
        .map(|d| read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    check(&shards)?;
    let mut report = combine(&shards);
    let criteria = report
        .launch_criteria
        .iter()
        .map(|c| Criterion::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| mismatch(first, format!("launch criteria: {e}")))?;
    let c = &report.counts;
    let totals = Totals {
        txs: c.txs,
        errors: c.errors,
        block_errors: c.block_errors,
        not_comparable: c.not_comparable,
        gas_expected: c.gas_expected,
        gas_got: c.gas_got,
    };
    // the findings a shard left out count by kind (not for gas-tx, whose limit needs each)
    let mut tally = CriteriaTally::new(&criteria);
    for f in &report.findings {
        tally.add(f);
    }
    for (k, n) in &report.left_out.findings_by_kind {
        if let Some(kind) = Kind::parse(k) {
            tally.add_counted(kind, n.open);
        }
    }
    report.failed_criteria = tally.failed(&totals);
    let verdict = if report.failed_criteria.is_empty() {
        RunVerdict::Pass
    } else {
        RunVerdict::Fail
    };
    let finished = shards
        .iter()
        .map(|s| s.report.run.finished.clone())
        .max()
        .unwrap_or_default();
    report.run.started = shards
        .iter()
        .map(|s| s.report.run.started.clone())
        .min()
        .unwrap_or_default();
    report.run.id = out
        .file_name()
        .map_or_else(|| "merged".into(), |n| n.to_string_lossy().to_string());
    report.close(verdict, finished);
    write(&shards, &report, out)?;
    Ok(report)
}

fn write(shards: &[Shard], report: &Report, out: &Path) -> Result<(), MergeError> {
    let put = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        write_atomic(&path, bytes).map_err(|e| MergeError::Write {
            path,
            reason: e.to_string(),
        })
    };
    // rows in block order, each shard's own order kept within a block
    let mut rows: Vec<&CsvRow> = shards.iter().flat_map(|s| &s.rows).collect();
    rows.sort_by_key(|r| (r.block, r.index));
    let mut agg = Aggregates::default();
    let mut csv = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(vec![]);
    let csv_err = |e: csv::Error| MergeError::Write {
        path: out.join("results.csv"),
        reason: e.to_string(),
    };
    csv.write_record(CSV_HEADER).map_err(csv_err)?;
    for r in &rows {
        csv.serialize(r).map_err(csv_err)?;
        agg.add(
            r.block,
            &r.to,
            &r.verdict,
            r.expected_gas.parse().ok(),
            r.got_gas.parse().ok(),
        );
    }
    let csv = csv.into_inner().map_err(|e| MergeError::Write {
        path: out.join("results.csv"),
        reason: e.to_string(),
    })?;
    let mut cases: Vec<&(u64, String)> = shards.iter().flat_map(|s| &s.cases).collect();
    cases.sort_by_key(|c| c.0);
    let mut unlisted = crate::junit::Unlisted::default();
    for s in shards {
        let u = &s.unlisted;
        unlisted.passed += u.passed;
        unlisted.failures += u.failures;
        unlisted.errors += u.errors;
        unlisted.skipped += u.skipped;
    }
    let json = serde_json::to_string_pretty(report).expect("report serialises");
    put("results.csv", &csv)?;
    put(
        "junit.xml",
        crate::junit::render_cases(report, &cases, &unlisted).as_bytes(),
    )?;
    put(
        "summary.md",
        markdown::render(report, &agg.gas_buckets).as_bytes(),
    )?;
    put("index.html", html::render(report, &agg).as_bytes())?;
    put("report.json", json.as_bytes())
}
