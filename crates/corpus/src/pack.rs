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
//!   version  u32 LE   3, or 2 for a pack with nothing compressed (its entries end before
//!                     the stored length)
//!   count    u32 LE   number of codes
//!   index    count × (keccak 32 bytes, offset u64 LE, length u32 LE, table length u32 LE,
//!                     CRC-32 u32 LE of the padding and table, stored length u32 LE),
//!            sorted by keccak
//!   data     per code, at its offset (from the start of the file): the code, 33 zero bytes,
//!            the jump table (length⌈/8⌉ bytes, bit i set when byte i is a valid JUMPDEST;
//!            empty for a code that is not legacy bytecode, e.g. an EIP-7702 delegation);
//!            with a stored length other than 0, those bytes LZ4-compressed (a raw LZ4 block
//!            of that many bytes)
//! ```
//!
//! Codes are stored as they are by default: the replay reads them in place, with no copy. A
//! pack written with compression ([`write_pack`] with `compress`, `txshadow corpus pack --codes
//! compressed`) stores each code LZ4-compressed where that is smaller: EVM bytecode compresses
//! to about half, so a corpus whose size on disk is mostly code (a few blocks from far apart,
//! each with its contracts) takes about half the space, and each code a run uses is
//! decompressed once per run (kept in memory after that) by the thread that reads it first.
//!
//! A pack is written once (atomically) and never changed; the writer packs the codes it wrote
//! as loose files when it finishes ([`crate::CorpusWriter::finish`]) and then removes those
//! files. Each code is checked on load against the CRC-32 the manifest records for it and its
//! padding and jump table against the CRC-32 in the pack's index (after decompression, for a
//! compressed code); `verify` also hashes every code with keccak and analyses it again to
//! compare the jump table. The index is checked against the file's length when a pack is
//! opened.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Mutex,
};

use alloy_primitives::{B256, Bytes, keccak256, map::B256Map};
use rayon::prelude::*;

use crate::{CorpusError, fsutil::write_atomic};

const MAGIC: &[u8; 8] = b"TXSHPACK";
const VERSION: u32 = 3;
/// The version before compressed codes: read, not written.
const VERSION_2: u32 = 2;
const HEADER: usize = 16;
const ENTRY: usize = 56;
const ENTRY_2: usize = 52;
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

/// The error for a damaged pack, naming it and what to do.
fn damaged(path: &Path, reason: String) -> CorpusError {
    CorpusError::Invalid {
        path: path.to_path_buf(),
        reason: format!(
            "{reason}: the code pack is damaged or truncated; re-capture or re-import this corpus"
        ),
    }
}

/// The codes of a corpus's packs, and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PackSizes {
    /// Codes held.
    pub codes: usize,
    /// Of them, stored LZ4-compressed.
    pub compressed: usize,
    /// Their bytes as a replay reads them: code, padding, jump table.
    pub bytes: u64,
    /// Their bytes as stored.
    pub stored: u64,
}

impl std::iter::Sum for PackSizes {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |a, b| Self {
            codes: a.codes + b.codes,
            compressed: a.compressed + b.compressed,
            bytes: a.bytes + b.bytes,
            stored: a.stored + b.stored,
        })
    }
}

impl std::fmt::Display for PackSizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} codes, {} compressed: {} bytes stored for {} bytes read",
            self.codes, self.compressed, self.stored, self.bytes
        )
    }
}

/// Where a code lies in a pack.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: usize,
    /// The code's length.
    len: usize,
    /// The jump table's length.
    table: usize,
    /// The CRC-32 of the padding and table.
    tail_crc: u32,
    /// Bytes stored when LZ4-compressed, 0 when stored as is.
    stored: usize,
}

impl Slot {
    /// The code, its padding and its table: the bytes it holds once decompressed.
    fn whole(&self) -> usize {
        self.len + PADDING + self.table
    }

    /// Its bytes in the file: the stored length when compressed, the whole otherwise.
    fn on_disk(&self) -> usize {
        if self.stored == 0 {
            self.whole()
        } else {
            self.stored
        }
    }
}

