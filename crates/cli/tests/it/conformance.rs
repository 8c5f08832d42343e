//! `txshadow import blockchain-tests|state-tests` and their replay: the conformance suites'
//! samples in `testdata/ethereum-tests` pass case by case, and a case that does not behave as
//! its test expects fails, whatever the way it departs.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_txshadow"))
}

fn suites() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ethereum-tests")
}

fn run(args: &[&str], paths: &[&Path]) -> Output {
    let mut c = bin();
    c.args(args);
    for p in paths {
        c.arg(p);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Imports `inputs` as `format` and replays the corpus: the exit code and the report.
fn import_and_replay(format: &str, inputs: &[&Path], tmp: &Path) -> (i32, Value, PathBuf) {
    let corpus = tmp.join("corpus");
    let mut c = bin();
    c.args(["import", format, "--out"])
        .arg(&corpus)
        .args(inputs);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = tmp.join("runs");
    let o = bin()
        .args(["replay", "-q", "--run-id", "r", "--out-dir"])
        .arg(&out)
        .arg(&corpus)
        .output()
        .unwrap();
    let dir = out.join("r");
    let report = std::fs::read_to_string(dir.join("report.json"))
        .unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    (
        o.status.code().unwrap(),
        serde_json::from_str(&report).unwrap(),
        dir,
    )
}

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write(p: &Path, v: &Value) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

#[test]
fn the_shipped_state_tests_pass_case_by_case() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = [
        suites().join("GeneralStateTests"),
        suites().join("eest-state-tests"),
    ];
    let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let (rc, r, dir) = import_and_replay("state-tests", &refs, tmp.path());
    assert_eq!(rc, 0, "{r}");
    let c = &r["counts"];
    assert_eq!(
        (c["txs"].as_u64(), c["differing"].as_u64()),
        (Some(15), Some(0))
    );
    assert_eq!(c["errors"], 0);
    let k = &r["conformance"];
    assert_eq!(k["total"]["cases"], 15, "{k}");
    assert_eq!(k["total"]["passed"], 15, "{k}");
    assert_eq!(k["by_fork"]["Osaka"]["passed"], 8, "{k}");
    assert_eq!(k["by_folder"]["stExample"]["cases"], 5, "{k}");
    // the expected rejections are matched, each with both reasons in its row
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let rejected = csv
        .lines()
        .filter(|l| l.contains("expected Transaction"))
        .count();
    assert!(rejected >= 4, "{csv}");
    assert!(csv.contains("INSUFFICIENT_MAX_FEE_PER_GAS"), "{csv}");
    assert!(csv.contains("TYPE_3_TX_BLOB_COUNT_EXCEEDED"), "{csv}");
    // one JUnit test case per fixture case, classed by folder
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 15, "{junit}");
    assert!(junit.contains("classname=\"stEIP1559\""), "{junit}");
}

#[test]
fn the_shipped_blockchain_tests_pass_with_every_header_and_post_state_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let input = suites().join("BlockchainTests");
    let (rc, r, dir) = import_and_replay("blockchain-tests", &[&input], tmp.path());
    assert_eq!(rc, 0, "{r}");
    let c = &r["counts"];
    assert_eq!(
        (c["blocks"].as_u64(), c["txs"].as_u64()),
        (Some(10), Some(13))
    );
    assert_eq!(c["differing"], 0);
    let k = &r["conformance"];
    assert_eq!(
        (k["total"]["cases"].as_u64(), k["total"]["passed"].as_u64()),
        (Some(4), Some(4))
    );
    // every block's state root was computed from the full state
    assert_eq!(r["state_roots"].as_array().unwrap().len(), 10);
    // a case of several blocks is one test case
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 4, "{junit}");
}

