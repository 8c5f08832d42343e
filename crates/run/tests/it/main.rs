//! The run library on the shipped mainnet corpus: streaming in a bounded window, results in
//! block order, shards that add up to the whole, a stop that leaves an interrupted report.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

use txshadow_corpus::ChainConfig;
use txshadow_diff::Mode;
use txshadow_replay::SideConfig;
use txshadow_report::{RunStatus, RunVerdict};
use txshadow_run::{
    BlockSource, CorpusSource, RunConfig, RunError, RunEvent, RunHooks, Shard, SideSpec,
    SourceBlock, SourcePlan,
};

mod seal;

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../corpora/mainnet")
}

/// A corpus source that calls `on_read` with the number of blocks it has given so far, each
/// time it gives one: to count how far ahead of the results the run reads, or to stop it.
struct OnRead<F> {
    inner: CorpusSource,
    read: usize,
    on_read: F,
}

impl<F: FnMut(usize) + Send> BlockSource for OnRead<F> {
    fn chain(&self) -> &ChainConfig {
        self.inner.chain()
    }
    fn plan(&self) -> SourcePlan {
        self.inner.plan()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn next_block(&mut self) -> Option<Result<SourceBlock, RunError>> {
        let b = self.inner.next_block()?;
        self.read += 1;
        (self.on_read)(self.read);
        Some(b)
    }
}

fn rows(dir: &std::path::Path) -> Vec<Vec<String>> {
    csv::Reader::from_path(dir.join("results.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn a_run_reads_a_bounded_window_ahead_and_writes_in_block_order() {
    let out = tempfile::tempdir().unwrap();
    for jobs in [1, 2] {
        let (read, emitted, most) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        let mut src = OnRead {
            inner: CorpusSource::open(&shipped(), None).unwrap(),
            read: 0,
            on_read: |n: usize| {
                read.store(n, Ordering::SeqCst);
                let ahead = n - emitted.load(Ordering::SeqCst);
                most.fetch_max(ahead, Ordering::SeqCst);
            },
        };
        let mut cfg = RunConfig::against_chain(Mode::Block, out.path());
        cfg.jobs = jobs;
        cfg.run_id = Some(format!("j{jobs}"));
        let numbers = std::sync::Mutex::new(vec![]);
        let events = |e: &RunEvent| {
            if let RunEvent::Block { number, .. } = e {
                emitted.fetch_add(1, Ordering::SeqCst);
                numbers.lock().unwrap().push(*number);
            }
        };
        let hooks = RunHooks {
            events: Some(&events),
            ..Default::default()
        };
        let o = txshadow_run::run(&mut src, &cfg, hooks).unwrap();
        assert_eq!(o.exit, 0);
        assert_eq!(o.report.counts.txs, 1870);
        assert_eq!(read.load(Ordering::SeqCst), 13);
        // a few blocks per worker read and not yet replayed, and a bounded number of results
        // waiting for an earlier block's (the window's own tests count both): memory does not
        // follow the corpus's length
        let ahead = most.load(Ordering::SeqCst);
        assert!(
            ahead <= txshadow_run::BLOCKS_PER_WORKER * jobs * txshadow_run::RESULTS_PER_BLOCK,
            "-j {jobs}: read {ahead} blocks ahead"
        );
        let numbers = numbers.into_inner().unwrap();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
        let rows = rows(&o.dir);
        assert_eq!(rows.len(), 1870);
        let key = |r: &Vec<String>| (r[0].parse::<u64>().unwrap(), r[1].parse::<usize>().unwrap());
        assert!(
            rows.windows(2).all(|w| key(&w[0]) < key(&w[1])),
            "rows out of order"
        );
    }
}

/// Copies the shipped corpus into `dir`.
fn copy_shipped(dir: &std::path::Path) {
    for sub in ["", "blocks", "codes"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for e in std::fs::read_dir(shipped().join(sub)).unwrap().flatten() {
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), dir.join(sub).join(e.file_name())).unwrap();
            }
        }
    }
}

