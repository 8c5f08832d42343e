//! The source files of a hive chain and the blocks of its `chain.rlp`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::{
    ImportError,
    chain::{ChainBlock, decode_block},
};

/// The source files of one hive chain.
#[derive(Debug)]
pub(super) struct Sources {
    pub(super) genesis: PathBuf,
    pub(super) chain: PathBuf,
    pub(super) headfcu: Option<PathBuf>,
}

/// Finds `genesis.json` and `chain.rlp` among the inputs: a directory holding both, or the files
/// themselves (`*.rlp` is the chain; a `.json` other than `forkenv.json`/`headfcu.json` is the
/// genesis).
pub(super) fn sources(inputs: &[PathBuf]) -> Result<Sources, ImportError> {
    let mut genesis = vec![];
    let mut chain = vec![];
    let mut headfcu = None;
    let first = || {
        inputs
            .first()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    for input in inputs {
        if input.is_dir() {
            let (g, c) = (input.join("genesis.json"), input.join("chain.rlp"));
            if !g.is_file() || !c.is_file() {
                return Err(ImportError::source(
                    input,
                    "not a hive chain directory (expected genesis.json and chain.rlp)",
                ));
            }
            genesis.push(g);
            chain.push(c);
            let h = input.join("headfcu.json");
            if h.is_file() {
                headfcu = Some(h);
            }
            continue;
        }
        if !input.is_file() {
            return Err(ImportError::Io {
                path: input.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let name = input
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match input.extension().and_then(|e| e.to_str()) {
            Some("rlp") => chain.push(input.clone()),
            Some("json") if name == "headfcu.json" => headfcu = Some(input.clone()),
            Some("json") if name == "forkenv.json" => {}
            Some("json") => genesis.push(input.clone()),
            _ => {
                return Err(ImportError::source(
                    input,
                    "not a hive chain file (expected genesis.json or chain.rlp)",
                ));
            }
        }
    }
    match (genesis.as_slice(), chain.as_slice()) {
        ([g], [c]) => Ok(Sources {
            genesis: g.clone(),
            chain: c.clone(),
            headfcu,
        }),
        ([], _) => Err(ImportError::source(
            &first(),
            "no genesis.json among the inputs",
        )),
        (_, []) => Err(ImportError::source(
            &first(),
            "no chain.rlp among the inputs",
        )),
        _ => Err(ImportError::source(
            &first(),
            "several genesis or chain files: import one hive chain at a time",
        )),
    }
}

/// Decodes the concatenated blocks of `chain.rlp`, checking each body against its header.
pub(super) fn read_chain(path: &Path) -> Result<Vec<ChainBlock>, ImportError> {
    let bytes = fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut buf = bytes.as_slice();
    let mut out: Vec<ChainBlock> = vec![];
    while !buf.is_empty() {
        let offset = bytes.len() - buf.len();
        let at = |reason: String| {
            ImportError::source(
                path,
                format!("block #{} (byte {offset}): {reason}", out.len()),
            )
        };
        let start = buf;
        let header = alloy_rlp::Header::decode(&mut buf)
            .map_err(|e| at(format!("cannot decode block RLP: {e}")))?;
        let len = header.length_with_payload();
        if start.len() < len {
            return Err(at("truncated block RLP".into()));
        }
        buf = &start[len..];
        let cb = decode_block(&start[..len]).map_err(|e| ImportError::source(path, e))?;
        let (h, n) = (&cb.block.header, cb.block.header.number);
        let at = |reason: String| ImportError::source(path, format!("block {n}: {reason}"));
        if let Some(prev) = out.last()
            && (h.parent_hash != prev.hash || n != prev.block.header.number + 1)
        {
            return Err(at(format!(
                "does not follow block {} ({}): parent {}",
                prev.block.header.number, prev.hash, h.parent_hash
            )));
        }
        out.push(cb);
    }
    if out.is_empty() {
        return Err(ImportError::source(path, "no block in the chain file"));
    }
    Ok(out)
}
