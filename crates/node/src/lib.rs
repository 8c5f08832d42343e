//! txshadow node engine: a corpus tx executed on a node over JSON-RPC, without syncing it.
//!
//! It sits beside the revm engine in `corpus → replay → outcomes → diff`: each tx runs on the
//! node with its own pre-state passed as **state overrides** (every account of the block
//! pre-state plus the earlier txs' effects, each replaced in full: balance, nonce, code and the
//! whole storage, so the node's own state never leaks in) and the block env as **block
//! overrides** (number, time, gas limit, fee recipient, base fee, prevrandao, blob base fee, and
//! the ancestors' hashes BLOCKHASH reads). The node's answers become the same [`TxExec`] the
//! revm engine produces, so the diff compares them unchanged.
//!
//! Two `debug_traceCall`s per tx, sent as one JSON-RPC batch: the prestate tracer in diff mode
//! (post-state: balances, nonces, code, storage, fee payment to the coinbase included) and the
//! call tracer with logs (status, gas used as the receipt reports it, return data, logs,
//! created address). A node without `debug_traceCall` runs through `eth_simulateV1` (status,
//! gas, output, logs; no post-state, so state changes are not compared for it).
//! [`NodeEngine::connect`] probes the node once: chain id (must equal the corpus's), client
//! version, the path, and which block overrides the node honours (a probe contract reads them
//! back). What the node cannot be given through
//! overrides makes a tx **not comparable**, with the reason, rather than different.
//!
//! The JSON-RPC client is `txshadow_rpc`'s, shared with capture: bounded concurrency,
//! per-request timeouts, retries with backoff and jitter on transient faults, and URLs whose
//! credentials never reach logs, errors or reports.
//!
//! ```no_run
//! use txshadow_node::{NodeEngine, NodeSpec};
//! let spec = NodeSpec::parse("http://127.0.0.1:8545")?;
//! let node = NodeEngine::connect(&spec, 31337)?;
//! println!("{}", node.describe());
//! # Ok::<_, txshadow_node::NodeError>(())
//! ```

mod overrides;
mod probe;
mod trace;

use std::{collections::BTreeMap, time::Duration};

use alloy_primitives::{B256, Bytes};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use txshadow_corpus::{BlockRecord, ChainConfig, StateMap, decode_tx};
use txshadow_replay::TxExec;
use txshadow_rpc::{ClientConfig, Rpc, RpcError, RpcUrl};

pub use overrides::{
    AUTO_LIMIT, StateScope, block_blob_fee, block_overrides, call_request, override_size,
    state_overrides, tx_pre_state, tx_pre_state_touched,
};
pub use probe::{Capabilities, OVERRIDE_FIELDS};
pub use trace::{exec_from_simulate, exec_from_traces, logs_in_order};

/// Why the node engine could not run (a harness failure: the run stops with exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A bad `node=` setting.
    #[error("node: {0}")]
    Input(String),
    /// The node cannot be reached or answers nonsense.
    #[error("node {node}: {reason}")]
    Connect {
        /// The node (credentials redacted).
        node: String,
        /// What went wrong.
        reason: String,
    },
    /// The node runs another chain id than the corpus.
    #[error(
        "node {node} has chain id {got}, the corpus has {expected}: CHAINID and signatures \
         would differ; start the node with the corpus's chain id (anvil: --chain-id {expected})"
    )]
    ChainId {
        /// The node.
        node: String,
        /// The node's chain id.
        got: u64,
        /// The corpus's chain id.
        expected: u64,
    },
    /// The node lacks what the engine needs.
    #[error("node {node}: {reason}")]
    Capability {
        /// The node.
        node: String,
        /// What is missing.
        reason: String,
    },
    /// A call failed for good (the node went down, timed out after the retries, refused the
    /// credentials).
    #[error("node {node}: block {block} tx {index} ({hash}): {reason}")]
    Call {
        /// The node.
        node: String,
        /// Block number.
        block: u64,
        /// Tx index.
        index: usize,
        /// Tx hash.
        hash: B256,
        /// What went wrong.
        reason: String,
    },
}

/// A JSON-RPC failure in the node engine's words: the shared client's errors carry hints for a
/// capture (an archive node, the debug namespace for traces), which would send a user of the node
/// engine after the wrong thing.
pub(crate) fn rpc_text(e: &RpcError) -> String {
    match e {
        RpcError::MethodUnavailable { method, reason, .. } => {
            format!("the node does not serve {method}: {reason}")
        }
        RpcError::NoState { method, reason, .. } => {
            format!("{method}: the node has no state for the block it was asked about ({reason})")
        }
        RpcError::Failed { method, reason, .. } => format!("{method} failed: {reason}"),
        e => e.to_string(),
    }
}

