//! Conformance counts: for a corpus of suite cases (ethereum/tests, EEST), how many cases
//! passed, failed or were skipped, by folder and by fork, and why the skipped ones were.
//!
//! A case may span several blocks (a blockchain test), which arrive in block order among other
//! cases' blocks: a case's verdict is the worst of its blocks' so far (failed over skipped
//! over passed), and the counts follow it as it changes.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use txshadow_corpus::SuiteCase;

use crate::BlockResult;

/// Failed case ids listed in the report (the counts cover them all).
pub(crate) const LISTED_FAILURES: usize = 1000;

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseVerdict {
    /// Every block behaved as the test expects (an expected rejection included).
    Passed,
    /// A block was not checked (its reason is counted).
    Skipped,
    /// A block differs from what the test expects, or could not be replayed.
    Failed,
}

/// Cases by verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseCounts {
    /// Cases.
    pub cases: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

impl CaseCounts {
    fn add(&mut self, v: CaseVerdict, n: isize) {
        let slot = match v {
            CaseVerdict::Passed => &mut self.passed,
            CaseVerdict::Failed => &mut self.failed,
            CaseVerdict::Skipped => &mut self.skipped,
        };
        *slot = slot.saturating_add_signed(n);
        self.cases = self.cases.saturating_add_signed(n);
    }
}

/// The conformance section of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conformance {
    /// Every case.
    pub total: CaseCounts,
    /// By the fixture's folder.
    pub by_folder: BTreeMap<String, CaseCounts>,
    /// By fork (or transition network).
    pub by_fork: BTreeMap<String, CaseCounts>,
    /// Skipped cases by reason.
    pub skip_reasons: BTreeMap<String, usize>,
    /// Failed cases' ids (the first [`LISTED_FAILURES`]).
    pub failed_cases: Vec<String>,
    /// Each case's verdict so far (not written: the counts are).
    #[serde(skip)]
    seen: HashMap<String, (SuiteCase, CaseVerdict, Option<String>)>,
}

impl Conformance {
    /// Counts one block of `case` in.
    pub(crate) fn add(&mut self, case: &SuiteCase, r: &BlockResult) {
        // a tx a side cannot reproduce (a node over RPC) leaves its case unchecked
        let not_comparable = r
            .not_comparable
            .first()
            .map(|n| format!("not comparable: {}", n.reason));
        let skipped = r.skipped.clone().or(not_comparable);
        let verdict = if r.differs() || r.error.is_some() || !r.tx_errors.is_empty() {
            CaseVerdict::Failed
        } else if skipped.is_some() {
            CaseVerdict::Skipped
        } else {
            CaseVerdict::Passed
        };
        let prior = self.seen.get(&case.id).map(|(_, v, why)| (*v, why.clone()));
        let new = match prior.clone() {
            Some((old, _)) if old >= verdict => return,
            _ => verdict,
        };
        if let Some((old, why)) = prior {
            self.count(case, old, why.as_deref(), -1);
        }
        let why = skipped.filter(|_| new == CaseVerdict::Skipped);
        self.count(case, new, why.as_deref(), 1);
        self.seen.insert(case.id.clone(), (case.clone(), new, why));
    }

    /// Adds another shard's counts (its cases are not this one's).
    pub(crate) fn merge(&mut self, other: &Self) {
        let sum = |a: &mut CaseCounts, b: &CaseCounts| {
            a.cases += b.cases;
            a.passed += b.passed;
            a.failed += b.failed;
            a.skipped += b.skipped;
        };
        sum(&mut self.total, &other.total);
        for (k, v) in &other.by_folder {
            sum(self.by_folder.entry(k.clone()).or_default(), v);
        }
        for (k, v) in &other.by_fork {
            sum(self.by_fork.entry(k.clone()).or_default(), v);
        }
        for (k, v) in &other.skip_reasons {
            *self.skip_reasons.entry(k.clone()).or_default() += v;
        }
        let room = LISTED_FAILURES.saturating_sub(self.failed_cases.len());
        self.failed_cases
            .extend(other.failed_cases.iter().take(room).cloned());
        self.failed_cases.sort();
    }

    fn count(&mut self, case: &SuiteCase, v: CaseVerdict, why: Option<&str>, n: isize) {
        self.total.add(v, n);
        self.by_folder
            .entry(case.folder.clone())
            .or_default()
            .add(v, n);
        self.by_fork.entry(case.fork.clone()).or_default().add(v, n);
        if let Some(why) = why {
            let c = self.skip_reasons.entry(why.to_string()).or_default();
            *c = c.saturating_add_signed(n);
            if *c == 0 {
                self.skip_reasons.remove(why);
            }
        }
        if v == CaseVerdict::Failed && n > 0 && self.failed_cases.len() < LISTED_FAILURES {
            self.failed_cases.push(case.id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TxRow, Verdict};
    use txshadow_diff::{Finding, Kind};

    fn case(id: &str, fork: &str) -> SuiteCase {
        SuiteCase {
            id: id.into(),
            folder: id.split('/').next().unwrap().into(),
            fork: fork.into(),
        }
    }

    fn block(verdict: Verdict) -> BlockResult {
        BlockResult {
            block: 1,
            rows: vec![TxRow {
                verdict,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_case_is_its_worst_block() {
        let mut c = Conformance::default();
        let a = case("stA/x::a", "Cancun");
        let b = case("stB/y::b", "Prague");
        c.add(&a, &block(Verdict::Match));
        c.add(&b, &block(Verdict::Match));
        assert_eq!((c.total.cases, c.total.passed), (2, 2));
        // a later block of `a` differs: `a` moves from passed to failed
        let mut bad = block(Verdict::Differ);
        bad.findings.push(Finding::block(
            2,
            Default::default(),
            Kind::StateRoot,
            "state_root",
            1,
            2,
        ));
        c.add(&a, &bad);
        assert_eq!((c.total.cases, c.total.passed, c.total.failed), (2, 1, 1));
        assert_eq!(c.by_folder["stA"].failed, 1);
        assert_eq!(c.by_fork["Prague"].passed, 1);
        assert_eq!(c.failed_cases, vec!["stA/x::a".to_string()]);
        // a passing block does not bring it back
        c.add(&a, &block(Verdict::Match));
        assert_eq!(c.total.failed, 1);
        // skips are counted with their reason
        let skip = BlockResult {
            skipped: Some("no EIP-1283".into()),
            ..Default::default()
        };
        c.add(&case("stC/z::c", "Constantinople"), &skip);
        assert_eq!(c.total.skipped, 1);
        assert_eq!(c.skip_reasons["no EIP-1283"], 1);
    }
}
