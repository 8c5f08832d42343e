//! The parsers of outside input, each behind one function that takes arbitrary bytes: what the
//! fuzz targets in `fuzz/` call, and what the stable test that replays the saved fuzz corpora
//! (`tests/fuzz_corpus.rs`) calls, so that the two cannot drift.
//!
//! Every function only has to return: an error for a bad input is fine, a panic is a bug in the
//! parser (fixed there, never here).

use std::{
    fs,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use alloy_primitives::B256;
use txshadow_corpus::{ChainConfig, Corpus, CorpusWriter, Manifest, Provenance};
use txshadow_import::{Format, ImportOptions};

/// What a fuzz target calls with its input.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name: each name is a directory of `fuzz/corpus/` and of
/// `fuzz/artifacts/`, and a target `fuzz/fuzz_targets/<name>.rs` that calls the function.
pub const TARGETS: &[(&str, Target)] = &[
    ("corpus_manifest", corpus_manifest),
    ("corpus_block", corpus_block),
    ("block_payload", block_payload),
    ("code_pack", code_pack),
    ("import", import),
    ("rpc_response", rpc_response),
    ("toml_files", toml_files),
    ("side_items", side_items),
];

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("txshadow-fuzz")
        .tempdir()
        .expect("create a temporary directory")
}

/// A corpus manifest: `Corpus::open` on a directory holding `data` as `manifest.json`; when
/// `data` parses as a manifest, also the same manifest with its checksum set, so that the rest
/// of the open and the loads behind it are reached.
#[doc(hidden)]
pub fn corpus_manifest(data: &[u8]) {
    let dir = tempdir();
    let path = dir.path().join("manifest.json");
    fs::write(&path, data).expect("write manifest");
    let _ = Corpus::open(dir.path());
    let Ok(mut m) = serde_json::from_slice::<Manifest>(data) else {
        return;
    };
    m.checksum = Some(m.digest());
    fs::write(&path, serde_json::to_vec(&m).expect("manifest serialises")).expect("write");
    if let Ok(c) = Corpus::open(dir.path()) {
        let _ = c.load_blocks();
        let _ = c.manifest().tx_count();
        if let Ok(r) = c.code_reader() {
            let _ = r.load_hashes(c.manifest().code_crc32.keys().copied(), true);
        }
    }
}

/// A block file: the parse `Corpus::load_block` does, then what a replay reads of the block
/// (its number, the codes it refers to, its transactions decoded).
#[doc(hidden)]
pub fn corpus_block(data: &[u8]) {
    let Ok(b) = txshadow_corpus::parse_block(data, Path::new("block.json")) else {
        return;
    };
    let _ = b.number();
    let _ = b.code_hashes().count();
    for tx in &b.transactions {
        let _ = txshadow_corpus::decode_tx(&tx.raw);
    }
}

/// The payload of a binary block file behind a valid header. A block file checks itself with a
/// CRC-32 a fuzzer cannot forge, so mutated files stop at the checksum and never reach the
/// decoder behind it: here the header and its CRC are made for the input. The first byte picks
/// the encoding version (bit 0: 1 or 2) and the compression (bit 1: none or LZ4); the rest is
/// the payload as stored.
#[doc(hidden)]
pub fn block_payload(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let mut file = txshadow_corpus::binary::BLOCK_MAGIC.to_vec();
    file.extend_from_slice(&[1 + (pick & 1), (pick >> 1) & 1, 0, 0]);
    file.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    file.extend_from_slice(payload);
    corpus_block(&file);
}

/// The manifest of an empty corpus, written once.
fn empty_manifest() -> &'static [u8] {
    static MANIFEST: OnceLock<Vec<u8>> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let dir = tempdir();
        let out = dir.path().join("c");
        let w = CorpusWriter::create(&out, ChainConfig::mainnet(), Provenance::default(), false)
            .expect("create an empty corpus");
        w.finish().expect("finish the empty corpus");
        fs::read(out.join("manifest.json")).expect("read its manifest")
    })
}

/// A code pack: `data` as the one pack of an empty corpus, opened the way a load opens it, and
/// every code its index names loaded and fully checked.
#[doc(hidden)]
pub fn code_pack(data: &[u8]) {
    let dir = tempdir();
    fs::write(dir.path().join("manifest.json"), empty_manifest()).expect("write manifest");
    fs::create_dir(dir.path().join("codes")).expect("create codes/");
    fs::write(dir.path().join("codes/pack-fuzz.pack"), data).expect("write pack");
    let corpus = Corpus::open(dir.path()).expect("the empty corpus opens");
    let Ok(reader) = corpus.code_reader() else {
        return;
    };
    // the hashes the index names (header 16 bytes, entries starting with the hash: 56 bytes
    // long, 52 in a version 2 pack)
    let entry = if data.get(8..12) == Some(&2u32.to_le_bytes()[..]) {
        52
    } else {
        56
    };
    let hashes: Vec<B256> = data
        .get(16..)
        .unwrap_or_default()
        .chunks_exact(entry)
        .take(64)
        .map(|e| B256::from_slice(&e[..32]))
        .collect();
    let _ = reader.load_hashes(hashes.iter().copied(), false);
    let _ = reader.load_hashes(hashes, true);
}

/// What separates the files of one importer input in the fuzzed bytes.
pub const FILE_SEPARATOR: &[u8] = b"\n=====\n";

