//! `txshadow replay`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use eyre::{Result, bail, eyre};
use txshadow_diff::{AcceptedFile, Criterion, Mode};
use txshadow_run::{
    CorpusSource, RunConfig, RunEvent, RunHooks, RunOutcome, Shard, SideSpec,
    sides::{Suite, parse_side_engine},
};

use crate::progress;

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

/// The flags of a run that `replay` and `follow` share: sides, mode, criteria, where reports go.
#[derive(Debug, Args)]
pub struct RunArgs {
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
}

impl RunArgs {
    /// Builds the run configuration (with `shard`, one shard of the blocks).
    pub fn config(&self, shard: Option<Shard>) -> Result<RunConfig> {
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
            None => SideSpec::revm(txshadow_replay::SideConfig::chain("baseline")),
        };
        let candidate = candidate_name
            .as_deref()
            .map(|v| parse_side_engine("candidate", v, suite.as_ref()))
            .transpose()?;
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
        let fail_on = crit
            .iter()
            .map(|c| Criterion::parse(c).map_err(|e| eyre!(e)))
            .collect::<Result<Vec<_>>>()?;
        let cfg = RunConfig {
            mode: match self.mode {
                ModeArg::Block => Mode::Block,
                ModeArg::Tx => Mode::Tx,
            },
            jobs: self.jobs,
            baseline,
            candidate,
            out_dir: self.out_dir.clone(),
            run_id: self.run_id.clone(),
            accepted,
            fail_on,
            shard,
        };
        cfg.check()?;
        if let Some(id) = &cfg.run_id {
            let dir = cfg.out_dir.join(id);
            if dir.join("report.json").exists() {
                bail!(
                    "{} already holds a run: choose another --run-id, or remove that directory",
                    dir.display()
                );
            }
        }
        Ok(cfg)
    }
}

/// The `txshadow_build_info` labels of this binary.
pub fn build_info() -> txshadow_report::BuildInfo {
    txshadow_report::BuildInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        revm_version: env!("TXSHADOW_REVM_VERSION").into(),
    }
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
    /// Sides, mode, criteria and reports.
    #[command(flatten)]
    pub run: RunArgs,
    /// Replay only shard I of N (`I/N`, I from 0). Blocks go to shards by gas, so shards take
    /// about the same time; `txshadow report merge` joins their run directories.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Also write the run's Prometheus metrics to this file at the end (atomically, for
    /// node_exporter's textfile collector).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Push the run's metrics to a Prometheus Pushgateway at the end (`http://host:port`,
    /// `user:password@` for basic auth; never printed), under job `txshadow` and the run id as
    /// instance.
    #[arg(
        long,
        value_name = "URL",
        hide_env_values = true,
        env = "TXSHADOW_PUSHGATEWAY"
    )]
    pub pushgateway: Option<String>,
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
        self.run.config(self.shard)
    }

    /// Runs the replay, prints a summary line and the report path.
    pub fn run(self, quiet: bool) -> Result<u8> {
        let cfg = self.config()?;
        let gateway = self
            .pushgateway
            .as_deref()
            .map(txshadow_report::Pushgateway::parse)
            .transpose()
            .map_err(|e| eyre!(e))?;
        let mut source = CorpusSource::open(&self.corpus, cfg.shard)?;
        let progress = progress::RunProgress::new(quiet);
        let events = |e: &RunEvent| match e {
            RunEvent::Started { plan, .. } => progress.start(plan.blocks, plan.txs),
            RunEvent::Block { txs, .. } => progress.block(*txs),
        };
        crate::stop_on_signals();
        let mut hooks = RunHooks {
            events: Some(&events),
            stop: Some(&crate::STOP),
            ..Default::default()
        };
        let metrics = (self.metrics_file.is_some() || gateway.is_some())
            .then(|| std::sync::Arc::new(txshadow_report::Metrics::new(build_info(), false)));
        if let Some(m) = &metrics {
            hooks.sinks.push(Box::new(txshadow_report::MetricsSink::new(
                m.clone(),
                self.metrics_file,
            )));
        }
        let out = txshadow_run::run(&mut source, &cfg, hooks);
        progress.finish();
        let out = out?;
        if out.report.run.status == txshadow_report::RunStatus::Interrupted {
            eprintln!(
                "interrupted: {} blocks replayed before the signal; the report says so",
                out.report.counts.blocks
            );
            print_outcome(&out);
            return Ok(txshadow_run::EXIT_HARNESS);
        }
        print_outcome(&out);
        if let (Some(g), Some(m)) = (&gateway, &metrics) {
            if let Err(e) = g.push(m, "txshadow", &out.report.run.id) {
                eprintln!("error: {e}");
                return Ok(txshadow_run::EXIT_HARNESS);
            }
            eprintln!(
                "metrics pushed to {} (job txshadow, instance {})",
                g.display(),
                out.report.run.id
            );
        }
        Ok(out.exit)
    }
}

/// The one-line verdict, the failed criteria and where the report is.
pub fn print_outcome(out: &RunOutcome) {
    let c = &out.report.counts;
    let t = &out.report.throughput;
    println!(
        "{}: {} blocks, {} txs: {} matched, {} differing, {} errors, {} skipped{} ({} findings, {} accepted); {:.1} Mgas/s, {:.0} tx/s",
        out.report.verdict.as_str().to_uppercase(),
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
    if c.differing_blocks > 0 || c.block_errors > 0 {
        println!(
            "  blocks: {} differing, {} failed as a whole",
            c.differing_blocks, c.block_errors
        );
    }
    for f in &out.report.failed_criteria {
        println!("  failed: {f}");
    }
    println!("report: {}", out.dir.join("summary.md").display());
}
