//! A block in which one tx destroys a contract that has storage (SELFDESTRUCT before Cancun) and
//! a later tx sends value to the same address: the account comes back with empty storage.

use std::collections::BTreeMap;

use alloy_consensus::{Header, SignableTransaction, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, address, keccak256};
use revm::{
    database_interface::{Database, DatabaseCommit},
    primitives::AddressMap,
    state::{Account, AccountInfo, AccountStatus},
};
use txshadow_corpus::{
    AccountState, BlockRecord, ChainConfig, Conventions, KECCAK_EMPTY, StateMap, TxRecord,
};
use txshadow_replay::{
    BlockRunOptions, Codes, Overrides, SideConfig, SpecId, block_db, decode_code, run_block,
    run_block_tx_mode, state_root,
};

const SENDER: Address = address!("0x1000000000000000000000000000000000000001");
const VICTIM: Address = address!("0x2000000000000000000000000000000000000002");
const COINBASE: Address = address!("0x3000000000000000000000000000000000000003");
const GAS_PRICE: u128 = 10_000_000_000;
const SENT: u64 = 1_000;

/// CALLER SELFDESTRUCT: any call destroys the contract, its balance going to the caller.
fn victim_code() -> Bytes {
    Bytes::from_static(&[0x33, 0xff])
}

fn tx(nonce: u64, value: u64) -> TxRecord {
    let tx = TxLegacy {
        chain_id: Some(1),
        nonce,
        gas_price: GAS_PRICE,
        gas_limit: 100_000,
        to: TxKind::Call(VICTIM),
        value: U256::from(value),
        input: Bytes::new(),
    };
    // the engine takes the recorded sender; the signature is not checked
    let env = TxEnvelope::from(tx.into_signed(Signature::new(U256::from(1), U256::from(1), false)));
    let raw = env.encoded_2718();
    TxRecord {
        hash: keccak256(&raw),
        from: SENDER,
        raw: raw.into(),
    }
}

/// A London block (before Cancun, SELFDESTRUCT destroys): tx 0 destroys the victim, tx 1 sends
/// it value. The pre-state is the whole state, so the replay computes the real state root.
fn block(codes: &mut Codes) -> BlockRecord {
    let code_hash = codes.insert(decode_code(victim_code()));
    let header = Header {
        number: 15_000_000,
        timestamp: 1_656_586_444,
        gas_limit: 30_000_000,
        base_fee_per_gas: Some(1_000_000_000),
        beneficiary: COINBASE,
        difficulty: U256::from(1u64 << 40),
        ..Default::default()
    };
    let mut pre = StateMap::new();
    pre.insert(
        SENDER,
        Some(AccountState {
            balance: U256::from(10u128.pow(18)),
            ..Default::default()
        }),
    );
    pre.insert(
        VICTIM,
        Some(AccountState {
            balance: U256::from(5),
            nonce: 1,
            code_hash,
            storage: BTreeMap::from([
                (U256::ZERO, U256::from(0x2a)),
                (U256::from(1), U256::from(7)),
            ]),
        }),
    );
    BlockRecord {
        pre_state: pre,
        pre_state_is_full: true,
        synthetic: true,
        conventions: Conventions {
            rewards: false,
            system_calls: false,
            ..Conventions::default()
        },
        ..BlockRecord::new(B256::repeat_byte(0xbb), header, vec![tx(0, 0), tx(1, SENT)])
    }
}

#[test]
fn an_account_destroyed_then_sent_value_has_no_storage_after_the_block() {
    let mut codes = Codes::default();
    let b = block(&mut codes);
    let chain = ChainConfig::mainnet();
    let side = SideConfig::chain("baseline");
    let out = run_block(&b, &chain, &codes, &side, &BlockRunOptions::default()).outcome;
    assert_eq!(out.error, None);
    assert!(
        !txshadow_replay::parse_spec(&out.spec)
            .unwrap()
            .is_enabled_in(SpecId::CANCUN)
    );
    assert!(out.txs.iter().all(|t| t.exec().is_some_and(|e| e.status)));
    // tx 0 destroyed it, wiping its storage
    let e0 = out.txs[0].exec().unwrap();
    assert_eq!(e0.state.get(&VICTIM), Some(&None));
    assert!(e0.storage_reset.contains(&VICTIM));

    // after the block: an account holding what tx 1 sent, its storage wiped
    let victim = AccountState {
        balance: U256::from(SENT),
        nonce: 0,
        code_hash: KECCAK_EMPTY,
        storage: BTreeMap::new(),
    };
    assert_eq!(out.post_state.get(&VICTIM), Some(&Some(victim.clone())));
    assert!(
        out.storage_reset.contains(&VICTIM),
        "{:?}",
        out.storage_reset
    );

    // the real state root: the sender's post-state, the victim without its old slots
    let mut accounts: BTreeMap<Address, AccountState> = BTreeMap::new();
    for (a, s) in &out.post_state {
        if let Some(s) = s {
            accounts.insert(*a, s.clone());
        }
    }
    assert_eq!(
        accounts.keys().copied().collect::<Vec<_>>(),
        [SENDER, VICTIM, COINBASE]
    );
    assert_eq!(accounts[&VICTIM], victim);
    assert_eq!(out.state_root, Some(state_root(&accounts)));
    assert!(out.state_root_exact);

    // the same in tx mode, where a candidate runs each tx on its own layered pre-state
    let tx_mode = run_block_tx_mode(&b, &chain, &codes, &side, Some(&side));
    assert_eq!(tx_mode.baseline.state_root, out.state_root);
    let cand = tx_mode.candidate.expect("a candidate ran");
    let e1 = cand.txs[1].exec().unwrap();
    assert_eq!(e1.state.get(&VICTIM), Some(&Some(victim)));
    assert_eq!(
        cand.txs, tx_mode.baseline.txs,
        "each tx alone = the block run's"
    );
}

/// The block database a later tx reads: a slot of the destroyed account reads zero after the
/// account is sent value, as a new account's would.
#[test]
fn a_destroyed_account_sent_value_reads_zero_storage() {
    let mut codes = Codes::default();
    let b = block(&mut codes);
    let overrides = Overrides::default();
    let mut db = block_db(&b, &codes, &overrides);
    assert_eq!(db.storage(VICTIM, U256::ZERO).unwrap(), U256::from(0x2a));

    let mut destroyed = Account::from(db.basic(VICTIM).unwrap().unwrap());
    destroyed.status = AccountStatus::Touched | AccountStatus::SelfDestructed;
    db.commit(AddressMap::from_iter([(VICTIM, destroyed)]));
    assert_eq!(db.basic(VICTIM).unwrap(), None);

    let mut funded = Account::from(AccountInfo {
        balance: U256::from(SENT),
        ..Default::default()
    });
    funded.status = AccountStatus::Touched;
    db.commit(AddressMap::from_iter([(VICTIM, funded)]));
    assert_eq!(db.basic(VICTIM).unwrap().unwrap().balance, U256::from(SENT));
    for slot in [U256::ZERO, U256::from(1)] {
        assert_eq!(db.storage(VICTIM, slot).unwrap(), U256::ZERO, "slot {slot}");
    }
}
