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
//! This is the one importer that runs the EVM (capture otherwise never does): the source has no
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

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use alloy_consensus::{
    Block, EMPTY_OMMER_ROOT_HASH, Header, TxEnvelope, proofs, transaction::SignerRecoverable,
};
use alloy_eips::{
    eip1559::INITIAL_BASE_FEE, eip2718::Encodable2718, eip7685::EMPTY_REQUESTS_HASH,
    eip7840::BlobParams,
};
use alloy_genesis::Genesis;
use alloy_hardforks::{EthereumHardfork, ForkCondition};
use alloy_primitives::{Address, B64, B256, Bytes, U256};
use alloy_trie::EMPTY_ROOT_HASH;
use txshadow_corpus::{
    AccountState, BlockRecord, ChainConfig, CorpusWriter, KECCAK_EMPTY, Provenance, TxRecord,
    default_blob_schedule, parse_fork,
};
use txshadow_replay::{BlockRunOptions, Codes, SideConfig, decode_code, run_block};

use super::{ImportError, ImportOptions, ImportSummary, common};

/// BLOCKHASH reaches this many ancestors back.
const BLOCKHASH_WINDOW: u64 = 256;

/// The full state: every existing account with all its non-zero slots.
type FullState = BTreeMap<Address, AccountState>;

/// The source files of one hive chain.
#[derive(Debug)]
struct Sources {
    genesis: PathBuf,
    chain: PathBuf,
    headfcu: Option<PathBuf>,
}

