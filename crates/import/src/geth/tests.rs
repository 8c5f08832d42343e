//! Unit tests of the geth tracetest importer's steps.

use std::collections::BTreeMap;

use alloy_hardforks::{EthereumHardfork as Fork, ForkCondition};
use alloy_primitives::{Address, U256};
use serde_json::Value;
use txshadow_corpus::{AccountState, KECCAK_EMPTY, StateMap};

use super::{
    expected::{expected_from_diff, frame_logs},
    json::{GethConfig, quantity},
    rules::{SSTORE, chain_rules, has_opcode},
};

#[test]
fn quantities() {
    assert_eq!(quantity(&Value::from(7)).unwrap(), U256::from(7));
    assert_eq!(quantity(&Value::from("0x1f")).unwrap(), U256::from(31));
    assert_eq!(quantity(&Value::from("31")).unwrap(), U256::from(31));
    assert_eq!(quantity(&Value::from("0x")).unwrap(), U256::ZERO);
    assert!(quantity(&Value::from("x1")).is_err());
}

fn cfg(json: &str) -> GethConfig {
    GethConfig::new(&serde_json::from_str(json).unwrap()).unwrap()
}

#[test]
fn schedule_follows_geth_rules() {
    // timestamp forks need terminalTotalDifficulty 0 (geth's isMerge); keys are case-blind
    let c = cfg(
        r#"{"chainId":5,"homesteadBlock":0,"eip150Block":0,"eip158Block":0,
        "byzantiumBlock":0,"constantinopleBlock":0,"petersburgBlock":0,"IstanbulBlock":"0x10",
        "berlinBlock":0,"londonBlock":0,"shanghaiTime":0}"#,
    );
    let r = chain_rules(&c, 20, 1, || unreachable!()).unwrap();
    assert!(r.unsupported.is_none() && !r.merged);
    assert_eq!(r.chain.activation(Fork::Istanbul), ForkCondition::Block(16));
    assert_eq!(r.chain.activation(Fork::Shanghai), ForkCondition::Never);
    // a later fork without an earlier one cannot be expressed
    let c = cfg(r#"{"chainId":1,"homesteadBlock":100,"byzantiumBlock":0}"#);
    let r = chain_rules(&c, 50, 1, || unreachable!()).unwrap();
    assert!(r.unsupported.unwrap().contains("not cumulative"));
    // Constantinople without Petersburg: Petersburg when no SSTORE can run, else unsupported
    let c = cfg(
        r#"{"chainId":63,"homesteadBlock":0,"eip150Block":0,"eip158Block":0,
        "byzantiumBlock":0,"constantinopleBlock":10,"petersburgBlock":99}"#,
    );
    let r = chain_rules(&c, 50, 1, || false).unwrap();
    assert!(r.unsupported.is_none() && r.note.is_some());
    assert_eq!(
        r.chain.activation(Fork::Petersburg),
        ForkCondition::Block(10)
    );
    let r = chain_rules(&c, 50, 1, || true).unwrap();
    assert!(r.unsupported.unwrap().contains("EIP-1283"));
    // no petersburgBlock: Petersburg comes with Constantinople
    let c = cfg(
        r#"{"chainId":1,"homesteadBlock":0,"eip150Block":0,"eip158Block":0,
        "byzantiumBlock":0,"constantinopleBlock":10}"#,
    );
    let r = chain_rules(&c, 50, 1, || unreachable!()).unwrap();
    assert_eq!(
        r.chain.activation(Fork::Petersburg),
        ForkCondition::Block(10)
    );
}

#[test]
fn diff_post_merges_over_genesis() {
    let a1 = Address::repeat_byte(1);
    let a2 = Address::repeat_byte(2);
    let a3 = Address::repeat_byte(3);
    let mut genesis = StateMap::new();
    let acc = |balance: u64, storage: &[(u64, u64)]| AccountState {
        balance: U256::from(balance),
        nonce: 1,
        code_hash: KECCAK_EMPTY,
        storage: storage
            .iter()
            .map(|(k, v)| (U256::from(*k), U256::from(*v)))
            .collect(),
    };
    genesis.insert(a1, Some(acc(10, &[(1, 5), (2, 6)])));
    genesis.insert(a2, Some(acc(20, &[])));
    genesis.insert(a3, Some(acc(30, &[(7, 8)])));
    let slot = |n: u8| format!("0x{n:064x}");
    let result: Value = serde_json::json!({
        "pre": {
            a1.to_string(): {"balance": "0xa", "nonce": 1, "storage": {slot(1): slot(5)}},
            a2.to_string(): {"balance": "0x14", "nonce": 1}
        },
        "post": {
            a1.to_string(): {"balance": "0x9", "storage": {slot(3): slot(9)}}
        }
    });
    let x = expected_from_diff(&result, &genesis, None).unwrap();
    let post = x.post_state.unwrap();
    // changed: balance from post, nonce kept, slot 1 cleared, slot 3 set, slot 2 not named
    let p1 = post[&a1].as_ref().unwrap();
    assert_eq!((p1.balance, p1.nonce), (U256::from(9), 1));
    assert_eq!(
        p1.storage,
        BTreeMap::from([(U256::from(1), U256::ZERO), (U256::from(3), U256::from(9))])
    );
    // in pre, not in post: deleted; untouched genesis account: unchanged, slots included
    assert_eq!(post[&a2], None);
    assert_eq!(post[&a3], genesis[&a3]);
}

#[test]
fn opcode_sweep_skips_push_data() {
    // PUSH1 0x55, STOP: no SSTORE
    assert!(!has_opcode(&[0x60, 0x55, 0x00], SSTORE));
    // PUSH1 1, PUSH1 0, SSTORE
    assert!(has_opcode(&[0x60, 0x01, 0x60, 0x00, 0x55], SSTORE));
}

#[test]
fn logs_interleave_with_calls_by_position() {
    let frame: Value = serde_json::from_str(
        r#"{"logs":[{"address":"0x0000000000000000000000000000000000000001","topics":[],"data":"0x01","position":"0x1"},
                    {"address":"0x0000000000000000000000000000000000000001","topics":[],"data":"0x00","position":"0x0"}],
            "calls":[{"logs":[{"address":"0x0000000000000000000000000000000000000002","topics":[],"data":"0x02","position":"0x0"}]},
                     {"error":"execution reverted","logs":[{"address":"0x0000000000000000000000000000000000000003","topics":[],"data":"0x03","position":"0x0"}]}]}"#,
    )
    .unwrap();
    let mut out = vec![];
    frame_logs(&frame, &mut out).unwrap();
    let data: Vec<u8> = out.iter().map(|l| l.data.data[0]).collect();
    assert_eq!(data, vec![0, 2, 1]);
}
