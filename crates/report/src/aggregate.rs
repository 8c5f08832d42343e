//! What the plots and histograms of a run show, gathered row by row as the run streams (or
//! from the merged `results.csv` of shards), so a page stays small whatever the run's size.

use std::collections::BTreeMap;

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

/// The aggregates of a run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Aggregates {
    /// Per tx with both gases known and expected > 0: the gas change in percent.
    pub(crate) gas_deltas: Vec<f64>,
    /// By contract.
    pub(crate) by_contract: BTreeMap<String, ContractAgg>,
    /// Per block in order: number, txs, differing txs.
    pub(crate) per_block: Vec<(u64, usize, usize)>,
    /// Seconds since the start against txs done, one point per block.
    pub(crate) progress: Vec<(f64, usize)>,
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
                    self.gas_deltas
                        .push((g as f64 - e as f64) / e as f64 * 100.0);
                }
                i128::from(g) - i128::from(e)
            }
            _ => 0,
        };
        let key = if to.is_empty() { "(creation)" } else { to };
        let c = self.by_contract.entry(key.to_string()).or_default();
        c.txs += 1;
        c.changed += usize::from(changed);
        c.gas_delta += delta;
        match self.per_block.last_mut() {
            Some(last) if last.0 == block => {
                last.1 += 1;
                last.2 += usize::from(differs);
            }
            _ => self.per_block.push((block, 1, usize::from(differs))),
        }
    }
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
