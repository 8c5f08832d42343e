//! Capture from a real node: anvil (from npm, see package.json) driven with realistic traffic,
//! captured, then replayed against the node's receipts and recorded post-states.

use std::{collections::BTreeMap, path::Path, time::Duration};

use txshadow_capture::rpc::{
    BlockRange, CaptureError, CaptureOptions, CaptureSummary, RpcError, capture,
};
use txshadow_corpus::{Corpus, CorpusWriter};
use txshadow_diff::Mode;
use txshadow_testnode::{
    Anvil, FaultPlan, FaultProxy,
    traffic::{self, TrafficOptions, TrafficReport},
};

use crate::common::replay_and_diff;

fn node_with_traffic(opts: &TrafficOptions) -> (Anvil, TrafficReport) {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let report = traffic::run(&node.url(), opts).unwrap_or_else(|e| panic!("traffic: {e}"));
    (node, report)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn options(url: &str, first: u64, last: u64, out: &Path) -> CaptureOptions {
    let mut o = CaptureOptions::new(
        url,
        BlockRange::Span {
            from: first,
            to: last,
        },
        out.to_path_buf(),
    )
    .unwrap();
    o.client.concurrency = 4;
    o.client.timeout = Duration::from_secs(60);
    o
}

fn run(opts: &CaptureOptions) -> Result<CaptureSummary, CaptureError> {
    runtime().block_on(capture(opts, &|_| {}))
}

/// Every file of a corpus but the manifest (whose provenance has a time), and the manifest's
/// block index.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["blocks", "codes"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap().flatten() {
            let name = format!("{sub}/{}", e.file_name().to_string_lossy());
            out.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    let m = Corpus::open(dir).unwrap().manifest().clone();
    out.insert(
        "manifest.blocks".into(),
        serde_json::to_vec(&m.blocks).unwrap(),
    );
    out.insert(
        "manifest.chain".into(),
        serde_json::to_vec(&m.chain).unwrap(),
    );
    out
}

#[test]
fn captured_anvil_blocks_replay_exactly() {
    let (node, traffic) = node_with_traffic(&TrafficOptions::default());
    assert!(
        traffic.by_type.iter().all(|n| *n > 0),
        "{:?}",
        traffic.by_type
    );
    let dir = tempfile::tempdir().unwrap();
    let s = run(&options(&node.url(), 1, traffic.last_block, dir.path())).unwrap();
    assert_eq!(s.captured as u64, traffic.last_block);
    assert_eq!(s.txs, traffic.txs);
    assert_eq!(s.chain.chain_id, 31337);

    let c = Corpus::open(dir.path()).unwrap();
    let v = c.verify().unwrap();
    assert_eq!(v.txs, traffic.txs);
    // the finished capture packed its codes: one pack, no loose code files
    let names: Vec<String> = std::fs::read_dir(dir.path().join("codes"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(v.codes > 0);
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".pack")).count(),
        1,
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with(".bin")), "{names:?}");
    let m = c.manifest();
    assert_eq!(m.provenance.source, "capture");
    assert!(
        m.provenance
            .client_version
            .as_deref()
            .unwrap()
            .starts_with("anvil")
    );
    assert_eq!(m.provenance.rpc.as_deref(), Some(node.url().as_str()));

    for mode in [Mode::Block, Mode::Tx] {
        let (blocks, outs, findings) = replay_and_diff(&c, mode);
        assert!(
            findings.is_empty(),
            "{mode:?}: {} findings:\n{}",
            findings.len(),
            findings
                .iter()
                .take(40)
                .map(|f| format!(
                    "block {} tx {:?} {:?} {}: got {} expected {}",
                    f.block, f.tx_index, f.kind, f.field, f.got, f.expected
                ))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let executed: usize = outs.iter().map(|o| o.txs.len()).sum();
        assert_eq!(executed, traffic.txs);
        if mode == Mode::Tx {
            continue;
        }
        // what the corpus holds
        let mut failed = 0;
        let mut logs = 0;
        let mut created = 0;
        let mut absent = 0;
        for b in &blocks {
            let n = b.number();
            assert_eq!(b.block_hashes.len() as u64, n.min(256), "block {n}");
            assert_eq!(b.block_hashes[&(n - 1)], b.header.parent_hash);
            let receipts = b.expected.receipts.as_ref().unwrap();
            assert_eq!(receipts.len(), b.transactions.len());
            // held to the header's receipts root and logs bloom at capture
            assert!(b.expected.receipts_sealed, "block {n}");
            assert_eq!(b.expected.txs.len(), b.transactions.len());
            assert!(
                b.expected
                    .txs
                    .iter()
                    .all(|x| x.as_ref().is_some_and(|x| x.post_state.is_some()))
            );
            failed += receipts.iter().filter(|r| r.status == Some(false)).count();
            logs += receipts.iter().map(|r| r.logs.len()).sum::<usize>();
            created += receipts
                .iter()
                .filter(|r| r.contract_address.is_some())
                .count();
            absent += b.pre_state.values().filter(|a| a.is_none()).count();
            // the EIP-2935 history contract is read at the parent block
            assert!(
                b.pre_state
                    .contains_key(&alloy_eips::eip2935::HISTORY_STORAGE_ADDRESS)
            );
        }
        assert!(failed >= 3 * 5, "reverts and out-of-gas: {failed}");
        assert!(logs > 100, "logs: {logs}");
        assert!(created >= 5, "created: {created}");
        assert!(absent > 0, "absent accounts recorded as such");
    }
}

