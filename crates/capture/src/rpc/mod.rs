//! Capture from a JSON-RPC archive node into a corpus.
//!
//! Per block, pinned to its hash: the full block, its receipts (`eth_getBlockReceipts`, else one
//! `eth_getTransactionReceipt` per tx), the pre-state from `debug_traceBlockByNumber` with the
//! prestate tracer (block pre-state = the first-seen value of every account and slot), each tx's
//! recorded post-state from the tracer's diff mode, the state of the accounts the block touches
//! outside its txs (system contracts, withdrawal recipients, coinbase, uncles) at the parent
//! block, uncle headers, and the hashes of the 256 ancestors BLOCKHASH may read. Chain id and
//! fork schedule come from the node. With `witness`, each block also gets the trie nodes that
//! prove its pre-state under the parent's state root (see the `witness` module).
//!
//! Capture never runs the EVM. It is polite to the node (bounded concurrency, timeouts, retries
//! with backoff on transient faults) and resumable: a re-run skips the blocks already complete,
//! every file is written atomically, and a killed run leaves a valid corpus of the blocks it
//! finished. Credentials in the URL (userinfo, API keys in the path or query) never reach the
//! corpus, the logs or the errors: see [`RpcUrl`].
//!
//! ```no_run
//! use txshadow_capture::rpc::{CaptureOptions, capture};
//! # async fn run() -> Result<(), txshadow_capture::rpc::CaptureError> {
//! let opts = CaptureOptions::new("http://127.0.0.1:8545", "1..10".parse()?, "corpora/local".into())?;
//! let summary = capture(&opts, &|_event| {}).await?;
//! println!("{} blocks, {} txs", summary.captured, summary.txs);
//! # Ok(()) }
//! ```

mod block;
mod chain;
mod client;
mod range;
mod redact;
mod run;
mod state;
mod witness;

pub use block::cleared_delegations;
pub use chain::{detect_chain, genesis_schedule};
pub use client::{ClientConfig, ClientStats, Rpc};
pub use range::BlockRange;
pub use redact::RpcUrl;
pub use run::{CaptureEvent, CaptureOptions, CaptureSummary, capture};
pub use state::{created_accounts, tx_post_state};

use txshadow_corpus::CorpusError;

/// Why a capture stopped.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Bad input (range, URL, fork name).
    #[error("{0}")]
    Input(String),
    /// The HTTP client could not be set up.
    #[error("{0}")]
    Setup(String),
    /// The node does not serve a method capture needs.
    #[error(
        "{}the node does not serve {method}: {reason}{}",
        block_prefix(*block),
        method_hint(method)
    )]
    MethodUnavailable {
        /// The JSON-RPC method.
        method: &'static str,
        /// The block it was needed for.
        block: Option<u64>,
        /// The node's answer.
        reason: String,
    },
    /// The node has no state for the block (not an archive node, or pruned).
    #[error(
        "{}{method}: the node has no state for this block ({reason}); capture needs an archive node",
        block_prefix(*block)
    )]
    NoState {
        /// The JSON-RPC method.
        method: &'static str,
        /// The block.
        block: Option<u64>,
        /// The node's answer.
        reason: String,
    },
    /// A call failed for good (after retries, or with an error retrying cannot fix).
    #[error("{}{method} failed: {reason}", block_prefix(*block))]
    Rpc {
        /// The JSON-RPC method.
        method: &'static str,
        /// The block.
        block: Option<u64>,
        /// What went wrong.
        reason: String,
    },
    /// The node's answers do not fit together (missing receipts, a trace of other txs, a
    /// block that changed while it was captured).
    #[error("block {block}: {reason}")]
    Node {
        /// The block.
        block: u64,
        /// What does not fit.
        reason: String,
    },
    /// Stopped on request (`CaptureOptions::stop`).
    #[error("interrupted after {written} block(s)")]
    Interrupted {
        /// Blocks written (and indexed) before the stop.
        written: usize,
    },
    /// Writing the corpus failed.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
}

fn block_prefix(block: Option<u64>) -> String {
    block.map(|b| format!("block {b}: ")).unwrap_or_default()
}

fn method_hint(method: &str) -> &'static str {
    if method.starts_with("debug_") {
        " (enable the debug namespace, e.g. geth/reth `--http.api eth,debug,web3`, or use a \
         provider with tracing)"
    } else if method == "eth_getBlockReceipts" {
        ""
    } else {
        " (capture needs an Ethereum archive node)"
    }
}

/// How the reason of a call that failed for good without a usable answer begins (the node was
/// down, timed out or kept failing until the retries ran out), unlike a node's own error answer.
pub const GAVE_UP: &str = "gave up after";

/// How the reason of a call the node answered with a JSON-RPC error begins:
/// `"JSON-RPC error <code>: <message>"`.
pub const NODE_ERROR: &str = "JSON-RPC error";

impl CaptureError {
    /// Whether the node gave no usable answer before the retries ran out, as opposed to
    /// answering with an error of its own.
    pub fn gave_up(&self) -> bool {
        matches!(self, Self::Rpc { reason, .. } if reason.starts_with(GAVE_UP))
    }

    /// The JSON-RPC error code when the node answered the call with an error of its own (it
    /// refused the request), as opposed to never answering or answering something unusable.
    pub fn node_error_code(&self) -> Option<i64> {
        let Self::Rpc { reason, .. } = self else {
            return None;
        };
        reason
            .strip_prefix(NODE_ERROR)?
            .trim_start()
            .split(':')
            .next()?
            .parse()
            .ok()
    }

    /// The block the error is about, if any.
    pub const fn block(&self) -> Option<u64> {
        match self {
            Self::MethodUnavailable { block, .. }
            | Self::NoState { block, .. }
            | Self::Rpc { block, .. } => *block,
            Self::Node { block, .. } => Some(*block),
            _ => None,
        }
    }
}
