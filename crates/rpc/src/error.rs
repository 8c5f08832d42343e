//! Why a JSON-RPC call failed.

/// Why a call to the node failed. No variant quotes the node's URL (see
/// [`RpcUrl`](crate::RpcUrl)).
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The HTTP client could not be set up.
    #[error("{0}")]
    Setup(String),
    /// The node does not serve the method.
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
    Failed {
        /// The JSON-RPC method.
        method: &'static str,
        /// The block.
        block: Option<u64>,
        /// What went wrong.
        reason: String,
    },
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

impl RpcError {
    /// Whether the node gave no usable answer before the retries ran out, as opposed to
    /// answering with an error of its own.
    pub fn gave_up(&self) -> bool {
        matches!(self, Self::Failed { reason, .. } if reason.starts_with(GAVE_UP))
    }

    /// The JSON-RPC error code when the node answered the call with an error of its own (it
    /// refused the request), as opposed to never answering or answering something unusable.
    pub fn node_error_code(&self) -> Option<i64> {
        let Self::Failed { reason, .. } = self else {
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

    /// The block the call was for, if any.
    pub const fn block(&self) -> Option<u64> {
        match self {
            Self::MethodUnavailable { block, .. }
            | Self::NoState { block, .. }
            | Self::Failed { block, .. } => *block,
            Self::Setup(_) => None,
        }
    }
}
