//! Tx mode with the node engine on one side or both: revm vs node, node vs node, node vs chain.
//!
//! Every tx's pre-state comes from one reference block run under revm (the baseline's
//! configuration when the baseline is revm, the candidate's when only the candidate is, else the
//! chain's rules), exactly as in revm-only tx mode: the block pre-state plus the earlier txs'
//! effects. Block-level fields (gas, receipts root, bloom, post-state) come from that reference
//! run, as in revm-only tx mode.

use std::collections::BTreeMap;

use rayon::prelude::*;
use txshadow_corpus::{BlockRecord, ChainConfig};
use txshadow_node::{
    AUTO_LIMIT, Capabilities, NodeEngine, NodeError, NodeTx, StateScope, TxJob, override_size,
    tx_pre_state, tx_pre_state_touched,
};
use txshadow_replay::{BlockOutcome, Codes, SideConfig, Touches, TxRunner};

/// The nodes of a run, by side.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NodeSides<'a> {
    /// The baseline's node.
    pub(crate) baseline: Option<&'a NodeEngine>,
    /// The candidate's node.
    pub(crate) candidate: Option<&'a NodeEngine>,
}

impl NodeSides<'_> {
    /// Whether a side runs on a node.
    pub(crate) fn any(&self) -> bool {
        self.baseline.is_some() || self.candidate.is_some()
    }
}

/// What the sides produced: the baseline (when there is a candidate), the replayed side, and
/// the txs that cannot be compared, by index.
pub(crate) struct NodeRun {
    /// The baseline's outcome when a candidate runs; `None` when the baseline is compared with
    /// the chain.
    pub(crate) reference: Option<BlockOutcome>,
    /// The side compared with the reference (the candidate, or the baseline against the chain).
    pub(crate) got: BlockOutcome,
    /// Txs not comparable, with reasons.
    pub(crate) not_comparable: BTreeMap<usize, String>,
    /// Whether state changes can be compared (every node side's path gives the post-state).
    pub(crate) state_compared: bool,
}

/// Runs one block in tx mode with at least one side on a node.
pub(crate) fn run(
    block: &BlockRecord,
    chain: &ChainConfig,
    codes: &Codes,
    baseline: &SideConfig,
    candidate: Option<&SideConfig>,
    nodes: NodeSides<'_>,
) -> Result<NodeRun, NodeError> {
    let chain_rules = SideConfig::chain("reference");
    let ref_side = if nodes.baseline.is_none() {
        baseline
    } else if let (Some(c), None) = (candidate, nodes.candidate) {
        c
    } else {
        &chain_rules
    };
    let runner = TxRunner::new(block, chain, codes, ref_side);
    let n = runner.len();
    let blob_fee = txshadow_node::block_blob_fee(block, chain);
    let needs_touches = [nodes.baseline, nodes.candidate]
        .iter()
        .flatten()
        .any(|e| Capabilities::needs_opcode_check(&e.caps.ignored_for(blob_fee)));
    let touches: Option<Vec<Touches>> = needs_touches.then(|| {
        (0..n)
            .into_par_iter()
            .map(|i| {
                let mut t = Touches::default();
                runner.run(ref_side, i, &mut t);
                t
            })
            .collect()
    });
    let run_side = |side: &SideConfig,
                    node: Option<&NodeEngine>|
     -> Result<(BlockOutcome, BTreeMap<usize, String>), NodeError> {
        let reference = &runner.reference;
        let mut out = reference.clone();
        let mut nc = BTreeMap::new();
        match node {
            None => {
                out.txs = (0..n)
                    .into_par_iter()
                    .map(|i| runner.run(side, i, revm::inspector::NoOpInspector))
                    .collect();
            }
            Some(e) => {
                let ignored = e.caps.ignored_for(blob_fee);
                let all = Capabilities::not_comparable_at_all(&ignored);
                let not_comparable = |i: usize| {
                    all.clone().or_else(|| {
                        touches.as_ref().and_then(|t| {
                            Capabilities::not_comparable_opcodes(&ignored, &|o| {
                                t[i].opcodes[o as usize]
                            })
                        })
                    })
                };
                let job = |i: usize| {
                    let ov = &side.overrides;
                    let touched = || tx_pre_state_touched(&runner, ref_side, i, ov);
                    let (pre, codes) = match e.scope {
                        StateScope::Touched => touched(),
                        StateScope::Block => tx_pre_state(&runner, block, &reference.txs, i, ov),
                        StateScope::Auto => {
                            // too large, or an account whose code the corpus lacks (a
                            // source that keeps only the code that ran): the tx's reads
                            match tx_pre_state(&runner, block, &reference.txs, i, ov) {
                                Ok((p, c)) if override_size(&p, &c) <= AUTO_LIMIT => Ok((p, c)),
                                _ => touched(),
                            }
                        }
                    }
                    .map_err(|e| e.to_string())?;
                    Ok(TxJob {
                        index: i,
                        pre,
                        codes,
                    })
                };
                let indices: Vec<usize> = (0..n).collect();
                let res = e.run_block_txs(block, chain, &indices, &job, &not_comparable)?;
                for (t, r) in out.txs.iter_mut().zip(res) {
                    t.result = match r {
                        NodeTx::Exec(x) => Ok(x),
                        NodeTx::Rejected(s) => Err(format!("the node refused the tx: {s}")),
                        NodeTx::NotComparable(s) => {
                            let r = Err(format!("not comparable: {s}"));
                            nc.insert(t.index, s);
                            r
                        }
                    };
                }
            }
        }
        out.gas_executed = out
            .txs
            .iter()
            .filter_map(|t| t.exec())
            .map(|e| e.gas_used)
            .sum();
        // cumulative gas as the block would have it
        let mut cum = 0;
        for t in out.txs.iter_mut() {
            if let Ok(e) = &mut t.result {
                cum += e.gas_used;
                e.cumulative_gas_used = cum;
            }
        }
        Ok((out, nc))
    };
    let (base, cand) = match candidate {
        None => (run_side(baseline, nodes.baseline)?, None),
        Some(c) => {
            let (b, k) = rayon::join(
                || run_side(baseline, nodes.baseline),
                || run_side(c, nodes.candidate),
            );
            (b?, Some(k?))
        }
    };
    let state_compared = [nodes.baseline, nodes.candidate]
        .iter()
        .flatten()
        .all(|e| e.caps.state_compared);
    Ok(match cand {
        None => NodeRun {
            reference: None,
            got: base.0,
            not_comparable: base.1,
            state_compared,
        },
        Some((k, mut nc)) => {
            for (i, r) in base.1 {
                nc.entry(i)
                    .and_modify(|x| {
                        if *x != r {
                            *x = format!("baseline: {r}; candidate: {x}");
                        }
                    })
                    .or_insert(format!("baseline: {r}"));
            }
            NodeRun {
                reference: Some(base.0),
                got: k,
                not_comparable: nc,
                state_compared,
            }
        }
    })
}

