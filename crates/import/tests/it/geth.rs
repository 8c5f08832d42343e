//! go-ethereum tracer fixtures: every supported fixture replays (tx mode, baseline) to exactly what
//! geth's tracer recorded (gas used, output, error, logs, post-state), every recorded value is
//! compared, and the fixtures revm cannot replay are listed with their reason.

use std::collections::BTreeMap;

use alloy_primitives::{Bytes, Log, U256};
use txshadow_corpus::{BlockRecord, Corpus, ExpectedTx};
use txshadow_diff::{Comparison, Finding, Kind, Mode, diff_against_chain};
use txshadow_import::{Format, ImportOptions, import};
use txshadow_replay::{BlockOutcome, Codes, SideConfig, run_block_tx_mode};

use crate::common::shared;

/// Fixtures in the shared corpus.
const FIXTURES: usize = 97;

/// Fixtures revm cannot replay under geth's rules: the mordor (ETC testnet) configs activate
/// Constantinople at 301243 and Petersburg only at 999983, so geth meters SSTORE with EIP-1283
/// at these blocks, and their code executes SSTORE.
const UNSUPPORTED: [&str; 5] = [
    "call_tracer_flat/include_precompiled",
    "call_tracer_flat/inner_precompiled_wrong_gas",
    "call_tracer_flat/nested_create",
    "call_tracer_flat/result_output",
    "call_tracer_flat/staticcall_precompiled",
];

/// Supported fixtures holding each kind of expectation. Call frames record gas, output and
/// success/error (59 = 15 callTracer + 12 legacy + 10 withLog + 3 erc7562 + 19 flat tops with a
/// result); the 8 flat tops whose call failed without a revert record only the error; 13 diff
/// mode prestates record the post-state.
const WITH_GAS: usize = 59;
const WITH_OUTPUT: usize = 59;
const WITH_STATUS: usize = 67;
const WITH_ERROR: usize = 25;
const WITH_LOGS: usize = 9;
const WITH_POST_STATE: usize = 13;
/// prestateTracer without diff mode records only what the tx read.
const NOTHING_RECORDED: usize = 12;

struct Run {
    _dir: tempfile::TempDir,
    blocks: Vec<BlockRecord>,
    /// Outcome of each supported block, by label.
    outcomes: BTreeMap<String, BlockOutcome>,
}

fn label(b: &BlockRecord) -> &str {
    b.label.as_deref().unwrap_or_default()
}

