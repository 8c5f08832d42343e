//! `txshadow follow`: live shadow mode. Follows a node's head, captures each new block into a
//! corpus directory and replays it at once, with the run directory kept current and Prometheus
//! metrics served over HTTP.

use std::{net::TcpListener, path::PathBuf, sync::Arc, time::Duration};

use clap::Args;
use eyre::{Result, WrapErr, bail, eyre};
use txshadow_capture::rpc::RpcUrl;
use txshadow_report::{Metrics, MetricsSink, RunStatus};
use txshadow_run::{LiveOptions, LiveSource, Rotate, RunEvent, RunHooks, RunOutcome};

use super::{
    capture::SecretUrl,
    replay::{RunArgs, build_info, print_outcome},
};

/// Follow a node's head and replay every new block as soon as it is captured (live shadow
/// mode).
///
/// Each new block is captured into a corpus directory and replayed against the chain's record
/// (or under a candidate), with the run directory kept current (report.json and summary.md
/// rewritten, results.csv appended) and Prometheus metrics served on `--metrics-addr`. A node
/// that stops answering is retried with backoff until it is back. How heads are found, reorgs,
/// stopping and `--rotate`: see the end of `--help`.
#[derive(Debug, Args)]
#[command(after_long_help = FOLLOW_HELP)]
pub struct FollowArgs {
    /// JSON-RPC endpoint of a node with the debug namespace: `http(s)://` (the head is
    /// polled) or `ws(s)://` (new heads are subscribed to; calls go to the same address over
    /// HTTP). Read from `TXSHADOW_RPC_URL`, else `ETH_RPC_URL`, when not given.
    #[arg(
        long,
        env = "TXSHADOW_RPC_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub rpc_url: Option<SecretUrl>,
    /// Sides, mode, criteria and reports.
    #[command(flatten)]
    pub run: RunArgs,
    /// First block: `latest` (the head when follow starts) or a block number.
    #[arg(long, default_value = "latest", value_name = "latest|N")]
    pub from: String,
    /// Stop after this many blocks replayed.
    #[arg(long, value_name = "N")]
    pub max_blocks: Option<u64>,
    /// Subscribe to `newHeads` on this WebSocket endpoint (`ws://` or `wss://`) while calls go
    /// to `--rpc-url` (a node that serves WebSocket on a port of its own).
    #[arg(long, value_name = "URL")]
    pub ws_url: Option<SecretUrl>,
    /// How often the node's head is polled: seconds, or with a unit (`500ms`, `2s`). With a
    /// subscription open, the head is still polled every 12 s (or this, if longer).
    #[arg(long, default_value = "1s", value_parser = txshadow_run::parse_duration, value_name = "DURATION")]
    pub poll_interval: Duration,
    /// Keep the captured blocks in this corpus directory (default: a temporary directory
    /// removed at the end).
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Keep only the last N blocks in the corpus directory (a temporary corpus keeps 16).
    #[arg(long, value_name = "N")]
    pub keep: Option<u64>,
    /// Serve `/metrics` (Prometheus text format) and `/healthz` over plain HTTP on this
    /// address (e.g. `127.0.0.1:9464`; port 0 picks a free one, printed on stderr).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// Also write the metrics to this file at the end (atomically).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// The chain id the node must serve (a node of another chain is an error).
    #[arg(long)]
    pub chain_id: Option<u64>,
    /// Cut the run into parts, each a complete run directory under `<out-dir>/<run-id>/`:
    /// every N blocks, or `day` (a new part at each UTC day of the blocks' timestamps).
    #[arg(long, value_name = "N|day")]
    pub rotate: Option<Rotate>,
}

/// The end of `txshadow follow --help`: how heads are found, reorgs, stopping, rotation.
const FOLLOW_HELP: &str = "\
New heads: with an http(s):// --rpc-url the head is polled every --poll-interval. With a ws(s)://
URL (or --ws-url), the node announces them over an `eth_subscribe newHeads` subscription and
calls go to the same address over HTTP; a dropped subscription is reconnected with backoff while
the head is polled. Every block from the last one followed up to the head is fetched, so none
is missed.

Reorgs: a block whose parent is not the block followed before it (or, to a shorter chain, a last
block that left the node's chain) walks back to the common ancestor; the replaced blocks are
counted in txshadow_reorged_blocks_total and noted, the new branch is replayed.

Stopping: SIGINT or SIGTERM finishes the blocks in flight and writes every report (status
`interrupted`, exit 0, or 1 when a --fail-on criterion was hit); --max-blocks N ends it
`complete`.

Rotation: --rotate N starts a new report every N blocks, --rotate day at each UTC day of the
blocks' timestamps. Each part is a complete run directory (report.json, results.csv,
summary.md, junit.xml, index.html) under <out-dir>/<run-id>/: part-0001, part-0002, ... (by
day: part-0001-2025-05-04). The metrics count across parts.

