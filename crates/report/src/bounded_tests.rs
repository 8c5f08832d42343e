//! A run of any length is held in bounded memory: 100,000 synthetic blocks through a
//! [`Report`] and a [`ReportWriter`], and every structure that grows with blocks or txs stays
//! under its cap while the counts stay exact.

use alloy_primitives::Address;
use txshadow_diff::{Finding, Kind};

use crate::{
    BlockResult, LISTED_ENTRIES, LISTED_FINDINGS, LISTED_PASSING_CASES, LISTED_PROBLEM_CASES,
    LISTED_WARNINGS, NotComparable, Report, ReportWriter, RunVerdict, Sink, StateRootEntry, TxRow,
    Verdict,
    aggregate::{MAX_CONTRACTS, MAX_SERIES},
};

const BLOCKS: u64 = 100_000;

/// Block `n`: two txs (the second to a contract of its own, differing every 4th block), a
/// gas finding on differing blocks, a warning, a state root, a not-comparable tx every 10th
/// block, and every 50th block skipped.
fn block(n: u64) -> BlockResult {
    let contract = Address::from_word(alloy_primitives::B256::from(alloy_primitives::U256::from(
        n,
    )));
    let differs = n.is_multiple_of(4);
    let row = |index: usize, to: Address, verdict: Verdict, got: u64| TxRow {
        block: n,
        index,
        to: Some(to),
        verdict,
        expected_gas: Some(21_000),
        got_gas: Some(got),
        ..Default::default()
    };
    let mut r = BlockResult {
        block: n,
        rows: vec![
            row(0, Address::ZERO, Verdict::Match, 21_000),
            row(
                1,
                contract,
                if differs {
                    Verdict::Differ
                } else {
                    Verdict::Match
                },
                if differs { 21_000 + n } else { 21_000 },
            ),
        ],
        warnings: vec![format!("block {n}: a warning")],
        state_root: Some(StateRootEntry {
            block: n,
            ..Default::default()
        }),
        ..Default::default()
    };
    if differs {
        let mut f = Finding::block(
            n,
            Default::default(),
            Kind::Gas,
            "gas_used",
            21_000 + n,
            21_000,
        );
        f.tx_index = Some(1);
        f.to = Some(contract);
        r.findings.push(f);
    }
    if n.is_multiple_of(10) {
        r.not_comparable.push(NotComparable {
            block: n,
            tx_index: 0,
            tx_hash: String::new(),
            reason: "synthetic".into(),
            findings_set_aside: 0,
        });
    }
    if n.is_multiple_of(50) {
        r.skipped = Some("synthetic skip".into());
    }
    r
}

fn assert_bounded(report: &Report, w: &ReportWriter) {
    assert!(report.findings.len() < 2 * LISTED_FINDINGS);
    assert!(report.skipped.len() <= LISTED_ENTRIES);
    assert!(report.not_comparable.len() <= LISTED_ENTRIES);
    assert!(report.state_roots.len() <= LISTED_ENTRIES);
    assert!(report.warnings.len() <= LISTED_WARNINGS);
    assert!(w.cases.len() <= LISTED_PASSING_CASES + LISTED_PROBLEM_CASES);
    assert!(w.agg.per_block.len() <= MAX_SERIES);
    assert!(w.agg.progress.len() <= MAX_SERIES + 1);
    assert!(w.agg.by_contract.len() <= MAX_CONTRACTS + 1);
}

