//! `txshadow capture`: blocks from a JSON-RPC archive node into a corpus, optionally replayed
//! right away (`--verify`) to check they reproduce the node's receipts.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use clap::Args;
use eyre::{Result, WrapErr, eyre};
use indicatif::ProgressBar;
use txshadow_capture::rpc::{
    BlockRange, CaptureError, CaptureEvent, CaptureOptions, CaptureSummary, RpcUrl, capture,
};
use txshadow_corpus::{Corpus, CorpusWriter, parse_fork};

use crate::progress;

/// The `--rpc-url` value: never printed (its `Debug` shows nothing of it).
#[derive(Clone)]
pub struct SecretUrl(pub(crate) String);

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretUrl(..)")
    }
}

impl FromStr for SecretUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

/// Capture blocks from a JSON-RPC archive node into a corpus.
///
/// Per block: the full block, receipts, the pre-state from `debug_traceBlockByNumber`
/// (prestate tracer) and each tx's post-state (its diff mode), the state the block touches
/// outside its txs, uncles, and the 256 ancestors' hashes, all pinned to the block hash. A
/// re-run resumes: complete blocks are skipped. Credentials in the URL never reach the
/// corpus, the logs or the output.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// JSON-RPC endpoint of an archive node with the debug namespace (http:// or https://).
    /// Read from `TXSHADOW_RPC_URL`, else `ETH_RPC_URL` (as foundry reads it), when not given.
    #[arg(
        long,
        env = "TXSHADOW_RPC_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub rpc_url: Option<SecretUrl>,
    /// Blocks: `A..B` (both included), `A:B` (as cryo: B not included), `N`, or `latest-N`
    /// (the last N blocks).
    #[arg(long, value_name = "RANGE")]
    pub blocks: String,
    /// Corpus directory: created, or resumed (complete blocks are skipped).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Time limit of one request, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Retries of a request after a transient fault (timeout, 5xx, 429, dropped connection).
    #[arg(long, default_value_t = 8)]
    pub retries: u32,
    /// First retry delay in milliseconds; it doubles per retry, up to 15 s.
    #[arg(long, default_value_t = 250, value_name = "MS")]
    pub retry_delay: u64,
    /// Capture again the blocks the corpus already has (and discard its index).
    #[arg(long)]
    pub overwrite: bool,
    /// For a chain txshadow does not know: every fork up to this one (e.g. `prague`) is active
    /// from genesis.
    #[arg(long)]
    pub fork: Option<String>,
    /// Replay each captured block and record whether it reproduces the node's receipts and
    /// post-states (exit 1 if one does not).
    #[arg(long)]
    pub verify: bool,
    /// Also fetch each block's state witness: `debug_executionWitness` where the node serves
    /// it, else `eth_getProof` at the parent block for every account and slot the block touches
    /// (batched, concurrent). A replay then checks the pre-state against the parent's state
    /// root and computes the exact post-block state root.
    #[arg(long)]
    pub witness: bool,
}

/// Adds a note to the corpus's provenance (replacing an earlier `verify:` note).
fn record_note(dir: &Path, note: String) -> Result<()> {
    let c = Corpus::open(dir)?;
    let mut prov = c.manifest().provenance.clone();
    prov.notes.retain(|n| !n.starts_with("verify:"));
    prov.notes.push(note);
    CorpusWriter::create(dir, c.manifest().chain.clone(), prov, false)?.finish()?;
    Ok(())
}