Examples:
  txshadow follow --rpc-url ws://127.0.0.1:8545 --metrics-addr 127.0.0.1:9464
  txshadow follow --rpc-url https://node:8545 --ws-url wss://node:8546 --rotate day";

impl FollowArgs {
    /// The node's HTTP endpoint for calls, and the WebSocket endpoint to subscribe on.
    fn endpoints(&self) -> Result<(RpcUrl, Option<RpcUrl>)> {
        let raw = match &self.rpc_url {
            Some(u) => u.0.clone(),
            None => std::env::var("ETH_RPC_URL").map_err(|_| {
                eyre!("no node given: pass --rpc-url URL, or set TXSHADOW_RPC_URL or ETH_RPC_URL")
            })?,
        };
        let url = RpcUrl::parse_any(&raw).map_err(|e| eyre!(e))?;
        let ws = match &self.ws_url {
            Some(w) => {
                let w = RpcUrl::parse_any(&w.0)
                    .map_err(|e| eyre!(e.replace("--rpc-url", "--ws-url")))?;
                if !w.is_ws() {
                    bail!("--ws-url {}: give a ws:// or wss:// URL", w.display());
                }
                Some(w)
            }
            None => url.is_ws().then(|| url.clone()),
        };
        Ok((url.http_twin(), ws))
    }

    /// Follows until stopped or `--max-blocks`; returns the exit code.
    pub fn run(self, quiet: bool) -> Result<u8> {
        let (url, ws) = self.endpoints()?;
        let from: Option<u64> = match self.from.as_str() {
            "latest" => None,
            n => Some(
                n.parse()
                    .map_err(|_| eyre!("--from {n}: expected `latest` or a block number"))?,
            ),
        };
        if self.keep == Some(0) {
            bail!("--keep 0 would keep nothing: give at least 1, or leave it out");
        }
        let mut cfg = self.run.config(None)?;
        if cfg.run_id.is_none() {
            cfg.run_id = Some(txshadow_run::default_run_id("follow"));
        }
        crate::stop_on_signals();
        let metrics = Arc::new(Metrics::new(build_info(), true));
        if let Some(addr) = &self.metrics_addr {
            let listener =
                TcpListener::bind(addr).wrap_err_with(|| format!("--metrics-addr {addr}"))?;
            let bound = listener.local_addr()?;
            eprintln!("metrics: http://{bound}/metrics");
            txshadow_report::serve_metrics(listener, metrics.clone());
        }
        let opts = LiveOptions {
            url,
            ws,
            from,
            chain_id: self.chain_id,
            corpus: self.corpus.clone(),
            keep: self.keep,
            max_blocks: self.max_blocks,
            poll: self.poll_interval,
        };
        let Some(mut source) = LiveSource::connect(&opts, metrics.clone(), &crate::STOP)? else {
            eprintln!("stopped before the node answered");
            return Ok(crate::EXIT_OK);
        };
        let (first, chain_id, dir) = (
            source.first_block(),
            source.chain_id(),
            source.corpus_dir().to_path_buf(),
        );
        if !quiet {
            eprintln!(
                "following chain {chain_id} from block {first} ({}); Ctrl-C stops",
                source.client_version().unwrap_or("node")
            );
        }
        let events = |e: &RunEvent| match e {
            RunEvent::Started { dir, .. } => {
                if !quiet {
                    eprintln!("reports: {}", dir.display());
                }
            }
            RunEvent::Block {
                number,
                txs,
                differs,
                ..
            } => {
                if !quiet {
                    eprintln!(
                        "block {number}: {txs} txs{}",
                        if *differs { ", DIFFERS" } else { "" }
                    );
                }
            }
        };
        let hooks = |part: usize| {
            if part > 1 {
                metrics.next_part();
            }
            RunHooks {
                events: Some(&events),
                sinks: vec![Box::new(MetricsSink::new(
                    metrics.clone(),
                    self.metrics_file.clone(),
                ))],
                stop: Some(&crate::STOP),
            }
        };
        let exit = match self.rotate {
            None => {
                let out = txshadow_run::run(&mut source, &cfg, hooks(1));
                drop(source);
                let out = out?;
                finished(&out);
                print_outcome(&out);
                out.exit
            }
            Some(rotate) => {
                let out = txshadow_run::run_rotated(&mut source, &cfg, rotate, hooks);
                drop(source);
                let out = out?;
                if let Some(last) = out.parts.last() {
                    finished(last);
                }
                for part in &out.parts {
                    print_outcome(part);
                }
                out.exit
            }
        };
        if self.corpus.is_some() {
            eprintln!("corpus: {}", dir.display());
        }
        Ok(exit)
    }
}

/// Says so when the run (or its last part) was stopped.
fn finished(out: &RunOutcome) {
    if out.report.run.status == RunStatus::Interrupted {
        eprintln!(
            "stopped: {} blocks replayed; the report is complete up to the last one",
            out.report.counts.blocks
        );
    }
}
