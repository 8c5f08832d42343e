//! `txshadow follow`: live shadow mode. Follows a node's head, captures each new block into a
//! corpus directory and replays it at once, with the run directory kept current and Prometheus
//! metrics served over HTTP.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U64};
use clap::Args;
use eyre::{Result, WrapErr, bail, eyre};
use serde::Deserialize;
use txshadow_capture::rpc::{
    BlockRange, CaptureError, CaptureOptions, ClientConfig, RpcError, RpcUrl, capture, detect_chain,
};
use txshadow_corpus::{ChainConfig, Corpus, CorpusWriter};
use txshadow_replay::Codes;
use txshadow_report::{Metrics, MetricsSink, RunStatus};
use txshadow_rpc::Rpc;
use txshadow_run::{BlockSource, RunError, RunEvent, RunHooks, SourceBlock, SourcePlan};

use super::{
    capture::SecretUrl,
    replay::{RunArgs, build_info, print_outcome},
};

/// Longest wait between two attempts while the node is down.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Block hashes remembered to find the common ancestor of a reorg.
const REORG_MEMORY: usize = 512;
/// Blocks a temporary corpus keeps: a replayed block is not read again, and each capture
/// checks every block file of the corpus, so the corpus must not grow with the run.
const TEMP_KEEP: u64 = 16;

/// Follow a node's head and replay every new block as soon as it is captured (live shadow
/// mode).
///
/// Each new block is captured into a corpus directory and replayed against the chain's record
/// (or under a candidate), with the run directory kept current (report.json and summary.md
/// rewritten, results.csv appended) and Prometheus metrics served on `--metrics-addr`. A reorg
/// is detected by parent hash: the replaced blocks are counted and noted, the new branch is
/// replayed. A node that stops answering is retried with backoff until it is back. SIGINT or
/// SIGTERM stops it: the blocks in flight finish, every report is written, and the run ends
/// with status `interrupted` (exit 0, or 1 when a launch criterion failed). With
/// `--max-blocks`, it ends `complete` after that many blocks.
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// JSON-RPC endpoint of a node with the debug namespace. Read from `TXSHADOW_RPC_URL`, else
    /// `ETH_RPC_URL`, when not given.
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
    /// How often the node's head is polled: seconds, or with a unit (`500ms`, `2s`).
    #[arg(long, default_value = "1s", value_parser = parse_interval, value_name = "DURATION")]
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
}

/// `500ms`, `2s`, `1.5` (seconds).
fn parse_interval(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s}: expected seconds (`1`, `0.5`) or `500ms` / `2s`");
    let secs: f64 = if let Some(ms) = s.strip_suffix("ms") {
        ms.trim().parse::<f64>().map_err(|_| bad())? / 1000.0
    } else {
        s.strip_suffix('s')
            .unwrap_or(s)
            .trim()
            .parse()
            .map_err(|_| bad())?
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The fields of a header follow needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    hash: B256,
    parent_hash: B256,
}

/// Why a step of the follower did not give a block.
enum Fault {
    /// The node is down, slow or refusing for now: retry later.
    Transient(String),
    /// The node answers but the block moved under the capture (a reorg at the head): try
    /// again after a poll interval, the node is up.
    Retry(String),
    /// It will not get better (wrong chain, no debug namespace, a corpus that cannot be
    /// written): the run ends as a harness failure.
    Fatal(RunError),
}

impl From<RpcError> for Fault {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Failed { .. } => Self::Transient(e.to_string()),
            e => Self::Fatal(RunError::Input(e.to_string())),
        }
    }
}

impl From<CaptureError> for Fault {
    fn from(e: CaptureError) -> Self {
        match e {
            CaptureError::Rpc(e) => e.into(),
            // the block changed while captured (a reorg at the head), or is not there yet
            CaptureError::Node { .. } | CaptureError::Interrupted { .. } => {
                Self::Retry(e.to_string())
            }
            e => Self::Fatal(RunError::Input(e.to_string())),
        }
    }
}

enum Step {
    Block(Box<SourceBlock>),
    /// Nothing new: wait for the next poll.
    Wait,
    /// Try again at once (after a reorg).
    Again,
}

