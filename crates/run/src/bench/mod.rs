//! Measured speed: the harness against the physical limit, in one run.
//!
//! [`run`] is what `txshadow bench <corpus>` does. Each repetition runs, interleaved so that the
//! machine's background load hits every figure alike:
//!
//! - the real replay job ([`crate::run`]: streamed load, replay, diff, streamed reports) in block
//!   mode and in tx mode, at `-j 1` and `-j N`;
//! - the raw revm loop of [`raw`] on the same blocks and txs, at the same thread counts;
//! - a baseline + candidate block-mode run (the candidate is the chain's own rules, so the two
//!   sides do the same work and nothing differs).
//!
//! Every time is the best of the repetitions (the run least disturbed by other processes), with
//! the range over repetitions beside it. Every ratio (harness/raw, scaling, candidate cost, load
//! share) is the median of the ratios of each repetition, whose two figures were measured back to
//! back: on a shared machine whose speed moves between seconds, a pair measured together is
//! disturbed alike, while the best of one figure and the best of another may come from different
//! moments. The best/best ratio is kept beside each. The criterion benches in `benches/` call the
//! same library functions on pinned inputs.
//!
//! The JSON ([`BenchReport`]) starts with [`Headline`]: block-mode overhead against raw revm,
//! then block-mode scaling, then block-mode Mgas/s, so that a reader (or a script) looking for
//! the first "overhead", "scaling" or "mgas" key finds the block-mode figure.
//!
//! The report types are in `report`, the measurement loop in `measure`, the Markdown rendering
//! in `render`; [`run`] puts them together.

mod measure;
pub mod raw;
mod render;
mod report;
pub mod revme;

use std::path::{Path, PathBuf};

use eyre::{Result, WrapErr};

use self::{
    measure::{Measured, Plan},
    report::{median, paired},
};
pub use self::{
    render::render_markdown,
    report::{
        AtJobs, BENCH_SCHEMA_VERSION, BenchInfo, BenchReport, CandidateFigures, DiskFigures,
        Headline, ModeFigures, SealFigures, Seconds, Target,
    },
};
use crate::CorpusSource;

/// A whole corpus in memory, for the raw loop and the revme comparison (a run streams
/// instead). Loaded with the corpus's own checks.
#[derive(Debug)]
pub struct Loaded {
    /// Blocks, in corpus order.
    pub blocks: Vec<txshadow_corpus::BlockRecord>,
    /// Their codes.
    pub codes: txshadow_replay::Codes,
    /// The corpus's chain.
    pub chain: txshadow_corpus::ChainConfig,
}

impl Loaded {
    /// Loads every block of the corpus at `dir` and the codes they refer to.
    pub fn load(dir: &Path) -> Result<Self> {
        use rayon::prelude::*;
        let src = CorpusSource::open(dir, None)?;
        let c = src.corpus();
        let blocks = src
            .entries()
            .par_iter()
            .map(|e| c.load_block(e))
            .collect::<Result<Vec<_>, _>>()?;
        let store = c.load_codes(&blocks)?;
        Ok(Self {
            codes: txshadow_replay::Codes::from_store(&store, store.hashes()),
            chain: c.manifest().chain.clone(),
            blocks,
        })
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Corpus directory.
    pub corpus: PathBuf,
    /// The largest thread count (0 = all cores); scaling is measured from 1 up to it.
    pub jobs: usize,
    /// Repetitions of every measurement (the best counts, the range is reported).
    pub reps: usize,
    /// Where the bench's run directory goes.
    pub out_dir: PathBuf,
    /// Run id (default: time-based).
    pub run_id: Option<String>,
    /// The `revme` binary to compare with (`None`: skip the comparison).
    pub revme: Option<PathBuf>,
    /// How many txs to export as fixtures for the revme comparison.
    pub fixtures: usize,
}

/// Thread counts from 1 to `n`: 1, 2, 4, ... and `n`.
pub fn job_levels(n: usize) -> Vec<usize> {
    let mut v = vec![1];
    let mut j = 2;
    while j < n {
        v.push(j);
        j *= 2;
    }
    if n > 1 {
        v.push(n);
    }
    v
}

/// Runs the whole bench. `progress` gets one line per measurement.
pub fn run(cfg: &BenchConfig, progress: &(dyn Fn(&str) + Sync)) -> Result<(BenchReport, PathBuf)> {
    let started = crate::now_rfc3339();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = if cfg.jobs == 0 { cores } else { cfg.jobs };
    let levels = job_levels(n);
    let reps = cfg.reps.max(1);
    let id = cfg
        .run_id
        .clone()
        .unwrap_or_else(|| crate::default_run_id("bench"));
    let dir = cfg.out_dir.join(&id);
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs)
        .wrap_err_with(|| format!("create the bench directory {}", dir.display()))?;

    // the raw loop's inputs, prepared once, outside every clock
    progress("preparing the raw revm loop's in-memory state");
    let loaded = Loaded::load(&cfg.corpus)?;
    let prepared = raw::prepare(&loaded.blocks, &loaded.chain, &loaded.codes);