#[test]
fn many_workers_read_with_several_readers_and_write_what_one_worker_does() {
    // -j 8 (a run takes up to 4 workers per core): two reader threads load the corpus by
    // position; the run writes the same rows, findings and counts as -j 1, in block order,
    // with a candidate that differs
    let out = tempfile::tempdir().unwrap();
    assert_eq!(txshadow_run::WORKERS_PER_READER, 4);
    let mut cfg = RunConfig::against_chain(Mode::Block, out.path());
    cfg.candidate = Some(SideSpec::revm(SideConfig {
        spec: Some(txshadow_replay::SpecId::ISTANBUL),
        ..SideConfig::chain("candidate")
    }));
    let mut runs = vec![];
    for jobs in [1, 8] {
        cfg.jobs = jobs;
        cfg.run_id = Some(format!("j{jobs}"));
        let o = txshadow_run::run(
            &mut CorpusSource::open(&shipped(), None).unwrap(),
            &cfg,
            RunHooks::default(),
        )
        .unwrap();
        assert_eq!(o.exit, 1, "istanbul differs from the chain's later forks");
        assert!(o.report.throughput.load_cpu_seconds > 0.0, "-j {jobs}");
        runs.push(o);
    }
    let (one, many) = (&runs[0], &runs[1]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(many.report.throughput.jobs, 8.min(4 * cores));
    let c = |o: &txshadow_run::RunOutcome| {
        let c = &o.report.counts;
        (
            c.blocks,
            c.txs,
            c.matched,
            c.differing,
            c.errors,
            c.findings,
        )
    };
    assert_eq!(c(one), c(many));
    assert_eq!(c(many).0, 13);
    assert_eq!(
        rows(&one.dir),
        rows(&many.dir),
        "the same rows in the same order"
    );
    assert!(!one.report.findings.is_empty());
    assert_eq!(one.report.findings, many.report.findings);
}

#[test]
fn with_several_readers_a_damaged_block_ends_the_run_after_every_block_before_it() {
    // the 8th of the 13 blocks damaged: -j 1 (one reader, in order) and -j 8 (two readers by
    // position) both stop at it, name it, and keep the 7 blocks before it, in order
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("c");
    copy_shipped(&c);
    let source = CorpusSource::open(&c, None).unwrap();
    let damaged = &source.entries()[7];
    let path = c.join("blocks").join(&damaged.file);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let before: Vec<u64> = source.entries()[..7].iter().map(|e| e.number).collect();
    for jobs in [1, 8] {
        let mut cfg = RunConfig::against_chain(Mode::Block, tmp.path().join("r"));
        cfg.jobs = jobs;
        cfg.run_id = Some(format!("j{jobs}"));
        let err = txshadow_run::run(
            &mut CorpusSource::open(&c, None).unwrap(),
            &cfg,
            RunHooks::default(),
        )
        .unwrap_err();
        let RunError::Stopped { dir, source } = &err else {
            panic!("-j {jobs}: {err}")
        };
        let why = source.to_string();
        assert!(why.contains(&damaged.file), "-j {jobs}: {why}");
        let blocks: Vec<u64> = rows(dir)
            .iter()
            .map(|r| r[0].parse().unwrap())
            .collect::<std::collections::BTreeSet<u64>>()
            .into_iter()
            .collect();
        assert_eq!(blocks, before, "-j {jobs}");
    }
}

#[test]
fn shards_of_a_corpus_add_up_to_the_whole_run() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = RunConfig::against_chain(Mode::Block, out.path());
    cfg.candidate = Some(SideSpec::revm(SideConfig {
        spec: Some(txshadow_replay::SpecId::ISTANBUL),
        ..SideConfig::chain("candidate")
    }));
    cfg.run_id = Some("full".into());
    let full = txshadow_run::run(
        &mut CorpusSource::open(&shipped(), None).unwrap(),
        &cfg,
        RunHooks::default(),
    )
    .unwrap();
    assert_eq!(
        full.exit, 1,
        "istanbul differs from the chain's later forks"
    );
    let mut all_rows = vec![];
    let mut counts = (0, 0, 0, 0, 0);
    for index in 0..3 {
        let shard = Shard { index, count: 3 };
        cfg.shard = Some(shard);
        cfg.run_id = Some(format!("s{index}"));
        let o = txshadow_run::run(
            &mut CorpusSource::open(&shipped(), Some(shard)).unwrap(),
            &cfg,
            RunHooks::default(),
        )
        .unwrap();
        assert_eq!(o.report.run.shard.as_deref(), Some(&*format!("{index}/3")));
        let c = &o.report.counts;
        counts.0 += c.txs;
        counts.1 += c.matched;
        counts.2 += c.differing;
        counts.3 += c.errors;
        counts.4 += c.findings;
        all_rows.extend(rows(&o.dir));
    }
    let c = &full.report.counts;
    assert_eq!(
        counts,
        (c.txs, c.matched, c.differing, c.errors, c.findings)
    );
    assert_eq!(
        c.matched + c.differing + c.errors,
        c.txs,
        "every tx in one verdict"
    );
    all_rows.sort();
    let mut full_rows = rows(&full.dir);
    full_rows.sort();
    assert_eq!(all_rows, full_rows);
}

