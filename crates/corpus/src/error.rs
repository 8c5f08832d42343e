use std::path::PathBuf;

use alloy_primitives::B256;

/// Everything that can be wrong with a corpus on disk. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The directory has no manifest.
    #[error(
        "{path}: not a txshadow corpus (no manifest.json); create one with `txshadow import` or `txshadow capture`"
    )]
    NotACorpus {
        /// The directory.
        path: PathBuf,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON of the expected shape (truncated, edited).
    #[error("{path}: corrupt or truncated: {source}; re-capture or re-import this corpus")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A file's bytes do not match the checksum recorded for it.
    #[error(
        "{path}: checksum mismatch (recorded {expected}, file has {got}): the file was altered or truncated; re-capture or re-import it"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Recorded checksum.
        expected: String,
        /// Actual checksum.
        got: String,
    },
    /// The corpus was written by an incompatible version.
    #[error(
        "{path}: corpus format version {found}, this txshadow reads version {supported}; use the txshadow that wrote it, or re-import or re-capture the corpus with this one"
    )]
    Version {
        /// The manifest.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// A code the pre-state refers to is missing.
    #[error(
        "{path}: code {hash} is referenced by the pre-state but missing; re-capture or re-import the blocks that use it"
    )]
    MissingCode {
        /// Code hash.
        hash: B256,
        /// Where it should be.
        path: PathBuf,
    },
    /// A file parses but is inconsistent.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
