//! A hive chain (`cmd/hivechain` of go-ethereum, as shipped in ethereum/execution-apis
//! `tests/`): a geth `genesis.json` (fork schedule and the full genesis state in `alloc`) and
//! `chain.rlp`, the concatenated RLP of blocks 1..N. `forkenv.json` and `headfcu.json` may sit
//! beside them; the head hash of `headfcu.json` is checked against the last block when present.
//!
//! The chain gives the state only at genesis. Every block here is made self-contained with the
//! **full** state before it (`pre_state_is_full`), so its replay computes the real state root:
//! the importer executes the chain in order with the replay engine under the chain's own rules,
//! and the post-state of block N-1 (its changed accounts and slots, with destroyed accounts
//! removed and wiped storage cleared, exactly as [`txshadow_replay::post_state_root`] applies
//! them) laid over the pre-state of N-1 is the pre-state of block N. Deriving the corpus with the
//! engine under test is sound because nothing derived is trusted: the importer checks every
//! derived state against the state root of the header that commits to it, and each replay of
//! block N checks its own post-state against header N (state root, receipts root, logs bloom, gas
//! used). A block whose derived state does not match its header makes every later block
//! `unsupported` (their pre-states would be unverified) and is recorded in the notes.
//!
//! This is the one importer that runs the EVM (capture never does): the source has no
//! other way to give the state before block N. Each block file holds the whole state, so a corpus
//! grows with blocks × accounts; hive chains are small.
//!
//! Also checked on import: the genesis built from `genesis.json` hashes to block 1's parent, each
//! header hashes to what the next block names as parent, and each body matches its header's
//! transactions root, ommers hash and withdrawals root.
//!
//! The chain config follows go-ethereum's reading of `genesis.json`: forks by block and by
//! timestamp, Petersburg at Constantinople when unset, Spurious Dragon at `eip158Block`, the DAO
//! change only with `daoForkSupport`, Paris at the first block whose parent reaches
//! `terminalTotalDifficulty` (checked against `mergeNetsplitBlock` and the first zero-difficulty
//! header), the deposit contract (zero when unset, as geth filters on it), and the blob schedule.

mod genesis;
mod source;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use alloy_genesis::Genesis;
use alloy_primitives::{Address, B256};
use txshadow_corpus::{AccountState, BlockRecord, CorpusWriter, Provenance};
use txshadow_replay::{BlockOutcome, BlockRunOptions, Codes, SideConfig, decode_code, run_block};

use self::{
    genesis::{chain_config, genesis_header, genesis_state},
    source::{ChainBlock, Sources, read_chain, sources},
};
use super::{ImportError, ImportOptions, ImportSummary, common};

/// BLOCKHASH reaches this many ancestors back.
const BLOCKHASH_WINDOW: u64 = 256;

/// The full state: every existing account with all its non-zero slots.
type FullState = BTreeMap<Address, AccountState>;

pub(crate) fn import(
    inputs: &[PathBuf],
    out: &Path,
    opts: &ImportOptions,
    prov: Provenance,
) -> Result<ImportSummary, ImportError> {
    let src = sources(inputs)?;
    let genesis: Genesis = common::read_json(&src.genesis)?;
    let blocks = read_chain(&src.chain)?;
    let mut notes = vec![];
    let chain = chain_config(&genesis, &blocks, &src.genesis, &mut notes)?;

    let (mut state, alloc_codes) = genesis_state(&genesis);
    let genesis_hash =
        genesis_header(&genesis, &chain, txshadow_replay::state_root(&state)).hash_slow();
    let first = &blocks[0].block.header;
    if first.number != genesis.number.unwrap_or_default() + 1 || first.parent_hash != genesis_hash {
        return Err(ImportError::source(
            &src.genesis,
            format!(
                "this genesis (block {} hashing to {genesis_hash}) is not the parent of the \
                 chain's first block {} (parent {})",
                genesis.number.unwrap_or_default(),
                first.number,
                first.parent_hash
            ),
        ));
    }
    if let Some(note) = check_head(&src, &blocks)? {
        notes.push(note);
    }

    let mut w = CorpusWriter::create(out, chain.clone(), prov, opts.overwrite)?;
    for n in &notes {
        w.add_note(n.clone());
    }
    let mut codes = Codes::default();
    for code in &alloc_codes {
        w.put_code(code)?;
        codes.insert(decode_code(code.clone()));
    }

    let side = SideConfig::chain("import");
    let mut summary = ImportSummary::default();
    let mut hashes: BTreeMap<u64, B256> = BTreeMap::new();
    hashes.insert(genesis.number.unwrap_or_default(), genesis_hash);
    // set once a derived state fails its header's check: later pre-states are unverified
    let mut diverged: Option<String> = None;
    for cb in blocks {
        let h = &cb.block.header;
        let number = h.number;
        let block_hashes = hashes
            .range(number.saturating_sub(BLOCKHASH_WINDOW)..number)
            .map(|(n, h)| (*n, *h))
            .collect();
        let rec = BlockRecord {
            ommers: cb.block.body.ommers.clone(),
            withdrawals: cb.block.body.withdrawals.clone().map(|w| w.into_inner()),
            pre_state: state.iter().map(|(a, s)| (*a, Some(s.clone()))).collect(),
            pre_state_is_full: true,
            block_hashes,
            unsupported: diverged.clone(),
            ..BlockRecord::new(cb.hash, h.clone(), cb.txs)
        };

        // derive the next block's pre-state
        let run = run_block(
            &rec,
            &chain,
            &codes,
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
                &src.chain,
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
                "{why}; later blocks are marked unsupported (their pre-states derive from it)"
            ));
            summary.unsupported.push((
                src.chain.display().to_string(),
                format!("{why}; blocks after {number} not verifiable"),
            ));
            diverged = Some(format!(
                "pre-state derived through block {number}, whose replay did not reproduce \
                 its header's state root"
            ));
        }

        hashes.insert(number, rec.hash);
        if w.has_block(&rec.hash) {
            summary.skipped_existing += 1;
            continue;
        }
        summary.blocks += 1;
        summary.txs += rec.transactions.len();
        w.put_block(&rec)?;
    }
    w.finish()?;
    Ok(summary)
}

