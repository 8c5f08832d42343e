//! Where a run's blocks come from: a corpus on disk, a shard of one, or (for a live run) blocks
//! as they are captured. The one corpus loader of txshadow.

use std::path::{Path, PathBuf};

use alloy_primitives::B256;
use txshadow_corpus::{BlockEntry, BlockRecord, ChainConfig, CodeReader, Corpus};
use txshadow_replay::Codes;

use crate::{RunError, Shard};

/// One block ready to replay: the record, the chain rules it runs under, and its codes.
#[derive(Debug)]
pub struct SourceBlock {
    /// The block.
    pub block: BlockRecord,
    /// The chain its header runs under (the block's own, or the corpus's).
    pub chain: ChainConfig,
    /// The codes its pre-state refers to.
    pub codes: Codes,
    /// Warnings the source has about this block (a live source: the reorg it follows), added
    /// to its result.
    pub notes: Vec<String>,
}

impl SourceBlock {
    /// A block with the corpus's chain unless the block carries its own, and its codes.
    pub fn new(block: BlockRecord, corpus_chain: &ChainConfig, codes: Codes) -> Self {
        let chain = block.chain.clone().unwrap_or_else(|| corpus_chain.clone());
        Self {
            block,
            chain,
            codes,
            notes: vec![],
        }
    }
}

/// What a source knows before it is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcePlan {
    /// Blocks it will give (`None`: unbounded, a live source).
    pub blocks: Option<usize>,
    /// Their txs.
    pub txs: Option<usize>,
    /// Their gas.
    pub gas: Option<u64>,
}

/// A stream of blocks, read one at a time so a run holds only the blocks in flight.
pub trait BlockSource: Send {
    /// The default chain of the blocks (a block may carry its own).
    fn chain(&self) -> &ChainConfig;
    /// What the source will give, where known.
    fn plan(&self) -> SourcePlan;
    /// What the source reads (a corpus directory, a node with its credentials redacted).
    fn describe(&self) -> String;
    /// What identifies the source's data whatever its path (a corpus's manifest checksum).
    fn identity(&self) -> Option<String> {
        None
    }
    /// The next block; `None` at the end.
    fn next_block(&mut self) -> Option<Result<SourceBlock, RunError>>;
    /// The blocks [`Self::next_block`] has yet to give, loadable by position from several
    /// threads at once (a corpus on disk), for a run whose many workers one reader would hold
    /// back; `None` (the default): read in order only. Loading by position does not move the
    /// source on.
    fn by_position(&self) -> Option<&dyn LoadAt> {
        None
    }
}

/// A source's blocks by position (see [`BlockSource::by_position`]).
pub trait LoadAt: Sync {
    /// How many blocks.
    fn count(&self) -> usize;
    /// Block `i` of them (`i < count()`), in the source's order.
    fn load_at(&self, i: usize) -> Result<SourceBlock, RunError>;
}

/// The blocks of a corpus directory (all, or one shard), read in corpus order, each checked on
/// load, with the codes it needs.
#[derive(Debug)]
pub struct CorpusSource {
    corpus: Corpus,
    codes: CodeReader,
    entries: Vec<BlockEntry>,
    next: usize,
}

impl CorpusSource {
    /// Opens a corpus; with `shard`, only that shard's blocks (see [`Shard::select`]).
    pub fn open(dir: &Path, shard: Option<Shard>) -> Result<Self, RunError> {
        let corpus = Corpus::open(dir)?;
        let all = &corpus.manifest().blocks;
        let entries = match shard {
            None => all.clone(),
            Some(s) => s.select(all),
        };
        Self::with_entries(corpus, entries)
    }

    /// The blocks of `corpus` that `keep` selects, in corpus order.
    pub fn filtered(dir: &Path, keep: impl Fn(&BlockEntry) -> bool) -> Result<Self, RunError> {
        let corpus = Corpus::open(dir)?;
        let entries = corpus
            .manifest()
            .blocks
            .iter()
            .filter(|e| keep(e))
            .cloned()
            .collect();
        Self::with_entries(corpus, entries)
    }

    fn with_entries(corpus: Corpus, entries: Vec<BlockEntry>) -> Result<Self, RunError> {
        Ok(Self {
            codes: corpus.code_reader()?.on_this_thread(),
            corpus,
            entries,
            next: 0,
        })
    }

    /// The corpus.
    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    /// The entries the source gives, in order.
    pub fn entries(&self) -> &[BlockEntry] {
        &self.entries
    }

    /// Loads one entry's block and codes.
    pub fn load(&self, entry: &BlockEntry) -> Result<SourceBlock, RunError> {
        let block = self.corpus.load_block(entry)?;
        let store = self.codes.load([&block])?;
        let codes = Codes::from_store(&store, store.hashes());
        Ok(SourceBlock::new(
            block,
            &self.corpus.manifest().chain,
            codes,
        ))
    }

