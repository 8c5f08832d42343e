//! `replay --pushgateway`: a batch run's metrics pushed to a real Prometheus Pushgateway
//! (Debian's `prometheus-pushgateway`, installed by `./scripts/test`).

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The gateway, stopped on drop.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut s = String::new();
    c.read_to_string(&mut s).ok()?;
    Some(s)
}

#[test]
fn a_replay_pushes_its_metrics_to_a_real_pushgateway() {
    if Command::new("prometheus-pushgateway")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus-pushgateway is not installed: ./scripts/test installs Debian's package"
        );
        eprintln!("skipped: no prometheus-pushgateway on this machine");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tempfile::tempdir().unwrap();
    let _gw = Gateway(
        Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // its own state, not a system-wide persistence file
            .arg(format!(
                "--persistence.file={}",
                out.path().join("pushgateway.data").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    while get(port, "/-/ready").is_none_or(|r| !r.starts_with("HTTP/1.1 200")) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the gateway did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../corpora/mainnet");
    let o = Command::new(env!("CARGO_BIN_EXE_txshadow"))
        .arg("replay")
        .arg(&shipped)
        .args(["-q", "--run-id", "pushed", "--out-dir"])
        .arg(out.path())
        .arg("--pushgateway")
        .arg(format!("http://ci:s3cret@127.0.0.1:{port}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(
        stderr.contains(&format!("pushed to http://127.0.0.1:{port}")),
        "{stderr}"
    );
    let m = get(port, "/metrics").unwrap();
    let line = m
        .lines()
        .find(|l| l.starts_with("txshadow_txs_replayed_total{") && l.contains("\"pushed\""))
        .unwrap_or_else(|| panic!("no txs metric in the gateway: {m}"));
    assert!(
        line.contains("job=\"txshadow\"") && line.contains("instance=\"pushed\""),
        "{line}"
    );
    assert!(line.ends_with(" 1870"), "{line}");
    // a gateway that is not there: exit 2, the URL's credentials not shown
    drop(_gw);
    let o = Command::new(env!("CARGO_BIN_EXE_txshadow"))
        .arg("replay")
        .arg(&shipped)
        .args(["-q", "--run-id", "again", "--out-dir"])
        .arg(out.path())
        .arg("--pushgateway")
        .arg(format!("http://ci:s3cret@127.0.0.1:{port}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("push to http://127.0.0.1") && !stderr.contains("s3cret"),
        "{stderr}"
    );
}
