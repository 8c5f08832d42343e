//! The source files of a hive chain and the blocks of its `chain.rlp`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use alloy_consensus::{Block, TxEnvelope, proofs, transaction::SignerRecoverable};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{B256, Bytes};
use txshadow_corpus::TxRecord;

use crate::ImportError;

/// The source files of one hive chain.
#[derive(Debug)]
pub(super) struct Sources {
    pub(super) genesis: PathBuf,
    pub(super) chain: PathBuf,
    pub(super) headfcu: Option<PathBuf>,
}

/// Finds `genesis.json` and `chain.rlp` among the inputs: a directory holding both, or the files
/// themselves (`*.rlp` is the chain; a `.json` other than `forkenv.json`/`headfcu.json` is the
/// genesis).
pub(super) fn sources(inputs: &[PathBuf]) -> Result<Sources, ImportError> {
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
pub(super) struct ChainBlock {
    pub(super) hash: B256,
    pub(super) block: Block<TxEnvelope>,
    pub(super) txs: Vec<TxRecord>,
}

/// Decodes the concatenated blocks of `chain.rlp`, checking each body against its header.
pub(super) fn read_chain(path: &Path) -> Result<Vec<ChainBlock>, ImportError> {
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
