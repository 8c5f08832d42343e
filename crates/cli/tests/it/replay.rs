//! `txshadow replay`, `corpus verify|stats` end to end.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_txshadow"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shipped() -> PathBuf {
    root().join("corpora/mainnet")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn default_replay_from_repo_root_passes_and_writes_reports() {
    let out = tempfile::tempdir().unwrap();
    let o = bin()
        .current_dir(root())
        .args(["replay", "--quiet", "--run-id", "t", "--out-dir"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.starts_with("PASS"), "{stdout}");
    let dir = out.path().join("t");
    let r = report(&dir);
    assert_eq!(r["schema_version"], 2);
    assert_eq!(r["run"]["status"], "complete");
    let c = &r["counts"];
    assert_eq!(c["blocks"], 13);
    assert_eq!(c["txs"], 1870);
    assert_eq!(c["matched"], 1870);
    assert_eq!(c["differing"], 0);
    assert_eq!(c["errors"], 0);
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 1870);
    assert!(
        std::fs::read_to_string(dir.join("summary.md"))
            .unwrap()
            .contains("| 13 | 1870 | 1870 | 0 |")
    );
}

#[test]
fn tx_mode_on_shipped_corpus_passes() {
    let out = tempfile::tempdir().unwrap();
    let o = bin()
        .args([
            "replay",
            "--quiet",
            "--mode",
            "tx",
            "--run-id",
            "t",
            "--out-dir",
        ])
        .arg(out.path())
        .arg(shipped())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(report(&out.path().join("t"))["counts"]["matched"], 1870);
}

#[test]
fn corrupted_block_file_exits_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("c");
    copy_dir(&shipped(), &c);
    let block = std::fs::read_dir(c.join("blocks"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&block).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&block, &bytes).unwrap();
    let o = bin()
        .args(["replay", "--quiet", "--out-dir"])
        .arg(tmp.path().join("r"))
        .arg(&c)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(block.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert!(err.contains("checksum mismatch"), "{err}");
    let v = bin().args(["corpus", "verify"]).arg(&c).output().unwrap();
    assert_eq!(v.status.code(), Some(2));
}

#[test]
fn truncated_code_and_manifest_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("c");
    copy_dir(&shipped(), &c);
    let code = std::fs::read_dir(c.join("codes"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let bytes = std::fs::read(&code).unwrap();
    std::fs::write(&code, &bytes[..bytes.len() / 2]).unwrap();
    let o = bin().args(["corpus", "verify"]).arg(&c).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(code.file_name().unwrap().to_str().unwrap())
    );
    std::fs::write(&code, &bytes).unwrap();
    let m = c.join("manifest.json");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, &text[..text.len() - 10]).unwrap();
    let o = bin().args(["corpus", "stats"]).arg(&c).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("manifest.json"));
}

#[test]
fn missing_corpus_is_a_clear_error() {
    let o = bin()
        .args(["replay", "/nonexistent/corpus"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a txshadow corpus"));
}

#[test]
fn verify_and_stats_on_shipped_corpus() {
    let o = bin()
        .args(["corpus", "verify"])
        .arg(shipped())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("13 blocks, 1870 txs"));
    let o = bin()
        .args(["corpus", "stats", "--json"])
        .arg(shipped())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["chain_id"], 1);
    assert_eq!(v["txs"], 1870);
}

#[test]
fn spec_change_is_found_and_exits_1() {
    // 9068998 is the last Petersburg-era block before Istanbul (9069000)
    let out = tempfile::tempdir().unwrap();
    let o = bin()
        .args([
            "replay",
            "--quiet",
            "--mode",
            "tx",
            "--candidate",
            "spec=istanbul",
            "--run-id",
            "t",
            "--out-dir",
        ])
        .arg(out.path())
        .arg(shipped())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let r = report(&out.path().join("t"));
    assert!(r["counts"]["differing"].as_u64().unwrap() > 0);
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["block"] == 9068998 && f["kind"] == "gas")
    );
}

