//! risechain/pevm mainnet blocks: `blocks/<N>/block.json` (`eth_getBlockByNumber(N, true)`),
//! `pre_state.json` (state at N-1 of what the block reads), optional `block_hashes.json`, and a
//! shared `bytecodes.json` (code hash → code). The oracle is the header: gas used, logs bloom and
//! receipts root (Byzantium on). Uncle headers are not in the source, so uncle rewards cannot be
//! paid (recorded as `ommers_missing`): they change no receipt.

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    path::{Path, PathBuf},
};

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rpc_types_eth::{Block, Transaction};
use serde::Deserialize;
use txshadow_corpus::{AccountState, ChainConfig, CorpusWriter, KECCAK_EMPTY, Provenance};

use super::{ImportError, ImportOptions, ImportSummary, common};

#[derive(Deserialize)]
struct PevmAccount {
    basic: PevmBasic,
    code_hash: Option<B256>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    storage: BTreeMap<U256, U256>,
}

#[derive(Deserialize)]
struct PevmBasic {
    balance: U256,
    nonce: u64,
}

/// Finds `blocks/` directories and `bytecodes.json` among the inputs: each input is a pevm
/// root (with `blocks/` and `bytecodes.json`), a `blocks/` dir, or a single block dir.
fn block_dirs(inputs: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<PathBuf>), ImportError> {
    let mut dirs = vec![];
    let mut bytecodes = vec![];
    for input in inputs {
        let read = |p: &Path| {
            fs::read_dir(p).map_err(|source| ImportError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        if input.join("block.json").exists() {
            dirs.push(input.clone());
        } else if input.join("blocks").is_dir() {
            for e in read(&input.join("blocks"))?.flatten() {
                if e.path().join("block.json").exists() {
                    dirs.push(e.path());
                }
            }
        } else if input.is_dir() {
            for e in read(input)?.flatten() {
                if e.path().join("block.json").exists() {
                    dirs.push(e.path());
                }
            }
        } else {
            return Err(ImportError::source(
                input,
                "not a pevm directory (no blocks/ nor block.json)",
            ));
        }
        for cand in [
            input.join("bytecodes.json"),
            input.join("../bytecodes.json"),
            input.join("../../bytecodes.json"),
        ] {
            if cand.exists() && !bytecodes.contains(&cand) {
                bytecodes.push(cand);
                break;
            }
        }
    }
    if dirs.is_empty() {
        return Err(ImportError::source(
            inputs
                .first()
                .map(PathBuf::as_path)
                .unwrap_or(Path::new(".")),
            "no pevm block found (expected blocks/<N>/block.json)",
        ));
    }
    dirs.sort_by_key(|d| {
        d.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u64>().ok())
    });
    Ok((dirs, bytecodes))
}

pub(crate) fn import(
    inputs: &[PathBuf],
    out: &Path,
    opts: &ImportOptions,
    prov: Provenance,
) -> Result<ImportSummary, ImportError> {
    let (dirs, bytecode_files) = block_dirs(inputs)?;
    let mut codes: HashMap<B256, Bytes> = HashMap::new();
    for f in &bytecode_files {
        let m: HashMap<B256, Bytes> = common::read_json(f)?;
        codes.extend(m);
    }
    let mut w = CorpusWriter::create(out, ChainConfig::mainnet(), prov, opts.overwrite)?;
    let mut summary = ImportSummary::default();
    for dir in dirs {
        if let Err(e) = import_dir(&dir, &codes, &mut w, &mut summary) {
            summary.fail_input(&dir, e)?;
        }
    }
    w.finish()?;
    Ok(summary)
}

/// Imports one block directory (`block.json`, `pre_state.json`, `block_hashes.json`).
fn import_dir(
    dir: &Path,
    codes: &HashMap<B256, Bytes>,
    w: &mut CorpusWriter,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let block_path = dir.join("block.json");
    let rpc: Block<Transaction> = common::read_json(&block_path)?;
    if w.has_block(&rpc.header.hash) {
        summary.skipped_existing += 1;
        return Ok(());
    }
    let mut rec =
        txshadow_rpc::rpc_block_to_record(&rpc).map_err(|e| ImportError::source(&block_path, e))?;
    let pre_path = dir.join("pre_state.json");
    let pre: BTreeMap<Address, PevmAccount> = common::read_json(&pre_path)?;
    for (addr, acc) in pre {
        let code_hash = acc
            .code_hash
            .filter(|h| *h != B256::ZERO)
            .unwrap_or(KECCAK_EMPTY);
        if code_hash != KECCAK_EMPTY && !w.has_code(&code_hash) {
            let code = match (&acc.code, codes.get(&code_hash)) {
                (_, Some(c)) => c.clone(),
                (Some(serde_json::Value::String(s)), None) => s.parse::<Bytes>().map_err(|e| {
                    ImportError::source(&pre_path, format!("{addr}: bad code: {e}"))
                })?,
                _ => {
                    return Err(ImportError::source(
                        &pre_path,
                        format!("{addr}: code {code_hash} is neither inline nor in bytecodes.json"),
                    ));
                }
            };
            let h = w.put_code(&code)?;
            if h != code_hash {
                return Err(ImportError::source(
                    &pre_path,
                    format!("{addr}: code hashes to {h}, the source says {code_hash}"),
                ));
            }
        }
        rec.pre_state.insert(
            addr,
            Some(AccountState {
                balance: acc.basic.balance,
                nonce: acc.basic.nonce,
                code_hash,
                storage: acc.storage,
            }),
        );
    }
    let hashes_path = dir.join("block_hashes.json");
    if hashes_path.exists() {
        let m: BTreeMap<String, B256> = common::read_json(&hashes_path)?;
        for (k, v) in m {
            let n = k
                .parse::<u64>()
                .map_err(|e| ImportError::source(&hashes_path, e))?;
            rec.block_hashes.insert(n, v);
        }
    }
    summary.blocks += 1;
    summary.txs += rec.transactions.len();
    w.put_block(&rec)?;
    Ok(())
}
