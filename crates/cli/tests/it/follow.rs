//! `txshadow follow` against a real node (anvil): blocks replayed as they are mined, a
//! candidate's differences, an older anvil as the candidate node, reorgs (to a longer and to a
//! shorter chain), a node that drops every connection for a while, new heads over a WebSocket
//! subscription that drops, rotated run directories, and the metrics endpoint checked by
//! promtool when it is installed.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use txshadow_testnode::{
    Anvil, Fault, FaultPlan, FaultProxy, OLDER_ANVIL, TcpProxy,
    traffic::{self, TrafficOptions},
};

fn txshadow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_txshadow"))
}

/// A running `txshadow follow`, its stderr collected.
struct Follow {
    child: Child,
    log: Arc<Mutex<String>>,
    reports: PathBuf,
}

impl Follow {
    fn start(url: &str, reports: &Path, args: &[&str]) -> Self {
        Self::start_polling(url, "200ms", reports, args)
    }

    fn start_polling(url: &str, poll: &str, reports: &Path, args: &[&str]) -> Self {
        let mut child = txshadow()
            .args(["follow", "--rpc-url", url, "--poll-interval", poll])
            .args(["--metrics-addr", "127.0.0.1:0", "-j", "2", "--out-dir"])
            .arg(reports)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start txshadow follow");
        let log = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut l = l.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Self {
            child,
            log,
            reports: reports.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The metrics address the follower printed.
    fn addr(&mut self) -> String {
        let t = Instant::now();
        loop {
            if let Some(a) = self
                .log()
                .lines()
                .find_map(|l| l.strip_prefix("metrics: http://"))
                .and_then(|a| a.strip_suffix("/metrics"))
            {
                return a.to_string();
            }
            if t.elapsed() > Duration::from_secs(60) || self.child.try_wait().unwrap().is_some() {
                panic!("no metrics address; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn get(&mut self, path: &str) -> String {
        let addr = self.addr();
        let mut s = TcpStream::connect(&addr).expect("connect to the metrics endpoint");
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        body.to_string()
    }

    fn metrics(&mut self) -> String {
        self.get("/metrics")
    }

    /// Waits until `cond` holds on the scraped metrics.
    fn wait(&mut self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let m = self.metrics();
            if cond(&m) {
                return m;
            }
            if t.elapsed() > Duration::from_secs(240) || self.child.try_wait().unwrap().is_some() {
                panic!("waiting for {what}; metrics:\n{m}\nlog:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, then the exit code.
    fn stop(mut self) -> (i32, Value, String) {
        // SAFETY: sends a signal to the child this test started
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let log = self.log();
        (status.code().unwrap_or(-1), report(&self.reports), log)
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The report.json of the one run under `reports`.
fn report(reports: &Path) -> Value {
    let dir = run_dir(reports);
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

fn run_dir(reports: &Path) -> PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(reports)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// The value of an unlabelled series (or the sum of a labelled one's series).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let base = series.split('{').next()?;
            (base == name).then(|| v.parse::<f64>().ok())?
        })
        .sum()
}

fn head(node: &Anvil) -> u64 {
    let v = node.client().call("eth_blockNumber", json!([])).unwrap();
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn mine(node: &Anvil, blocks: u64) {
    for _ in 0..blocks {
        node.client().call("evm_mine", json!([])).unwrap();
    }
}

/// `promtool check metrics` on `text`, when promtool is installed.
fn promtool_check_metrics(text: &str) {
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!("promtool is not installed: the exposition format is not checked by it");
        return;
    }
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn csv_hashes(reports: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run_dir(reports).join("results.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let k = header
        .iter()
        .position(|h| *h == "hash")
        .expect("hash column");
    lines
        .map(|l| l.split(',').nth(k).unwrap().to_string())
        .collect()
}

#[test]
fn follow_replays_every_mined_tx_once_and_stops_cleanly_on_sigterm() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let mut f = Follow::start(&node.url(), &reports, &["--from", "1"]);
    assert_eq!(f.get("/healthz").trim(), "ok");
    let opts = TrafficOptions {
        rounds: 2,
        transfers: 4,
        ..Default::default()
    };
    let t = traffic::run(&node.url(), &opts).unwrap_or_else(|e| panic!("traffic: {e}"));
    let last = t.last_block as f64;
    let m = f.wait("the last block", |m| {
        metric(m, "txshadow_last_block_number") == last
    });
    assert_eq!(metric(&m, "txshadow_txs_replayed_total"), t.txs as f64);
    assert_eq!(metric(&m, "txshadow_blocks_replayed_total"), last);
    assert_eq!(metric(&m, "txshadow_differences_total"), 0.0, "{m}");
    assert_eq!(metric(&m, "txshadow_node_up"), 1.0);
    assert_eq!(metric(&m, "txshadow_head_lag_blocks"), 0.0);
    assert!(metric(&m, "txshadow_replay_seconds_count") >= last);
    assert!(metric(&m, "txshadow_capture_seconds_count") >= last);
    assert!(metric(&m, "txshadow_gas_delta_ratio_count") >= t.txs as f64);
    assert!(m.contains("txshadow_build_info{version=\""), "{m}");
    promtool_check_metrics(&m);

    let (code, r, log) = f.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(r["run"]["status"], "interrupted", "{log}");
    assert_eq!(r["counts"]["txs"], t.txs, "{log}");
    assert_eq!(r["counts"]["findings"], 0, "{log}");
    let mut hashes = csv_hashes(&reports);
    assert_eq!(hashes.len(), t.txs);
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), t.txs, "a tx replayed twice");
    let summary = std::fs::read_to_string(run_dir(&reports).join("summary.md")).unwrap();
    assert!(!summary.contains("has not finished"), "{summary}");
}

#[test]
fn follow_with_a_candidate_reports_its_differences_and_metrics() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let opts = TrafficOptions {
        rounds: 1,
        transfers: 3,
        ..Default::default()
    };
    let t = traffic::run(&node.url(), &opts).unwrap_or_else(|e| panic!("traffic: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let prom = dir.path().join("txshadow.prom");
    let corpus = dir.path().join("corpus");
    // the chain is already ahead: follow catches up block by block, then stops
    let o = txshadow()
        .args(["-q", "follow", "--rpc-url", &node.url(), "--from", "1"])
        .arg("--max-blocks")
        .arg(t.last_block.to_string())
        .args(["--candidate", "spec=istanbul", "--keep", "2", "--out-dir"])
        .arg(&reports)
        .arg("--metrics-file")
        .arg(&prom)
        .arg("--corpus")
        .arg(&corpus)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{log}");
    let r = report(&reports);
    assert_eq!(r["run"]["status"], "complete");
    assert_eq!(r["counts"]["txs"], t.txs);
    assert!(r["counts"]["findings"].as_u64().unwrap() > 0, "{log}");
    let m = std::fs::read_to_string(&prom).unwrap();
    assert!(metric(&m, "txshadow_differences_total") > 0.0, "{m}");
    assert!(
        m.contains("configuration=\"") && !m.contains("configuration=\"chain\""),
        "{m}"
    );
    assert_eq!(metric(&m, "txshadow_txs_replayed_total"), t.txs as f64);
    promtool_check_metrics(&m);
    // --keep 2: only the last two blocks stay in the corpus
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(corpus.join("manifest.json")).unwrap()).unwrap();
    let kept: Vec<u64> = manifest["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["number"].as_u64().unwrap())
        .collect();
    assert!(kept.len() <= 2 && kept.contains(&t.last_block), "{kept:?}");
}

#[test]
fn a_reorg_is_detected_counted_once_and_its_new_branch_replayed() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    mine(&node, 4);
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let mut f = Follow::start(&node.url(), &reports, &["--from", "1"]);
    f.wait("block 4", |m| {
        metric(m, "txshadow_last_block_number") == 4.0
    });
    // blocks 3 and 4 replaced by another branch, then a block on top of it
    node.client()
        .call("anvil_reorg", json!([2, []]))
        .unwrap_or_else(|e| panic!("anvil_reorg: {e}"));
    mine(&node, 1);
    let top = head(&node) as f64;
    let m = f.wait("the new branch", |m| {
        metric(m, "txshadow_last_block_number") == top
            && metric(m, "txshadow_reorged_blocks_total") > 0.0
    });
    assert_eq!(metric(&m, "txshadow_reorged_blocks_total"), 2.0, "{m}");
    // 1..=4, then the new 3, 4 and 5: each block of each branch once
    assert_eq!(
        metric(&m, "txshadow_blocks_replayed_total"),
        top + 2.0,
        "{m}"
    );
    let (code, r, log) = f.stop();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("reorg: blocks 3..=4"), "{log}");
    let warned = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("reorg: blocks 3..=4"));
    assert!(warned, "{}", r["warnings"]);
}

#[test]
fn a_node_that_drops_connections_or_fails_is_waited_for_and_no_block_is_missed() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let down = Arc::new(AtomicBool::new(false));
    let d = down.clone();
    let proxy = FaultProxy::start(
        &node.url(),
        // down: dropped connections, 503s and 429s in turn
        FaultPlan::new(move |i, _| match (d.load(Ordering::SeqCst), i % 3) {
            (false, _) => Fault::Pass,
            (true, 0) => Fault::Drop,
            (true, 1) => Fault::Status(503),
            (true, _) => Fault::TooManyRequests,
        }),
    );
    let opts = TrafficOptions {
        rounds: 1,
        transfers: 3,
        ..Default::default()
    };
    let t = traffic::run(&node.url(), &opts).unwrap_or_else(|e| panic!("traffic: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let mut f = Follow::start(&proxy.url(), &reports, &["--from", "1"]);
    let last = t.last_block as f64;
    f.wait("the traffic's blocks", |m| {
        metric(m, "txshadow_last_block_number") == last
    });
    down.store(true, Ordering::SeqCst);
    mine(&node, 2);
    f.wait("the node down", |m| metric(m, "txshadow_node_up") == 0.0);
    std::thread::sleep(Duration::from_secs(3));
    let m = f.metrics();
    assert_eq!(metric(&m, "txshadow_node_up"), 0.0);
    down.store(false, Ordering::SeqCst);
    mine(&node, 1);
    let top = head(&node) as f64;
    let m = f.wait("the blocks mined while down", |m| {
        metric(m, "txshadow_last_block_number") == top && metric(m, "txshadow_node_up") == 1.0
    });
    assert_eq!(metric(&m, "txshadow_blocks_replayed_total"), top, "{m}");
    assert_eq!(metric(&m, "txshadow_txs_replayed_total"), t.txs as f64);
    // the run directory is current while the follower waits for the next block
    std::thread::sleep(Duration::from_millis(1500));
    mine(&node, 1);
    let top = top + 1.0;
    f.wait("one more block", |m| {
        metric(m, "txshadow_last_block_number") == top
    });
    let live = report(&reports);
    assert_eq!(live["run"]["status"], "running");
    assert_eq!(live["counts"]["blocks"], top as u64);
    let (code, r, log) = f.stop();
    assert_eq!(code, 0, "{log}");
    assert_eq!(r["counts"]["blocks"], top as u64);
    assert!(log.contains("does not answer"), "{log}");
}

#[test]
fn a_wrong_chain_or_a_node_without_debug_is_a_harness_failure() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    mine(&node, 2);
    let dir = tempfile::tempdir().unwrap();
    let o = txshadow()
        .args(["-q", "follow", "--rpc-url", &node.url(), "--chain-id", "5"])
        .args(["--max-blocks", "1", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("chain 31337, not chain 5"), "{err}");

    let proxy = FaultProxy::start(
        &node.url(),
        FaultPlan::without_methods(&["debug_traceBlockByNumber"]),
    );
    let o = txshadow()
        .args([
            "-q",
            "follow",
            "--rpc-url",
            &proxy.url(),
            "--max-blocks",
            "1",
        ])
        .arg("--out-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("debug"), "{err}");
}

#[test]
fn the_dashboard_queries_only_series_follow_exports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let d: Value =
        serde_json::from_slice(&std::fs::read(root.join("deploy/grafana-dashboard.json")).unwrap())
            .unwrap();
    let exprs: Vec<String> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 8);
    for e in &exprs {
        for name in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if let Some(base) = name.strip_prefix("txshadow_") {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| base.strip_suffix(s))
                    .unwrap_or(base);
                assert!(
                    KNOWN.contains(&base),
                    "{e}: txshadow_{base} is not a series follow exports"
                );
            }
        }
    }
}

const KNOWN: &[&str] = &[
    "blocks_replayed_total",
    "txs_replayed_total",
    "differences_total",
    "accepted_total",
    "errors_total",
    "not_comparable_total",
    "reorged_blocks_total",
    "last_block_number",
    "head_lag_blocks",
    "node_up",
    "capture_seconds",
    "replay_seconds",
    "gas_delta_ratio",
    "build_info",
    "seconds_since_last_block",
    "block_verdict_latency_seconds",
];

#[test]
fn the_alert_rules_pass_promtool() {
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!("promtool is not installed: deploy/alerts.yml is not checked");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let o = Command::new("promtool")
        .args(["check", "rules"])
        .arg(root.join("deploy/alerts.yml"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new("promtool")
        .args(["check", "config", "--syntax-only"])
        .arg(root.join("deploy/prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_batch_replay_writes_its_metrics_file_for_the_textfile_collector() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir().unwrap();
    let prom = out.path().join("textfile").join("txshadow.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let o = txshadow()
        .arg("replay")
        .arg(root.join("corpora/mainnet"))
        .args(["-q", "--out-dir"])
        .arg(out.path().join("reports"))
        .arg("--metrics-file")
        .arg(&prom)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(metric(&m, "txshadow_blocks_replayed_total"), 13.0);
    assert_eq!(metric(&m, "txshadow_txs_replayed_total"), 1870.0);
    assert_eq!(metric(&m, "txshadow_replay_seconds_count"), 13.0);
    assert!(!m.contains("txshadow_node_up"), "{m}");
    // nothing but the file itself in the collector's directory (written atomically)
    assert_eq!(
        std::fs::read_dir(prom.parent().unwrap()).unwrap().count(),
        1
    );
    promtool_check_metrics(&m);
}

/// Every hash in a results.csv is there once.
fn assert_each_tx_once(csv: &Path, txs: usize) {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let k = header.iter().position(|h| *h == "hash").unwrap();
    let mut hashes: Vec<&str> = lines.map(|l| l.split(',').nth(k).unwrap()).collect();
    assert_eq!(hashes.len(), txs, "{}", csv.display());
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(
        hashes.len(),
        txs,
        "a tx replayed twice in {}",
        csv.display()
    );
}

#[test]
fn new_heads_come_over_a_websocket_and_a_dropped_subscription_misses_no_block() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    // the subscription through a proxy that can cut it; calls straight to the node
    let ws = TcpProxy::start(node.port());
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    // credentials in the URL, never printed
    let ws_url = ws.ws_url().replace("ws://", "ws://alice:s3cretpw@");
    // a poll interval of an hour: within this test, only the subscription brings new heads
    let mut f = Follow::start_polling(
        &node.url(),
        "3600s",
        &reports,
        &["--ws-url", &ws_url, "--from", "1"],
    );
    f.addr();
    let opts = TrafficOptions {
        rounds: 1,
        transfers: 3,
        ..Default::default()
    };
    let t = traffic::run(&node.url(), &opts).unwrap_or_else(|e| panic!("traffic: {e}"));
    let last = t.last_block as f64;
    f.wait("the traffic's blocks, announced", |m| {
        metric(m, "txshadow_last_block_number") == last
    });
    assert!(ws.accepted() >= 1);

    // the subscription drops and stays down while blocks are mined
    ws.set_down(true);
    let t0 = Instant::now();
    while !f.log().contains("newHeads subscription") {
        assert!(t0.elapsed() < Duration::from_secs(60), "{}", f.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    mine(&node, 3);
    std::thread::sleep(Duration::from_secs(1));
    let m = f.metrics();
    assert_eq!(metric(&m, "txshadow_node_up"), 1.0, "the node itself is up");
    // back: the follower catches up on the blocks mined meanwhile (however it learnt of
    // them), then is announced more
    ws.set_down(false);
    let top = last + 3.0;
    f.wait("the blocks mined while the subscription was down", |m| {
        metric(m, "txshadow_last_block_number") == top
    });
    mine(&node, 1);
    let top = top + 1.0;
    let m = f.wait("a block announced after the reconnect", |m| {
        metric(m, "txshadow_last_block_number") == top
    });
    assert!(ws.accepted() >= 2, "the subscription reconnected");
    assert_eq!(metric(&m, "txshadow_blocks_replayed_total"), top, "{m}");
    assert_eq!(metric(&m, "txshadow_txs_replayed_total"), t.txs as f64);
    assert_eq!(metric(&m, "txshadow_differences_total"), 0.0, "{m}");
    // the blocks mined after the start were timed from their sighting to their verdict
    assert!(
        metric(&m, "txshadow_block_verdict_latency_seconds_count") >= 1.0,
        "{m}"
    );
    promtool_check_metrics(&m);
    let (code, r, log) = f.stop();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("newHeads subscription"), "{log}");
    assert!(!log.contains("alice") && !log.contains("s3cretpw"), "{log}");
    assert!(!r.to_string().contains("s3cretpw"), "{r}");
    assert_eq!(r["counts"]["txs"], t.txs);
    assert!(
        r["run"]["corpus"].as_str().unwrap().contains("(newHeads)"),
        "{}",
        r["run"]
    );
    assert_each_tx_once(&run_dir(&reports).join("results.csv"), t.txs);
}

#[test]
fn a_ws_rpc_url_subscribes_and_calls_over_http_on_the_same_port() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    mine(&node, 2);
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let url = format!("ws://127.0.0.1:{}", node.port());
    let mut f = Follow::start_polling(&url, "3600s", &reports, &["--from", "1"]);
    f.wait("the blocks before the start", |m| {
        metric(m, "txshadow_last_block_number") == 2.0
    });
    mine(&node, 2);
    let m = f.wait("two announced blocks", |m| {
        metric(m, "txshadow_last_block_number") == 4.0
    });
    assert_eq!(metric(&m, "txshadow_blocks_replayed_total"), 4.0, "{m}");
    let (code, _, log) = f.stop();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_reorg_to_a_shorter_chain_is_seen_before_the_next_block() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    mine(&node, 2);
    let snap = node.client().call("evm_snapshot", json!([])).unwrap();
    mine(&node, 2);
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let mut f = Follow::start(&node.url(), &reports, &["--from", "1"]);
    f.wait("block 4", |m| {
        metric(m, "txshadow_last_block_number") == 4.0
    });
    // back to block 2: blocks 3 and 4 are gone, and no block comes after them yet
    node.client()
        .call("evm_revert", json!([snap]))
        .unwrap_or_else(|e| panic!("evm_revert: {e}"));
    assert_eq!(head(&node), 2);
    let m = f.wait("the reorg counted", |m| {
        metric(m, "txshadow_reorged_blocks_total") > 0.0
    });
    assert_eq!(metric(&m, "txshadow_reorged_blocks_total"), 2.0, "{m}");
    // the new branch: a new block 3, replayed
    mine(&node, 1);
    let m = f.wait("the new block 3", |m| {
        metric(m, "txshadow_blocks_replayed_total") == 5.0
    });
    assert_eq!(metric(&m, "txshadow_last_block_number"), 4.0, "{m}");
    let (code, r, log) = f.stop();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("reorg: blocks 3..=4"), "{log}");
    assert_eq!(r["counts"]["blocks"], 5);
}

#[test]
fn an_older_anvil_as_candidate_node_agrees_with_the_followed_one() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let older = Anvil::spawn_version(OLDER_ANVIL, &[]).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let candidate = format!("node={}", older.url());
    let mut f = Follow::start(
        &node.url(),
        &reports,
        &["--from", "1", "--mode", "tx", "--candidate", &candidate],
    );
    f.addr();
    let opts = TrafficOptions {
        rounds: 2,
        transfers: 4,
        ..Default::default()
    };
    let t = traffic::run(&node.url(), &opts).unwrap_or_else(|e| panic!("traffic: {e}"));
    let last = t.last_block as f64;
    let m = f.wait("the traffic's blocks", |m| {
        metric(m, "txshadow_last_block_number") == last
    });
    let (code, r, log) = f.stop();
    let findings: Vec<String> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{} {} {} | {}",
                f["block"], f["tx_index"], f["field"], f["got"], f["expected"]
            )
        })
        .collect();
    assert_eq!(code, 0, "{log}\n{findings:#?}");
    let engine = r["configurations"]["candidate_engine"].as_str().unwrap();
    assert!(
        engine.contains(&format!("anvil/v{OLDER_ANVIL}")),
        "{engine}"
    );
    assert_eq!(r["counts"]["txs"], t.txs, "{log}");
    assert_eq!(r["counts"]["findings"], 0, "{findings:#?}");
    assert_eq!(r["counts"]["errors"], 0, "{log}");
    assert_eq!(
        r["counts"]["not_comparable"].as_u64().unwrap_or(0),
        0,
        "{}",
        r["not_comparable"]
    );
    assert_eq!(metric(&m, "txshadow_txs_replayed_total"), t.txs as f64);
    assert_eq!(metric(&m, "txshadow_differences_total"), 0.0, "{m}");
}

/// The part directories of a rotated run, sorted.
fn parts(reports: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(run_dir(reports))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn part_report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn a_rotated_follow_writes_a_complete_run_directory_every_n_blocks() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let opts = TrafficOptions {
        rounds: 1,
        transfers: 3,
        ..Default::default()
    };
    let t = traffic::run(&node.url(), &opts).unwrap_or_else(|e| panic!("traffic: {e}"));
    mine(&node, 1);
    let blocks = t.last_block + 1;
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let prom = dir.path().join("txshadow.prom");
    let o = txshadow()
        .args(["-q", "follow", "--rpc-url", &node.url(), "--from", "1"])
        .args(["--rotate", "2", "--run-id", "live", "--max-blocks"])
        .arg(blocks.to_string())
        .arg("--out-dir")
        .arg(&reports)
        .arg("--metrics-file")
        .arg(&prom)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{log}");
    let parts = parts(&reports);
    let names: Vec<String> = parts
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let want: Vec<String> = (1..=blocks.div_ceil(2))
        .map(|n| format!("part-{n:04}"))
        .collect();
    assert_eq!(names, want, "{log}");
    let (mut txs, mut seen) = (0, 0);
    for p in &parts {
        let r = part_report(p);
        assert_eq!(r["run"]["status"], "complete", "{}", p.display());
        assert_eq!(r["counts"]["findings"], 0);
        for f in ["summary.md", "results.csv", "junit.xml"] {
            assert!(p.join(f).is_file(), "{}/{f}", p.display());
        }
        let n = r["counts"]["txs"].as_u64().unwrap() as usize;
        assert_each_tx_once(&p.join("results.csv"), n);
        txs += n;
        // two blocks a part, the last one maybe less
        let b = r["counts"]["blocks"].as_u64().unwrap();
        assert!(
            b == 2 || (p == parts.last().unwrap() && b == 1),
            "{}",
            r["counts"]
        );
        seen += b;
    }
    assert_eq!(seen, blocks);
    assert_eq!(txs, t.txs);
    // the metrics count across parts
    let m = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(metric(&m, "txshadow_blocks_replayed_total"), blocks as f64);
    assert_eq!(metric(&m, "txshadow_txs_replayed_total"), t.txs as f64);
}

#[test]
fn a_follow_rotated_by_day_cuts_at_utc_midnight_of_the_blocks() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    // 2030-01-01 23:59:58, :59, then 2030-01-02 00:00:00 and :01
    let midnight: u64 = 1_893_542_400;
    for ts in [midnight - 2, midnight - 1, midnight, midnight + 1] {
        node.client()
            .call("evm_setNextBlockTimestamp", json!([ts]))
            .unwrap_or_else(|e| panic!("evm_setNextBlockTimestamp: {e}"));
        mine(&node, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let o = txshadow()
        .args(["-q", "follow", "--rpc-url", &node.url(), "--from", "1"])
        .args(["--rotate", "day", "--max-blocks", "4", "--out-dir"])
        .arg(&reports)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{log}");
    let parts = parts(&reports);
    let names: Vec<String> = parts
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["part-0001-2030-01-01", "part-0002-2030-01-02"],
        "{log}"
    );
    for p in &parts {
        let r = part_report(p);
        assert_eq!(r["run"]["status"], "complete");
        assert_eq!(r["counts"]["blocks"], 2, "{}", p.display());
    }
    let bad = txshadow()
        .args(["follow", "--rpc-url", &node.url(), "--rotate", "week"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("`day`"), "{err}");
    let help = txshadow().args(["follow", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for want in ["--rotate <N|day>", "part-0001", "--ws-url", "newHeads"] {
        assert!(help.contains(want), "{want} not in follow --help:\n{help}");
    }
}

/// Kill-anywhere, the short version of `scripts/fault-suite`'s: a follow SIGKILLed early,
/// midway and late leaves a `report.json` that is valid and never says `complete` without
/// every tx, a corpus that verifies, and a rerun on that corpus that completes with every tx.
#[test]
fn a_follow_killed_anywhere_leaves_valid_files_and_a_rerun_completes() {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let opts = TrafficOptions {
        rounds: 2,
        transfers: 4,
        ..Default::default()
    };
    let t = traffic::run(&node.url(), &opts).unwrap_or_else(|e| panic!("traffic: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let follow = |corpus: &Path, run_id: &str| {
        let mut c = txshadow();
        c.args(["-q", "follow", "--rpc-url", &node.url(), "--from", "1"])
            .args(["--max-blocks", &t.last_block.to_string()])
            .args(["--poll-interval", "100ms", "--run-id", run_id, "--corpus"])
            .arg(corpus)
            .arg("--out-dir")
            .arg(&reports)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let read = |run_id: &str| -> Option<Value> {
        let p = reports.join(run_id).join("report.json");
        let bytes = std::fs::read(&p).ok()?;
        Some(
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{} is not valid JSON after a kill: {e}", p.display())),
        )
    };
    let t0 = Instant::now();
    let o = follow(&dir.path().join("ref"), "ref").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = t0.elapsed();
    assert_eq!(read("ref").unwrap()["counts"]["txs"], t.txs);

    for (trial, fraction) in [0.15, 0.5, 0.85].into_iter().enumerate() {
        let corpus = dir.path().join(format!("corpus-{trial}"));
        let mut child = follow(&corpus, &format!("k{trial}")).spawn().unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        let killed = child.try_wait().unwrap().is_none();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait().unwrap();
        if let Some(r) = read(&format!("k{trial}")) {
            let status = r["run"]["status"].as_str().unwrap().to_string();
            assert!(
                !killed || status != "complete" || r["counts"]["txs"] == t.txs,
                "trial {trial}: a killed follow's report says complete without every tx: {r}"
            );
        }
        if corpus.join("manifest.json").exists() {
            let v = txshadow()
                .args(["-q", "corpus", "verify"])
                .arg(&corpus)
                .output()
                .unwrap();
            assert!(
                v.status.success(),
                "trial {trial}: the killed follow's corpus does not verify: {}",
                String::from_utf8_lossy(&v.stderr)
            );
        }
        let rerun = format!("r{trial}");
        let o = follow(&corpus, &rerun).output().unwrap();
        assert!(
            o.status.success(),
            "trial {trial}: the rerun fails: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r = read(&rerun).unwrap();
        assert_eq!(r["run"]["status"], "complete", "trial {trial}: {r}");
        assert_eq!(r["counts"]["txs"], t.txs, "trial {trial}");
        assert_each_tx_once(&reports.join(&rerun).join("results.csv"), t.txs);
    }
}
