//! The replay job: a block source → both sides → findings → sinks, streamed in block order.

use std::{
    path::PathBuf,
    sync::{Mutex, atomic::AtomicBool},
    time::Instant,
};

use txshadow_diff::{Accepted, CriteriaTally, Mode, Totals};
use txshadow_node::NodeEngine;
use txshadow_report::{
    BlockResult, Configurations, Report, ReportWriter, RunInfo, RunVerdict, Sink,
};

use crate::{
    BlockSource, RunConfig, RunError, SourceBlock, SourcePlan,
    block::{process, settle},
    node::{NodeSides, NodeWarnings},
    window::{Flow, LoadClock, Reading, map_ordered, readers_for},
};

/// Exit code: nothing differs.
pub const EXIT_OK: u8 = 0;
/// Exit code: differences found (a launch criterion failed).
pub const EXIT_DIFF: u8 = 1;
/// Exit code: the harness failed (bad input, I/O, a node that stayed down).
pub const EXIT_HARNESS: u8 = 2;

/// What a run tells its caller as it goes (the CLI draws a bar from these; the library never
/// prints).
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The run directory exists and the source's plan is known.
    Started {
        /// The run directory.
        dir: PathBuf,
        /// What the source will give.
        plan: SourcePlan,
    },
    /// One block's result reached the sinks.
    Block {
        /// Block number.
        number: u64,
        /// Its txs.
        txs: usize,
        /// Gas executed by the sides.
        gas: u64,
        /// Whether it differs (an unaccepted finding).
        differs: bool,
    },
}

/// The hooks of a run: progress events, sinks beside the run directory's files, a stop flag.
#[derive(Default)]
pub struct RunHooks<'a> {
    /// Called on every event, from the thread that called [`run`].
    pub events: Option<&'a (dyn Fn(&RunEvent) + Sync)>,
    /// More sinks (metrics, a push), after the run directory's files.
    pub sinks: Vec<Box<dyn Sink + 'a>>,
    /// When set, the run reads no more blocks, finishes those in flight and ends with status
    /// `interrupted`.
    pub stop: Option<&'a AtomicBool>,
}

impl std::fmt::Debug for RunHooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHooks")
            .field("sinks", &self.sinks.len())
            .finish_non_exhaustive()
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The final report.
    pub report: Report,
    /// The run directory.
    pub dir: PathBuf,
    /// Exit code ([`EXIT_OK`], [`EXIT_DIFF`]; a harness failure is an `Err`).
    pub exit: u8,
}

/// A run directory's default name: UTC time, `kind` (`block`, `tx`, `bench`) and the process
/// id, so runs sort by time and two runs in one second do not collide.
pub fn default_run_id(kind: &str) -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{kind}-{}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        std::process::id()
    )
}

/// Now, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The run's launch criteria: `any` when none is given.
fn criteria(cfg: &RunConfig) -> Vec<txshadow_diff::Criterion> {
    if cfg.fail_on.is_empty() {
        vec![txshadow_diff::Criterion::Any]
    } else {
        cfg.fail_on.clone()
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Block => "block",
        Mode::Tx => "tx",
    }
}

/// The node engines of a run's sides, connected (and the chain id checked).
struct Nodes {
    baseline: Option<NodeEngine>,
    candidate: Option<NodeEngine>,
}

impl Nodes {
    fn connect(cfg: &RunConfig, chain_id: u64) -> Result<Self, RunError> {
        let connect = |spec: Option<&txshadow_node::NodeSpec>| {
            spec.map(|s| NodeEngine::connect(s, chain_id))
                .transpose()
                .map_err(RunError::Node)
        };
        if cfg.uses_nodes() {
            // a node that closes a connection while a request is being written must be an
            // error, not death by SIGPIPE
            #[cfg(unix)]
            // SAFETY: changes the disposition of one signal; no handler runs Rust code
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
        }
        Ok(Self {
            baseline: connect(cfg.baseline.node.as_ref())?,
            candidate: connect(cfg.candidate.as_ref().and_then(|c| c.node.as_ref()))?,
        })
    }

    fn sides(&self) -> NodeSides<'_> {
        NodeSides {
            baseline: self.baseline.as_ref(),
            candidate: self.candidate.as_ref(),
        }
    }
}

