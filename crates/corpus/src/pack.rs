//! Code packs: many codes in one file, so that loading a corpus opens a few files instead of one
//! per code. Opening, reading and closing 2,209 code files was 41% of loading the pevm corpus;
//! a pack is mapped into memory once and each code is a slice of it.
//!
//! A pack also keeps each legacy code's jump table (its valid JUMPDESTs, as revm's analysis finds
//! them when the code is packed) behind the code and 33 zero bytes of padding, so that a replay
//! takes the analysed code from the mapped file instead of analysing it again: analysing every
//! code a run executes was a tenth of a block-mode run on the pevm corpus.
//!
//! ```text
//! <corpus>/codes/pack-<id>.pack
//!   magic    8 bytes  "TXSHPACK"
//!   version  u32 LE   2
//!   count    u32 LE   number of codes
//!   index    count × (keccak 32 bytes, offset u64 LE, length u32 LE, table length u32 LE,
//!                     CRC-32 u32 LE of the padding and table), sorted by keccak
//!   data     per code, at its offset (from the start of the file): the code, 33 zero bytes,
//!            the jump table (length⌈/8⌉ bytes, bit i set when byte i is a valid JUMPDEST;
//!            empty for a code that is not legacy bytecode, e.g. an EIP-7702 delegation)
//! ```
//!
//! A pack is written once (atomically) and never changed; the writer packs the codes it wrote
//! as loose files when it finishes ([`crate::CorpusWriter::finish`]) and then removes those
//! files. Each code is checked on load against the CRC-32 the manifest records for it and its
//! padding and jump table against the CRC-32 in the pack's index; `verify` also hashes every code
//! with keccak and analyses it again to compare the jump table. The index is checked against
//! the file's length when a pack is opened.

use std::{
    fs,
    path::{Path, PathBuf},
};

use alloy_primitives::{B256, Bytes, keccak256, map::B256Map};
use rayon::prelude::*;

use crate::{CorpusError, fsutil::write_atomic};

const MAGIC: &[u8; 8] = b"TXSHPACK";
const VERSION: u32 = 2;
const HEADER: usize = 16;
const ENTRY: usize = 52;
/// Zero bytes after each code: enough for a PUSH32 as its last byte and the STOP after it, so
/// execution never reads past the padded code whatever the code is.
pub const PADDING: usize = 33;

/// A legacy code with its jump table, taken from a pack: what a replay runs without analysing
/// the code again. Its bytes are as stored (CRC-checked on load); the replay checks that the
/// padding is [`PADDING`] zero bytes and the table has one bit per byte of code before it runs
/// it, and analyses the code itself otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysed {
    /// The code followed by [`PADDING`] zero bytes.
    pub padded: Bytes,
    /// The code's length.
    pub len: usize,
    /// Bit `i` (least significant first) is set when byte `i` is a valid JUMPDEST.
    pub jump_table: Bytes,
}

/// One code of a pack: the code, its padding and its jump table, adjacent in the mapped file.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    whole: Bytes,
    len: usize,
    /// CRC-32 the index records for the padding and table.
    pub(crate) tail_crc: u32,
}

impl Entry {
    /// The code.
    pub(crate) fn code(&self) -> Bytes {
        self.whole.slice(..self.len)
    }

    /// The padding and jump table, as stored.
    pub(crate) fn tail(&self) -> &[u8] {
        &self.whole[self.len..]
    }

    /// The analysed code, if the pack holds a jump table for it.
    pub(crate) fn analysed(&self) -> Option<Analysed> {
        let split = self.len + PADDING;
        (self.whole.len() > split).then(|| Analysed {
            padded: self.whole.slice(..split),
            len: self.len,
            jump_table: self.whole.slice(split..),
        })
    }
}

/// The jump table revm's analysis gives `code`, or `None` when it is not legacy bytecode.
pub(crate) fn jump_table(code: &[u8]) -> Option<Vec<u8>> {
    if code.is_empty() {
        return None;
    }
    let b = revm_bytecode::Bytecode::new_raw_checked(Bytes::copy_from_slice(code)).ok()?;
    b.legacy_jump_table().map(|t| t.as_slice().to_vec())
}

