//! Launch criteria: what makes a run fail (exit 1).
//!
//! ```
//! use txshadow_diff::{Criterion, Totals, evaluate};
//! let crit = [Criterion::parse("gas-tx>5%").unwrap()];
//! assert!(evaluate(&crit, &[], &Totals::default()).is_empty());
//! assert!(Criterion::parse("gas-tx>5").is_err()); // a percentage needs its `%`
//! ```

use crate::{Finding, Kind};

/// A launch criterion (`--fail-on`).
#[derive(Debug, Clone, PartialEq)]
pub enum Criterion {
    /// Any unaccepted finding or error.
    Any,
    /// Any unaccepted finding of this kind.
    Kind(Kind),
    /// A tx's gas increased by more than this percentage.
    GasTx(f64),
    /// Total gas increased by more than this percentage.
    GasTotal(f64),
    /// More than this percentage of the txs were not comparable (a node engine could not be
    /// given what they need); `not-comparable` alone fails on any.
    NotComparable(f64),
}

impl std::fmt::Display for Criterion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::Kind(k) => f.write_str(k.as_str()),
            Self::GasTx(p) => write!(f, "gas-tx>{p}%"),
            Self::GasTotal(p) => write!(f, "gas-total>{p}%"),
            Self::NotComparable(p) if *p == 0.0 => f.write_str("not-comparable"),
            Self::NotComparable(p) => write!(f, "not-comparable>{p}%"),
        }
    }
}

/// The syntax, for messages.
pub const CRITERIA_SYNTAX: &str = "any, status, logs, state, output, error, gas, gas-tx>N%, \
                                   gas-total>M%, not-comparable, not-comparable>N%";

fn percentage(criterion: &str, v: &str) -> Result<f64, String> {
    let Some(n) = v.strip_suffix('%') else {
        return Err(format!(
            "--fail-on {criterion}: {v:?} is not a percentage (write it with %, e.g. 5%)"
        ));
    };
    match n.trim().parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        Ok(_) => Err(format!(
            "--fail-on {criterion}: {v} is out of range (a percentage of 0% or more)"
        )),
        Err(_) => Err(format!("--fail-on {criterion}: {v:?} is not a percentage")),
    }
}

impl Criterion {
    /// Parses one `--fail-on` value.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "any" => Self::Any,
            "not-comparable" => Self::NotComparable(0.0),
            _ => {
                if let Some(v) = s.strip_prefix("gas-tx>") {
                    Self::GasTx(percentage(s, v)?)
                } else if let Some(v) = s.strip_prefix("gas-total>") {
                    Self::GasTotal(percentage(s, v)?)
                } else if let Some(v) = s.strip_prefix("not-comparable>") {
                    Self::NotComparable(percentage(s, v)?)
                } else if let Some(k) = Kind::parse(s) {
                    Self::Kind(k)
                } else {
                    return Err(format!("unknown --fail-on {s:?} ({CRITERIA_SYNTAX})"));
                }
            }
        })
    }
}

/// What the criteria look at beside the findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Txs replayed.
    pub txs: usize,
    /// Txs in error.
    pub errors: usize,
    /// Blocks that failed as a whole.
    pub block_errors: usize,
    /// Txs not comparable.
    pub not_comparable: usize,
    /// Gas of the reference side.
    pub gas_expected: u64,
    /// Gas of the replayed side.
    pub gas_got: u64,
}

/// The criteria a run fails, as readable lines (empty: the run passes).
pub fn evaluate(criteria: &[Criterion], findings: &[Finding], t: &Totals) -> Vec<String> {
    let mut tally = CriteriaTally::new(criteria);
    for f in findings {
        tally.add(f);
    }
    tally.failed(t)
}

/// What the criteria count of the findings, tallied one finding at a time, so a run of any
/// length is judged on every finding without keeping them all.
#[derive(Debug, Clone)]
pub struct CriteriaTally {
    criteria: Vec<Criterion>,
    /// Unaccepted findings.
    open: usize,
    /// Per criterion: the unaccepted findings it counts (of its kind; a gas change over its
    /// limit).
    hits: Vec<usize>,
}

impl CriteriaTally {
    /// A tally for these criteria, nothing counted yet.
    pub fn new(criteria: &[Criterion]) -> Self {
        Self {
            criteria: criteria.to_vec(),
            open: 0,
            hits: vec![0; criteria.len()],
        }
    }

    /// Counts one finding in (accepted ones count for nothing).
    pub fn add(&mut self, f: &Finding) {
        if f.accepted.is_some() {
            return;
        }
        self.open += 1;
        for (c, n) in self.criteria.iter().zip(&mut self.hits) {
            let hit = match c {
                Criterion::Kind(k) => f.kind == *k,
                Criterion::GasTx(p) => {
                    f.kind == Kind::Gas
                        && f.gas_pair().is_some_and(|(g, e)| {
                            e > 0 && (g as f64 - e as f64) / e as f64 * 100.0 > *p
                        })
                }
                _ => false,
            };
            *n += usize::from(hit);
        }
    }

