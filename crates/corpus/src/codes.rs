//! Codes by hash: what a block's pre-state refers to, read from packs or loose files and checked.

use std::{
    collections::{BTreeMap, HashSet},
    fs,
    path::{Path, PathBuf},
};

use alloy_primitives::{
    B256, Bytes, keccak256,
    map::{B256Map, B256Set},
};
use rayon::prelude::*;

use crate::{BlockRecord, CorpusError, pack::Pack};

/// Code by hash, shared by every block of a run.
#[derive(Debug, Default, Clone)]
pub struct CodeStore {
    codes: B256Map<Bytes>,
    analysed: B256Map<crate::pack::Analysed>,
    unavailable: B256Set,
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

/// Checks a packed code's padding and jump table against the CRC-32 in the pack's index and
/// returns the analysed code; on a `full` check, also that the table is the one revm's analysis
/// gives the code now.
pub(crate) fn check_analysis(
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
pub(crate) fn check_code(
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

pub(crate) fn code_path(dir: &Path, h: &B256) -> PathBuf {
    dir.join("codes").join(format!("{h:x}.bin"))
}

/// The hashes of the files `<dir>/codes/<keccak><suffix>`.
pub(crate) fn codes_with(dir: &Path, suffix: &str) -> HashSet<B256> {
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

pub(crate) fn unavailable_path(dir: &Path, h: &B256) -> PathBuf {
    dir.join("codes").join(format!("{h:x}.unavailable"))
}

/// Reads a corpus's codes: the packs are opened (mapped) once, and each code is checked as it is
/// read (CRC-32 from the manifest, keccak where the manifest has none). A run that streams its
/// blocks loads each block's codes with one reader, so only the codes of the blocks in flight
/// are held.
#[derive(Debug)]
pub struct CodeReader {
    dir: PathBuf,
    packs: Vec<Pack>,
    crc32: BTreeMap<B256, u32>,
    /// Packed codes already checked by this reader: a pack is mapped read-only and replaced
    /// only by rename, so a code shared by many blocks is checked once per run, not per block.
    checked: std::sync::Mutex<B256Set>,
    /// Whether a large set of codes is read on the global thread pool.
    parallel: bool,
}

impl CodeReader {
    pub(crate) fn open(dir: &Path, crc32: BTreeMap<B256, u32>) -> Result<Self, CorpusError> {
        Ok(Self {
            dir: dir.to_path_buf(),
            packs: crate::pack::open_packs(dir)?,
            checked: Default::default(),
            crc32,
            parallel: true,
        })
    }

    /// This reader reads on the calling thread only. For a reader that streams blocks beside
    /// the workers replaying them: the workers hold the cores, and the global pool's threads,
    /// woken for each block's codes, would take cores from them (and spin before sleeping).
    pub fn on_this_thread(mut self) -> Self {
        self.parallel = false;
        self
    }

    /// Loads the codes the given blocks refer to, each checked.
    pub fn load<'a>(
        &self,
        blocks: impl IntoIterator<Item = &'a BlockRecord>,
    ) -> Result<CodeStore, CorpusError> {
        self.load_checked(blocks, false)
    }

    /// [`Self::load`]; with `full`, every code is also hashed with keccak.
    pub(crate) fn load_checked<'a>(
        &self,
        blocks: impl IntoIterator<Item = &'a BlockRecord>,
        full: bool,
    ) -> Result<CodeStore, CorpusError> {
        let mut need = B256Set::default();
        for b in blocks {
            need.extend(b.code_hashes());
        }
        self.load_unique(need.into_iter().collect(), full)
    }

    /// The codes of these hashes, each checked (with `full`, also hashed with keccak).
    pub fn load_hashes(
        &self,
        hashes: impl IntoIterator<Item = B256>,
        full: bool,
    ) -> Result<CodeStore, CorpusError> {
        let need = hashes.into_iter().collect::<B256Set>();
        self.load_unique(need.into_iter().collect(), full)
    }

    /// The codes of these hashes, none twice.
    fn load_unique(&self, need: Vec<B256>, full: bool) -> Result<CodeStore, CorpusError> {
        let loaded = if self.parallel && need.len() > 64 {
            need.par_iter()
                .map(|h| self.load_one(h, full))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            need.iter()
                .map(|h| self.load_one(h, full))
                .collect::<Result<Vec<_>, _>>()?
        };
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

    /// The packs, for a full check of what they hold beside the referenced codes.
    pub(crate) fn packs(&self) -> &[Pack] {
        &self.packs
    }

    #[allow(clippy::type_complexity)]
    fn load_one(
        &self,
        h: &B256,
        full: bool,
    ) -> Result<(B256, Option<(Bytes, Option<crate::pack::Analysed>)>), CorpusError> {
        for pack in &self.packs {
            let Some(entry) = pack.get(h)? else { continue };
            let code = entry.code();
            if !full && self.checked.lock().expect("not poisoned").contains(h) {
                return Ok((*h, Some((code, entry.analysed()))));
            }
            let crc = self.crc32.get(h).copied();
            check_code(pack.path(), h, &code, crc, full)?;
            let analysed = check_analysis(pack.path(), h, &entry, full)?;
            self.checked.lock().expect("not poisoned").insert(*h);
            return Ok((*h, Some((code, analysed))));
        }
        let path = code_path(&self.dir, h);
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
        let crc = self.crc32.get(h).copied();
        check_code(&path, h, &bytes, crc, full)?;
        Ok((*h, Some((Bytes::from(bytes), None))))
    }
}