#[test]
fn transient_faults_are_retried_and_change_nothing() {
    let opts = TrafficOptions {
        rounds: 2,
        transfers: 6,
        ..Default::default()
    };
    let (node, traffic) = node_with_traffic(&opts);
    let clean = tempfile::tempdir().unwrap();
    run(&options(&node.url(), 1, traffic.last_block, clean.path())).unwrap();

    // every other request fails (500, 429, dropped, cut short, 503, one slower than the
    // timeout), seven faults in all
    let proxy = FaultProxy::start(
        &node.url(),
        FaultPlan::transient(2, 7, Duration::from_secs(9)),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&proxy.url(), 1, traffic.last_block, dir.path());
    o.client.concurrency = 2;
    o.client.timeout = Duration::from_secs(8);
    o.client.backoff = Duration::from_millis(20);
    let s = run(&o).unwrap();
    assert_eq!(proxy.faults(), 6, "faults injected besides the delay");
    assert!(s.retries >= 7, "retries: {}", s.retries);
    Corpus::open(dir.path()).unwrap().verify().unwrap();
    assert_eq!(contents(dir.path()), contents(clean.path()));
}

#[test]
fn a_node_that_stays_down_stops_the_capture_with_a_valid_partial_corpus() {
    let opts = TrafficOptions {
        rounds: 3,
        transfers: 4,
        ..Default::default()
    };
    let (node, traffic) = node_with_traffic(&opts);
    // enough for the plan and a few blocks, then 503 forever
    let proxy = FaultProxy::start(&node.url(), FaultPlan::dead_after(25));
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&proxy.url(), 1, traffic.last_block, dir.path());
    o.client.concurrency = 1;
    o.client.retries = 2;
    o.client.backoff = Duration::from_millis(10);
    let e = run(&o).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, CaptureError::Rpc(RpcError::Failed { .. })),
        "{msg}"
    );
    assert!(e.block().is_some(), "{msg}");
    assert!(
        msg.contains("HTTP 503") && msg.contains("gave up after 3 attempts"),
        "{msg}"
    );
    let c = Corpus::open(dir.path()).unwrap();
    c.verify().unwrap();
    assert!((c.manifest().blocks.len() as u64) < traffic.last_block);
    // its codes are still loose files; packing them (as a resumed capture or `corpus pack`
    // does) keeps every block whole
    let m = c.manifest();
    let mut w =
        CorpusWriter::create(dir.path(), m.chain.clone(), m.provenance.clone(), false).unwrap();
    assert!(w.pack_loose_codes().unwrap() > 0);
    let packed = w.finish().unwrap().verify().unwrap();
    assert_eq!(packed.blocks, c.manifest().blocks.len());
}

#[test]
fn a_node_without_the_debug_namespace_is_named() {
    let opts = TrafficOptions {
        rounds: 1,
        transfers: 2,
        ..Default::default()
    };
    let (node, traffic) = node_with_traffic(&opts);
    let proxy = FaultProxy::start(
        &node.url(),
        FaultPlan::without_methods(&["debug_traceBlockByNumber"]),
    );
    let dir = tempfile::tempdir().unwrap();
    let e = run(&options(&proxy.url(), 1, traffic.last_block, dir.path())).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            CaptureError::Rpc(RpcError::MethodUnavailable {
                method: "debug_traceBlockByNumber",
                block: Some(_),
                ..
            })
        ),
        "{msg}"
    );
    assert!(
        msg.starts_with("block ") && msg.contains("debug namespace"),
        "{msg}"
    );
}

#[test]
fn receipts_one_tx_at_a_time_when_the_node_has_no_block_receipts() {
    let opts = TrafficOptions {
        rounds: 1,
        transfers: 3,
        ..Default::default()
    };
    let (node, traffic) = node_with_traffic(&opts);
    let clean = tempfile::tempdir().unwrap();
    run(&options(&node.url(), 1, traffic.last_block, clean.path())).unwrap();
    let proxy = FaultProxy::start(
        &node.url(),
        FaultPlan::without_methods(&["eth_getBlockReceipts"]),
    );
    let dir = tempfile::tempdir().unwrap();
    run(&options(&proxy.url(), 1, traffic.last_block, dir.path())).unwrap();
    // the node refused eth_getBlockReceipts, so the receipts came one tx at a time
    assert!(proxy.faults() > 0, "eth_getBlockReceipts was never asked");
    assert_eq!(contents(dir.path()), contents(clean.path()));
}

#[test]
fn a_second_run_skips_complete_blocks() {
    let opts = TrafficOptions {
        rounds: 1,
        transfers: 2,
        ..Default::default()
    };
    let (node, traffic) = node_with_traffic(&opts);
    let dir = tempfile::tempdir().unwrap();
    let o = options(&node.url(), 1, traffic.last_block, dir.path());
    let first = run(&o).unwrap();
    assert_eq!(first.captured as u64, traffic.last_block);
    let again = run(&o).unwrap();
    assert_eq!(
        (again.captured, again.present as u64),
        (0, traffic.last_block)
    );
    let mut o = o;
    o.overwrite = true;
    let over = run(&o).unwrap();
    assert_eq!(over.captured as u64, traffic.last_block);
}
