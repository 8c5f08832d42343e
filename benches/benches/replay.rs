//! Library functions over pinned inputs from the shipped corpus. See the crate docs.

#![allow(missing_docs)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use txshadow_benches::{compressed_codes_copy, sealed_binary_copy, shipped_corpus};
use txshadow_diff::{Mode, diff_outcomes};
use txshadow_replay::{BlockRunOptions, SideConfig, run_block, run_block_tx_mode};
use txshadow_report::{Report, ReportWriter, Sink};
use txshadow_run::{
    BlockSource, CorpusSource, RunConfig, RunHooks, SourceBlock,
    bench::{Loaded, raw},
};

/// The three largest blocks of the shipped corpus (by gas), the same every run, as
/// `sealed_binary_copy` has them (receipts sealed).
fn pinned() -> (Loaded, Vec<usize>) {
    let copy = sealed_binary_copy();
    let loaded = Loaded::load(copy.path()).expect("shipped corpus loads");
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
    // the same blocks in the binary encoding (with sealed receipts, as import writes them)
    let copy = sealed_binary_copy();
    c.bench_function("corpus_load/binary_sealed", |b| {
        b.iter(|| Loaded::load(copy.path()).expect("loads"))
    });
    // one block file parsed: JSON against binary
    let (l, idx) = pinned();
    let block = &l.blocks[idx[0]];
    let json = serde_json::to_vec(block).expect("serialises");
    let bin = txshadow_corpus::binary::encode_block(block);
    let p = std::path::Path::new("block");
    c.bench_function("block_file/parse_json_largest", |b| {
        b.iter(|| txshadow_corpus::parse_block(&json, p).expect("parses"))
    });
    c.bench_function("block_file/decode_binary_largest", |b| {
        b.iter(|| txshadow_corpus::parse_block(&bin, p).expect("decodes"))
    });
    c.bench_function("block_file/encode_binary_largest", |b| {
        b.iter(|| txshadow_corpus::binary::encode_block(block))
    });
    // what a run does: one block and its codes at a time, on the reader's thread
    let stream = |dir: &std::path::Path| {
        let mut s = CorpusSource::open(dir, None).expect("opens");
        let mut n = 0;
        while let Some(block) = s.next_block() {
            n += block.expect("loads").block.transactions.len();
        }
        n
    };
    c.bench_function("corpus_stream/shipped", |b| b.iter(|| stream(&dir)));
    // the same, binary blocks (LZ4, byte strings sliced from the buffer) and packed codes
    c.bench_function("corpus_stream/binary_sealed", |b| {
        b.iter(|| stream(copy.path()))
    });
    // the same with the codes LZ4-compressed in their pack: each decompressed once per run
    let compressed = compressed_codes_copy();
    c.bench_function("corpus_stream/binary_sealed_codes_compressed", |b| {
        b.iter(|| stream(compressed.path()))
    });
}

fn whole_run(c: &mut Criterion) {
    let copy = sealed_binary_copy();
    let out = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("run");
    g.sample_size(10);
    let runs = [
        ("shipped", shipped_corpus(), Mode::Block),
        ("shipped", shipped_corpus(), Mode::Tx),
        ("sealed_binary", copy.path().to_path_buf(), Mode::Block),
        ("sealed_binary", copy.path().to_path_buf(), Mode::Tx),
    ];
    for (corpus, dir, mode) in runs {
        let name = if mode == Mode::Block {
            "block_mode"
        } else {
            "tx_mode"
        };
        let mut cfg = RunConfig::against_chain(mode, out.path());
        cfg.run_id = Some(name.into());
        g.bench_function(format!("{corpus}/{name}"), |b| {
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
    // what a run against the chain does: receipts only, checked against the sealed ones; and
    // the same with the receipts trie and blooms computed
    for (name, trie) in [("harness_sealed", false), ("harness_trie", true)] {
        let opts = BlockRunOptions {
            receipts_trie: trie,
            ..BlockRunOptions::receipts_only()
        };
        g.bench_function(format!("{name}/3-largest"), |b| {
            b.iter(|| {
                for i in &idx {
                    let o = run_block(&l.blocks[*i], &l.chain, &l.codes, &side, &opts).outcome;
                    assert!(o.error.is_none());
                }
            })
        });
    }
    g.bench_function("harness_tx_state/3-largest", |b| {
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
    let cand = SideConfig::chain("candidate");
    g.bench_function("tx_mode_candidate/largest", |b| {
        b.iter(|| run_block_tx_mode(b0, &l.chain, &l.codes, &side, Some(&cand)))
    });
    g.finish();
}

fn sealing(c: &mut Criterion) {
    let copy = sealed_binary_copy();
    let mut g = c.benchmark_group("seal");
    g.sample_size(10);
    // every block replayed with its receipts trie and checked against the chain, no writes
    let opts = txshadow_run::SealOptions {
        write: false,
        replay_all: true,
    };
    g.bench_function("dry_run/shipped", |b| {
        b.iter(|| txshadow_run::seal_corpus(copy.path(), opts).expect("seals"))
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
    // tx mode: every tx's state changes on both sides, compared account by account
    let o = run_block_tx_mode(
        b0,
        &l.chain,
        &l.codes,
        &SideConfig::chain("baseline"),
        Some(&SideConfig::chain("candidate")),
    );
    let k = o.candidate.expect("candidate requested");
    c.bench_function("diff/two_tx_mode_outcomes_largest", |b| {
        b.iter(|| diff_outcomes(b0, &o.baseline, &k, Mode::Tx))
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
    // a test case per block (block mode) and per tx (tx mode: the JUnit file lists every tx)
    for (name, per_tx) in [("write_3_blocks", false), ("write_3_blocks_tx_cases", true)] {
        c.bench_function(&format!("report/{name}"), |b| {
            let run = dir.path().join(name);
            b.iter_batched(
                || {
                    // a new run directory each time, as a run writes one
                    let _ = std::fs::remove_dir_all(&run);
                    results.clone()
                },
                |rs| {
                    let mut report = Report::default();
                    let mut w = ReportWriter::create(&run, &report, per_tx).expect("creates");
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
}

criterion_group!(
    benches,
    corpus_load,
    block_replay,
    tx_replay,
    sealing,
    diff,
    report_writing,
    whole_run
);
criterion_main!(benches);
