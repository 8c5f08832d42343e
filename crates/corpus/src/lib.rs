//! The txshadow corpus: captured blocks with the pre-state they read and what the chain recorded.
//!
//! This is the first file format of the flow `capture → corpus → replay → diff → report`. A corpus
//! is a directory (see [`store`]) holding, per block, every header field, the transactions with
//! their senders, the pre-state (accounts, code by hash, storage slots), the ancestors' hashes
//! that `BLOCKHASH` reads, the recorded receipts and post-states, and provenance.
//!
//! ```no_run
//! let corpus = txshadow_corpus::Corpus::open("corpora/mainnet")?;
//! let blocks = corpus.load_blocks()?;
//! let codes = corpus.load_codes(&blocks)?;
//! println!("{} blocks, {} codes", blocks.len(), codes.len());
//! # Ok::<_, txshadow_corpus::CorpusError>(())
//! ```

pub mod binary;
mod chain;
mod codes;
mod error;
mod fsutil;
mod hexnum;
mod manifest;
mod model;
pub mod pack;
mod packed;
mod receipts;
mod stats;
pub mod store;
mod verify;
mod writer;

pub use chain::{ChainConfig, MAINNET_DEPOSIT_CONTRACT, default_blob_schedule, parse_fork};
pub use codes::{CodeReader, CodeStore};
pub use error::CorpusError;
pub use fsutil::{replace_atomic, write_atomic};
pub use manifest::{BlockEntry, FORMAT_NAME, FORMAT_VERSION, Manifest};
pub use model::*;
pub use pack::{Analysed, PackSizes};
pub use receipts::{check_receipts, receipts_root_and_bloom, seal_receipts};
pub use stats::CorpusStats;
pub use store::{Corpus, parse_block};
pub use verify::{VerifySummary, decode_tx};
pub use writer::{CodeStorage, CorpusWriter, PackSummary, SharedCodes, pack_corpus, pack_sizes};
