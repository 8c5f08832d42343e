//! What the plots and histograms of a run show, gathered row by row as the run streams (or
//! from the merged `results.csv` of shards), so a page stays small whatever the run's size.
//!
//! The aggregates are bounded whatever the run's length (a live run has no end): the gas
//! changes are counted into the fixed buckets of [`GAS_BUCKETS`], the per-block series keeps
//! at most [`MAX_SERIES`] points (past that, neighbouring points are merged two by two), the
//! throughput line at most [`MAX_SERIES`] points (past that, every other one is dropped),
//! and at most [`MAX_CONTRACTS`] contracts are tallied one by one (past that, contracts whose
//! results never changed make room, and when none can, newcomers count under
//! [`OTHER_CONTRACTS`]). A batch run of up to [`MAX_SERIES`] blocks with txs and
//! [`MAX_CONTRACTS`] recipients is aggregated exactly.

use alloy_primitives::map::HashMap;

/// Points each per-block series keeps.
pub(crate) const MAX_SERIES: usize = 16_384;
/// Contracts tallied one by one.
pub(crate) const MAX_CONTRACTS: usize = 10_000;
/// Where the txs of contracts beyond [`MAX_CONTRACTS`] are counted.
pub(crate) const OTHER_CONTRACTS: &str = "(other contracts)";

/// Per contract (a tx's recipient; `(creation)` for creations).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ContractAgg {
    /// Txs to it.
    pub(crate) txs: usize,
    /// Of those, txs whose results changed (differing or accepted).
    pub(crate) changed: usize,
    /// Sum of got − expected gas over its txs.
    pub(crate) gas_delta: i128,
}

/// Consecutive blocks with txs, as one point of the per-block series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockBin {
    /// The first block.
    pub(crate) first: u64,
    /// The last block.
    pub(crate) last: u64,
    /// Txs in them.
    pub(crate) txs: usize,
    /// Differing txs in them.
    pub(crate) differing: usize,
}

/// The aggregates of a run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Aggregates {
    /// Txs by the bucket of [`GAS_BUCKETS`] their gas change (percent) falls in, for txs
    /// with both gases known and expected > 0.
    pub(crate) gas_buckets: [usize; GAS_BUCKETS.len()],
    /// By contract (at most [`MAX_CONTRACTS`] + 1 entries). Hashed, not ordered: looked up
    /// once per tx; whatever lists them sorts them.
    pub(crate) by_contract: HashMap<String, ContractAgg>,
    /// Every contract tallied changed: no more room to make.
    contracts_all_changed: bool,
    /// Per block with txs, in order (merged two by two past [`MAX_SERIES`]).
    pub(crate) per_block: Vec<BlockBin>,
    /// Seconds since the start against txs done, one point per block (thinned past
    /// [`MAX_SERIES`]).
    pub(crate) progress: Vec<(f64, usize)>,
    /// Thinned: one progress point in this many is kept (0 or 1: every one).
    progress_stride: usize,
    /// Progress points seen.
    progress_seen: usize,
    /// The last progress point is off the stride: the next one replaces it.
    progress_provisional: bool,
}

impl Aggregates {
    /// Counts one tx in.
    pub(crate) fn add(
        &mut self,
        block: u64,
        to: &str,
        verdict: &str,
        expected_gas: Option<u64>,
        got_gas: Option<u64>,
    ) {
        let differs = verdict == "differ";
        let changed = differs || verdict == "accepted";
        let delta = match (got_gas, expected_gas) {
            (Some(g), Some(e)) => {
                if e > 0 {
                    self.count_gas_change((g as f64 - e as f64) / e as f64 * 100.0);
                }
                i128::from(g) - i128::from(e)
            }
            _ => 0,
        };
        let key = if to.is_empty() { "(creation)" } else { to };
        let c = self.contract(key);
        c.txs += 1;
        c.changed += usize::from(changed);
        c.gas_delta += delta;
        match self.per_block.last_mut() {
            Some(last) if last.last == block => {
                last.txs += 1;
                last.differing += usize::from(differs);
            }
            _ => {
                if self.per_block.len() >= MAX_SERIES {
                    self.per_block = halve(&self.per_block);
                }
                self.per_block.push(BlockBin {
                    first: block,
                    last: block,
                    txs: 1,
                    differing: usize::from(differs),
                });
            }
        }
    }

