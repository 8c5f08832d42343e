//! A hive chain (`cmd/hivechain` of go-ethereum, as shipped in ethereum/execution-apis
//! `tests/`): a geth `genesis.json` (fork schedule and the full genesis state in `alloc`) and
//! `chain.rlp`, the concatenated RLP of blocks 1..N. `forkenv.json` and `headfcu.json` may sit
//! beside them; the head hash of `headfcu.json` is checked against the last block when present.
//!
//! The chain gives the state only at genesis: each block gets the full state before it, derived
//! by executing the chain and checked against every header (see [`crate::chain`]). This is one
//! of the two importers that run the EVM (capture never does): the source has no other way to
//! give the state before block N. Each block file holds the whole state, so a corpus grows with
//! blocks × accounts; hive chains are small.
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
use alloy_primitives::B256;
use txshadow_corpus::{CorpusWriter, Provenance};
use txshadow_replay::{Codes, decode_code};

use self::{
    genesis::{chain_config, genesis_header, genesis_state},
    source::{Sources, read_chain, sources},
};
use super::{ImportError, ImportOptions, ImportSummary, common};
use crate::chain::{ChainBlock, Derivation, derive_chain};

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

    let (state, alloc_codes) = genesis_state(&genesis);
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

    let mut summary = ImportSummary::default();
    let mut hashes: BTreeMap<u64, B256> = BTreeMap::new();
    hashes.insert(genesis.number.unwrap_or_default(), genesis_hash);
    let d = Derivation {
        chain: &chain,
        chain_per_block: false,
        case: None,
        source: &src.chain,
        last_post_state: None,
        keep_states: Default::default(),
    };
    derive_chain(&mut w, &d, state, &mut codes, hashes, blocks, &mut summary)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::FullState;
    use alloy_consensus::Header;
    use alloy_primitives::{Address, U256};
    use std::fs;
    use txshadow_corpus::KECCAK_EMPTY;
    use txshadow_corpus::{AccountState, BlockRecord};

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
            case: None,
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
