//! The report's per-block state-root entries, from the sides' block outcomes.

use txshadow_corpus::BlockRecord;
use txshadow_replay::BlockOutcome;
use txshadow_report::{SideStateRoot, StateRootEntry};

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn side(block: &BlockRecord, o: &BlockOutcome) -> SideStateRoot {
    let w = o.witness.as_ref();
    let root = o.state_root.filter(|_| o.state_root_exact);
    let compared = root.is_some() && block.expected.header_checks && !block.synthetic;
    SideStateRoot {
        state_root: root,
        matches_header: compared.then(|| root == Some(block.header.state_root)),
        root_ms: w.map_or(0.0, |w| ms(w.root_micros)),
        error: w.and_then(|w| w.error.clone()),
    }
}

/// The entry of a block whose real state root the run computed (or tried to, from a witness):
/// `baseline` is the baseline's outcome, `candidate` the candidate's when the run has one.
pub(crate) fn entry(
    block: &BlockRecord,
    baseline: &BlockOutcome,
    candidate: Option<&BlockOutcome>,
) -> Option<StateRootEntry> {
    let w = baseline.witness.as_ref();
    if w.is_none() && !baseline.state_root_exact {
        return None;
    }
    let candidate = candidate
        .filter(|c| c.witness.is_some() || c.state_root_exact)
        .map(|c| side(block, c));
    Some(StateRootEntry {
        block: block.number(),
        label: block.label.clone(),
        header_state_root: block.header.state_root,
        source: match (w, block.witness.as_ref().and_then(|w| w.genesis_trie_root)) {
            (Some(_), Some(_)) => {
                "witness (under the node's genesis trie root, not the genesis \
                                   header's state root)"
            }
            (Some(_), None) => "witness",
            (None, _) => "full pre-state",
        }
        .into(),
        parent_state_root: w.map(|w| w.parent_state_root),
        pre_state_verified: w.map(|w| w.pre_state_verified),
        accounts: w.map_or(block.pre_state.len(), |w| w.accounts),
        slots: w.map_or_else(
            || {
                block
                    .pre_state
                    .values()
                    .flatten()
                    .map(|a| a.storage.len())
                    .sum()
            },
            |w| w.slots,
        ),
        witness_nodes: w.map_or(0, |w| w.nodes),
        witness_bytes: w.map_or(0, |w| w.bytes),
        verify_ms: w.map_or(0.0, |w| ms(w.verify_micros)),
        baseline: side(block, baseline),
        candidate,
    })
}
