//! The node engine (`node=URL`): a corpus captured from anvil replayed on anvil nodes through
//! state and block overrides, against the chain, against revm and against another anvil
//! version; real Cancun mainnet txs on anvil against revm; faults.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;
use txshadow_testnode::{
    Anvil, Fault, FaultPlan, FaultProxy, OLDER_ANVIL,
    traffic::{self, TrafficOptions, TrafficReport},
};

fn txshadow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_txshadow"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// anvil (the pinned version) with traffic of every tx type, captured into `dir/c`.
fn captured(dir: &Path) -> (Anvil, TrafficReport, PathBuf) {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let opts = TrafficOptions {
        rounds: 2,
        transfers: 4,
        ..Default::default()
    };
    let t = traffic::run(&node.url(), &opts).unwrap_or_else(|e| panic!("traffic: {e}"));
    let c = dir.join("c");
    let o = txshadow()
        .args(["-q", "capture", "--rpc-url", &node.url(), "--blocks"])
        .arg(format!("1..{}", t.last_block))
        .arg("--out")
        .arg(&c)
        .output()
        .unwrap();
    assert!(o.status.success(), "capture: {}", text(&o.stderr));
    (node, t, c)
}

/// Runs `txshadow replay CORPUS --mode tx ARGS` into `reports`: (exit code, report.json,
/// stdout + stderr).
fn replay(corpus: &Path, reports: &Path, args: &[&str]) -> (i32, Option<Value>, String) {
    let o: Output = txshadow()
        .args(["-q", "replay"])
        .arg(corpus)
        .args(["--out-dir"])
        .arg(reports)
        .args(args)
        .output()
        .unwrap();
    let log = format!("{}{}", text(&o.stdout), text(&o.stderr));
    let report = std::fs::read_dir(reports).ok().and_then(|d| {
        let mut dirs: Vec<_> = d.flatten().map(|e| e.path()).collect();
        dirs.sort();
        let p = dirs.last()?.join("report.json");
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    });
    (o.status.code().unwrap_or(-1), report, log)
}

/// `replay --mode tx --candidate node=<spec>`.
fn candidate_node(corpus: &Path, reports: &Path, spec: &str) -> (i32, Option<Value>, String) {
    replay(
        corpus,
        reports,
        &["--mode", "tx", "--candidate", &format!("node={spec}")],
    )
}

fn count(r: &Value, k: &str) -> u64 {
    r["counts"][k].as_u64().unwrap_or(0)
}

/// Every finding as `block:tx field got | expected`.
fn findings(r: &Value) -> Vec<String> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{} {} {} | {}",
                f["block"], f["tx_index"], f["field"], f["got"], f["expected"]
            )
        })
        .collect()
}

#[track_caller]
fn assert_clean(code: i32, r: &Option<Value>, log: &str, txs: usize) {
    let r = r.as_ref().unwrap_or_else(|| panic!("no report: {log}"));
    assert_eq!(code, 0, "{log}\n{:#?}", findings(r));
    assert_eq!(count(r, "txs") as usize, txs, "{log}");
    assert_eq!(
        count(r, "matched") as usize,
        txs,
        "{log}\n{:#?}",
        findings(r)
    );
    assert_eq!(count(r, "errors"), 0, "{log}");
    assert_eq!(
        count(r, "not_comparable"),
        0,
        "{log}: {:#?}",
        r["not_comparable"]
    );
}