/// An opened pack: the file mapped into memory and its index.
#[derive(Debug)]
pub(crate) struct Pack {
    path: PathBuf,
    data: Bytes,
    index: B256Map<Slot>,
    /// Compressed codes decompressed so far: each once per opened pack.
    decompressed: Mutex<B256Map<Bytes>>,
}

impl Pack {
    /// Maps a pack and reads its index, checking that every entry lies inside the file.
    pub(crate) fn open(path: &Path) -> Result<Self, CorpusError> {
        let invalid = |reason: String| damaged(path, reason);
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
        let entry = match version {
            VERSION => ENTRY,
            VERSION_2 => ENTRY_2,
            // a later version is not damage: it wants a later txshadow
            _ if version > VERSION => {
                return Err(CorpusError::Invalid {
                    path: path.to_path_buf(),
                    reason: format!(
                        "code pack version {version} was written by a newer txshadow (this one \
                         reads versions {VERSION_2} and {VERSION}); replay it with that version, \
                         or re-import or re-capture the corpus with this one"
                    ),
                });
            }
            _ => {
                return Err(invalid(format!(
                    "code pack version {version}, this txshadow reads versions {VERSION_2} and \
                     {VERSION}"
                )));
            }
        };
        let count = u32_at(12) as usize;
        let end = HEADER + count * entry;
        if end > data.len() {
            return Err(invalid(format!(
                "index of {count} codes runs past the end of the file ({} bytes)",
                data.len()
            )));
        }
        let mut index = B256Map::with_capacity_and_hasher(count, Default::default());
        for (k, e) in data[HEADER..end].chunks_exact(entry).enumerate() {
            let at = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().expect("4 bytes"));
            let hash = B256::from_slice(&e[..32]);
            let offset = u64::from_le_bytes(e[32..40].try_into().expect("8 bytes"));
            let (length, table) = (at(40) as usize, at(44) as usize);
            let tail_crc = at(48);
            let stored = if entry == ENTRY { at(52) as usize } else { 0 };
            if table != 0 && table != length.div_ceil(8) {
                return Err(invalid(format!(
                    "code {hash} of {length} bytes has a jump table of {table} bytes"
                )));
            }
            let whole = length + PADDING + table;
            // LZ4 expands at most 255-fold: a smaller stored length is damage, not a code
            if stored != 0 && stored.saturating_mul(255) < whole {
                return Err(invalid(format!(
                    "code {hash} (entry {k}) of {whole} bytes is stored in {stored}"
                )));
            }
            let slot = Slot {
                offset: 0,
                len: length,
                table,
                tail_crc,
                stored,
            };
            let on_disk = slot.on_disk();
            let fits = usize::try_from(offset)
                .ok()
                .filter(|o| *o >= end && o.saturating_add(on_disk) <= data.len());
            let Some(offset) = fits else {
                return Err(invalid(format!(
                    "code {hash} (entry {k}) at {offset}+{on_disk} lies outside the file ({} bytes)",
                    data.len()
                )));
            };
            index.insert(hash, Slot { offset, ..slot });
        }
        Ok(Self {
            path: path.to_path_buf(),
            data,
            index,
            decompressed: Mutex::default(),
        })
    }

    /// The pack's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A code with its padding and jump table: a slice of the mapped file (no copy), or, for
    /// a compressed code, its bytes decompressed (once per opened pack). `None` when the pack
    /// does not hold it.
    pub(crate) fn get(&self, h: &B256) -> Result<Option<Entry>, CorpusError> {
        let Some(slot) = self.index.get(h) else {
            return Ok(None);
        };
        let whole = if slot.stored == 0 {
            self.data.slice(slot.offset..slot.offset + slot.whole())
        } else {
            self.decompress(h, slot)?
        };
        Ok(Some(Entry {
            whole,
            len: slot.len,
            tail_crc: slot.tail_crc,
        }))
    }

    fn decompress(&self, h: &B256, slot: &Slot) -> Result<Bytes, CorpusError> {
        if let Some(b) = self.decompressed.lock().expect("not poisoned").get(h) {
            return Ok(b.clone());
        }
        let stored = &self.data[slot.offset..slot.offset + slot.stored];
        let bytes = lz4_flex::block::decompress(stored, slot.whole())
            .ok()
            .filter(|b| b.len() == slot.whole())
            .ok_or_else(|| {
                damaged(
                    &self.path,
                    format!(
                        "code {h}: its {} compressed bytes do not decompress to the {} its \
                         index states",
                        slot.stored,
                        slot.whole()
                    ),
                )
            })?;
        // two readers may have decompressed it at once: both go on with the first one kept
        Ok(self
            .decompressed
            .lock()
            .expect("not poisoned")
            .entry(*h)
            .or_insert_with(|| Bytes::from(bytes))
            .clone())
    }

    /// How many codes it holds, how many of them compressed, their bytes as the replay reads
    /// them (code, padding, table) and as stored.
    pub(crate) fn sizes(&self) -> PackSizes {
        let mut s = PackSizes::default();
        for slot in self.index.values() {
            s.codes += 1;
            s.compressed += usize::from(slot.stored != 0);
            s.bytes += slot.whole() as u64;
            s.stored += slot.on_disk() as u64;
        }
        s
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
/// its index, so packing the same codes twice gives the same file. With `compress`, each code
/// (with its padding and table) is stored LZ4-compressed where that is smaller, in a version 3
/// pack; a pack with nothing compressed is version 2.
pub(crate) fn write_pack(
    dir: &Path,
    codes: &mut [(B256, Bytes)],
    compress: bool,
) -> Result<PathBuf, CorpusError> {
    codes.sort_by_key(|(h, _)| *h);
    // per code: its table's length, the CRC-32 of its padding and table, what is stored and
    // whether that is compressed
    let stored: Vec<(usize, u32, Vec<u8>, bool)> = codes
        .par_iter()
        .map(|(_, c)| {
            let table = jump_table(c).unwrap_or_default();
            let mut whole = Vec::with_capacity(c.len() + PADDING + table.len());
            whole.extend_from_slice(c);
            whole.resize(c.len() + PADDING, 0);
            whole.extend_from_slice(&table);
            let tail_crc = crc32fast::hash(&whole[c.len()..]);
            if compress {
                let packed = lz4_flex::block::compress(&whole);
                if packed.len() < whole.len() {
                    return (table.len(), tail_crc, packed, true);
                }
            }
            (table.len(), tail_crc, whole, false)
        })
        .collect();
    // a pack with nothing compressed is written in version 2, which every txshadow since code
    // packs reads, and the same codes give the same file as before compression existed
    let any_compressed = stored.iter().any(|s| s.3);
    let (version, entry) = if any_compressed {
        (VERSION, ENTRY)
    } else {
        (VERSION_2, ENTRY_2)
    };
    let total: usize = stored.iter().map(|s| s.2.len()).sum();
    let end = HEADER + codes.len() * entry;
    let mut out = Vec::with_capacity(end + total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    let count = u32::try_from(codes.len()).expect("fewer than 2^32 codes in one pack");
    out.extend_from_slice(&count.to_le_bytes());
    let mut offset = end as u64;
    let u32_of = |n: usize| u32::try_from(n).expect("a code is shorter than 4 GiB");
    for ((h, c), (table, tail_crc, bytes, compressed)) in codes.iter().zip(&stored) {
        out.extend_from_slice(h.as_slice());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&u32_of(c.len()).to_le_bytes());
        out.extend_from_slice(&u32_of(*table).to_le_bytes());
        out.extend_from_slice(&tail_crc.to_le_bytes());
        if any_compressed {
            let on_disk = if *compressed { bytes.len() } else { 0 };
            out.extend_from_slice(&u32_of(on_disk).to_le_bytes());
        }
        offset += bytes.len() as u64;
    }
    for (_, _, bytes, _) in &stored {
        out.extend_from_slice(bytes);
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

    fn codes() -> Vec<(B256, Bytes)> {
        let long: Vec<u8> = (0..600u32)
            .map(|i| [0x60, 0x5b, i as u8][i as usize % 3])
            .collect();
        [&[0x60u8, 0x00][..], &[0x5b; 40][..], &[][..], &long[..]]
            .iter()
            .map(|c| (keccak256(c), Bytes::copy_from_slice(c)))
            .collect()
    }

    /// What `p` gives for each code is the code, its padding and the table revm's analysis
    /// gives it, whether stored as is or compressed.
    fn gives_back(p: &Pack, want: &[(B256, Bytes)]) {
        for (h, c) in want {
            let e = p.get(h).unwrap().unwrap();
            assert_eq!(&e.code(), c);
            assert_eq!(crc32fast::hash(e.tail()), e.tail_crc);
            let a = e.analysed();
            assert_eq!(
                a.as_ref().map(|a| a.jump_table.to_vec()),
                jump_table(c),
                "code {h}"
            );
            if let Some(a) = a {
                assert_eq!(a.len, c.len());
                assert_eq!(a.padded[..c.len()], c[..]);
                assert_eq!(a.padded[c.len()..], [0u8; PADDING]);
            }
        }
        assert_eq!(p.hashes().count(), want.len());
        assert!(p.get(&B256::ZERO).unwrap().is_none());
    }

    #[test]
    fn a_pack_gives_back_what_was_written_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut codes = codes();
        let want = codes.clone();
        // revm's analysis: every byte of 40 JUMPDESTs is one; PUSH1's data is not
        assert_eq!(jump_table(&[0x5b; 40]).unwrap(), [0xff; 5]);
        assert_eq!(jump_table(&[0x60, 0x00]).unwrap(), [0x00]);
        let path = write_pack(dir.path(), &mut codes, false).unwrap();
        assert_eq!(pack_paths(dir.path()), std::slice::from_ref(&path));
        let p = Pack::open(&path).unwrap();
        gives_back(&p, &want);
        assert_eq!(p.sizes().compressed, 0);
        assert_eq!(p.sizes().bytes, p.sizes().stored);
        // the same codes give the same file
        assert_eq!(write_pack(dir.path(), &mut codes, false).unwrap(), path);

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
        let mut version = good.clone();
        version[8] = 9;
        bad(&version, "version 9 was written by a newer txshadow");
        let mut version = good;
        version[8] = 1;
        bad(&version, "version 1, this txshadow reads versions 2 and 3");
    }

    /// A compressed pack gives back the same codes and tables, in fewer bytes; damage to a
    /// compressed code is named with the code when it is read, and a stored length that no
    /// LZ4 block could expand from is refused when the pack is opened.
    #[test]
    fn a_compressed_pack_gives_back_the_same_codes_in_fewer_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut codes = codes();
        let want = codes.clone();
        let plain = write_pack(dir.path(), &mut codes, false).unwrap();
        let packed = write_pack(dir.path(), &mut codes, true).unwrap();
        assert_ne!(plain, packed);
        let p = Pack::open(&packed).unwrap();
        gives_back(&p, &want);
        // a second read of a compressed code is the one decompressed before
        let (h, _) = &want[3];
        let (a, b) = (p.get(h).unwrap().unwrap(), p.get(h).unwrap().unwrap());
        assert_eq!(a.whole.as_ptr(), b.whole.as_ptr());
        let sizes = p.sizes();
        assert_eq!(sizes.codes, 4);
        assert!(sizes.compressed >= 2, "{sizes:?}");
        assert_eq!(sizes.bytes, Pack::open(&plain).unwrap().sizes().stored);
        assert!(sizes.stored < sizes.bytes, "{sizes:?}");
        assert!(
            fs::metadata(&packed).unwrap().len() < fs::metadata(&plain).unwrap().len(),
            "compression saved nothing"
        );

        // the long code's compressed bytes, damaged: it decompresses to other bytes or to none
        let good = fs::read(&packed).unwrap();
        let mut sorted = want.iter().map(|(h, _)| *h).collect::<Vec<_>>();
        sorted.sort();
        let i = sorted.iter().position(|x| x == h).unwrap();
        let e = &good[HEADER + i * ENTRY..HEADER + (i + 1) * ENTRY];
        let offset = u64::from_le_bytes(e[32..40].try_into().unwrap()) as usize;
        let stored = u32::from_le_bytes(e[52..56].try_into().unwrap()) as usize;
        assert!(stored > 0, "the long code is compressed");
        let mut damaged = good.clone();
        damaged[offset] ^= 0xff;
        damaged[offset + stored / 2] ^= 0xff;
        fs::write(&packed, &damaged).unwrap();
        let p = Pack::open(&packed).unwrap();
        match p.get(h) {
            Err(err) => {
                let msg = err.to_string();
                assert!(
                    msg.contains(&h.to_string()) && msg.contains("decompress"),
                    "{msg}"
                );
                assert!(msg.contains(&packed.display().to_string()), "{msg}");
            }
            // or it decompresses to other bytes, which the CRC-32s catch on load
            Ok(e) => {
                let e = e.unwrap();
                assert!(
                    e.code() != want[3].1 || crc32fast::hash(e.tail()) != e.tail_crc,
                    "damage went unseen"
                );
            }
        }
        // a stored length too small for the code
        let mut short = good;
        let at = HEADER + i * ENTRY + 52;
        short[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
        fs::write(&packed, &short).unwrap();
        let msg = Pack::open(&packed).unwrap_err().to_string();
        assert!(msg.contains("is stored in 1"), "{msg}");
    }

    /// Every cut and every flipped byte of a compressed pack: opening it, or reading a code
    /// with the checks a load makes (the code's CRC-32 from the manifest, the table's from the
    /// index), fails with an error or gives the code as written; never a panic, never other
    /// bytes that pass the checks.
    #[test]
    fn every_cut_and_every_flipped_byte_of_a_compressed_pack_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let mut codes = codes();
        let want: B256Map<Bytes> = codes.iter().cloned().collect();
        let path = write_pack(dir.path(), &mut codes, true).unwrap();
        let good = fs::read(&path).unwrap();
        let try_load = |bytes: &[u8]| {
            fs::write(&path, bytes).unwrap();
            let Ok(p) = Pack::open(&path) else { return };
            for (h, c) in &want {
                let Ok(Some(e)) = p.get(h) else { continue };
                let checked = crc32fast::hash(&e.code()) == crc32fast::hash(c)
                    && crc32fast::hash(e.tail()) == e.tail_crc;
                if checked {
                    assert_eq!(&e.code(), c, "code {h} changed and passed its checks");
                    let a = e.analysed().map(|a| a.jump_table.to_vec());
                    assert_eq!(a, jump_table(c), "the table of {h} changed and passed");
                }
            }
        };
        for k in 0..good.len() {
            try_load(&good[..k]);
            let mut bad = good.clone();
            bad[k] ^= 0xa5;
            try_load(&bad);
        }
    }

    /// A pack with nothing compressed is written in version 2 (as before compression existed,
    /// so older readers read it); the same codes in version 3 entries, none compressed, read
    /// alike.
    #[test]
    fn a_pack_with_nothing_compressed_is_version_2_and_reads_as_version_3_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut codes = codes();
        let want = codes.clone();
        let v2 = fs::read(write_pack(dir.path(), &mut codes, false).unwrap()).unwrap();
        assert_eq!(v2[8..12], VERSION_2.to_le_bytes());
        let count = want.len();
        let (end2, end3) = (HEADER + count * ENTRY_2, HEADER + count * ENTRY);
        let mut v3 = v2[..HEADER].to_vec();
        v3[8..12].copy_from_slice(&VERSION.to_le_bytes());
        for e in v2[HEADER..end2].chunks_exact(ENTRY_2) {
            let offset = u64::from_le_bytes(e[32..40].try_into().unwrap());
            v3.extend_from_slice(&e[..32]);
            v3.extend_from_slice(&(offset + (end3 - end2) as u64).to_le_bytes());
            v3.extend_from_slice(&e[40..52]);
            v3.extend_from_slice(&0u32.to_le_bytes());
        }
        v3.extend_from_slice(&v2[end2..]);
        let path = dir.path().join("codes/pack-v3.pack");
        fs::write(&path, v3).unwrap();
        gives_back(&Pack::open(&path).unwrap(), &want);
        // and a compressed pack is version 3
        let packed = fs::read(write_pack(dir.path(), &mut codes, true).unwrap()).unwrap();
        assert_eq!(packed[8..12], VERSION.to_le_bytes());
    }
}
