//! `txshadow corpus stats|verify|pack|seal|show`.

use std::path::PathBuf;

use clap::Subcommand;
use eyre::Result;
use txshadow_corpus::{Corpus, CorpusStats, CorpusWriter};
use txshadow_run::EXIT_OK;

/// Corpus inspection.
#[derive(Debug, Subcommand)]
pub enum CorpusCmd {
    /// Blocks, txs, gas, forks, codes and provenance of a corpus.
    Stats {
        /// Corpus directory.
        dir: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Check every file: checksums, header and tx hashes, senders, codes. Exit 2 on damage.
    Verify {
        /// Corpus directory.
        dir: PathBuf,
    },
    /// Move loose code files into a pack (one file for many codes, read faster). Import and
    /// capture pack what they write; this is for corpora written by older versions or by a
    /// capture that was stopped.
    Pack {
        /// Corpus directory.
        dir: PathBuf,
    },
    /// Seal the blocks' receipts: recorded receipts are held to each header's receipts root
    /// and logs bloom; a block without recorded receipts is replayed under the chain's rules
    /// and, where the replay matches the chain in every check, its receipts are written and
    /// held to the header. A replay then checks receipts field by field against sealed ones
    /// instead of computing the receipts trie (it still computes it for receipts that differ).
    /// Import seals what it writes; blocks that do not match are listed and left unsealed.
    Seal {
        /// Corpus directory.
        dir: PathBuf,
        /// Do the work and report, without writing.
        #[arg(long)]
        dry_run: bool,
    },
}

impl CorpusCmd {
    /// Runs the command.
    pub fn run(self) -> Result<u8> {
        match self {
            Self::Stats { dir, json } => {
                let s = Corpus::open(&dir)?.stats()?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&s)?);
                } else {
                    print_stats(&s);
                }
                Ok(EXIT_OK)
            }
            Self::Verify { dir } => {
                let c = Corpus::open(&dir)?;
                let s = c.verify()?;
                println!(
                    "ok: {} blocks, {} txs, {} codes verified in {}",
                    s.blocks,
                    s.txs,
                    s.codes,
                    dir.display()
                );
                Ok(EXIT_OK)
            }
            Self::Pack { dir } => {
                let c = Corpus::open(&dir)?;
                let m = c.manifest();
                let mut w =
                    CorpusWriter::create(&dir, m.chain.clone(), m.provenance.clone(), false)?;
                let n = w.pack_loose_codes()?;
                w.finish()?;
                println!("packed {n} loose codes in {}", dir.display());
                Ok(EXIT_OK)
            }
            Self::Seal { dir, dry_run } => {
                let s = txshadow_run::seal_corpus(&dir, !dry_run)?;
                println!("{}", seal_line(&s));
                for (n, why) in &s.unsealed {
                    println!("  block {n} not sealed: {why}");
                }
                Ok(EXIT_OK)
            }
        }
    }
}

/// One line saying what sealing did.
pub(crate) fn seal_line(s: &txshadow_run::Sealed) -> String {
    format!(
        "receipts {}: {} blocks held to their headers ({} recorded, {} from a verified replay), \
         {} already sealed, {} left unsealed (checked by the receipts trie)",
        if s.written {
            "sealed"
        } else {
            "checked (dry run)"
        },
        s.recorded + s.replayed,
        s.recorded,
        s.replayed,
        s.already,
        s.unsealed.len()
    )
}

fn print_stats(s: &CorpusStats) {
    let p = &s.provenance;
    println!("corpus      {}", s.dir);
    println!("format      v{}", s.format_version);
    println!("chain       {} (id {})", s.chain, s.chain_id);
    println!(
        "blocks      {} ({}..={})",
        s.blocks, s.first_block, s.last_block
    );
    println!("txs         {}  types {:?}", s.txs, s.tx_types);
    println!("gas         {}", s.gas);
    println!(
        "pre-state   {} accounts, {} slots",
        s.pre_state_accounts, s.pre_state_slots
    );
    println!("codes       {} ({} bytes)", s.codes, s.code_bytes);
    if s.witness_blocks > 0 {
        println!(
            "witness     {} blocks, {} trie nodes ({} bytes): exact state roots",
            s.witness_blocks, s.witness_nodes, s.witness_bytes
        );
    }
    if s.unsupported_blocks > 0 {
        println!(
            "unsupported {} blocks (replay lists them as skipped)",
            s.unsupported_blocks
        );
    }
    println!("source      {}", p.source);
    if let Some(v) = &p.client_version {
        println!("client      {v}");
    }
    if let Some(r) = &p.rpc {
        println!("rpc         {r}");
    }
    println!("created     {} by txshadow {}", p.created, p.tool_version);
}