impl CaptureArgs {
    /// Runs the capture: progress on stderr, a summary line on stdout.
    pub fn run(self, quiet: bool) -> Result<u8> {
        let mut opts = self.options()?;
        let rt = runtime()?;
        let bar = progress::bar(0, "blocks", quiet);
        let written = AtomicUsize::new(0);
        let on_event = |e: CaptureEvent| show_event(&bar, &written, e);
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        opts.stop = Some(stop.clone());
        let res = rt.block_on(async {
            // the first Ctrl-C stops the capture cleanly, a second one at once
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    stop.notify_one();
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(i32::from(crate::EXIT_HARNESS));
                    }
                }
            });
            capture(&opts, &on_event).await
        });
        bar.finish_and_clear();
        let s = match res {
            Ok(s) => s,
            Err(e) => {
                self.report_failure(&e, written.load(Ordering::Relaxed));
                return Ok(crate::EXIT_HARNESS);
            }
        };
        print_summary(&s, &self.out);
        if !self.verify {
            return Ok(crate::EXIT_OK);
        }
        self.verify_range(&s)
    }

    /// The capture options from the flags (the node from the flag or the environment).
    fn options(&self) -> Result<CaptureOptions> {
        let raw = match &self.rpc_url {
            Some(u) => u.0.clone(),
            None => std::env::var("ETH_RPC_URL").map_err(|_| {
                eyre!("no node given: pass --rpc-url URL, or set TXSHADOW_RPC_URL or ETH_RPC_URL")
            })?,
        };
        let url = RpcUrl::parse(&raw).map_err(|e| eyre!(e))?;
        let range: BlockRange = self.blocks.parse()?;
        let fork = self
            .fork
            .as_deref()
            .map(|f| parse_fork(f).ok_or_else(|| eyre!("--fork {f}: unknown fork name")))
            .transpose()?;
        let mut opts = CaptureOptions::for_url(url, range, self.out.clone());
        opts.overwrite = self.overwrite;
        opts.fork = fork;
        opts.witness = self.witness;
        opts.client.concurrency = self.concurrency.max(1);
        opts.client.timeout = Duration::from_secs(self.timeout.max(1));
        opts.client.retries = self.retries;
        opts.client.backoff = Duration::from_millis(self.retry_delay);
        Ok(opts)
    }

    /// Tells on stderr why the capture stopped, what it wrote and how to go on.
    fn report_failure(&self, e: &CaptureError, written: usize) {
        let out = self.out.display();
        if let CaptureError::Interrupted { written } = e {
            eprintln!(
                "interrupted: {written} block(s) written to {out} (a valid corpus); run the same command again to resume"
            );
            return;
        }
        eprintln!("error: {e}");
        if self.out.join("manifest.json").exists() {
            // only a node that stopped answering is mended by trying again
            let next = match e {
                CaptureError::Rpc(r) if r.gave_up() => {
                    "run the same command again to resume once the node answers"
                }
                _ => "mend the cause above; the same command then resumes it",
            };
            eprintln!(
                "{written} block(s) written to {out} in this run; it is a valid corpus: {next}"
            );
        }
    }

    /// `--verify`: replays the captured blocks, records the outcome in the corpus's provenance
    /// and prints it.
    fn verify_range(&self, s: &CaptureSummary) -> Result<u8> {
        let v = txshadow_run::verify::replay_range(&self.out, s.first..=s.last)?;
        let mut note = format!(
            "verify: {} of {} blocks ({}..={}) reproduce the node's receipts and post-states (txshadow {}, {})",
            v.reproduced,
            v.blocks,
            s.first,
            s.last,
            env!("CARGO_PKG_VERSION"),
            txshadow_run::now_rfc3339()
        );
        if !v.failures.is_empty() {
            let list: Vec<String> = v
                .failures
                .iter()
                .take(20)
                .map(|(n, why)| format!("block {n}: {why}"))
                .collect();
            note.push_str(&format!("; differing: {}", list.join("; ")));
        }
        record_note(&self.out, note)?;
        println!(
            "verify: {}/{} blocks reproduce the node's receipts and post-states",
            v.reproduced, v.blocks
        );
        for (n, why) in v.failures.iter().take(20) {
            println!("  block {n}: {why}");
        }
        Ok(if v.failures.is_empty() {
            crate::EXIT_OK
        } else {
            crate::EXIT_DIFF
        })
    }
}

/// The async runtime of the capture: one worker per core, 2 to 8.
fn runtime() -> Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .wrap_err("start the async runtime")
}

/// Shows a capture event on the progress bar and counts the blocks written.
fn show_event(bar: &ProgressBar, written: &AtomicUsize, e: CaptureEvent) {
    match e {
        CaptureEvent::Connected {
            chain_id,
            client_version,
        } => bar.set_message(format!(
            "{} chain {chain_id}",
            client_version.unwrap_or_else(|| "node".into())
        )),
        CaptureEvent::Headers { done, total } => {
            bar.set_message(format!("reading headers {done}/{total}"))
        }
        CaptureEvent::Planned { todo, present, .. } => {
            bar.set_length(todo);
            bar.reset_eta();
            bar.set_message(if present > 0 {
                format!("{present} already in the corpus")
            } else {
                String::new()
            });
        }
        CaptureEvent::Block { .. } => {
            written.fetch_add(1, Ordering::Relaxed);
            bar.inc(1);
        }
    }
}

/// The summary line on stdout: blocks, txs, the node, the speed and the requests.
fn print_summary(s: &CaptureSummary, out: &Path) {
    let out = out.display();
    println!(
        "captured {} block(s), {} txs ({}..={}, {} already present) from {} ({}) into {out} in {:.1} s: {:.2} blocks/s; {} requests, {} retries",
        s.captured,
        s.txs,
        s.first,
        s.last,
        s.present,
        s.client_version.as_deref().unwrap_or("node"),
        s.rpc,
        s.seconds,
        s.captured as f64 / s.seconds.max(1e-9),
        s.requests,
        s.retries
    );
}
