//! The blockchain-test importer on the `blockchain_test_engine` form: a chain given as
//! `engine_newPayload` calls imports to the same blocks as its `blockchain_test` form, and a
//! payload whose header does not hash to its `blockHash` is refused.

use std::path::{Path, PathBuf};

use alloy_consensus::{Block, TxEnvelope};
use alloy_primitives::Bytes;
use alloy_rlp::Decodable;
use alloy_rpc_types_engine::ExecutionPayload;
use serde_json::{Value, json};
use txshadow_diff::Mode;
use txshadow_import::Format;

use crate::common::{import_to_temp, replay_and_diff};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/ethereum-tests/BlockchainTests/ValidBlocks/bcEIP4844-blobtransactions/blockWithAllTransactionTypes.json")
}

/// The engine form of a `blockchain_test` fixture: each block as a payload and its sidecar.
fn engine_form(fixture: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (name, case) in fixture.as_object().unwrap() {
        let mut c = case.clone();
        let m = c.as_object_mut().unwrap();
        let blocks = m.remove("blocks").unwrap();
        m.remove("genesisRLP");
        let payloads: Vec<Value> = blocks
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let rlp: Bytes = serde_json::from_value(b["rlp"].clone()).unwrap();
                let block = Block::<TxEnvelope>::decode(&mut rlp.as_ref()).unwrap();
                let (payload, sidecar) = ExecutionPayload::from_block_slow(&block);
                let hashes = sidecar.versioned_hashes().cloned().unwrap_or_default();
                json!({
                    "params": [payload, hashes, sidecar.parent_beacon_block_root()],
                    "newPayloadVersion": "3",
                    "forkchoiceUpdatedVersion": "3",
                })
            })
            .collect();
        m.insert("engineNewPayloads".into(), payloads.into());
        out.insert(format!("{name}_engine"), c);
    }
    out.into()
}

#[test]
fn an_engine_fixture_imports_to_the_blocks_of_its_rlp_form() {
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(sample()).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let engine = tmp.path().join("engine.json");
    std::fs::write(&engine, serde_json::to_vec(&engine_form(&fixture)).unwrap()).unwrap();

    let (_a, rlp) = import_to_temp(Format::BlockchainTests, &[sample()]);
    let (_b, eng) = import_to_temp(Format::BlockchainTests, &[engine]);
    let hashes = |c: &txshadow_corpus::Corpus| -> Vec<_> {
        c.manifest().blocks.iter().map(|b| b.hash).collect()
    };
    assert!(!hashes(&rlp).is_empty());
    assert_eq!(hashes(&rlp), hashes(&eng));
    let (_, _, findings) = replay_and_diff(&eng, Mode::Block);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn a_payload_whose_header_does_not_hash_to_its_block_hash_is_refused() {
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(sample()).unwrap()).unwrap();
    let mut engine = engine_form(&fixture);
    let case = engine.as_object_mut().unwrap().values_mut().next().unwrap();
    let payload = &mut case["engineNewPayloads"][0]["params"][0];
    payload["extraData"] = "0x01".into();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("engine.json");
    std::fs::write(&file, serde_json::to_vec(&engine).unwrap()).unwrap();
    let out = tmp.path().join("c");
    let s = txshadow_import::import(Format::BlockchainTests, &[file], &out, &Default::default())
        .unwrap();
    assert_eq!(s.blocks, 0);
    let (_, why) = &s.failed[0];
    assert!(why.contains("hashes to"), "{why}");
}
