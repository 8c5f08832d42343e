//! `txshadow corpus stats|verify`.

use std::path::PathBuf;

use clap::Subcommand;
use eyre::Result;
use txshadow_corpus::{Corpus, CorpusWriter};

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
}

impl CorpusCmd {
    /// Runs the command.
    pub fn run(self) -> Result<u8> {
        match self {
            Self::Stats { dir, json } => {
                let c = Corpus::open(&dir)?;
                let blocks = c.load_blocks()?;
                let codes = c.load_codes(&blocks)?;
                let m = c.manifest();
                let txs: usize = blocks.iter().map(|b| b.transactions.len()).sum();
                let gas: u64 = blocks.iter().map(|b| b.gas_used()).sum();
                let accounts: usize = blocks.iter().map(|b| b.pre_state.len()).sum();
                let slots: usize = blocks
                    .iter()
                    .flat_map(|b| b.pre_state.values().flatten())
                    .map(|a| a.storage.len())
                    .sum();
                let mut types = std::collections::BTreeMap::<u8, usize>::new();
                for b in &blocks {
                    for t in &b.transactions {
                        let ty = t.raw.first().copied().filter(|x| *x < 0x7f).unwrap_or(0);
                        *types.entry(ty).or_default() += 1;
                    }
                }
                let unsupported = blocks.iter().filter(|b| b.unsupported.is_some()).count();
                let witnesses: Vec<_> = blocks.iter().filter_map(|b| b.witness.as_ref()).collect();
                let witness_nodes: usize = witnesses.iter().map(|w| w.nodes.len()).sum();
                let witness_bytes: usize = witnesses.iter().map(|w| w.bytes()).sum();
                let first = blocks.first().map(|b| b.number()).unwrap_or(0);
                let last = blocks.last().map(|b| b.number()).unwrap_or(0);
                if json {
                    let v = serde_json::json!({
                        "schema_version": 1,
                        "dir": dir.display().to_string(),
                        "format_version": m.version,
                        "chain_id": m.chain.chain_id,
                        "chain": m.chain.name,
                        "blocks": blocks.len(),
                        "first_block": first,
                        "last_block": last,
                        "txs": txs,
                        "gas": gas,
                        "tx_types": types,
                        "pre_state_accounts": accounts,
                        "pre_state_slots": slots,
                        "codes": codes.len(),
                        "code_bytes": codes.bytes(),
                        "unsupported_blocks": unsupported,
                        "witness_blocks": witnesses.len(),
                        "witness_nodes": witness_nodes,
                        "witness_bytes": witness_bytes,
                        "provenance": m.provenance,
                    });
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    println!("corpus      {}", dir.display());
                    println!("format      v{}", m.version);
                    println!("chain       {} (id {})", m.chain.name, m.chain.chain_id);
                    println!("blocks      {} ({first}..={last})", blocks.len());
                    println!("txs         {txs}  types {types:?}");
                    println!("gas         {gas}");
                    println!("pre-state   {accounts} accounts, {slots} slots");
                    println!("codes       {} ({} bytes)", codes.len(), codes.bytes());
                    if !witnesses.is_empty() {
                        println!(
                            "witness     {} blocks, {witness_nodes} trie nodes ({witness_bytes} bytes): exact state roots",
                            witnesses.len()
                        );
                    }
                    if unsupported > 0 {
                        println!("unsupported {unsupported} blocks (replay lists them as skipped)");
                    }
                    println!("source      {}", m.provenance.source);
                    if let Some(v) = &m.provenance.client_version {
                        println!("client      {v}");
                    }
                    if let Some(r) = &m.provenance.rpc {
                        println!("rpc         {r}");
                    }
                    println!(
                        "created     {} by txshadow {}",
                        m.provenance.created, m.provenance.tool_version
                    );
                }
                Ok(crate::EXIT_OK)
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
                Ok(crate::EXIT_OK)
            }
            Self::Pack { dir } => {
                let c = Corpus::open(&dir)?;
                let m = c.manifest();
                let mut w =
                    CorpusWriter::create(&dir, m.chain.clone(), m.provenance.clone(), false)?;
                let n = w.pack_loose_codes()?;
                w.finish()?;
                println!("packed {n} loose codes in {}", dir.display());
                Ok(crate::EXIT_OK)
            }
        }
    }
}
