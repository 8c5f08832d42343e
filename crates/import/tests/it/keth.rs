//! keth mainnet blocks (Cancun 21688509, Prague 22615247): every block reproduces the header's
//! gas used, logs bloom and receipts root, and the post-state of every account and slot it
//! touches (`extra.stateDiffs` over `extra.preState`).

use std::path::{Path, PathBuf};

use alloy_primitives::{U256, address, b256};
use txshadow_corpus::Corpus;
use txshadow_diff::{Comparison, Kind, Mode, diff_against_chain};
use txshadow_import::{Format, ImportError, ImportOptions, import};

use crate::common::{replay_and_diff, shared};

#[test]
fn keth_mainnet_block_mode_matches_chain() {
    let Some(root) = shared("keth-mainnet") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let summary = import(Format::Keth, &[root], dir.path(), &ImportOptions::default()).unwrap();
    assert_eq!((summary.blocks, summary.txs), (2, 34), "{summary:?}");
    let c = Corpus::open(dir.path()).unwrap();
    assert_eq!(c.manifest().tx_count(), 34);
    assert_eq!(c.verify().unwrap().blocks, 2);

    let (blocks, outs, findings) = replay_and_diff(&c, Mode::Block);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(
        blocks.iter().map(|b| b.number()).collect::<Vec<_>>(),
        vec![21_688_509, 22_615_247]
    );
    assert_eq!(outs[0].spec, "cancun");
    assert_eq!(outs[1].spec, "prague");
    let mut changes: Vec<(usize, usize, usize)> = vec![];
    for (b, o) in blocks.iter().zip(&outs) {
        assert!(o.error.is_none(), "{}: {:?}", b.number(), o.error);
        assert!(o.unknown_accounts.is_empty(), "{:?}", o.unknown_accounts);
        let post = b.expected.post_state.as_ref().unwrap();
        assert_eq!(post.len(), b.pre_state.len());
        let slots: usize = post.values().flatten().map(|a| a.storage.len()).sum();
        let changed = post
            .iter()
            .filter(|(a, s)| b.pre_state.get(*a) != Some(*s))
            .count();
        changes.push((post.len(), slots, changed));
        assert!(b.withdrawals.as_ref().is_some_and(|w| w.len() == 16));
    }
    // (accounts, slots, accounts changed): every entry of `extra.stateDiffs` is a change
    assert_eq!(changes, vec![(46, 98, 38), (62, 129, 49)]);

    // tx mode (each tx on its own pre-state) agrees too
    let (_, _, tx_findings) = replay_and_diff(&c, Mode::Tx);
    assert!(tx_findings.is_empty(), "{tx_findings:#?}");
    // the system contracts' writes are part of the expected post-state: beacon roots (both),
    // block hashes (EIP-2935, Prague)
    let beacon = address!("0x000F3df6D732807Ef1319fB7B8bB8522d0Beac02");
    let history = address!("0x0000F90827F1C53a10cb7A02335B175320002935");
    for b in &blocks {
        let post = b.expected.post_state.as_ref().unwrap()[&beacon]
            .as_ref()
            .unwrap();
        let ts = U256::from(b.header.timestamp % 8191);
        assert_eq!(post.storage[&ts], U256::from(b.header.timestamp));
    }
    let b = &blocks[1];
    let post = b.expected.post_state.as_ref().unwrap()[&history]
        .as_ref()
        .unwrap();
    let slot = U256::from((b.number() - 1) % 8191);
    assert_eq!(
        post.storage[&slot],
        U256::from_be_bytes(b.header.parent_hash.0)
    );

    // withdrawal recipients that are contracts: their code is not in the source, the corpus
    // says so, and they replay with their true code hash (no State finding above)
    let codes = c.load_codes(&blocks).unwrap();
    let h = b256!("0xabfd2dfbb9f1b63da008db9f3d405ec3c11d9cf641d23724b472062fd1753584");
    assert!(codes.is_unavailable(&h));
    assert_eq!(codes.unavailable().count(), 2);
    let recipient = address!("0xf897e5cbab216805ded275c3d8caf0a3477e3400");
    assert_eq!(
        outs[1].post_state[&recipient].as_ref().unwrap().code_hash,
        h
    );

    // the post-state check is live: one wrong expected value is a State finding
    let chain = &c.manifest().chain;
    let mut m = blocks[1].clone();
    let post = m.expected.post_state.as_mut().unwrap();
    let acc = post.get_mut(&recipient).unwrap().as_mut().unwrap();
    acc.balance -= U256::from(1);
    let f = diff_against_chain(
        &m,
        chain,
        &outs[1],
        Mode::Block,
        Comparison::BaselineVsChain,
    );
    assert!(
        f.iter()
            .any(|f| f.kind == Kind::State && f.field == format!("state.{recipient}.balance")),
        "{f:#?}"
    );
    let mut m = blocks[0].clone();
    let post = m.expected.post_state.as_mut().unwrap();
    let acc = post.get_mut(&beacon).unwrap().as_mut().unwrap();
    let ts = U256::from(m.header.timestamp % 8191);
    acc.storage.insert(ts, U256::ZERO);
    let f = diff_against_chain(
        &m,
        chain,
        &outs[0],
        Mode::Block,
        Comparison::BaselineVsChain,
    );
    assert!(
        f.iter().any(|f| f.kind == Kind::State
            && f.field == format!("state.{beacon}.storage[{ts:#x}]")),
        "{f:#?}"
    );
}

