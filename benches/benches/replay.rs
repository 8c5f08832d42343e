//! Library functions over pinned inputs from the shipped corpus. See the crate docs.

#![allow(missing_docs)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use txshadow_benches::shipped_corpus;
use txshadow_diff::{Mode, diff_outcomes};
use txshadow_replay::{BlockRunOptions, SideConfig, run_block, run_block_tx_mode};
use txshadow_report::{Report, ReportWriter, Sink};
use txshadow_run::{
    BlockSource, CorpusSource, RunConfig, RunHooks, SourceBlock,
    bench::{Loaded, raw},
};

/// The three largest blocks of the shipped corpus (by gas), the same every run.
fn pinned() -> (Loaded, Vec<usize>) {
    let loaded = Loaded::load(&shipped_corpus()).expect("shipped corpus loads");
    let mut idx: Vec<usize> = (0..loaded.blocks.len()).collect();
    idx.sort_by_key(|i| std::cmp::Reverse(loaded.blocks[*i].gas_used()));
    idx.truncate(3);
    (loaded, idx)
}

fn corpus_load(c: &mut Criterion) {
    let dir = shipped_corpus();
    c.bench_function("corpus_load/shipped", |b| {
        b.iter(|| Loaded::load(&dir).expect("loads"))
    });
    // what a run does: one block and its codes at a time
    c.bench_function("corpus_stream/shipped", |b| {
        b.iter(|| {
            let mut s = CorpusSource::open(&dir, None).expect("opens");
            let mut n = 0;
            while let Some(block) = s.next_block() {
                n += block.expect("loads").block.transactions.len();
            }
            n
        })
    });
}

fn whole_run(c: &mut Criterion) {
    let dir = shipped_corpus();
    let out = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("run");
    g.sample_size(10);
    for (name, mode) in [("block_mode", Mode::Block), ("tx_mode", Mode::Tx)] {
        let mut cfg = RunConfig::against_chain(mode, out.path());
        cfg.run_id = Some(name.into());
        g.bench_function(format!("shipped/{name}"), |b| {
            b.iter(|| {
                let mut s = CorpusSource::open(&dir, None).expect("opens");
                let o = txshadow_run::run(&mut s, &cfg, RunHooks::default()).expect("runs");
                assert_eq!(o.exit, 0);
            })
        });
    }
    g.finish();
}

fn block_replay(c: &mut Criterion) {
    let (l, idx) = pinned();
    let side = SideConfig::chain("baseline");
    let mut g = c.benchmark_group("block");
    g.sample_size(20);
    g.bench_function("harness/3-largest", |b| {
        b.iter(|| {
            for i in &idx {
                let o = run_block(
                    &l.blocks[*i],
                    &l.chain,
                    &l.codes,
                    &side,
                    &BlockRunOptions::default(),
                )
                .outcome;
                assert!(o.error.is_none());
            }
        })
    });
    let blocks: Vec<_> = idx.iter().map(|i| l.blocks[*i].clone()).collect();
    let prepared = raw::prepare(&blocks, &l.chain, &l.codes);
    g.bench_function("raw_revm/3-largest", |b| {
        b.iter_batched(
            || prepared.clone(),
            |p| raw::run(&p, 1, raw::RawMode::Block),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn tx_replay(c: &mut Criterion) {
    let (l, idx) = pinned();
    let side = SideConfig::chain("baseline");
    let b0 = &l.blocks[idx[0]];
    let mut g = c.benchmark_group("tx");
    g.sample_size(10);
    g.bench_function("tx_mode/largest", |b| {
        b.iter(|| run_block_tx_mode(b0, &l.chain, &l.codes, &side, None))
    });
    g.finish();
}

fn diff(c: &mut Criterion) {
    let (l, idx) = pinned();
    let b0 = &l.blocks[idx[0]];
    let a = run_block(
        b0,
        &l.chain,
        &l.codes,
        &SideConfig::chain("baseline"),
        &BlockRunOptions::default(),
    )
    .outcome;
    let k = run_block(
        b0,
        &l.chain,
        &l.codes,
        &SideConfig::chain("candidate"),
        &BlockRunOptions::default(),
    )
    .outcome;
    c.bench_function("diff/two_outcomes_largest", |b| {
        b.iter(|| diff_outcomes(b0, &a, &k, Mode::Block))
    });
}

fn report_writing(c: &mut Criterion) {
    let (l, idx) = pinned();
    let cfg = RunConfig::against_chain(Mode::Block, std::env::temp_dir());
    let results: Vec<_> = idx
        .iter()
        .map(|i| {
            let sb = SourceBlock::new(l.blocks[*i].clone(), &l.chain, l.codes.clone());
            txshadow_run::replay_block(&sb, &cfg).expect("no node side")
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    c.bench_function("report/write_3_blocks", |b| {
        b.iter_batched(
            || results.clone(),
            |rs| {
                let mut report = Report::default();
                let mut w =
                    ReportWriter::create(&dir.path().join("r"), &report, false).expect("creates");
                for r in rs {
                    report.add_block(&r);
                    w.block(&r, &report).expect("adds");
                }
                report.close(txshadow_report::RunVerdict::Pass, String::new());
                w.finish(&report).expect("finishes")
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(
    benches,
    corpus_load,
    block_replay,
    tx_replay,
    diff,
    report_writing,
    whole_run
);
criterion_main!(benches);