/// A `node=URL` configuration: the endpoint and how to treat it.
#[derive(Clone)]
pub struct NodeSpec {
    /// The endpoint (the full URL is used for requests only).
    pub url: RpcUrl,
    /// Client settings (concurrency, timeout, retries).
    pub client: ClientConfig,
    /// Which accounts the state overrides hold.
    pub scope: StateScope,
}

impl std::fmt::Debug for NodeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSpec")
            .field("url", &self.url.display())
            .field("client", &self.client)
            .field("scope", &self.scope)
            .finish()
    }
}

impl NodeSpec {
    /// A node at `url` with the default settings: 8 requests in flight, 60 s per request,
    /// 3 retries.
    pub fn parse(url: &str) -> Result<Self, NodeError> {
        let url =
            RpcUrl::parse(url).map_err(|e| NodeError::Input(e.replace("--rpc-url", "node")))?;
        Ok(Self {
            url,
            client: ClientConfig {
                concurrency: 8,
                timeout: Duration::from_secs(60),
                retries: 3,
                backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(5),
            },
            scope: StateScope::Auto,
        })
    }

    /// The endpoint as reports show it (credentials redacted).
    pub fn display(&self) -> &str {
        self.url.display()
    }
}

/// What one tx gave on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeTx {
    /// Executed.
    Exec(TxExec),
    /// The node refused the tx (an invalid tx on the node: the node's error text).
    Rejected(String),
    /// The node cannot be given what this tx needs through overrides.
    NotComparable(String),
}

/// One tx for the node: its record and its full pre-state.
#[derive(Debug, Clone)]
pub struct TxJob {
    /// Index in the block.
    pub index: usize,
    /// The pre-state of the tx (`None` = absent account).
    pub pre: StateMap,
    /// Codes of the pre-state, by hash.
    pub codes: BTreeMap<B256, Bytes>,
}

/// The node answered a tx's call with an error: invalid params (-32602) means its call API
/// cannot take the request (e.g. anvil's eth_simulateV1 builds no contract creation): not
/// comparable; anything else is the node refusing the tx (an invalid tx there).
/// `e` must be such an answer ([`RpcError::node_error_code`]).
fn refused(method: &str, e: &RpcError) -> NodeTx {
    let reason = match e {
        RpcError::Failed { reason, .. } => reason.clone(),
        e => e.to_string(),
    };
    if e.node_error_code() == Some(-32602) {
        NodeTx::NotComparable(format!(
            "the node's {method} does not take this tx: {reason}"
        ))
    } else {
        NodeTx::Rejected(reason)
    }
}

/// A node the engine runs txs on.
#[derive(Debug)]
pub struct NodeEngine {
    rpc: Rpc,
    /// Which accounts the state overrides hold.
    pub scope: StateScope,
    rt: tokio::runtime::Runtime,
    /// What the probe found.
    pub caps: Capabilities,
}

impl NodeEngine {
    /// Connects to the node and probes it; `chain_id` is the corpus's.
    pub fn connect(spec: &NodeSpec, chain_id: u64) -> Result<Self, NodeError> {
        let node = spec.display().to_string();
        let rpc =
            Rpc::new(spec.url.clone(), spec.client.clone()).map_err(|e| NodeError::Connect {
                node: node.clone(),
                reason: e.to_string(),
            })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("txshadow-node")
            .build()
            .map_err(|e| NodeError::Connect {
                node: node.clone(),
                reason: format!("start the async runtime: {e}"),
            })?;
        let caps = rt.block_on(probe::probe(&rpc, chain_id))?;
        Ok(Self {
            rpc,
            scope: spec.scope,
            rt,
            caps,
        })
    }

    /// The node as reports show it (redacted URL).
    pub fn node(&self) -> &str {
        self.rpc.url().display()
    }

