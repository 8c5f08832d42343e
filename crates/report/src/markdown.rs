//! `summary.md`: fit for a CI step summary.

use std::{collections::BTreeMap, fmt::Write};

use txshadow_diff::{Finding, Kind};

use crate::{Report, RunVerdict};

fn cell(s: &str) -> String {
    let s = s.replace('|', "\\|").replace('\n', " ");
    if s.chars().count() > 70 {
        format!("{}…", s.chars().take(69).collect::<String>())
    } else {
        s
    }
}

/// Renders the summary. `gas_buckets` counts txs by the bucket of
/// [`crate::aggregate::GAS_BUCKETS`] their relative gas change falls in.
pub(crate) fn render(r: &Report, gas_buckets: &[usize]) -> String {
    let mut m = String::new();
    header(&mut m, r);
    counts(&mut m, r);
    conformance(&mut m, r);
    findings(&mut m, r);
    gas_histogram(&mut m, gas_buckets);
    accepted(&mut m, r);
    skipped_and_warnings(&mut m, r);
    state_roots(&mut m, r);
    let t = &r.throughput;
    let _ = writeln!(
        m,
        "\n## Throughput\n\n{:.1} Mgas/s, {:.0} tx/s with {} worker(s); load {:.2} s, replay {:.2} s.",
        t.mgas_per_s, t.tx_per_s, t.jobs, t.load_seconds, t.replay_seconds
    );
    m
}

fn header(m: &mut String, r: &Report) {
    let c = &r.counts;
    let icon = match r.verdict {
        RunVerdict::Pass => "PASS",
        RunVerdict::Fail => "FAIL",
        RunVerdict::Error => "ERROR",
        RunVerdict::Pending => "INTERRUPTED",
    };
    let _ = writeln!(m, "# txshadow: {icon}\n");
    let _ = writeln!(
        m,
        "Run `{}` ({} mode) over `{}`: {} blocks, {} txs.\n",
        r.run.id, r.run.mode, r.run.corpus, c.blocks, c.txs
    );
    let cf = &r.configurations;
    let _ = writeln!(m, "| | |\n|---|---|");
    let _ = writeln!(m, "| baseline | `{}` |", cell(&cf.baseline));
    if let Some(cand) = &cf.candidate {
        let _ = writeln!(m, "| candidate | `{}` |", cell(cand));
    }
    let _ = writeln!(m, "| compared with | {} |", cell(&cf.compared_with));
    if let Some(shard) = &r.run.shard {
        let _ = writeln!(m, "| shard | {shard} |");
    }
    // which engine each side ran on, in full (a node: its client, the path, the overrides)
    let engines: Vec<_> = [
        ("baseline", &cf.baseline_engine),
        ("candidate", &cf.candidate_engine),
    ]
    .into_iter()
    .filter_map(|(side, e)| Some((side, e.as_deref()?)))
    .collect();
    if !engines.is_empty() {
        let _ = writeln!(m, "\n## Engines\n");
        for (side, e) in engines {
            let _ = writeln!(m, "- {side}: {}", e.replace('\n', " "));
        }
        for w in &cf.node_warnings {
            let _ = writeln!(m, "- **warning**: {w}");
        }
    }
}

fn counts(m: &mut String, r: &Report) {
    let c = &r.counts;
    let _ = writeln!(m, "\n## Counts\n");
    let _ = writeln!(
        m,
        "| blocks | txs | matched | differing | errors | skipped | findings | accepted |"
    );
    let _ = writeln!(m, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        m,
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        c.blocks, c.txs, c.matched, c.differing, c.errors, c.skipped, c.findings, c.accepted
    );
    if c.differing_blocks > 0 || c.block_errors > 0 {
        let _ = writeln!(
            m,
            "\nBlocks: {} differing, {} failed as a whole.",
            c.differing_blocks, c.block_errors
        );
    }
    if !r.not_comparable.is_empty() {
        let _ = writeln!(
            m,
            "\n## Not comparable ({})\n\nWhat a side cannot reproduce: neither a difference nor an \
             error.\n\n| block | tx | hash | reason |\n|---:|---:|---|---|",
            c.not_comparable
        );
        for n in r.not_comparable.iter().take(50) {
            let _ = writeln!(
                m,
                "| {} | {} | `{}` | {} |",
                n.block,
                n.tx_index,
                cell(&n.tx_hash),
                cell(&n.reason)
            );
        }
        if r.not_comparable.len() > 50 {
            let _ = writeln!(m, "\n{} more in report.json.", r.not_comparable.len() - 50);
        }
        if r.left_out.not_comparable > 0 {
            let _ = writeln!(
                m,
                "\n{} more counted, not listed.",
                r.left_out.not_comparable
            );
        }
    }
    if !r.failed_criteria.is_empty() {
        let _ = writeln!(m, "\n## Launch criteria failed\n");
        for f in &r.failed_criteria {
            let _ = writeln!(m, "- {f}");
        }
    }
}