#[test]
fn anvil_replays_its_own_corpus_through_overrides_against_the_chain_and_revm() {
    let dir = tempfile::tempdir().unwrap();
    let (node, t, c) = captured(dir.path());
    assert!(
        t.by_type[3] > 0 && t.by_type[4] > 0,
        "blob and 7702 txs in the traffic"
    );
    // the node that served the capture: its own state is the state after the traffic, so any
    // account not replaced in full would leak later values into earlier txs
    let url = node.url();
    let reports = dir.path().join("r");
    let (code, r, log) = replay(
        &c,
        &reports,
        &["--mode", "tx", "--baseline", &format!("node={url}")],
    );
    assert_clean(code, &r, &log, t.txs);
    let r = r.unwrap();
    let engine = r["configurations"]["baseline_engine"].as_str().unwrap();
    assert!(engine.contains("debug_traceCall"), "{engine}");
    assert!(engine.contains("anvil/v1.7.1"), "{engine}");
    let summary = std::fs::read_to_string(
        reports
            .join(r["run"]["id"].as_str().unwrap())
            .join("summary.md"),
    )
    .unwrap();
    assert!(
        summary.contains("## Engines") && summary.contains("- baseline: node http://127.0.0.1:"),
        "{summary}"
    );
    assert!(
        summary.contains("via debug_traceCall (prestateTracer diffMode + callTracer withLog)"),
        "{summary}"
    );
    // revm as the baseline, the node as the candidate, forcing the block pre-state in full
    let (code, r, log) = candidate_node(&c, &reports, &format!("{url},state=block"));
    assert_clean(code, &r, &log, t.txs);
    // a candidate node that changes a contract: the same differences as revm finds
    let code_file = dir.path().join("probe.hex");
    std::fs::write(&code_file, "0x60016000f3").unwrap();
    let change = format!("code.{}={}", t.probe, code_file.display());
    let (code_node, r_node, log) = candidate_node(&c, &reports, &format!("{url},{change}"));
    let (code_revm, r_revm, _) = replay(&c, &reports, &["--mode", "tx", "--candidate", &change]);
    assert_eq!((code_node, code_revm), (1, 1), "{log}");
    let (mut fn_, mut fr) = (findings(&r_node.unwrap()), findings(&r_revm.unwrap()));
    // the overridden code's hash shows in a tx's post-state where the engine lists the account:
    // revm lists every account the tx touches, the node's diff only those it changes
    let overridden = format!("state.{}.code_hash", t.probe);
    fr.retain(|f| !f.contains(&overridden));
    fn_.retain(|f| !f.contains(&overridden));
    assert!(
        !fn_.is_empty(),
        "the change makes differences beyond the code hash"
    );
    assert_eq!(fn_, fr, "node and revm see the same differences");
}

#[test]
fn two_anvil_versions_as_baseline_and_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let (_src, t, c) = captured(dir.path());
    let a = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let b = Anvil::spawn_version(OLDER_ANVIL, &[]).unwrap_or_else(|e| panic!("{e}"));
    let reports = dir.path().join("r");
    let (code, r, log) = replay(
        &c,
        &reports,
        &[
            "--mode",
            "tx",
            "--baseline",
            &format!("node={}", a.url()),
            "--candidate",
            &format!("node={}", b.url()),
        ],
    );
    let r = r.unwrap_or_else(|| panic!("no report: {log}"));
    let cand = r["configurations"]["candidate_engine"].as_str().unwrap();
    assert!(cand.contains(&format!("anvil/v{OLDER_ANVIL}")), "{cand}");
    assert_eq!(count(&r, "errors"), 0, "{log}");
    assert_eq!(count(&r, "txs") as usize, t.txs);
    // every difference has a known cause; none is expected between these versions on this
    // traffic (both nodes take every override; the hardfork rules both run agree on it)
    assert_eq!(code, 0, "{log}\n{:#?}", findings(&r));
    assert_eq!(count(&r, "not_comparable"), 0, "{:#?}", r["not_comparable"]);
}

#[test]
fn revm_and_anvil_agree_on_cancun_mainnet_txs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/pevm-mainnet");
    if !root.exists() {
        eprintln!(
            "skipping: {} not found (the shared corpora are not beside this checkout)",
            root.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("cancun");
    // Cancun blocks: the fork's first block (system call, first blobs) and later ones with
    // blob txs
    let blocks = ["19426587", "19923400", "19933122"];
    let o = txshadow()
        .args(["-q", "import", "pevm", "--out"])
        .arg(&c)
        .args(blocks.iter().map(|b| root.join("blocks").join(b)))
        .output()
        .unwrap();
    assert!(o.status.success(), "import: {}", text(&o.stderr));
    let node = Anvil::spawn_with(&["--hardfork", "cancun", "--chain-id", "1"])
        .unwrap_or_else(|e| panic!("{e}"));
    let reports = dir.path().join("r");
    let (code, r, log) = candidate_node(&c, &reports, &node.url());
    // 37 + 24 + 45 txs, all comparable (anvil takes every override it needs: it has no
    // blobBaseFee override, but these blocks' blob base fee is the minimum, which is anvil's)
    let warnings = r
        .as_ref()
        .map(|r| r["configurations"]["node_warnings"].clone());
    assert_clean(code, &r, &log, 106);
    assert_eq!(
        warnings,
        Some(Value::Null),
        "the node runs the corpus's fork"
    );

    // a node left on its default hardfork runs other rules: said before the run and in the
    // report, whatever it then finds
    let other = Anvil::spawn_with(&["--chain-id", "1"]).unwrap_or_else(|e| panic!("{e}"));
    let (_, r, log) = candidate_node(&c, &dir.path().join("r2"), &other.url());
    let r = r.unwrap_or_else(|| panic!("no report: {log}"));
    let w = r["configurations"]["node_warnings"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        w.starts_with("candidate node runs ") && w.contains("the corpus's blocks run cancun"),
        "{:#}",
        r["configurations"]
    );
}

#[test]
fn a_dead_node_is_a_harness_failure_with_its_url_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://user:hunter2@127.0.0.1:{port}/v2/sekretkey");
    let (code, _, log) = candidate_node(
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../corpora/mainnet"
        )),
        &dir.path().join("r"),
        &format!("{url},retries=1,timeout=5"),
    );
    assert_eq!(code, 2, "{log}");
    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");
    assert!(
        !log.contains("hunter2") && !log.contains("sekretkey"),
        "{log}"
    );
}

