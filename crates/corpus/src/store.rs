//! The on-disk format: a directory with a manifest, one JSON file per block and the codes (packed,
//! or one file per code until the writer packs them).
//!
//! ```text
//! <corpus>/manifest.json          format, version, chain, provenance, block index (+ sha256 each),
//!                                 CRC-32 of each code
//! <corpus>/blocks/<stem>.json     one BlockRecord
//! <corpus>/codes/pack-<id>.pack   contract codes, many per file (see [`crate::pack`])
//! <corpus>/codes/<keccak>.bin     contract code not yet packed (its name is its checksum)
//! <corpus>/codes/<keccak>.unavailable
//!                                 empty marker: the source gave this code hash without the code
//! ```
//!
//! A code is unavailable when the source never had it: a state witness carries the code of the
//! contracts a block runs, so a contract that only receives a withdrawal has its hash (in its
//! account) but not its bytes. Such a hash loads as unavailable rather than missing; a replay
//! that needs those bytes fails on that read, naming the hash.
//!
//! ## State witness (optional, per block)
//!
//! A block file may carry a `witness` ([`crate::Witness`]): the parent's header and the RLP trie
//! nodes (account trie and storage tries, each node once) of the parent state the block reads
//! and writes, as `eth_getProof` or `debug_executionWitness` give them. With it, a replay checks
//! every pre-state account and slot against the parent's state root and computes the real
//! post-block state root. The field is optional with a default, so format version 1 covers
//! corpora with and without witnesses: older files load unchanged, and a reader that predates
//! the field ignores it. `verify` checks that the witness's parent header hashes to the block's
//! parent hash; the nodes need no checksum of their own (they are found by their keccak, and the
//! block file's sha256 covers them).
//!
//! Every file is written atomically (temp file, fsync, rename). Every block file's sha256 is in the
//! manifest and the manifest carries a checksum of itself, so a changed or truncated file is an
//! error naming that file on load. A code file is checked on load against its CRC-32 in the
//! manifest (damage), and `verify` also hashes it with keccak (identity): re-hashing every code
//! with keccak on every load cost as much CPU as parsing all the block files.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use alloy_consensus::{TxEnvelope, transaction::SignerRecoverable};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{B256, Bytes, keccak256};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{BlockRecord, ChainConfig, CorpusError, Provenance};

/// Name of the format in the manifest.
pub const FORMAT_NAME: &str = "txshadow-corpus";
/// Current on-disk format version.
pub const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";

/// One block in the manifest's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// File name under `blocks/`.
    pub file: String,
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Number of transactions.
    pub txs: usize,
    /// Gas used by the block.
    pub gas_used: u64,
    /// sha256 of the file's bytes (`corpus verify` checks it).
    pub sha256: String,
    /// CRC-32 of the file's bytes: what a load checks, a fifth of the cost of sha256 on every
    /// replay. An entry without it (a corpus written before this field) is checked by sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<u32>,
    /// Label (fixture name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The corpus index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// On-disk format version.
    pub version: u32,
    /// The chain's id and schedule (blocks may override it).
    pub chain: ChainConfig,
    /// Where the data came from.
    pub provenance: Provenance,
    /// Blocks, sorted by number then hash.
    pub blocks: Vec<BlockEntry>,
    /// CRC-32 of each code file by its hash: a load checks a code with it instead of hashing
    /// the code again with keccak (`corpus verify` does both). A code missing here (a corpus
    /// written before this field) is checked with keccak.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub code_crc32: BTreeMap<B256, u32>,
    /// sha256 of this manifest serialised with `checksum: null`.
    #[serde(default)]
    pub checksum: Option<String>,
}

impl Manifest {
    fn digest(&self) -> String {
        let mut m = self.clone();
        m.checksum = None;
        hex_sha256(&serde_json::to_vec(&m).expect("manifest serialises"))
    }