    let plan = Plan {
        corpus: &cfg.corpus,
        prepared: &prepared,
        levels: &levels,
        n,
        reps,
        runs: &runs,
    };
    let seal = time_sealing(&cfg.corpus, reps, progress)?;
    let measured = measure::measure(&plan, progress)?;
    let headline = headline(&measured, n);
    let targets = targets(&headline);
    let revme = compare_with_revme(cfg, &loaded, &dir, progress);
    let Measured {
        block,
        tx,
        candidate,
    } = measured;
    let txs = block.txs;
    let report = BenchReport {
        schema_version: BENCH_SCHEMA_VERSION,
        revme,
        headline,
        targets,
        info: BenchInfo {
            id,
            corpus: cfg.corpus.display().to_string(),
            blocks: loaded.blocks.len(),
            txs: block.txs,
            gas: block.gas,
            cores,
            jobs: levels,
            reps,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            started,
            finished: crate::now_rfc3339(),
            command: format!(
                "txshadow bench {} -j {n} --reps {reps}",
                cfg.corpus.display()
            ),
        },
        block_mode: block,
        tx_mode: tx,
        candidate,
        seal,
        disk: disk_figures(&cfg.corpus, txs)?,
    };
    write_report(&dir, &report)?;
    Ok((report, dir))
}

/// The summary of the measured figures at `-j n`.
fn headline(m: &Measured, n: usize) -> Headline {
    let (block, tx) = (&m.block, &m.tx);
    let bn = block.by_jobs.last().expect("levels");
    let tn = tx.by_jobs.last().expect("levels");
    // the load's share of the work: the reader thread's CPU time against the run's (all
    // threads); its wall time counts the time it waits for a core the workers hold
    let load_of_run = median(&paired(&bn.load_cpu_seconds, &bn.harness_cpu_seconds));
    let load_wall = median(&paired(&bn.load_seconds, &bn.harness_seconds));
    let main_of_run = median(&paired(&bn.main_cpu_seconds, &bn.harness_cpu_seconds));
    Headline {
        block_overhead_vs_raw_per_worker: bn.overhead_vs_raw,
        block_scaling_j1_to_jn: block.scaling,
        block_mgas_per_s: bn.harness_mgas_per_s,
        block_tx_per_s: bn.harness_tx_per_s,
        block_overhead_vs_raw_j1: block.by_jobs[0].overhead_vs_raw,
        block_cpu_overhead_vs_raw: bn.overhead_cpu_vs_raw,
        tx_overhead_vs_raw_per_worker: tn.overhead_vs_raw,
        tx_scaling_j1_to_jn: tx.scaling,
        tx_mgas_per_s: tn.harness_mgas_per_s,
        tx_tx_per_s: tn.harness_tx_per_s,
        load_share_of_replay: load_of_run / (1.0 - load_of_run).max(f64::EPSILON),
        load_share_of_job: load_of_run,
        load_wall_share_of_replay: load_wall,
        main_share_of_job: main_of_run,
        block_workers_cpu_vs_raw: bn.workers_cpu_vs_raw,
        block_floor_cpu_vs_raw: bn.floor_cpu_vs_raw,
        block_workers_per_reader: (1.0 - load_of_run - main_of_run) / load_of_run.max(f64::EPSILON),
        candidate_run_cost_x_baseline: m.candidate.cost_x_baseline,
        tx_candidate_overhead_vs_raw: m.candidate.tx_overhead_vs_raw,
        jobs: n,
    }
}

/// The targets of the performance contract, each against its headline figure.
fn targets(headline: &Headline) -> Vec<Target> {
    let target = |name: &str, value: f64, op: &str, limit: f64| Target {
        name: name.into(),
        value,
        op: op.into(),
        limit,
        met: if op == "<=" {
            value <= limit
        } else {
            value >= limit
        },
    };
    vec![
        target(
            "block mode overhead vs raw revm (per worker, -j N)",
            headline.block_overhead_vs_raw_per_worker,
            "<=",
            1.05,
        ),
        target(
            "block mode overhead vs raw revm, CPU time (-j N)",
            headline.block_cpu_overhead_vs_raw,
            "<=",
            1.05,
        ),
        target(
            "block mode overhead vs raw revm (-j 1)",
            headline.block_overhead_vs_raw_j1,
            "<=",
            1.05,
        ),
        target(
            "tx mode overhead vs raw revm (per worker, -j N)",
            headline.tx_overhead_vs_raw_per_worker,
            "<=",
            1.3,
        ),
        target(
            "tx mode baseline + candidate vs raw revm (-j N)",
            headline.tx_candidate_overhead_vs_raw,
            "<=",
            2.2,
        ),
        target(
            "block mode scaling -j 1 -> -j N",
            headline.block_scaling_j1_to_jn,
            ">=",
            1.8,
        ),
        target(
            "corpus load / replay, CPU time",
            headline.load_share_of_replay,
            "<=",
            0.05,
        ),
        target(
            "baseline + candidate run / baseline-only run",
            headline.candidate_run_cost_x_baseline,
            "<=",
            2.1,
        ),
    ]
}

