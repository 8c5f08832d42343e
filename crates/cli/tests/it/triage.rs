//! `txshadow tx`: first diverging step on real mainnet txs, and fixture export checked by revme.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use txshadow_corpus::Corpus;
use txshadow_replay::{Codes, SideConfig, StepTrace, TxRunner};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_txshadow"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shipped() -> PathBuf {
    root().join("corpora/mainnet")
}

fn tx_json(args: &[&str]) -> (i32, serde_json::Value) {
    let o = bin()
        .arg("tx")
        .arg(shipped())
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code().unwrap(), v)
}

/// Block 9068998 tx 0 (Petersburg era) under Istanbul: EIP-1884 reprices its first SLOAD.
#[test]
fn tx_9068998_0_istanbul_diverges_at_the_first_sload() {
    let (rc, v) = tx_json(&["9068998:0", "--candidate", "spec=istanbul", "--diff"]);
    assert_eq!(rc, 1);
    let d = &v["divergence"];
    assert_eq!(d["reason"], "gas_cost");
    assert_eq!(d["opcode"], serde_json::json!(["SLOAD", "SLOAD"]));
    assert_eq!(d["pc"], serde_json::json!([1130, 1130]));
    assert_eq!(d["gas_cost"], serde_json::json!([200, 800]));
    assert!(
        v["intrinsic_gas"].is_array(),
        "calldata repricing (EIP-2028) changes intrinsic gas"
    );
    let diff = v["diff"].as_str().unwrap();
    assert!(diff.contains("-#64") && diff.contains("+#64"), "{diff}");
    // only the diverging line differs in the trimmed diff
    assert_eq!(
        diff.lines()
            .filter(|l| l.starts_with('-') && !l.starts_with("---"))
            .count(),
        1,
        "{diff}"
    );
}

/// A code override that swaps one opcode: the divergence is that instruction, in that contract.
#[test]
fn one_opcode_override_diverges_at_that_pc() {
    let c = Corpus::open(shipped()).unwrap();
    let blocks = c.load_blocks().unwrap();
    let store = c.load_codes(&blocks).unwrap();
    let codes = Codes::from_store(&store, blocks.iter().flat_map(|b| b.code_hashes()));
    let block = blocks.iter().find(|b| b.number() == 9068998).unwrap();
    let base = SideConfig::chain("baseline");
    let runner = TxRunner::new(block, &c.manifest().chain, &codes, &base);
    let mut t = StepTrace::new(0);
    runner.run(&base, 0, &mut t);
    let (k, step) = t
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| s.op == 0x54 && s.depth == 1)
        .unwrap();
    let frame = &t.frames[step.frame as usize];
    let target = frame.code.unwrap();
    let acc = block.pre_state[&target].clone().unwrap();
    let mut code = store.get(&acc.code_hash).unwrap().to_vec();
    assert_eq!(code[step.pc as usize], 0x54);
    code[step.pc as usize] = 0x19; // SLOAD -> NOT: same stack shape, another effect
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("patched.hex");
    std::fs::write(&file, alloy_primitives::hex::encode_prefixed(&code)).unwrap();
    let arg = format!("code.{target}={}", file.display());
    let (rc, v) = tx_json(&["9068998:0", "--candidate", &arg]);
    assert_eq!(rc, 1);
    let d = &v["divergence"];
    assert_eq!(d["step"], k);
    assert_eq!(d["reason"], "instruction");
    assert_eq!(d["pc"], serde_json::json!([step.pc, step.pc]));
    assert_eq!(d["opcode"], serde_json::json!(["SLOAD", "NOT"]));
    assert_eq!(d["address"], serde_json::json!(target));
    assert!(v["intrinsic_gas"].is_null());
}

#[test]
fn identical_candidate_does_not_diverge() {
    let (rc, v) = tx_json(&["19933122:35", "--candidate", "spec=cancun"]);
    assert_eq!(rc, 0, "{v}");
    assert!(v["divergence"].is_null());
    assert!(
        v["verdict"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["equal"] == true)
    );
}

#[test]
fn text_output_fits_80_columns() {
    let o = bin()
        .arg("tx")
        .arg(shipped())
        .args(["9068998:0", "--candidate", "spec=istanbul", "--diff"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("first divergence at step 64"), "{text}");
    assert!(!text.contains('\x1b'), "no colour without a terminal");
    for l in text.lines() {
        assert!(
            l.chars().count() <= 80,
            "{} columns: {l}",
            l.chars().count()
        );
    }
}

fn revme() -> Option<PathBuf> {
    let local = root().join(".tools/bin/revme");
    if local.exists() {
        return Some(local);
    }
    let ok = Command::new("revme")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some("revme".into())
    } else {
        eprintln!(
            "skipping the revme run: revme not installed (scripts/test installs it into .tools)"
        );
        None
    }
}

/// Exported fixtures of real mainnet txs of types 0, 2 and 3 pass `revme statetest`.
#[test]
fn exported_fixtures_pass_revme_statetest() {
    let dir = tempfile::tempdir().unwrap();
    // types 0 (Homestead, Petersburg, Berlin eras), 2 (Shanghai, Cancun) and 3 (a blob tx)
    let txs = [
        "9068998:0",
        "2179522:5",
        "12520364:3",
        "19426587:2",
        "19933122:35",
        "17034869:8",
    ];
    for (i, which) in txs.iter().enumerate() {
        let f = dir.path().join(format!("fx{i}.json"));
        let o = bin()
            .arg("tx")
            .arg(shipped())
            .arg(which)
            .arg("--export-fixture")
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            f.exists(),
            "{which}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let unit = v.as_object().unwrap().values().next().unwrap();
        for k in ["env", "pre", "transaction", "post"] {
            assert!(unit.get(k).is_some(), "{which}: no {k}");
        }
    }
    // the last proof-of-work block's only tx checks its parent hash with BLOCKHASH: state tests
    // have no block hashes, and the export says so
    let f = dir.path().join("blockhash.json");
    let o = bin()
        .arg("tx")
        .arg(shipped())
        .arg("15537393:0")
        .arg("--export-fixture")
        .arg(&f)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("reads BLOCKHASH"));
    std::fs::remove_file(&f).unwrap();
    let Some(revme) = revme() else { return };
    let o = Command::new(revme)
        .arg("statetest")
        .arg(dir.path())
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "revme statetest failed:\n{out}");
}
