//! The measurement loop: every repetition times the real replay job and the raw revm loop at
//! every thread count in both modes, then a baseline + candidate run; the times are then turned
//! into per-level figures and ratios.

use std::{path::Path, time::Instant};

use eyre::{Result, WrapErr};
use txshadow_diff::Mode;
use txshadow_replay::SideConfig;

use super::{
    AtJobs, CandidateFigures, ModeFigures, raw,
    report::{median, paired},
};
use crate::{CorpusSource, RunConfig, RunHooks, SideSpec};

/// One run of the real replay job, timed.
struct HarnessRun {
    /// Wall seconds without the load.
    seconds: f64,
    /// CPU seconds without the load.
    cpu_seconds: f64,
    /// Load seconds.
    load: f64,
    /// Load CPU seconds.
    load_cpu: f64,
    /// CPU seconds of the thread that ran the job: opening the corpus, the tally and the
    /// report files.
    main_cpu: f64,
    /// Whether it matched the chain.
    pass: bool,
    /// Gas of the txs.
    gas: u64,
    /// Txs.
    txs: usize,
    /// How its block runs checked their receipts.
    receipts_checks: txshadow_report::ReceiptsChecks,
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
    // each timed run writes a new run directory, as a run does: the last repetition's files
    // go before the clock starts (replacing them would time the file system freeing them)
    let dir = out.join(id);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).wrap_err_with(|| format!("remove {}", dir.display()))?;
    }
    let t = Instant::now();
    let cpu = crate::process_cpu_seconds();
    let main_cpu = crate::cpu::thread_cpu_seconds();
    let mut source = CorpusSource::open(corpus, None)?;
    let o = crate::run(&mut source, &cfg, RunHooks::default())
        .wrap_err_with(|| format!("bench run {id}"))?;
    let wall = t.elapsed().as_secs_f64();
    let main_cpu = crate::cpu::thread_cpu_seconds() - main_cpu;
    let cpu = crate::process_cpu_seconds() - cpu;
    let tp = &o.report.throughput;
    // the load streams on its own thread beside the replay: the run's time is all of it, and
    // the load's own time is the share it takes
    Ok(HarnessRun {
        seconds: wall,
        cpu_seconds: cpu,
        load: tp.load_seconds,
        load_cpu: tp.load_cpu_seconds,
        main_cpu,
        pass: o.exit == crate::EXIT_OK,
        gas: tp.gas,
        txs: o.report.counts.txs,
        receipts_checks: tp.receipts_checks,
    })
}

/// What to measure, fixed for the whole loop.
pub(crate) struct Plan<'a> {
    /// Corpus directory.
    pub(crate) corpus: &'a Path,
    /// The raw loop's inputs, prepared once.
    pub(crate) prepared: &'a [raw::RawBlock],
    /// Thread counts, from 1 to `n`.
    pub(crate) levels: &'a [usize],
    /// The largest thread count.
    pub(crate) n: usize,
    /// Repetitions.
    pub(crate) reps: usize,
    /// Where the runs' directories go.
    pub(crate) runs: &'a Path,
}

/// The figures of both modes and of the candidate run, ratios computed.
pub(crate) struct Measured {
    /// Block mode.
    pub(crate) block: ModeFigures,
    /// Tx mode.
    pub(crate) tx: ModeFigures,
    /// Baseline + candidate against the block mode at `-j N`.
    pub(crate) candidate: CandidateFigures,
}

const MODES: [(Mode, raw::RawMode); 2] = [
    (Mode::Block, raw::RawMode::Block),
    (Mode::Tx, raw::RawMode::Tx),
];

/// The times gathered so far, with each repetition's ratios per mode and thread count.
struct Tally {
    figs: Vec<ModeFigures>,
    ratios: Vec<Vec<Vec<f64>>>,
    cpu_ratios: Vec<Vec<Vec<f64>>>,
    cand: CandidateFigures,
}

impl Tally {
    fn new(levels: &[usize], n: usize) -> Self {
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
        Self {
            figs,
            ratios: vec![vec![vec![]; levels.len()]; 2],
            cpu_ratios: vec![vec![vec![]; levels.len()]; 2],
            cand: CandidateFigures {
                jobs: n,
                pass: true,
                tx_pass: true,
                ..Default::default()
            },
        }
    }

    /// Records the harness run and the raw run of mode `m` at level `k`.
    fn record(&mut self, m: usize, k: usize, hr: &HarnessRun, r: &raw::RawRun) {
        let f = &mut self.figs[m];
        f.gas = hr.gas;
        f.txs = hr.txs;
        f.raw_gas = r.gas;
        f.raw_invalid = r.invalid;
        f.harness_pass &= hr.pass;
        f.receipts_checks = hr.receipts_checks;
        let a = &mut f.by_jobs[k];
        a.harness_seconds.push(hr.seconds);
        a.load_seconds.push(hr.load);
        a.load_cpu_seconds.push(hr.load_cpu);
        a.main_cpu_seconds.push(hr.main_cpu);
        a.raw_seconds.push(r.seconds);
        a.harness_cpu_seconds.push(hr.cpu_seconds);
        a.raw_cpu_seconds.push(r.cpu_seconds);
        self.ratios[m][k].push(hr.seconds / r.seconds);
        self.cpu_ratios[m][k].push(hr.cpu_seconds / r.cpu_seconds);
    }