#[test]
fn a_run_of_any_length_keeps_its_structures_under_their_caps() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = Report::default();
    let mut w = ReportWriter::create(&dir.path().join("run"), &report, false).unwrap();
    // the writer rewrites report.json as it goes: given an empty report until the end, so
    // the test spends its time on the blocks, not on rewriting a large file
    let empty = Report::default();
    for n in 1..=BLOCKS {
        let r = block(n);
        report.add_block(&r);
        w.block(&r, &empty).unwrap();
        if n.is_multiple_of(10_000) {
            assert_bounded(&report, &w);
        }
    }
    report.close(RunVerdict::Fail, "now".into());
    w.finish(&report).unwrap();
    assert_bounded(&report, &w);

    // the counts are exact, and what a list left out is counted
    let c = &report.counts;
    let skipped_blocks = (BLOCKS / 50) as usize;
    let replayed = BLOCKS as usize - skipped_blocks;
    assert_eq!((c.blocks, c.txs), (replayed, 2 * replayed));
    let o = &report.left_out;
    assert_eq!(report.findings.len(), LISTED_FINDINGS);
    assert_eq!(report.findings.len() + o.findings, c.findings);
    assert_eq!(o.findings_by_kind["gas"].open, o.findings);
    // the largest gas changes are the ones listed, in block order
    let mut differing: Vec<u64> = (1..=BLOCKS)
        .filter(|n| n.is_multiple_of(4) && !n.is_multiple_of(50))
        .collect();
    differing.reverse();
    let lowest_kept = differing[LISTED_FINDINGS - 1];
    assert_eq!(report.findings[0].block, lowest_kept);
    assert!(report.findings.windows(2).all(|p| p[0].block < p[1].block));
    assert_eq!(report.skipped.len() + o.skipped, skipped_blocks);
    assert_eq!(
        report.not_comparable.len() + o.not_comparable,
        (BLOCKS / 10 - BLOCKS / 50) as usize
    );
    assert_eq!(report.warnings.len() + o.warnings, replayed);
    assert_eq!(report.state_roots.len() + o.state_roots, replayed);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/report.json")).unwrap())
            .unwrap();
    assert_eq!(json["left_out"]["findings"], o.findings);

    // the gas histogram counts every row written (skipped blocks' too, as results.csv has
    // them); the series cover every block
    let rows = 2 * BLOCKS as usize;
    assert_eq!(w.agg.gas_buckets.iter().sum::<usize>(), rows);
    let (first, last) = (
        w.agg.per_block[0].first,
        w.agg.per_block.last().unwrap().last,
    );
    assert_eq!((first, last), (1, BLOCKS));
    let txs: usize = w.agg.per_block.iter().map(|b| b.txs).sum();
    assert_eq!(txs, rows);
    assert_eq!(w.agg.progress.last().unwrap().1, c.txs);
    let contract_txs: usize = w.agg.by_contract.values().map(|a| a.txs).sum();
    assert_eq!(contract_txs, rows);

    // junit.xml counts every case, listed or not
    let junit = std::fs::read_to_string(dir.path().join("run/junit.xml")).unwrap();
    assert!(junit.contains(&format!("<testsuites name=\"txshadow\" tests=\"{BLOCKS}\"")));
    let listed = junit.matches("<testcase ").count();
    assert_eq!(listed, w.cases.len());
    let u = &w.unlisted;
    assert_eq!(
        listed + u.passed + u.failures + u.errors + u.skipped,
        BLOCKS as usize
    );
    assert!(junit.contains(&format!(
        "<property name=\"txshadow.unlisted.passed\" value=\"{}\"/>",
        u.passed
    )));
}

#[test]
fn a_run_under_the_caps_lists_everything() {
    let mut report = Report::default();
    for n in 1..=1000 {
        report.add_block(&block(n));
    }
    report.close(RunVerdict::Fail, "now".into());
    assert!(report.left_out.is_empty());
    assert_eq!(report.findings.len(), report.counts.findings);
    let json = serde_json::to_value(&report).unwrap();
    assert!(
        json.get("left_out").is_none(),
        "absent when nothing is left out"
    );
}

