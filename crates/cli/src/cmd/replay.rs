//! `txshadow replay`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use eyre::{Result, bail, eyre};
use txshadow_diff::{AcceptedFile, Kind, Mode};
use txshadow_report::Report;

use crate::{
    progress,
    runner::{self, Progress, RunConfig},
    sides::{Side, Suite, parse_side_engine},
};

/// The corpus `txshadow replay` uses when none is given.
pub const DEFAULT_CORPUS: &str = "corpora/mainnet";

/// Replay mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Whole blocks, txs in order on the block pre-state, with system calls and rewards.
    Block,
    /// Each tx on its own pre-state; pinpoints which tx a change hits.
    Tx,
}

/// Replay a corpus under a baseline (and a candidate) and report differences.
///
/// With no candidate, the baseline is compared with what the chain recorded (receipts, header
/// roots, gas, post-state). With a candidate, the candidate is compared with the baseline.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Corpus directory.
    #[arg(default_value = DEFAULT_CORPUS)]
    pub corpus: PathBuf,
    /// Replay mode.
    #[arg(long, value_enum, default_value = "block")]
    pub mode: ModeArg,
    /// Worker threads (default: all cores).
    #[arg(short = 'j', long, default_value_t = 0)]
    pub jobs: usize,
    /// Baseline configuration: a name from --config, or items like `spec=cancun`.
    #[arg(long)]
    pub baseline: Option<String>,
    /// Candidate configuration: a name from --config, or items like `spec=istanbul`,
    /// `code.0xADDR=artifact.json`, `storage.0xADDR.0xSLOT=0xV`, `balance.0xADDR=WEI`, or
    /// `node=URL` to run the txs on a node over JSON-RPC (tx mode).
    #[arg(long)]
    pub candidate: Option<String>,
    /// Suite file (TOML) with named configurations, accepted differences and criteria.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Accepted-differences file (TOML, versioned).
    #[arg(long)]
    pub accepted: Option<PathBuf>,
    /// Launch criteria, repeatable: `any` (default), `status`, `logs`, `state`, `output`,
    /// `error`, `gas` (any gas change), `gas-tx>N%` (a tx's gas up by more than N%),
    /// `gas-total>M%` (total gas up by more than M%), `not-comparable` / `not-comparable>N%`
    /// (txs a node engine could not reproduce, any or more than N% of them).
    #[arg(long = "fail-on")]
    pub fail_on: Vec<String>,
    /// Directory for run reports.
    #[arg(long, default_value = "reports")]
    pub out_dir: PathBuf,
    /// Run id (directory name under --out-dir; default: time-based).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Replay only shard I of N (`I/N`, I from 0), by block position.
    #[arg(long)]
    pub shard: Option<String>,
}

/// A launch criterion.
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

impl Criterion {
    /// Parses `--fail-on`.
    pub fn parse(s: &str) -> Result<Self> {
        let pct = |v: &str| -> Result<f64> {
            v.trim_end_matches('%')
                .parse::<f64>()
                .map_err(|_| eyre!("--fail-on {s}: {v} is not a percentage"))
        };
        Ok(match s {
            "any" => Self::Any,
            "status" => Self::Kind(Kind::Status),
            "logs" => Self::Kind(Kind::Logs),
            "state" => Self::Kind(Kind::State),
            "output" => Self::Kind(Kind::Output),
            "error" => Self::Kind(Kind::Error),
            "gas" => Self::Kind(Kind::Gas),
            "not-comparable" => Self::NotComparable(0.0),
            _ => {
                if let Some(v) = s.strip_prefix("gas-tx>") {
                    Self::GasTx(pct(v)?)
                } else if let Some(v) = s.strip_prefix("gas-total>") {
                    Self::GasTotal(pct(v)?)
                } else if let Some(v) = s.strip_prefix("not-comparable>") {
                    Self::NotComparable(pct(v)?)
                } else if let Some(k) = Kind::parse(s) {
                    Self::Kind(k)
                } else {
                    bail!(
                        "unknown --fail-on {s:?} (any, status, logs, state, output, error, gas, gas-tx>N%, \
                         gas-total>M%, not-comparable, not-comparable>N%)"
                    )
                }
            }
        })
    }
}

