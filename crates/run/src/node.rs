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
    /// Against the chain, where the chain recorded no receipts (a state test): the reference
    /// block run under the chain's rules, which the block-level checks hold to the recorded
    /// roots, and each of the node's txs is held to.
    pub(crate) block_run: Option<BlockOutcome>,
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
    let sides = BlockSides::new(block, chain, codes, ref_side, nodes);
    let (base, cand) = match candidate {
        None => (sides.run_side(baseline, nodes.baseline)?, None),
        Some(c) => {
            let (b, k) = rayon::join(
                || sides.run_side(baseline, nodes.baseline),
                || sides.run_side(c, nodes.candidate),
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
            block_run: (nodes.baseline.is_some() && block.expected.receipts.is_none())
                .then(|| sides.runner.reference.clone()),
        },
        Some((k, nc)) => NodeRun {
            reference: Some(base.0),
            got: k,
            not_comparable: merge_not_comparable(base.1, nc),
            state_compared,
            block_run: None,
        },
    })
}

/// One block's reference run and what every side's run shares: the txs' count, the block's
/// blob fee, and (when a node's capabilities need it) the opcodes each tx touches.
struct BlockSides<'a> {
    block: &'a BlockRecord,
    chain: &'a ChainConfig,
    runner: TxRunner<'a>,
    ref_side: &'a SideConfig,
    n: usize,
    blob_fee: Option<u128>,
    touches: Option<Vec<Touches>>,
}

impl<'a> BlockSides<'a> {
    fn new(
        block: &'a BlockRecord,
        chain: &'a ChainConfig,
        codes: &'a Codes,
        ref_side: &'a SideConfig,
        nodes: NodeSides<'_>,
    ) -> Self {
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
        Self {
            block,
            chain,
            runner,
            ref_side,
            n,
            blob_fee,
            touches,
        }
    }

    /// Runs every tx of the block under `side`, on revm or on `node`; returns the block's
    /// outcome and the txs the node cannot compare.
    fn run_side(
        &self,
        side: &SideConfig,
        node: Option<&NodeEngine>,
    ) -> Result<(BlockOutcome, BTreeMap<usize, String>), NodeError> {
        let mut out = self.runner.reference.clone();
        let mut nc = BTreeMap::new();
        match node {
            None => {
                out.txs = (0..self.n)
                    .into_par_iter()
                    .map(|i| self.runner.run(side, i, revm::inspector::NoOpInspector))
                    .collect();
            }
            Some(e) => self.run_on_node(side, e, &mut out, &mut nc)?,
        }
        out.gas_executed = out
            .txs
            .iter()
            .filter_map(|t| t.exec())
            .map(|e| e.gas_used)
            .sum();
        cumulate_gas(&mut out);
        Ok((out, nc))
    }

    /// Runs every tx on the node, each on its own pre-state, into `out`; the txs the node
    /// cannot compare go into `nc`.
    fn run_on_node(
        &self,
        side: &SideConfig,
        e: &NodeEngine,
        out: &mut BlockOutcome,
        nc: &mut BTreeMap<usize, String>,
    ) -> Result<(), NodeError> {
        let (block, runner, ref_side) = (self.block, &self.runner, self.ref_side);
        let reference = &runner.reference;
        let ignored = e.caps.ignored_for(self.blob_fee);
        let all = Capabilities::not_comparable_at_all(&ignored);
        let not_comparable = |i: usize| {
            all.clone().or_else(|| {
                self.touches.as_ref().and_then(|t| {
                    Capabilities::not_comparable_opcodes(&ignored, &|o| t[i].opcodes[o as usize])
                })
            })
        };
        let job = |i: usize| {
            let ov = &side.overrides;
            let touched = || tx_pre_state_touched(runner, ref_side, i, ov);
            let (pre, codes) = match e.scope {
                StateScope::Touched => touched(),
                StateScope::Block => tx_pre_state(runner, block, &reference.txs, i, ov),
                StateScope::Auto => {
                    // too large, or an account whose code the corpus lacks (a
                    // source that keeps only the code that ran): the tx's reads
                    match tx_pre_state(runner, block, &reference.txs, i, ov) {
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
        let indices: Vec<usize> = (0..self.n).collect();
        let res = e.run_block_txs(block, self.chain, &indices, &job, &not_comparable)?;
        for (t, r) in out.txs.iter_mut().zip(res) {
            let rejection = block
                .expected
                .txs
                .get(t.index)
                .and_then(|x| x.as_ref()?.rejected.as_deref());
            t.result = match r {
                NodeTx::Exec(_) if rejection.is_some() => {
                    // a call simulation runs what it is given: the tx's validity against the
                    // block is not the node's to judge over RPC
                    let s = format!(
                        "expected rejection {} cannot be checked over RPC: the node's call \
                         simulation does not validate a tx against its block (fee caps, blob \
                         counts, signature)",
                        rejection.unwrap_or_default()
                    );
                    nc.insert(t.index, s.clone());
                    Err(format!("not comparable: {s}"))
                }
                NodeTx::Exec(x) => Ok(x),
                NodeTx::Rejected(s) => Err(format!("the node refused the tx: {s}")),
                NodeTx::NotComparable(s) => {
                    let r = Err(format!("not comparable: {s}"));
                    nc.insert(t.index, s);
                    r
                }
            };
        }
        Ok(())
    }
}

/// Sets each executed tx's cumulative gas as the block would have it.
fn cumulate_gas(out: &mut BlockOutcome) {
    let mut cum = 0;
    for t in out.txs.iter_mut() {
        if let Ok(e) = &mut t.result {
            cum += e.gas_used;
            e.cumulative_gas_used = cum;
        }
    }
}

/// The txs either side cannot compare, each with its side's reason (both when they differ).
fn merge_not_comparable(
    baseline: BTreeMap<usize, String>,
    mut candidate: BTreeMap<usize, String>,
) -> BTreeMap<usize, String> {
    for (i, r) in baseline {
        candidate
            .entry(i)
            .and_modify(|x| {
                if *x != r {
                    *x = format!("baseline: {r}; candidate: {x}");
                }
            })
            .or_insert(format!("baseline: {r}"));
    }
    candidate
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
