//! Helpers shared by importers.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use alloy_primitives::{B256, Bytes, U256, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::{
    EMPTY_ROOT_HASH, Nibbles, TrieAccount,
    nodes::{RlpNode, TrieNode},
};
use serde::de::DeserializeOwned;
use txshadow_corpus::{BlockRecord, CorpusWriter};

use super::ImportError;

/// Now, RFC 3339.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Reads and parses a JSON file, naming it on error.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ImportError> {
    let bytes = fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ImportError::source(path, format!("invalid JSON: {e}")))
}

/// The file name of `path` alone, for notes kept in a corpus (which must not carry the
/// importing machine's paths).
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// The `*.json` files among `inputs`: a file is taken as given, a directory contributes its
/// `*.json` files in name order. `what` names the format in the error when nothing is found.
/// Imports each JSON file of `inputs` (mainnet blocks, one or more per file) with
/// `import_file`; a file that fails is listed in the summary and the others go on.
pub(crate) fn import_json_files(
    inputs: &[PathBuf],
    what: &str,
    out: &Path,
    opts: &crate::ImportOptions,
    prov: txshadow_corpus::Provenance,
    import_file: impl Fn(&Path, &mut CorpusWriter, &mut crate::ImportSummary) -> Result<(), ImportError>,
) -> Result<crate::ImportSummary, ImportError> {
    let files = json_files(inputs, what)?;
    let mut w = CorpusWriter::create(
        out,
        txshadow_corpus::ChainConfig::mainnet(),
        prov,
        opts.overwrite,
    )?;
    let mut summary = crate::ImportSummary::default();
    for f in &files {
        if let Err(e) = import_file(f, &mut w, &mut summary) {
            summary.fail_input(f, e)?;
        }
    }
    w.finish()?;
    Ok(summary)
}