fn tampered(dir: &Path, src: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
    edit(&mut v);
    let p = dir.join(src.file_name().unwrap());
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

fn import_err(p: &Path) -> ImportError {
    let out = tempfile::tempdir().unwrap();
    match import(
        Format::Keth,
        &[p.to_path_buf()],
        out.path(),
        &ImportOptions::default(),
    ) {
        // a bad input file is listed with its reason, and the import goes on without it
        Ok(s) if s.blocks == 0 && !s.failed.is_empty() => {
            let (path, reason) = s.failed.into_iter().next().expect("one failed input");
            ImportError::Source { path, reason }
        }
        Ok(s) => panic!("{} imported: {s:?}", p.display()),
        Err(e) => e,
    }
}

#[test]
fn keth_malformed_input_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("1.json");
    std::fs::write(&p, r#"{"blocks": []"#).unwrap();
    let err = import_err(&p);
    assert!(
        matches!(&err, ImportError::Source { path, reason } if *path == p && reason.contains("invalid JSON")),
        "{err}"
    );

    let Some(root) = shared("keth-mainnet") else {
        return;
    };
    let src = root.join("21688509.json");
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: [(&str, Edit); 4] = [
        (
            "differs from the witness",
            Box::new(|v| {
                v["extra"]["preState"]["0x0000000000000000000000000000000000000001"]["balance"] =
                    "0x1".into();
            }),
        ),
        (
            "hash to",
            Box::new(|v| {
                v["blocks"][0]["transaction"][0]["hash"] = format!("0x{}", "11".repeat(32)).into();
            }),
        ),
        (
            "withdrawals hash to root",
            Box::new(|v| {
                v["blocks"][0]["withdrawals"][0]["amount"] = "0x1".into();
            }),
        ),
        (
            "preAccount disagrees",
            Box::new(|v| {
                v["extra"]["stateDiffs"][0]["preAccount"]["nonce"] = "0x99".into();
            }),
        ),
    ];
    for (want, edit) in cases {
        let p = tampered(dir.path(), &src, edit);
        let err = import_err(&p);
        assert!(
            matches!(&err, ImportError::Source { path, reason } if *path == p && reason.contains(want)),
            "want {want:?}: {err}"
        );
    }
}

/// A replay that needs a code the source lacks fails, naming the code hash: it never runs the
/// account as if it had no code.
#[test]
fn keth_unavailable_code_fails_when_run() {
    use alloy_consensus::{SignableTransaction, TxEnvelope, TxLegacy};
    use alloy_eips::eip2718::Encodable2718;
    use alloy_primitives::{Signature, TxKind, keccak256};
    use txshadow_corpus::TxRecord;
    use txshadow_replay::{BlockRunOptions, Codes, SideConfig, run_block};

    let Some(root) = shared("keth-mainnet") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    import(
        Format::Keth,
        &[root.join("22615247.json")],
        dir.path(),
        &ImportOptions::default(),
    )
    .unwrap();
    let c = Corpus::open(dir.path()).unwrap();
    let mut b = c.load_blocks().unwrap().remove(0);
    let store = c.load_codes([&b]).unwrap();
    let codes = Codes::from_store(&store, b.code_hashes());
    // one call from a funded sender of the block to the withdrawal recipient whose code the
    // source lacks (the engine takes the recorded sender; the signature is not checked)
    let from = b.transactions[0].from;
    let nonce = b.pre_state[&from].as_ref().unwrap().nonce;
    let recipient = address!("0xf897e5cbab216805ded275c3d8caf0a3477e3400");
    let tx = TxLegacy {
        chain_id: Some(1),
        nonce,
        gas_price: u128::from(b.header.base_fee_per_gas.unwrap()) * 2,
        gas_limit: 100_000,
        to: TxKind::Call(recipient),
        value: U256::from(1),
        input: Default::default(),
    };
    let env = TxEnvelope::from(tx.into_signed(Signature::new(U256::from(1), U256::from(1), false)));
    let raw = env.encoded_2718();
    b.transactions = vec![TxRecord {
        hash: keccak256(&raw),
        from,
        raw: raw.into(),
    }];
    let out = run_block(
        &b,
        &c.manifest().chain,
        &codes,
        &SideConfig::chain("baseline"),
        &BlockRunOptions::default(),
    )
    .outcome;
    let err = match &out.txs[0].result {
        Ok(e) => panic!("the call ran: {e:?}"),
        Err(e) => e.clone(),
    };
    assert!(
        err.contains("abfd2dfbb9f1b63da008db9f3d405ec3c11d9cf641d23724b472062fd1753584"),
        "{err}"
    );
}
