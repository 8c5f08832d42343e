//! Library functions over pinned inputs from the shipped corpus. See the crate docs.

#![allow(missing_docs)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use txshadow::{bench::raw, runner};
use txshadow_benches::shipped_corpus;
use txshadow_diff::{Mode, diff_outcomes};
use txshadow_replay::{BlockRunOptions, SideConfig, run_block, run_block_tx_mode};
use txshadow_report::{Report, ReportWriter};

/// The three largest blocks of the shipped corpus (by gas), the same every run.
fn pinned() -> (runner::Loaded, Vec<usize>) {
    let loaded = runner::load(&shipped_corpus(), None).expect("shipped corpus loads");
    let mut idx: Vec<usize> = (0..loaded.blocks.len()).collect();
    idx.sort_by_key(|i| std::cmp::Reverse(loaded.blocks[*i].gas_used()));
    idx.truncate(3);
    (loaded, idx)
}

fn corpus_load(c: &mut Criterion) {
    let dir = shipped_corpus();
    c.bench_function("corpus_load/shipped", |b| {
        b.iter(|| runner::load(&dir, None).expect("loads"))
    });
}

fn block_replay(c: &mut Criterion) {
    let (l, idx) = pinned();
    let side = SideConfig::chain("baseline");
    let opts = BlockRunOptions::default();
    let mut g = c.benchmark_group("block");
    g.sample_size(20);
    g.bench_function("harness/3-largest", |b| {
        b.iter(|| {
            for i in &idx {
                let o = run_block(&l.blocks[*i], &l.chain, &l.codes, &side, &opts).outcome;
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
    let opts = BlockRunOptions::default();
    let a = run_block(
        b0,
        &l.chain,
        &l.codes,
        &SideConfig::chain("baseline"),
        &opts,
    )
    .outcome;
    let k = run_block(
        b0,
        &l.chain,
        &l.codes,
        &SideConfig::chain("candidate"),
        &opts,
    )
    .outcome;
    c.bench_function("diff/two_outcomes_largest", |b| {
        b.iter(|| diff_outcomes(b0, &a, &k, Mode::Block))
    });
}

fn report_writing(c: &mut Criterion) {
    let (l, idx) = pinned();
    let cfg = runner::RunConfig {
        corpus: shipped_corpus(),
        mode: Mode::Block,
        jobs: 1,
        baseline: SideConfig::chain("baseline"),
        candidate: None,
        baseline_node: None,
        candidate_node: None,
        out_dir: std::env::temp_dir(),
        run_id: None,
        accepted: None,
        fail_on: vec![],
        shard: None,
    };
    let results: Vec<_> = idx
        .iter()
        .map(|i| {
            runner::process_block(&l.blocks[*i], &l.chain, &l.codes, &cfg, Default::default())
                .expect("no node side")
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    c.bench_function("report/write_3_blocks", |b| {
        b.iter_batched(
            || results.clone(),
            |rs| {
                let mut w = ReportWriter::create(&dir.path().join("r"), Report::default(), false)
                    .expect("creates");
                for r in rs {
                    w.add(r).expect("adds");
                }
                w.finish("pass", String::new()).expect("finishes")
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
    report_writing
);
criterion_main!(benches);
