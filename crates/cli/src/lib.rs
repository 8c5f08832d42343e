//! txshadow: shadow-traffic transaction replay for EVM chains.
//!
//! The command-line front of `capture → corpus → replay → diff → report`. Every subcommand is a
//! module of [`cmd`] with an args struct and a `run` method that parses, calls a library crate
//! and prints; the work lives in the library crates (`txshadow-corpus`, `-capture`, `-replay`,
//! `-diff`, `-report`, and `-run`, the replay job that tests and benches call directly).
//!
//! Exit codes: 0 no unaccepted difference, 1 differences found, 2 the harness failed (bad input,
//! I/O). Results go to stdout and report files; logs and progress to stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod cmd;
pub mod progress;

pub use txshadow_run::{EXIT_DIFF, EXIT_HARNESS, EXIT_OK};

/// Shadow-traffic transaction replay harness for Ethereum and EVM chains.
///
/// Capture real transactions into a corpus, replay them under a baseline and a candidate
/// configuration, diff receipts, logs, gas and state, and report what changed.
#[derive(Debug, Parser)]
#[command(name = "txshadow", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr, no progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture blocks from a JSON-RPC archive node into a corpus.
    Capture(cmd::capture::CaptureArgs),
    /// Replay a corpus and diff against the chain or between two configurations.
    Replay(cmd::replay::ReplayArgs),
    /// Follow a node's head and replay every new block as it comes (live shadow mode).
    Follow(cmd::follow::FollowArgs),
    /// Convert other formats (pevm, zeth, keth, geth-tracetest, hivechain) into a corpus.
    Import(cmd::import::ImportArgs),
    /// Inspect or check a corpus.
    #[command(subcommand)]
    Corpus(cmd::corpus::CorpusCmd),
    /// Triage one tx: first diverging step, call trees, trace diff, fixture export.
    Tx(cmd::tx::TxArgs),
    /// Measure replay speed against raw revm: Mgas/s, tx/s, overhead, scaling, load share.
    Bench(cmd::bench::BenchArgs),
    /// Work on run directories: merge the shards of a sharded run.
    #[command(subcommand)]
    Report(cmd::report::ReportCmd),
}

/// Sets up `tracing` on stderr. `RUST_LOG` overrides the level.
pub fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(progress::color_on_stderr())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let quiet = cli.quiet;
    let res = match cli.command {
        Command::Capture(a) => a.run(quiet),
        Command::Replay(a) => a.run(quiet),
        Command::Follow(a) => a.run(quiet),
        Command::Import(a) => a.run(quiet),
        Command::Corpus(c) => c.run(),
        Command::Tx(a) => a.run(),
        Command::Bench(a) => a.run(quiet),
        Command::Report(c) => c.run(),
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

/// An error and its causes on one line, each cause once: an error whose message already
/// carries its source's text (`path: No such file…`) does not repeat it.
pub fn error_text(e: &eyre::Report) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let t = cause.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
    }
    msg
}

/// Set by SIGINT or SIGTERM: a run then reads no more blocks, finishes those in flight,
/// writes its reports as `interrupted` and exits.
pub static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes SIGINT and SIGTERM set [`STOP`] instead of killing the process at once; a second
/// signal kills it.
pub fn stop_on_signals() {
    #[cfg(unix)]
    {
        extern "C" fn on_signal(sig: libc::c_int) {
            if STOP.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // SAFETY: restoring the default disposition and re-raising are async-signal-safe
                unsafe {
                    libc::signal(sig, libc::SIG_DFL);
                    libc::raise(sig);
                }
            }
        }
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only touches an atomic and async-signal-safe calls
            unsafe {
                libc::signal(sig, on_signal as *const () as libc::sighandler_t);
            }
        }
    }
}
