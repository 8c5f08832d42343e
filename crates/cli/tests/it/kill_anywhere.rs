//! Kill-anywhere, the short version of `scripts/fault-suite`: an import killed (SIGKILL) at a few
//! points of its run resumes to the same corpus, which `corpus verify` passes.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_txshadow"));
    c.arg("-q").stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn input() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/zeth-mainnet")
}

fn import(out: &Path) -> Command {
    let mut c = bin();
    c.args(["import", "zeth"])
        .arg(input())
        .arg("--out")
        .arg(out);
    c
}

fn blocks(corpus: &Path) -> usize {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(corpus.join("manifest.json")).unwrap()).unwrap();
    m["blocks"].as_array().unwrap().len()
}

#[test]
fn an_import_killed_anywhere_resumes_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("ref");
    let t0 = Instant::now();
    let o = import(&reference).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = t0.elapsed();
    let want = blocks(&reference);
    assert!(want > 0);
    // three trials, killed early, midway and late in an uncut run's time
    for (trial, fraction) in [0.1, 0.5, 0.9].into_iter().enumerate() {
        let out = tmp.path().join(format!("kill-{trial}"));
        let mut child = import(&out).spawn().unwrap();
        std::thread::sleep(Duration::from_secs_f64(full.as_secs_f64() * fraction));
        let _ = child.kill(); // SIGKILL on unix; an error when it has already ended
        let _ = child.wait().unwrap();
        let o = import(&out).output().unwrap();
        assert!(
            o.status.success(),
            "trial {trial}: the import after the kill fails: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v = bin().args(["corpus", "verify"]).arg(&out).output().unwrap();
        assert!(
            v.status.success(),
            "trial {trial}: corpus verify fails after the kill: {}",
            String::from_utf8_lossy(&v.stderr)
        );
        assert_eq!(blocks(&out), want, "trial {trial}: blocks lost");
    }
}