    /// One line for reports: node, client, path used.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "node {} ({}{}) via {}",
            self.node(),
            self.caps.client,
            self.caps
                .hardfork
                .as_ref()
                .map(|h| format!(", hardfork {h}"))
                .unwrap_or_default(),
            self.caps.path
        );
        s.push_str(&format!(
            "; state overrides: {}",
            match self.scope {
                StateScope::Auto => "block pre-state, or the tx's reads above 1 MiB",
                StateScope::Block => "block pre-state",
                StateScope::Touched => "the tx's reads",
            }
        ));
        if !self.caps.ignored_overrides.is_empty() {
            s.push_str(&format!(
                "; does not take block overrides: {}",
                self.caps.ignored_overrides.join(", ")
            ));
        }
        s
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.rpc
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs txs of `block` on the node, at most the client's concurrency at a time. `job(i)`
    /// builds the i-th tx's pre-state when its turn comes (so pre-states are not all held at
    /// once); `not_comparable(i)` is checked first. Results come back in the order of `indices`.
    pub fn run_block_txs(
        &self,
        block: &BlockRecord,
        chain: &ChainConfig,
        indices: &[usize],
        job: &(dyn Fn(usize) -> Result<TxJob, String> + Sync),
        not_comparable: &(dyn Fn(usize) -> Option<String> + Sync),
    ) -> Result<Vec<NodeTx>, NodeError> {
        let bo = block_overrides(block, chain, &self.caps);
        let conc = self.rpc.config().concurrency.max(1);
        self.rt.block_on(async {
            // the first harness failure ends the block: the other txs would fail the same way
            stream::iter(indices.iter().copied())
                .map(|i| {
                    let bo = &bo;
                    async move {
                        if let Some(r) = not_comparable(i) {
                            return Ok(NodeTx::NotComparable(r));
                        }
                        match job(i) {
                            Ok(j) => self.run_tx(block, chain, bo, j).await,
                            // the corpus's side, not the node's: the tx never reached it
                            Err(e) => Ok(NodeTx::NotComparable(format!(
                                "the corpus cannot give this tx's pre-state as overrides ({e}); \
                                 state=touched sends only what the tx reads"
                            ))),
                        }
                    }
                })
                .buffered(conc)
                .try_collect()
                .await
        })
    }

    async fn run_tx(
        &self,
        block: &BlockRecord,
        chain: &ChainConfig,
        bo: &serde_json::Value,
        job: TxJob,
    ) -> Result<NodeTx, NodeError> {
        let rec = &block.transactions[job.index];
        let n = block.number();
        let fail = |reason: String| NodeError::Call {
            node: self.node().to_string(),
            block: n,
            index: job.index,
            hash: rec.hash,
            reason,
        };
        let env = match decode_tx(&rec.raw) {
            Ok(e) => e,
            Err(e) => return Ok(NodeTx::Rejected(e)),
        };
        let ignored = self.caps.ignored_for(block_blob_fee(block, chain));
        if let Some(r) = Capabilities::unsupported_tx_type(&ignored, env.tx_type() as u8) {
            return Ok(NodeTx::NotComparable(r));
        }
        let call = call_request(&env, rec.from);
        let so = state_overrides(&job.pre, &job.codes);
        let opts = |tracer: &str, cfg: serde_json::Value| {
            serde_json::json!([call, "latest", {
                "tracer": tracer,
                "tracerConfig": cfg,
                "stateOverrides": so,
                "blockOverrides": bo,
            }])
        };
        if !self.caps.state_compared {
            let params = probe::simulate_params(&call, &so, bo);
            return match self
                .rpc
                .call::<_, serde_json::Value>("eth_simulateV1", params, Some(n))
                .await
            {
                Ok(v) => trace::exec_from_simulate(&v, &env, rec.from)
                    .map(NodeTx::Exec)
                    .map_err(|e| fail(format!("unexpected eth_simulateV1 result: {e}"))),
                Err(e) if e.node_error_code().is_some() => Ok(refused("eth_simulateV1", &e)),
                Err(RpcError::MethodUnavailable { reason, .. }) => Ok(NodeTx::NotComparable(
                    format!("the node's eth_simulateV1 does not take this tx: {reason}"),
                )),
                Err(e) => Err(fail(rpc_text(&e))),
            };
        }
        let calls = [
            (
                "debug_traceCall",
                opts("prestateTracer", serde_json::json!({"diffMode": true})),
            ),
            (
                "debug_traceCall",
                opts("callTracer", serde_json::json!({"withLog": true})),
            ),
        ];
        let res = self.rpc.call_many(&calls, Some(n)).await;
        let vals = match res {
            Ok(v) => v,
            Err(e) if e.node_error_code().is_some() => return Ok(refused("debug_traceCall", &e)),
            Err(RpcError::MethodUnavailable { reason, .. }) => {
                // the probe showed the method works: the node rejects something of this tx
                return Ok(NodeTx::NotComparable(format!(
                    "the node's debug_traceCall does not take this tx: {reason}"
                )));
            }
            Err(e) => return Err(fail(rpc_text(&e))),
        };
        let cleared = txshadow_rpc::cleared_delegations(&env);
        exec_from_traces(&vals[0], &vals[1], &cleared)
            .map(NodeTx::Exec)
            .map_err(|e| fail(format!("unexpected trace: {e}")))
    }
}
