//! txshadow RPC: the JSON-RPC client every networked part of txshadow shares.
//!
//! In the flow `capture → corpus → replay → diff → report`, capture reads blocks from a node
//! through this client and the node engine (a replay side that executes txs on a node) sends
//! its calls through it too. The client is polite to the node (bounded concurrency, per-request
//! timeouts, retries with backoff on transient faults, honouring `Retry-After`), batches calls
//! when the node takes batches, and never lets the credentials of a URL (userinfo, API keys in
//! the path or query) reach logs or errors: see [`RpcUrl`]. Failures are an [`RpcError`] that
//! names the method and block. A live follower learns of new heads from it too: a
//! [`HeadSubscription`] keeps `eth_subscribe newHeads` open over a WebSocket, reconnecting with
//! backoff.
//!
//! Beside the client: the conversion of node answers into corpus types. [`tracer`] turns
//! prestate-tracer answers into corpus state (the block pre-state, each tx's post-state), and
//! [`convert`] turns a JSON-RPC block into a corpus block record and a go-ethereum chain config
//! into a fork schedule. Both capture and the importers (block dumps saved from nodes) need
//! those conversions; they live here, with the response types they read, so that neither
//! depends on the other and the corpus crate stays free of RPC types.
//!
//! ```no_run
//! use txshadow_rpc::{ClientConfig, Rpc, RpcUrl};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let rpc = Rpc::new(RpcUrl::parse("http://127.0.0.1:8545")?, ClientConfig::default())?;
//! let head: alloy_primitives::U64 = rpc.call("eth_blockNumber", (), None).await?;
//! println!("head {head} at {}", rpc.url().display());
//! # Ok(()) }
//! ```

mod client;
pub mod convert;
mod error;
mod fault;
mod heads;
mod redact;
pub mod tracer;
mod transport;

pub use client::{ClientConfig, ClientStats, Rpc};
pub use convert::{geth_fork_schedule, rpc_block_to_record};
pub use error::{GAVE_UP, NODE_ERROR, RpcError};
pub use heads::{HeadSubscription, NewHead};
pub use redact::RpcUrl;
pub use tracer::{cleared_delegations, created_accounts, tx_post_state};