/// A node that says which hardfork it runs (anvil) and runs none of the forks of the blocks
/// replayed applies other rules to every tx: said at the end of the run (in the log and the
/// report), not an error, since comparing rules is a use of its own.
pub(crate) struct NodeWarnings<'a> {
    nodes: NodeSides<'a>,
    seen: std::sync::Mutex<std::collections::BTreeSet<txshadow_replay::SpecId>>,
}

impl<'a> NodeWarnings<'a> {
    pub(crate) fn new(nodes: NodeSides<'a>) -> Self {
        Self {
            nodes,
            seen: Default::default(),
        }
    }

    /// Notes the fork a block runs under.
    pub(crate) fn see(&self, sb: &crate::SourceBlock) {
        if !self.nodes.any() || sb.block.unsupported.is_some() {
            return;
        }
        let spec = txshadow_replay::evm_env(&sb.block, &sb.chain, &SideConfig::chain("corpus"))
            .cfg_env
            .spec;
        self.seen.lock().expect("not poisoned").insert(spec);
    }

    /// The warnings, each also logged.
    pub(crate) fn finish(self) -> Vec<String> {
        let forks = self.seen.into_inner().expect("not poisoned");
        if forks.is_empty() {
            return vec![];
        }
        let names: Vec<String> = forks
            .iter()
            .map(|s| txshadow_replay::spec_name(*s))
            .collect();
        let warnings: Vec<String> = [
            ("baseline", self.nodes.baseline),
            ("candidate", self.nodes.candidate),
        ]
        .into_iter()
        .filter_map(|(side, n)| {
            let fork = n?.caps.hardfork.as_deref()?;
            let spec = txshadow_replay::parse_spec(fork)?;
            (!forks.contains(&spec)).then(|| {
                format!(
                    "{side} node runs {fork}, the corpus's blocks run {}: its txs run under \
                     other rules (start the node with the corpus's hardfork to compare engines)",
                    names.join(", ")
                )
            })
        })
        .collect();
        for w in &warnings {
            tracing::warn!("{w}");
        }
        warnings
    }
}
