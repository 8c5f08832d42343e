//! The binary block encoding: a block file of a few bytes of header and the [`BlockRecord`],
//! its bytes and numbers raw instead of hex text, compressed with LZ4.
//!
//! ```text
//! offset 0  4 bytes  magic "TXSB"
//!        4  1 byte   encoding version (2; version 1 is still read)
//!        5  1 byte   compression of the payload: 0 none, 1 LZ4 block (size prepended)
//!        6  2 bytes  zero (reserved)
//!        8  4 bytes  CRC-32 of the payload as stored, little-endian
//!       12  ...      payload
//! ```
//!
//! The payload of version 2 is the block in two parts:
//!
//! ```text
//! 4 bytes   length of the rest, little-endian
//! ...       the rest: the BlockRecord without its transactions, pre-state and recorded
//!           receipts, MessagePack with named fields
//! 1 byte    flags: bit 0, the block has recorded receipts
//! ...       the transactions, the pre-state, [the receipts]: packed by hand (see `packed`)
//! ```
//!
//! The three packed sections are nearly all of a block's bytes and are decoded as a walk over
//! fixed layouts, several times faster than the self-describing MessagePack of version 1 (where
//! the whole block was MessagePack): the load of a corpus is on the replay's path. The rest
//! (header, withdrawals, expectations, conventions, witness) stays MessagePack with field
//! names: a field added to the model later (with a serde default) is absent from older files
//! and read as its default, and a field this version does not know is skipped, exactly as in
//! JSON. A change to the packed layouts is a new encoding version.
//!
//! LZ4 because it decompresses at several GB/s: it takes out the repeated field names of the
//! rest and the zero words of log data, for a few milliseconds per corpus, where a stronger
//! codec would cost the load more than the disk it saves.
//!
//! The CRC-32 inside the file makes a block file check itself wherever it is read (`corpus
//! show`); the manifest also records the file's CRC-32 and sha256, checked on load and by
//! `corpus verify`. `txshadow corpus show` prints a block as JSON.
//!
//! Block files written before the binary encoding are JSON (`blocks/<stem>.json`) and load
//! unchanged: [`crate::parse_block`] tells the two apart by the magic (a JSON file starts with
//! `{`).

use std::path::Path;

use alloy_primitives::Bytes;

use crate::{
    BlockRecord, CorpusError, Expected,
    packed::{Packer, Unpacker},
};

/// The first bytes of a binary block file.
pub const BLOCK_MAGIC: [u8; 4] = *b"TXSB";
/// The version of the binary block encoding this txshadow writes.
pub const BLOCK_ENCODING_VERSION: u8 = 2;
/// The first version, all MessagePack: still read.
const VERSION_1: u8 = 1;
/// Bytes before the payload.
const HEADER: usize = 12;
/// Payload compression: none.
const RAW: u8 = 0;
/// Payload compression: an LZ4 block, its decompressed size prepended.
const LZ4: u8 = 1;

/// Whether `bytes` are a binary block file (they start with [`BLOCK_MAGIC`]).
pub fn is_binary_block(bytes: &[u8]) -> bool {
    bytes.starts_with(&BLOCK_MAGIC)
}

/// The encoding version of a binary block file, `None` when `bytes` are not one (JSON).
pub fn encoding_version(bytes: &[u8]) -> Option<u8> {
    is_binary_block(bytes)
        .then(|| bytes.get(4).copied())
        .flatten()
}

/// The encoding version of the block file at `path` (`None`: JSON), from its first bytes.
pub fn file_encoding_version(path: &Path) -> Result<Option<u8>, CorpusError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(path)
        .and_then(|f| f.take(8).read_to_end(&mut head))
        .map_err(|source| CorpusError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(encoding_version(&head))
}

/// Encodes a block as a binary block file.
pub fn encode_block(block: &BlockRecord) -> Vec<u8> {
    let packed = pack_payload(block);
    let payload = lz4_flex::compress_prepend_size(&packed);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&BLOCK_MAGIC);
    out.extend_from_slice(&[BLOCK_ENCODING_VERSION, LZ4, 0, 0]);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&payload);
    let crc = crc32fast::hash(&out[HEADER..]);
    out[8..HEADER].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The uncompressed payload of version 2.