    fn count_gas_change(&mut self, percent: f64) {
        if let Some(i) = GAS_BUCKETS
            .iter()
            .position(|(lo, hi, _)| percent >= *lo && percent < *hi)
        {
            self.gas_buckets[i] += 1;
        }
    }

    /// The tally of contract `key`: past [`MAX_CONTRACTS`], a contract whose results never
    /// changed (it shows in no plot) makes room; when none can, [`OTHER_CONTRACTS`]'s.
    fn contract(&mut self, key: &str) -> &mut ContractAgg {
        // a hit, nearly every tx: one hash of the key and no allocation
        if self.by_contract.contains_key(key) {
            return self.by_contract.get_mut(key).expect("present");
        }
        if self.by_contract.len() >= MAX_CONTRACTS {
            // once none is idle none will be: a change is never undone, and no newcomer enters;
            // the idle contract that goes is the least by key, so a run and the merge of its
            // shards drop the same ones
            let idle = (!self.contracts_all_changed)
                .then(|| {
                    self.by_contract
                        .iter()
                        .filter(|(k, c)| {
                            c.changed == 0 && c.gas_delta == 0 && *k != OTHER_CONTRACTS
                        })
                        .map(|(k, _)| k)
                        .min()
                        .cloned()
                })
                .flatten();
            self.contracts_all_changed = idle.is_none();
            match idle {
                Some(k) => {
                    let gone = self.by_contract.remove(&k).unwrap_or_default();
                    self.by_contract
                        .entry(OTHER_CONTRACTS.into())
                        .or_default()
                        .txs += gone.txs;
                }
                None => return self.by_contract.entry(OTHER_CONTRACTS.into()).or_default(),
            }
        }
        self.by_contract.entry(key.to_string()).or_default()
    }

    /// One point of the throughput line: `txs` done `secs` after the start. Past
    /// [`MAX_SERIES`] points every other one is dropped and one point in `stride` kept from
    /// then on; the latest point always ends the line.
    pub(crate) fn add_progress(&mut self, secs: f64, txs: usize) {
        if self.progress_provisional {
            self.progress.pop();
        }
        self.progress_seen += 1;
        let stride = self.progress_stride.max(1);
        self.progress_provisional = !self.progress_seen.is_multiple_of(stride);
        if !self.progress_provisional && self.progress.len() >= MAX_SERIES {
            let mut i = 0;
            self.progress.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.progress_stride = stride * 2;
        }
        self.progress.push((secs, txs));
    }
}

/// Neighbouring bins merged two by two.
fn halve(bins: &[BlockBin]) -> Vec<BlockBin> {
    let mut out = Vec::with_capacity(MAX_SERIES);
    for pair in bins.chunks(2) {
        let mut b = pair[0];
        if let Some(n) = pair.get(1) {
            b.last = n.last;
            b.txs += n.txs;
            b.differing += n.differing;
        }
        out.push(b);
    }
    out
}

/// Buckets of the gas change per tx (percent): the histogram of `summary.md` and `index.html`.
pub(crate) const GAS_BUCKETS: [(f64, f64, &str); 9] = [
    (f64::NEG_INFINITY, -10.0, "< -10%"),
    (-10.0, -1.0, "-10% .. -1%"),
    (-1.0, -0.0001, "-1% .. 0"),
    (-0.0001, 0.0001, "0"),
    (0.0001, 1.0, "0 .. 1%"),
    (1.0, 10.0, "1% .. 10%"),
    (10.0, 50.0, "10% .. 50%"),
    (50.0, 100.0, "50% .. 100%"),
    (100.0, f64::INFINITY, "> 100%"),
];
