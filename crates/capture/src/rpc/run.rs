//! The capture loop: plan from the headers, skip complete blocks, fetch the rest with bounded
//! concurrency, write each block atomically as soon as it is complete.

use std::{
    collections::{BTreeMap, HashSet},
    fs,
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
    time::Instant,
};

use alloy_hardforks::EthereumHardfork;
use alloy_primitives::{B256, U64, keccak256};
use futures_util::StreamExt;
use serde_json::json;
use tokio::task::JoinSet;
use txshadow_corpus::{ChainConfig, CorpusWriter, Provenance};

use txshadow_rpc::{ClientConfig, Rpc, RpcUrl};

use super::{
    BlockRange, CaptureError,
    block::fetch_block,
    chain::{DetectedChain, detect_chain},
    ctx::{BlockCtx, Fetched, HeaderInfo},
};

/// How many ancestors BLOCKHASH can read.
const ANCESTORS: u64 = 256;
/// Headers asked for in one batch.
const HEADER_BATCH: usize = 64;
/// How often the manifest is rewritten while blocks are written.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What to capture and how.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// The node.
    pub url: RpcUrl,
    /// The blocks.
    pub range: BlockRange,
    /// The corpus directory (created or resumed).
    pub out: PathBuf,
    /// Concurrency, timeouts and retries.
    pub client: ClientConfig,
    /// Capture again the blocks already in the corpus (and discard its index).
    pub overwrite: bool,
    /// Force a fork schedule: every fork up to this one active from genesis.
    pub fork: Option<EthereumHardfork>,
    /// Blocks within this distance of the head may be reorganised while captured: their hash
    /// is checked again after their traces.
    pub reorg_depth: u64,
    /// Notified to stop early: the capture indexes what it wrote and returns
    /// [`CaptureError::Interrupted`].
    pub stop: Option<Arc<tokio::sync::Notify>>,
    /// Fetch each block's state witness (`debug_executionWitness`, else `eth_getProof`), so a
    /// replay checks the pre-state and computes the exact post-block state root.
    pub witness: bool,
}

impl CaptureOptions {
    /// Options with the defaults for everything but the node, the blocks and the directory.
    pub fn new(url: &str, range: BlockRange, out: PathBuf) -> Result<Self, CaptureError> {
        Ok(Self::for_url(
            RpcUrl::parse(url).map_err(CaptureError::Input)?,
            range,
            out,
        ))
    }

    /// The same, with a parsed URL.
    pub fn for_url(url: RpcUrl, range: BlockRange, out: PathBuf) -> Self {
        Self {
            url,
            range,
            out,
            client: ClientConfig::default(),
            overwrite: false,
            fork: None,
            reorg_depth: 64,
            stop: None,
            witness: false,
        }
    }
}

/// Progress of a capture, for a progress bar.
#[derive(Debug, Clone)]
pub enum CaptureEvent {
    /// Connected: the node's chain and client.
    Connected {
        /// Chain id.
        chain_id: u64,
        /// `web3_clientVersion`.
        client_version: Option<String>,
    },
    /// Headers read so far (the plan needs every header of the range and its ancestors).
    Headers {
        /// Read.
        done: u64,
        /// To read.
        total: u64,
    },
    /// The plan: blocks to fetch and blocks already complete in the corpus.
    Planned {
        /// First block.
        first: u64,
        /// Last block.
        last: u64,
        /// Blocks to fetch.
        todo: u64,
        /// Blocks already complete (skipped).
        present: u64,
    },
    /// A block was written.
    Block {
        /// Its number.
        number: u64,
        /// Its transactions.
        txs: usize,
    },
}

/// What a capture did.
#[derive(Debug, Clone)]
pub struct CaptureSummary {
    /// First block of the range.
    pub first: u64,
    /// Last block of the range.
    pub last: u64,
    /// Blocks fetched and written.
    pub captured: usize,
    /// Transactions in them.
    pub txs: usize,
    /// Blocks skipped because the corpus already had them.
    pub present: usize,
    /// Requests sent (batches count once; retries included).
    pub requests: u64,
    /// Retries after transient faults.
    pub retries: u64,
    /// Seconds spent, from connecting to the last write.
    pub seconds: f64,
    /// Seconds spent fetching and writing the blocks (after the plan).
    pub fetch_seconds: f64,
    /// The chain.
    pub chain: ChainConfig,
    /// The node's client version.
    pub client_version: Option<String>,
    /// The node, credentials removed.
    pub rpc: String,
}