/// Finds `genesis.json` and `chain.rlp` among the inputs: a directory holding both, or the files
/// themselves (`*.rlp` is the chain; a `.json` other than `forkenv.json`/`headfcu.json` is the
/// genesis).
fn sources(inputs: &[PathBuf]) -> Result<Sources, ImportError> {
    let mut genesis = vec![];
    let mut chain = vec![];
    let mut headfcu = None;
    let first = || {
        inputs
            .first()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    for input in inputs {
        if input.is_dir() {
            let (g, c) = (input.join("genesis.json"), input.join("chain.rlp"));
            if !g.is_file() || !c.is_file() {
                return Err(ImportError::source(
                    input,
                    "not a hive chain directory (expected genesis.json and chain.rlp)",
                ));
            }
            genesis.push(g);
            chain.push(c);
            let h = input.join("headfcu.json");
            if h.is_file() {
                headfcu = Some(h);
            }
            continue;
        }
        if !input.is_file() {
            return Err(ImportError::Io {
                path: input.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let name = input
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match input.extension().and_then(|e| e.to_str()) {
            Some("rlp") => chain.push(input.clone()),
            Some("json") if name == "headfcu.json" => headfcu = Some(input.clone()),
            Some("json") if name == "forkenv.json" => {}
            Some("json") => genesis.push(input.clone()),
            _ => {
                return Err(ImportError::source(
                    input,
                    "not a hive chain file (expected genesis.json or chain.rlp)",
                ));
            }
        }
    }
    match (genesis.as_slice(), chain.as_slice()) {
        ([g], [c]) => Ok(Sources {
            genesis: g.clone(),
            chain: c.clone(),
            headfcu,
        }),
        ([], _) => Err(ImportError::source(
            &first(),
            "no genesis.json among the inputs",
        )),
        (_, []) => Err(ImportError::source(
            &first(),
            "no chain.rlp among the inputs",
        )),
        _ => Err(ImportError::source(
            &first(),
            "several genesis or chain files: import one hive chain at a time",
        )),
    }
}

/// A decoded block with its hash and recovered transactions.
struct ChainBlock {
    hash: B256,
    block: Block<TxEnvelope>,
    txs: Vec<TxRecord>,
}

/// Decodes the concatenated blocks of `chain.rlp`, checking each body against its header.
fn read_chain(path: &Path) -> Result<Vec<ChainBlock>, ImportError> {
    let bytes = fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut buf = bytes.as_slice();
    let mut out: Vec<ChainBlock> = vec![];
    while !buf.is_empty() {
        let offset = bytes.len() - buf.len();
        let at = |reason: String| {
            ImportError::source(
                path,
                format!("block #{} (byte {offset}): {reason}", out.len()),
            )
        };
        let sealed = Block::<TxEnvelope>::decode_sealed(&mut buf)
            .map_err(|e| at(format!("cannot decode block RLP: {e}")))?;
        let (block, hash) = sealed.into_parts();
        let h = &block.header;
        let n = h.number;
        let at = |reason: String| ImportError::source(path, format!("block {n}: {reason}"));
        if h.hash_slow() != hash {
            return Err(at("the header does not re-encode to the same bytes".into()));
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
        if let Some(prev) = out.last()
            && (h.parent_hash != prev.hash || n != prev.block.header.number + 1)
        {
            return Err(at(format!(
                "does not follow block {} ({}): parent {}",
                prev.block.header.number, prev.hash, h.parent_hash
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
            .collect::<Result<Vec<_>, ImportError>>()?;
        out.push(ChainBlock { hash, block, txs });
    }
    if out.is_empty() {
        return Err(ImportError::source(path, "no block in the chain file"));
    }
    Ok(out)
}

/// Paris as geth decides it: a block is post-merge when its parent's total difficulty reached
/// the terminal total difficulty. Checked against `mergeNetsplitBlock` and against the first
/// header with zero difficulty; a disagreement is an error (the chain would not be valid).
fn paris(
    genesis: &Genesis,
    blocks: &[ChainBlock],
    path: &Path,
) -> Result<ForkCondition, ImportError> {
    let cfg = &genesis.config;
    let Some(ttd) = cfg.terminal_total_difficulty else {
        if let Some(b) = blocks.iter().find(|b| b.block.header.difficulty.is_zero()) {
            return Err(ImportError::source(
                path,
                format!(
                    "block {} has zero difficulty but the config has no terminalTotalDifficulty",
                    b.block.header.number
                ),
            ));
        }
        return Ok(ForkCondition::Never);
    };
    let genesis_number = genesis.number.unwrap_or_default();
    // the first block whose parent's total difficulty reaches the TTD
    let mut activation = None;
    let mut td = genesis.difficulty;
    if ttd.is_zero() && genesis.difficulty.is_zero() {
        activation = Some(genesis_number);
    } else if td >= ttd {
        activation = Some(genesis_number + 1);
    } else {
        for b in blocks {
            td += b.block.header.difficulty;
            if td >= ttd {
                activation = Some(b.block.header.number + 1);
                break;
            }
        }
    }
    let first_pos = blocks
        .iter()
        .find(|b| b.block.header.difficulty.is_zero())
        .map(|b| b.block.header.number);
    let last = blocks
        .last()
        .map_or(genesis_number, |b| b.block.header.number);
    match (activation, first_pos) {
        (Some(a), Some(f)) if a != f => {
            return Err(ImportError::source(
                path,
                format!(
                    "terminalTotalDifficulty {ttd} is reached before block {a}, but the first \
                     zero-difficulty block is {f}"
                ),
            ));
        }
        (Some(a), None) if a <= last => {
            return Err(ImportError::source(
                path,
                format!("block {a} is past terminalTotalDifficulty {ttd} but has a difficulty"),
            ));
        }
        (None, Some(f)) => {
            return Err(ImportError::source(
                path,
                format!("block {f} has zero difficulty before terminalTotalDifficulty {ttd}"),
            ));
        }
        _ => {}
    }
    if let (Some(a), Some(split)) = (activation, cfg.merge_netsplit_block)
        && a != split
    {
        return Err(ImportError::source(
            path,
            format!("mergeNetsplitBlock is {split} but terminalTotalDifficulty is reached at {a}"),
        ));
    }
    Ok(
        match activation.or(cfg.merge_netsplit_block).or(first_pos) {
            Some(activation_block_number) => ForkCondition::TTD {
                activation_block_number,
                fork_block: cfg.merge_netsplit_block,
                total_difficulty: ttd,
            },
            None => ForkCondition::Never,
        },
    )
}

/// The chain config as go-ethereum reads `genesis.json`.
fn chain_config(
    genesis: &Genesis,
    blocks: &[ChainBlock],
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<ChainConfig, ImportError> {
    use EthereumHardfork as F;
    let c = &genesis.config;
    if c.clique.is_some() {
        return Err(ImportError::source(
            path,
            "clique (proof-of-authority) chains are not supported: their rewards and signer \
             rules differ",
        ));
    }
    if c.eip155_block != c.eip158_block {
        notes.push(format!(
            "eip155Block {:?} differs from eip158Block {:?}: Spurious Dragon follows eip158Block",
            c.eip155_block, c.eip158_block
        ));
    }
    let forks = super::common::geth_fork_schedule(c, paris(genesis, blocks, path)?);

    // blob parameters: the genesis's, else Ethereum's for that fork
    let defaults = default_blob_schedule();
    let mut blob_schedule: Vec<(F, BlobParams)> = vec![];
    for (fork, _) in &forks {
        let key = fork.name().to_ascii_lowercase();
        let given = c
            .blob_schedule
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&key))
            .map(|(_, p)| *p);
        let default = defaults.iter().find(|(f, _)| f == fork).map(|(_, p)| *p);
        let params = match (given, default) {
            (Some(p), _) if *fork >= F::Osaka => Some(
                // as alloy-genesis reads it: from Osaka on, the base cost and per-tx cap apply
                p.with_blob_base_cost(alloy_eips::eip7840::BLOB_BASE_COST)
                    .with_max_blobs_per_tx(alloy_eips::eip7594::MAX_BLOBS_PER_TX_FUSAKA),
            ),
            (Some(p), _) => Some(p),
            (None, Some(d)) => {
                notes.push(format!(
                    "genesis.json has no blobSchedule for {key}: Ethereum's default is used"
                ));
                Some(d)
            }
            (None, None) => None,
        };
        if let Some(p) = params {
            blob_schedule.push((*fork, p));
        }
    }
    for key in c.blob_schedule.keys() {
        if !parse_fork(key).is_some_and(|f| forks.iter().any(|(g, _)| *g == f)) {
            notes.push(format!(
                "blobSchedule.{key} ignored: the chain does not schedule that fork"
            ));
        }
    }
    Ok(ChainConfig {
        chain_id: c.chain_id,
        name: "hive".into(),
        forks,
        deposit_contract: Some(c.deposit_contract_address.unwrap_or(Address::ZERO)),
        blob_schedule,
    })
}

/// The genesis state from `alloc` (zero slots dropped).
fn genesis_state(genesis: &Genesis) -> (FullState, Vec<Bytes>) {
    let mut state = FullState::new();
    let mut codes = vec![];
    for (addr, acc) in &genesis.alloc {
        let code_hash = match acc.code.as_ref().filter(|c| !c.is_empty()) {
            Some(code) => {
                codes.push(code.clone());
                alloy_primitives::keccak256(code)
            }
            None => KECCAK_EMPTY,
        };
        let storage = acc
            .storage_slots()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (U256::from_be_bytes(k.0), v))
            .collect();
        state.insert(
            *addr,
            AccountState {
                balance: acc.balance,
                nonce: acc.nonce.unwrap_or_default(),
                code_hash,
                storage,
            },
        );
    }
    (state, codes)
}

/// The genesis header as go-ethereum builds it (`Genesis.ToBlock`).
fn genesis_header(genesis: &Genesis, chain: &ChainConfig, state_root: B256) -> Header {
    let number = genesis.number.unwrap_or_default();
    let ts = genesis.timestamp;
    let active = |f: EthereumHardfork| {
        let cond = chain.activation(f);
        cond.active_at_block(number) || cond.active_at_timestamp(ts)
    };
    let cancun = active(EthereumHardfork::Cancun);
    Header {
        parent_hash: genesis.parent_hash.unwrap_or_default(),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: genesis.coinbase,
        state_root,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        logs_bloom: Default::default(),
        difficulty: genesis.difficulty,
        number,
        gas_limit: genesis.gas_limit,
        gas_used: 0,
        timestamp: ts,
        extra_data: genesis.extra_data.clone(),
        mix_hash: genesis.mix_hash,
        nonce: B64::from(genesis.nonce),
        base_fee_per_gas: active(EthereumHardfork::London).then(|| {
            genesis
                .base_fee_per_gas
                .map_or(INITIAL_BASE_FEE, |f| f as u64)
        }),
        withdrawals_root: active(EthereumHardfork::Shanghai).then_some(EMPTY_ROOT_HASH),
        blob_gas_used: cancun.then(|| genesis.blob_gas_used.unwrap_or_default()),
        excess_blob_gas: cancun.then(|| genesis.excess_blob_gas.unwrap_or_default()),
        parent_beacon_block_root: cancun.then_some(B256::ZERO),
        requests_hash: active(EthereumHardfork::Prague).then_some(EMPTY_REQUESTS_HASH),
        ..Default::default()
    }
}

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
    if let Some(path) = &src.headfcu {
        let fcu: serde_json::Value = common::read_json(path)?;
        let head = fcu
            .pointer("/params/0/headBlockHash")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<B256>().ok());
        let last = blocks.last().expect("non-empty").hash;
        if head.is_some_and(|h| h != last) {
            notes.push(format!(
                "headfcu.json names head {}, the chain ends at {last}",
                head.unwrap_or_default()
            ));
        }
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
        let opts = BlockRunOptions::with_new_codes();
        let run = run_block(&rec, &chain, &codes, &side, &opts);
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
        if diverged.is_none() {
            let why = match &outcome.error {
                Some(e) => Some(format!("block {number} failed to replay: {e}")),
                None if root != h.state_root => Some(format!(
                    "block {number} replays to state root {root}, its header says {}",
                    h.state_root
                )),
                None => None,
            };
            if let Some(why) = why {
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

#[cfg(test)]
mod tests {
    use super::*;

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