fn pack_payload(block: &BlockRecord) -> Vec<u8> {
    // every field named: a field added to the model must be placed here, in the rest or packed
    let rest = BlockRecord {
        hash: block.hash,
        header: block.header.clone(),
        transactions: vec![],
        ommers: block.ommers.clone(),
        ommers_missing: block.ommers_missing,
        withdrawals: block.withdrawals.clone(),
        pre_state: Default::default(),
        pre_state_is_full: block.pre_state_is_full,
        block_hashes: block.block_hashes.clone(),
        expected: Expected {
            receipts: None,
            ..block.expected.clone()
        },
        conventions: block.conventions.clone(),
        chain: block.chain.clone(),
        synthetic: block.synthetic,
        label: block.label.clone(),
        unsupported: block.unsupported.clone(),
        witness: block.witness.clone(),
        case: block.case.clone(),
    };
    let mut out = vec![0; 4];
    rmp_serde::encode::write_named(&mut out, &rest).expect("a block encodes");
    let rest_len = u32::try_from(out.len() - 4).expect("a block's rest under 4 GiB");
    out[..4].copy_from_slice(&rest_len.to_le_bytes());
    let receipts = block.expected.receipts.as_deref();
    out.push(u8::from(receipts.is_some()));
    let mut p = Packer::new(&mut out);
    p.txs(&block.transactions);
    p.state(&block.pre_state);
    if let Some(r) = receipts {
        p.receipts(r);
    }
    out
}

/// Checks the structure of MessagePack before serde reads it: every array, map, string, byte
/// string and extension states a length, and a deserializer reserves room for that many items
/// before reading one (alloy's `Bytes` from an array of 2^32 elements asks for gigabytes). A
/// length larger than the bytes left to hold it, or nesting deeper than serde's stack can
/// take, is damage: refused here, before anything is allocated for it.
fn check_msgpack(buf: &[u8]) -> Result<(), String> {
    const MAX_DEPTH: usize = 128;
    let mut at = 0usize;
    let left = |at: usize| buf.len().saturating_sub(at);
    let uint = |at: usize, n: usize| -> Result<usize, String> {
        let b = buf
            .get(at..at + n)
            .ok_or_else(|| format!("MessagePack cut at byte {at}"))?;
        Ok(b.iter().fold(0usize, |v, x| (v << 8) | usize::from(*x)))
    };
    // items still to read in each open container, innermost last
    let mut pending: Vec<usize> = vec![1];
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let marker = *buf
            .get(at)
            .ok_or_else(|| format!("MessagePack cut at byte {at}"))?;
        at += 1;
        // (bytes of the length field, bytes to skip beyond it, items it opens)
        let (skip, items) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
            0x90..=0x9f => (0, usize::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xc4 | 0xd9 => (1 + uint(at, 1)?, 0),
            0xc5 | 0xda => (2 + uint(at, 2)?, 0),
            0xc6 | 0xdb => (4 + uint(at, 4)?, 0),
            0xc7 => (2 + uint(at, 1)?, 0),
            0xc8 => (3 + uint(at, 2)?, 0),
            0xc9 => (5 + uint(at, 4)?, 0),
            0xdc => (2, uint(at, 2)?),
            0xdd => (4, uint(at, 4)?),
            0xde => (2, 2 * uint(at, 2)?),
            0xdf => (4, 2 * uint(at, 4)?),
            0xc1 => return Err(format!("MessagePack: marker 0xc1 at byte {}", at - 1)),
        };
        if skip > left(at) {
            return Err(format!(
                "MessagePack: {skip} bytes stated at byte {} with {} left",
                at - 1,
                left(at)
            ));
        }
        at += skip;
        if items > 0 {
            // every item takes a byte at least
            if items > left(at) {
                return Err(format!(
                    "MessagePack: {items} items stated at byte {} with {} bytes left",
                    at - 1 - skip,
                    left(at)
                ));
            }
            if pending.len() >= MAX_DEPTH {
                return Err(format!("MessagePack nested deeper than {MAX_DEPTH}"));
            }
            pending.push(items);
        }
    }
    Ok(())
}

