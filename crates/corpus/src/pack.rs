//! Code packs: many codes in one file, so that loading a corpus opens a few files instead of one
//! per code. Opening, reading and closing 2,209 code files was 41% of loading the pevm corpus;
//! a pack is mapped into memory once and each code is a slice of it.
//!
//! ```text
//! <corpus>/codes/pack-<id>.pack
//!   magic    8 bytes  "TXSHPACK"
//!   version  u32 LE   1
//!   count    u32 LE   number of codes
//!   index    count × (keccak 32 bytes, offset u64 LE, length u32 LE), sorted by keccak
//!   data     the codes, at their offsets (from the start of the file)
//! ```
//!
//! A pack is written once (atomically) and never changed; the writer packs the codes it wrote
//! as loose files when it finishes ([`crate::CorpusWriter::finish`]) and then removes those
//! files. Each code is still checked on load against the CRC-32 the manifest records for it, and
//! `verify` hashes every code with keccak, so a pack needs no checksum of its own; its index is
//! checked against the file's length when it is opened.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use alloy_primitives::{B256, Bytes, keccak256};

use crate::{CorpusError, store::write_atomic};

const MAGIC: &[u8; 8] = b"TXSHPACK";
const VERSION: u32 = 1;
const HEADER: usize = 16;
const ENTRY: usize = 44;

/// An opened pack: the file mapped into memory and its index.
#[derive(Debug)]
pub(crate) struct Pack {
    path: PathBuf,
    data: Bytes,
    index: HashMap<B256, (usize, usize)>,
}

impl Pack {
    /// Maps a pack and reads its index, checking that every entry lies inside the file.
    pub(crate) fn open(path: &Path) -> Result<Self, CorpusError> {
        let invalid = |reason: String| CorpusError::Invalid {
            path: path.to_path_buf(),
            reason: format!(
                "{reason}: the code pack is damaged or truncated; re-capture or re-import this corpus"
            ),
        };
        let io = |source| CorpusError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER as u64 {
            return Err(invalid(format!("{len} bytes, shorter than a pack header")));
        }
        // SAFETY: a pack is never written in place (it is created under a temporary name and
        // renamed), so the mapped file does not change while it is mapped unless something
        // outside txshadow truncates it.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let data = Bytes::from(bytes::Bytes::from_owner(map));
        if &data[..8] != MAGIC {
            return Err(invalid("not a txshadow code pack (bad magic)".into()));
        }
        let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"));
        let version = u32_at(8);
        if version != VERSION {
            return Err(invalid(format!(
                "code pack version {version}, this txshadow reads version {VERSION}"
            )));
        }
        let count = u32_at(12) as usize;
        let end = HEADER + count * ENTRY;
        if end > data.len() {
            return Err(invalid(format!(
                "index of {count} codes runs past the end of the file ({} bytes)",
                data.len()
            )));
        }
        let mut index = HashMap::with_capacity(count);
        for e in data[HEADER..end].chunks_exact(ENTRY) {
            let hash = B256::from_slice(&e[..32]);
            let offset = u64::from_le_bytes(e[32..40].try_into().expect("8 bytes"));
            let length = u32::from_le_bytes(e[40..44].try_into().expect("4 bytes")) as usize;
            let fits = usize::try_from(offset)
                .ok()
                .filter(|o| *o >= end && o.saturating_add(length) <= data.len());
            let Some(offset) = fits else {
                return Err(invalid(format!(
                    "code {hash} at {offset}+{length} lies outside the file ({} bytes)",
                    data.len()
                )));
            };
            index.insert(hash, (offset, length));
        }
        Ok(Self {
            path: path.to_path_buf(),
            data,
            index,
        })
    }

    /// The pack's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A code, sharing the mapped file (no copy).
    pub(crate) fn get(&self, h: &B256) -> Option<Bytes> {
        self.index
            .get(h)
            .map(|(o, l)| Bytes::from(self.data.0.slice(*o..*o + *l)))
    }

    /// The hashes it holds.
    pub(crate) fn hashes(&self) -> impl Iterator<Item = &B256> {
        self.index.keys()
    }
}

/// The packs of a corpus directory, in name order.
pub(crate) fn pack_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir.join("codes"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("pack-") && n.ends_with(".pack"))
                })
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

/// Opens every pack of a corpus directory.
pub(crate) fn open_packs(dir: &Path) -> Result<Vec<Pack>, CorpusError> {
    pack_paths(dir).iter().map(|p| Pack::open(p)).collect()
}

/// Writes `codes` as one new pack in `<dir>/codes` (atomically) and returns its path; its name is
/// taken from the keccak of its index, so packing the same codes twice gives the same file.
pub(crate) fn write_pack(dir: &Path, codes: &mut [(B256, Bytes)]) -> Result<PathBuf, CorpusError> {
    codes.sort_by_key(|(h, _)| *h);
    let total: usize = codes.iter().map(|(_, c)| c.len()).sum();
    let end = HEADER + codes.len() * ENTRY;
    let mut out = Vec::with_capacity(end + total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let count = u32::try_from(codes.len()).expect("fewer than 2^32 codes in one pack");
    out.extend_from_slice(&count.to_le_bytes());
    let mut offset = end as u64;
    for (h, c) in codes.iter() {
        out.extend_from_slice(h.as_slice());
        out.extend_from_slice(&offset.to_le_bytes());
        let len = u32::try_from(c.len()).expect("a code is shorter than 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        offset += c.len() as u64;
    }
    for (_, c) in codes.iter() {
        out.extend_from_slice(c);
    }
    let id = keccak256(&out[..end]);
    let path = dir.join("codes").join(format!(
        "pack-{}.pack",
        alloy_primitives::hex::encode(&id[..8])
    ));
    write_atomic(&path, &out)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_gives_back_what_was_written_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut codes: Vec<(B256, Bytes)> = [&[0x60u8, 0x00][..], &[0x5b; 40][..], &[][..]]
            .iter()
            .map(|c| (keccak256(c), Bytes::copy_from_slice(c)))
            .collect();
        let want = codes.clone();
        let path = write_pack(dir.path(), &mut codes).unwrap();
        assert_eq!(pack_paths(dir.path()), std::slice::from_ref(&path));
        let p = Pack::open(&path).unwrap();
        for (h, c) in &want {
            assert_eq!(p.get(h).as_ref(), Some(c));
        }
        assert_eq!(p.hashes().count(), 3);
        assert!(p.get(&B256::ZERO).is_none());
        // the same codes give the same file
        assert_eq!(write_pack(dir.path(), &mut codes).unwrap(), path);

        let good = fs::read(&path).unwrap();
        let bad = |bytes: &[u8], what: &str| {
            fs::write(&path, bytes).unwrap();
            let msg = Pack::open(&path).unwrap_err().to_string();
            assert!(
                msg.contains(&path.display().to_string()) && msg.contains(what),
                "{msg}"
            );
        };
        bad(&good[..good.len() - 1], "outside the file");
        bad(&good[..HEADER + ENTRY], "past the end");
        bad(&good[..5], "shorter than a pack header");
        let mut magic = good.clone();
        magic[0] = b'X';
        bad(&magic, "bad magic");
        let mut version = good;
        version[8] = 9;
        bad(&version, "version 9");
    }
}
