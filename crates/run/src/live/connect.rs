//! Connecting a [`LiveSource`]: waiting for the node, checking its chain and debug namespace,
//! and preparing the corpus it captures into (a temporary one when none is given).

use super::*;

impl LiveSource {
    /// Connects to the node (waiting while it is down), checks its chain and its debug
    /// namespace, and prepares the corpus. `None` when `stop` was set before the node answered.
    pub fn connect(
        opts: &LiveOptions,
        metrics: Arc<Metrics>,
        stop: &'static AtomicBool,
    ) -> Result<Option<Self>, RunError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| RunError::Input(format!("start the async runtime: {e}")))?;
        let rpc = Rpc::new(
            opts.url.clone(),
            ClientConfig {
                concurrency: 4,
                timeout: Duration::from_secs(10),
                retries: 0,
                backoff: Duration::from_millis(250),
                max_backoff: Duration::from_secs(2),
            },
        )
        .map_err(|e| RunError::Input(e.to_string()))?;

        // the chain, once the node answers (a node down at the start is waited for)
        let Some(detected) = wait_for_chain(&rt, &rpc, &metrics, stop)? else {
            return Ok(None);
        };
        metrics.set_node_up(true);
        let chain_id = detected.config.chain_id;
        if let Some(want) = opts.chain_id
            && want != chain_id
        {
            return Err(RunError::Input(format!(
                "the node serves chain {chain_id}, not chain {want} (--chain-id)"
            )));
        }
        let (dir, temp) = match &opts.corpus {
            Some(d) => {
                if d.join("manifest.json").exists() {
                    let c = Corpus::open(d)?;
                    let have = c.manifest().chain.chain_id;
                    if have != chain_id {
                        return Err(RunError::Input(format!(
                            "{}: the corpus is of chain {have}, the node serves chain \
                             {chain_id}; follow into another --corpus directory",
                            d.display()
                        )));
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
                    if stop.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    metrics.set_node_up(false);
                    tracing::warn!("eth_blockNumber: {e}; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        };
        // block 0 has no parent to replay on
        let first = opts.from.unwrap_or(head).max(1);
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
            return Err(RunError::Input(e.to_string()));
        }
        metrics.set_start(first - 1);
        metrics.set_head(head);
        let heads = opts
            .ws
            .as_ref()
            .map(|ws| HeadSubscription::spawn(ws.clone(), rt.handle()));
        let describe = match &opts.ws {
            Some(ws) => format!("follow {} (newHeads)", ws.display()),
            None => format!("follow {}", opts.url.display()),
        };
        let source = Self {
            rt,
            rpc,
            url: opts.url.clone(),
            dir,
            chain: detected.config.clone(),
            describe,
            next: first,
            followed: BTreeMap::new(),
            notes: vec![],
            given: 0,
            max_blocks: opts.max_blocks,
            keep: opts.keep.or(opts.corpus.is_none().then_some(TEMP_KEEP)),
            poll: opts.poll,
            backoff: Duration::from_millis(250),
            down_since: None,
            heads,
            // the blocks served before following started have no latency to measure
            seen_upto: head,
            shorter_suspect: false,
            metrics,
            stop,
            _temp: temp,
            client_version: detected.client_version,
        };
        Ok(Some(source))
    }

    /// The first block this source gives.
    pub fn first_block(&self) -> u64 {
        self.next
    }

    /// The chain id the node serves.
    pub fn chain_id(&self) -> u64 {
        self.chain.chain_id
    }

    /// The node's client version, when it says.
    pub fn client_version(&self) -> Option<&str> {
        self.client_version.as_deref()
    }

    /// The corpus directory the blocks are captured into.
    pub fn corpus_dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// The node's chain, once the node answers (a node down at the start is waited for, with
/// `node_up` 0); `None` when `stop` is set first.
fn wait_for_chain(
    rt: &tokio::runtime::Runtime,
    rpc: &Rpc,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<Option<txshadow_capture::rpc::DetectedChain>, RunError> {
    let mut backoff = Duration::from_millis(250);
    let mut said = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match rt.block_on(detect_chain(rpc, None)) {
            Ok(d) => return Ok(Some(d)),
            Err(e) => match Fault::from(e) {
                Fault::Fatal(e) => return Err(e),
                Fault::Transient(why) | Fault::Retry(why) => {
                    metrics.set_node_up(false);
                    if !said {
                        tracing::warn!("the node does not answer ({why}); retrying until it does");
                        said = true;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            },
        }
    }
}

/// A temporary corpus directory, removed on drop.
#[derive(Debug)]
pub(super) struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
