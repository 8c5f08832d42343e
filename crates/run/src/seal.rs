//! Sealing a corpus's receipts: recorded receipts held once to the header, so that later
//! replays check their receipts field by field instead of computing the receipts trie.
//!
//! A block that records receipts (a capture) has them held to its header's receipts root and
//! logs bloom ([`txshadow_corpus::seal_receipts`]). A block that records none (pevm and other
//! dumps) gets them from a verified replay: the block is run under the chain's rules, its
//! receipts trie and blooms computed, and only when that run matches the chain in every check a
//! run against the chain makes (no difference, no tx error: gas, receipts root, logs bloom,
//! state root where exact, anything else recorded) are its receipts written into the block,
//! held to the header once more, and marked sealed. A block that does not match is left as it
//! was and listed: it keeps the trie check. Pre-Byzantium receipts carry a state root per tx
//! that a replay computes only with a witness or a full pre-state, so such blocks are sealed
//! only when they record their receipts.

use std::path::Path;

use rayon::prelude::*;
use txshadow_corpus::{
    BlockRecord, ChainConfig, Corpus, CorpusWriter, ExpectedReceipt, seal_receipts,
};
use txshadow_diff::{Comparison, Mode, diff_against_chain};
use txshadow_replay::{BlockOutcome, BlockRunOptions, SideConfig, run_block};

use crate::{CorpusSource, RunError};

/// What sealing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sealed {
    /// Blocks looked at.
    pub blocks: usize,
    /// Blocks whose receipts were already sealed.
    pub already: usize,
    /// Blocks whose recorded receipts were held to the header and sealed.
    pub recorded: usize,
    /// Blocks whose receipts came from a verified replay and were sealed.
    pub replayed: usize,
    /// Blocks left unsealed: number and why (they keep the receipts trie check).
    pub unsealed: Vec<(u64, String)>,
    /// Whether the sealed blocks were written (not a dry run).
    pub written: bool,
}

/// How to seal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealOptions {
    /// Write the sealed blocks (false: a dry run, the same work).
    pub write: bool,
    /// Derive every block's receipts by a verified replay, even where receipts are recorded or
    /// already sealed: the costliest sealing, which the bench times (needs `write` false).
    pub replay_all: bool,
}

