//! `txshadow report merge`.

use std::path::PathBuf;

use clap::Subcommand;
use eyre::Result;
use txshadow_report::{RunVerdict, merge};
use txshadow_run::{EXIT_DIFF, EXIT_OK};

/// Work on run directories.
#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Merge the run directories of a sharded run (`replay --shard I/N`) into one, as if the run
    /// had not been sharded. Exit 2 when shards overlap or are missing, come from different
    /// corpora, configurations or criteria, or have other schema versions; else 0 or 1 by the
    /// launch criteria, as `replay`.
    Merge {
        /// The shards' run directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged run directory.
        #[arg(long)]
        out: PathBuf,
    },
}

impl ReportCmd {
    /// Runs the command.
    pub fn run(self) -> Result<u8> {
        match self {
            Self::Merge { dirs, out } => {
                let r = merge(&dirs, &out)?;
                let c = &r.counts;
                println!(
                    "{}: {} shards, {} blocks, {} txs: {} matched, {} differing, {} errors, {} skipped ({} findings, {} accepted)",
                    r.verdict.as_str().to_uppercase(),
                    dirs.len(),
                    c.blocks,
                    c.txs,
                    c.matched,
                    c.differing,
                    c.errors,
                    c.skipped,
                    c.findings,
                    c.accepted
                );
                for f in &r.failed_criteria {
                    println!("  failed: {f}");
                }
                println!("report: {}", out.join("summary.md").display());
                Ok(if r.verdict == RunVerdict::Pass {
                    EXIT_OK
                } else {
                    EXIT_DIFF
                })
            }
        }
    }
}