/// Removes temp files a killed writer left (`.<name>.tmp-<pid>` of a process that is gone) and
/// code files whose content does not hash to their name: a resumed capture trusts no partial
/// file. Returns whether a code file was removed.
fn clean_leftovers(dir: &Path) -> Result<bool, CaptureError> {
    let mut removed_code = false;
    let me = std::process::id();
    let io = |p: &Path, source| {
        CaptureError::Corpus(txshadow_corpus::CorpusError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    for d in [dir.to_path_buf(), dir.join("blocks"), dir.join("codes")] {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some((_, pid)) = name.rsplit_once(".tmp-") {
                if name.starts_with('.') {
                    let pid: u32 = pid.parse().unwrap_or(0);
                    let alive = pid == me
                        || (Path::new("/proc/self").exists()
                            && Path::new(&format!("/proc/{pid}")).exists());
                    if !alive {
                        fs::remove_file(e.path()).map_err(|s| io(&e.path(), s))?;
                    }
                }
                continue;
            }
            if d.ends_with("codes")
                && let Some(h) = name
                    .strip_suffix(".bin")
                    .and_then(|h| h.parse::<B256>().ok())
            {
                let bytes = fs::read(e.path()).map_err(|s| io(&e.path(), s))?;
                if keccak256(&bytes) != h {
                    tracing::warn!(
                        "{}: content does not match its hash; capturing it again",
                        e.path().display()
                    );
                    fs::remove_file(e.path()).map_err(|s| io(&e.path(), s))?;
                    removed_code = true;
                }
            }
        }
    }
    Ok(removed_code)
}

/// Whether the corpus's block `hash` is complete: its file is intact (the writer checked) and
/// every code it refers to is present (checked only when a damaged code file was removed).
fn complete(writer: &CorpusWriter, dir: &Path, hash: &B256, check_codes: bool) -> bool {
    if !writer.has_block(hash) {
        return false;
    }
    if !check_codes {
        return true;
    }
    let Ok(corpus) = txshadow_corpus::Corpus::open(dir) else {
        return false;
    };
    corpus
        .manifest()
        .blocks
        .iter()
        .find(|e| e.hash == *hash)
        .and_then(|e| corpus.load_block(e).ok())
        .is_some_and(|b| b.code_hashes().all(|h| writer.has_code(&h)))
}

/// The blocks of the corpus in `dir` that carry no state witness.
fn blocks_without_witness(dir: &Path) -> HashSet<B256> {
    let Ok(corpus) = txshadow_corpus::Corpus::open(dir) else {
        return HashSet::new();
    };
    corpus
        .manifest()
        .blocks
        .iter()
        .filter(|e| corpus.load_block(e).map_or(true, |b| b.witness.is_none()))
        .map(|e| e.hash)
        .collect()
}

async fn read_headers(
    rpc: &Rpc,
    lo: u64,
    hi: u64,
    progress: &(dyn Fn(CaptureEvent) + Sync),
) -> Result<BTreeMap<u64, HeaderInfo>, CaptureError> {
    let total = hi - lo + 1;
    let chunks: Vec<(u64, u64)> = (lo..=hi)
        .step_by(HEADER_BATCH)
        .map(|a| (a, (a + HEADER_BATCH as u64 - 1).min(hi)))
        .collect();
    let concurrency = rpc.config().concurrency.max(1);
    let mut stream = futures_util::stream::iter(chunks)
        .map(|(a, b)| async move {
            let calls: Vec<_> = (a..=b)
                .map(|n| ("eth_getBlockByNumber", json!([U64::from(n), false])))
                .collect();
            let values = rpc.call_many(&calls, None).await?;
            (a..=b)
                .zip(values)
                .map(|(n, v)| {
                    if v.is_null() {
                        return Err(CaptureError::Node {
                            block: n,
                            reason: "the node has no such block".into(),
                        });
                    }
                    let h: HeaderInfo =
                        serde_json::from_value(v).map_err(|e| CaptureError::Node {
                            block: n,
                            reason: format!("eth_getBlockByNumber: unexpected header: {e}"),
                        })?;
                    if h.number() != n {
                        return Err(CaptureError::Node {
                            block: n,
                            reason: format!("eth_getBlockByNumber returned block {}", h.number()),
                        });
                    }
                    Ok((n, h))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .buffer_unordered(concurrency);
    let mut out = BTreeMap::new();
    while let Some(chunk) = stream.next().await {
        out.extend(chunk?);
        progress(CaptureEvent::Headers {
            done: out.len() as u64,
            total,
        });
    }
    Ok(out)
}

/// The hashes of the ancestors of `info` that BLOCKHASH may read, following parent hashes (so
/// they belong to this block's chain even if the node reorganised since the headers were read).
async fn ancestors(
    rpc: &Rpc,
    headers: &BTreeMap<u64, HeaderInfo>,
    info: &HeaderInfo,
) -> Result<BTreeMap<u64, B256>, CaptureError> {
    let n = info.number();
    let mut out = BTreeMap::new();
    let mut h = info.parent_hash;
    let stop = n.saturating_sub(ANCESTORS);
    let mut k = n;
    while k > stop {
        k -= 1;
        out.insert(k, h);
        if k == stop {
            break;
        }
        h = match headers.get(&k) {
            Some(x) if x.hash == h => x.parent_hash,
            _ => {
                let x: Option<HeaderInfo> =
                    rpc.call("eth_getBlockByHash", (h, false), Some(n)).await?;
                x.ok_or_else(|| CaptureError::Node {
                    block: n,
                    reason: format!("ancestor {k} ({h}) not found"),
                })?
                .parent_hash
            }
        };
    }
    Ok(out)
}

/// Captures `opts.range` into `opts.out`. `progress` sees every step (called from this task).
///
/// On error, the corpus holds every block written before it and is valid; running the same
/// capture again resumes.
pub async fn capture(
    opts: &CaptureOptions,
    progress: &(dyn Fn(CaptureEvent) + Sync),
) -> Result<CaptureSummary, CaptureError> {
    let started = Instant::now();
    let rpc = Rpc::new(opts.url.clone(), opts.client.clone())?;
    let detected = detect_chain(&rpc, opts.fork).await?;
    progress(CaptureEvent::Connected {
        chain_id: detected.config.chain_id,
        client_version: detected.client_version.clone(),
    });
    let head: U64 = rpc.call("eth_blockNumber", (), None).await?;
    let head = head.to::<u64>();
    let (first, last) = opts.range.resolve(head)?;

    let check_codes = clean_leftovers(&opts.out)?;
    let mut writer = CorpusWriter::create(
        &opts.out,
        detected.config.clone(),
        provenance(opts, &detected),
        opts.overwrite,
    )?;

    let lo = first.saturating_sub(ANCESTORS);
    let headers = read_headers(&rpc, lo, last, progress).await?;
    let todo = plan(opts, &writer, &headers, first..=last, check_codes);
    let present = (last - first + 1) as usize - todo.len();
    progress(CaptureEvent::Planned {
        first,
        last,
        todo: todo.len() as u64,
        present: present as u64,
    });

    let fetch_started = Instant::now();
    let ctx = BlockCtx {
        rpc: rpc.clone(),
        chain: detected.config.clone(),
        block_receipts: AtomicBool::new(true),
        final_below: head.saturating_sub(opts.reorg_depth),
        witness: opts.witness,
        execution_witness: AtomicBool::new(true),
    };
    let fetches = Fetches::new(ctx, headers, todo, opts.client.concurrency);
    let (captured, txs) = write_blocks(opts, fetches, &mut writer, progress).await?;
    writer.finish()?;
    let stats = rpc.stats();
    Ok(CaptureSummary {
        first,
        last,
        captured,
        txs,
        present,
        requests: stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        retries: stats.retries.load(std::sync::atomic::Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        fetch_seconds: fetch_started.elapsed().as_secs_f64(),
        chain: detected.config,
        client_version: detected.client_version,
        rpc: opts.url.display().to_string(),
    })
}

/// Where the corpus comes from and how its parts were read.
fn provenance(opts: &CaptureOptions, detected: &DetectedChain) -> Provenance {
    let mut provenance = Provenance {
        source: "capture".into(),
        client_version: detected.client_version.clone(),
        rpc: Some(opts.url.display().to_string()),
        inputs: vec![],
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        notes: vec![
            detected.schedule_source.clone(),
            "pre-state: prestate tracer, first-seen value per account and slot; per-tx \
             post-states: its diff mode; accounts touched outside txs read at the parent block"
                .into(),
        ],
    };
    if opts.witness {
        provenance.notes.push(
            "witness: debug_executionWitness where served, else eth_getProof at the parent \
             block of every pre-state account and slot (and at the block of the keys it deletes)"
                .into(),
        );
    }
    provenance
}

/// The blocks of `range` to fetch: those the corpus does not have complete (and, with
/// `--witness`, those captured without a witness).
fn plan(
    opts: &CaptureOptions,
    writer: &CorpusWriter,
    headers: &BTreeMap<u64, HeaderInfo>,
    range: std::ops::RangeInclusive<u64>,
    check_codes: bool,
) -> Vec<u64> {
    // with --witness, a block captured without one is captured again
    let without_witness = if opts.witness {
        blocks_without_witness(&opts.out)
    } else {
        HashSet::new()
    };
    range
        .filter(|n| {
            !complete(writer, &opts.out, &headers[n].hash, check_codes)
                || without_witness.contains(&headers[n].hash)
        })
        .collect()
}

/// The block fetches in flight, at most `concurrency` of them, and the blocks still queued.
struct Fetches {
    ctx: Arc<BlockCtx>,
    headers: Arc<BTreeMap<u64, HeaderInfo>>,
    queue: std::vec::IntoIter<u64>,
    tasks: JoinSet<Result<Fetched, CaptureError>>,
    concurrency: usize,
}

impl Fetches {
    /// Fetches of the `todo` blocks, none started yet.
    fn new(
        ctx: BlockCtx,
        headers: BTreeMap<u64, HeaderInfo>,
        todo: Vec<u64>,
        concurrency: usize,
    ) -> Self {
        Self {
            ctx: Arc::new(ctx),
            headers: Arc::new(headers),
            queue: todo.into_iter(),
            tasks: JoinSet::new(),
            concurrency: concurrency.max(1),
        }
    }

    /// Starts queued fetches until `concurrency` are in flight.
    fn refill(&mut self) {
        while self.tasks.len() < self.concurrency {
            let Some(n) = self.queue.next() else { break };
            let ctx = self.ctx.clone();
            let headers = self.headers.clone();
            self.tasks.spawn(async move {
                let info = &headers[&n];
                let anc = ancestors(&ctx.rpc, &headers, info).await?;
                fetch_block(&ctx, info, anc).await
            });
        }
    }
}

/// Runs the fetches and writes each block as it completes; returns the blocks and txs written.
/// On a stop or an error, the manifest indexes what was written before it.
async fn write_blocks(
    opts: &CaptureOptions,
    mut fetches: Fetches,
    writer: &mut CorpusWriter,
    progress: &(dyn Fn(CaptureEvent) + Sync),
) -> Result<(usize, usize), CaptureError> {
    let mut captured = 0;
    let mut txs = 0;
    let mut written_codes: HashSet<B256> = HashSet::new();
    let mut indexed_at = Instant::now();
    fetches.refill();
    let stop = opts.stop.clone().unwrap_or_default();
    loop {
        let done = tokio::select! {
            biased;
            _ = stop.notified() => {
                writer.write_manifest()?;
                return Err(CaptureError::Interrupted { written: captured });
            }
            done = fetches.tasks.join_next() => done,
        };
        let Some(done) = done else { break };
        let fetched = match done {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                // index what was written before giving up (the corpus stays valid either way)
                let _ = writer.write_manifest();
                return Err(e);
            }
            Err(e) => {
                let _ = writer.write_manifest();
                return Err(CaptureError::Setup(format!("a capture task failed: {e}")));
            }
        };
        // keep the node busy while this block is written
        fetches.refill();
        store(writer, &fetched, &mut written_codes, &mut indexed_at)?;
        captured += 1;
        txs += fetched.record.transactions.len();
        progress(CaptureEvent::Block {
            number: fetched.record.number(),
            txs: fetched.record.transactions.len(),
        });
    }
    Ok((captured, txs))
}

/// Writes a fetched block and the codes not written yet. The manifest is rewritten at most
/// once a second, not per block: a killed capture loses at most that second of blocks, which
/// the next run captures again.
fn store(
    writer: &mut CorpusWriter,
    fetched: &Fetched,
    written_codes: &mut HashSet<B256>,
    indexed_at: &mut Instant,
) -> Result<(), CaptureError> {
    for (h, code) in &fetched.codes {
        if written_codes.insert(*h) && !writer.has_code(h) {
            writer.put_code(code)?;
        }
    }
    writer.put_block_deferred(&fetched.record)?;
    if indexed_at.elapsed() >= INDEX_EVERY {
        writer.write_manifest()?;
        *indexed_at = Instant::now();
    }
    Ok(())
}