/// A live block source: polls the head, captures each new block into `dir` and loads it.
struct Follower {
    rt: tokio::runtime::Runtime,
    rpc: Rpc,
    url: RpcUrl,
    dir: PathBuf,
    chain: ChainConfig,
    describe: String,
    next: u64,
    /// Hashes of the blocks given, by number (the last [`REORG_MEMORY`]).
    followed: BTreeMap<u64, B256>,
    /// Warnings for the next block given (a reorg).
    notes: Vec<String>,
    given: u64,
    max_blocks: Option<u64>,
    keep: Option<u64>,
    poll: Duration,
    backoff: Duration,
    down_since: Option<Instant>,
    metrics: Arc<Metrics>,
    stop: &'static AtomicBool,
}

impl Follower {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps `d`, waking early on stop.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopped() {
            let now = Instant::now();
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }

    fn head(&self) -> Result<u64, Fault> {
        let h: U64 = self
            .rt
            .block_on(self.rpc.call("eth_blockNumber", (), None))?;
        Ok(h.to::<u64>())
    }

    fn header(&self, n: u64) -> Result<Option<Head>, Fault> {
        Ok(self.rt.block_on(self.rpc.call(
            "eth_getBlockByNumber",
            (U64::from(n), false),
            Some(n),
        ))?)
    }

    fn step(&mut self) -> Result<Step, Fault> {
        let head = self.head()?;
        self.node_back();
        self.metrics.set_head(head);
        if head < self.next {
            return Ok(Step::Wait);
        }
        let n = self.next;
        let Some(h) = self.header(n)? else {
            return Ok(Step::Wait);
        };
        if let Some(prev) = n.checked_sub(1).and_then(|p| self.followed.get(&p))
            && *prev != h.parent_hash
        {
            self.reorg(n)?;
            return Ok(Step::Again);
        }
        let t = Instant::now();
        let mut opts = CaptureOptions::for_url(
            self.url.clone(),
            BlockRange::Span { from: n, to: n },
            self.dir.clone(),
        );
        opts.client = ClientConfig {
            concurrency: 4,
            timeout: Duration::from_secs(30),
            retries: 2,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        };
        self.rt.block_on(capture(&opts, &|_| {}))?;
        self.metrics.observe_capture(t.elapsed().as_secs_f64());
        let Some(mut sb) = self.load(&h.hash)? else {
            // the node moved to another block at this height while it was captured
            return Ok(Step::Again);
        };
        sb.notes.append(&mut self.notes);
        self.followed.insert(n, h.hash);
        while self.followed.len() > REORG_MEMORY {
            self.followed.pop_first();
        }
        self.next = n + 1;
        if let Some(k) = self.keep {
            self.prune(self.next.saturating_sub(k))
                .map_err(Fault::Fatal)?;
        }
        Ok(Step::Block(Box::new(sb)))
    }

    /// The block `hash` from the corpus, with its codes (`None` if the corpus lacks it).
    fn load(&self, hash: &B256) -> Result<Option<SourceBlock>, Fault> {
        let load = || -> Result<Option<SourceBlock>, RunError> {
            let corpus = Corpus::open(&self.dir)?;
            let Some(entry) = corpus.manifest().blocks.iter().find(|e| e.hash == *hash) else {
                return Ok(None);
            };
            let block = corpus.load_block(entry)?;
            let store = corpus.code_reader()?.load([&block])?;
            let codes = Codes::from_store(&store, store.hashes());
            Ok(Some(SourceBlock::new(
                block,
                &corpus.manifest().chain,
                codes,
            )))
        };
        load().map_err(Fault::Fatal)
    }

    /// Removes the blocks below `first` from the corpus directory (their codes stay).
    fn prune(&self, first: u64) -> Result<(), RunError> {
        let corpus = Corpus::open(&self.dir)?;
        let old: Vec<PathBuf> = corpus
            .manifest()
            .blocks
            .iter()
            .filter(|e| e.number < first)
            .map(|e| corpus.block_path(e))
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        for p in &old {
            std::fs::remove_file(p)
                .map_err(|e| RunError::Input(format!("{}: {e}", p.display())))?;
        }
        // reopening drops the entries whose file is gone from the index
        let m = corpus.manifest();
        CorpusWriter::create(&self.dir, m.chain.clone(), m.provenance.clone(), false)?;
        Ok(())
    }