/// Times sealing the corpus's receipts on its own, `reps` times: a dry run that replays every
/// block with its receipts trie and checks it against the chain, as sealing a corpus without
/// recorded receipts does (nothing is written; no timed run includes it).
fn time_sealing(
    corpus: &Path,
    reps: usize,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SealFigures> {
    let mut f = SealFigures::default();
    // what the timed runs will find: blocks sealed now
    let now = crate::seal_corpus(corpus, crate::SealOptions::default())?;
    f.sealed_blocks = now.already;
    for rep in 0..reps {
        let t = std::time::Instant::now();
        let opts = crate::SealOptions {
            write: false,
            replay_all: true,
        };
        let s = crate::seal_corpus(corpus, opts)?;
        let secs = t.elapsed().as_secs_f64();
        progress(&format!(
            "rep {}/{reps} sealing (dry run, every block replayed with its receipts trie): {secs:.3} s",
            rep + 1
        ));
        f.seconds.push(secs);
        f.sealable_blocks = s.replayed + s.recorded;
        f.unsealed_blocks = s.unsealed.len();
        f.unsealed_reason = s
            .unsealed
            .first()
            .map(|(n, why)| format!("block {n}: {why}"));
    }
    if f.sealed_blocks < f.sealable_blocks {
        progress(&format!(
            "{} of {} sealable blocks are sealed: the others compute their receipts trie in the \
             timed runs; `txshadow corpus seal {}` seals them",
            f.sealed_blocks,
            f.sealable_blocks,
            corpus.display()
        ));
    }
    Ok(f)
}

/// The corpus's bytes on disk: block files, code files, per tx.
fn disk_figures(corpus: &Path, txs: usize) -> Result<DiskFigures> {
    let mut f = DiskFigures::default();
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    for e in std::fs::read_dir(corpus.join("blocks")).wrap_err("read the corpus's blocks")? {
        let p = e?.path();
        f.block_bytes += size(&p);
        match p.extension().and_then(|x| x.to_str()) {
            Some("bin") => f.binary_block_files += 1,
            Some("json") => f.json_block_files += 1,
            _ => {}
        }
    }
    if let Ok(rd) = std::fs::read_dir(corpus.join("codes")) {
        for e in rd {
            f.code_bytes += size(&e?.path());
        }
    }
    let total = f.block_bytes + f.code_bytes + size(&corpus.join("manifest.json"));
    let per = |b: u64| b as f64 / txs.max(1) as f64;
    f.block_bytes_per_tx = per(f.block_bytes);
    f.total_bytes_per_tx = per(total);
    f.packs = txshadow_corpus::pack_sizes(corpus)?;
    Ok(f)
}

/// The `revme statetest` comparison when a binary is given; its failure is reported through
/// `progress`, not returned.
fn compare_with_revme(
    cfg: &BenchConfig,
    loaded: &Loaded,
    dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Option<revme::RevmeFigures> {
    let bin = cfg.revme.as_ref()?;
    progress(&format!(
        "exporting {} txs as state-test fixtures for {}",
        cfg.fixtures,
        bin.display()
    ));
    // the peer comparison is an extra: its failure is reported, not fatal
    match revme::compare(loaded, bin, cfg.fixtures, dir) {
        Ok(f) => Some(f),
        Err(e) => {
            progress(&format!("revme comparison skipped: {e:#}"));
            None
        }
    }
}

/// Writes `bench.json` and `bench.md` into the bench's directory.
fn write_report(dir: &Path, report: &BenchReport) -> Result<()> {
    let json = serde_json::to_string_pretty(report).expect("bench report serialises");
    txshadow_corpus::write_atomic(&dir.join("bench.json"), json.as_bytes())?;
    txshadow_corpus::write_atomic(&dir.join("bench.md"), render_markdown(report).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_medians_of_pairs_measured_together() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[f64::NAN, 1.0]), 1.0);
        let mut a = Seconds::default();
        let mut b = Seconds::default();
        // a slow moment hits both figures of repetition 2 alike
        for (x, y) in [(1.2, 1.0), (2.4, 2.0), (1.3, 1.0)] {
            a.push(x);
            b.push(y);
        }
        let p = paired(&a, &b);
        assert!((median(&p) - 1.2).abs() < 1e-12, "{p:?}");
        assert!((a.best / b.best - 1.2).abs() < 1e-12);
        assert_eq!((a.best, a.worst, b.worst), (1.2, 2.4, 2.0));
        assert_eq!(job_levels(1), [1]);
        assert_eq!(job_levels(2), [1, 2]);
        assert_eq!(job_levels(6), [1, 2, 4, 6]);
    }
}
