//! Criterion benches of txshadow's library functions over the shipped mainnet corpus
//! (`corpora/mainnet`): corpus load, block replay of the largest blocks against raw revm on the
//! same blocks, tx replay, the diff of two outcomes, report writing.
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