/// Past the cap, the findings listed do not depend on the order the blocks came in: a merge of
/// shards (blocks in another order, lists joined) lists what the whole run lists.
#[test]
fn the_findings_kept_past_the_cap_do_not_depend_on_block_order() {
    let findings = |n: u64| {
        // equal impact everywhere: only the total order can pick the same ones
        (0..3)
            .map(|i| {
                Finding::block(
                    n,
                    Default::default(),
                    Kind::State,
                    format!("state.{i}"),
                    1,
                    2,
                )
            })
            .collect::<Vec<_>>()
    };
    let n = (LISTED_FINDINGS as u64) / 2 + 7;
    let kept = |order: Vec<u64>| {
        let mut r = Report::default();
        for b in order {
            r.add_block(&BlockResult {
                block: b,
                findings: findings(b),
                ..Default::default()
            });
        }
        r.close(RunVerdict::Fail, String::new());
        assert_eq!(r.findings.len(), LISTED_FINDINGS);
        r.findings
    };
    let forward: Vec<u64> = (1..=n).collect();
    let mut shuffled: Vec<u64> = forward.iter().copied().filter(|b| b % 3 == 0).collect();
    shuffled.extend(forward.iter().rev().filter(|b| *b % 3 != 0));
    assert_eq!(kept(forward), kept(shuffled));
}

#[test]
fn the_contracts_dropped_past_the_cap_are_the_same_in_every_tally() {
    // the tally is hashed, with a random order per map: the contracts that make room must
    // not depend on it, or a run and the merge of its shards would plot different contracts
    let tally = || {
        let mut a = crate::aggregate::Aggregates::default();
        for n in 0..(MAX_CONTRACTS as u64 + 500) {
            let to = format!("0x{n:040x}");
            // every 3rd contract's gas changes: it stays; the others make room
            let got = if n % 3 == 0 { 22_000 } else { 21_000 };
            a.add(n, &to, "match", Some(21_000), Some(got));
        }
        let mut v: Vec<_> = a
            .by_contract
            .iter()
            .map(|(k, c)| (k.clone(), c.txs, c.gas_delta))
            .collect();
        v.sort();
        v
    };
    let first = tally();
    assert_eq!(
        first.len(),
        MAX_CONTRACTS + 1,
        "the cap and the other contracts' entry"
    );
    for _ in 0..3 {
        assert_eq!(tally(), first);
    }
    // the least idle contracts by key went first
    assert!(!first.iter().any(|(k, ..)| k == &format!("0x{:040x}", 1)));
    assert!(first.iter().any(|(k, ..)| k == &format!("0x{:040x}", 0)));
}

/// A tx-mode run's JUnit file lists a block's txs in their order (tx 2 before tx 10), then the
/// block's own case, block after block.
#[test]
fn junit_lists_a_blocks_txs_in_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = Report::default();
    let mut w = ReportWriter::create(&dir.path().join("run"), &report, true).unwrap();
    for n in [7u64, 9] {
        let mut r = block(n);
        r.rows = (0..12)
            .map(|index| TxRow {
                block: n,
                index,
                verdict: Verdict::Match,
                ..Default::default()
            })
            .collect();
        // a block-level finding: the block gets a case of its own after its txs
        r.findings = vec![Finding::block(
            n,
            Default::default(),
            Kind::Gas,
            "gas_used",
            1,
            2,
        )];
        report.add_block(&r);
        w.block(&r, &report).unwrap();
    }
    report.close(RunVerdict::Fail, "now".into());
    w.finish(&report).unwrap();
    let junit = std::fs::read_to_string(dir.path().join("run/junit.xml")).unwrap();
    let listed: Vec<String> = junit
        .lines()
        .filter(|l| l.contains("<testcase"))
        .map(|l| {
            let name = &l[l.find(" name=\"").unwrap() + 7..];
            let name = &name[..name.find('"').unwrap()];
            name.split(" 0x").next().unwrap().to_string()
        })
        .collect();
    let mut want = vec![];
    for n in [7, 9] {
        want.extend((0..12).map(|i| format!("block {n} tx {i}")));
        want.push(format!("block {n}"));
    }
    assert_eq!(listed, want);
}
