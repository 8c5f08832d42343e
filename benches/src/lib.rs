//! Criterion benches of txshadow's library functions over the shipped mainnet corpus
//! (`corpora/mainnet`): corpus load (its JSON block files, the same blocks in the binary
//! encoding, and with its codes compressed), block replay of the largest blocks against raw
//! revm on the same blocks (receipts by the trie, and field by field against sealed receipts),
//! tx replay against the chain and with a candidate, sealing, the diff of two outcomes, report
//! writing.
//!
//! ```sh
//! cargo bench -p txshadow-benches            # all
//! cargo bench -p txshadow-benches -- block   # one group
//! ```
//!
//! The whole-corpus figures (overhead against raw revm, scaling, load share) come from
//! `txshadow bench <corpus>`, which runs the same library functions (`txshadow-run`) on a whole
//! corpus.

use std::path::PathBuf;

/// The shipped corpus the benches pin their inputs to.
pub fn shipped_corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpora/mainnet")
}

/// A copy of the shipped corpus as import writes one today: every block file in the binary
/// encoding, the receipts sealed (see `txshadow corpus seal`). Removed when dropped.
pub fn sealed_binary_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let from = shipped_corpus();
    for sub in ["blocks", "codes"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("creates");
        for e in std::fs::read_dir(from.join(sub)).expect("reads").flatten() {
            std::fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).expect("copies");
        }
    }
    std::fs::copy(from.join("manifest.json"), dir.path().join("manifest.json")).expect("copies");
    let c = txshadow_corpus::Corpus::open(dir.path()).expect("opens");
    let m = c.manifest();
    let mut w = txshadow_corpus::CorpusWriter::create(
        dir.path(),
        m.chain.clone(),
        m.provenance.clone(),
        false,
    )
    .expect("resumes");
    for e in &m.blocks {
        w.put_block_deferred(&c.load_block(e).expect("loads"))
            .expect("writes");
    }
    w.finish().expect("finishes");
    let opts = txshadow_run::SealOptions {
        write: true,
        replay_all: false,
    };
    txshadow_run::seal_corpus(dir.path(), opts).expect("seals");
    dir
}

/// [`sealed_binary_copy`] with its codes stored LZ4-compressed (`txshadow corpus pack --codes
/// compressed`). Removed when dropped.
pub fn compressed_codes_copy() -> tempfile::TempDir {
    let dir = sealed_binary_copy();
    txshadow_corpus::pack_corpus(dir.path(), Some(txshadow_corpus::CodeStorage::Compressed))
        .expect("packs");
    dir
}