    /// Total transactions.
    pub fn tx_count(&self) -> usize {
        self.blocks.iter().map(|b| b.txs).sum()
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CorpusError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let res = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    res.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        CorpusError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Code by hash, shared by every block of a run.
#[derive(Debug, Default, Clone)]
pub struct CodeStore {
    codes: HashMap<B256, Bytes>,
    analysed: HashMap<B256, crate::pack::Analysed>,
    unavailable: HashSet<B256>,
}

impl CodeStore {
    /// A packed code with the jump table the pack stores for it (see [`crate::pack`]).
    pub fn analysed(&self, hash: &B256) -> Option<&crate::pack::Analysed> {
        self.analysed.get(hash)
    }
    /// Whether the corpus records this hash as unavailable (its source did not have the code).
    pub fn is_unavailable(&self, hash: &B256) -> bool {
        self.unavailable.contains(hash)
    }
    /// Hashes whose code the source did not have.
    pub fn unavailable(&self) -> impl Iterator<Item = &B256> {
        self.unavailable.iter()
    }
    /// The hashes of the codes it holds.
    pub fn hashes(&self) -> impl Iterator<Item = B256> + '_ {
        self.codes.keys().copied()
    }
    /// Looks a code up.
    pub fn get(&self, hash: &B256) -> Option<&Bytes> {
        self.codes.get(hash)
    }
    /// Adds a code (its hash is computed).
    pub fn insert(&mut self, code: Bytes) -> B256 {
        let h = keccak256(&code);
        self.codes.insert(h, code);
        h
    }
    /// Number of codes.
    pub fn len(&self) -> usize {
        self.codes.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
    /// Total bytes of code.
    pub fn bytes(&self) -> usize {
        self.codes.values().map(|c| c.len()).sum()
    }
}

/// An opened corpus directory.
#[derive(Debug, Clone)]
pub struct Corpus {
    dir: PathBuf,
    manifest: Manifest,
}

impl Corpus {
    /// Opens a corpus: reads and checks the manifest (format, version, checksum).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, CorpusError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(MANIFEST);
        if !path.exists() {
            return Err(CorpusError::NotACorpus { path: dir });
        }
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| CorpusError::Json {
                path: path.clone(),
                source,
            })?;
        if manifest.format != FORMAT_NAME {
            return Err(CorpusError::Invalid {
                path,
                reason: format!("format is {:?}, expected {FORMAT_NAME:?}", manifest.format),
            });
        }
        if manifest.version != FORMAT_VERSION {
            return Err(CorpusError::Version {
                path,
                found: manifest.version,
                supported: FORMAT_VERSION,
            });
        }
        let want = manifest.digest();
        if manifest.checksum.as_deref() != Some(want.as_str()) {
            return Err(CorpusError::Checksum {
                path,
                expected: manifest.checksum.unwrap_or_default(),
                got: want,
            });
        }
        Ok(Self { dir, manifest })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub const fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Path of a block file.
    pub fn block_path(&self, entry: &BlockEntry) -> PathBuf {
        self.dir.join("blocks").join(&entry.file)
    }

    /// Loads one block, checking its bytes (CRC-32, or sha256 when the manifest records no
    /// CRC-32) and basic consistency.
    pub fn load_block(&self, entry: &BlockEntry) -> Result<BlockRecord, CorpusError> {
        self.load_block_checked(entry, false)
    }

    /// [`Self::load_block`]; with `full`, the sha256 is checked even when a CRC-32 is recorded.
    fn load_block_checked(
        &self,
        entry: &BlockEntry,
        full: bool,
    ) -> Result<BlockRecord, CorpusError> {
        let path = self.block_path(entry);
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        if let Some(want) = entry.crc32 {
            let got = crc32fast::hash(&bytes);
            if got != want {
                return Err(CorpusError::Checksum {
                    path,
                    expected: format!("crc32 {want:08x}"),
                    got: format!("crc32 {got:08x}"),
                });
            }
        }
        if entry.crc32.is_none() || full {
            let got = hex_sha256(&bytes);
            if got != entry.sha256 {
                return Err(CorpusError::Checksum {
                    path,
                    expected: entry.sha256.clone(),
                    got,
                });
            }
        }
        // one UTF-8 check of the whole file: `from_slice` checks each string on its own, which
        // was a tenth of the parse
        let text = std::str::from_utf8(&bytes).map_err(|e| CorpusError::Invalid {
            path: path.clone(),
            reason: format!(
                "not UTF-8 text ({e}): the file is damaged; re-capture or re-import it"
            ),
        })?;
        let block: BlockRecord =
            serde_json::from_str(text).map_err(|source| CorpusError::Json {
                path: path.clone(),
                source,
            })?;
        if block.hash != entry.hash
            || block.number() != entry.number
            || block.transactions.len() != entry.txs
        {
            return Err(CorpusError::Invalid {
                path,
                reason: "block does not match its manifest entry (number, hash or tx count)".into(),
            });
        }
        Ok(block)
    }

    /// Loads every block (in parallel), in manifest order.
    pub fn load_blocks(&self) -> Result<Vec<BlockRecord>, CorpusError> {
        self.manifest
            .blocks
            .par_iter()
            .map(|e| self.load_block(e))
            .collect()
    }

    /// Loads the codes the given blocks refer to, checking each against the CRC-32 the
    /// manifest records for it (against its keccak hash when the manifest has none).
    pub fn load_codes<'a>(
        &self,
        blocks: impl IntoIterator<Item = &'a BlockRecord>,
    ) -> Result<CodeStore, CorpusError> {
        self.load_codes_checked(blocks, false)
    }

