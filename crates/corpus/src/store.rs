//! The on-disk format: a directory with a manifest, one file per block (binary, see
//! [`crate::binary`]; JSON in corpora written before it) and the codes (packed, or one file per
//! code until the writer packs them).
//!
//! ```text
//! <corpus>/manifest.json          format, version, chain, provenance, block index (+ sha256 each),
//!                                 CRC-32 of each code
//! <corpus>/blocks/<stem>.bin      one BlockRecord, binary (`<stem>.json`: JSON, older corpora)
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
    fs,
    path::{Path, PathBuf},
};

use rayon::prelude::*;

use crate::{
    BlockRecord, CodeReader, CodeStore, CorpusError,
    fsutil::{hex_sha256, io_err},
    manifest::{BlockEntry, FORMAT_NAME, FORMAT_VERSION, MANIFEST, Manifest},
};

/// Parses the bytes of a block file (`path` names it in errors): the parse [`Corpus::load_block`]
/// does once the bytes passed their checksum.
/// A binary block file ([`crate::binary`]) or a JSON one, told apart by their first bytes.
pub fn parse_block(bytes: &[u8], path: &Path) -> Result<BlockRecord, CorpusError> {
    parse_block_with(bytes, path, false)
}

/// [`parse_block`]; `whole_file_checked` as in [`crate::binary::decode_block_with`].
fn parse_block_with(
    bytes: &[u8],
    path: &Path,
    whole_file_checked: bool,
) -> Result<BlockRecord, CorpusError> {
    if crate::binary::is_binary_block(bytes) {
        return crate::binary::decode_block_with(bytes, path, whole_file_checked);
    }
    // one UTF-8 check of the whole file: `from_slice` checks each string on its own, which
    // was a tenth of the parse
    let text = std::str::from_utf8(bytes).map_err(|e| CorpusError::Invalid {
        path: path.to_path_buf(),
        reason: format!("not UTF-8 text ({e}): the file is damaged; re-capture or re-import it"),
    })?;
    serde_json::from_str(text).map_err(|source| CorpusError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// An opened corpus directory.
#[derive(Debug, Clone)]
pub struct Corpus {
    dir: PathBuf,
    pub(crate) manifest: Manifest,
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
    pub(crate) fn load_block_checked(
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
        let block = parse_block_with(&bytes, &path, entry.crc32.is_some())?;
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
        self.code_reader()?.load(blocks)
    }

    /// A reader of this corpus's codes, its packs opened once: what a run that loads blocks
    /// one at a time uses to load each block's codes.
    pub fn code_reader(&self) -> Result<CodeReader, CorpusError> {
        CodeReader::open(&self.dir, self.manifest.code_crc32.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChainConfig, CorpusWriter, Provenance, codes::code_path};
    use alloy_primitives::B256;

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

    /// Rewrites every block of the corpus at `dir` as an older txshadow wrote them: JSON,
    /// indexed by their sha256 and CRC-32.
    fn as_json_corpus(dir: &Path) {
        let mut m = Corpus::open(dir).unwrap().manifest;
        for e in &mut m.blocks {
            let bin = dir.join("blocks").join(&e.file);
            let bytes = fs::read(&bin).unwrap();
            assert!(crate::binary::is_binary_block(&bytes));
            let b = parse_block(&bytes, &bin).unwrap();
            fs::remove_file(&bin).unwrap();
            let json = serde_json::to_vec(&b).unwrap();
            e.file = e.file.replace(".bin", ".json");
            fs::write(dir.join("blocks").join(&e.file), &json).unwrap();
            index_file(e, &json);
        }
        write_manifest(dir, m);
    }

    /// Indexes a block file's new bytes in its manifest entry, as a writer does.
    fn index_file(e: &mut BlockEntry, bytes: &[u8]) {
        e.sha256 = hex_sha256(bytes);
        e.crc32 = Some(crc32fast::hash(bytes));
    }

    /// Writes an edited manifest with its checksum.
    fn write_manifest(dir: &Path, mut m: Manifest) {
        m.checksum = Some(m.digest());
        fs::write(dir.join(MANIFEST), serde_json::to_vec(&m).unwrap()).unwrap();
    }

    /// Rewrites block `k` of the corpus at `dir` as version 1 of the binary encoding wrote it:
    /// the whole block MessagePack, LZ4, indexed by its sha256 and CRC-32.
    fn as_version_1(dir: &Path, k: usize) -> Vec<u8> {
        let mut m = Corpus::open(dir).unwrap().manifest;
        let e = &mut m.blocks[k];
        let path = dir.join("blocks").join(&e.file);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(crate::binary::encoding_version(&bytes), Some(2));
        let b = parse_block(&bytes, &path).unwrap();
        let payload = lz4_flex::compress_prepend_size(&rmp_serde::to_vec_named(&b).unwrap());
        let mut v1 = b"TXSB\x01\x01\0\0\0\0\0\0".to_vec();
        v1.extend_from_slice(&payload);
        let crc = crc32fast::hash(&v1[12..]);
        v1[8..12].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, &v1).unwrap();
        index_file(e, &v1);
        write_manifest(dir, m);
        v1
    }

    #[test]
    fn a_binary_block_file_of_the_first_encoding_loads_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        w.put_block(&block(7)).unwrap();
        drop(w);
        let v1 = as_version_1(dir.path(), 0);
        assert_eq!(crate::binary::encoding_version(&v1), Some(1));
        let c = Corpus::open(dir.path()).unwrap();
        assert_eq!(c.load_blocks().unwrap(), [block(7)]);
        c.verify().unwrap();
    }

    /// `corpus pack`: a corpus of a JSON block file, a binary one of the first encoding, a
    /// current one and a loose code comes out all current and packed, its blocks the same; a
    /// second pack has nothing left to do.
    #[test]
    fn pack_rewrites_json_and_older_binary_block_files_in_the_current_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        for n in 1..=3 {
            w.put_block(&block(n)).unwrap();
        }
        drop(w);
        as_json_corpus(dir.path());
        // block 2 back to binary, then to the first binary encoding; block 3 current
        let mut w = writer(dir.path());
        w.put_block(&block(2)).unwrap();
        w.put_block(&block(3)).unwrap();
        drop(w);
        as_version_1(dir.path(), 1);
        let mut w = writer(dir.path());
        let code = w.put_code(&[0x60, 0x01, 0x00]).unwrap();
        drop(w);
        assert!(code_path(dir.path(), &code).exists());
        let version = |c: &Corpus, k: usize| {
            crate::binary::file_encoding_version(&c.block_path(&c.manifest().blocks[k])).unwrap()
        };
        let before = Corpus::open(dir.path()).unwrap();
        assert_eq!(
            (0..3).map(|k| version(&before, k)).collect::<Vec<_>>(),
            [None, Some(1), Some(2)]
        );
        let done = crate::pack_corpus(dir.path(), None).unwrap();
        assert_eq!(
            (
                done.codes,
                done.json_blocks,
                done.older_blocks,
                done.repacked
            ),
            (1, 1, 1, 0)
        );
        assert_eq!((done.packs.codes, done.packs.compressed), (1, 0));
        let c = Corpus::open(dir.path()).unwrap();
        let current = Some(crate::binary::BLOCK_ENCODING_VERSION);
        assert!((0..3).all(|k| version(&c, k) == current));
        assert_eq!(c.load_blocks().unwrap(), [block(1), block(2), block(3)]);
        assert!(!code_path(dir.path(), &code).exists());
        let codes = c.code_reader().unwrap().load_hashes([code], true).unwrap();
        assert_eq!(codes.get(&code).unwrap()[..], [0x60, 0x01, 0x00]);
        c.verify().unwrap();
        // the files the manifest no longer names are gone
        let files: Vec<_> = fs::read_dir(dir.path().join("blocks")).unwrap().collect();
        assert_eq!(files.len(), 3);
        let again = crate::pack_corpus(dir.path(), None).unwrap();
        assert_eq!(
            (
                again.codes,
                again.json_blocks,
                again.older_blocks,
                again.repacked
            ),
            (0, 0, 0, 0)
        );
    }

    /// `pack --codes compressed` writes every packed code into one compressed pack, which
    /// loads and verifies as the packs it replaces did; `--codes mapped` writes them back.
    #[test]
    fn codes_repacked_compressed_load_as_before_and_take_fewer_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        w.put_block(&block(1)).unwrap();
        // two codes in two packs: one EVM-like and long, one a single byte (its padding and
        // table are zeros, which compress too)
        let long: Vec<u8> = (0..2000u32)
            .flat_map(|i| [0x60, (i % 7) as u8, 0x56, 0x5b])
            .collect();
        let a = w.put_code(&long).unwrap();
        w.finish().unwrap();
        let mut w = writer(dir.path());
        let b = w.put_code(&[0x00]).unwrap();
        w.finish().unwrap();
        assert_eq!(crate::pack::pack_paths(dir.path()).len(), 2);
        let before = crate::pack_sizes(dir.path()).unwrap();
        let load = || {
            let c = Corpus::open(dir.path()).unwrap();
            c.verify().unwrap();
            let codes = c.code_reader().unwrap().load_hashes([a, b], true).unwrap();
            (
                codes.get(&a).cloned(),
                codes.analysed(&a).cloned(),
                codes.get(&b).cloned(),
            )
        };
        let want = load();
        assert_eq!(want.0.as_ref().map(|c| &c[..]), Some(&long[..]));

        let done = crate::pack_corpus(dir.path(), Some(crate::CodeStorage::Compressed)).unwrap();
        assert_eq!(done.repacked, 2);
        assert_eq!(crate::pack::pack_paths(dir.path()).len(), 1);
        assert_eq!((done.packs.codes, done.packs.compressed), (2, 2));
        assert_eq!(done.packs.bytes, before.bytes);
        assert!(
            done.packs.stored * 2 < before.stored,
            "{done:?} against {before:?}"
        );
        assert_eq!(load(), want);

        let done = crate::pack_corpus(dir.path(), Some(crate::CodeStorage::Mapped)).unwrap();
        assert_eq!(crate::pack::pack_paths(dir.path()).len(), 1);
        assert_eq!(done.packs, before);
        assert_eq!(load(), want);
    }

    #[test]
    fn a_json_block_file_of_an_older_corpus_loads_and_is_replaced_when_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        w.put_block(&block(7)).unwrap();
        drop(w);
        as_json_corpus(dir.path());
        let c = Corpus::open(dir.path()).unwrap();
        let file = c.manifest().blocks[0].file.clone();
        assert!(file.ends_with(".json"));
        assert_eq!(c.load_blocks().unwrap(), [block(7)]);
        c.verify().unwrap();
        // written again: one entry, binary, the JSON file gone
        let mut w = writer(dir.path());
        w.put_block(&block(7)).unwrap();
        let c = Corpus::open(dir.path()).unwrap();
        assert_eq!(c.manifest().blocks.len(), 1);
        assert!(c.manifest().blocks[0].file.ends_with(".bin"));
        assert!(!dir.path().join("blocks").join(&file).exists());
        assert_eq!(c.load_blocks().unwrap(), [block(7)]);
    }

    #[test]
    fn every_block_of_the_shipped_corpus_round_trips_through_the_binary_encoding() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpora/mainnet");
        let c = Corpus::open(&dir).unwrap();
        for b in c.load_blocks().unwrap() {
            let bin = crate::binary::encode_block(&b);
            let back = parse_block(&bin, Path::new("b.bin")).unwrap();
            assert_eq!(back, b, "block {}", b.number());
            assert!(bin.len() * 2 < serde_json::to_vec(&b).unwrap().len());
        }
    }

    #[test]
    fn a_damaged_block_file_fails_the_load_by_crc_and_verify_by_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        w.put_block(&block(5)).unwrap();
        w.finish().unwrap();
        // an older corpus's JSON block file (the binary encoding also checks itself)
        as_json_corpus(dir.path());
        let c = Corpus::open(dir.path()).unwrap();
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
        write_manifest(dir.path(), m);
        let w = writer(dir.path());
        assert_eq!(w.manifest().blocks[0].crc32, entry.crc32);
    }

    /// A reader told to stay on its thread loads a block's codes without the global pool: it
    /// streams beside workers holding the cores, and the pool's threads would take them. Shown
    /// with every thread of the global pool held busy: a load that went to the pool would wait
    /// for them.
    #[test]
    fn a_reader_on_its_thread_loads_many_codes_while_the_global_pool_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        let hashes: Vec<B256> = (0..100u32)
            .map(|i| {
                w.put_code(&[0x60, (i % 256) as u8, 0x60, (i / 256) as u8, 0x00])
                    .unwrap()
            })
            .collect();
        w.pack_loose_codes().unwrap();
        w.write_manifest().unwrap();
        let c = Corpus::open(dir.path()).unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = std::sync::Mutex::new(held);
        let (busy_tx, busy) = std::sync::mpsc::channel::<()>();
        let threads = rayon::current_num_threads();
        rayon::spawn_broadcast(move |_| {
            busy_tx.send(()).unwrap();
            // every pool thread waits here until the test is done
            let _ = held.lock().unwrap().recv();
        });
        for _ in 0..threads {
            busy.recv().unwrap();
        }
        let (done_tx, done) = std::sync::mpsc::channel();
        let reader = c.code_reader().unwrap().on_this_thread();
        let want = hashes.clone();
        std::thread::spawn(move || done_tx.send(reader.load_hashes(want, false).map(|s| s.len())));
        let got = done.recv_timeout(std::time::Duration::from_secs(30));
        drop(release);
        assert_eq!(
            got.expect("the load waited for the busy global pool")
                .unwrap(),
            hashes.len()
        );
    }
}