    /// Finds the block holding a tx, by `BLOCK:INDEX` (a number from the manifest) or by hash
    /// (or a unique prefix of one, `0x` and at least 8 hex digits), reading blocks until the
    /// first hit. Returns the block and the tx's index.
    pub fn find_tx(&self, which: &str) -> Result<(SourceBlock, usize), RunError> {
        let bad = |why: String| RunError::Input(format!("{which}: {why}"));
        if let Some((b, i)) = which.split_once(':') {
            let n: u64 = b
                .parse()
                .map_err(|_| bad("the block must be a number".into()))?;
            let i: usize = i
                .parse()
                .map_err(|_| bad("the index must be a number".into()))?;
            let entry = self.entries.iter().find(|e| e.number == n).ok_or_else(|| {
                bad(format!(
                    "no block {n} in the corpus (txshadow corpus stats lists its range)"
                ))
            })?;
            if i >= entry.txs {
                return Err(bad(format!(
                    "block {n} has {} txs, indexed from 0",
                    entry.txs
                )));
            }
            return Ok((self.load(entry)?, i));
        }
        let hex = which
            .strip_prefix("0x")
            .unwrap_or(which)
            .to_ascii_lowercase();
        if hex.len() < 8 || hex.len() > 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad(
                "expected a tx hash (or a prefix of 8+ hex digits) or BLOCK:INDEX".into(),
            ));
        }
        let mut hits: Vec<(usize, B256, usize)> = vec![];
        for (k, e) in self.entries.iter().enumerate() {
            let block = self.corpus.load_block(e)?;
            for (i, t) in block.transactions.iter().enumerate() {
                if format!("{:x}", t.hash).starts_with(&hex) {
                    hits.push((k, t.hash, i));
                }
            }
            if hex.len() == 64 && !hits.is_empty() {
                break;
            }
        }
        match hits.as_slice() {
            [] => Err(bad(
                "no such tx in the corpus (check the hash, or give BLOCK:INDEX)".into(),
            )),
            [(k, _, i)] => Ok((self.load(&self.entries[*k])?, *i)),
            many => Err(bad(format!(
                "the prefix matches {} txs (give more digits): {}",
                many.len(),
                many.iter()
                    .take(5)
                    .map(|(_, h, _)| h.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

impl BlockSource for CorpusSource {
    fn chain(&self) -> &ChainConfig {
        &self.corpus.manifest().chain
    }

    fn plan(&self) -> SourcePlan {
        SourcePlan {
            blocks: Some(self.entries.len()),
            txs: Some(self.entries.iter().map(|e| e.txs).sum()),
            gas: Some(self.entries.iter().map(|e| e.gas_used).sum()),
        }
    }

    fn describe(&self) -> String {
        self.corpus.dir().display().to_string()
    }

    fn identity(&self) -> Option<String> {
        self.corpus.manifest().checksum.clone()
    }

    fn next_block(&mut self) -> Option<Result<SourceBlock, RunError>> {
        let entry = self.entries.get(self.next)?;
        self.next += 1;
        Some(self.load(entry))
    }

    fn by_position(&self) -> Option<&dyn LoadAt> {
        Some(self)
    }
}

impl LoadAt for CorpusSource {
    fn count(&self) -> usize {
        self.entries.len().saturating_sub(self.next)
    }

    fn load_at(&self, i: usize) -> Result<SourceBlock, RunError> {
        self.load(&self.entries[self.next + i])
    }
}

/// A list of blocks already in memory (tests, a block captured on the spot).
#[derive(Debug)]
pub struct MemorySource {
    chain: ChainConfig,
    blocks: std::vec::IntoIter<SourceBlock>,
    plan: SourcePlan,
    name: PathBuf,
}

impl MemorySource {
    /// A source of these blocks.
    pub fn new(name: impl Into<PathBuf>, chain: ChainConfig, blocks: Vec<SourceBlock>) -> Self {
        let plan = SourcePlan {
            blocks: Some(blocks.len()),
            txs: Some(blocks.iter().map(|b| b.block.transactions.len()).sum()),
            gas: Some(blocks.iter().map(|b| b.block.gas_used()).sum()),
        };
        Self {
            chain,
            blocks: blocks.into_iter(),
            plan,
            name: name.into(),
        }
    }
}

impl BlockSource for MemorySource {
    fn chain(&self) -> &ChainConfig {
        &self.chain
    }
    fn plan(&self) -> SourcePlan {
        self.plan.clone()
    }
    fn describe(&self) -> String {
        self.name.display().to_string()
    }
    fn next_block(&mut self) -> Option<Result<SourceBlock, RunError>> {
        self.blocks.next().map(Ok)
    }
}