    /// A reorg replaced the blocks followed before `n`: walks back to the common ancestor,
    /// counts and notes the replaced blocks, and goes on from the block after the ancestor.
    fn reorg(&mut self, n: u64) -> Result<(), Fault> {
        let mut replaced = vec![];
        let mut k = n - 1;
        while let Some(ours) = self.followed.get(&k).copied() {
            let theirs = self.header(k)?.map(|h| h.hash);
            if theirs == Some(ours) {
                break;
            }
            replaced.push(k);
            if k == 0 {
                break;
            }
            k -= 1;
        }
        let Some(&first) = replaced.last() else {
            return Ok(());
        };
        let last = n - 1;
        let note = format!(
            "reorg: blocks {first}..={last} were replaced by another branch (common ancestor {}); \
             their results above stay, the new branch's blocks are replayed",
            first.saturating_sub(1)
        );
        tracing::warn!("{note}");
        self.notes.push(note);
        self.metrics.add_reorged(replaced.len() as u64);
        self.followed.retain(|b, _| *b < first);
        self.next = first;
        Ok(())
    }

    fn node_back(&mut self) {
        if let Some(t) = self.down_since.take() {
            tracing::warn!(
                "the node answers again after {:.1} s; following from block {}",
                t.elapsed().as_secs_f64(),
                self.next
            );
        }
        self.backoff = self.poll.min(Duration::from_millis(250));
        self.metrics.set_node_up(true);
    }

    fn node_down(&mut self, why: &str) {
        self.metrics.set_node_up(false);
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            tracing::warn!("the node does not answer ({why}); retrying until it does");
        }
        self.sleep(self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

impl BlockSource for Follower {
    fn chain(&self) -> &ChainConfig {
        &self.chain
    }

    fn plan(&self) -> SourcePlan {
        SourcePlan {
            blocks: self.max_blocks.map(|n| n as usize),
            ..Default::default()
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn next_block(&mut self) -> Option<Result<SourceBlock, RunError>> {
        loop {
            if self.stopped() || self.max_blocks.is_some_and(|m| self.given >= m) {
                return None;
            }
            match self.step() {
                Ok(Step::Block(b)) => {
                    self.given += 1;
                    return Some(Ok(*b));
                }
                Ok(Step::Wait) => self.sleep(self.poll),
                Ok(Step::Again) => {}
                Err(Fault::Transient(why)) => self.node_down(&why),
                Err(Fault::Retry(why)) => {
                    tracing::info!("block {}: {why}; trying again", self.next);
                    self.sleep(self.poll);
                }
                Err(Fault::Fatal(e)) => return Some(Err(e)),
            }
        }
    }
}

/// Serves `/metrics` and `/healthz` on `listener` from a thread, one request per connection.
fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let _ = answer(conn, &metrics);
        }
    });
}

fn answer(mut conn: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // the headers are read and ignored
    let mut h = String::new();
    while reader.read_line(&mut h)? > 2 {
        h.clear();
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("GET" | "HEAD", "/healthz") => ("200 OK", "text/plain; charset=utf-8", "ok\n".into()),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics or /healthz\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "method not allowed\n".into(),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        out.push_str(&body);
    }
    conn.write_all(out.as_bytes())?;
    conn.flush()
}