/// Reads the payload of version 2; with `shared`, the payload is `shared`'s bytes and the
/// block's byte strings are slices of it.
fn unpack_payload(payload: &[u8], shared: Option<&Bytes>) -> Result<BlockRecord, String> {
    let rest_len = payload
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or("no length of the rest")?;
    let rest = payload.get(4..4 + rest_len).ok_or_else(|| {
        format!(
            "a rest of {rest_len} bytes in a payload of {}",
            payload.len()
        )
    })?;
    check_msgpack(rest)?;
    let mut block: BlockRecord = rmp_serde::from_slice(rest).map_err(|e| e.to_string())?;
    let flags = *payload.get(4 + rest_len).ok_or("no flags byte")?;
    if flags > 1 {
        return Err(format!("flags {flags:#04x}"));
    }
    let mut u = match shared {
        Some(all) => Unpacker::shared(all, 5 + rest_len),
        None => Unpacker::new(payload, 5 + rest_len),
    };
    block.transactions = u.txs()?;
    block.pre_state = u.state()?;
    if flags & 1 == 1 {
        block.expected.receipts = Some(u.receipts()?);
    }
    if u.offset() != payload.len() {
        return Err(format!(
            "{} bytes after the last section",
            payload.len() - u.offset()
        ));
    }
    Ok(block)
}

/// Decodes a binary block file (`path` names it in errors): header, version, CRC-32, payload.
pub fn decode_block(bytes: &[u8], path: &Path) -> Result<BlockRecord, CorpusError> {
    decode_block_with(bytes, path, false)
}