/// A finding's impact, smallest first: errors, status flips, gas changes by size, the rest.
pub(crate) fn impact_rank(f: &Finding) -> (u8, std::cmp::Reverse<u128>) {
    match f.kind {
        Kind::Error => (0, std::cmp::Reverse(0)),
        Kind::Status => (1, std::cmp::Reverse(0)),
        Kind::Gas | Kind::BlockGas | Kind::CumulativeGas => {
            let d = f.gas_pair().map_or(0, |(g, e)| g.abs_diff(e));
            (2, std::cmp::Reverse(u128::from(d)))
        }
        _ => (3, std::cmp::Reverse(0)),
    }
}

/// Impact order: errors and status flips first, then gas changes by size, then the rest in
/// block order.
pub(crate) fn by_impact<'a>(findings: &[&'a Finding]) -> Vec<&'a Finding> {
    let mut v = findings.to_vec();
    // stable: equal ranks keep block order
    v.sort_by_key(|f| impact_rank(f));
    v
}

fn findings(m: &mut String, r: &Report) {
    let open: Vec<_> = r.findings.iter().filter(|f| f.accepted.is_none()).collect();
    let left = &r.left_out;
    if r.findings.is_empty() && left.findings == 0 {
        return;
    }
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut by_contract: BTreeMap<String, usize> = BTreeMap::new();
    for f in &r.findings {
        let e = by_kind.entry(f.kind.as_str()).or_default();
        if f.accepted.is_some() {
            e.1 += 1;
        } else {
            e.0 += 1;
            let k =
                f.to.map_or_else(|| "(block / creation)".to_string(), |a| a.to_string());
            *by_contract.entry(k).or_default() += 1;
        }
    }
    for (k, n) in &left.findings_by_kind {
        let e = by_kind.entry(k.as_str()).or_default();
        e.0 += n.open;
        e.1 += n.accepted;
    }
    let _ = writeln!(
        m,
        "\n## Findings by kind\n\n| kind | open | accepted |\n|---|---:|---:|"
    );
    for (k, (o, a)) in &by_kind {
        let _ = writeln!(m, "| {k} | {o} | {a} |");
    }
    if left.findings > 0 {
        let _ = writeln!(
            m,
            "\nreport.json lists the {} findings of most impact; {} more are counted, not \
             listed. The tables below are of the listed ones.",
            r.findings.len(),
            left.findings
        );
    }
    if !by_contract.is_empty() {
        let mut v: Vec<_> = by_contract.into_iter().collect();
        v.sort_by_key(|x| std::cmp::Reverse(x.1));
        let _ = writeln!(
            m,
            "\n## Open findings by contract\n\n| contract | findings |\n|---|---:|"
        );
        for (k, n) in v.iter().take(15) {
            let _ = writeln!(m, "| `{k}` | {n} |");
        }
    }
    if !open.is_empty() {
        top_findings(m, &open);
    }
}

fn top_findings(m: &mut String, open: &[&Finding]) {
    let _ = writeln!(
        m,
        "\n## Top findings\n\n| block | tx | kind | field | got | expected |\n|---:|---|---|---|---|---|"
    );
    for f in by_impact(open).iter().take(25) {
        let tx = match (f.tx_index, f.tx_hash) {
            (Some(i), Some(h)) => format!("{i} `{}`", &h.to_string()[..12]),
            _ => "(block)".into(),
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | `{}` | `{}` | `{}` |",
            f.block,
            tx,
            f.kind.as_str(),
            cell(&f.field),
            cell(&f.got),
            cell(&f.expected)
        );
    }
    if open.len() > 25 {
        let _ = writeln!(m, "\n…and {} more in `report.json`.", open.len() - 25);
    }
}

fn gas_histogram(m: &mut String, gas_buckets: &[usize]) {
    if gas_buckets.iter().any(|n| *n > 0) {
        let _ = writeln!(
            m,
            "\n## Gas delta per tx (got vs expected)\n\n| delta | txs | |\n|---|---:|---|"
        );
        let max = gas_buckets.iter().copied().max().unwrap_or(1).max(1);
        for ((_, _, label), n) in crate::aggregate::GAS_BUCKETS.iter().zip(gas_buckets) {
            let bar = "█".repeat((n * 30).div_ceil(max));
            let _ = writeln!(m, "| {label} | {n} | {bar} |");
        }
    }
}

fn accepted(m: &mut String, r: &Report) {
    let accepted: Vec<_> = r.findings.iter().filter(|f| f.accepted.is_some()).collect();
    if !accepted.is_empty() {
        let _ = writeln!(
            m,
            "\n## Accepted differences\n\n| block | tx | field | reason |\n|---:|---:|---|---|"
        );
        for f in accepted.iter().take(50) {
            let _ = writeln!(
                m,
                "| {} | {} | `{}` | {} |",
                f.block,
                f.tx_index.map_or_else(|| "-".into(), |i| i.to_string()),
                cell(&f.field),
                cell(f.accepted.as_deref().unwrap_or(""))
            );
        }
    }
    let stale: Vec<_> = r.accepted_rules.iter().filter(|a| a.matched == 0).collect();
    if !stale.is_empty() {
        let _ = writeln!(m, "\n## Stale accepted differences (matched nothing)\n");
        for a in stale {
            let _ = writeln!(m, "- {}", cell(&a.rule.reason));
        }
    }
}