/// A temporary corpus directory, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl FollowArgs {
    /// Follows until stopped or `--max-blocks`; returns the exit code.
    pub fn run(self, quiet: bool) -> Result<u8> {
        let raw = match &self.rpc_url {
            Some(u) => u.0.clone(),
            None => std::env::var("ETH_RPC_URL").map_err(|_| {
                eyre!("no node given: pass --rpc-url URL, or set TXSHADOW_RPC_URL or ETH_RPC_URL")
            })?,
        };
        let url = RpcUrl::parse(&raw).map_err(|e| eyre!(e))?;
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
            serve(listener, metrics.clone());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .wrap_err("start the async runtime")?;
        let rpc = Rpc::new(
            url.clone(),
            ClientConfig {
                concurrency: 4,
                timeout: Duration::from_secs(10),
                retries: 0,
                backoff: Duration::from_millis(250),
                max_backoff: Duration::from_secs(2),
            },
        )
        .map_err(|e| eyre!(e))?;

        // the chain, once the node answers (a node down at the start is waited for)
        let mut backoff = Duration::from_millis(250);
        let mut said = false;
        let detected = loop {
            if crate::STOP.load(Ordering::Relaxed) {
                eprintln!("stopped before the node answered");
                return Ok(crate::EXIT_OK);
            }
            match rt.block_on(detect_chain(&rpc, None)) {
                Ok(d) => break d,
                Err(e) => match Fault::from(e) {
                    Fault::Fatal(e) => bail!("{e}"),
                    Fault::Transient(why) | Fault::Retry(why) => {
                        metrics.set_node_up(false);
                        if !said {
                            tracing::warn!(
                                "the node does not answer ({why}); retrying until it does"
                            );
                            said = true;
                        }
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                },
            }
        };
        metrics.set_node_up(true);
        let chain_id = detected.config.chain_id;
        if let Some(want) = self.chain_id
            && want != chain_id
        {
            bail!("the node serves chain {chain_id}, not chain {want} (--chain-id)");
        }
        let (dir, _temp) = match &self.corpus {
            Some(d) => {
                if d.join("manifest.json").exists() {
                    let c = Corpus::open(d)?;
                    let have = c.manifest().chain.chain_id;
                    if have != chain_id {
                        bail!(
                            "{}: the corpus is of chain {have}, the node serves chain {chain_id}",
                            d.display()
                        );
                    }
                }
                (d.clone(), None)
            }
            None => {
                let d = std::env::temp_dir().join(format!(
                    "txshadow-follow-{}-{}",
                    std::process::id(),
                    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
                ));
                (d.clone(), Some(TempDir(d)))
            }
        };
        let head = loop {
            let h: Result<U64, RpcError> = rt.block_on(rpc.call("eth_blockNumber", (), None));
            match h {
                Ok(h) => break h.to::<u64>(),
                Err(e) => {
                    if crate::STOP.load(Ordering::Relaxed) {
                        return Ok(crate::EXIT_OK);
                    }
                    metrics.set_node_up(false);
                    tracing::warn!("eth_blockNumber: {e}; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        };
        // block 0 has no parent to replay on
        let first = from.unwrap_or(head).max(1);
        // capture needs the debug namespace: a node without it fails now, not at the first
        // block with txs (an empty block needs no trace)
        let probe: Result<serde_json::Value, RpcError> = rt.block_on(rpc.call(
            "debug_traceBlockByNumber",
            (
                U64::from(first.min(head)),
                serde_json::json!({ "tracer": "prestateTracer" }),
            ),
            None,
        ));
        if let Err(e @ RpcError::MethodUnavailable { .. }) = probe {
            bail!("{e}");
        }
        metrics.set_start(first - 1);
        metrics.set_head(head);
        let describe = format!("follow {}", url.display());
        let mut source = Follower {
            rt,
            rpc,
            url,
            dir: dir.clone(),
            chain: detected.config.clone(),
            describe,
            next: first,
            followed: BTreeMap::new(),
            notes: vec![],
            given: 0,
            max_blocks: self.max_blocks,
            keep: self.keep.or(self.corpus.is_none().then_some(TEMP_KEEP)),
            poll: self.poll_interval,
            backoff: Duration::from_millis(250),
            down_since: None,
            metrics: metrics.clone(),
            stop: &crate::STOP,
        };
        if !quiet {
            eprintln!(
                "following chain {chain_id} from block {first} ({}); Ctrl-C stops",
                detected.client_version.as_deref().unwrap_or("node")
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
        let hooks = RunHooks {
            events: Some(&events),
            sinks: vec![Box::new(MetricsSink::new(
                metrics,
                self.metrics_file.clone(),
            ))],
            stop: Some(&crate::STOP),
        };
        let out = txshadow_run::run(&mut source, &cfg, hooks);
        drop(source);
        let out = out?;
        if out.report.run.status == RunStatus::Interrupted {
            eprintln!(
                "stopped: {} blocks replayed; the report is complete up to the last one",
                out.report.counts.blocks
            );
        }
        if self.corpus.is_some() {
            eprintln!("corpus: {}", dir.display());
        }
        print_outcome(&out);
        Ok(out.exit)
    }
}
