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

pub mod raw;
pub mod revme;

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use eyre::{Result, WrapErr};
use serde::Serialize;
use txshadow_diff::Mode;
use txshadow_replay::SideConfig;

use crate::{CorpusSource, RunConfig, RunHooks, SideSpec};

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

/// Version of the bench JSON.
pub const BENCH_SCHEMA_VERSION: u32 = 1;

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

/// Best, worst and every value of one measured quantity (seconds).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Seconds {
    /// Best (smallest).
    pub best: f64,
    /// Worst (largest).
    pub worst: f64,
    /// Every repetition, in order.
    pub all: Vec<f64>,
}

impl Seconds {
    fn push(&mut self, s: f64) {
        if self.all.is_empty() {
            self.best = s;
            self.worst = s;
        }
        self.best = self.best.min(s);
        self.worst = self.worst.max(s);
        self.all.push(s);
    }
}

/// The harness against raw revm at one thread count.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AtJobs {
    /// Threads.
    pub jobs: usize,
    /// Harness time / raw time: the median of the repetitions' ratios.
    pub overhead_vs_raw: f64,
    /// Harness time / raw time, best / best.
    pub overhead_best_vs_best: f64,
    /// Lowest and highest of the per-repetition ratios.
    pub overhead_range: [f64; 2],
    /// Harness CPU seconds / raw CPU seconds (median of the repetitions), all threads: the work each does,
    /// the report writer's thread included even when it runs on an otherwise idle core.
    pub overhead_cpu_vs_raw: f64,
    /// Lowest and highest of the per-repetition CPU ratios.
    pub overhead_cpu_range: [f64; 2],
    /// Harness Mgas/s (gas of the txs, best run).
    pub harness_mgas_per_s: f64,
    /// Harness tx/s (best run).
    pub harness_tx_per_s: f64,
    /// Raw revm Mgas/s (best run).
    pub raw_mgas_per_s: f64,
    /// Raw revm tx/s (best run).
    pub raw_tx_per_s: f64,
    /// Harness seconds: the replay job without the corpus load (replay, diff, reports).
    pub harness_seconds: Seconds,
    /// Corpus load seconds of the same runs.
    pub load_seconds: Seconds,
    /// Raw loop seconds.
    pub raw_seconds: Seconds,
    /// Harness CPU seconds (all threads) of the replay job without the corpus load.
    pub harness_cpu_seconds: Seconds,
    /// Raw loop CPU seconds (all threads).
    pub raw_cpu_seconds: Seconds,
}

/// One mode's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModeFigures {
    /// Harness time at `-j 1` / at `-j N`: the median of the repetitions' ratios.
    pub scaling: f64,
    /// The same, best / best.
    pub scaling_best_vs_best: f64,
    /// The same for raw revm: what the hardware gives (median of the repetitions).
    pub raw_scaling: f64,
    /// Per thread count.
    pub by_jobs: Vec<AtJobs>,
    /// Gas of the txs (per side).
    pub gas: u64,
    /// Txs replayed.
    pub txs: usize,
    /// Gas the raw loop executed (must equal `gas`: the same work).
    pub raw_gas: u64,
    /// Txs revm rejected in the raw loop.
    pub raw_invalid: usize,
    /// Whether every harness run matched the chain (verdict `pass`).
    pub harness_pass: bool,
}