#[test]
fn a_state_test_case_that_departs_from_its_expectation_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let src = suites().join("GeneralStateTests/stExample");
    let dir = tmp.path().join("suite/stBroken");
    // accessListExample: a wrong post root (d0), a wrong logs hash (d1)
    let mut t = read(&src.join("accessListExample.json"));
    let post = t["accessListExample"]["post"]["Cancun"]
        .as_array_mut()
        .unwrap();
    post[0]["hash"] = format!("0x{}", "11".repeat(32)).into();
    post[1]["logs"] = format!("0x{}", "22".repeat(32)).into();
    write(&dir.join("accessListExample.json"), &t);
    // invalidTr: the rejection is expected for another reason
    let mut t = read(&src.join("invalidTr.json"));
    t["invalidTr"]["post"]["Cancun"][0]["expectException"] =
        "TransactionException.INSUFFICIENT_ACCOUNT_FUNDS".into();
    write(&dir.join("invalidTr.json"), &t);
    // add11: a valid tx is expected to be rejected
    let mut t = read(&src.join("add11.json"));
    t["add11"]["post"]["Cancun"][0]["expectException"] =
        "TransactionException.INTRINSIC_GAS_TOO_LOW".into();
    write(&dir.join("add11.json"), &t);
    let suite = tmp.path().join("suite");
    let (rc, r, run) = import_and_replay("state-tests", &[&suite], tmp.path());
    assert_eq!(rc, 1, "{r}");
    let k = &r["conformance"];
    assert_eq!(k["total"]["failed"], 4, "{k}");
    let failed: Vec<&str> = k["failed_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        failed
            .iter()
            .any(|f| f.contains("accessListExample[Cancun][d0")),
        "{failed:?}"
    );
    let fields: Vec<String> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["kind"].as_str().unwrap(),
                f["field"].as_str().unwrap()
            )
        })
        .collect();
    for want in ["state_root:state_root", "logs:logs_hash", "status:rejected"] {
        assert!(fields.iter().any(|f| f == want), "{want} in {fields:?}");
    }
    let md = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(
        md.contains("## Conformance") && md.contains("stBroken"),
        "{md}"
    );
}

#[test]
fn a_fork_revm_cannot_run_is_skipped_with_its_reason_never_passed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = read(&suites().join("GeneralStateTests/stExample/add11.json"));
    let post = t["add11"]["post"].as_object_mut().unwrap();
    let entries = post.remove("Cancun").unwrap();
    post.insert("Constantinople".into(), entries);
    let suite = tmp.path().join("suite");
    write(&suite.join("stOld/add11.json"), &t);
    let (rc, r, _) = import_and_replay("state-tests", &[&suite], tmp.path());
    assert_eq!(rc, 0, "{r}");
    let k = &r["conformance"];
    assert_eq!(k["total"]["skipped"], k["total"]["cases"], "{k}");
    assert_eq!(k["total"]["passed"], 0, "{k}");
    let reasons = k["skip_reasons"].as_object().unwrap();
    assert!(reasons.keys().any(|why| why.contains("EIP-1283")), "{k}");
}

#[test]
fn a_blockchain_test_post_state_is_checked_account_by_account() {
    let tmp = tempfile::tempdir().unwrap();
    let src = suites().join("BlockchainTests/ValidBlocks/bcExample/shanghaiExample.json");
    let mut t = read(&src);
    let case = t.as_object_mut().unwrap().values_mut().next().unwrap();
    let post = case["postState"].as_object_mut().unwrap();
    let (addr, acc) = post.iter_mut().next().unwrap();
    let addr = addr.clone();
    acc["balance"] = "0x2a".into();
    let suite = tmp.path().join("suite");
    write(&suite.join("bcBroken/shanghaiExample.json"), &t);
    let (rc, r, _) = import_and_replay("blockchain-tests", &[&suite], tmp.path());
    assert_eq!(rc, 1, "{r}");
    let finding = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"].as_str().unwrap().ends_with(".balance"))
        .unwrap_or_else(|| panic!("no balance finding: {r}"));
    assert!(
        finding["field"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains(&addr.to_lowercase()[2..]),
        "{finding}"
    );
    assert_eq!(finding["expected"], "42");
    assert_eq!(r["conformance"]["total"]["failed"], 1);
}

#[test]
fn a_malformed_case_is_listed_and_the_others_are_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let src = suites().join("BlockchainTests/ValidBlocks/bcExample/shanghaiExample.json");
    let mut t = read(&src);
    let case = t
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap()
        .clone();
    let mut broken = case.clone();
    broken["lastblockhash"] = format!("0x{}", "ab".repeat(32)).into();
    let both = serde_json::json!({ "good": case, "broken": broken });
    let suite = tmp.path().join("suite");
    write(&suite.join("bcMixed/mixed.json"), &both);
    let corpus = tmp.path().join("corpus");
    let o = run(&["import", "blockchain-tests", "--out"], &[&corpus, &suite]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("mixed.json") && t.contains("broken") && t.contains("lastblockhash"),
        "{t}"
    );
    assert!(t.contains("imported 1 blocks"), "{t}");
}

