//! `txshadow capture` against a real node (anvil from npm, see package.json): killed with
//! SIGKILL and resumed, faults from a proxy, credentials in the URL.

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use txshadow_testnode::{
    Anvil, Fault, FaultPlan, FaultProxy,
    traffic::{self, TrafficOptions, TrafficReport},
};

fn txshadow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_txshadow"))
}

fn node(rounds: usize, transfers: usize) -> (Anvil, TrafficReport) {
    let node = Anvil::spawn().unwrap_or_else(|e| panic!("{e}"));
    let opts = TrafficOptions {
        rounds,
        transfers,
        ..Default::default()
    };
    let report = traffic::run(&node.url(), &opts).unwrap_or_else(|e| panic!("traffic: {e}"));
    (node, report)
}

fn capture(url: &str, last: u64, out: &Path, extra: &[&str]) -> Command {
    let mut c = txshadow();
    c.args(["capture", "--rpc-url", url, "--blocks"])
        .arg(format!("1..{last}"))
        .arg("--out")
        .arg(out)
        .args(extra);
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("run txshadow")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn manifest_blocks(dir: &Path) -> usize {
    std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|m| m["blocks"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Every file under `dir` (path → bytes), and the manifest's block index and chain (the rest
/// of the manifest carries the capture's time).
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["blocks", "codes"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap().flatten() {
            let name = format!("{sub}/{}", e.file_name().to_string_lossy());
            out.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    out.insert(
        "manifest.blocks".into(),
        m["blocks"].to_string().into_bytes(),
    );
    out.insert("manifest.chain".into(), m["chain"].to_string().into_bytes());
    out
}

fn all_files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn a_stopped_then_killed_capture_resumes_to_the_corpus_of_an_uninterrupted_one() {
    let (node, traffic) = node(5, 8);
    let last = traffic.last_block;
    let whole = tempfile::tempdir().unwrap();
    let o = run(capture(
        &node.url(),
        last,
        whole.path(),
        &["--concurrency", "2"],
    ));
    assert_ok(&o, "uninterrupted capture");

    // a slow node, so the capture is surely midway when stopped
    let proxy = FaultProxy::start(&node.url(), FaultPlan::slow(Duration::from_millis(150)));
    let dir = tempfile::tempdir().unwrap();
    let wait_for = |blocks: usize, child: &mut std::process::Child| {
        let t = Instant::now();
        while manifest_blocks(dir.path()) < blocks && t.elapsed() < Duration::from_secs(300) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // Ctrl-C: a clean stop that indexes what it wrote
    let child = capture(&proxy.url(), last, dir.path(), &["--concurrency", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    wait_for(1, &mut child);
    let sigint = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sigint.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let stopped = manifest_blocks(dir.path());
    assert!(
        text(&o.stderr).contains(&format!("interrupted: {stopped} block(s) written")),
        "{stopped}: {}",
        text(&o.stderr)
    );
    assert!(
        stopped >= 1 && (stopped as u64) < last,
        "{stopped} of {last}"
    );

    // SIGKILL midway through the next run
    let mut child = capture(&proxy.url(), last, dir.path(), &["--concurrency", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(stopped + 2, &mut child);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the capture finished before it was killed"
    );
    let partial = manifest_blocks(dir.path());
    assert!(
        partial >= stopped + 2 && (partial as u64) < last,
        "{partial} of {last}"
    );
    // what a killed capture leaves is a valid corpus
    let mut v = txshadow();
    v.args(["corpus", "verify"]).arg(dir.path());
    assert_ok(&run(v), "corpus verify after the kill");

    let o = run(capture(&node.url(), last, dir.path(), &[]));
    assert_ok(&o, "resumed capture");
    let out = text(&o.stdout);
    assert!(out.contains(&format!("{partial} already present")), "{out}");
    let mut v = txshadow();
    v.args(["corpus", "verify"]).arg(dir.path());
    assert_ok(&run(v), "corpus verify after the resume");
    assert_eq!(contents(dir.path()), contents(whole.path()));
    let mut files = vec![];
    all_files(dir.path(), &mut files);
    assert!(
        files.iter().all(|(p, _)| !p.contains(".tmp-")),
        "temp files left behind"
    );

    // and it replays exactly
    let reports = tempfile::tempdir().unwrap();
    let mut r = txshadow();
    r.arg("replay")
        .arg(dir.path())
        .args(["--mode", "block", "--out-dir"])
        .arg(reports.path());
    let o = run(r);
    assert_ok(&o, "replay of the captured corpus");
    let out = text(&o.stdout);
    assert!(
        out.starts_with("PASS") && out.contains(" 0 differing, 0 errors"),
        "{out}"
    );
}

#[test]
fn transient_faults_are_retried_and_a_dead_node_exits_2() {
    let (node, traffic) = node(2, 4);
    let last = traffic.last_block;
    let proxy = FaultProxy::start(
        &node.url(),
        FaultPlan::transient(2, 7, Duration::from_secs(9)),
    );
    let dir = tempfile::tempdir().unwrap();
    let o = run(capture(
        &proxy.url(),
        last,
        dir.path(),
        &[
            "--concurrency",
            "2",
            "--timeout",
            "8",
            "--retry-delay",
            "20",
            "--verify",
        ],
    ));
    assert_ok(&o, "capture through faults");
    let err = text(&o.stderr);
    for what in ["HTTP 500", "HTTP 429", "HTTP 503", "timed out", "retry 1/8"] {
        assert!(err.contains(what), "no {what:?} in:\n{err}");
    }
    assert!(text(&o.stdout).contains(&format!("verify: {last}/{last} blocks reproduce")));

    let dead = FaultProxy::start(&node.url(), FaultPlan::dead_after(25));
    let dir = tempfile::tempdir().unwrap();
    let o = run(capture(
        &dead.url(),
        last,
        dir.path(),
        &[
            "--concurrency",
            "1",
            "--retries",
            "2",
            "--retry-delay",
            "10",
        ],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("error: block ")
            && err.contains("HTTP 503")
            && err.contains("gave up after 3 attempts")
            && err.contains("run the same command again to resume"),
        "{err}"
    );
    let mut v = txshadow();
    v.args(["corpus", "verify"]).arg(dir.path());
    assert_ok(&run(v), "corpus verify of the partial corpus");
}

#[test]
fn credentials_in_the_url_are_written_nowhere() {
    let (node, traffic) = node(1, 3);
    let last = traffic.last_block;
    // a few faults, so errors and retries are logged too
    let proxy = FaultProxy::start(&node.url(), FaultPlan::transient(4, 5, Duration::ZERO));
    let secrets = [
        "alice",
        "pa55w0rd-Secret",
        "APIKEY-1234567890",
        "QUERY-SECRET-xyz",
        // the basic-auth header value, base64 of alice:pa55w0rd-Secret
        "YWxpY2U6cGE1NXcwcmQtU2VjcmV0",
    ];
    let url = format!(
        "http://alice:pa55w0rd-Secret@127.0.0.1:{}/v3/APIKEY-1234567890?token=QUERY-SECRET-xyz",
        proxy.port()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut c = capture(
        &url,
        last,
        dir.path(),
        &["--verify", "-vv", "--retry-delay", "10"],
    );
    c.env("RUST_LOG", "trace");
    let o = run(c);
    assert_ok(&o, "capture with credentials");
    // the node saw them
    assert!(
        proxy
            .targets()
            .iter()
            .all(|t| t.contains("APIKEY-1234567890"))
    );
    assert!(!proxy.authorizations().is_empty());

    // and a failing run, whose errors quote the request
    let dead = FaultProxy::start(&node.url(), FaultPlan::dead_after(3));
    let dead_url = url.replace(&proxy.port().to_string(), &dead.port().to_string());
    let failed_dir = tempfile::tempdir().unwrap();
    let mut c = capture(
        &dead_url,
        last,
        failed_dir.path(),
        &["-vv", "--retries", "1"],
    );
    c.env("RUST_LOG", "trace");
    let failed = run(c);
    assert_eq!(failed.status.code(), Some(2));

    let mut stats = txshadow();
    stats.args(["corpus", "stats"]).arg(dir.path());
    let s = run(stats);
    assert_ok(&s, "corpus stats");
    assert!(
        text(&s.stdout).contains(&format!("http://127.0.0.1:{}/<redacted>", proxy.port())),
        "{}",
        text(&s.stdout)
    );

    let mut texts = vec![
        ("stdout".to_string(), o.stdout.clone()),
        ("stderr".to_string(), o.stderr.clone()),
        ("failed stdout".to_string(), failed.stdout.clone()),
        ("failed stderr".to_string(), failed.stderr),
        ("stats".to_string(), s.stdout),
    ];
    assert!(o.stderr.len() > 1000, "trace logging was on");
    all_files(dir.path(), &mut texts);
    all_files(failed_dir.path(), &mut texts);
    for (name, bytes) in &texts {
        let t = text(bytes);
        for s in secrets {
            assert!(!t.contains(s), "{s:?} in {name}");
        }
    }
}

#[test]
fn capture_witness_adds_state_witnesses_and_replay_reports_state_roots() {
    let (node, traffic) = node(1, 2);
    let last = traffic.last_block;
    let dir = tempfile::tempdir().unwrap();
    assert_ok(&run(capture(&node.url(), last, dir.path(), &[])), "capture");
    // a corpus without witnesses: --witness captures its blocks again, with them
    let o = run(capture(&node.url(), last, dir.path(), &["--witness"]));
    assert_ok(&o, "capture --witness");
    let out = text(&o.stdout);
    assert!(out.contains(&format!("captured {last} block(s)")), "{out}");
    let mut s = txshadow();
    s.args(["corpus", "stats"]).arg(dir.path());
    let o = run(s);
    assert_ok(&o, "corpus stats");
    assert!(
        text(&o.stdout).contains(&format!("witness     {last} blocks")),
        "{}",
        text(&o.stdout)
    );
    let again = run(capture(&node.url(), last, dir.path(), &["--witness"]));
    assert!(text(&again.stdout).contains(&format!("{last} already present")));
    // a node whose debug_executionWitness answers with an error: the proofs instead, said once
    let refusing = FaultProxy::start(
        &node.url(),
        FaultPlan::new(|_, methods| {
            if methods.iter().any(|m| m == "debug_executionWitness") {
                Fault::RpcError(-32000, "no witness for this block".into())
            } else {
                Fault::Pass
            }
        }),
    );
    let other = tempfile::tempdir().unwrap();
    let o = run(capture(&refusing.url(), last, other.path(), &["--witness"]));
    assert_ok(&o, "capture --witness through a node refusing witnesses");
    let err = text(&o.stderr);
    assert_eq!(
        err.matches("debug_executionWitness failed").count(),
        1,
        "{err}"
    );
    assert!(err.contains("no witness for this block"), "{err}");
    let c = txshadow_corpus::Corpus::open(other.path()).unwrap();
    let blocks = c.load_blocks().unwrap();
    assert_eq!(blocks.len() as u64, last);
    assert!(blocks.iter().all(|b| b.witness.is_some()));

    let reports = tempfile::tempdir().unwrap();
    let mut r = txshadow();
    r.arg("replay")
        .arg(dir.path())
        .args(["--quiet", "--run-id", "w", "--out-dir"])
        .arg(reports.path());
    let o = run(r);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.path().join("w/report.json")).unwrap())
            .unwrap();
    let roots = report["state_roots"].as_array().unwrap();
    assert_eq!(roots.len() as u64, last, "{report:#}");
    // anvil's genesis header has the empty-trie root although its dev accounts are funded:
    // block 1's pre-state is proved under the root of anvil's genesis trie, and says so
    assert_eq!(roots[0]["pre_state_verified"], true, "{:#}", roots[0]);
    assert!(
        roots[0]["source"]
            .as_str()
            .unwrap()
            .contains("genesis trie root"),
        "{:#}",
        roots[0]
    );
    assert_ne!(
        roots[0]["parent_state_root"],
        "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421",
        "the genesis header's empty-trie root is not the one used"
    );
    // block 2 (the token's distribution) gets anvil's root exactly; later blocks differ by
    // anvil's zero leaves and kept empty accounts (see the capture crate's state-root tests)
    assert_eq!(roots[1]["pre_state_verified"], true);
    assert_eq!(
        roots[1]["baseline"]["matches_header"], true,
        "{:#}",
        roots[1]
    );
    assert!(
        roots.iter().all(|e| e["pre_state_verified"] == true),
        "{report:#}"
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "anvil's non-canonical roots differ"
    );
}
