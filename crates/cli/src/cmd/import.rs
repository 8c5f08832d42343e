//! `txshadow import`.

use std::path::PathBuf;

use clap::Args;
use eyre::{Result, WrapErr, eyre};
use txshadow_import::{Format, ImportOptions, import};

/// Convert a source format into a corpus.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Source format: pevm, zeth, keth, geth-tracetest, hivechain, blockchain-tests (ethereum/tests
    /// and EEST blockchain_test fixtures) or state-tests (GeneralStateTests and EEST state_test
    /// fixtures). The suites are read recursively from the directories given.
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
    /// Do not seal the receipts. By default each imported block is replayed once under the
    /// chain's rules and, where the replay matches the chain, its receipts are written into the
    /// block and held to the header (`txshadow corpus seal`): later replays then check receipts
    /// field by field instead of computing the receipts trie.
    #[arg(long)]
    pub no_seal: bool,
}

impl ImportArgs {
    /// Runs the import.
    pub fn run(self, _quiet: bool) -> Result<u8> {
        let format = Format::parse(&self.format).ok_or_else(|| {
            eyre!(
                "unknown format {:?}: use pevm, zeth, keth, geth-tracetest, hivechain, \
                 blockchain-tests or state-tests",
                self.format
            )
        })?;
        let existed = self.out.exists();
        let res = import(
            format,
            &self.inputs,
            &self.out,
            &ImportOptions {
                overwrite: self.overwrite,
            },
        );
        if res.is_err() && !existed {
            // nothing imported: leave no empty corpus behind (a corpus with blocks is kept)
            let empty = txshadow_corpus::Corpus::open(&self.out)
                .map_or(true, |c| c.manifest().blocks.is_empty());
            if empty {
                let _ = std::fs::remove_dir_all(&self.out);
            }
        }
        let s =
            res.wrap_err_with(|| format!("import {} into {}", format.name(), self.out.display()))?;
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
        for (path, why) in &s.failed {
            eprintln!("failed: {}: {why}", path.display());
        }
        if !self.no_seal && s.blocks > 0 {
            let sealed = txshadow_run::seal_corpus(
                &self.out,
                txshadow_run::SealOptions {
                    write: true,
                    replay_all: false,
                },
            )
            .wrap_err_with(|| format!("seal the receipts of {}", self.out.display()))?;
            println!("{}", super::corpus::seal_line(&sealed));
        }
        if !s.failed.is_empty() {
            eprintln!(
                "{} input(s) failed and were left out; the corpus holds the others: mend or \
                 remove them and run the same command again to add them",
                s.failed.len()
            );
            return Ok(crate::EXIT_HARNESS);
        }
        Ok(crate::EXIT_OK)
    }
}
