//! txshadow replay: corpus blocks executed under revm, in block mode or tx mode, under a
//! configuration (the chain's rules, a forced spec, state overrides).
//!
//! It sits between the corpus and the diff: `corpus → replay → outcomes → diff`. Replay never
//! touches the network. A failing or panicking tx is an outcome with an error, never an abort.
//!
//! ```no_run
//! use txshadow_replay::{Codes, SideConfig, run_block};
//! let corpus = txshadow_corpus::Corpus::open("corpora/mainnet")?;
//! let blocks = corpus.load_blocks()?;
//! let store = corpus.load_codes(&blocks)?;
//! let codes = Codes::from_store(&store, blocks.iter().flat_map(|b| b.code_hashes()));
//! let out = run_block(&blocks[0], &corpus.manifest().chain, &codes, &SideConfig::chain("baseline"));
//! println!("block {} used {} gas", out.number, out.gas_used);
//! # Ok::<_, txshadow_corpus::CorpusError>(())
//! ```

mod config;
mod db;
mod engine;
mod inspect;
mod outcome;
mod receipts;
mod witness;

pub use config::{OverlayDb, Overrides, SideConfig, parse_spec, spec_name};
pub use db::{BlockDb, Codes, CorpusDb, CorpusRef, DbError, block_db, decode_code};
pub use engine::{
    ChainRules, TxDb, TxModeOutcome, TxRunner, TxState, apply_changes, evm_env, post_state_root,
    run_block, run_block_pair, run_block_receipts_only, run_block_tx_mode,
    run_block_with_new_codes, state_root, state_root_after,
};
pub use inspect::{Frame, RichStep, Step, StepTrace, StepWindow, Touches, opcode_name};
pub use outcome::{BlockOutcome, TxExec, TxOutcome};
pub use revm::primitives::hardfork::SpecId;
pub use witness::{VerifiedPreState, WitnessOutcome, verify_pre_state};
