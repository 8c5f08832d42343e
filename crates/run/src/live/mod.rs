//! A live block source: the blocks of a node's chain as they come (`txshadow follow`).
//!
//! [`LiveSource`] learns of new heads by polling, or from an `eth_subscribe newHeads`
//! subscription over a WebSocket (with a slow poll as a safety net, and polling alone while
//! the subscription is down), captures each new block into a corpus directory with the capture
//! path (pinned to its hash) and gives it to the run as soon as it is complete. It always asks
//! the node for every block from the last one followed up to the head, so a head announced
//! while a subscription was down is not missed.
//!
//! A block whose parent is not the block given before it is a reorg: the source walks back to
//! the common ancestor, counts the replaced blocks and notes them on the next block, and gives
//! the new branch. A reorg to a shorter chain is seen without waiting for a new block: when the
//! last block followed is no longer the node's block at its height. A node that stops
//! answering is retried with backoff (`txshadow_node_up` reads 0 meanwhile) and never ends the
//! run; a wrong chain or a node without the debug namespace does.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U64};
use serde::Deserialize;
use txshadow_capture::rpc::{
    BlockRange, CaptureError, CaptureOptions, ClientConfig, RpcError, RpcUrl, capture, detect_chain,
};
use txshadow_corpus::{ChainConfig, Corpus, CorpusWriter};
use txshadow_replay::Codes;
use txshadow_report::Metrics;
use txshadow_rpc::{HeadSubscription, Rpc};

use crate::{BlockSource, RunError, SourceBlock, SourcePlan};

mod connect;
use connect::TempDir;

/// Longest wait between two attempts while the node is down.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Block hashes remembered to find the common ancestor of a reorg.
const REORG_MEMORY: usize = 512;
/// Blocks a temporary corpus keeps: a replayed block is not read again, and each capture
/// checks every block file of the corpus, so the corpus must not grow with the run.
const TEMP_KEEP: u64 = 16;
/// While a `newHeads` subscription is open, the head is still polled this often (a node that
/// does not announce a reorg, a subscription silently stuck).
const SUBSCRIBED_POLL: Duration = Duration::from_secs(12);
/// Heads whose first sighting is noted for the verdict latency, at most, per sighting.
const SEEN_SPAN: u64 = 4096;

/// What to follow.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The node's HTTP JSON-RPC endpoint, for every call (credentials are never shown).
    pub url: RpcUrl,
    /// A WebSocket endpoint to subscribe to `newHeads` on (`None`: the head is polled).
    pub ws: Option<RpcUrl>,
    /// The first block (`None`: the head when following starts).
    pub from: Option<u64>,
    /// The chain the node must serve, when given.
    pub chain_id: Option<u64>,
    /// Where captured blocks go (`None`: a temporary corpus removed at the end).
    pub corpus: Option<PathBuf>,
    /// Keep only the last N blocks in the corpus.
    pub keep: Option<u64>,
    /// Stop after this many blocks.
    pub max_blocks: Option<u64>,
    /// How often the head is polled.
    pub poll: Duration,
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

/// A live block source: polls the head, captures each new block into a corpus directory and
/// loads it, following reorgs and waiting out node faults (see [`LiveSource::connect`]).
pub struct LiveSource {
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
    /// The `newHeads` subscription, when following a WebSocket endpoint.
    heads: Option<HeadSubscription>,
    /// The highest head seen so far (blocks up to it have their first sighting noted).
    seen_upto: u64,
    /// The node lacked the last block followed once: a second time is a reorg to a shorter
    /// chain (once may be a load balancer's lagging backend).
    shorter_suspect: bool,
    metrics: Arc<Metrics>,
    stop: &'static AtomicBool,
    /// The temporary corpus, removed when the source is dropped.
    _temp: Option<TempDir>,
    /// The node's client version, when it says.
    client_version: Option<String>,
}

impl LiveSource {
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

    /// Notes that the node's head was `head` at `at`: the blocks up to it not seen before were
    /// first seen then (for the verdict latency).
    fn saw_head(&mut self, head: u64, at: Instant) {
        if head <= self.seen_upto {
            return;
        }
        for k in (self.seen_upto + 1).max(head.saturating_sub(SEEN_SPAN))..=head {
            self.metrics.head_seen(k, at);
        }
        self.seen_upto = head;
    }

    /// Waits for a new head: announced by the subscription while it is open (polled every
    /// [`SUBSCRIBED_POLL`] all the same), else for one poll interval. Returns early when the
    /// subscription drops (poll now) or comes back (catch up now on what it missed).
    fn wait_for_head(&mut self) {
        let Some(sub) = self.heads.as_mut() else {
            return self.sleep(self.poll);
        };
        let live = sub.is_live();
        let wait = if live {
            self.poll.max(SUBSCRIBED_POLL)
        } else {
            self.poll
        };
        let until = Instant::now() + wait;
        let mut announced = None;
        while announced.is_none() && !self.stop.load(Ordering::Relaxed) && sub.is_live() == live {
            let now = Instant::now();
            if now >= until {
                break;
            }
            let slice = (until - now).min(Duration::from_millis(100));
            if live {
                announced = self.rt.block_on(sub.next(slice));
            } else {
                std::thread::sleep(slice);
            }
        }
        if let Some(h) = announced {
            self.saw_head(h.number, h.seen);
        }
    }

    /// With nothing new at the head: whether the last block followed is still the node's
    /// block at its height. `true` when a reorg replaced it (walked back already).
    fn reorged_shorter(&mut self) -> Result<bool, Fault> {
        let last = self.next - 1;
        let Some(ours) = self.followed.get(&last).copied() else {
            return Ok(false);
        };
        match self.header(last)?.map(|h| h.hash) {
            Some(theirs) if theirs == ours => {
                self.shorter_suspect = false;
                Ok(false)
            }
            // the node has no block at that height any more: sure the second time
            None if !self.shorter_suspect => {
                self.shorter_suspect = true;
                Ok(false)
            }
            _ => {
                self.shorter_suspect = false;
                self.reorg(self.next)?;
                Ok(true)
            }
        }
    }

    fn step(&mut self) -> Result<Step, Fault> {
        let head = self.head()?;
        self.node_back();
        self.metrics.set_head(head);
        self.saw_head(head, Instant::now());
        if head < self.next {
            if self.reorged_shorter()? {
                return Ok(Step::Again);
            }
            return Ok(Step::Wait);
        }
        self.shorter_suspect = false;
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
            let store = corpus.code_reader()?.on_this_thread().load([&block])?;
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

impl BlockSource for LiveSource {
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
                Ok(Step::Wait) => self.wait_for_head(),
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