/// An opened pack: the file mapped into memory and its index.
#[derive(Debug)]
pub(crate) struct Pack {
    path: PathBuf,
    data: Bytes,
    /// Per code: where it starts, its length, the length of its jump table, the tail's CRC-32.
    index: B256Map<(usize, usize, usize, u32)>,
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
                "code pack version {version}, this txshadow reads version {VERSION}; pack the \
                 codes again with this txshadow (re-import or re-capture the corpus)"
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
        let mut index = B256Map::with_capacity_and_hasher(count, Default::default());
        for (k, e) in data[HEADER..end].chunks_exact(ENTRY).enumerate() {
            let at = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().expect("4 bytes"));
            let hash = B256::from_slice(&e[..32]);
            let offset = u64::from_le_bytes(e[32..40].try_into().expect("8 bytes"));
            let (length, table) = (at(40) as usize, at(44) as usize);
            let tail_crc = at(48);
            if table != 0 && table != length.div_ceil(8) {
                return Err(invalid(format!(
                    "code {hash} of {length} bytes has a jump table of {table} bytes"
                )));
            }
            let fits = usize::try_from(offset)
                .ok()
                .filter(|o| *o >= end && o.saturating_add(length + PADDING + table) <= data.len());
            let Some(offset) = fits else {
                return Err(invalid(format!(
                    "code {hash} (entry {k}) at {offset}+{length} lies outside the file ({} bytes)",
                    data.len()
                )));
            };
            index.insert(hash, (offset, length, table, tail_crc));
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

    /// A code with its padding and jump table, sharing the mapped file (no copy).
    pub(crate) fn get(&self, h: &B256) -> Option<Entry> {
        self.index.get(h).map(|(o, l, t, crc)| Entry {
            whole: self.data.slice(*o..*o + *l + PADDING + *t),
            len: *l,
            tail_crc: *crc,
        })
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

/// Writes `codes` as one new pack in `<dir>/codes` (atomically), each legacy code with the jump
/// table revm's analysis gives it, and returns its path; its name is taken from the keccak of
/// its index, so packing the same codes twice gives the same file.
pub(crate) fn write_pack(dir: &Path, codes: &mut [(B256, Bytes)]) -> Result<PathBuf, CorpusError> {
    codes.sort_by_key(|(h, _)| *h);
    let tails: Vec<Vec<u8>> = codes
        .par_iter()
        .map(|(_, c)| {
            let mut tail = vec![0u8; PADDING];
            tail.extend(jump_table(c).unwrap_or_default());
            tail
        })
        .collect();
    let total: usize = codes.iter().map(|(_, c)| c.len()).sum::<usize>()
        + tails.iter().map(Vec::len).sum::<usize>();
    let end = HEADER + codes.len() * ENTRY;
    let mut out = Vec::with_capacity(end + total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let count = u32::try_from(codes.len()).expect("fewer than 2^32 codes in one pack");
    out.extend_from_slice(&count.to_le_bytes());
    let mut offset = end as u64;
    for ((h, c), tail) in codes.iter().zip(&tails) {
        out.extend_from_slice(h.as_slice());
        out.extend_from_slice(&offset.to_le_bytes());
        let len = u32::try_from(c.len()).expect("a code is shorter than 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        let table = u32::try_from(tail.len() - PADDING).expect("a table is shorter than 4 GiB");
        out.extend_from_slice(&table.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(tail).to_le_bytes());
        offset += (c.len() + tail.len()) as u64;
    }
    for ((_, c), tail) in codes.iter().zip(&tails) {
        out.extend_from_slice(c);
        out.extend_from_slice(tail);
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
            let e = p.get(h).unwrap();
            assert_eq!(&e.code(), c);
            assert_eq!(crc32fast::hash(e.tail()), e.tail_crc);
            match e.analysed() {
                // revm's analysis: every byte of 40 JUMPDESTs is one; PUSH1's data is not
                Some(a) => {
                    assert_eq!(a.len, c.len());
                    assert_eq!(a.padded[..c.len()], c[..]);
                    assert_eq!(a.padded[c.len()..], [0u8; PADDING]);
                    let want: &[u8] = if c[0] == 0x5b { &[0xff; 5] } else { &[0x00] };
                    assert_eq!(a.jump_table[..], *want);
                }
                None => assert!(c.is_empty()),
            }
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