/// The note when `headfcu.json` (if present) names another head than the chain's last block.
fn check_head(src: &Sources, blocks: &[ChainBlock]) -> Result<Option<String>, ImportError> {
    let Some(path) = &src.headfcu else {
        return Ok(None);
    };
    let fcu: serde_json::Value = common::read_json(path)?;
    let head = fcu
        .pointer("/params/0/headBlockHash")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<B256>().ok());
    let last = blocks.last().expect("non-empty").hash;
    Ok(head
        .filter(|h| *h != last)
        .map(|h| format!("headfcu.json names head {h}, the chain ends at {last}")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::Header;
    use alloy_primitives::U256;
    use std::fs;
    use txshadow_corpus::KECCAK_EMPTY;

    fn acc(balance: u64, storage: &[(u64, u64)]) -> AccountState {
        AccountState {
            balance: U256::from(balance),
            nonce: 1,
            code_hash: KECCAK_EMPTY,
            storage: storage
                .iter()
                .map(|(k, v)| (U256::from(*k), U256::from(*v)))
                .collect(),
        }
    }

    /// Carrying the state forward drops deleted accounts, wiped storage and zeroed slots, and
    /// gives the root the engine reports for the block.
    #[test]
    fn overlay_matches_post_state_root() {
        let (a, b, c, d) = (
            Address::with_last_byte(1),
            Address::with_last_byte(2),
            Address::with_last_byte(3),
            Address::with_last_byte(4),
        );
        let mut state = FullState::from([
            (a, acc(10, &[(1, 1), (2, 2)])),
            (b, acc(20, &[(1, 1), (2, 2)])),
            (c, acc(30, &[(7, 7)])),
        ]);
        let pre: txshadow_corpus::StateMap =
            state.iter().map(|(k, v)| (*k, Some(v.clone()))).collect();
        let post = txshadow_corpus::StateMap::from([
            // slot 1 zeroed, slot 3 written
            (a, Some(acc(11, &[(1, 0), (3, 3)]))),
            // wiped, then slot 5 written
            (b, Some(acc(21, &[(5, 5)]))),
            // destroyed
            (c, None),
            // new
            (d, Some(acc(40, &[(9, 9)]))),
        ]);
        let reset = [b];
        let block = BlockRecord {
            hash: B256::ZERO,
            header: Header::default(),
            transactions: vec![],
            ommers: vec![],
            ommers_missing: 0,
            withdrawals: None,
            pre_state: pre,
            pre_state_is_full: true,
            block_hashes: Default::default(),
            expected: Default::default(),
            conventions: Default::default(),
            chain: None,
            synthetic: false,
            label: None,
            unsupported: None,
            witness: None,
        };
        let (want, exact) = txshadow_replay::post_state_root(&block, &post, &reset);
        assert!(exact);
        txshadow_replay::apply_changes(&mut state, &post, &reset);
        assert_eq!(txshadow_replay::state_root(&state), want);
        assert_eq!(state[&a], acc(11, &[(2, 2), (3, 3)]));
        assert_eq!(state[&b], acc(21, &[(5, 5)]));
        assert!(!state.contains_key(&c));
        assert_eq!(state[&d], acc(40, &[(9, 9)]));
    }

    #[test]
    fn inputs_need_one_genesis_and_one_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let g = dir.join("genesis.json");
        let c = dir.join("chain.rlp");
        fs::write(&g, "{}").unwrap();
        fs::write(&c, []).unwrap();
        let s = sources(&[g.clone(), c.clone(), dir.join("forkenv.json")]);
        assert!(s.is_err(), "forkenv.json does not exist");
        fs::write(dir.join("forkenv.json"), "{}").unwrap();
        let s = sources(&[g.clone(), c.clone(), dir.join("forkenv.json")]).unwrap();
        assert_eq!((s.genesis, s.chain), (g.clone(), c.clone()));
        let s = sources(std::slice::from_ref(&dir)).unwrap();
        assert_eq!((s.genesis, s.chain), (g.clone(), c));
        assert!(
            sources(&[g])
                .unwrap_err()
                .to_string()
                .contains("no chain.rlp")
        );
    }
}