fn configurations(cfg: &RunConfig, nodes: NodeSides<'_>) -> Configurations {
    let engine = |n: Option<&NodeEngine>| n.map_or_else(|| "revm".to_string(), |e| e.describe());
    let mut c = Configurations {
        baseline: cfg.baseline.config.describe(),
        candidate: cfg.candidate.as_ref().map(|c| c.config.describe()),
        compared_with: if cfg.candidate.is_some() {
            "baseline"
        } else {
            "recorded chain results"
        }
        .into(),
        ..Default::default()
    };
    if nodes.any() {
        // which engine, and for a node which path (the probe's choice), per side
        c.baseline_engine = Some(engine(nodes.baseline));
        if cfg.candidate.is_some() {
            c.candidate_engine = Some(engine(nodes.candidate));
        }
        for (k, n) in [("baseline", nodes.baseline), ("candidate", nodes.candidate)] {
            if let Some(v) = n.and_then(|n| serde_json::to_value(&n.caps).ok()) {
                c.node_capabilities.insert(k.into(), v);
            }
        }
    }
    c
}

/// The report of a run about to start: its identity, configurations and criteria.
fn new_report(cfg: &RunConfig, source: &dyn BlockSource, nodes: NodeSides<'_>) -> Report {
    let run_id = cfg
        .run_id
        .clone()
        .unwrap_or_else(|| default_run_id(mode_name(cfg.mode)));
    Report {
        schema_version: txshadow_report::SCHEMA_VERSION,
        run: RunInfo {
            id: run_id,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            started: now_rfc3339(),
            mode: mode_name(cfg.mode).into(),
            corpus: source.describe(),
            shard: cfg.shard.map(|s| s.to_string()),
            corpus_checksum: source.identity(),
            pid: Some(std::process::id()),
            ..Default::default()
        },
        configurations: configurations(cfg, nodes),
        launch_criteria: criteria(cfg).iter().map(ToString::to_string).collect(),
        ..Default::default()
    }
}

/// Runs a replay: every block of `source` on both sides, diffed, tallied and streamed to the
/// run directory's files (and `hooks.sinks`) in block order, with at most a few blocks per
/// worker in memory. Errors are harness failures; a run directory that exists by then is
/// left with `run.status` `failed` and every block finished before.
pub fn run(
    source: &mut dyn BlockSource,
    cfg: &RunConfig,
    mut hooks: RunHooks<'_>,
) -> Result<RunOutcome, RunError> {
    cfg.check()?;
    let nodes = Nodes::connect(cfg, source.chain().chain_id)?;
    let nodes = nodes.sides();
    let mut report = new_report(cfg, source, nodes);
    let dir = cfg.out_dir.join(&report.run.id);
    let writer = ReportWriter::create(&dir, &report, cfg.mode == Mode::Tx)
        .map_err(|e| RunError::Report(format!("create the report directory: {e}")))?;
    hooks.sinks.insert(0, Box::new(writer));
    let plan = source.plan();
    if let Some(ev) = hooks.events {
        ev(&RunEvent::Started {
            dir: dir.clone(),
            plan,
        });
    }
    let jobs = crate::effective_jobs(cfg.jobs);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("replay-{i}"))
        .build()
        .map_err(|e| RunError::Input(format!("start {jobs} worker threads: {e}")))?;
    report.throughput.jobs = jobs;
    let started = Instant::now();
    let mut state = Emitter {
        report,
        sinks: hooks.sinks,
        accepted_counts: vec![],
        criteria: CriteriaTally::new(&criteria(cfg)),
        error: None,
        events: hooks.events,
    };
    let fatal: Mutex<Option<txshadow_node::NodeError>> = Mutex::new(None);
    let warnings = NodeWarnings::new(nodes);
    let clock = LoadClock::default();
    let reading = Reading {
        capacity: (crate::BLOCKS_PER_WORKER * jobs).max(2),
        readers: readers_for(jobs),
        clock: &clock,
    };
    let read = map_ordered(
        &pool,
        reading,
        source,
        hooks.stop,
        |sb| {
            warnings.see(&sb);
            let t = Instant::now();
            let mut r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| process(&sb, cfg, nodes)))
                    .unwrap_or_else(|_| {
                        Ok(BlockResult {
                            block: sb.block.number(),
                            label: sb.block.label.clone(),
                            error: Some("panic while replaying or diffing this block".into()),
                            ..Default::default()
                        })
                    });
            if let Ok(r) = &mut r {
                r.seconds = t.elapsed().as_secs_f64();
                r.warnings.extend(sb.notes.iter().cloned());
            }
            r
        },
        |r| match r {
            Ok(r) => state.emit(r, cfg),
            Err(e) => {
                fatal.lock().expect("not poisoned").get_or_insert(e);
                Flow::Stop
            }
        },
    );
    state.report.configurations.node_warnings = warnings.finish();
    state.set_throughput(&clock, started);
    let failure = match (
        read,
        fatal.into_inner().expect("not poisoned"),
        state.error.take(),
    ) {
        (_, _, Some(e)) => Some(e),
        (_, Some(e), _) => Some(RunError::Node(e)),
        (Err(e), _, _) => Some(e),
        (Ok(()), None, None) => None,
    };
    if let Some(e) = failure {
        // a harness failure: keep what was written, marked as failed
        let _ = state.close(RunVerdict::Error);
        return Err(RunError::Stopped {
            dir,
            source: Box::new(e),
        });
    }
    let verdict = state.judge(cfg);
    let stopped = hooks
        .stop
        .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
    // stopped on request: the criteria as far as it went, the status `interrupted`
    state.close(if stopped {
        RunVerdict::Pending
    } else {
        verdict
    })?;
    let exit = match verdict {
        RunVerdict::Pass => EXIT_OK,
        _ => EXIT_DIFF,
    };
    Ok(RunOutcome {
        report: state.report,
        dir,
        exit,
    })
}

