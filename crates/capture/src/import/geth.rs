//! Importer: not written yet.

use std::path::{Path, PathBuf};

use txshadow_corpus::Provenance;

use super::{ImportError, ImportOptions, ImportSummary};

pub(crate) fn import(
    inputs: &[PathBuf],
    _out: &Path,
    _opts: &ImportOptions,
    _prov: Provenance,
) -> Result<ImportSummary, ImportError> {
    Err(ImportError::source(
        inputs
            .first()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new(".")),
        "importer not implemented",
    ))
}
