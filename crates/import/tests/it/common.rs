//! Shared helpers: find the shared corpora, import, replay, diff.

use std::path::{Path, PathBuf};

use txshadow_corpus::{BlockRecord, Corpus};
use txshadow_diff::{Comparison, Finding, Mode, diff_against_chain};
use txshadow_import::{Format, ImportOptions, import};
use txshadow_replay::{
    BlockOutcome, BlockRunOptions, Codes, SideConfig, run_block, run_block_tx_mode,
};

/// `../shared/corpora/<name>` from the workspace root, if present.
pub(crate) fn shared(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join("../shared/corpora").join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} not found (the shared corpora are not beside this checkout)",
            p.display()
        );
        None
    }
}

/// Imports `inputs` into a fresh temp corpus.
pub(crate) fn import_to_temp(format: Format, inputs: &[PathBuf]) -> (tempfile::TempDir, Corpus) {
    let dir = tempfile::tempdir().unwrap();
    import(format, inputs, dir.path(), &ImportOptions::default()).unwrap();
    let c = Corpus::open(dir.path()).unwrap();
    (dir, c)
}

/// Replays every block of a corpus under the chain's rules and diffs against the chain.
pub(crate) fn replay_and_diff(
    c: &Corpus,
    mode: Mode,
) -> (Vec<BlockRecord>, Vec<BlockOutcome>, Vec<Finding>) {
    let blocks = c.load_blocks().unwrap();
    let store = c.load_codes(&blocks).unwrap();
    let codes = Codes::from_store(&store, blocks.iter().flat_map(|b| b.code_hashes()));
    let chain = &c.manifest().chain;
    let side = SideConfig::chain("baseline");
    let mut outs = vec![];
    let mut findings = vec![];
    for b in &blocks {
        let out = match mode {
            Mode::Block => run_block(b, chain, &codes, &side, &BlockRunOptions::default()).outcome,
            Mode::Tx => run_block_tx_mode(b, chain, &codes, &side, None).baseline,
        };
        let ch = b.chain.as_ref().unwrap_or(chain);
        findings.extend(diff_against_chain(
            b,
            ch,
            &out,
            mode,
            Comparison::BaselineVsChain,
        ));
        outs.push(out);
    }
    (blocks, outs, findings)
}
