//! txshadow run: the replay job as a library.
//!
//! A run is `block source → both sides → findings → report sinks`, the middle of
//! `capture → corpus → replay → diff → report`:
//! - a [`BlockSource`] gives blocks one at a time: [`CorpusSource`] reads a corpus directory
//!   (all of it, or a [`Shard`] balanced by gas), a live follower gives blocks as it captures
//!   them ([`LiveSource`]), and a long live run can be cut into parts ([`run_rotated`]);
//! - each block runs on the baseline and the candidate ([`SideSpec`]: a configuration on revm,
//!   or a node build over JSON-RPC), in block or tx mode, and is diffed against the other side
//!   or the chain's record;
//! - the results are tallied into the report and handed to every [`txshadow_report::Sink`] in
//!   block order, while later blocks still run: the run directory's files, and whatever the
//!   caller adds (metrics, a push);
//! - the launch criteria give the verdict and the exit code.
//!
//! Blocks stream through a bounded window ([`BLOCKS_PER_WORKER`]), so memory does not grow with the
//! corpus. Progress comes as [`RunEvent`]s the caller draws; the library never prints.
//!
//! The same library holds what works on one tx ([`triage`], [`fixture`]) and the throughput
//! bench ([`bench`]), so tests, benches and the CLI share one code path.
//!
//! ```no_run
//! use txshadow_diff::Mode;
//! use txshadow_run::{CorpusSource, RunConfig, RunHooks, run};
//! let mut source = CorpusSource::open("corpora/mainnet".as_ref(), None)?;
//! let cfg = RunConfig::against_chain(Mode::Block, "reports");
//! let out = run(&mut source, &cfg, RunHooks::default())?;
//! println!("{}: {} txs, report in {}", out.report.verdict.as_str(), out.report.counts.txs, out.dir.display());
//! # Ok::<_, txshadow_run::RunError>(())
//! ```

use std::path::PathBuf;

pub mod bench;
mod block;
mod config;
mod cpu;
pub mod fixture;
#[doc(hidden)]
pub mod fuzzing;
mod job;
mod live;
mod node;
mod rotate;
mod seal;
pub mod sides;
mod source;
mod state_roots;
pub mod triage;
mod triage_text;
pub mod verify;
mod window;
pub use window::{BLOCKS_PER_WORKER, RESULTS_PER_BLOCK, WORKERS_PER_READER};

pub use config::{
    RunConfig, Shard, SideSpec, check_run_id, effective_jobs, max_jobs, parse_duration,
};
pub use cpu::process_cpu_seconds;
pub use job::{
    EXIT_DIFF, EXIT_HARNESS, EXIT_OK, RunEvent, RunHooks, RunOutcome, default_run_id, now_rfc3339,
    replay_block, run,
};
pub use live::{LiveOptions, LiveSource};
pub use rotate::{Rotate, RotatedOutcome, run_rotated, utc_day};
pub use seal::{SealOptions, Sealed, seal_corpus};
pub use source::{BlockSource, CorpusSource, LoadAt, MemorySource, SourceBlock, SourcePlan};
pub use triage_text::render_text as render_triage;

/// Why a run could not be done: a harness failure (exit 2), never a difference.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The corpus could not be read (the error names the file).
    #[error(transparent)]
    Corpus(#[from] txshadow_corpus::CorpusError),
    /// Bad input: a configuration, a criterion, a run id, a tx that is not there.
    #[error("{0}")]
    Input(String),
    /// A node a side runs on failed for good.
    #[error(transparent)]
    Node(txshadow_node::NodeError),
    /// A report file could not be written (the error names the file).
    #[error("{0}")]
    Report(String),
    /// The run stopped after it started; what it wrote before is kept.
    #[error("{source} (the run stopped; partial report in {})", dir.display())]
    Stopped {
        /// The run directory.
        dir: PathBuf,
        /// Why.
        source: Box<Self>,
    },
}
