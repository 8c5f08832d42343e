//! The nightly job's outputs: shards merged into the unsharded run, bad merges refused, and the
//! HTML page read by a real headless Chromium.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_txshadow"))
}

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../corpora/mainnet")
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn replay(out: &Path, id: &str, extra: &[&str]) -> i32 {
    let o = bin()
        .arg("replay")
        .arg(shipped())
        .args(["-q", "--candidate", "spec=istanbul", "--out-dir"])
        .arg(out)
        .args(["--run-id", id])
        .args(extra)
        .output()
        .unwrap();
    assert_ne!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.status.code().unwrap()
}

fn merge(dirs: &[PathBuf], out: &Path) -> (i32, String) {
    let o = bin()
        .args(["report", "merge"])
        .args(dirs)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn sorted_rows(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(dir.join("results.csv"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn three_shards_merge_into_the_unsharded_run_and_bad_merges_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    assert_eq!(replay(r, "full", &[]), 1);
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| {
            replay(r, &format!("s{i}"), &["--shard", &format!("{i}/3")]);
            r.join(format!("s{i}"))
        })
        .collect();
    let (rc, err) = merge(&shards, &r.join("merged"));
    assert_eq!(rc, 1, "{err}");
    let (a, b) = (report(&r.join("full")), report(&r.join("merged")));
    for k in [
        "blocks",
        "txs",
        "matched",
        "differing",
        "errors",
        "skipped",
        "findings",
        "accepted",
        "differing_blocks",
        "block_errors",
        "gas_expected",
        "gas_got",
    ] {
        assert_eq!(a["counts"][k], b["counts"][k], "{k}");
    }
    assert_eq!(a["verdict"], b["verdict"]);
    assert_eq!(a["failed_criteria"], b["failed_criteria"]);
    assert_eq!(a["findings"], b["findings"]);
    assert_eq!(sorted_rows(&r.join("full")), sorted_rows(&r.join("merged")));
    let cases = |d: &str| {
        std::fs::read_to_string(r.join(d).join("junit.xml"))
            .unwrap()
            .matches("<testcase ")
            .count()
    };
    assert_eq!(cases("full"), cases("merged"));
    // the merged rows are in block order, like the unsharded run's
    let blocks: Vec<u64> = std::fs::read_to_string(r.join("merged/results.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(blocks.windows(2).all(|w| w[0] <= w[1]));

    // overlap, missing, and a shard of another configuration: exit 2 naming the directory
    let (rc, err) = merge(&[&shards[..], &shards[..1]].concat(), &r.join("m1"));
    assert_eq!(rc, 2);
    assert!(err.contains("given twice") && err.contains("s0"), "{err}");
    let (rc, err) = merge(&shards[..2], &r.join("m2"));
    assert_eq!(rc, 2);
    assert!(err.contains("2/3") && err.contains("missing"), "{err}");
    let o = bin()
        .arg("replay")
        .arg(shipped())
        .args([
            "-q",
            "--candidate",
            "spec=berlin",
            "--shard",
            "2/3",
            "--out-dir",
        ])
        .arg(r)
        .args(["--run-id", "other"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(2));
    let (rc, err) = merge(
        &[shards[0].clone(), shards[1].clone(), r.join("other")],
        &r.join("m3"),
    );
    assert_eq!(rc, 2);
    assert!(
        err.contains("other") && err.contains("configuration"),
        "{err}"
    );
    let (rc, err) = merge(&[r.join("nowhere")], &r.join("m4"));
    assert_eq!(rc, 2);
    assert!(err.contains("nowhere"), "{err}");
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|c| {
            let o = Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .ok()?;
            o.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        })
}

/// Loads a page in headless Chromium: the DOM after its scripts ran, and Chromium's log.
fn dump_dom(chromium: &Path, url: &str) -> (String, String) {
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn shown(dom: &str) -> (usize, usize) {
    let s = dom.split("id=\"shown\">").nth(1).unwrap();
    let s = s.split('<').next().unwrap();
    let mut it = s.split(" of ");
    let a = it.next().unwrap().trim().parse().unwrap();
    let b = it
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (a, b)
}

#[test]
fn the_html_report_renders_offline_in_chromium_with_plots_and_filters() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed: ./scripts/test installs Debian's chromium"
        );
        eprintln!("skipped: no chromium on this machine (./scripts/test installs it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(replay(tmp.path(), "h", &[]), 1);
    let page = tmp.path().join("h/index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // offline: nothing fetched from anywhere
    for bad in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(bad), "the page refers outside: {bad}");
    }
    let url = format!("file://{}", page.display());
    let (dom, log) = dump_dom(&chromium, &url);
    assert!(!log.contains("Uncaught"), "console errors: {log}");
    assert!(!log.contains(":CONSOLE"), "console output: {log}");
    let verdict = dom.split("id=\"verdict\">").nth(1).unwrap();
    assert!(verdict.starts_with("FAIL: "), "{verdict}");
    assert!(dom.contains("spec=istanbul"));
    let rows = dom.matches("<tr class=\"finding\"").count();
    let (seen, all) = shown(&dom);
    assert_eq!((seen, all), (rows, rows));
    let findings = report(&tmp.path().join("h"))["counts"]["findings"]
        .as_u64()
        .unwrap();
    assert_eq!(rows as u64, findings.min(500));
    // the plots are SVG with data in them
    for id in [
        "plot-gas-hist",
        "plot-gas-contract",
        "plot-diff-block",
        "plot-changed-share",
    ] {
        let svg = dom
            .split(&format!("<svg id=\"{id}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no {id}"));
        let svg = svg.split("</svg>").next().unwrap();
        assert!(svg.matches("<rect").count() >= 2, "{id} has no bars");
    }
    assert!(dom.contains("<svg id=\"plot-throughput\""));
    // a filter narrows the table (set from the URL, as a shared link would)
    let (dom, _) = dump_dom(&chromium, &format!("{url}#kind=gas"));
    let (gas, all) = shown(&dom);
    assert!(gas > 0 && gas < all, "{gas} of {all}");
    let hidden = dom
        .split("<tr class=\"finding\"")
        .skip(1)
        .filter(|t| t.split('>').next().unwrap().contains(" hidden"))
        .count();
    assert_eq!(hidden, all - gas);
    let (dom, _) = dump_dom(&chromium, &format!("{url}#field=gas_used&kind=gas"));
    assert!(shown(&dom).0 <= gas);
    // and a person can look at it
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nightly-index.png");
    let o = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,2200",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(std::fs::metadata(&shot).unwrap().len() > 20_000);
    eprintln!("screenshot: {}", shot.display());
}
