//! txshadow replay: corpus blocks executed under revm, in block mode or tx mode, under a
//! configuration (the chain's rules, a forced spec, state overrides).
//!
//! It sits between the corpus and the diff: `corpus → replay → outcomes → diff`. Replay never
//! touches the network. A failing or panicking tx is an outcome with an error, never an abort.
//!
//! - Block mode ([`run_block`], [`run_block_pair`]): the block as a node runs it, every tx on
//!   the state the earlier ones left. [`BlockRunOptions`] says what a run records besides the
//!   block-level results: each tx's state changes (the default), or receipts only (faster), and
//!   the codes the block deployed.
//! - Tx mode ([`run_block_tx_mode`], [`TxRunner`]): a candidate's txs each alone on its own
//!   pre-state, taken from the baseline's block run (whose per-tx outcomes are the baseline's).
//! - State roots ([`state_root`], [`post_state_root`], [`state_root_after`],
//!   [`apply_changes`], [`VerifiedPreState::post_state_root`]): from a full pre-state or from
//!   a block's witness.
//!
//! ```no_run
//! use txshadow_replay::{BlockRunOptions, Codes, SideConfig, run_block};
//! let corpus = txshadow_corpus::Corpus::open("corpora/mainnet")?;
//! let blocks = corpus.load_blocks()?;
//! let store = corpus.load_codes(&blocks)?;
//! let codes = Codes::from_store(&store, blocks.iter().flat_map(|b| b.code_hashes()));
//! let chain = &corpus.manifest().chain;
//! let side = SideConfig::chain("baseline");
//! let out = run_block(&blocks[0], chain, &codes, &side, &BlockRunOptions::default()).outcome;
//! println!("block {} used {} gas", out.number, out.gas_used);
//! # Ok::<_, txshadow_corpus::CorpusError>(())
//! ```

mod block;
mod config;
mod db;
mod env;
mod header_rules;
mod inspect;
mod outcome;
mod receipts;
mod state_root;
mod txmode;
mod witness;

pub use block::{BlockRun, BlockRunOptions, run_block, run_block_pair};
pub use config::{OverlayDb, Overrides, SideConfig, parse_spec, spec_name};
pub use db::{BlockDb, Codes, CorpusDb, CorpusRef, DbError, block_db, decode_code};
pub use env::{ChainRules, evm_env};
pub use header_rules::check_header;
pub use inspect::{Frame, RichStep, Step, StepTrace, StepWindow, Touches, opcode_name};
pub use outcome::{BlockOutcome, ReceiptsCheck, TxExec, TxOutcome};
pub use revm::primitives::hardfork::SpecId;
pub use state_root::{apply_changes, post_state_root, state_root, state_root_after};
pub use txmode::{TxDb, TxModeOutcome, TxRunner, TxState, run_block_tx_mode};
pub use witness::{VerifiedPreState, WitnessOutcome, verify_pre_state};
