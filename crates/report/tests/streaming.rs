//! A killed run leaves valid files: everything exists and parses before `finish`.

use txshadow_report::{BlockResult, Report, ReportWriter, TxRow};

#[test]
fn files_are_valid_before_the_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut w = ReportWriter::create(
        &run,
        Report {
            schema_version: 1,
            ..Default::default()
        },
        false,
    )
    .unwrap();
    // valid from the start
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["run"]["status"], "running");
    assert!(
        std::fs::read_to_string(run.join("junit.xml"))
            .unwrap()
            .contains("<testsuites")
    );
    assert!(
        std::fs::read_to_string(run.join("summary.md"))
            .unwrap()
            .contains("running")
    );
    let row = |i| TxRow {
        block: 7,
        index: i,
        verdict: "match".into(),
        ..Default::default()
    };
    w.add(BlockResult {
        block: 7,
        rows: vec![row(0), row(1)],
        ..Default::default()
    })
    .unwrap();
    // rows are on disk as soon as the block is added (as if the process were killed now)
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let report = w.finish("pass", "now".into()).unwrap();
    assert_eq!(report.counts.txs, 2);
    assert_eq!(report.counts.matched, 2);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["run"]["status"], "complete");
    assert_eq!(r["counts"]["matched"], 2);
}

#[test]
fn a_bad_report_path_fails_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = ReportWriter::create(&file.join("run"), Report::default(), false).unwrap_err();
    assert!(err.to_string().contains("file"), "{err}");
}