/// The summary a reader looks at first. Keep the order: see the module docs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Headline {
    /// Block mode at `-j N`: harness time / raw revm time, same txs, same threads.
    pub block_overhead_vs_raw_per_worker: f64,
    /// Block mode: harness time at `-j 1` / at `-j N`.
    pub block_scaling_j1_to_jn: f64,
    /// Block mode at `-j N`: Mgas/s of the whole replay job (load excluded).
    pub block_mgas_per_s: f64,
    /// Block mode at `-j N`: tx/s.
    pub block_tx_per_s: f64,
    /// Block mode at `-j 1`: harness time / raw revm time.
    pub block_overhead_vs_raw_j1: f64,
    /// Block mode at `-j N`: harness CPU time / raw revm CPU time (all threads: what the harness
    /// does per unit of revm work, the report writer's thread included).
    pub block_cpu_overhead_vs_raw: f64,
    /// Tx mode at `-j N`: harness time / raw revm time (fresh EVM per tx on its own pre-state).
    pub tx_overhead_vs_raw_per_worker: f64,
    /// Tx mode: harness time at `-j 1` / at `-j N`.
    pub tx_scaling_j1_to_jn: f64,
    /// Tx mode at `-j N`: Mgas/s.
    pub tx_mgas_per_s: f64,
    /// Tx mode at `-j N`: tx/s.
    pub tx_tx_per_s: f64,
    /// Corpus load / replay time (block mode, `-j N`).
    pub load_share_of_replay: f64,
    /// Corpus load / (load + replay): the share of the whole job.
    pub load_share_of_job: f64,
    /// Baseline + candidate block-mode run time / baseline-only run time (`-j N`).
    pub candidate_run_cost_x_baseline: f64,
    /// Threads of `-j N`.
    pub jobs: usize,
}

/// A target of the performance contract and whether this run meets it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What.
    pub name: String,
    /// Measured.
    pub value: f64,
    /// `<=` or `>=`.
    pub op: String,
    /// Limit.
    pub limit: f64,
    /// Met in this run.
    pub met: bool,
}

/// Baseline + candidate against baseline only.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CandidateFigures {
    /// Threads.
    pub jobs: usize,
    /// Baseline-only block-mode run seconds (same as the block mode figure at `-j N`).
    pub baseline_only_seconds: Seconds,
    /// Baseline + candidate seconds.
    pub with_candidate_seconds: Seconds,
    /// With candidate / baseline only: the median of the repetitions' ratios.
    pub cost_x_baseline: f64,
    /// The same, best / best.
    pub cost_best_vs_best: f64,
    /// Whether the candidate runs found no difference (they should not: same rules).
    pub pass: bool,
}

/// Corpus and machine.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchInfo {
    /// Run id.
    pub id: String,
    /// Corpus directory.
    pub corpus: String,
    /// Blocks.
    pub blocks: usize,
    /// Txs.
    pub txs: usize,
    /// Gas of the txs.
    pub gas: u64,
    /// Cores the machine reports.
    pub cores: usize,
    /// Thread counts measured.
    pub jobs: Vec<usize>,
    /// Repetitions.
    pub reps: usize,
    /// txshadow version.
    pub tool_version: String,
    /// Start, RFC 3339.
    pub started: String,
    /// End, RFC 3339.
    pub finished: String,
    /// The command that reproduces this run.
    pub command: String,
}

/// Everything `txshadow bench` measured (`bench.json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    /// [`BENCH_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The figures of the performance contract.
    pub headline: Headline,
    /// Targets and whether they are met.
    pub targets: Vec<Target>,
    /// Block mode.
    pub block_mode: ModeFigures,
    /// Tx mode.
    pub tx_mode: ModeFigures,
    /// Baseline + candidate.
    pub candidate: CandidateFigures,
    /// `revme statetest` on the same txs exported as fixtures, against tx mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revme: Option<revme::RevmeFigures>,
    /// Corpus, machine, command.
    pub info: BenchInfo,
}