/// Seals the receipts of every block of the corpus at `dir` (see the module docs).
pub fn seal_corpus(dir: &Path, opts: SealOptions) -> Result<Sealed, RunError> {
    if opts.write && opts.replay_all {
        return Err(RunError::Input(
            "sealing: replay_all is for a dry run (recorded receipts are never replaced)".into(),
        ));
    }
    let write = opts.write;
    let source = CorpusSource::open(dir, None)?;
    let results = source
        .entries()
        .par_iter()
        .map(|e| -> Result<(u64, Outcome), RunError> {
            let mut sb = source.load(e)?;
            let n = sb.block.number();
            if opts.replay_all {
                sb.block.expected.receipts = None;
                sb.block.expected.receipts_sealed = false;
            }
            Ok((n, seal_block(sb.block, &sb.chain, &sb.codes)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut s = Sealed {
        blocks: results.len(),
        written: write,
        ..Sealed::default()
    };
    let mut changed = Vec::new();
    for (n, o) in results {
        match o {
            Outcome::Already => s.already += 1,
            Outcome::Recorded(b) => {
                s.recorded += 1;
                changed.push(b);
            }
            Outcome::Replayed(b) => {
                s.replayed += 1;
                changed.push(b);
            }
            Outcome::Unsealed(why) => s.unsealed.push((n, why)),
        }
    }
    if write && !changed.is_empty() {
        write_blocks(source.corpus(), &changed)?;
    }
    Ok(s)
}

/// Rewrites `blocks` into the corpus and its manifest (each file atomically).
fn write_blocks(corpus: &Corpus, blocks: &[Box<BlockRecord>]) -> Result<(), RunError> {
    let m = corpus.manifest();
    let mut provenance = m.provenance.clone();
    let note = "receipts sealed: held to each header's receipts root and logs bloom";
    if !provenance.notes.iter().any(|n| n == note) {
        provenance.notes.push(note.into());
    }
    let mut w = CorpusWriter::create(corpus.dir(), m.chain.clone(), provenance, false)?;
    for b in blocks {
        w.put_block_deferred(b)?;
    }
    w.write_manifest()?;
    Ok(())
}

/// What sealing one block gave.
enum Outcome {
    Already,
    Recorded(Box<BlockRecord>),
    Replayed(Box<BlockRecord>),
    Unsealed(String),
}

/// Seals one block's receipts: its recorded ones held to the header, or those of a verified
/// replay.
fn seal_block(
    mut block: BlockRecord,
    chain: &ChainConfig,
    codes: &txshadow_replay::Codes,
) -> Outcome {
    if block.expected.receipts_sealed {
        return Outcome::Already;
    }
    if let Some(why) = &block.unsupported {
        return Outcome::Unsealed(format!("not replayable: {why}"));
    }
    if let Some(inv) = &block.expected.invalid_block {
        return Outcome::Unsealed(format!(
            "the source expects the block to be invalid ({})",
            inv.reason
        ));
    }
    if block.expected.receipts.is_some() {
        return match seal_receipts(&mut block) {
            Ok(()) => Outcome::Recorded(Box::new(block)),
            Err(e) => Outcome::Unsealed(e),
        };
    }
    if !block.expected.header_checks {
        return Outcome::Unsealed("the header does not describe the block's txs".into());
    }
    let byzantium = chain
        .activation(alloy_hardforks::EthereumHardfork::Byzantium)
        .active_at_block(block.number());
    let opts = BlockRunOptions {
        tx_state: block.expected.has_tx_post_states(),
        receipts_trie: true,
        ..BlockRunOptions::default()
    };
    let out = run_block(&block, chain, codes, &SideConfig::chain("seal"), &opts).outcome;
    if let Err(e) = verified(&block, chain, &out) {
        return Outcome::Unsealed(e);
    }
    if !byzantium
        && out
            .txs
            .iter()
            .any(|t| t.exec().is_some_and(|e| e.receipt_state_root.is_none()))
    {
        // the replay's receipts would hold no root where the chain's hold one
        return Outcome::Unsealed(
            "pre-Byzantium receipts hold a state root per tx, and the replay could not compute \
             them (no full pre-state or witness); record the receipts to seal"
                .into(),
        );
    }
    block.expected.receipts = Some(receipts_of(&out, byzantium));
    match seal_receipts(&mut block) {
        Ok(()) => Outcome::Replayed(Box::new(block)),
        Err(e) => Outcome::Unsealed(format!("the replay's receipts: {e}")),
    }
}

/// Whether a replay matches the chain in every check a run against the chain makes.
fn verified(block: &BlockRecord, chain: &ChainConfig, out: &BlockOutcome) -> Result<(), String> {
    if let Some(e) = &out.error {
        return Err(format!("the replay failed: {e}"));
    }
    if let Some(t) = out.txs.iter().find(|t| t.result.is_err()) {
        return Err(format!("tx {} does not execute", t.index));
    }
    let findings = diff_against_chain(block, chain, out, Mode::Block, Comparison::BaselineVsChain);
    if let Some(f) = findings.first() {
        return Err(format!(
            "the replay differs from the chain ({} difference(s), first {}: got {}, chain {})",
            findings.len(),
            f.field,
            f.got,
            f.expected
        ));
    }
    Ok(())
}

/// The receipts of a verified block run (every tx executed): a status from Byzantium on, the
/// state root after the tx before it.
fn receipts_of(out: &BlockOutcome, byzantium: bool) -> Vec<ExpectedReceipt> {
    out.txs
        .iter()
        .filter_map(|t| t.exec().map(|e| (t.tx_type, e)))
        .map(|(tx_type, e)| ExpectedReceipt {
            tx_type,
            status: byzantium.then_some(e.status),
            state_root: (!byzantium).then_some(e.receipt_state_root).flatten(),
            gas_used: e.gas_used,
            cumulative_gas_used: e.cumulative_gas_used,
            logs: e.logs.clone(),
            contract_address: e.created.filter(|_| e.status),
        })
        .collect()
}
