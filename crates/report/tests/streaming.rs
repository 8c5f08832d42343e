//! A killed run leaves valid files: everything exists and parses before the end.

use txshadow_report::{BlockResult, Report, ReportWriter, RunVerdict, Sink, TxRow, Verdict};

fn read(p: std::path::PathBuf) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn files_are_valid_before_the_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut report = Report {
        schema_version: txshadow_report::SCHEMA_VERSION,
        ..Default::default()
    };
    let mut w = ReportWriter::create(&run, &report, false).unwrap();
    // valid from the start, the CSV with its header
    let r: serde_json::Value = serde_json::from_str(&read(run.join("report.json"))).unwrap();
    assert_eq!(r["run"]["status"], "running");
    assert_eq!(r["verdict"], "pending");
    assert!(read(run.join("junit.xml")).contains("<testsuites"));
    assert!(read(run.join("summary.md")).contains("running"));
    assert_eq!(read(run.join("results.csv")).lines().count(), 1);
    assert!(read(run.join("results.csv")).starts_with("block,index,hash,"));
    let row = |i, verdict| TxRow {
        block: 7,
        index: i,
        verdict,
        expected_gas: Some(21_000),
        got_gas: Some(21_000 + i as u64),
        ..Default::default()
    };
    let block = BlockResult {
        block: 7,
        rows: vec![row(0, Verdict::Match), row(1, Verdict::Differ)],
        ..Default::default()
    };
    report.add_block(&block);
    w.block(&block, &report).unwrap();
    // rows are on disk as soon as the block is added (as if the process were killed now)
    let csv = read(run.join("results.csv"));
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let second: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
    assert_eq!(second[11], "1", "gas delta: {csv}");
    assert_eq!(second[14], "differ");
    report.close(RunVerdict::Fail, "now".into());
    w.finish(&report).unwrap();
    assert_eq!(report.counts.txs, 2);
    assert_eq!((report.counts.matched, report.counts.differing), (1, 1));
    assert_eq!(report.counts.differing_blocks, 1);
    let r: serde_json::Value = serde_json::from_str(&read(run.join("report.json"))).unwrap();
    assert_eq!(r["run"]["status"], "complete");
    assert_eq!(r["verdict"], "fail");
    assert_eq!(r["counts"]["matched"], 1);
}

#[test]
fn a_run_that_stopped_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut report = Report::default();
    let mut w = ReportWriter::create(&run, &report, true).unwrap();
    report.close(RunVerdict::Pending, "now".into());
    w.finish(&report).unwrap();
    let r: serde_json::Value = serde_json::from_str(&read(run.join("report.json"))).unwrap();
    assert_eq!(r["run"]["status"], "interrupted");
    assert!(read(run.join("summary.md")).contains("INTERRUPTED"));
}

#[test]
fn a_bad_report_path_fails_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = ReportWriter::create(&file.join("run"), &Report::default(), false).unwrap_err();
    assert!(err.to_string().contains("file"), "{err}");
}
