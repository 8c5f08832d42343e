//! Chains given from a genesis state (hive chains, blockchain tests): decoding their blocks and
//! deriving the full state before each one.
//!
//! The source gives the state only at genesis. Every block is made self-contained with the
//! **full** state before it (`pre_state_is_full`), so its replay computes the real state root:
//! the chain is executed in order with the replay engine under the chain's own rules, and the
//! post-state of block N-1 (its changed accounts and slots, with destroyed accounts removed and
//! wiped storage cleared, exactly as [`txshadow_replay::post_state_root`] applies them) laid over
//! the pre-state of N-1 is the pre-state of block N. Deriving the corpus with the engine under
//! test is sound because nothing derived is trusted: every derived state is checked against
//! the state root of the header that commits to it, and each replay of block N checks its own
//! post-state against header N (state root, receipts root, logs bloom, gas used). A block whose
//! derived state does not match its header makes every later block `unsupported` (their
//! pre-states would be unverified).

use std::{collections::BTreeMap, path::Path};

use alloy_consensus::{Block, TxEnvelope, proofs, transaction::SignerRecoverable};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes};
use txshadow_corpus::{
    AccountState, BlockRecord, ChainConfig, CorpusWriter, StateMap, SuiteCase, TxRecord,
};
use txshadow_replay::{BlockOutcome, BlockRunOptions, Codes, SideConfig, run_block};

use crate::{ImportError, ImportSummary};

/// BLOCKHASH reaches this many ancestors back.
pub(crate) const BLOCKHASH_WINDOW: u64 = 256;

/// The full state: every existing account with all its non-zero slots.
pub(crate) type FullState = BTreeMap<Address, AccountState>;

/// A decoded block with its hash and recovered transactions.
pub(crate) struct ChainBlock {
    pub(crate) hash: B256,
    pub(crate) block: Block<TxEnvelope>,
    pub(crate) txs: Vec<TxRecord>,
}

/// Decodes one block's RLP and checks its body against its header (transactions root, ommers
/// hash, withdrawals root); recovers every sender from its signature.
pub(crate) fn decode_block(mut bytes: &[u8]) -> Result<ChainBlock, String> {
    let sealed = Block::<TxEnvelope>::decode_sealed(&mut bytes)
        .map_err(|e| format!("cannot decode block RLP: {e}"))?;
    let (block, hash) = sealed.into_parts();
    check_block(block, hash)
}

/// Checks a block's header against `hash` and its body against its header (transactions root,
/// ommers hash, withdrawals root); recovers every sender from its signature.
pub(crate) fn check_block(block: Block<TxEnvelope>, hash: B256) -> Result<ChainBlock, String> {
    let h = &block.header;
    let n = h.number;
    let at = |reason: String| format!("block {n}: {reason}");
    let rehashed = h.hash_slow();
    if rehashed != hash {
        return Err(at(format!(
            "the header hashes to {rehashed}, not to the block hash given ({hash})"
        )));
    }
    let body = &block.body;
    let tx_root = proofs::calculate_transaction_root(&body.transactions);
    if tx_root != h.transactions_root {
        return Err(at(format!(
            "transactions hash to root {tx_root}, the header says {}",
            h.transactions_root
        )));
    }
    let ommers_hash = proofs::calculate_ommers_root(&body.ommers);
    if ommers_hash != h.ommers_hash {
        return Err(at(format!(
            "ommers hash to {ommers_hash}, the header says {}",
            h.ommers_hash
        )));
    }
    let wd_root = body
        .withdrawals
        .as_ref()
        .map(|w| proofs::calculate_withdrawals_root(w));
    if wd_root != h.withdrawals_root {
        return Err(at(format!(
            "withdrawals root is {wd_root:?}, the header says {:?}",
            h.withdrawals_root
        )));
    }
    let txs = body
        .transactions
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            let from = tx.recover_signer().map_err(|e| {
                at(format!(
                    "tx {i} ({}): cannot recover sender: {e}",
                    tx.hash()
                ))
            })?;
            Ok(TxRecord {
                hash: *tx.tx_hash(),
                from,
                raw: Bytes::from(tx.encoded_2718()),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ChainBlock { hash, block, txs })
}

/// One chain to derive: its rules and what to record on each of its blocks.
pub(crate) struct Derivation<'a> {
    /// The chain's rules.
    pub(crate) chain: &'a ChainConfig,
    /// Record the chain config on each block (a corpus of many chains).
    pub(crate) chain_per_block: bool,
    /// The case the blocks belong to, for a conformance suite.
    pub(crate) case: Option<SuiteCase>,
    /// The file the chain comes from, named in errors.
    pub(crate) source: &'a Path,
    /// The state the source expects after the last block (checked account by account by
    /// its replay).
    pub(crate) last_post_state: Option<StateMap>,
    /// Blocks whose post-state the caller wants back (the parents of blocks expected to be
    /// invalid), while it is verified.
    pub(crate) keep_states: std::collections::HashSet<B256>,
}

