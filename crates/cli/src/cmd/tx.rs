//! `txshadow tx`: one-transaction triage.

use std::{io::IsTerminal, path::PathBuf};

use clap::Args;
use eyre::Result;
use txshadow_replay::SideConfig;
use txshadow_run::{
    EXIT_DIFF, EXIT_OK,
    fixture::export,
    render_triage,
    sides::{Suite, parse_side},
    triage::{TriageOptions, triage, write_eip3155},
};

/// Replay one tx under both sides with a step tracer and show where they diverge.
///
/// Without a candidate, the baseline is compared with what the chain recorded.
#[derive(Debug, Args)]
pub struct TxArgs {
    /// Corpus directory.
    pub corpus: PathBuf,
    /// Tx hash, or BLOCK:INDEX.
    pub tx: String,
    /// Baseline configuration (suite name or items like `spec=cancun`).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Candidate configuration (suite name or items like `spec=istanbul`, `code.0xADDR=FILE`).
    #[arg(long)]
    pub candidate: Option<String>,
    /// Suite file with named configurations.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print a unified diff of both traces around the divergence.
    #[arg(long)]
    pub diff: bool,
    /// Machine-readable output (versioned JSON) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Steps of context around the divergence.
    #[arg(long, default_value_t = 5)]
    pub context: usize,
    /// Step cap per side (protects memory on huge txs; 0 = none).
    #[arg(long, default_value_t = 20_000_000)]
    pub max_steps: usize,
    /// Write the tx as a state-test fixture (ethereum/tests format) built from the baseline.
    #[arg(long)]
    pub export_fixture: Option<PathBuf>,
    /// Write full EIP-3155 traces (one JSON line per step) of both sides into this directory.
    #[arg(long)]
    pub trace_dir: Option<PathBuf>,
}

impl TxArgs {
    fn sides(&self) -> Result<(SideConfig, Option<SideConfig>)> {
        let suite = self.config.as_ref().map(|p| Suite::load(p)).transpose()?;
        let baseline = match &self.baseline {
            Some(v) => parse_side("baseline", v, suite.as_ref())?,
            None => SideConfig::chain("baseline"),
        };
        let candidate = self
            .candidate
            .as_deref()
            .map(|v| parse_side("candidate", v, suite.as_ref()))
            .transpose()?;
        Ok((baseline, candidate))
    }

    /// Runs the triage.
    pub fn run(self) -> Result<u8> {
        let (baseline, candidate) = self.sides()?;
        let opts = TriageOptions {
            context: self.context,
            max_steps: self.max_steps,
            diff: self.diff,
        };
        let (t, block) = triage(&self.corpus, &self.tx, &baseline, candidate.as_ref(), &opts)?;
        if let Some(path) = &self.export_fixture {
            for w in export(&block, &t, &baseline, path)? {
                eprintln!("warning: {w}");
            }
            eprintln!("wrote state-test fixture {}", path.display());
        }
        if let Some(dir) = &self.trace_dir {
            write_eip3155(&block, &t, &baseline, candidate.as_ref(), dir)?;
            eprintln!("wrote EIP-3155 traces to {}", dir.display());
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&t)?);
        } else {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print!("{}", render_triage(&t, color));
        }
        let errored = t.outcomes.0.result.is_err()
            || t.outcomes.1.as_ref().is_some_and(|o| o.result.is_err());
        Ok(if t.findings.is_empty() && !errored {
            EXIT_OK
        } else {
            EXIT_DIFF
        })
    }
}