    /// Turns the times into figures: per-level throughput and ratios, per-mode scaling, and the
    /// candidate run's cost against the block mode at `-j N`.
    fn finish(mut self) -> Measured {
        for (m, f) in self.figs.iter_mut().enumerate() {
            summarise_mode(f, &self.ratios[m], &self.cpu_ratios[m]);
        }
        let [block, tx]: [ModeFigures; 2] = self.figs.try_into().expect("two modes");
        let mut cand = self.cand;
        let bn = block.by_jobs.last().expect("levels");
        cand.baseline_only_seconds = bn.harness_seconds.clone();
        cand.cost_best_vs_best = cand.with_candidate_seconds.best / bn.harness_seconds.best;
        cand.cost_x_baseline = median(&paired(&cand.with_candidate_seconds, &bn.harness_seconds));
        let tn = tx.by_jobs.last().expect("levels");
        cand.tx_overhead_vs_raw = median(&paired(&cand.tx_with_candidate_seconds, &tn.raw_seconds));
        Measured {
            block,
            tx,
            candidate: cand,
        }
    }
}

/// One mode's figures from its times and its per-level ratios.
fn summarise_mode(f: &mut ModeFigures, ratios: &[Vec<f64>], cpu_ratios: &[Vec<f64>]) {
    for (k, a) in f.by_jobs.iter_mut().enumerate() {
        let (h, r) = (a.harness_seconds.best, a.raw_seconds.best);
        a.overhead_best_vs_best = h / r;
        a.overhead_vs_raw = median(&ratios[k]);
        let range = |rs: &[f64]| {
            [
                rs.iter().copied().fold(f64::INFINITY, f64::min),
                rs.iter().copied().fold(0.0, f64::max),
            ]
        };
        a.overhead_range = range(&ratios[k]);
        a.overhead_cpu_vs_raw = median(&cpu_ratios[k]);
        a.overhead_cpu_range = range(&cpu_ratios[k]);
        let (workers, floor) = cpu_split(a);
        a.workers_cpu_vs_raw = median(&workers);
        a.floor_cpu_vs_raw = median(&floor);
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

/// Per repetition: the workers' CPU time over raw revm's, and raw revm's CPU time with the
/// load's and the main thread's added, over raw revm's.
fn cpu_split(a: &AtJobs) -> (Vec<f64>, Vec<f64>) {
    let (h, l, m, r) = (
        &a.harness_cpu_seconds.all,
        &a.load_cpu_seconds.all,
        &a.main_cpu_seconds.all,
        &a.raw_cpu_seconds.all,
    );
    (0..r.len().min(h.len()).min(l.len()).min(m.len()))
        .map(|i| ((h[i] - l[i] - m[i]) / r[i], (r[i] + l[i] + m[i]) / r[i]))
        .unzip()
}

/// Runs every measurement `plan.reps` times, interleaved, and computes the figures.
pub(crate) fn measure(plan: &Plan<'_>, progress: &(dyn Fn(&str) + Sync)) -> Result<Measured> {
    let mut tally = Tally::new(plan.levels, plan.n);
    for rep in 0..plan.reps {
        for (m, (mode, raw_mode)) in MODES.iter().enumerate() {
            for (k, j) in plan.levels.iter().enumerate() {
                let (hr, r) = measure_level(plan, rep, *mode, *raw_mode, *j, progress)?;
                tally.record(m, k, &hr, &r);
            }
        }
        measure_candidates(plan, rep, &mut tally, progress)?;
    }
    Ok(tally.finish())
}

/// The baseline + candidate runs of repetition `rep` at `-j N`: block mode, then tx mode (whose
/// ratio is against the raw tx loop of the same repetition).
fn measure_candidates(
    plan: &Plan<'_>,
    rep: usize,
    tally: &mut Tally,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let (reps, n) = (plan.reps, plan.n);
    let hr = harness_run(
        plan.corpus,
        Mode::Block,
        n,
        true,
        plan.runs,
        "block-candidate",
    )?;
    progress(&format!(
        "rep {}/{reps} block -j {n} baseline + candidate: {:.3} s",
        rep + 1,
        hr.seconds
    ));
    let c = &mut tally.cand;
    c.with_candidate_seconds.push(hr.seconds);
    c.pass &= hr.pass;
    c.receipts_checks = hr.receipts_checks;
    let hr = harness_run(plan.corpus, Mode::Tx, n, true, plan.runs, "tx-candidate")?;
    let raw = tally.figs[1]
        .by_jobs
        .last()
        .expect("levels")
        .raw_seconds
        .all[rep];
    progress(&format!(
        "rep {}/{reps} tx -j {n} baseline + candidate: {:.3} s, ratio to raw revm {:.3}",
        rep + 1,
        hr.seconds,
        hr.seconds / raw
    ));
    let c = &mut tally.cand;
    c.tx_with_candidate_seconds.push(hr.seconds);
    c.tx_pass &= hr.pass;
    Ok(())
}

/// The harness and the raw loop in one mode at `j` threads, back to back; fails when the two
/// did not execute the same gas.
fn measure_level(
    plan: &Plan<'_>,
    rep: usize,
    mode: Mode,
    raw_mode: raw::RawMode,
    j: usize,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(HarnessRun, raw::RawRun)> {
    let reps = plan.reps;
    let name = if mode == Mode::Block { "block" } else { "tx" };
    let hr = harness_run(
        plan.corpus,
        mode,
        j,
        false,
        plan.runs,
        &format!("{name}-j{j}"),
    )?;
    let (h, load, gas) = (hr.seconds, hr.load, hr.gas);
    let r = raw::run(plan.prepared, j, raw_mode);
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
    Ok((hr, r))
}
