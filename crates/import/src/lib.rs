//! txshadow import: other formats into a corpus.
//!
//! The first stage of `capture → corpus → replay → diff → report`, for sources other than a
//! live node (which `txshadow_capture` reads). Each importer converts a format into the corpus
//! format, keeping every expected result the source gives:
//!
//! - pevm (`blocks/<N>/{block,pre_state,block_hashes}.json` + `bytecodes.json`),
//! - zeth block caches (`eth_getProof` at N-1 and N),
//! - keth block dumps with a state witness,
//! - go-ethereum tracer test fixtures (`eth/tracers/internal/tracetest/testdata`),
//! - a hive chain (geth `genesis.json` + `chain.rlp`),
//! - the Ethereum conformance suites: blockchain tests and state tests (ethereum/tests, EEST).
//!
//! Blocks saved from a node's JSON-RPC answers (pevm, zeth) go through the same conversion as
//! capture's, `txshadow_rpc::rpc_block_to_record`; importing never talks to a node. Only the
//! hive and blockchain-test importers run the EVM, to derive the pre-state of each block from
//! the genesis.
//!
//! ```no_run
//! use txshadow_import::{Format, ImportOptions, import};
//! let summary = import(Format::Pevm, &["../pevm-mainnet".into()], "corpora/pevm".as_ref(), &ImportOptions::default())?;
//! println!("{} blocks, {} txs", summary.blocks, summary.txs);
//! # Ok::<_, txshadow_import::ImportError>(())
//! ```

use std::path::{Path, PathBuf};

use txshadow_corpus::{CorpusError, Provenance};

mod chain;
mod common;
mod ethtests;
mod geth;
mod hive;
mod keth;
mod pevm;
mod zeth;

/// A source format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// risechain/pevm `blocks/<N>/{block,pre_state,block_hashes}.json` + `bytecodes.json`.
    Pevm,
    /// risc0/zeth block caches with `eth_getProof` at N-1 and N.
    Zeth,
    /// kkrt-labs/keth block dumps with a state witness.
    Keth,
    /// go-ethereum tracer test fixtures (`eth/tracers/internal/tracetest/testdata`).
    GethTracetest,
    /// A hive chain: geth `genesis.json` + `chain.rlp`.
    Hivechain,
    /// ethereum/tests and EEST blockchain tests (`blockchain_test`).
    BlockchainTests,
    /// ethereum/tests GeneralStateTests and EEST `state_test` fixtures.
    StateTests,
}

impl Format {
    /// Parses the CLI name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pevm" => Self::Pevm,
            "zeth" => Self::Zeth,
            "keth" => Self::Keth,
            "geth-tracetest" | "geth" => Self::GethTracetest,
            "hivechain" | "hive" => Self::Hivechain,
            "blockchain-tests" | "blockchain-test" => Self::BlockchainTests,
            "state-tests" | "state-test" => Self::StateTests,
            _ => return None,
        })
    }

    /// The CLI name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pevm => "pevm",
            Self::Zeth => "zeth",
            Self::Keth => "keth",
            Self::GethTracetest => "geth-tracetest",
            Self::Hivechain => "hivechain",
            Self::BlockchainTests => "blockchain-tests",
            Self::StateTests => "state-tests",
        }
    }
}

/// Options of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Discard an existing corpus at the destination.
    pub overwrite: bool,
}

/// What an import wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Blocks written.
    pub blocks: usize,
    /// Transactions written.
    pub txs: usize,
    /// Blocks already present (resumed import).
    pub skipped_existing: usize,
    /// Inputs that could not be imported, with the reason (also recorded in the corpus notes
    /// or as unsupported blocks).
    pub unsupported: Vec<(String, String)>,
    /// Input files that failed (malformed, unreadable), each with its error: the import goes
    /// on with the other files, and the caller exits non-zero.
    pub failed: Vec<(PathBuf, String)>,
}

impl ImportSummary {
    /// Records a failed input file and goes on, or gives the error back when it is not the
    /// input's fault (writing the corpus failed: a full disk stops the import).
    pub(crate) fn fail_input(&mut self, path: &Path, e: ImportError) -> Result<(), ImportError> {
        match e {
            ImportError::Corpus(_) => Err(e),
            e => {
                let reason = match &e {
                    ImportError::Io { source, .. } => source.to_string(),
                    ImportError::Source { reason, .. } => reason.clone(),
                    ImportError::Corpus(c) => c.to_string(),
                };
                self.failed.push((path.to_path_buf(), reason));
                Ok(())
            }
        }
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading a source file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A source file is malformed.
    #[error("{path}: {reason}")]
    Source {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Writing the corpus failed.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
}

impl ImportError {
    pub(crate) fn source(path: &Path, reason: impl ToString) -> Self {
        Self::Source {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// Imports `inputs` of `format` into the corpus at `out`.
pub fn import(
    format: Format,
    inputs: &[PathBuf],
    out: &Path,
    opts: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let prov = Provenance {
        source: format!("import:{}", format.name()),
        // only the last component: a corpus must not carry the importing machine's paths
        inputs: inputs
            .iter()
            .map(|p| {
                p.components()
                    .rfind(|c| matches!(c, std::path::Component::Normal(_)))
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .unwrap_or_else(|| p.display().to_string())
            })
            .collect(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        created: common::now_rfc3339(),
        ..Default::default()
    };
    match format {
        Format::Pevm => pevm::import(inputs, out, opts, prov),
        Format::Zeth => zeth::import(inputs, out, opts, prov),
        Format::Keth => keth::import(inputs, out, opts, prov),
        Format::GethTracetest => geth::import(inputs, out, opts, prov),
        Format::Hivechain => hive::import(inputs, out, opts, prov),
        Format::BlockchainTests => ethtests::blockchain::import(inputs, out, opts, prov),
        Format::StateTests => ethtests::state::import(inputs, out, opts, prov),
    }
}