/// [`decode_block`]; with `whole_file_checked`, the caller has just held the whole file to the
/// CRC-32 its manifest records (computed from the same bytes when they were written), which
/// covers the payload too, so the file's own CRC-32 is not computed a second time.
pub(crate) fn decode_block_with(
    bytes: &[u8],
    path: &Path,
    whole_file_checked: bool,
) -> Result<BlockRecord, CorpusError> {
    let invalid = |reason: String| CorpusError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < HEADER || !is_binary_block(bytes) {
        return Err(invalid(
            "not a binary block file (no TXSB header): the file is damaged; re-capture or \
             re-import it"
                .into(),
        ));
    }
    let version = bytes[4];
    if version != BLOCK_ENCODING_VERSION && version != VERSION_1 {
        return Err(invalid(format!(
            "binary block encoding version {version}, this txshadow reads versions \
             {VERSION_1} and {BLOCK_ENCODING_VERSION}; use the txshadow that wrote it, or re-import or re-capture"
        )));
    }
    let want = u32::from_le_bytes(bytes[8..HEADER].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER..];
    let got = if whole_file_checked {
        want
    } else {
        crc32fast::hash(payload)
    };
    if got != want {
        return Err(CorpusError::Checksum {
            path: path.to_path_buf(),
            expected: format!("crc32 {want:08x} (in the file)"),
            got: format!("crc32 {got:08x}"),
        });
    }
    let damaged = |e: String| {
        invalid(format!(
            "the block does not decode ({e}): the file is damaged or was written by a newer \
             txshadow; re-capture or re-import it"
        ))
    };
    // an LZ4 payload is decompressed into shared bytes, which the block's byte strings slice
    let unpacked: Option<Bytes> = match bytes[5] {
        RAW => None,
        LZ4 => {
            // LZ4 expands at most 255-fold: a larger stated size is damage, not an allocation
            let size = payload.get(..4).map_or(0, |b| {
                u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize
            });
            if size > payload.len().saturating_mul(255) {
                return Err(damaged(format!(
                    "LZ4: a stated size of {size} bytes for {} stored",
                    payload.len()
                )));
            }
            Some(Bytes::from(
                lz4_flex::decompress_size_prepended(payload)
                    .map_err(|e| damaged(format!("LZ4: {e}")))?,
            ))
        }
        c => return Err(damaged(format!("unknown compression {c}"))),
    };
    let packed: &[u8] = unpacked.as_ref().map_or(payload, |b| &b[..]);
    if version == VERSION_1 {
        check_msgpack(packed).map_err(&damaged)?;
        return rmp_serde::from_slice(packed).map_err(|e| damaged(e.to_string()));
    }
    unpack_payload(packed, unpacked.as_ref()).map_err(damaged)
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256, Log, LogData, U256};

    use super::*;
    use crate::{AccountState, ExpectedReceipt, ExpectedTx, TxRecord};

    /// A block with a value in every kind of field the encoding must carry.
    fn block() -> BlockRecord {
        let header = alloy_consensus::Header {
            number: 19_000_000,
            gas_used: 21_000,
            base_fee_per_gas: Some(7),
            ..Default::default()
        };
        let tx = TxRecord {
            hash: B256::repeat_byte(1),
            from: Address::repeat_byte(2),
            raw: Bytes::from(vec![2, 0xf8, 0x6c]),
        };
        let mut b = BlockRecord::new(header.hash_slow(), header, vec![tx]);
        let storage = [(U256::from(1), U256::MAX), (U256::MAX, U256::ZERO)].into();
        b.pre_state.insert(
            Address::repeat_byte(3),
            Some(AccountState {
                balance: U256::from(10).pow(U256::from(30)),
                nonce: 5,
                code_hash: B256::repeat_byte(4),
                storage,
            }),
        );
        b.pre_state.insert(Address::repeat_byte(5), None);
        b.block_hashes.insert(18_999_999, B256::repeat_byte(6));
        let log = Log {
            address: Address::repeat_byte(7),
            data: LogData::new_unchecked(vec![B256::repeat_byte(8)], vec![9, 10].into()),
        };
        b.expected.receipts = Some(vec![ExpectedReceipt {
            tx_type: 2,
            status: Some(true),
            state_root: None,
            gas_used: 21_000,
            cumulative_gas_used: 21_000,
            logs: vec![log.clone()],
            contract_address: None,
        }]);
        b.expected.txs = vec![Some(ExpectedTx {
            logs: Some(vec![log]),
            output: Some(vec![1].into()),
            ..Default::default()
        })];
        b.expected.receipts_sealed = true;
        b.label = Some("label".into());
        b
    }

    #[test]
    fn a_block_round_trips_and_is_smaller_than_its_json() {
        let b = block();
        let bin = encode_block(&b);
        assert!(is_binary_block(&bin));
        assert_eq!(decode_block(&bin, Path::new("b.bin")).unwrap(), b);
        let json = serde_json::to_vec(&b).unwrap();
        assert!(bin.len() < json.len(), "{} >= {}", bin.len(), json.len());
        // the JSON of a block still parses, by the same entry point
        assert_eq!(crate::parse_block(&json, Path::new("b.json")).unwrap(), b);
        assert_eq!(crate::parse_block(&bin, Path::new("b.bin")).unwrap(), b);
    }

    /// The byte strings of an LZ4 block (tx bytes, log data) are slices of the one buffer it
    /// decompresses into, not a copy each: the tx bytes sit where the layout puts them, right
    /// after the tx's hash, sender and length in that buffer.
    #[test]
    fn byte_strings_of_a_compressed_block_share_its_buffer() {
        let mut b = block();
        let tx = b.transactions[0].clone();
        b.transactions.push(TxRecord {
            hash: B256::repeat_byte(11),
            raw: Bytes::from(vec![2, 0xf8, 0x6d, 0x01]),
            ..tx
        });
        let back = decode_block(&encode_block(&b), Path::new("b.bin")).unwrap();
        assert_eq!(back, b);
        let (a, c) = (&back.transactions[0].raw, &back.transactions[1].raw);
        // hash, sender, one length byte between the end of the first and the second
        assert_eq!(
            c.as_ptr() as usize - a.as_ptr() as usize,
            a.len() + 32 + 20 + 1
        );
    }

    /// A caller that has held the whole file to its manifest's CRC-32 (which covers the
    /// payload) skips the file's own; every other read checks it.
    #[test]
    fn the_files_own_crc_is_skipped_only_when_the_whole_file_was_checked() {
        let b = block();
        let mut bin = encode_block(&b);
        bin[8] ^= 0x01;
        let path = Path::new("blocks/x.bin");
        let e = decode_block(&bin, path).unwrap_err().to_string();
        assert!(e.contains("crc32"), "{e}");
        assert_eq!(decode_block_with(&bin, path, true).unwrap(), b);
    }

    #[test]
    fn damage_is_named_and_never_a_partial_block() {
        let bin = encode_block(&block());
        let path = Path::new("blocks/x.bin");
        // a changed payload byte: the CRC in the file
        let mut bad = bin.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x40;
        let e = decode_block(&bad, path).unwrap_err().to_string();
        assert!(e.contains("blocks/x.bin") && e.contains("crc32"), "{e}");
        // truncated, with a CRC that matches what is left: the decode fails
        let mut cut = bin[..bin.len() - 10].to_vec();
        let crc = crc32fast::hash(&cut[HEADER..]);
        cut[8..HEADER].copy_from_slice(&crc.to_le_bytes());
        let e = decode_block(&cut, path).unwrap_err().to_string();
        assert!(e.contains("does not decode"), "{e}");
        // a stated size LZ4 cannot expand to, behind a matching CRC: refused before allocating
        let mut huge = bin.clone();
        huge[HEADER..HEADER + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32fast::hash(&huge[HEADER..]);
        huge[8..HEADER].copy_from_slice(&crc.to_le_bytes());
        let e = decode_block(&huge, path).unwrap_err().to_string();
        assert!(e.contains("stated size"), "{e}");
        // an unknown compression
        let mut odd = bin.clone();
        odd[5] = 9;
        let e = decode_block(&odd, path).unwrap_err().to_string();
        assert!(e.contains("unknown compression 9"), "{e}");
        // another version
        let mut v3 = bin;
        v3[4] = 3;
        let e = decode_block(&v3, path).unwrap_err().to_string();
        assert!(e.contains("version 3"), "{e}");
        assert!(decode_block(b"TXS", path).is_err());
    }

    /// A block file of `version` with `payload` stored uncompressed, its CRC right.
    fn file(version: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = BLOCK_MAGIC.to_vec();
        out.extend_from_slice(&[version, RAW, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(payload);
        let crc = crc32fast::hash(&out[HEADER..]);
        out[8..HEADER].copy_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn fields_unknown_to_a_reader_are_skipped_and_missing_ones_default() {
        // a newer writer's block: an extra field at the top level and inside `expected`
        #[derive(serde::Serialize)]
        struct Newer<'a> {
            #[serde(flatten)]
            block: &'a BlockRecord,
            group: &'a str,
        }
        let b = block();
        // version 1: the whole block MessagePack
        let mut v1 = vec![];
        rmp_serde::encode::write_named(
            &mut v1,
            &Newer {
                block: &b,
                group: "g",
            },
        )
        .unwrap();
        assert_eq!(
            decode_block(&file(VERSION_1, &v1), Path::new("n.bin")).unwrap(),
            b
        );
        // version 2: the same in its MessagePack rest, before the packed sections
        let packed = pack_payload(&b);
        let rest_len = u32::from_le_bytes(packed[..4].try_into().unwrap()) as usize;
        let mut rest: BlockRecord = rmp_serde::from_slice(&packed[4..4 + rest_len]).unwrap();
        rest.label = Some("newer".into());
        let mut newer = vec![0; 4];
        rmp_serde::encode::write_named(
            &mut newer,
            &Newer {
                block: &rest,
                group: "g",
            },
        )
        .unwrap();
        let n = (newer.len() - 4) as u32;
        newer[..4].copy_from_slice(&n.to_le_bytes());
        newer.extend_from_slice(&packed[4 + rest_len..]);
        let got = decode_block(&file(BLOCK_ENCODING_VERSION, &newer), Path::new("n.bin")).unwrap();
        assert_eq!(got.label.as_deref(), Some("newer"));
        assert_eq!(got.transactions, b.transactions);
        assert_eq!(got.pre_state, b.pre_state);
        assert_eq!(got.expected.receipts, b.expected.receipts);
    }

    #[test]
    fn version_1_files_still_load() {
        let b = block();
        let v1 = rmp_serde::to_vec_named(&b).unwrap();
        assert_eq!(
            decode_block(&file(VERSION_1, &v1), Path::new("o.bin")).unwrap(),
            b
        );
    }

    #[test]
    fn a_block_without_receipts_or_state_round_trips() {
        let mut b = block();
        b.expected.receipts = None;
        b.expected.receipts_sealed = false;
        b.pre_state.clear();
        b.transactions.clear();
        assert_eq!(
            decode_block(&encode_block(&b), Path::new("e.bin")).unwrap(),
            b
        );
        // receipts present but empty are not the same as none
        b.expected.receipts = Some(vec![]);
        assert_eq!(
            decode_block(&encode_block(&b), Path::new("e.bin")).unwrap(),
            b
        );
    }

    #[test]
    fn every_cut_and_every_flipped_byte_of_the_packed_sections_fails_cleanly() {
        let b = block();
        let payload = pack_payload(&b);
        let rest_len = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
        let path = Path::new("blocks/x.bin");
        // cut anywhere: an error naming the file, never a panic or a partial block
        for n in 0..payload.len() {
            let e = decode_block(&file(BLOCK_ENCODING_VERSION, &payload[..n]), path)
                .expect_err("a cut payload fails")
                .to_string();
            assert!(
                e.contains("blocks/x.bin") && e.contains("does not decode"),
                "{n}: {e}"
            );
        }
        // trailing bytes
        let mut long = payload.clone();
        long.push(0);
        let e = decode_block(&file(BLOCK_ENCODING_VERSION, &long), path).unwrap_err();
        assert!(e.to_string().contains("after the last section"), "{e}");
        // any byte of the packed sections changed: an error or another block, never a panic
        for i in 4 + rest_len..payload.len() {
            for x in [0x01, 0x80, 0xff] {
                let mut bad = payload.clone();
                bad[i] ^= x;
                let _ = decode_block(&file(BLOCK_ENCODING_VERSION, &bad), path);
            }
        }
    }

    #[test]
    fn a_stated_length_the_bytes_cannot_hold_is_refused_before_serde_allocates_it() {
        // a version 1 block whose first tx's raw bytes are an array stating 2^32 - 1 items
        // (what the fuzzer found: alloy's `Bytes` reserved that much before reading one)
        let mut b = block();
        b.transactions[0].raw = Bytes::from(vec![0xab; 3]);
        let mut v1 = rmp_serde::to_vec_named(&b).unwrap();
        let at = v1
            .windows(4)
            .position(|w| w == [0xc4, 3, 0xab, 0xab])
            .expect("the raw bytes, a bin8 of 3");
        v1.splice(at..at + 2, [0xdd, 0xff, 0xff, 0xff, 0xff]);
        let e = decode_block(&file(VERSION_1, &v1), Path::new("h.bin"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("items stated") && e.contains("h.bin"), "{e}");
        // the same in version 2's rest
        let mut b = block();
        b.label = Some("x".repeat(40));
        let packed = pack_payload(&b);
        let at = packed
            .windows(2)
            .position(|w| w == [0xd9, 40])
            .expect("the label, a str8 of 40");
        let mut bad = packed.clone();
        bad.splice(at..at + 2, [0xdb, 0x7f, 0xff, 0xff, 0xff]);
        let rest_len = u32::from_le_bytes(packed[..4].try_into().unwrap()) + 3;
        bad[..4].copy_from_slice(&rest_len.to_le_bytes());
        let e = decode_block(&file(BLOCK_ENCODING_VERSION, &bad), Path::new("h.bin"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bytes stated"), "{e}");
        // nesting deeper than serde's stack
        let mut deep = vec![0x91; 10_000];
        deep.push(0xc0);
        let e = check_msgpack(&deep).unwrap_err();
        assert!(e.contains("nested deeper"), "{e}");
        // what the encoder writes passes
        check_msgpack(&rmp_serde::to_vec_named(&block()).unwrap()).unwrap();
    }

    #[test]
    fn hostile_counts_and_orders_are_refused_before_allocating() {
        let path = Path::new("h.bin");
        let rest = {
            let mut b = block();
            b.transactions.clear();
            b.pre_state.clear();
            b.expected.receipts = None;
            pack_payload(&b)
        };
        let head = &rest[..rest.len() - 2]; // the rest and the flags, without the two counts
        // a transaction count of 2^60
        let mut p = head.to_vec();
        p.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
        let e = decode_block(&file(BLOCK_ENCODING_VERSION, &p), path).unwrap_err();
        assert!(e.to_string().contains("transactions section"), "{e}");
        assert!(e.to_string().contains("a count of"), "{e}");
        // two accounts out of order
        let mut p = head.to_vec();
        p.extend_from_slice(&[0, 2]);
        for a in [9u8, 3] {
            p.extend_from_slice(&[a; 20]);
            p.push(0);
        }
        let e = decode_block(&file(BLOCK_ENCODING_VERSION, &p), path).unwrap_err();
        assert!(e.to_string().contains("pre-state section"), "{e}");
        assert!(e.to_string().contains("out of order"), "{e}");
        // an account's slots out of order
        let mut p = head.to_vec();
        p.extend_from_slice(&[0, 1]);
        p.extend_from_slice(&[1; 20]);
        p.extend_from_slice(&[1, 0, 0, 2, 1, 5, 0, 1, 3, 0]);
        let e = decode_block(&file(BLOCK_ENCODING_VERSION, &p), path).unwrap_err();
        assert!(e.to_string().contains("slot 3 out of order"), "{e}");
        // a 33-byte number
        let mut p = head.to_vec();
        p.extend_from_slice(&[0, 1]);
        p.extend_from_slice(&[1; 20]);
        p.extend_from_slice(&[1, 33]);
        p.extend_from_slice(&[1; 40]);
        let e = decode_block(&file(BLOCK_ENCODING_VERSION, &p), path).unwrap_err();
        assert!(e.to_string().contains("a number of 33 bytes"), "{e}");
    }
}