#[test]
fn a_stopped_run_ends_interrupted_with_what_it_finished() {
    let out = tempfile::tempdir().unwrap();
    let mut cfg = RunConfig::against_chain(Mode::Block, out.path());
    cfg.jobs = 1;
    cfg.run_id = Some("stopped".into());
    // stopped as the third of the 13 blocks is read, however far the replay has got by then
    // (as a signal arriving mid-run would be); no block may be read after it
    let stop = AtomicBool::new(false);
    let mut src = OnRead {
        inner: CorpusSource::open(&shipped(), None).unwrap(),
        read: 0,
        on_read: |n: usize| {
            assert!(n <= 3, "read block {n} after the stop");
            if n == 3 {
                stop.store(true, Ordering::SeqCst);
            }
        },
    };
    let blocks = AtomicUsize::new(0);
    let events = |e: &RunEvent| {
        if matches!(e, RunEvent::Block { .. }) {
            blocks.fetch_add(1, Ordering::SeqCst);
        }
    };
    let hooks = RunHooks {
        events: Some(&events),
        stop: Some(&stop),
        ..Default::default()
    };
    let o = txshadow_run::run(&mut src, &cfg, hooks).unwrap();
    assert_eq!(o.report.run.status, RunStatus::Interrupted);
    assert_eq!(o.report.verdict, RunVerdict::Pending);
    // the blocks read before the stop that were replayed: the first at least (it was ready
    // before any result could be emitted), the third at most
    let done = o.report.counts.blocks;
    assert!((1..=3).contains(&done), "{done} blocks");
    assert_eq!(blocks.load(Ordering::SeqCst), done);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["run"]["status"], "interrupted");
    assert_eq!(rows(&o.dir).len(), o.report.counts.txs);
}

#[test]
fn a_tx_is_found_by_a_unique_prefix_of_its_hash() {
    let src = CorpusSource::open(&shipped(), None).unwrap();
    let (sb, i) = src.find_tx("9068998:0").unwrap();
    let hash = sb.block.transactions[i].hash;
    let prefix = &format!("{hash:#x}")[..14];
    let (again, j) = src.find_tx(prefix).unwrap();
    assert_eq!((again.block.hash, j), (sb.block.hash, i));
    let e = src.find_tx("0x00").unwrap_err().to_string();
    assert!(e.contains("8+ hex digits"), "{e}");
    let e = src.find_tx("1:0").unwrap_err().to_string();
    assert!(e.contains("no block 1"), "{e}");
}

/// Tx mode with the chain's own rules as the candidate: every tx of the shipped corpus runs
/// alone on its layered pre-state, the txs of a job sharing an EVM, and matches the baseline's
/// block run exactly. The post-Berlin blocks make it a check of isolation: an account or slot
/// left warm by another tx, or a pre-state layer off by one, changes the gas.
#[test]
fn a_candidate_with_the_chains_rules_matches_every_tx_alone() {
    let out = tempfile::tempdir().unwrap();
    for jobs in [1, 2] {
        let mut src = CorpusSource::open(&shipped(), None).unwrap();
        let mut cfg = RunConfig::against_chain(Mode::Tx, out.path());
        cfg.candidate = Some(SideSpec::revm(SideConfig::chain("candidate")));
        cfg.jobs = jobs;
        cfg.run_id = Some(format!("same-{jobs}"));
        let o = txshadow_run::run(&mut src, &cfg, RunHooks::default()).unwrap();
        let c = &o.report.counts;
        assert_eq!(
            (o.exit, c.txs, c.matched, c.differing),
            (0, 1870, 1870, 0),
            "{c:?}"
        );
        assert_eq!(c.findings, 0);
    }
}
