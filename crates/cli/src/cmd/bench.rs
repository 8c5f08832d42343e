//! `txshadow bench`.

use std::path::PathBuf;

use clap::Args;
use eyre::Result;

use txshadow_run::bench::{self, BenchConfig};

/// Measure replay speed against raw revm on the same txs: Mgas/s and tx/s per mode, overhead,
/// scaling with -j, corpus load share, baseline + candidate cost.
///
/// Prints a Markdown table (or the JSON with --json) and writes `bench.json` and `bench.md`
/// under `--out-dir/<run-id>/`, beside the reports of the replay runs it timed.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Corpus directory.
    #[arg(default_value = crate::cmd::replay::DEFAULT_CORPUS)]
    pub corpus: PathBuf,
    /// Largest thread count; scaling is measured from 1 up to it (default: all cores).
    #[arg(short = 'j', long, default_value_t = 0)]
    pub jobs: usize,
    /// Repetitions of every measurement (best counts; the range is reported).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Directory for the bench's run directory.
    #[arg(long, default_value = "reports")]
    pub out_dir: PathBuf,
    /// Run id (default: time-based).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Print the JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Compare with `revme statetest` on the same txs exported as fixtures: the revme binary
    /// (default: `revme` on the PATH or in ~/.cargo/bin, if installed).
    #[arg(long)]
    pub revme: Option<PathBuf>,
    /// Skip the revme comparison.
    #[arg(long)]
    pub no_revme: bool,
    /// Txs to export as fixtures for the revme comparison.
    #[arg(long, default_value_t = 300)]
    pub fixtures: usize,
}

impl BenchArgs {
    /// Runs the bench and prints the result.
    pub fn run(self, quiet: bool) -> Result<u8> {
        if !self.corpus.join("manifest.json").exists() {
            eyre::bail!(
                "{}: not a txshadow corpus (no manifest.json)",
                self.corpus.display()
            );
        }
        let cfg = BenchConfig {
            corpus: self.corpus,
            jobs: self.jobs,
            reps: self.reps,
            out_dir: self.out_dir,
            run_id: self.run_id,
            revme: if self.no_revme {
                None
            } else {
                self.revme.or_else(bench::revme::find_revme)
            },
            fixtures: self.fixtures,
        };
        let (report, dir) = bench::run(&cfg, &|line| {
            if !quiet {
                eprintln!("{line}");
            }
        })?;
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("bench report serialises")
            );
        } else {
            print!("{}", bench::render_markdown(&report));
            println!("\nreport: {}", dir.join("bench.md").display());
        }
        Ok(crate::EXIT_OK)
    }
}