#[test]
fn corpus_pack_moves_loose_codes_into_a_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("c");
    copy_dir(&shipped(), &c);
    let files = |suffix: &str| {
        std::fs::read_dir(c.join("codes"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
            .count()
    };
    assert_eq!((files(".pack"), files(".bin")), (1, 0));
    // a loose code (as a stopped capture leaves them), referenced by no block
    let code = [0x60u8, 0x00, 0x5b, 0x00];
    let h = alloy_primitives::keccak256(code);
    std::fs::write(c.join("codes").join(format!("{h:x}.bin")), code).unwrap();
    let o = bin().args(["corpus", "pack"]).arg(&c).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("packed 1 loose codes"),
        "{o:?}"
    );
    assert_eq!((files(".pack"), files(".bin")), (2, 0));
    let v = bin().args(["corpus", "verify"]).arg(&c).output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{v:?}");
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("262 codes verified"),
        "{v:?}"
    );
    let r = bin()
        .args(["replay"])
        .arg(&c)
        .arg("--out-dir")
        .arg(tmp.path().join("r"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{r:?}");
}

/// `corpus pack --codes compressed` stores every code LZ4-compressed in one pack: the corpus
/// verifies, takes fewer bytes, and replays (block and tx mode) with the same outcomes, tx by
/// tx, as the corpus as shipped; a damaged compressed code is named by the load; `--codes
/// mapped` stores them as they were.
#[test]
fn codes_packed_compressed_replay_as_the_shipped_corpus_does() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("c");
    copy_dir(&shipped(), &c);
    let codes_bytes = |c: &Path| -> u64 {
        std::fs::read_dir(c.join("codes"))
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    let before = codes_bytes(&c);
    // `txshadow <args> <the copy>`
    let on_copy = |args: &[&str]| bin().args(args).arg(&c).output().unwrap();
    let o = on_copy(&["corpus", "pack", "--codes", "zip"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`zip` is not a code storage: mapped or compressed"),
        "{err}"
    );
    let o = on_copy(&["corpus", "pack", "--codes", "compressed"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("wrote 261 packed codes again into one pack"),
        "{out}"
    );
    assert!(out.contains("code packs: 261 codes, 2"), "{out}");
    let after = codes_bytes(&c);
    assert!(
        after * 10 < before * 7,
        "{after} bytes of codes, {before} before"
    );
    let v = on_copy(&["corpus", "verify"]);
    assert_eq!(v.status.code(), Some(0), "{v:?}");
    let st = on_copy(&["corpus", "stats", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["packs"]["codes"], 261, "{st}");
    assert!(st["packs"]["compressed"].as_u64().unwrap() > 200, "{st}");
    // the pack file: its header, 261 index entries of 56 bytes, the codes as stored
    assert_eq!(
        st["packs"]["stored"].as_u64().unwrap() + 16 + 261 * 56,
        after,
        "{st}"
    );

    // the same outcome of every tx, in both modes, as the corpus as shipped
    let replay = |corpus: &Path, mode: &str, id: &str| {
        let r = bin()
            .args(["replay", "--mode", mode, "--run-id", id])
            .arg(corpus)
            .arg("--out-dir")
            .arg(tmp.path().join("r"))
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(0), "{r:?}");
        let dir = tmp.path().join("r").join(id);
        let rows = std::fs::read_to_string(dir.join("results.csv")).unwrap();
        (report(&dir)["counts"].clone(), rows)
    };
    for mode in ["block", "tx"] {
        let (want_counts, want_rows) = replay(&shipped(), mode, &format!("{mode}-shipped"));
        let (counts, rows) = replay(&c, mode, &format!("{mode}-compressed"));
        assert_eq!(counts, want_counts, "{mode} mode");
        assert_eq!(rows, want_rows, "{mode} mode");
    }

    // one byte of the compressed codes damaged: the run names the pack, not a wrong result
    let pack = std::fs::read_dir(c.join("codes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .next()
        .unwrap();
    let good = std::fs::read(&pack).unwrap();
    let mut bad = good.clone();
    let k = bad.len() - 200;
    bad[k] ^= 0x55;
    std::fs::write(&pack, &bad).unwrap();
    let r = bin()
        .arg("replay")
        .arg(&c)
        .arg("--out-dir")
        .arg(tmp.path().join("r"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "{r:?}");
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains(&pack.display().to_string()), "{err}");
    std::fs::write(&pack, &good).unwrap();

    let o = on_copy(&["corpus", "pack", "--codes", "mapped"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("code packs: 261 codes, 0 compressed"),
        "{o:?}"
    );
    // the very pack that was shipped: the same codes, tables and layout, byte for byte
    let packs = |c: &Path| -> Vec<(std::ffi::OsString, Vec<u8>)> {
        std::fs::read_dir(c.join("codes"))
            .unwrap()
            .flatten()
            .map(|e| (e.file_name(), std::fs::read(e.path()).unwrap()))
            .collect()
    };
    assert!(
        packs(&c) == packs(&shipped()),
        "the codes stored as they are differ"
    );
}

#[test]
fn pack_writes_binary_blocks_that_show_prints_as_json_and_seal_makes_replays_skip_the_trie() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("c");
    copy_dir(&shipped(), &c);
    let json_of = |o: &std::process::Output| -> serde_json::Value {
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let show = |which: &str| {
        bin()
            .args(["corpus", "show"])
            .arg(&c)
            .arg(which)
            .output()
            .unwrap()
    };
    let before = json_of(&show("12520364"));
    let o = bin().args(["corpus", "pack"]).arg(&c).output().unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("rewrote 13 JSON block files and 0 binary block files of an older encoding"),
        "{o:?}"
    );
    let names: Vec<String> = std::fs::read_dir(c.join("blocks"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 13);
    assert!(names.iter().all(|n| n.ends_with(".bin")), "{names:?}");
    // the same block, by number, by hash prefix and by file name
    let hash = before["hash"].as_str().unwrap().to_string();
    assert_eq!(json_of(&show("12520364")), before);
    assert_eq!(json_of(&show(&hash[..10])), before);
    let o = show("0x");
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no block"),
        "{o:?}"
    );

    let o = bin().args(["corpus", "seal"]).arg(&c).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("9 blocks held to their headers"), "{out}");
    assert!(
        out.contains("block 46147 not sealed: pre-Byzantium"),
        "{out}"
    );
    assert_eq!(
        json_of(&show("12520364"))["expected"]["receipts_sealed"],
        true
    );
    let v = bin().args(["corpus", "verify"]).arg(&c).output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{v:?}");
    let r = bin()
        .args(["replay", "--quiet"])
        .arg(&c)
        .arg("--out-dir")
        .arg(tmp.path().join("r"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    let rep = std::fs::read_dir(tmp.path().join("r"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    // the 4 blocks before Byzantium: their blooms alone (no full pre-state: no receipts root
    // their headers' could match)
    let checks = &report(&rep)["throughput"]["receipts_checks"];
    assert_eq!(
        (
            checks["recorded"].as_u64(),
            checks["trie"].as_u64(),
            checks["bloom"].as_u64()
        ),
        (Some(9), Some(0), Some(4))
    );
}