/// The shared sample of the suites, when it is beside the repository (CI has it).
fn shared_sample() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/ethereum-tests");
    p.is_dir().then_some(p)
}

#[test]
fn the_shared_sample_of_every_suite_passes_with_at_most_one_percent_skipped() {
    let Some(et) = shared_sample() else {
        eprintln!("the shared ethereum-tests sample is not here: skipped");
        return;
    };
    for (format, dir, min_cases) in [
        ("blockchain-tests", "BlockchainTests/ValidBlocks", 400),
        ("state-tests", "eest-state-tests", 600),
        ("state-tests", "GeneralStateTests", 14_000),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (rc, r, _) = import_and_replay(format, &[&et.join(dir)], tmp.path());
        let k = &r["conformance"]["total"];
        let (cases, passed, skipped) = (
            k["cases"].as_u64().unwrap(),
            k["passed"].as_u64().unwrap(),
            k["skipped"].as_u64().unwrap(),
        );
        assert_eq!(rc, 0, "{dir}: {}", r["conformance"]);
        assert!(cases >= min_cases, "{dir}: {cases} cases");
        assert_eq!(passed + skipped, cases, "{dir}: {}", r["conformance"]);
        assert!(
            skipped * 100 <= cases,
            "{dir}: {}",
            r["conformance"]["skip_reasons"]
        );
        assert_eq!(r["counts"]["errors"], 0, "{dir}");
    }
}