fn skipped_and_warnings(m: &mut String, r: &Report) {
    if !r.skipped.is_empty() {
        let _ = writeln!(
            m,
            "\n## Skipped\n\n| block | label | txs | reason |\n|---:|---|---:|---|"
        );
        for s in &r.skipped {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                s.block,
                cell(s.label.as_deref().unwrap_or("")),
                s.txs,
                cell(&s.reason)
            );
        }
        if r.left_out.skipped > 0 {
            let _ = writeln!(m, "\n{} more counted, not listed.", r.left_out.skipped);
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(m, "\n## Warnings\n");
        for w in r.warnings.iter().take(20) {
            let _ = writeln!(m, "- {}", cell(w));
        }
        if r.left_out.warnings > 0 {
            let _ = writeln!(m, "\n{} more counted, not listed.", r.left_out.warnings);
        }
    }
}

fn side_root(s: &crate::SideStateRoot) -> String {
    match (&s.error, s.matches_header) {
        (Some(e), _) => format!("error: {}", cell(e)),
        (None, Some(true)) => "= header".into(),
        (None, Some(false)) => format!(
            "`{}` ≠ header",
            s.state_root.map(|r| r.to_string()).unwrap_or_default()
        ),
        (None, None) => s
            .state_root
            .map_or_else(|| "-".into(), |r| format!("`{r}`")),
    }
}

/// The conformance cases by folder and by fork, the skip reasons and the failed cases.
fn conformance(m: &mut String, r: &Report) {
    let Some(c) = &r.conformance else {
        return;
    };
    let t = &c.total;
    let _ = writeln!(
        m,
        "\n## Conformance\n\n{} cases: {} passed, {} failed, {} skipped.",
        t.cases, t.passed, t.failed, t.skipped
    );
    for (title, rows) in [("folder", &c.by_folder), ("fork", &c.by_fork)] {
        let _ = writeln!(
            m,
            "\n| {title} | cases | passed | failed | skipped |\n|---|---:|---:|---:|---:|"
        );
        for (k, v) in rows {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} |",
                cell(k),
                v.cases,
                v.passed,
                v.failed,
                v.skipped
            );
        }
    }
    if !c.skip_reasons.is_empty() {
        let _ = writeln!(m, "\n| skipped because | cases |\n|---|---:|");
        for (why, n) in &c.skip_reasons {
            let _ = writeln!(m, "| {} | {n} |", cell(why));
        }
    }
    if !c.failed_cases.is_empty() {
        let _ = writeln!(m, "\nFailed cases:\n");
        for id in c.failed_cases.iter().take(50) {
            let _ = writeln!(m, "- `{id}`");
        }
        if c.failed_cases.len() > 50 {
            let _ = writeln!(m, "- …{} more in `report.json`", c.failed_cases.len() - 50);
        }
    }
}

/// The per-block state-root table (blocks whose real root was computed).
fn state_roots(m: &mut String, r: &Report) {
    if r.state_roots.is_empty() {
        return;
    }
    let has_candidate = r.state_roots.iter().any(|e| e.candidate.is_some());
    let _ = writeln!(
        m,
        "\n## State roots\n\n| block | header state root | baseline |{} pre-state | accounts | slots | witness | verify ms | root ms |\n|---:|---|---|{}---|---:|---:|---:|---:|---:|",
        if has_candidate { " candidate |" } else { "" },
        if has_candidate { "---|" } else { "" }
    );
    let shown = 50;
    for e in r.state_roots.iter().take(shown) {
        let cand = match (&e.candidate, has_candidate) {
            (Some(c), _) => format!(" {} |", side_root(c)),
            (None, true) => " - |".into(),
            (None, false) => String::new(),
        };
        let pre = match e.pre_state_verified {
            Some(true) => "verified",
            Some(false) => "MISMATCH",
            None => e.source.as_str(),
        };
        let _ = writeln!(
            m,
            "| {} | `{}` | {} |{cand} {pre} | {} | {} | {} nodes, {} B | {:.2} | {:.2} |",
            e.block,
            &e.header_state_root.to_string()[..14],
            side_root(&e.baseline),
            e.accounts,
            e.slots,
            e.witness_nodes,
            e.witness_bytes,
            e.verify_ms,
            e.baseline.root_ms
        );
    }
    if r.state_roots.len() > shown {
        let _ = writeln!(
            m,
            "\n…and {} more in `report.json`.",
            r.state_roots.len() - shown
        );
    }
    if r.left_out.state_roots > 0 {
        let _ = writeln!(
            m,
            "\n{} more blocks checked, not listed.",
            r.left_out.state_roots
        );
    }
}
