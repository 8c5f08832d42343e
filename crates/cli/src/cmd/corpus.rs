//! `txshadow corpus stats|verify|pack|seal|show`.

use std::path::PathBuf;

use clap::Subcommand;
use eyre::Result;
use txshadow_corpus::{Corpus, CorpusStats};
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
    /// Move loose code files into a pack (one file for many codes, read faster) and rewrite
    /// JSON block files, and binary ones of an older encoding version, in the current binary
    /// block encoding (decoded faster). Import and capture write both so; this is for corpora
    /// written by older versions or by a capture that was stopped. With `--codes`, every
    /// packed code is also written again into one pack stored that way.
    Pack {
        /// Corpus directory.
        dir: PathBuf,
        /// How to store the codes: `mapped` (as they are, read in place by a replay: the
        /// default of import and capture) or `compressed` (LZ4, about half the bytes on disk;
        /// each code a run uses is decompressed once, which adds to the run's load).
        #[arg(long)]
        codes: Option<txshadow_corpus::CodeStorage>,
    },
    /// Print one block as JSON (number, hash or hash prefix, or file name; a corpus holding
    /// several blocks of that number, e.g. fixtures, needs the hash or the file name).
    Show {
        /// Corpus directory.
        dir: PathBuf,
        /// The block: number, `0x` hash (or a prefix of one), or file name.
        block: String,
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
            Self::Pack { dir, codes } => {
                let p = txshadow_corpus::pack_corpus(&dir, codes)?;
                println!(
                    "packed {} loose codes and rewrote {} JSON block files and {} binary block \
                     files of an older encoding in the binary encoding {} in {}",
                    p.codes,
                    p.json_blocks,
                    p.older_blocks,
                    txshadow_corpus::binary::BLOCK_ENCODING_VERSION,
                    dir.display()
                );
                if codes.is_some() {
                    println!("wrote {} packed codes again into one pack", p.repacked);
                }
                println!("code packs: {}", p.packs);
                Ok(EXIT_OK)
            }
            Self::Show { dir, block } => {
                let c = Corpus::open(&dir)?;
                let e = find_entry(&c, &block)?;
                let b = c.load_block(e)?;
                let mut text = serde_json::to_string_pretty(&b)?;
                text.push('\n');
                let mut out = std::io::stdout().lock();
                match std::io::Write::write_all(&mut out, text.as_bytes()) {
                    // a closed pipe (`| head`) is not an error
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                    _ => Ok(EXIT_OK),
                }
            }
            Self::Seal { dir, dry_run } => {
                let s = txshadow_run::seal_corpus(
                    &dir,
                    txshadow_run::SealOptions {
                        write: !dry_run,
                        replay_all: false,
                    },
                )?;
                println!("{}", seal_line(&s));
                for (n, why) in &s.unsealed {
                    println!("  block {n} not sealed: {why}");
                }
                Ok(EXIT_OK)
            }
        }
    }
}

/// The manifest entry `which` names: a block number, a hash or a prefix of one, or a file name.
fn find_entry<'a>(c: &'a Corpus, which: &str) -> Result<&'a txshadow_corpus::BlockEntry> {
    let w = which.trim().to_ascii_lowercase();
    let hits: Vec<_> = c
        .manifest()
        .blocks
        .iter()
        .filter(|e| {
            let stem = e.file.rsplit_once('.').map_or(e.file.as_str(), |(s, _)| s);
            e.file == w
                || stem == w
                || w.parse::<u64>().is_ok_and(|n| n == e.number)
                || (w.starts_with("0x") && w.len() >= 4 && e.hash.to_string().starts_with(&w))
        })
        .collect();
    match hits.as_slice() {
        [e] => Ok(e),
        [] => eyre::bail!(
            "no block {which:?} in {}: give a block number, a hash (or a prefix of one) or a              file name from `txshadow corpus stats`",
            c.dir().display()
        ),
        more => eyre::bail!(
            "{which:?} names {} blocks in {} ({}): give the hash or the file name",
            more.len(),
            c.dir().display(),
            more.iter()
                .take(5)
                .map(|e| e.file.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
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
    println!("code packs  {}", s.packs);
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