pub(crate) fn json_files(inputs: &[PathBuf], what: &str) -> Result<Vec<PathBuf>, ImportError> {
    let mut files = vec![];
    for input in inputs {
        if input.is_dir() {
            let rd = fs::read_dir(input).map_err(|source| ImportError::Io {
                path: input.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            return Err(ImportError::Io {
                path: input.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
    }
    if files.is_empty() {
        return Err(ImportError::source(
            inputs
                .first()
                .map(PathBuf::as_path)
                .unwrap_or(Path::new(".")),
            format!("no {what} file found (expected *.json)"),
        ));
    }
    Ok(files)
}

/// The state trie's encoding of an account.
pub(crate) fn trie_account_rlp(
    nonce: u64,
    balance: U256,
    storage_root: B256,
    code_hash: B256,
) -> Vec<u8> {
    alloy_rlp::encode(TrieAccount {
        nonce,
        balance,
        storage_root,
        code_hash,
    })
}

/// The storage trie's encoding of a slot value (`None` for zero: zero slots are not stored).
pub(crate) fn trie_slot_rlp(value: U256) -> Option<Vec<u8>> {
    (!value.is_zero()).then(|| alloy_rlp::encode(value))
}

/// Checks a Merkle-Patricia proof of `key` (unhashed: an address or a slot) against `root`:
/// `value` is the encoded leaf, or `None` for a proof that the key is absent.
pub(crate) fn verify_trie_proof(
    root: B256,
    key: &[u8],
    value: Option<Vec<u8>>,
    proof: &[Bytes],
) -> Result<(), String> {
    // real dumps carry empty `0x` entries in proofs (after the last node of a zero slot's
    // proof, and between nodes): no trie node is empty, so they are not part of the proof
    let proof: Vec<Bytes> = proof.iter().filter(|n| !n.is_empty()).cloned().collect();
    alloy_trie::proof::verify_proof(root, Nibbles::unpack(keccak256(key)), value, &proof)
        .map_err(|e| e.to_string())
}

/// Why [`TrieNodes::get`] cannot answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeError {
    /// A node on the key's path is not in the witness: the value is unproven, not wrong.
    Missing(B256),
    /// A node does not decode, or the trie's shape is invalid.
    Invalid(String),
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(h) => write!(f, "trie node {h} is not in the witness"),
            Self::Invalid(reason) => f.write_str(reason),
        }
    }
}

/// Trie nodes by hash (a state witness), to read accounts and slots under a known root.
#[derive(Debug, Default)]
pub(crate) struct TrieNodes {
    nodes: HashMap<B256, Bytes>,
}

impl TrieNodes {
    /// Indexes RLP-encoded trie nodes by their keccak.
    pub(crate) fn new(nodes: impl IntoIterator<Item = Bytes>) -> Self {
        Self {
            nodes: nodes.into_iter().map(|n| (keccak256(&n), n)).collect(),
        }
    }

    /// The leaf value stored under `keccak(key)` in the trie with root `root`: `Ok(None)` when
    /// the trie proves the key absent, [`NodeError::Missing`] when a node on the path is not in
    /// the witness.
    pub(crate) fn get(&self, root: B256, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        if root == EMPTY_ROOT_HASH {
            return Ok(None);
        }
        let path = Nibbles::unpack(keccak256(key));
        let mut at = 0usize;
        let mut node: RlpNode = RlpNode::word_rlp(&root);
        loop {
            let bytes: Vec<u8> = match node.as_hash() {
                Some(h) => self.nodes.get(&h).ok_or(NodeError::Missing(h))?.to_vec(),
                None => node.to_vec(),
            };
            let decoded = TrieNode::decode(&mut bytes.as_slice())
                .map_err(|e| NodeError::Invalid(format!("undecodable trie node: {e}")))?;
            match decoded {
                TrieNode::EmptyRoot => return Ok(None),
                TrieNode::Branch(b) => {
                    let Some(nibble) = path.get(at) else {
                        return Err(NodeError::Invalid("key ends at a branch node".into()));
                    };
                    let child = b
                        .as_ref()
                        .children()
                        .find(|(i, _)| *i == nibble)
                        .and_then(|(_, c)| c.cloned());
                    match child {
                        Some(c) => {
                            node = c;
                            at += 1;
                        }
                        None => return Ok(None),
                    }
                }
                TrieNode::Extension(e) => {
                    let rest = path.slice(at..);
                    if !rest.starts_with(&e.key) {
                        return Ok(None);
                    }
                    at += e.key.len();
                    node = e.child;
                }
                TrieNode::Leaf(l) => {
                    return Ok((path.slice(at..) == l.key).then_some(l.value));
                }
            }
        }
    }
}

/// Checks a block's transactions (as stored, EIP-2718 bytes; each against its recorded hash),
/// withdrawals and ommers against the roots its header commits to, so an importer that rebuilt
/// them from JSON fields kept them exact.
pub(crate) fn check_body_roots(rec: &BlockRecord) -> Result<(), String> {
    let h = &rec.header;
    for (i, t) in rec.transactions.iter().enumerate() {
        let got = keccak256(&t.raw);
        if got != t.hash {
            return Err(format!(
                "transaction {i}: its bytes hash to {got}, the source says {}",
                t.hash
            ));
        }
    }
    let raws: Vec<&[u8]> = rec.transactions.iter().map(|t| t.raw.as_ref()).collect();
    let tx_root =
        alloy_trie::root::ordered_trie_root_with_encoder(&raws, |r, buf| buf.extend_from_slice(r));
    if tx_root != h.transactions_root {
        return Err(format!(
            "the transactions hash to root {tx_root}, the header says {}",
            h.transactions_root
        ));
    }
    match (&rec.withdrawals, h.withdrawals_root) {
        (Some(w), Some(root)) => {
            let got = alloy_consensus::proofs::calculate_withdrawals_root(w);
            if got != root {
                return Err(format!(
                    "the withdrawals hash to root {got}, the header says {root}"
                ));
            }
        }
        (None, Some(_)) => {
            return Err("the header has a withdrawals root but no withdrawals".into());
        }
        (Some(w), None) if !w.is_empty() => {
            return Err("withdrawals in a block whose header has no withdrawals root".into());
        }
        _ => {}
    }
    if !rec.ommers.is_empty() {
        let got = alloy_consensus::proofs::calculate_ommers_root(&rec.ommers);
        if got != h.ommers_hash {
            return Err(format!(
                "the uncles hash to {got}, the header says {}",
                h.ommers_hash
            ));
        }
    }
    Ok(())
}
