//! Writing a corpus: blocks, codes and the manifest, each written atomically.

use std::{
    collections::{BTreeMap, HashSet},
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use alloy_primitives::{B256, Bytes, keccak256};

use crate::{
    BlockRecord, ChainConfig, CodeStore, Corpus, CorpusError, Provenance,
    codes::{check_code, code_path, codes_with, unavailable_path},
    fsutil::{hex_sha256, io_err, write_atomic},
    manifest::{BlockEntry, FORMAT_NAME, FORMAT_VERSION, MANIFEST, Manifest},
};

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
    /// Hashes and file stems of the indexed blocks (fast `has_block`).
    block_hashes: HashSet<B256>,
    block_files: HashSet<String>,
    /// Block files of an older encoding replaced by new ones, removed once the manifest that
    /// no longer names them is written.
    stale_files: Vec<String>,
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
        let block_files = manifest
            .blocks
            .iter()
            .map(|b| file_stem(&b.file).to_string())
            .collect();
        let mut w = Self {
            dir,
            manifest,
            known_codes,
            unavailable_codes,
            block_hashes,
            block_files,
            stale_files: vec![],
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
        let stem = block.file_stem();
        let file = format!("{stem}.bin");
        let bytes = crate::binary::encode_block(block);
        write_atomic(&self.dir.join("blocks").join(&file), &bytes)?;
        if self.block_files.contains(&stem) {
            // the block is written again (a resumed writer, sealing): its entry is replaced, and
            // a file of the older encoding goes once the manifest no longer names it
            let hashes = &mut self.block_hashes;
            let stale = &mut self.stale_files;
            self.manifest.blocks.retain(|b| {
                let keep = file_stem(&b.file) != stem;
                if !keep {
                    hashes.remove(&b.hash);
                    if b.file != file {
                        stale.push(b.file.clone());
                    }
                }
                keep
            });
        }
        self.block_hashes.insert(block.hash);
        self.block_files.insert(stem);
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
        write_atomic(&self.dir.join(MANIFEST), &bytes)?;
        for f in self.stale_files.drain(..) {
            let p = self.dir.join("blocks").join(f);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(CorpusError::Io { path: p, source }),
            }
        }
        Ok(())
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
            crate::pack::write_pack(&self.dir, &mut codes, false)?;
        }
        let n = loose.len();
        for path in loose.into_iter().map(|(p, _, _)| p).chain(redundant) {
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(n)
    }
}

/// How [`pack_corpus`] stores a corpus's packed codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeStorage {
    /// As they are: a replay reads each code in place in the mapped pack (the default, and
    /// what import and capture write).
    Mapped,
    /// Each code LZ4-compressed where that is smaller: about half the bytes on disk, each code
    /// a run uses decompressed once (see [`crate::pack`]).
    Compressed,
}

impl std::str::FromStr for CodeStorage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mapped" => Ok(Self::Mapped),
            "compressed" => Ok(Self::Compressed),
            _ => Err(format!("`{s}` is not a code storage: mapped or compressed")),
        }
    }
}

/// What [`pack_corpus`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackSummary {
    /// Loose code files moved into a pack.
    pub codes: usize,
    /// JSON block files rewritten in the current binary encoding.
    pub json_blocks: usize,
    /// Binary block files of an older encoding version rewritten in the current one.
    pub older_blocks: usize,
    /// Packed codes written again into one pack in the storage asked for (0 when none was).
    pub repacked: usize,
    /// The packs' codes and bytes when it finished.
    pub packs: crate::pack::PackSizes,
}

/// Rewrites a corpus in the current encodings: loose codes into a pack, JSON block files and
/// binary ones of an older version ([`crate::binary::BLOCK_ENCODING_VERSION`]) into current
/// binary files. Each block is loaded with its checks before it is written again; the
/// manifest names the new file before the old one is removed, so an interruption loses
/// nothing and a second run finishes the job. With `codes`, every packed code is also written
/// again, into one pack stored that way (each code checked as it is read; the old packs are
/// removed once the new one is in place).
pub fn pack_corpus(dir: &Path, codes: Option<CodeStorage>) -> Result<PackSummary, CorpusError> {
    let c = Corpus::open(dir)?;
    let m = c.manifest();
    let mut w = CorpusWriter::create(dir, m.chain.clone(), m.provenance.clone(), false)?;
    let mut done = PackSummary {
        codes: w.pack_loose_codes()?,
        ..Default::default()
    };
    if let Some(storage) = codes {
        done.repacked = repack_codes(dir, &m.code_crc32, storage)?;
    }
    for e in &m.blocks {
        match crate::binary::file_encoding_version(&c.block_path(e))? {
            None => done.json_blocks += 1,
            Some(v) if v < crate::binary::BLOCK_ENCODING_VERSION => done.older_blocks += 1,
            Some(_) => continue,
        }
        w.put_block_deferred(&c.load_block(e)?)?;
    }
    w.finish()?;
    done.packs = pack_sizes(dir)?;
    Ok(done)
}

/// The codes and bytes of a corpus's packs, all together.
pub fn pack_sizes(dir: &Path) -> Result<crate::pack::PackSizes, CorpusError> {
    Ok(crate::pack::open_packs(dir)?
        .iter()
        .map(|p| p.sizes())
        .sum())
}

/// Writes every packed code of `dir` into one new pack stored as `storage` asks, each checked
/// as it is read (against the manifest's CRC-32, or its keccak, and its table's CRC-32), then
/// removes the packs it replaces. Returns the number of codes written.
fn repack_codes(
    dir: &Path,
    crc32: &BTreeMap<B256, u32>,
    storage: CodeStorage,
) -> Result<usize, CorpusError> {
    let old = crate::pack::pack_paths(dir);
    let packs = crate::pack::open_packs(dir)?;
    let mut seen = HashSet::new();
    let mut codes = Vec::new();
    for p in &packs {
        for h in p.hashes() {
            if !seen.insert(*h) {
                continue;
            }
            let e = p.get(h)?.expect("listed in the pack");
            check_code(p.path(), h, &e.code(), crc32.get(h).copied(), false)?;
            crate::codes::check_analysis(p.path(), h, &e, false)?;
            codes.push((*h, e.code()));
        }
    }
    if codes.is_empty() {
        return Ok(0);
    }
    let n = codes.len();
    let new = crate::pack::write_pack(dir, &mut codes, storage == CodeStorage::Compressed)?;
    drop(packs);
    for path in old.into_iter().filter(|p| *p != new) {
        fs::remove_file(&path).map_err(io_err(&path))?;
    }
    Ok(n)
}

/// A block file's name without its extension (`.bin`, or `.json` for the older encoding).
fn file_stem(file: &str) -> &str {
    file.rsplit_once('.').map_or(file, |(stem, _)| stem)
}

/// Shared, immutable code store handle.
pub type SharedCodes = Arc<CodeStore>;