    /// [`Self::load_codes`]; with `full`, every code is also hashed with keccak.
    fn load_codes_checked<'a>(
        &self,
        blocks: impl IntoIterator<Item = &'a BlockRecord>,
        full: bool,
    ) -> Result<CodeStore, CorpusError> {
        let mut need: HashSet<B256> = HashSet::new();
        for b in blocks {
            need.extend(b.code_hashes());
        }
        let need: Vec<B256> = need.into_iter().collect();
        let packs = crate::pack::open_packs(&self.dir)?;
        let loaded = need
            .par_iter()
            .map(|h| {
                if let Some((pack, entry)) = packs.iter().find_map(|p| Some((p, p.get(h)?))) {
                    let code = entry.code();
                    let crc = self.manifest.code_crc32.get(h).copied();
                    check_code(pack.path(), h, &code, crc, full)?;
                    let analysed = check_analysis(pack.path(), h, &entry, full)?;
                    return Ok((*h, Some((code, analysed))));
                }
                let path = self.code_path(h);
                let bytes = match fs::read(&path) {
                    Err(e)
                        if e.kind() == std::io::ErrorKind::NotFound
                            && unavailable_path(&self.dir, h).exists() =>
                    {
                        return Ok((*h, None));
                    }
                    r => r,
                };
                let bytes = bytes.map_err(|source| {
                    if source.kind() == std::io::ErrorKind::NotFound {
                        CorpusError::MissingCode {
                            hash: *h,
                            path: path.clone(),
                        }
                    } else {
                        CorpusError::Io {
                            path: path.clone(),
                            source,
                        }
                    }
                })?;
                let crc = self.manifest.code_crc32.get(h).copied();
                check_code(&path, h, &bytes, crc, full)?;
                Ok((*h, Some((Bytes::from(bytes), None))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut store = CodeStore::default();
        for (h, code) in loaded {
            match code {
                Some((c, analysed)) => {
                    store.codes.insert(h, c);
                    if let Some(a) = analysed {
                        store.analysed.insert(h, a);
                    }
                }
                None => {
                    store.unavailable.insert(h);
                }
            }
        }
        Ok(store)
    }

    fn code_path(&self, h: &B256) -> PathBuf {
        code_path(&self.dir, h)
    }

    /// Full check of every file: checksums, header hashes, tx hashes and senders, code hashes,
    /// and that every referenced code is present. Returns the number of blocks checked.
    pub fn verify(&self) -> Result<VerifySummary, CorpusError> {
        let blocks = self
            .manifest
            .blocks
            .par_iter()
            .map(|e| self.load_block_checked(e, true))
            .collect::<Result<Vec<_>, _>>()?;
        let codes = self.load_codes_checked(&blocks, true)?;
        let txs: usize = blocks
            .par_iter()
            .zip(self.manifest.blocks.par_iter())
            .map(|(b, e)| verify_block(b, &self.block_path(e)))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .sum();
        // stray codes (loose or packed) are fine; damaged ones are not
        let mut extra: HashSet<B256> = HashSet::new();
        for pack in crate::pack::open_packs(&self.dir)? {
            for h in pack.hashes() {
                if codes.get(h).is_none() {
                    let entry = pack.get(h).expect("listed in the pack");
                    check_code(pack.path(), h, &entry.code(), None, true)?;
                    check_analysis(pack.path(), h, &entry, true)?;
                    extra.insert(*h);
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.dir.join("codes")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let Some(hex) = name.strip_suffix(".bin") else {
                    continue;
                };
                let Ok(h) = hex.parse::<B256>() else { continue };
                if codes.get(&h).is_none() {
                    let bytes = fs::read(e.path()).map_err(io_err(&e.path()))?;
                    check_code(&e.path(), &h, &bytes, None, true)?;
                    extra.insert(h);
                }
            }
        }
        Ok(VerifySummary {
            blocks: blocks.len(),
            txs,
            codes: codes.len() + extra.len(),
        })
    }
}

/// Checks a packed code's padding and jump table against the CRC-32 in the pack's index and
/// returns the analysed code; on a `full` check, also that the table is the one revm's analysis
/// gives the code now.
fn check_analysis(
    path: &Path,
    h: &B256,
    entry: &crate::pack::Entry,
    full: bool,
) -> Result<Option<crate::pack::Analysed>, CorpusError> {
    let got = crc32fast::hash(entry.tail());
    if got != entry.tail_crc {
        return Err(CorpusError::Checksum {
            path: path.to_path_buf(),
            expected: format!(
                "crc32 {:08x} for the jump table of code {h}",
                entry.tail_crc
            ),
            got: format!("crc32 {got:08x}"),
        });
    }
    let analysed = entry.analysed();
    if full {
        let stored = analysed.as_ref().map(|a| a.jump_table.to_vec());
        if stored != crate::pack::jump_table(&entry.code()) {
            return Err(CorpusError::Invalid {
                path: path.to_path_buf(),
                reason: format!(
                    "the jump table stored for code {h} is not the one revm's analysis gives it; \
                     re-import or re-capture this corpus"
                ),
            });
        }
    }
    Ok(analysed)
}

/// Checks a code file's bytes: with the manifest's CRC-32 when it has one (a fast check against
/// damage), and with keccak when it has none or on a `full` check (the code's identity).
fn check_code(
    path: &Path,
    h: &B256,
    bytes: &[u8],
    crc: Option<u32>,
    full: bool,
) -> Result<(), CorpusError> {
    if let Some(crc) = crc {
        let got = crc32fast::hash(bytes);
        if got != crc {
            return Err(CorpusError::Checksum {
                path: path.to_path_buf(),
                expected: format!("crc32 {crc:08x} for code {h}"),
                got: format!("crc32 {got:08x}"),
            });
        }
    }
    if crc.is_none() || full {
        let got = keccak256(bytes);
        if got != *h {
            return Err(CorpusError::Checksum {
                path: path.to_path_buf(),
                expected: h.to_string(),
                got: got.to_string(),
            });
        }
    }
    Ok(())
}

/// What `verify` checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifySummary {
    /// Blocks checked.
    pub blocks: usize,
    /// Transactions checked.
    pub txs: usize,
    /// Codes checked.
    pub codes: usize,
}

fn verify_block(b: &BlockRecord, path: &Path) -> Result<usize, CorpusError> {
    let invalid = |reason: String| CorpusError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    if !b.synthetic {
        let h = b.header.hash_slow();
        if h != b.hash {
            return Err(invalid(format!(
                "header hashes to {h}, block says {}",
                b.hash
            )));
        }
    }
    if let Some(w) = &b.witness
        && !b.synthetic
    {
        let h = w.parent.hash_slow();
        if h != b.header.parent_hash {
            return Err(invalid(format!(
                "the witness's parent header hashes to {h}, the block's parent hash is {}",
                b.header.parent_hash
            )));
        }
    }
    for (i, tx) in b.transactions.iter().enumerate() {
        let env = decode_tx(&tx.raw).map_err(|e| invalid(format!("tx {i} ({}): {e}", tx.hash)))?;
        if *env.tx_hash() != tx.hash {
            return Err(invalid(format!(
                "tx {i}: raw bytes hash to {}, recorded {}",
                env.tx_hash(),
                tx.hash
            )));
        }
        let from = env
            .recover_signer()
            .map_err(|e| invalid(format!("tx {i} ({}): cannot recover sender: {e}", tx.hash)))?;
        if from != tx.from {
            return Err(invalid(format!(
                "tx {i} ({}): signer is {from}, recorded {}",
                tx.hash, tx.from
            )));
        }
    }
    Ok(b.transactions.len())
}

/// Decodes an EIP-2718 transaction, naming an unknown type.
pub fn decode_tx(raw: &[u8]) -> Result<TxEnvelope, String> {
    let mut buf = raw;
    let env = TxEnvelope::decode_2718(&mut buf).map_err(|e| match raw.first() {
        Some(t) if *t < 0x7f && *t > 4 => format!("unsupported transaction type 0x{t:02x}: {e}"),
        _ => format!("cannot decode transaction: {e}"),
    })?;
    if !buf.is_empty() {
        return Err(format!(
            "{} trailing bytes after the transaction",
            buf.len()
        ));
    }
    Ok(env)
}

fn code_path(dir: &Path, h: &B256) -> PathBuf {
    dir.join("codes").join(format!("{h:x}.bin"))
}

/// The hashes of the files `<dir>/codes/<keccak><suffix>`.
fn codes_with(dir: &Path, suffix: &str) -> HashSet<B256> {
    fs::read_dir(dir.join("codes"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_suffix(suffix)?
                        .parse::<B256>()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn unavailable_path(dir: &Path, h: &B256) -> PathBuf {
    dir.join("codes").join(format!("{h:x}.unavailable"))
}

/// Builds or resumes a corpus. Blocks are written one at a time; the manifest is rewritten after
/// each ([`Self::put_block`]), or when the writer says so ([`Self::put_block_deferred`] then
/// [`Self::write_manifest`]), so an interrupted writer leaves a valid corpus of the blocks it
/// indexed.
#[derive(Debug)]
pub struct CorpusWriter {
    dir: PathBuf,
    manifest: Manifest,
    known_codes: HashSet<B256>,
    unavailable_codes: HashSet<B256>,
    /// Hashes and file names of the indexed blocks (fast `has_block`).
    block_hashes: HashSet<B256>,
    block_files: HashSet<String>,
    /// The index needs sorting before it is written.
    unsorted: bool,
}

impl CorpusWriter {
    /// Creates a corpus in `dir`, or resumes the one there. With `overwrite`, the existing index
    /// is discarded. An existing corpus of another chain is an error.
    pub fn create(
        dir: impl AsRef<Path>,
        chain: ChainConfig,
        provenance: Provenance,
        overwrite: bool,
    ) -> Result<Self, CorpusError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(dir.join("blocks")).map_err(io_err(&dir))?;
        fs::create_dir_all(dir.join("codes")).map_err(io_err(&dir))?;
        let mut manifest = Manifest {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            chain: chain.clone(),
            provenance,
            blocks: vec![],
            code_crc32: BTreeMap::new(),
            checksum: None,
        };
        if dir.join(MANIFEST).exists() && !overwrite {
            let existing = Corpus::open(&dir)?;
            if existing.manifest.chain.chain_id != chain.chain_id {
                return Err(CorpusError::Invalid {
                    path: dir.join(MANIFEST),
                    reason: format!(
                        "existing corpus is for chain {}, not {}; use another --out or --overwrite",
                        existing.manifest.chain.chain_id, chain.chain_id
                    ),
                });
            }
            manifest.code_crc32 = existing.manifest.code_crc32;
            // keep only entries whose file is intact
            for mut e in existing.manifest.blocks {
                let p = dir.join("blocks").join(&e.file);
                if let Ok(b) = fs::read(&p)
                    && hex_sha256(&b) == e.sha256
                {
                    e.crc32 = Some(crc32fast::hash(&b));
                    manifest.blocks.push(e);
                }
            }
        }
        let mut known_codes = codes_with(&dir, ".bin");
        for pack in crate::pack::open_packs(&dir)? {
            known_codes.extend(pack.hashes().copied());
        }
        let unavailable_codes = codes_with(&dir, ".unavailable");
        let block_hashes = manifest.blocks.iter().map(|b| b.hash).collect();
        let block_files = manifest.blocks.iter().map(|b| b.file.clone()).collect();
        let mut w = Self {
            dir,
            manifest,
            known_codes,
            unavailable_codes,
            block_hashes,
            block_files,
            unsorted: false,
        };
        w.write_manifest()?;
        Ok(w)
    }

    /// Whether a block with this hash is already complete.
    pub fn has_block(&self, hash: &B256) -> bool {
        self.block_hashes.contains(hash)
    }

    /// The manifest as written so far.
    pub const fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Adds notes to the provenance.
    pub fn add_note(&mut self, note: impl Into<String>) {
        self.manifest.provenance.notes.push(note.into());
    }

    /// Updates provenance fields and rewrites the manifest.
    pub fn set_provenance(&mut self, p: Provenance) -> Result<(), CorpusError> {
        self.manifest.provenance = p;
        self.write_manifest()
    }

    /// Writes a code (once per hash). Returns its hash.
    pub fn put_code(&mut self, code: &[u8]) -> Result<B256, CorpusError> {
        let h = keccak256(code);
        if h != alloy_primitives::KECCAK256_EMPTY && self.known_codes.insert(h) {
            let p = code_path(&self.dir, &h);
            write_atomic(&p, code)?;
        }
        if h != alloy_primitives::KECCAK256_EMPTY {
            self.manifest
                .code_crc32
                .entry(h)
                .or_insert_with(|| crc32fast::hash(code));
        }
        Ok(h)
    }

    /// Whether a code is stored.
    pub fn has_code(&self, h: &B256) -> bool {
        self.known_codes.contains(h)
    }

    /// Records that the source gives code hash `h` without the code (see the module docs). A
    /// block may then refer to `h`; a replay fails only if it needs the bytes.
    pub fn put_code_unavailable(&mut self, h: B256) -> Result<(), CorpusError> {
        if h != alloy_primitives::KECCAK256_EMPTY
            && !self.known_codes.contains(&h)
            && self.unavailable_codes.insert(h)
        {
            write_atomic(&unavailable_path(&self.dir, &h), b"")?;
        }
        Ok(())
    }

    /// Writes a block (its codes must have been put first) and updates the manifest.
    pub fn put_block(&mut self, block: &BlockRecord) -> Result<(), CorpusError> {
        self.put_block_deferred(block)?;
        self.write_manifest()
    }

    /// Writes a block file (its codes must have been put first) and adds it to the index in
    /// memory only: it is part of the corpus on disk once [`Self::write_manifest`] or
    /// [`Self::finish`] has run. A writer of many blocks indexes them in batches instead of
    /// rewriting a growing manifest per block; if it is killed, the blocks it had not indexed
    /// are simply missing (a resumed capture writes them again).
    pub fn put_block_deferred(&mut self, block: &BlockRecord) -> Result<(), CorpusError> {
        for h in block.code_hashes() {
            if !self.known_codes.contains(&h) && !self.unavailable_codes.contains(&h) {
                return Err(CorpusError::MissingCode {
                    hash: h,
                    path: code_path(&self.dir, &h),
                });
            }
        }
        let file = format!("{}.json", block.file_stem());
        let bytes = serde_json::to_vec(block).expect("block serialises");
        write_atomic(&self.dir.join("blocks").join(&file), &bytes)?;
        if self.block_files.contains(&file) {
            let hashes = &mut self.block_hashes;
            self.manifest.blocks.retain(|b| {
                let keep = b.file != file;
                if !keep {
                    hashes.remove(&b.hash);
                }
                keep
            });
        }
        self.block_hashes.insert(block.hash);
        self.block_files.insert(file.clone());
        self.manifest.blocks.push(BlockEntry {
            file,
            number: block.number(),
            hash: block.hash,
            txs: block.transactions.len(),
            gas_used: block.gas_used(),
            sha256: hex_sha256(&bytes),
            crc32: Some(crc32fast::hash(&bytes)),
            label: block.label.clone(),
        });
        self.unsorted = true;
        Ok(())
    }

    /// Rewrites the manifest atomically.
    pub fn write_manifest(&mut self) -> Result<(), CorpusError> {
        if self.unsorted {
            self.manifest
                .blocks
                .sort_by(|a, b| (a.number, &a.file).cmp(&(b.number, &b.file)));
            self.unsorted = false;
        }
        self.manifest.checksum = None;
        self.manifest.checksum = Some(self.manifest.digest());
        let bytes = serde_json::to_vec_pretty(&self.manifest).expect("manifest serialises");
        write_atomic(&self.dir.join(MANIFEST), &bytes)
    }

    /// Finishes: rewrites the manifest, packs the codes written as loose files (see
    /// [`crate::pack`]) and returns the opened corpus.
    pub fn finish(mut self) -> Result<Corpus, CorpusError> {
        self.write_manifest()?;
        self.pack_loose_codes()?;
        Corpus::open(&self.dir)
    }

    /// Moves the loose code files into one new pack: the pack is written (atomically) before
    /// any loose file is removed, so an interruption leaves every code readable. A loose file
    /// whose bytes do not match the manifest's CRC-32 (or, without one, its keccak) is left
    /// where it is for the load to name. Returns the number of codes packed.
    pub fn pack_loose_codes(&mut self) -> Result<usize, CorpusError> {
        let packed: HashSet<B256> = crate::pack::open_packs(&self.dir)?
            .iter()
            .flat_map(|p| p.hashes().copied().collect::<Vec<_>>())
            .collect();
        let mut loose = Vec::new();
        let mut redundant = Vec::new();
        for h in &codes_with(&self.dir, ".bin") {
            let path = code_path(&self.dir, h);
            if packed.contains(h) {
                redundant.push(path);
                continue;
            }
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(CorpusError::Io { path, source }),
            };
            let crc = self.manifest.code_crc32.get(h).copied();
            if check_code(&path, h, &bytes, crc, false).is_ok() {
                loose.push((path, *h, Bytes::from(bytes)));
            }
        }
        if !loose.is_empty() {
            let mut codes: Vec<(B256, Bytes)> =
                loose.iter().map(|(_, h, c)| (*h, c.clone())).collect();
            crate::pack::write_pack(&self.dir, &mut codes)?;
        }
        let n = loose.len();
        for path in loose.into_iter().map(|(p, _, _)| p).chain(redundant) {
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(n)
    }
}

/// Shared, immutable code store handle.
pub type SharedCodes = Arc<CodeStore>;

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u64) -> BlockRecord {
        let header = alloy_consensus::Header {
            number: n,
            ..Default::default()
        };
        serde_json::from_value(serde_json::json!({
            "hash": header.hash_slow(),
            "header": header,
            "transactions": [],
            "pre_state": {},
        }))
        .expect("a block")
    }

    /// A mainnet corpus writer at `dir`, resuming what is there.
    fn writer(dir: &Path) -> CorpusWriter {
        CorpusWriter::create(dir, ChainConfig::mainnet(), Provenance::default(), false).unwrap()
    }

    #[test]
    fn deferred_blocks_are_indexed_when_the_manifest_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let create = || writer(dir.path());
        let mut w = create();
        w.put_block_deferred(&block(2)).unwrap();
        w.put_block_deferred(&block(1)).unwrap();
        w.put_block_deferred(&block(1)).unwrap();
        assert!(w.has_block(&block(1).hash));
        // written, not yet indexed on disk
        assert!(
            Corpus::open(dir.path())
                .unwrap()
                .manifest()
                .blocks
                .is_empty()
        );
        w.write_manifest().unwrap();
        let c = Corpus::open(dir.path()).unwrap();
        let numbers: Vec<u64> = c.manifest().blocks.iter().map(|b| b.number).collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!(c.verify().unwrap().blocks, 2);
        // a resumed writer knows them
        let mut w = create();
        assert!(w.has_block(&block(2).hash) && !w.has_block(&block(3).hash));
        w.put_block(&block(3)).unwrap();
        assert_eq!(Corpus::open(dir.path()).unwrap().manifest().blocks.len(), 3);
    }

    /// An account holding code `h`.
    fn with_code(n: u64, h: B256) -> BlockRecord {
        let mut b = block(n);
        b.pre_state.insert(
            alloy_primitives::Address::repeat_byte(n as u8),
            Some(crate::AccountState {
                code_hash: h,
                ..Default::default()
            }),
        );
        b
    }

    #[test]
    fn a_damaged_code_fails_the_load_naming_its_file_and_hash() {
        // a loose code file (a writer that did not finish) and a packed code
        for packed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = writer(dir.path());
            let code = [0x60u8, 0x01, 0x60, 0x02, 0x01, 0x00];
            let h = w.put_code(&code).unwrap();
            w.put_block(&with_code(1, h)).unwrap();
            let c = if packed {
                w.finish().unwrap()
            } else {
                drop(w);
                Corpus::open(dir.path()).unwrap()
            };
            assert_eq!(c.manifest().code_crc32[&h], crc32fast::hash(&code));
            let blocks = c.load_blocks().unwrap();
            assert_eq!(c.load_codes(&blocks).unwrap().get(&h).unwrap()[..], code);
            let loose = code_path(dir.path(), &h);
            assert_eq!(loose.exists(), !packed);
            let (path, at) = if packed {
                let pack = crate::pack::pack_paths(dir.path()).remove(0);
                let at = fs::read(&pack)
                    .unwrap()
                    .windows(code.len())
                    .position(|w| w == code)
                    .unwrap();
                (pack, at)
            } else {
                (loose, 0)
            };
            // the same length, one byte changed: the CRC catches it on load, keccak on verify
            let mut bytes = fs::read(&path).unwrap();
            assert_eq!(bytes[at..at + code.len()], code);
            bytes[at + 1] = 0x09;
            fs::write(&path, &bytes).unwrap();
            let mut bad = code;
            bad[1] = 0x09;
            let named = |e: CorpusError| {
                let msg = e.to_string();
                assert!(
                    msg.contains(&path.display().to_string()) && msg.contains(&h.to_string()),
                    "{msg}"
                );
                msg
            };
            assert!(named(c.load_codes(&blocks).unwrap_err()).contains("crc32"));
            named(c.verify().unwrap_err());
            // a corpus written before the CRCs: keccak on load
            let mut old = Corpus::open(dir.path()).unwrap();
            old.manifest.code_crc32.clear();
            named(old.load_codes(&blocks).unwrap_err());
            // a CRC that matches the damaged bytes passes the load; verify's keccak still fails
            old.manifest.code_crc32.insert(h, crc32fast::hash(&bad));
            assert!(old.load_codes(&blocks).is_ok());
            let msg = named(old.verify().unwrap_err());
            assert!(!msg.contains("crc32"), "{msg}");

            if packed {
                // the jump table behind the code (after 33 zero bytes; no JUMPDEST in it)
                bytes[at + 1] = code[1];
                let table = at + code.len() + crate::pack::PADDING;
                assert_eq!(bytes[table], 0x00);
                bytes[table] = 0x01;
                fs::write(&path, &bytes).unwrap();
                let msg = named(c.load_codes(&blocks).unwrap_err());
                assert!(msg.contains("jump table"), "{msg}");
                // with the index's CRC-32 made to match, the load takes it; verify does not
                let tail = crc32fast::hash(&bytes[at + code.len()..table + 1]);
                bytes[16 + 48..16 + 52].copy_from_slice(&tail.to_le_bytes());
                fs::write(&path, &bytes).unwrap();
                let a = c.load_codes(&blocks).unwrap().analysed(&h).unwrap().clone();
                assert_eq!(a.jump_table[..], [0x01]);
                let msg = named(c.verify().unwrap_err());
                assert!(msg.contains("revm's analysis"), "{msg}");
            }
        }
    }

    #[test]
    fn codes_are_packed_when_the_writer_finishes_and_a_resumed_writer_knows_them() {
        let dir = tempfile::tempdir().unwrap();
        let loose = |dir: &Path| {
            fs::read_dir(dir.join("codes"))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".bin"))
                .count()
        };
        let mut w = writer(dir.path());
        let (a, b) = (
            w.put_code(&[0x5b; 3]).unwrap(),
            w.put_code(&[0x00]).unwrap(),
        );
        w.put_block(&with_code(1, a)).unwrap();
        w.put_block(&with_code(2, b)).unwrap();
        assert_eq!(loose(dir.path()), 2);
        let c = w.finish().unwrap();
        assert_eq!(loose(dir.path()), 0);
        assert_eq!(crate::pack::pack_paths(dir.path()).len(), 1);
        let codes = c.load_codes(&c.load_blocks().unwrap()).unwrap();
        assert_eq!(codes.get(&a).unwrap()[..], [0x5b; 3]);
        assert_eq!(codes.get(&b).unwrap()[..], [0x00]);

        // resumed: a packed code is known (not written again); a new one is packed apart; a
        // loose copy of a packed code (a writer killed between packing and removing) goes
        let mut w = writer(dir.path());
        assert!(w.has_code(&a));
        w.put_code(&[0x5b; 3]).unwrap();
        assert_eq!(loose(dir.path()), 0);
        let n = w.put_code(&[0x60, 0x00]).unwrap();
        w.put_block(&with_code(3, n)).unwrap();
        fs::write(code_path(dir.path(), &b), [0x00]).unwrap();
        assert_eq!(w.pack_loose_codes().unwrap(), 1);
        assert_eq!(loose(dir.path()), 0);
        let c = w.finish().unwrap();
        assert_eq!(crate::pack::pack_paths(dir.path()).len(), 2);
        let v = c.verify().unwrap();
        assert_eq!((v.blocks, v.codes), (3, 3));
    }

    #[test]
    fn a_damaged_block_file_fails_the_load_by_crc_and_verify_by_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        w.put_block(&block(5)).unwrap();
        let c = w.finish().unwrap();
        let entry = c.manifest().blocks[0].clone();
        let path = c.block_path(&entry);
        let good = fs::read(&path).unwrap();
        assert_eq!(entry.crc32, Some(crc32fast::hash(&good)));
        assert_eq!(c.load_blocks().unwrap().len(), 1);
        // one byte of the file changed (still valid JSON): the CRC names the file on load
        let bad = String::from_utf8(good.clone()).unwrap().replacen(
            "\"transactions\":[]",
            "\"transactions\":[ ]",
            1,
        );
        assert_ne!(bad.as_bytes(), &good[..], "the edit applies");
        fs::write(&path, &bad).unwrap();
        let msg = c.load_blocks().unwrap_err().to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("crc32"),
            "{msg}"
        );
        // a CRC matching the changed bytes passes the load; verify still checks the sha256
        let mut old = Corpus::open(dir.path()).unwrap();
        old.manifest.blocks[0].crc32 = Some(crc32fast::hash(bad.as_bytes()));
        assert!(old.load_blocks().is_ok());
        let msg = old.verify().unwrap_err().to_string();
        assert!(msg.contains(&entry.sha256), "{msg}");
        // bytes that are not UTF-8 (behind a matching CRC): named as such
        let mut binary = good.clone();
        let at = binary.len() / 2;
        binary[at] = 0xff;
        fs::write(&path, &binary).unwrap();
        old.manifest.blocks[0].crc32 = Some(crc32fast::hash(&binary));
        let msg = old.load_blocks().unwrap_err().to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("not UTF-8"),
            "{msg}"
        );
        fs::write(&path, &bad).unwrap();
        // a corpus written before the CRCs: sha256 on load
        old.manifest.blocks[0].crc32 = None;
        let msg = old.load_blocks().unwrap_err().to_string();
        assert!(msg.contains(&entry.sha256), "{msg}");
        // a resumed writer re-indexes intact files with their CRC
        fs::write(&path, &good).unwrap();
        let mut m = Corpus::open(dir.path()).unwrap().manifest;
        m.blocks[0].crc32 = None;
        m.checksum = Some(m.digest());
        fs::write(dir.path().join(MANIFEST), serde_json::to_vec(&m).unwrap()).unwrap();
        let w = writer(dir.path());
        assert_eq!(w.manifest().blocks[0].crc32, entry.crc32);
    }
}
