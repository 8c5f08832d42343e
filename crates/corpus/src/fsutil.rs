//! File helpers every writer of the corpus uses: atomic writes, errors naming the path.

use std::{fs, io::Write, path::Path};

use sha2::{Digest, Sha256};

use crate::CorpusError;

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CorpusError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    replace(path, bytes, true)?;
    sync_dir(dir);
    Ok(())
}

/// Replaces `path` with `bytes` atomically but not durably: a temp file beside it, renamed over
/// it. A process killed at any point leaves the old file or the new one, never a part of
/// either; a power loss may leave the old one. For a run's reports, which the run can make
/// again, where an fsync per write would cost more than the file is worth.
pub fn replace_atomic(path: &Path, bytes: &[u8]) -> Result<(), CorpusError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    replace(path, bytes, false)
}

/// The temp file beside `path`, written (and fsynced when `durable`), renamed over `path`.
fn replace(path: &Path, bytes: &[u8], durable: bool) -> Result<(), CorpusError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let res = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    res.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        CorpusError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Makes the renames in `dir` durable (best effort: not every file system syncs a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