#[test]
fn state_tests_replay_through_a_node_with_what_rpc_cannot_check_set_aside() {
    let node = match txshadow_testnode::Anvil::spawn_with(&["--chain-id", "1"]) {
        Ok(n) => n,
        Err(e) => panic!("anvil is needed (./scripts/test installs it): {e}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    let o = run(
        &["import", "state-tests", "--out"],
        &[
            &corpus,
            &suites().join("GeneralStateTests"),
            &suites().join("eest-state-tests"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let replay = |spec: String, id: &str| {
        let out = tmp.path().join("runs");
        let o = bin()
            .args([
                "replay",
                "-q",
                "--mode",
                "tx",
                "--run-id",
                id,
                "--baseline",
                &spec,
                "--out-dir",
            ])
            .arg(&out)
            .arg(&corpus)
            .output()
            .unwrap();
        let r: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(id).join("report.json"))
                .unwrap_or_else(|e| panic!("{e}: {}", text(&o))),
        )
        .unwrap();
        (o.status.code().unwrap(), r)
    };
    let (rc, r) = replay(format!("node={}", node.url()), "plain");
    assert_eq!(rc, 0, "{r}");
    assert_eq!(r["counts"]["differing"], 0, "{}", r["findings"]);
    // each tx the test expects rejected but the node's call simulation runs is set aside with
    // its reason, and its case is skipped, not passed
    let nc = r["not_comparable"].as_array().unwrap();
    assert!(nc.len() >= 4, "{nc:?}");
    for n in nc {
        let why = n["reason"].as_str().unwrap();
        assert!(
            why.contains("over RPC") || why.contains("does not take"),
            "{why}"
        );
    }
    let k = &r["conformance"]["total"];
    assert_eq!(k["skipped"].as_u64(), Some(nc.len() as u64), "{k}");
    assert_eq!(
        k["passed"].as_u64().unwrap() + k["skipped"].as_u64().unwrap(),
        15,
        "{k}"
    );
    // the node's own results are held to the verified block run: a node that runs other code
    // for add11's contract fails those cases
    let code = tmp.path().join("code.hex");
    std::fs::write(&code, "0x60016000f3").unwrap();
    let spec = format!(
        "node={},code.0x095e7baea6a6c7c4c2dfeb977efac326af552d87={}",
        node.url(),
        code.display()
    );
    let (rc, r) = replay(spec, "patched");
    assert_eq!(rc, 1, "{r}");
    assert!(
        r["conformance"]["total"]["failed"].as_u64().unwrap() >= 1,
        "{}",
        r["conformance"]
    );
}

/// A change to a header, named by the exception a test would expect of it.
type HeaderChange<'a> = (&'a str, fn(&mut alloy_consensus::Header));

/// The blockchain test of one Shanghai block, with siblings of that block changed one way each
/// and expected invalid with the change's name.
fn with_invalid_siblings(changes: &[HeaderChange<'_>]) -> Value {
    use alloy_rlp::{Decodable, Encodable};
    let src = suites().join("BlockchainTests/ValidBlocks/bcExample/shanghaiExample.json");
    let mut t = read(&src);
    let case = t.as_object_mut().unwrap().values_mut().next().unwrap();
    let rlp: alloy_primitives::Bytes =
        serde_json::from_value(case["blocks"][0]["rlp"].clone()).unwrap();
    let block =
        alloy_consensus::Block::<alloy_consensus::TxEnvelope>::decode(&mut rlp.as_ref()).unwrap();
    let blocks = case["blocks"].as_array_mut().unwrap();
    for (name, change) in changes {
        let mut b = block.clone();
        change(&mut b.header);
        let mut out = vec![];
        b.encode(&mut out);
        blocks.push(serde_json::json!({
            "rlp": alloy_primitives::hex::encode_prefixed(out),
            "expectException": format!("BlockException.{name}"),
        }));
    }
    t
}

#[test]
fn a_block_the_test_expects_invalid_must_be_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let t = with_invalid_siblings(&[
        ("INVALID_GASLIMIT", |h| h.gas_limit *= 2),
        ("INVALID_BASEFEE_PER_GAS", |h| {
            h.base_fee_per_gas = h.base_fee_per_gas.map(|f| f + 1)
        }),
        ("INVALID_STATE_ROOT", |h| h.state_root = Default::default()),
        ("INVALID_BLOCK_TIMESTAMP_OLDER_THAN_PARENT", |h| {
            h.timestamp = 0
        }),
        ("INVALID_GAS_USED", |h| h.gas_used += 1),
    ]);
    let suite = tmp.path().join("suite");
    write(&suite.join("bcInvalid/siblings.json"), &t);
    let (rc, r, _) = import_and_replay("blockchain-tests", &[&suite], tmp.path());
    assert_eq!(rc, 0, "{r}");
    // the valid block and its five invalid siblings: six blocks replayed, one case, passed
    assert_eq!(r["counts"]["blocks"], 6, "{r}");
    assert_eq!(
        r["conformance"]["total"]["passed"], 1,
        "{}",
        r["conformance"]
    );
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 5, "{warnings:#?}");
    for want in [
        "gas limit",
        "base fee",
        "state_root",
        "timestamp",
        "gas_used",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(want)),
            "{want}: {warnings:#?}"
        );
    }
}

#[test]
fn a_block_the_test_expects_invalid_but_is_valid_fails_its_case() {
    let tmp = tempfile::tempdir().unwrap();
    // extra data within its 32 bytes: the block stays valid
    let t =
        with_invalid_siblings(&[("EXTRA_DATA_TOO_BIG", |h| h.extra_data = vec![7u8; 8].into())]);
    let suite = tmp.path().join("suite");
    write(&suite.join("bcInvalid/harmless.json"), &t);
    let (rc, r, _) = import_and_replay("blockchain-tests", &[&suite], tmp.path());
    assert_eq!(rc, 1, "{r}");
    assert_eq!(
        r["conformance"]["total"]["failed"], 1,
        "{}",
        r["conformance"]
    );
    let f = &r["findings"][0];
    assert_eq!(f["field"], "block_validity", "{f}");
    assert!(
        f["expected"]
            .as_str()
            .unwrap()
            .contains("EXTRA_DATA_TOO_BIG"),
        "{f}"
    );
}