/// The emitting side of a run: tallies each block into the report and hands it to the sinks.
struct Emitter<'a> {
    report: Report,
    sinks: Vec<Box<dyn Sink + 'a>>,
    accepted_counts: Vec<usize>,
    /// The launch criteria's counts over every finding (the report lists only so many).
    criteria: CriteriaTally,
    error: Option<RunError>,
    events: Option<&'a (dyn Fn(&RunEvent) + Sync)>,
}

impl Emitter<'_> {
    /// The run's speed: the load (the readers' own time) and the replay's wall time.
    fn set_throughput(&mut self, clock: &LoadClock, started: Instant) {
        let txs = self.report.counts.txs;
        let tp = &mut self.report.throughput;
        (tp.load_seconds, tp.load_cpu_seconds) = clock.totals();
        let secs = started.elapsed().as_secs_f64();
        tp.replay_seconds = secs;
        tp.mgas_per_s = tp.gas as f64 / 1e6 / secs.max(1e-9);
        tp.tx_per_s = txs as f64 / secs.max(1e-9);
    }

    fn emit(&mut self, mut r: BlockResult, cfg: &RunConfig) -> Flow {
        settle(&mut r, cfg.accepted.as_ref(), &mut self.accepted_counts);
        for f in &r.findings {
            self.criteria.add(f);
        }
        self.report.add_block(&r);
        if let Some(ev) = self.events {
            ev(&RunEvent::Block {
                number: r.block,
                txs: r.rows.len(),
                gas: r.gas,
                differs: r.differs(),
            });
        }
        for s in &mut self.sinks {
            if let Err(e) = s.block(&r, &self.report) {
                self.error = Some(RunError::Report(format!("write the report: {e}")));
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// The verdict by the launch criteria, with the accepted rules' counts.
    fn judge(&mut self, cfg: &RunConfig) -> RunVerdict {
        if let Some(a) = &cfg.accepted {
            self.accepted_counts.resize(a.accept.len(), 0);
            self.report.accepted_rules = a
                .accept
                .iter()
                .zip(&self.accepted_counts)
                .map(|(rule, n)| Accepted {
                    rule: rule.clone(),
                    matched: *n,
                })
                .collect();
        }
        let c = &self.report.counts;
        let totals = Totals {
            txs: c.txs,
            errors: c.errors,
            block_errors: c.block_errors,
            not_comparable: c.not_comparable,
            gas_expected: c.gas_expected,
            gas_got: c.gas_got,
        };
        self.report.failed_criteria = self.criteria.failed(&totals);
        if self.report.failed_criteria.is_empty() {
            RunVerdict::Pass
        } else {
            RunVerdict::Fail
        }
    }

    /// Ends the report and every sink; the first sink error is returned.
    fn close(&mut self, verdict: RunVerdict) -> Result<(), RunError> {
        self.report.close(verdict, now_rfc3339());
        let mut first = None;
        for s in &mut self.sinks {
            if let Err(e) = s.finish(&self.report) {
                first.get_or_insert(RunError::Report(format!("write the report: {e}")));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// One block replayed and diffed under `cfg` (revm sides only), its rows' verdicts set: the
/// unit of work of [`run`], for benches and for tools that look at one block.
pub fn replay_block(sb: &SourceBlock, cfg: &RunConfig) -> Result<BlockResult, RunError> {
    if cfg.uses_nodes() {
        return Err(RunError::Input(
            "replay_block runs revm sides only; a node side needs a run".into(),
        ));
    }
    let mut r = process(sb, cfg, NodeSides::default()).map_err(RunError::Node)?;
    settle(&mut r, cfg.accepted.as_ref(), &mut vec![]);
    Ok(r)
}
