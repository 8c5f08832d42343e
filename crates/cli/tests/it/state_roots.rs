//! State roots from witnesses, end to end: `txshadow import zeth|keth` then `txshadow replay`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use alloy_primitives::U256;
use txshadow_corpus::{Corpus, CorpusWriter};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_txshadow"))
}

fn shared(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora")
        .join(name);
    if !p.exists() {
        eprintln!("skipping: {} not found", p.display());
        return None;
    }
    Some(p)
}

fn run(args: &[&str], dir: &Path) -> (i32, String) {
    let o = bin().args(args).arg(dir).output().unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), out)
}

fn import(format: &str, input: &Path, out: &Path) {
    let o = bin()
        .args(["import", format])
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn replay(corpus: &Path, reports: &Path) -> (i32, serde_json::Value, String) {
    let (rc, out) = run(
        &[
            "replay",
            "--quiet",
            "--run-id",
            "r",
            "--out-dir",
            reports.to_str().unwrap(),
        ],
        corpus,
    );
    let dir = reports.join("r");
    let r = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {out}"));
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    (rc, r, md)
}

#[test]
fn zeth_and_keth_reports_carry_exact_state_roots() {
    for (name, format, n) in [("zeth-mainnet", "zeth", 10), ("keth-mainnet", "keth", 2)] {
        let Some(input) = shared(name) else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let corpus = tmp.path().join("c");
        import(format, &input, &corpus);
        let (rc, r, md) = replay(&corpus, &tmp.path().join("reports"));
        assert_eq!(rc, 0, "{r:#}");
        let roots = r["state_roots"].as_array().unwrap();
        assert_eq!(roots.len(), n);
        for e in roots {
            assert_eq!(e["source"], "witness", "{e:#}");
            assert_eq!(e["pre_state_verified"], true, "{e:#}");
            assert_eq!(e["baseline"]["matches_header"], true, "{e:#}");
            assert_eq!(e["baseline"]["state_root"], e["header_state_root"], "{e:#}");
            assert!(e["witness_nodes"].as_u64().unwrap() > 0);
        }
        assert!(md.contains("## State roots"), "{md}");
        assert_eq!(md.matches("| = header | verified |").count(), n, "{md}");
    }
}

#[test]
fn an_altered_pre_state_balance_in_a_corpus_fails_its_block() {
    // the keth sample shipped in testdata/
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/keth-mainnet");
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c");
    import("keth", &input.join("21688509.json"), &corpus);
    // rewrite the block with one balance off by one wei (a consistent corpus: checksums match)
    let c = Corpus::open(&corpus).unwrap();
    let mut b = c.load_blocks().unwrap().remove(0);
    let (addr, acc) = b
        .pre_state
        .iter_mut()
        .find_map(|(a, s)| Some((*a, s.as_mut()?)))
        .unwrap();
    acc.balance += U256::from(1);
    let m = c.manifest();
    let mut w =
        CorpusWriter::create(&corpus, m.chain.clone(), m.provenance.clone(), false).unwrap();
    w.put_block(&b).unwrap();
    w.finish().unwrap();
    assert_eq!(run(&["corpus", "verify"], &corpus).0, 0);

    let (rc, r, md) = replay(&corpus, &tmp.path().join("reports"));
    assert_eq!(rc, 1, "{r:#}");
    // the block fails as a whole (its pre-state is wrong), not one of its txs
    assert_eq!(r["counts"]["block_errors"], 1);
    assert_eq!(r["counts"]["errors"], 0);
    let want = format!("account {addr} balance: ");
    let f = &r["findings"][0];
    assert_eq!(f["kind"], "error");
    assert!(f["got"].as_str().unwrap().contains(&want), "{f:#}");
    let e = &r["state_roots"][0];
    assert_eq!(e["pre_state_verified"], false);
    assert!(
        e["baseline"]["error"].as_str().unwrap().contains(&want),
        "{e:#}"
    );
    assert!(md.contains("| MISMATCH |"), "{md}");
}
