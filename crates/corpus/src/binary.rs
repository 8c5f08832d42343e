//! The binary block encoding: a block file of a few bytes of header and the [`BlockRecord`] as
//! MessagePack, its bytes and numbers raw instead of hex text, compressed with LZ4.
//!
//! ```text
//! offset 0  4 bytes  magic "TXSB"
//!        4  1 byte   encoding version (1)
//!        5  1 byte   compression of the payload: 0 none, 1 LZ4 block (size prepended)
//!        6  2 bytes  zero (reserved)
//!        8  4 bytes  CRC-32 of the payload as stored, little-endian
//!       12  ...      payload: the BlockRecord, MessagePack with named fields
//! ```
//!
//! LZ4 because it decompresses at several GB/s: a 256-bit number is 32 raw bytes, mostly
//! leading zeros, and field names repeat, so it halves the MessagePack for a few milliseconds
//! per corpus, where a stronger codec would cost the load more than the disk it saves.
//!
//! The payload is the same serde model as the JSON files, written by `rmp-serde` with field
//! names (a map per struct): a field added to the model later (with a serde default) is absent
//! from older files and read as its default, and a field this version does not know is skipped,
//! exactly as in JSON. The format is not human-readable to serde, so hashes, byte strings and
//! 256-bit numbers are stored as raw bytes. The CRC-32 inside the file makes a block file check
//! itself wherever it is read (`corpus show`); the manifest also records the file's CRC-32 and
//! sha256, checked on load and by `corpus verify`. `txshadow corpus show` prints a block as JSON.
//!
//! Block files written before this encoding are JSON (`blocks/<stem>.json`) and load unchanged:
//! [`crate::parse_block`] tells the two apart by the magic (a JSON file starts with `{`).

use std::path::Path;

use crate::{BlockRecord, CorpusError};

/// The first bytes of a binary block file.
pub const BLOCK_MAGIC: [u8; 4] = *b"TXSB";
/// The version of the binary block encoding this txshadow writes and reads.
pub const BLOCK_ENCODING_VERSION: u8 = 1;
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

/// Encodes a block as a binary block file.
pub fn encode_block(block: &BlockRecord) -> Vec<u8> {
    let packed = rmp_serde::to_vec_named(block).expect("a block encodes");
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

/// Decodes a binary block file (`path` names it in errors): header, version, CRC-32, payload.
pub fn decode_block(bytes: &[u8], path: &Path) -> Result<BlockRecord, CorpusError> {
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
    if version != BLOCK_ENCODING_VERSION {
        return Err(invalid(format!(
            "binary block encoding version {version}, this txshadow reads version \
             {BLOCK_ENCODING_VERSION}; use the txshadow that wrote it, or re-import or re-capture"
        )));
    }
    let want = u32::from_le_bytes(bytes[8..HEADER].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER..];
    let got = crc32fast::hash(payload);
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
    let unpacked;
    let packed = match bytes[5] {
        RAW => payload,
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
            unpacked = lz4_flex::decompress_size_prepended(payload)
                .map_err(|e| damaged(format!("LZ4: {e}")))?;
            &unpacked[..]
        }
        c => return Err(damaged(format!("unknown compression {c}"))),
    };
    rmp_serde::from_slice(packed).map_err(|e| damaged(e.to_string()))
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256, Bytes, Log, LogData, U256};

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
        let mut v2 = bin;
        v2[4] = 2;
        let e = decode_block(&v2, path).unwrap_err().to_string();
        assert!(e.contains("version 2"), "{e}");
        assert!(decode_block(b"TXS", path).is_err());
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
        let mut out = BLOCK_MAGIC.to_vec();
        out.extend_from_slice(&[BLOCK_ENCODING_VERSION, RAW, 0, 0, 0, 0, 0, 0]);
        rmp_serde::encode::write_named(
            &mut out,
            &Newer {
                block: &b,
                group: "g",
            },
        )
        .unwrap();
        let crc = crc32fast::hash(&out[HEADER..]);
        out[8..HEADER].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_block(&out, Path::new("n.bin")).unwrap(), b);
    }
}
