//! pevm mainnet blocks: every block reproduces the header's gas used, logs bloom and receipts root.

use txshadow_capture::import::Format;
use txshadow_diff::Mode;

use crate::common::{import_to_temp, replay_and_diff, shared};

#[test]
fn pevm_8889776_block_mode_matches_header() {
    let Some(root) = shared("pevm-mainnet") else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("blocks")).unwrap();
    let b = root.join("blocks/8889776");
    let dst = src.path().join("blocks/8889776");
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["block.json", "pre_state.json", "block_hashes.json"] {
        std::fs::copy(b.join(f), dst.join(f)).unwrap();
    }
    std::fs::copy(
        root.join("bytecodes.json"),
        src.path().join("bytecodes.json"),
    )
    .unwrap();
    let (_d, c) = import_to_temp(Format::Pevm, &[src.path().to_path_buf()]);
    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert_eq!(blocks.len(), 1);
    assert!(outs[0].txs.len() > 100);
    assert!(findings.is_empty(), "{findings:#?}");
}
