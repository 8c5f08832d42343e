//! Hostile data: a corpus whose pre-state makes txs run out of memory or gas in odd ways (a
//! memory expansion to 4 GiB and past 2^64, recursion to the call depth limit, a 24 KiB code of
//! JUMPDESTs looped over until the gas is gone), and a tx that panics inside the EVM. Each is
//! an outcome of its own tx; the other txs and blocks of the run match, and the run completes
//! with every tx counted once.

use alloy_consensus::{Header, SignableTransaction, TxEnvelope, TxLegacy};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, address, keccak256};
use revm::bytecode::opcode as op;
use txshadow_corpus::{AccountState, BlockRecord, ChainConfig, Conventions, StateMap, TxRecord};
use txshadow_diff::Mode;
use txshadow_replay::{Codes, SideConfig};
use txshadow_report::RunStatus;
use txshadow_run::{MemorySource, RunConfig, RunHooks, SideSpec, SourceBlock};

const ALICE: Address = address!("0x1000000000000000000000000000000000000001");
const BOB: Address = address!("0x1000000000000000000000000000000000000002");
const CAROL: Address = address!("0x1000000000000000000000000000000000000003");
const DAVE: Address = address!("0x2000000000000000000000000000000000000004");
const MEMORY_4G: Address = address!("0x3000000000000000000000000000000000000001");
const MEMORY_2_64: Address = address!("0x3000000000000000000000000000000000000002");
const RECURSE: Address = address!("0x3000000000000000000000000000000000000003");
const JUMPDESTS: Address = address!("0x3000000000000000000000000000000000000004");
const PANICS: Address = address!("0x3000000000000000000000000000000000000005");
const GAS_PRICE: u128 = 10_000_000_000;
/// A block gas limit far above mainnet's, so one tx can recurse to the depth limit.
const BLOCK_GAS: u64 = 1 << 50;
/// EIP-170: the largest code a contract can have.
const MAX_CODE: usize = 24_576;

/// MSTORE of 1 at `offset` (pushed as 32 bytes).
fn mstore_at(offset: U256) -> Bytes {
    let mut c = vec![op::PUSH1, 1, op::PUSH32];
    c.extend_from_slice(&offset.to_be_bytes::<32>());
    c.extend([op::MSTORE, op::STOP]);
    c.into()
}

/// Calls itself with calldata `depth + 1` until a call fails (the depth limit), then stores the
/// depth of the frame whose call failed in slot 0.
fn recurse() -> Bytes {
    let mut c = vec![
        op::PUSH1,
        0,
        op::CALLDATALOAD, // d
        op::DUP1,
        op::PUSH1,
        1,
        op::ADD,
        op::PUSH1,
        0,
        op::MSTORE, // mem[0] = d + 1
        op::PUSH1,
        0,
        op::PUSH1,
        0,
        op::PUSH1,
        32,
        op::PUSH1,
        0,
        op::PUSH1,
        0, // out, in, value
        op::ADDRESS,
        op::GAS,
        op::CALL, // success
    ];
    // success → the JUMPDEST 7 bytes on; failure → SSTORE(0, d)
    let done = c.len() as u8 + 7;
    c.extend([
        op::PUSH1,
        done,
        op::JUMPI,
        op::PUSH1,
        0,
        op::SSTORE,
        op::STOP,
    ]);
    c.extend([op::JUMPDEST, op::STOP]);
    c.into()
}

/// 24 KiB: JUMPDESTs, then a jump back to the start (a loop that ends when the gas does).
fn jumpdests() -> Bytes {
    let mut c = vec![op::JUMPDEST; MAX_CODE - 3];
    c.extend([op::PUSH1, 0, op::JUMP]);
    assert_eq!(c.len(), MAX_CODE);
    c.into()
}