    /// Counts in `n` unaccepted findings of `kind` known only by their count (a report that
    /// left them out of its list): they count for `any` and their kind, not for `gas-tx`.
    pub fn add_counted(&mut self, kind: Kind, n: usize) {
        self.open += n;
        for (c, hits) in self.criteria.iter().zip(&mut self.hits) {
            if *c == Criterion::Kind(kind) {
                *hits += n;
            }
        }
    }

    /// The criteria failed so far, as readable lines (empty: the run passes).
    pub fn failed(&self, t: &Totals) -> Vec<String> {
        let mut failed = vec![];
        for (c, n) in self.criteria.iter().zip(&self.hits) {
            let n = *n;
            match c {
                Criterion::Any => {
                    let errors = t.errors + t.block_errors;
                    if self.open > 0 || errors > 0 {
                        failed.push(format!(
                            "any: {} unaccepted finding(s), {errors} error(s)",
                            self.open,
                        ));
                    }
                }
                Criterion::Kind(k) => {
                    if n > 0 {
                        failed.push(format!("{}: {n} finding(s)", k.as_str()));
                    }
                }
                Criterion::GasTx(p) => {
                    if n > 0 {
                        failed.push(format!("gas-tx>{p}%: {n} tx(s) over the limit"));
                    }
                }
                Criterion::NotComparable(p) => not_comparable(&mut failed, *p, t),
                Criterion::GasTotal(p) => {
                    let (g, e) = (t.gas_got as f64, t.gas_expected as f64);
                    if e > 0.0 && (g - e) / e * 100.0 > *p {
                        failed.push(format!(
                            "gas-total>{p}%: total gas up {:.3}%",
                            (g - e) / e * 100.0
                        ));
                    }
                }
            }
        }
        failed
    }
}

fn not_comparable(failed: &mut Vec<String>, p: f64, t: &Totals) {
    let (n, all) = (t.not_comparable, t.txs);
    let share = if all == 0 {
        0.0
    } else {
        n as f64 / all as f64 * 100.0
    };
    if n > 0 && share > p {
        let limit = if p > 0.0 {
            format!(">{p}%")
        } else {
            String::new()
        };
        failed.push(format!(
            "not-comparable{limit}: {n} of {all} tx(s) not comparable ({share:.1}%)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_comparable_txs_fail_a_run_only_when_asked() {
        let mut t = Totals {
            txs: 200,
            not_comparable: 10,
            ..Default::default()
        };
        let crit = |s: &[&str]| -> Vec<Criterion> {
            s.iter().map(|c| Criterion::parse(c).unwrap()).collect()
        };
        assert!(evaluate(&crit(&["any"]), &[], &t).is_empty());
        assert_eq!(
            evaluate(&crit(&["not-comparable"]), &[], &t),
            ["not-comparable: 10 of 200 tx(s) not comparable (5.0%)"]
        );
        assert!(evaluate(&crit(&["not-comparable>5%"]), &[], &t).is_empty());
        assert_eq!(evaluate(&crit(&["not-comparable>4.5%"]), &[], &t).len(), 1);
        t.not_comparable = 0;
        assert!(evaluate(&crit(&["not-comparable"]), &[], &t).is_empty());
        assert!(Criterion::parse("not-comparable>x").is_err());
    }

    #[test]
    fn a_percentage_needs_its_sign_and_a_range() {
        for bad in [
            "gas-tx>5",
            "gas-tx>-5%",
            "gas-total>x%",
            "gas-tx>inf%",
            "gas-tx>NaN%",
        ] {
            let e = Criterion::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert_eq!(Criterion::parse("gas-tx>5%"), Ok(Criterion::GasTx(5.0)));
        assert_eq!(
            Criterion::parse("gas-total>0.5%"),
            Ok(Criterion::GasTotal(0.5))
        );
        assert!(Criterion::parse("gaz").unwrap_err().contains("gas-tx>N%"));
        for s in [
            "any",
            "gas",
            "gas-tx>5%",
            "gas-total>0.5%",
            "not-comparable",
            "not-comparable>2%",
        ] {
            assert_eq!(Criterion::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn a_tally_counts_findings_known_by_their_count() {
        let crit = [
            Criterion::Any,
            Criterion::Kind(Kind::Status),
            Criterion::GasTx(5.0),
        ];
        let mut t = CriteriaTally::new(&crit);
        t.add(&Finding::block(
            1,
            Default::default(),
            Kind::Gas,
            "gas",
            110,
            100,
        ));
        t.add_counted(Kind::Status, 3);
        assert_eq!(
            t.failed(&Totals::default()),
            [
                "any: 4 unaccepted finding(s), 0 error(s)",
                "status: 3 finding(s)",
                "gas-tx>5%: 1 tx(s) over the limit"
            ]
        );
    }

    #[test]
    fn a_block_error_fails_any() {
        let t = Totals {
            block_errors: 1,
            ..Default::default()
        };
        assert_eq!(
            evaluate(&[Criterion::Any], &[], &t),
            ["any: 0 unaccepted finding(s), 1 error(s)"]
        );
    }
}