/// The bytes of a multi-file input for [`import`]: its files, joined with [`FILE_SEPARATOR`].
#[doc(hidden)]
pub fn join_files(first: u8, files: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![first];
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(FILE_SEPARATOR);
        }
        out.extend_from_slice(f);
    }
    out
}

fn split_files(data: &[u8]) -> Vec<&[u8]> {
    let mut out = vec![];
    let mut rest = data;
    while let Some(at) = rest
        .windows(FILE_SEPARATOR.len())
        .position(|w| w == FILE_SEPARATOR)
    {
        out.push(&rest[..at]);
        rest = &rest[at + FILE_SEPARATOR.len()..];
    }
    out.push(rest);
    out
}

/// An importer's input: the first byte picks the format (pevm, zeth, keth, geth-tracetest,
/// hivechain, by its value modulo 5); the rest is the input, laid out as the importer reads it:
/// - pevm: `blocks/1/block.json`, `blocks/1/pre_state.json`, `blocks/1/block_hashes.json` and
///   `bytecodes.json`, in that order, separated by [`FILE_SEPARATOR`];
/// - zeth, keth, geth-tracetest: one JSON file;
/// - hivechain: `genesis.json` and `chain.rlp`, separated by [`FILE_SEPARATOR`].
#[doc(hidden)]
pub fn import(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let dir = tempdir();
    let input = dir.path().join("in");
    fs::create_dir(&input).expect("create input dir");
    let files = split_files(rest);
    let write = |rel: &str, bytes: &[u8]| {
        let p = input.join(rel);
        fs::create_dir_all(p.parent().expect("a parent")).expect("create dirs");
        fs::write(p, bytes).expect("write input");
    };
    let (format, inputs): (Format, Vec<PathBuf>) = match first % 5 {
        0 => {
            for (name, bytes) in [
                "blocks/1/block.json",
                "blocks/1/pre_state.json",
                "blocks/1/block_hashes.json",
                "bytecodes.json",
            ]
            .iter()
            .zip(&files)
            {
                write(name, bytes);
            }
            (Format::Pevm, vec![input.clone()])
        }
        k @ 1..=3 => {
            write("input.json", rest);
            let format = [Format::Zeth, Format::Keth, Format::GethTracetest][usize::from(k) - 1];
            (format, vec![input.join("input.json")])
        }
        _ => {
            for (name, bytes) in ["genesis.json", "chain.rlp"].iter().zip(&files) {
                write(name, bytes);
            }
            (Format::Hivechain, vec![input.clone()])
        }
    };
    let out = dir.path().join("out");
    if txshadow_import::import(format, &inputs, &out, &ImportOptions::default()).is_ok()
        && let Ok(c) = Corpus::open(&out)
    {
        let _ = c.verify();
    }
}

/// A node's JSON-RPC answer: the first byte picks what it is decoded as (by its value modulo
/// 3), the rest is the JSON:
/// - an `eth_getBlockByNumber(n, true)` block, converted into a corpus block as capture does;
/// - a prestate tracer diff (`{"pre":…,"post":…}`), into a tx's post-state as capture does;
/// - the node engine's trace answers `[diff, callTracer frame]`, into a tx's execution, and the
///   frame's logs in order.
#[doc(hidden)]
pub fn rpc_response(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    match first % 3 {
        0 => {
            if let Ok(b) = serde_json::from_slice::<
                alloy_rpc_types_eth::Block<alloy_rpc_types_eth::Transaction>,
            >(rest)
            {
                let _ = txshadow_rpc::rpc_block_to_record(&b);
            }
        }
        1 => {
            if let Ok(d) =
                serde_json::from_slice::<alloy_rpc_types_trace::geth::pre_state::DiffMode>(rest)
            {
                let _ = txshadow_rpc::created_accounts(&d);
                let _ = txshadow_rpc::tx_post_state(&d, &[]);
            }
        }
        _ => {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(rest) {
                let (diff, call) = match v.as_array().map(Vec::as_slice) {
                    Some([d, c]) => (d.clone(), c.clone()),
                    _ => (v.clone(), v.clone()),
                };
                let _ = txshadow_node::exec_from_traces(&diff, &call, &[]);
                let _ = txshadow_node::logs_in_order(&call);
            }
        }
    }
}

/// Whether side items or a suite would have txshadow read a device or a kernel file (a code
/// file named by path): a fuzz input must not make the harness read `/dev/zero` forever.
fn names_system_file(text: &str) -> bool {
    ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p))
}

/// A TOML file: the first byte picks an accepted-differences file (even) or a suite file (odd);
/// each configuration a suite names is then built as `--candidate NAME` would build it.
#[doc(hidden)]
pub fn toml_files(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let dir = tempdir();
    let path = dir.path().join("file.toml");
    fs::write(&path, rest).expect("write toml");
    if first % 2 == 0 {
        let _ = txshadow_diff::AcceptedFile::load(&path);
        return;
    }
    if names_system_file(&String::from_utf8_lossy(rest)) {
        return;
    }
    if let Ok(suite) = crate::sides::Suite::load(&path) {
        let names: Vec<String> = suite.0.config.keys().cloned().collect();
        for name in names {
            let _ = crate::sides::parse_side_engine("candidate", &name, Some(&suite));
        }
    }
}

/// The `--baseline`/`--candidate` item syntax (`spec=…,code.ADDR=FILE,…,node=URL`).
#[doc(hidden)]
pub fn side_items(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if names_system_file(text) {
        return;
    }
    let _ = crate::sides::parse_side_engine("candidate", text, None);
}