fn tx(from: Address, nonce: u64, to: Address, gas_limit: u64, input: &[u8]) -> TxRecord {
    let tx = TxLegacy {
        chain_id: Some(1),
        nonce,
        gas_price: GAS_PRICE,
        gas_limit,
        to: TxKind::Call(to),
        value: U256::from(1),
        input: Bytes::copy_from_slice(input),
    };
    // the engine takes the recorded sender; the signature is not checked
    let env = TxEnvelope::from(tx.into_signed(Signature::new(U256::from(1), U256::from(1), false)));
    let raw = alloy_rlp::encode(&env);
    TxRecord {
        hash: keccak256(&raw),
        from,
        raw: raw.into(),
    }
}

fn account(balance: U256, code_hash: Option<B256>) -> Option<AccountState> {
    Some(AccountState {
        balance,
        code_hash: code_hash.unwrap_or(txshadow_corpus::KECCAK_EMPTY),
        ..Default::default()
    })
}

/// A Shanghai block (no system calls, no rewards) over a full pre-state: senders and contracts.
fn block(number: u64, txs: Vec<TxRecord>, codes: &mut Codes) -> BlockRecord {
    let rich = U256::from(10).pow(U256::from(30));
    let mut pre = StateMap::new();
    for a in [ALICE, BOB, CAROL, DAVE] {
        pre.insert(a, account(rich, None));
    }
    for (a, code) in [
        (MEMORY_4G, mstore_at(U256::from(1u64 << 32))),
        (MEMORY_2_64, mstore_at(U256::MAX - U256::from(31))),
        (RECURSE, recurse()),
        (JUMPDESTS, jumpdests()),
    ] {
        let h = codes.insert(txshadow_replay::decode_code(code));
        pre.insert(a, account(U256::ZERO, Some(h)));
    }
    let h = codes.insert_panicking(Bytes::from_static(&[op::STOP, op::STOP]));
    pre.insert(PANICS, account(U256::ZERO, Some(h)));
    let header = Header {
        number,
        timestamp: 1_690_000_000 + number,
        gas_limit: BLOCK_GAS,
        base_fee_per_gas: Some(1_000_000_000),
        beneficiary: DAVE,
        ..Default::default()
    };
    BlockRecord {
        pre_state: pre,
        pre_state_is_full: true,
        synthetic: true,
        conventions: Conventions {
            rewards: false,
            system_calls: false,
            ..Conventions::default()
        },
        ..BlockRecord::new(B256::repeat_byte(number as u8), header, txs)
    }
}

/// The three blocks: the hostile txs, a panic between two ordinary transfers, a plain block.
fn corpus() -> Vec<SourceBlock> {
    let chain = ChainConfig::mainnet();
    let depth0 = [0u8; 32];
    let hostile = vec![
        tx(ALICE, 0, MEMORY_4G, 30_000_000, &[]),
        tx(ALICE, 1, MEMORY_2_64, 30_000_000, &[]),
        tx(ALICE, 2, RECURSE, 1 << 46, &depth0),
        tx(ALICE, 3, JUMPDESTS, 3_000_000, &[]),
        tx(ALICE, 4, DAVE, 21_000, &[]),
    ];
    let panicking = vec![
        tx(BOB, 0, DAVE, 21_000, &[]),
        tx(CAROL, 0, PANICS, 100_000, &[]),
        tx(BOB, 1, DAVE, 21_000, &[]),
    ];
    let plain = vec![
        tx(ALICE, 0, BOB, 21_000, &[]),
        tx(BOB, 0, CAROL, 21_000, &[]),
    ];
    [
        (20_000_001, hostile),
        (20_000_002, panicking),
        (20_000_003, plain),
    ]
    .into_iter()
    .map(|(n, txs)| {
        let mut codes = Codes::default();
        let b = block(n, txs, &mut codes);
        SourceBlock::new(b, &chain, codes)
    })
    .collect()
}

