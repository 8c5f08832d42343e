//! What a run is asked to do.

use std::path::PathBuf;

use txshadow_diff::{AcceptedFile, Criterion, Mode};
use txshadow_replay::SideConfig;

use crate::RunError;

/// Everything a run needs beside its block source.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Mode.
    pub mode: Mode,
    /// Worker threads (0 = all cores); clamped to [`max_jobs`].
    pub jobs: usize,
    /// The baseline.
    pub baseline: SideSpec,
    /// The candidate; `None` compares the baseline with the chain.
    pub candidate: Option<SideSpec>,
    /// Where run directories go.
    pub out_dir: PathBuf,
    /// Run id (default: time-based); a single path component.
    pub run_id: Option<String>,
    /// Accepted differences.
    pub accepted: Option<AcceptedFile>,
    /// Launch criteria (empty: `any`).
    pub fail_on: Vec<Criterion>,
    /// The shard this run replays, if it is one (written into the report).
    pub shard: Option<Shard>,
}

impl RunConfig {
    /// A run of `mode` against the chain's record, reports under `out_dir`.
    pub fn against_chain(mode: Mode, out_dir: impl Into<PathBuf>) -> Self {
        Self {
            mode,
            jobs: 0,
            baseline: SideSpec::revm(SideConfig::chain("baseline")),
            candidate: None,
            out_dir: out_dir.into(),
            run_id: None,
            accepted: None,
            fail_on: vec![Criterion::Any],
            shard: None,
        }
    }

    /// Whether a side runs on a node.
    pub fn uses_nodes(&self) -> bool {
        self.baseline.node.is_some() || self.candidate.as_ref().is_some_and(|c| c.node.is_some())
    }

    /// Checks what can be checked before any work: the node engine's mode, the run id.
    pub fn check(&self) -> Result<(), RunError> {
        if self.uses_nodes() && self.mode != Mode::Tx {
            return Err(RunError::Input(
                "the node engine runs in tx mode only (each tx on its own pre-state through \
                 state overrides): use --mode tx"
                    .into(),
            ));
        }
        if let Some(id) = &self.run_id {
            check_run_id(id)?;
        }
        Ok(())
    }
}

/// One side of a run: its configuration (forced spec, overrides) and the engine it runs on
/// (revm, or a node over JSON-RPC).
#[derive(Debug, Clone)]
pub struct SideSpec {
    /// The configuration (for a node: the overrides it adds).
    pub config: SideConfig,
    /// The node, when the side runs on one.
    pub node: Option<txshadow_node::NodeSpec>,
}

impl SideSpec {
    /// A side on revm.
    pub const fn revm(config: SideConfig) -> Self {
        Self { config, node: None }
    }
}

