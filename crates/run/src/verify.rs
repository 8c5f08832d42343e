//! A capture's self-check: its blocks replayed against what the node recorded.

use std::ops::RangeInclusive;

use rayon::prelude::*;
use txshadow_diff::{Comparison, Mode, diff_against_chain};
use txshadow_replay::{BlockRunOptions, SideConfig, run_block};

use crate::{CorpusSource, RunError};

/// What a check of captured blocks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Blocks replayed.
    pub blocks: usize,
    /// Blocks that reproduce the node's receipts (and post-states, where recorded).
    pub reproduced: usize,
    /// The others: block number and the first difference.
    pub failures: Vec<(u64, String)>,
}

/// Replays the corpus's blocks numbered within `range` in block mode under the chain's rules
/// and compares each with what the node recorded.
pub fn replay_range(
    dir: &std::path::Path,
    range: RangeInclusive<u64>,
) -> Result<Verified, RunError> {
    let source = CorpusSource::filtered(dir, |e| range.contains(&e.number))?;
    let side = SideConfig::chain("baseline");
    let results = source
        .entries()
        .par_iter()
        .map(|e| -> Result<Option<(u64, String)>, RunError> {
            let sb = source.load(e)?;
            let out = run_block(
                &sb.block,
                &sb.chain,
                &sb.codes,
                &side,
                &BlockRunOptions::default(),
            )
            .outcome;
            let f = diff_against_chain(
                &sb.block,
                &sb.chain,
                &out,
                Mode::Block,
                Comparison::BaselineVsChain,
            );
            Ok(f.first().map(|first| {
                let tx = first
                    .tx_index
                    .map(|i| format!("tx {i} "))
                    .unwrap_or_default();
                (
                    sb.block.number(),
                    format!(
                        "{tx}{}: got {}, node {} ({} difference(s))",
                        first.field,
                        first.got,
                        first.expected,
                        f.len()
                    ),
                )
            }))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let blocks = results.len();
    let mut failures: Vec<(u64, String)> = results.into_iter().flatten().collect();
    failures.sort();
    Ok(Verified {
        blocks,
        reproduced: blocks - failures.len(),
        failures,
    })
}