#[test]
fn hostile_txs_are_outcomes_of_their_own_and_the_run_goes_on() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = RunConfig::against_chain(Mode::Block, out.path());
    // the same rules on both sides: every tx that runs matches, the panic is an error on both
    cfg.candidate = Some(SideSpec::revm(SideConfig::chain("candidate")));
    cfg.run_id = Some("hostile".into());
    cfg.jobs = 2;
    let mut src = MemorySource::new("hostile", ChainConfig::mainnet(), corpus());
    let o = txshadow_run::run(&mut src, &cfg, RunHooks::default()).unwrap();
    let r = &o.report;
    assert_eq!(r.run.status, RunStatus::Complete, "{:?}", r.run);
    let c = &r.counts;
    assert_eq!((c.blocks, c.txs), (3, 10), "{c:?}");
    assert_eq!((c.matched, c.differing, c.errors), (9, 0, 1), "{c:?}");
    assert_ne!(
        o.exit, 0,
        "an error on both sides fails the run's exit code"
    );

    let rows: Vec<Vec<String>> = csv::Reader::from_path(o.dir.join("results.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 10);
    // per tx: (to, verdict, status on both sides, gas on both sides)
    let col = |r: &[String], i: usize| r[i].clone();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                col(r, 4),
                col(r, 14),
                col(r, 7),
                col(r, 9),
                col(r, 8) == col(r, 10),
            )
        })
        .collect();
    let row = |to: Address, verdict: &str, status: &str| {
        (
            to.to_string().to_lowercase(),
            verdict.to_string(),
            status.to_string(),
            status.to_string(),
            true,
        )
    };
    let want = vec![
        row(MEMORY_4G, "match", "0"),
        row(MEMORY_2_64, "match", "0"),
        row(RECURSE, "match", "1"),
        row(JUMPDESTS, "match", "0"),
        row(DAVE, "match", "1"),
        row(DAVE, "match", "1"),
        (
            PANICS.to_string().to_lowercase(),
            "error".into(),
            String::new(),
            String::new(),
            true,
        ),
        row(DAVE, "match", "1"),
        row(BOB, "match", "1"),
        row(CAROL, "match", "1"),
    ];
    assert_eq!(got, want);
    assert!(rows[6][16].starts_with("panic: "), "{:?}", rows[6]);
}

/// The hostile block's txs one by one: what each hit, and what it left.
#[test]
fn each_hostile_tx_ends_as_the_evm_says() {
    use txshadow_replay::{BlockRunOptions, run_block};
    let sb = corpus().remove(0);
    let side = SideConfig::chain("baseline");
    let out = run_block(
        &sb.block,
        &sb.chain,
        &sb.codes,
        &side,
        &BlockRunOptions::default(),
    )
    .outcome;
    assert_eq!(out.error, None);
    let exec: Vec<_> = out
        .txs
        .iter()
        .map(|t| t.exec().expect("every tx ran"))
        .collect();
    let gas_limits = [30_000_000, 30_000_000, 1 << 46, 3_000_000, 21_000];
    // 4 GiB of memory and an offset past 2^64: out of gas, every unit of the limit spent
    for (i, reason) in [(0, "OutOfGas(Memory)"), (1, "OutOfGas(InvalidOperand)")] {
        let e = exec[i];
        assert!(!e.status, "tx {i}: {e:?}");
        assert_eq!(e.gas_used, gas_limits[i]);
        assert!(
            e.reason.as_deref().is_some_and(|r| r.contains(reason)),
            "tx {i}: {:?}",
            e.reason
        );
    }
    // recursion to the limit: the frame whose call failed is the deepest one revm allows
    let e = exec[2];
    assert!(e.status, "{e:?}");
    let depth = out.post_state[&RECURSE].as_ref().unwrap().storage[&U256::ZERO];
    assert_eq!(depth, U256::from(1024));
    // the loop over 24 KiB of JUMPDESTs: out of gas
    let e = exec[3];
    assert!(!e.status && e.gas_used == gas_limits[3], "{e:?}");
    assert!(
        e.reason.as_deref().is_some_and(|r| r.contains("OutOfGas")),
        "{:?}",
        e.reason
    );
    // and the transfer after them
    assert!(exec[4].status && exec[4].gas_used == 21_000);
    // the block's gas is the sum of its txs'
    assert_eq!(out.gas_used, exec.iter().map(|e| e.gas_used).sum::<u64>());
}