/// Imports every fixture and replays the supported ones in tx mode (baseline only).
fn import_and_replay() -> Option<Run> {
    let root = shared("geth-tracetest")?;
    let dir = tempfile::tempdir().unwrap();
    let summary = import(
        Format::GethTracetest,
        &[root],
        dir.path(),
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(summary.blocks, FIXTURES);
    assert_eq!(summary.txs, FIXTURES);
    let listed: Vec<&str> = summary
        .unsupported
        .iter()
        .map(|(l, _)| l.as_str())
        .collect();
    assert_eq!(listed, UNSUPPORTED, "{:#?}", summary.unsupported);
    for (l, reason) in &summary.unsupported {
        assert!(reason.contains("EIP-1283"), "{l}: {reason}");
    }
    let c = Corpus::open(dir.path()).unwrap();
    let v = c.verify().unwrap();
    assert_eq!((v.blocks, v.txs), (FIXTURES, FIXTURES));
    let blocks = c.load_blocks().unwrap();
    let store = c.load_codes(&blocks).unwrap();
    let codes = Codes::from_store(&store, blocks.iter().flat_map(|b| b.code_hashes()));
    let side = SideConfig::chain("baseline");
    let outcomes = blocks
        .iter()
        .filter(|b| b.unsupported.is_none())
        .map(|b| {
            let chain = b.chain.as_ref().expect("every fixture has its chain");
            let out = run_block_tx_mode(b, chain, &codes, &side, None).baseline;
            (label(b).to_string(), out)
        })
        .collect();
    Some(Run {
        _dir: dir,
        blocks,
        outcomes,
    })
}

fn diff(b: &BlockRecord, out: &BlockOutcome) -> Vec<Finding> {
    diff_against_chain(
        b,
        b.chain.as_ref().unwrap(),
        out,
        Mode::Tx,
        Comparison::BaselineVsChain,
    )
}

fn expected(b: &BlockRecord) -> Option<&ExpectedTx> {
    b.expected.txs.first().and_then(Option::as_ref)
}

#[test]
fn geth_tracetest_supported_fixtures_match_recorded_results() {
    let Some(run) = import_and_replay() else {
        return;
    };
    let supported: Vec<&BlockRecord> = run
        .blocks
        .iter()
        .filter(|b| b.unsupported.is_none())
        .collect();
    assert_eq!(supported.len(), FIXTURES - UNSUPPORTED.len());
    let mut findings = vec![];
    for b in &supported {
        assert!(b.synthetic && !b.expected.header_checks, "{}", label(b));
        assert!(!b.conventions.rewards && !b.conventions.system_calls);
        let out = &run.outcomes[label(b)];
        assert_eq!(out.txs.len(), 1);
        assert!(out.error.is_none(), "{}: {:?}", label(b), out.error);
        for f in diff(b, out) {
            findings.push(format!(
                "{}: {} {:?}: got {} expected {}",
                label(b),
                f.field,
                f.kind,
                f.got,
                f.expected
            ));
        }
    }
    assert!(findings.is_empty(), "{findings:#?}");

    // what was compared (the diff compares every field an expectation holds)
    let count = |f: &dyn Fn(&ExpectedTx) -> bool| {
        supported
            .iter()
            .filter(|b| expected(b).is_some_and(f))
            .count()
    };
    assert_eq!(count(&|x| x.gas_used.is_some()), WITH_GAS);
    assert_eq!(count(&|x| x.output.is_some()), WITH_OUTPUT);
    assert_eq!(count(&|x| x.status.is_some()), WITH_STATUS);
    assert_eq!(count(&|x| x.error.is_some()), WITH_ERROR);
    assert_eq!(count(&|x| x.logs.is_some()), WITH_LOGS);
    assert_eq!(count(&|x| x.post_state.is_some()), WITH_POST_STATE);
    let nothing = supported.iter().filter(|b| expected(b).is_none()).count();
    assert_eq!(nothing, NOTHING_RECORDED);
    assert!(
        supported
            .iter()
            .filter(|b| expected(b).is_none())
            .all(|b| label(b).starts_with("prestate_tracer/")
                || label(b).starts_with("prestate_tracer_legacy/"))
    );
    // every fixture with a recorded gas, output or error has it
    for b in &supported {
        let l = label(b);
        let x = expected(b);
        if l.starts_with("call_tracer/")
            || l.starts_with("call_tracer_legacy/")
            || l.starts_with("call_tracer_withLog/")
            || l.starts_with("erc7562_tracer/")
        {
            let x = x.unwrap_or_else(|| panic!("{l}: no expectation"));
            assert!(x.gas_used.is_some() && x.output.is_some(), "{l}");
        }
        if l.starts_with("call_tracer_flat/") {
            let x = x.unwrap_or_else(|| panic!("{l}: no expectation"));
            assert!(x.status.is_some(), "{l}");
        }
        if l.starts_with("prestate_tracer_with_diff_mode/") {
            assert!(x.is_some_and(|x| x.post_state.is_some()), "{l}");
        }
    }
}

/// Mutates one kind of expectation of a fixture; `None` if the fixture holds none of that kind.
fn mutate(x: &ExpectedTx, kind: Kind) -> Option<ExpectedTx> {
    let mut m = x.clone();
    match kind {
        Kind::Gas => m.gas_used = Some(x.gas_used? + 1),
        Kind::Output => {
            let mut o = x.output.clone()?.to_vec();
            o.push(0x01);
            m.output = Some(Bytes::from(o));
        }
        Kind::Status => {
            // a success now expected to fail, a failure expected to fail differently
            x.status?;
            m.status = Some(false);
            m.error = Some(match x.error.as_deref() {
                Some(e) if e.to_ascii_lowercase().contains("revert") => "out of gas".into(),
                Some(_) => "execution reverted".into(),
                None => "out of gas".into(),
            });
        }
        Kind::Logs => {
            let mut l = x.logs.clone()?;
            l.push(Log::new_unchecked(Default::default(), vec![], Bytes::new()));
            m.logs = Some(l);
        }
        Kind::State => {
            let mut post = x.post_state.clone()?;
            let acc = post.values_mut().flatten().next()?;
            acc.balance += U256::from(1);
            m.post_state = Some(post);
        }
        _ => return None,
    }
    Some(m)
}

#[test]
fn geth_tracetest_mutated_expectations_are_found() {
    let Some(run) = import_and_replay() else {
        return;
    };
    let kinds = [
        (Kind::Gas, WITH_GAS),
        (Kind::Output, WITH_OUTPUT),
        (Kind::Status, WITH_STATUS),
        (Kind::Logs, WITH_LOGS),
        (Kind::State, WITH_POST_STATE),
    ];
    for (kind, want) in kinds {
        let mut caught = 0;
        for b in run.blocks.iter().filter(|b| b.unsupported.is_none()) {
            let Some(m) = expected(b).and_then(|x| mutate(x, kind)) else {
                continue;
            };
            let mut b = b.clone();
            b.expected.txs[0] = Some(m);
            let found = diff(&b, &run.outcomes[label(&b)]);
            assert!(
                found.iter().any(|f| f.kind == kind),
                "{}: a mutated {kind:?} expectation went unnoticed: {found:#?}",
                label(&b)
            );
            caught += 1;
        }
        assert_eq!(caught, want, "{kind:?}");
    }
}

#[test]
fn geth_tracetest_resumes_without_rewriting() {
    let Some(root) = shared("geth-tracetest") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let one = root.join("call_tracer/simple.json");
    let opts = ImportOptions::default();
    let first = import(
        Format::GethTracetest,
        std::slice::from_ref(&one),
        dir.path(),
        &opts,
    )
    .unwrap();
    assert_eq!((first.blocks, first.skipped_existing), (1, 0));
    let again = import(Format::GethTracetest, &[one], dir.path(), &opts).unwrap();
    assert_eq!((again.blocks, again.skipped_existing), (0, 1));
    let c = Corpus::open(dir.path()).unwrap();
    assert_eq!(c.manifest().blocks.len(), 1);
    assert_eq!(
        c.manifest().blocks[0].label.as_deref(),
        Some("call_tracer/simple")
    );
}
