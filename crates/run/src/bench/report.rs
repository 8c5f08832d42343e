//! What `txshadow bench` reports (`bench.json`): the figures, the headline, the targets, and the
//! two statistics every ratio is made of ([`median`] of [`paired`] repetitions).

use serde::Serialize;

use super::revme;

/// Version of the bench JSON.
pub const BENCH_SCHEMA_VERSION: u32 = 1;

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
    /// Adds one repetition's value.
    pub(crate) fn push(&mut self, s: f64) {
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
    /// The workers' CPU seconds (the run's, less the reader's and the main thread's) / raw CPU
    /// seconds (median of the repetitions): what replaying and checking costs against revm
    /// alone, without the load and the reports.
    pub workers_cpu_vs_raw: f64,
    /// (raw CPU + the run's load CPU + its main thread's CPU) / raw CPU (median of the
    /// repetitions): the CPU ratio the run would have if its workers did exactly the raw
    /// loop's work. At `-j` = cores every thread shares the cores, so the time ratio cannot
    /// go much below it whatever the workers do.
    pub floor_cpu_vs_raw: f64,
    /// Harness Mgas/s (gas of the txs, best run).
    pub harness_mgas_per_s: f64,
    /// Harness tx/s (best run).
    pub harness_tx_per_s: f64,
    /// Raw revm Mgas/s (best run).
    pub raw_mgas_per_s: f64,
    /// Raw revm tx/s (best run).
    pub raw_tx_per_s: f64,
    /// Harness seconds: the whole replay job (open, streamed load, replay, diff, reports).
    pub harness_seconds: Seconds,
    /// Corpus load seconds of the same runs: the reader thread's wall time in the load, which
    /// streams beside the replay (a time it spends waiting for a core counts).
    pub load_seconds: Seconds,
    /// Corpus load CPU seconds of the same runs: the reader thread's CPU time in the load.
    pub load_cpu_seconds: Seconds,
    /// CPU seconds of the same runs' main thread: opening the corpus, tallying each block and
    /// writing the report files (the workers' share is the rest of `harness_cpu_seconds`).
    pub main_cpu_seconds: Seconds,
    /// Raw loop seconds.
    pub raw_seconds: Seconds,
    /// Harness CPU seconds (all threads) of the whole replay job.
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
    /// How the harness's block runs checked their receipts (the last repetition's run at each
    /// thread count made the same checks): by the receipts trie, or field by field against
    /// sealed receipts. Every other check (gas, logs bloom, state, per-tx fields) is made
    /// alike in both.
    pub receipts_checks: txshadow_report::ReceiptsChecks,
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
    /// Corpus load / the replay without it, in CPU time (block mode, `-j N`): the reader
    /// thread's CPU time in the load against the rest of the run's CPU time (all threads).
    pub load_share_of_replay: f64,
    /// Corpus load / the whole run, in CPU time: the share of the job's work that is the load.
    pub load_share_of_job: f64,
    /// The reader thread's wall time in the load / the run's wall time (block mode, `-j N`).
    /// The load streams beside the replay on a thread of its own, so this counts the time it
    /// waits for a core the workers hold: at `-j` = cores it is not the load's cost.
    pub load_wall_share_of_replay: f64,
    /// The main thread (corpus open, tally, report files) / the whole run, in CPU time (block
    /// mode, `-j N`); the workers' share is what the load and this leave.
    pub main_share_of_job: f64,
    /// Block mode at `-j N`: the workers' CPU time / raw revm CPU time (the run's CPU time less
    /// the reader's and the main thread's).
    pub block_workers_cpu_vs_raw: f64,
    /// Block mode at `-j N`: (raw revm CPU + the load's + the main thread's) / raw revm CPU,
    /// the CPU ratio if the workers did nothing but raw revm's work (see
    /// [`AtJobs::floor_cpu_vs_raw`]).
    pub block_floor_cpu_vs_raw: f64,
    /// Block mode at `-j N`: the workers' CPU time / the reader's (the load), the workers one
    /// reader thread keeps fed on this corpus (see [`crate::WORKERS_PER_READER`]).
    pub block_workers_per_reader: f64,
    /// Baseline + candidate block-mode run time / baseline-only run time (`-j N`).
    pub candidate_run_cost_x_baseline: f64,
    /// Baseline + candidate tx-mode run time / raw revm tx loop time (`-j N`).
    pub tx_candidate_overhead_vs_raw: f64,
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
    /// How the block runs of both sides checked their receipts (the last repetition's run).
    pub receipts_checks: txshadow_report::ReceiptsChecks,
    /// Baseline + candidate in tx mode (the candidate runs each tx alone), seconds.
    pub tx_with_candidate_seconds: Seconds,
    /// That run / the raw revm tx loop at `-j N`: the median of the repetitions' ratios.
    pub tx_overhead_vs_raw: f64,
    /// Whether the tx-mode candidate runs found no difference.
    pub tx_pass: bool,
}

/// Sealing the corpus's receipts, timed on its own: a dry run of `txshadow corpus seal` (every
/// block not yet sealed replayed with its receipts trie and checked against the chain, no
/// writes). Sealing is done once per corpus (import does it), so no timed run includes it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SealFigures {
    /// Seconds of the dry run.
    pub seconds: Seconds,
    /// Blocks whose receipts were sealed when the bench started.
    pub sealed_blocks: usize,
    /// Blocks the dry run would seal now.
    pub sealable_blocks: usize,
    /// Blocks that cannot be sealed (they keep the trie check), with the first reason.
    pub unsealed_blocks: usize,
    /// Why the first unsealed block is not sealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsealed_reason: Option<String>,
}

/// The corpus's size on disk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiskFigures {
    /// Bytes of the block files.
    pub block_bytes: u64,
    /// Bytes of the code files (packs and loose codes).
    pub code_bytes: u64,
    /// Block files in the binary encoding / in JSON.
    pub binary_block_files: usize,
    /// Block files in JSON (an older corpus; `txshadow corpus pack` converts them).
    pub json_block_files: usize,
    /// Block bytes per tx.
    pub block_bytes_per_tx: f64,
    /// All bytes (blocks, codes, manifest) per tx.
    pub total_bytes_per_tx: f64,
    /// The packed codes: how many, how many stored compressed (`txshadow corpus pack --codes
    /// compressed`; each is then decompressed once per run, in the load), their bytes as a
    /// replay reads them and as stored.
    pub packs: txshadow_corpus::PackSizes,
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
    /// Sealing the receipts, timed on its own.
    pub seal: SealFigures,
    /// The corpus on disk.
    pub disk: DiskFigures,
    /// `revme statetest` on the same txs exported as fixtures, against tx mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revme: Option<revme::RevmeFigures>,
    /// Corpus, machine, command.
    pub info: BenchInfo,
}

/// The median (the mean of the middle two for an even count); 0 for none.
pub(crate) fn median(v: &[f64]) -> f64 {
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
pub(crate) fn paired(a: &Seconds, b: &Seconds) -> Vec<f64> {
    a.all.iter().zip(&b.all).map(|(x, y)| x / y).collect()
}
