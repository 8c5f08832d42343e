//! `txshadow import`.

use std::path::PathBuf;

use clap::Args;
use eyre::{Result, WrapErr, eyre};
use txshadow_import::{Format, ImportOptions, import};

/// Convert a source format into a corpus.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Source format: pevm, zeth, keth, geth-tracetest, hivechain.
    pub format: String,
    /// Source paths (directories or files).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Corpus directory to write (created or resumed).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Discard an existing corpus at --out instead of resuming it.
    #[arg(long)]
    pub overwrite: bool,
}

impl ImportArgs {
    /// Runs the import.
    pub fn run(self, _quiet: bool) -> Result<u8> {
        let format = Format::parse(&self.format).ok_or_else(|| {
            eyre!(
                "unknown format {:?}: use pevm, zeth, keth, geth-tracetest or hivechain",
                self.format
            )
        })?;
        let s = import(
            format,
            &self.inputs,
            &self.out,
            &ImportOptions {
                overwrite: self.overwrite,
            },
        )
        .wrap_err_with(|| format!("import {} into {}", format.name(), self.out.display()))?;
        println!(
            "imported {} blocks, {} txs into {} ({} already present, {} unsupported)",
            s.blocks,
            s.txs,
            self.out.display(),
            s.skipped_existing,
            s.unsupported.len()
        );
        for (what, why) in &s.unsupported {
            println!("  unsupported: {what}: {why}");
        }
        Ok(crate::EXIT_OK)
    }
}
