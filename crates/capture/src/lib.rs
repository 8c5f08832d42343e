//! txshadow capture: blocks of a JSON-RPC archive node into a corpus.
//!
//! The first stage of `capture → corpus → replay → diff → report`. [`rpc`] captures blocks from
//! a JSON-RPC archive node (receipts, prestate traces, ancestors' hashes, fork schedule, and on
//! request a state witness) through the shared client of `txshadow_rpc`. Capture never runs the
//! EVM. Other formats (block dumps, tracer fixtures, hive chains) come into a corpus through
//! `txshadow_import` instead.
//!
//! ```no_run
//! use txshadow_capture::rpc::{CaptureOptions, capture};
//! # async fn run() -> Result<(), txshadow_capture::rpc::CaptureError> {
//! let opts = CaptureOptions::new("http://127.0.0.1:8545", "1..10".parse()?, "corpora/local".into())?;
//! let summary = capture(&opts, &|_event| {}).await?;
//! println!("{} blocks, {} txs", summary.captured, summary.txs);
//! # Ok(()) }
//! ```

pub mod rpc;