/// Shard `index` of `count`: a deterministic share of a corpus's blocks balanced by work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = RunError;
    fn from_str(s: &str) -> Result<Self, RunError> {
        let bad = || RunError::Input(format!("--shard {s}: expected I/N with 0 <= I < N"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    /// This shard's blocks, in corpus order. Blocks go to shards by work, not position: in
    /// order of gas (most first, ties by number and hash), each to the shard with the least gas
    /// so far (ties to the lowest index), with the tx count standing in for empty blocks.
    /// Blocks with the same label (the blocks of one conformance case) go together, so each
    /// shard's report counts a case whole. The same corpus always splits the same way, and the
    /// shards together hold every block once.
    pub fn select(
        &self,
        entries: &[txshadow_corpus::BlockEntry],
    ) -> Vec<txshadow_corpus::BlockEntry> {
        let work = |e: &txshadow_corpus::BlockEntry| {
            u128::from(e.gas_used.max(e.txs as u64 * 21_000).max(1))
        };
        // groups: a label's blocks, or a block alone; each with its work and first entry
        let mut groups: Vec<(u128, usize, Vec<usize>)> = vec![];
        let mut by_label: std::collections::HashMap<&str, usize> = Default::default();
        for (i, e) in entries.iter().enumerate() {
            let g = match e.label.as_deref() {
                Some(l) => *by_label.entry(l).or_insert_with(|| {
                    groups.push((0, i, vec![]));
                    groups.len() - 1
                }),
                None => {
                    groups.push((0, i, vec![]));
                    groups.len() - 1
                }
            };
            groups[g].0 += work(e);
            groups[g].2.push(i);
        }
        groups.sort_by(|(wx, x, _), (wy, y, _)| {
            let (x, y) = (&entries[*x], &entries[*y]);
            wy.cmp(wx)
                .then(x.number.cmp(&y.number))
                .then(x.hash.cmp(&y.hash))
        });
        let mut load = vec![0u128; self.count];
        let mut mine = vec![false; entries.len()];
        for (w, _, members) in groups {
            let (shard, _) = load
                .iter()
                .enumerate()
                .min_by_key(|(k, l)| (**l, *k))
                .expect("at least one shard");
            load[shard] += w;
            for i in members {
                mine[i] = shard == self.index;
            }
        }
        entries
            .iter()
            .zip(mine)
            .filter(|(_, m)| *m)
            .map(|(e, _)| e.clone())
            .collect()
    }
}

/// The most worker threads a run starts: 4 per core. More only adds contention (a run with
/// `-j 100000` once started 12,145 threads).
pub fn max_jobs() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `jobs` as a run uses it: 0 is every core; above [`max_jobs`] it is clamped (with a warning).
pub fn effective_jobs(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match jobs {
        0 => cores,
        j if j > max_jobs() => {
            tracing::warn!(
                "-j {j} is more than 4 threads per core ({cores} cores): using {}",
                max_jobs()
            );
            max_jobs()
        }
        j => j,
    }
}

/// A run id names one directory under the output directory: one plain path component.
pub fn check_run_id(id: &str) -> Result<(), RunError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && !id.contains(['/', '\\', '\0'])
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(RunError::Input(format!(
            "--run-id {id:?}: a run id names one directory under --out-dir (no '/', '\\', or \
             leading '.')"
        )))
    }
}

/// A duration as users write one: `500ms`, `2s`, `1.5` (seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s}: expected seconds (`1`, `0.5`) or `500ms` / `2s`");
    let secs: f64 = if let Some(ms) = s.strip_suffix("ms") {
        ms.trim().parse::<f64>().map_err(|_| bad())? / 1000.0
    } else {
        s.strip_suffix('s')
            .unwrap_or(s)
            .trim()
            .parse()
            .map_err(|_| bad())?
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use txshadow_corpus::BlockEntry;

    fn entry(number: u64, gas_used: u64) -> BlockEntry {
        BlockEntry {
            file: String::new(),
            number,
            hash: B256::with_last_byte(number as u8),
            txs: 1,
            gas_used,
            sha256: String::new(),
            crc32: None,
            label: None,
        }
    }

    #[test]
    fn shards_split_by_work_and_hold_every_block_once() {
        let entries: Vec<_> = (0..20).map(|n| entry(n, 1_000_000 * (n % 7 + 1))).collect();
        let shards: Vec<Vec<BlockEntry>> = (0..3)
            .map(|i| Shard { index: i, count: 3 }.select(&entries))
            .collect();
        let mut all: Vec<u64> = shards.iter().flatten().map(|e| e.number).collect();
        all.sort();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        let gas: Vec<u64> = shards
            .iter()
            .map(|s| s.iter().map(|e| e.gas_used).sum())
            .collect();
        let (lo, hi) = (gas.iter().min().unwrap(), gas.iter().max().unwrap());
        assert!(hi - lo <= 7_000_000, "unbalanced: {gas:?}");
        // deterministic, and each shard in corpus order
        assert_eq!(shards[1], Shard { index: 1, count: 3 }.select(&entries));
        assert!(shards[1].windows(2).all(|w| w[0].number < w[1].number));
    }

    #[test]
    fn shard_and_run_id_syntax() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        for bad in ["3/3", "1", "a/3", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        for bad in ["../escape", "a/b", "..", ".hidden", ""] {
            assert!(check_run_id(bad).is_err(), "{bad}");
        }
        check_run_id("nightly-2026-12-06").unwrap();
    }
}