/// The criteria a report fails, as readable lines.
pub fn evaluate(criteria: &[Criterion], r: &Report) -> Vec<String> {
    let open: Vec<_> = r.findings.iter().filter(|f| f.accepted.is_none()).collect();
    let mut failed = vec![];
    for c in criteria {
        match c {
            Criterion::Any => {
                if !open.is_empty() || r.counts.errors > 0 {
                    failed.push(format!(
                        "any: {} unaccepted finding(s), {} error(s)",
                        open.len(),
                        r.counts.errors
                    ));
                }
            }
            Criterion::Kind(k) => {
                let n = open.iter().filter(|f| f.kind == *k).count();
                if n > 0 {
                    failed.push(format!("{}: {n} finding(s)", k.as_str()));
                }
            }
            Criterion::GasTx(p) => {
                let n = open
                    .iter()
                    .filter(|f| f.kind == Kind::Gas)
                    .filter_map(|f| f.gas_pair())
                    .filter(|(g, e)| *e > 0 && (*g as f64 - *e as f64) / *e as f64 * 100.0 > *p)
                    .count();
                if n > 0 {
                    failed.push(format!("gas-tx>{p}%: {n} tx(s) over the limit"));
                }
            }
            Criterion::NotComparable(p) => {
                let (n, all) = (r.counts.not_comparable, r.counts.txs);
                let share = if all == 0 {
                    0.0
                } else {
                    n as f64 / all as f64 * 100.0
                };
                if n > 0 && share > *p {
                    failed.push(format!(
                        "not-comparable{}: {n} of {all} tx(s) not comparable ({share:.1}%)",
                        if *p > 0.0 {
                            format!(">{p}%")
                        } else {
                            String::new()
                        }
                    ));
                }
            }
            Criterion::GasTotal(p) => {
                let (g, e) = (r.counts.gas_got as f64, r.counts.gas_expected as f64);
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

fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| eyre!("--shard {s}: expected I/N"))?;
    let (i, n): (usize, usize) = (i.parse()?, n.parse()?);
    if n == 0 || i >= n {
        bail!("--shard {s}: need 0 <= I < N");
    }
    Ok((i, n))
}

impl ReplayArgs {
    /// Builds the run configuration.
    pub fn config(&self) -> Result<RunConfig> {
        if !self.corpus.join("manifest.json").exists() {
            if self.corpus.as_os_str() == DEFAULT_CORPUS {
                bail!(
                    "no corpus at {DEFAULT_CORPUS}: run txshadow from the repository root, or pass a corpus directory"
                );
            }
            bail!(
                "{}: not a txshadow corpus (no manifest.json)",
                self.corpus.display()
            );
        }
        let suite = self.config.as_ref().map(|p| Suite::load(p)).transpose()?;
        let baseline_name = self
            .baseline
            .clone()
            .or_else(|| suite.as_ref().and_then(|s| s.0.baseline.clone()));
        let candidate_name = self
            .candidate
            .clone()
            .or_else(|| suite.as_ref().and_then(|s| s.0.candidate.clone()));
        let baseline = match &baseline_name {
            Some(v) => parse_side_engine("baseline", v, suite.as_ref())?,
            None => Side {
                config: txshadow_replay::SideConfig::chain("baseline"),
                node: None,
            },
        };
        let candidate = candidate_name
            .as_deref()
            .map(|v| parse_side_engine("candidate", v, suite.as_ref()))
            .transpose()?;
        if self.mode == ModeArg::Block
            && (baseline.node.is_some() || candidate.as_ref().is_some_and(|c| c.node.is_some()))
        {
            bail!(
                "the node engine runs in tx mode only (each tx on its own pre-state through \
                 state overrides): use --mode tx"
            );
        }
        let accepted_path = self.accepted.clone().or_else(|| {
            suite
                .as_ref()
                .and_then(|(s, base)| s.accepted.as_ref().map(|p| base.join(p)))
        });
        let accepted = accepted_path
            .map(|p| AcceptedFile::load(&p).map_err(|e| eyre!(e)))
            .transpose()?;
        let mut crit: Vec<String> = self.fail_on.clone();
        if crit.is_empty() {
            crit = suite
                .as_ref()
                .map(|s| s.0.fail_on.clone())
                .unwrap_or_default();
        }
        let mut fail_on = crit
            .iter()
            .map(|c| Criterion::parse(c))
            .collect::<Result<Vec<_>>>()?;
        if fail_on.is_empty() {
            fail_on.push(Criterion::Any);
        }
        Ok(RunConfig {
            corpus: self.corpus.clone(),
            mode: match self.mode {
                ModeArg::Block => Mode::Block,
                ModeArg::Tx => Mode::Tx,
            },
            jobs: self.jobs,
            baseline_node: baseline.node,
            baseline: baseline.config,
            candidate_node: candidate.as_ref().and_then(|c| c.node.clone()),
            candidate: candidate.map(|c| c.config),
            out_dir: self.out_dir.clone(),
            run_id: self.run_id.clone(),
            accepted,
            fail_on,
            shard: self.shard.as_deref().map(parse_shard).transpose()?,
        })
    }

    /// Runs the replay, prints a summary line and the report path.
    pub fn run(self, quiet: bool) -> Result<u8> {
        let cfg = self.config()?;
        let bar = progress::bar(0, "txs", quiet);
        let out = runner::run(&cfg, &|p| match p {
            Progress::Start { txs, .. } => bar.set_length(txs as u64),
            Progress::Block { txs, .. } => bar.inc(txs as u64),
        })?;
        bar.finish_and_clear();
        let c = &out.report.counts;
        let t = &out.report.throughput;
        println!(
            "{}: {} blocks, {} txs: {} matched, {} differing, {} errors, {} skipped{} ({} findings, {} accepted); {:.1} Mgas/s, {:.0} tx/s",
            out.report.verdict.to_uppercase(),
            c.blocks,
            c.txs,
            c.matched,
            c.differing,
            c.errors,
            c.skipped,
            if c.not_comparable > 0 {
                format!(", {} not comparable", c.not_comparable)
            } else {
                String::new()
            },
            c.findings,
            c.accepted,
            t.mgas_per_s,
            t.tx_per_s
        );
        for f in &out.report.failed_criteria {
            println!("  failed: {f}");
        }
        println!("report: {}", out.dir.join("summary.md").display());
        Ok(out.exit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_comparable_txs_fail_a_run_only_when_asked() {
        let mut r = Report::default();
        r.counts.txs = 200;
        r.counts.matched = 190;
        r.counts.not_comparable = 10;
        let crit = |s: &[&str]| -> Vec<Criterion> {
            s.iter().map(|c| Criterion::parse(c).unwrap()).collect()
        };
        assert!(evaluate(&crit(&["any"]), &r).is_empty());
        assert_eq!(
            evaluate(&crit(&["not-comparable"]), &r),
            ["not-comparable: 10 of 200 tx(s) not comparable (5.0%)"]
        );
        assert!(evaluate(&crit(&["not-comparable>5%"]), &r).is_empty());
        assert_eq!(evaluate(&crit(&["not-comparable>4.5%"]), &r).len(), 1);
        r.counts.not_comparable = 0;
        assert!(evaluate(&crit(&["not-comparable"]), &r).is_empty());
        assert!(Criterion::parse("not-comparable>x").is_err());
    }
}
