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
//! corpus, the logs or the errors: see [`RpcUrl`]. The JSON-RPC client itself is
//! `txshadow_rpc`'s, shared with the node engine.
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
mod ctx;
mod outside;
mod range;
mod receipts;
mod run;
mod witness;

pub use chain::{DetectedChain, detect_chain, genesis_schedule};
pub use range::BlockRange;
pub use run::{CaptureEvent, CaptureOptions, CaptureSummary, capture};
/// The client settings and endpoint of [`CaptureOptions`], and the call errors a
/// [`CaptureError::Rpc`] holds (from `txshadow_rpc`).
pub use txshadow_rpc::{ClientConfig, RpcError, RpcUrl};

use txshadow_corpus::CorpusError;

/// Why a capture stopped.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Bad input (range, URL, fork name).
    #[error("{0}")]
    Input(String),
    /// The capture could not be set up or run (a task failed).
    #[error("{0}")]
    Setup(String),
    /// A call to the node failed: the node does not serve a method capture needs, has no
    /// state for the block, or failed for good.
    #[error(transparent)]
    Rpc(#[from] RpcError),
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

impl CaptureError {
    /// The block the error is about, if any.
    pub const fn block(&self) -> Option<u64> {
        match self {
            Self::Rpc(e) => e.block(),
            Self::Node { block, .. } => Some(*block),
            _ => None,
        }
    }
}
