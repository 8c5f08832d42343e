//! txshadow capture: real traffic into a corpus.
//!
//! The first stage of `capture → corpus → replay → diff → report`. [`rpc`] captures blocks from
//! a JSON-RPC archive node (receipts, prestate traces, ancestors' hashes, fork schedule);
//! importers convert other formats (pevm, zeth, keth block dumps, go-ethereum tracer fixtures, a
//! hive chain) into the corpus format, keeping every expected result the source gives. Capture
//! never runs the EVM.
//!
//! ```no_run
//! use txshadow_capture::import::{Format, ImportOptions, import};
//! let summary = import(Format::Pevm, &["../pevm-mainnet".into()], "corpora/pevm".as_ref(), &ImportOptions::default())?;
//! println!("{} blocks, {} txs", summary.blocks, summary.txs);
//! # Ok::<_, txshadow_capture::import::ImportError>(())
//! ```

pub mod import;
pub mod rpc;