#[test]
fn node_faults_chain_id_and_mode_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (node, t, c) = captured(dir.path());
    let reports = dir.path().join("r");
    // another chain id: CHAINID and signatures would differ
    let other = Anvil::spawn_with(&["--chain-id", "5"]).unwrap_or_else(|e| panic!("{e}"));
    let (code, _, log) = candidate_node(&c, &reports, &other.url());
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("chain id 5") && log.contains("--chain-id 31337"),
        "{log}"
    );
    // block mode
    let (code, _, log) = replay(
        &c,
        &reports,
        &[
            "--mode",
            "block",
            "--candidate",
            &format!("node={}", node.url()),
        ],
    );
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("--mode tx"), "{log}");
    // a node that stops answering during the capability probe is unavailable, not a node
    // without the method
    let probe_dies = FaultProxy::start(
        &node.url(),
        FaultPlan::new(|_, methods| {
            if methods.iter().any(|m| m == "debug_traceCall") {
                Fault::Status(503)
            } else {
                Fault::Pass
            }
        }),
    );
    let (code, _, log) = candidate_node(
        &c,
        &reports,
        &format!("{},retries=1,timeout=5", probe_dies.url()),
    );
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("no answer to the capability probe") && log.contains("gave up after"),
        "{log}"
    );
    assert!(!log.contains("needs debug_traceCall"), "{log}");
    // the node dies in the middle of the run: exit 2, the block and tx named, the partial
    // report kept and marked failed
    let proxy = FaultProxy::start(&node.url(), FaultPlan::dead_after(12));
    let (code, r, log) = replay(
        &c,
        &reports,
        &[
            "--mode",
            "tx",
            "-j",
            "1",
            "--candidate",
            &format!("node={},retries=1,timeout=5", proxy.url()),
        ],
    );
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("block ") && log.contains(" tx "), "{log}");
    let r = r.expect("a partial report");
    assert_eq!(r["run"]["status"], "failed", "{r:#}");
    assert!((count(&r, "txs") as usize) < t.txs);
}

#[test]
fn a_node_without_debug_trace_call_runs_through_eth_simulate_v1() {
    let dir = tempfile::tempdir().unwrap();
    let (node, t, c) = captured(dir.path());
    let proxy = FaultProxy::start(
        &node.url(),
        FaultPlan::without_methods(&["debug_traceCall"]),
    );
    let (code, r, log) = replay(
        &c,
        &dir.path().join("r"),
        &[
            "--mode",
            "tx",
            "--baseline",
            &format!("node={}", proxy.url()),
        ],
    );
    let r = r.unwrap_or_else(|| panic!("no report: {log}"));
    let engine = r["configurations"]["baseline_engine"].as_str().unwrap();
    assert!(engine.contains("eth_simulateV1"), "{engine}");
    // status, gas, output, logs and created addresses compared; the state is not (no
    // post-state on this path); not comparable: BLOCKHASH readers (no blockHash override) and
    // contract creations (anvil's eth_simulateV1 builds no request without `to`)
    assert_eq!(count(&r, "errors"), 0, "{log}\n{:#?}", findings(&r));
    assert_eq!(code, 0, "{log}\n{:#?}", findings(&r));
    assert_eq!(
        (count(&r, "matched") + count(&r, "not_comparable")) as usize,
        t.txs,
        "{log}"
    );
    // most txs are neither creations nor BLOCKHASH readers: they are compared
    assert!(
        count(&r, "matched") > count(&r, "not_comparable"),
        "{log}\n{:#?}",
        r["not_comparable"]
    );
    let reasons: Vec<&str> = r["not_comparable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("BLOCKHASH")),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("BLOCKHASH") || r.contains("eth_simulateV1 does not take")),
        "{reasons:#?}"
    );
}