/// The median (the mean of the middle two for an even count); 0 for none.
fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Repetition k of `a` over repetition k of `b`.
fn paired(a: &Seconds, b: &Seconds) -> Vec<f64> {
    a.all.iter().zip(&b.all).map(|(x, y)| x / y).collect()
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

/// One run of the real replay job, timed.
struct HarnessRun {
    /// Wall seconds without the load.
    seconds: f64,
    /// CPU seconds without the load.
    cpu_seconds: f64,
    /// Load seconds.
    load: f64,
    /// Whether it matched the chain.
    pass: bool,
    /// Gas of the txs.
    gas: u64,
    /// Txs.
    txs: usize,
}

fn harness_run(
    corpus: &Path,
    mode: Mode,
    jobs: usize,
    candidate: bool,
    out: &Path,
    id: &str,
) -> Result<HarnessRun> {
    let mut cfg = RunConfig::against_chain(mode, out);
    cfg.jobs = jobs;
    cfg.run_id = Some(id.to_string());
    cfg.candidate = candidate.then(|| SideSpec::revm(SideConfig::chain("candidate")));
    let t = Instant::now();
    let cpu = crate::process_cpu_seconds();
    let mut source = CorpusSource::open(corpus, None)?;
    let o = crate::run(&mut source, &cfg, RunHooks::default())
        .wrap_err_with(|| format!("bench run {id}"))?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = crate::process_cpu_seconds() - cpu;
    let tp = &o.report.throughput;
    // the load streams on its own thread beside the replay: the run's time is all of it, and
    // the load's own time is the share it takes
    Ok(HarnessRun {
        seconds: wall,
        cpu_seconds: cpu,
        load: tp.load_seconds,
        pass: o.exit == crate::EXIT_OK,
        gas: tp.gas,
        txs: o.report.counts.txs,
    })
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

    let modes = [
        (Mode::Block, raw::RawMode::Block),
        (Mode::Tx, raw::RawMode::Tx),
    ];
    let mut figs: Vec<ModeFigures> = vec![ModeFigures::default(), ModeFigures::default()];
    for f in &mut figs {
        f.harness_pass = true;
        f.by_jobs = levels
            .iter()
            .map(|j| AtJobs {
                jobs: *j,
                ..Default::default()
            })
            .collect();
    }
    let mut ratios: Vec<Vec<Vec<f64>>> = vec![vec![vec![]; levels.len()]; 2];
    let mut cpu_ratios: Vec<Vec<Vec<f64>>> = vec![vec![vec![]; levels.len()]; 2];
    let mut cand = CandidateFigures {
        jobs: n,
        pass: true,
        ..Default::default()
    };
    for rep in 0..reps {
        for (m, (mode, raw_mode)) in modes.iter().enumerate() {
            let name = if *mode == Mode::Block { "block" } else { "tx" };
            for (k, j) in levels.iter().enumerate() {
                let hr = harness_run(
                    &cfg.corpus,
                    *mode,
                    *j,
                    false,
                    &runs,
                    &format!("{name}-j{j}"),
                )?;
                let (h, load, gas) = (hr.seconds, hr.load, hr.gas);
                let r = raw::run(&prepared, *j, *raw_mode);
                if r.gas != gas {
                    eyre::bail!(
                        "{name} mode -j {j}: the raw revm loop executed {} gas ({} txs rejected), \
                         the harness {gas}: not the same work, so no ratio is given; replay the \
                         corpus (`txshadow replay`) to see which txs fail",
                        r.gas,
                        r.invalid
                    );
                }
                progress(&format!(
                    "rep {}/{reps} {name} -j {j}: harness {h:.3} s (load {load:.3} s), raw revm {:.3} s, ratio {:.3} (CPU {:.3})",
                    rep + 1,
                    r.seconds,
                    h / r.seconds,
                    hr.cpu_seconds / r.cpu_seconds
                ));
                let f = &mut figs[m];
                f.gas = gas;
                f.txs = hr.txs;
                f.raw_gas = r.gas;
                f.raw_invalid = r.invalid;
                f.harness_pass &= hr.pass;
                let a = &mut f.by_jobs[k];
                a.harness_seconds.push(h);
                a.load_seconds.push(load);
                a.raw_seconds.push(r.seconds);
                a.harness_cpu_seconds.push(hr.cpu_seconds);
                a.raw_cpu_seconds.push(r.cpu_seconds);
                ratios[m][k].push(h / r.seconds);
                cpu_ratios[m][k].push(hr.cpu_seconds / r.cpu_seconds);
            }
        }
        let hr = harness_run(&cfg.corpus, Mode::Block, n, true, &runs, "block-candidate")?;
        let (c, pass) = (hr.seconds, hr.pass);
        progress(&format!(
            "rep {}/{reps} block -j {n} baseline + candidate: {c:.3} s",
            rep + 1
        ));
        cand.with_candidate_seconds.push(c);
        cand.pass &= pass;
    }
    for (m, f) in figs.iter_mut().enumerate() {
        for (k, a) in f.by_jobs.iter_mut().enumerate() {
            let (h, r) = (a.harness_seconds.best, a.raw_seconds.best);
            a.overhead_best_vs_best = h / r;
            a.overhead_vs_raw = median(&ratios[m][k]);
            let range = |rs: &[f64]| {
                [
                    rs.iter().copied().fold(f64::INFINITY, f64::min),
                    rs.iter().copied().fold(0.0, f64::max),
                ]
            };
            a.overhead_range = range(&ratios[m][k]);
            a.overhead_cpu_vs_raw = median(&cpu_ratios[m][k]);
            a.overhead_cpu_range = range(&cpu_ratios[m][k]);
            a.harness_mgas_per_s = f.gas as f64 / 1e6 / h;
            a.harness_tx_per_s = f.txs as f64 / h;
            a.raw_mgas_per_s = f.raw_gas as f64 / 1e6 / r;
            a.raw_tx_per_s = f.txs as f64 / r;
        }
        let first = &f.by_jobs[0];
        let last = f.by_jobs.last().expect("one level at least");
        f.scaling_best_vs_best = first.harness_seconds.best / last.harness_seconds.best;
        f.scaling = median(&paired(&first.harness_seconds, &last.harness_seconds));
        f.raw_scaling = median(&paired(&first.raw_seconds, &last.raw_seconds));
    }
    let [block, tx]: [ModeFigures; 2] = figs.try_into().expect("two modes");
    let bn = block.by_jobs.last().expect("levels").clone();
    let tn = tx.by_jobs.last().expect("levels").clone();
    cand.baseline_only_seconds = bn.harness_seconds.clone();
    cand.cost_best_vs_best = cand.with_candidate_seconds.best / bn.harness_seconds.best;
    cand.cost_x_baseline = median(&paired(&cand.with_candidate_seconds, &bn.harness_seconds));
    let load_share = median(&paired(&bn.load_seconds, &bn.harness_seconds));
    let headline = Headline {
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
        load_share_of_replay: load_share,
        load_share_of_job: load_share / (1.0 + load_share),
        candidate_run_cost_x_baseline: cand.cost_x_baseline,
        jobs: n,
    };
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
    let targets = vec![
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
            "block mode scaling -j 1 -> -j N",
            headline.block_scaling_j1_to_jn,
            ">=",
            1.8,
        ),
        target(
            "corpus load / replay time",
            headline.load_share_of_replay,
            "<=",
            0.10,
        ),
        target(
            "baseline + candidate run / baseline-only run",
            headline.candidate_run_cost_x_baseline,
            "<=",
            2.1,
        ),
    ];
    let revme = match &cfg.revme {
        Some(bin) => {
            progress(&format!(
                "exporting {} txs as state-test fixtures for {}",
                cfg.fixtures,
                bin.display()
            ));
            // the peer comparison is an extra: its failure is reported, not fatal
            match revme::compare(&loaded, bin, cfg.fixtures, &dir) {
                Ok(f) => Some(f),
                Err(e) => {
                    progress(&format!("revme comparison skipped: {e:#}"));
                    None
                }
            }
        }
        None => None,
    };
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
        candidate: cand,
    };
    let json = serde_json::to_string_pretty(&report).expect("bench report serialises");
    txshadow_corpus::write_atomic(&dir.join("bench.json"), json.as_bytes())?;
    txshadow_corpus::write_atomic(&dir.join("bench.md"), render_markdown(&report).as_bytes())?;
    Ok((report, dir))
}