/// Writes `blocks` (in chain order, starting after the block of `hashes`' last entry) to `w`,
/// each with the full state before it, derived from `state` by executing the chain. `codes`
/// holds every code of `state` and gains the codes the chain deploys. Returns the verified
/// post-states of the blocks in `d.keep_states`.
pub(crate) fn derive_chain(
    w: &mut CorpusWriter,
    d: &Derivation<'_>,
    mut state: FullState,
    codes: &mut Codes,
    mut hashes: BTreeMap<u64, B256>,
    blocks: Vec<ChainBlock>,
    summary: &mut ImportSummary,
) -> Result<std::collections::HashMap<B256, FullState>, ImportError> {
    let side = SideConfig::chain("import");
    let mut kept = std::collections::HashMap::new();
    // set once a derived state fails its header's check: later pre-states are unverified
    let mut diverged: Option<String> = None;
    let last = blocks.len().saturating_sub(1);
    for (i, cb) in blocks.into_iter().enumerate() {
        let h = &cb.block.header;
        let number = h.number;
        let block_hashes = hashes
            .range(number.saturating_sub(BLOCKHASH_WINDOW)..number)
            .map(|(n, h)| (*n, *h))
            .collect();
        let mut rec = BlockRecord {
            ommers: cb.block.body.ommers.clone(),
            withdrawals: cb.block.body.withdrawals.clone().map(|w| w.into_inner()),
            pre_state: state.iter().map(|(a, s)| (*a, Some(s.clone()))).collect(),
            pre_state_is_full: true,
            block_hashes,
            unsupported: diverged.clone(),
            chain: d.chain_per_block.then(|| d.chain.clone()),
            label: d.case.as_ref().map(|c| c.id.clone()),
            case: d.case.clone(),
            ..BlockRecord::new(cb.hash, h.clone(), cb.txs)
        };
        if i == last {
            rec.expected.post_state = d.last_post_state.clone();
        }

        // derive the next block's pre-state
        let run = run_block(
            &rec,
            d.chain,
            codes,
            &side,
            &BlockRunOptions::with_new_codes(),
        );
        let (outcome, new_codes) = (run.outcome, run.new_codes);
        for code in new_codes.into_values() {
            w.put_code(code.original_byte_slice())?;
            codes.insert(code);
        }
        txshadow_replay::apply_changes(&mut state, &outcome.post_state, &outcome.storage_reset);
        let root = txshadow_replay::state_root(&state);
        if outcome.error.is_none() && outcome.state_root != Some(root) {
            return Err(ImportError::source(
                d.source,
                format!(
                    "block {number}: the carried-forward state has root {root}, the replay \
                     computed {:?} (the overlay and the engine disagree)",
                    outcome.state_root
                ),
            ));
        }
        if diverged.is_none()
            && let Some(why) = divergence(number, &outcome, root, h.state_root)
        {
            tracing::warn!("{why}: the pre-states of later blocks are unverified");
            w.add_note(format!(
                "{}{why}; later blocks are marked unsupported (their pre-states derive from it)",
                d.case
                    .as_ref()
                    .map_or(String::new(), |c| format!("{}: ", c.id))
            ));
            summary.unsupported.push((
                d.case
                    .as_ref()
                    .map_or_else(|| d.source.display().to_string(), |c| c.id.clone()),
                format!("{why}; blocks after {number} not verifiable"),
            ));
            diverged = Some(format!(
                "pre-state derived through block {number}, whose replay did not reproduce \
                 its header's state root"
            ));
        }

        hashes.insert(number, rec.hash);
        if diverged.is_none() && d.keep_states.contains(&rec.hash) {
            kept.insert(rec.hash, state.clone());
        }
        if w.has_block(&rec.hash) {
            summary.skipped_existing += 1;
            continue;
        }
        summary.blocks += 1;
        summary.txs += rec.transactions.len();
        w.put_block_deferred(&rec)?;
    }
    Ok(kept)
}

/// Why block `number` does not verify the state derived through it, if it does not: its replay
/// failed, or the state it leaves (`root`) is not the one its header commits to.
fn divergence(
    number: u64,
    outcome: &BlockOutcome,
    root: B256,
    header_root: B256,
) -> Option<String> {
    match &outcome.error {
        Some(e) => Some(format!("block {number} failed to replay: {e}")),
        None if root != header_root => Some(format!(
            "block {number} replays to state root {root}, its header says {header_root}"
        )),
        None => None,
    }
}