fn f2(x: f64) -> String {
    format!("{x:.2}")
}

/// The bench as Markdown (`bench.md`, and what `txshadow bench` prints).
pub fn render_markdown(r: &BenchReport) -> String {
    use std::fmt::Write;
    let h = &r.headline;
    let mut s = String::new();
    let _ = writeln!(s, "# txshadow bench\n");
    let _ = writeln!(
        s,
        "{} blocks, {} txs, {:.1} Mgas per side; {} cores; {} repetitions: times are the best (range in brackets), ratios the median of each repetition's ratio (best/best and range beside).\n",
        r.info.blocks,
        r.info.txs,
        r.info.gas as f64 / 1e6,
        r.info.cores,
        r.info.reps
    );
    let _ = writeln!(
        s,
        "| target | measured | limit | met |\n| --- | --- | --- | --- |"
    );
    for t in &r.targets {
        let _ = writeln!(
            s,
            "| {} | {:.3} | {} {} | {} |",
            t.name,
            t.value,
            t.op,
            t.limit,
            if t.met { "yes" } else { "NO" }
        );
    }
    for (name, m) in [("block", &r.block_mode), ("tx", &r.tx_mode)] {
        let _ = writeln!(
            s,
            "\n## {name} mode\n\nscaling -j 1 -> -j {}: harness {:.2}x (best/best {:.2}x), raw revm {:.2}x; harness {}\n",
            m.by_jobs.last().map_or(1, |a| a.jobs),
            m.scaling,
            m.scaling_best_vs_best,
            m.raw_scaling,
            if m.harness_pass {
                "matched the chain on every run"
            } else {
                "FOUND DIFFERENCES"
            }
        );
        let _ = writeln!(
            s,
            "| -j | harness Mgas/s | harness tx/s | raw Mgas/s | raw tx/s | harness/raw (best/best) | harness/raw CPU | harness s | raw s | load s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for a in &m.by_jobs {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.3} ({:.3}) [{:.3}-{:.3}] | {:.3} [{:.3}-{:.3}] | {:.3} [{:.3}] | {:.3} [{:.3}] | {:.3} |",
                a.jobs,
                a.harness_mgas_per_s,
                a.harness_tx_per_s,
                a.raw_mgas_per_s,
                a.raw_tx_per_s,
                a.overhead_vs_raw,
                a.overhead_best_vs_best,
                a.overhead_range[0],
                a.overhead_range[1],
                a.overhead_cpu_vs_raw,
                a.overhead_cpu_range[0],
                a.overhead_cpu_range[1],
                a.harness_seconds.best,
                a.harness_seconds.worst,
                a.raw_seconds.best,
                a.raw_seconds.worst,
                a.load_seconds.best
            );
        }
    }
    let _ = writeln!(
        s,
        "\nload: {}% of replay time, {}% of the whole job\n\nbaseline + candidate (block, -j {}): {:.3} s vs {:.3} s baseline only (best of each) = {}x (best/best {}x)\n\ncommand: `{}`",
        f2(h.load_share_of_replay * 100.0),
        f2(h.load_share_of_job * 100.0),
        r.candidate.jobs,
        r.candidate.with_candidate_seconds.best,
        r.candidate.baseline_only_seconds.best,
        f2(r.candidate.cost_x_baseline),
        f2(r.candidate.cost_best_vs_best),
        r.info.command
    );
    if let Some(v) = &r.revme {
        let _ = writeln!(
            s,
            "\n## revme statetest, same txs\n\n{} fixtures: revme {:.0} tx/s ({:.3} s, {}), txshadow tx mode {:.0} tx/s ({:.3} s with the reference block runs), {:.0} tx/s per-tx runs alone; revme / txshadow = {:.2}x ({:.2}x against the per-tx runs alone)\n\n`{}`",
            v.fixtures,
            v.revme_tx_per_s,
            v.revme_seconds,
            if v.revme_pass {
                "all pass"
            } else {
                "SOME FAIL"
            },
            v.txshadow_tx_per_s,
            v.txshadow_seconds,
            v.txshadow_tx_only_tx_per_s,
            v.revme_vs_txshadow,
            v.revme_vs_txshadow_tx_only,
            v.command
        );
    }
    s
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
