//! One-transaction triage: replay a tx under both sides with step tracing, find the first
//! diverging step, and show both call trees.

use std::{path::Path, time::Instant};

use alloy_primitives::{Address, B256};
use eyre::{Result, bail};
use serde::Serialize;
use txshadow_diff::{Comparison, Finding, Kind, Mode, diff_against_chain, diff_outcomes};
use txshadow_replay::{
    BlockOutcome, Frame, RichStep, SideConfig, Step, StepTrace, StepWindow, TxOutcome, TxRunner,
};

use crate::{CorpusSource, SourceBlock};

/// Schema version of `txshadow tx --json`.
pub const TRIAGE_SCHEMA_VERSION: u32 = 1;

/// One field's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct FieldVerdict {
    /// `status`, `gas`, `output`, `logs`, `created_address`, `state`, `error`.
    pub field: String,
    /// Whether both sides agree.
    pub equal: bool,
    /// Number of findings.
    pub findings: usize,
}

/// Where the two traces part.
#[derive(Debug, Clone, Serialize)]
pub struct Divergence {
    /// Step index (0 = the first instruction of the tx).
    pub step: usize,
    /// `instruction` (different pc/opcode/depth), `gas_cost`, `result` (different stack
    /// result), or `trace_end` (one side stopped).
    pub reason: String,
    /// Call depth.
    pub depth: u16,
    /// Address whose code runs there.
    pub address: Option<Address>,
    /// Selector of the frame's input.
    pub selector: Option<String>,
    /// Frame kind (CALL, DELEGATECALL, ...).
    pub frame_kind: String,
    /// Index of the frame in each side's call list.
    pub frame: (Option<u32>, Option<u32>),
    /// Program counter on each side.
    pub pc: (Option<u32>, Option<u32>),
    /// Opcode name on each side.
    pub opcode: (Option<String>, Option<String>),
    /// Gas left before the step on each side.
    pub gas: (Option<u64>, Option<u64>),
    /// Gas charged by the step on each side.
    pub gas_cost: (Option<u64>, Option<u64>),
    /// Steps around it, baseline side.
    pub context_baseline: Vec<RichStep>,
    /// Steps around it, candidate side.
    pub context_candidate: Vec<RichStep>,
}

/// Everything `txshadow tx` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Triage {
    /// [`TRIAGE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Tx hash.
    pub tx: B256,
    /// Block number.
    pub block: u64,
    /// Index in the block.
    pub index: usize,
    /// Sender.
    pub from: Address,
    /// Recipient.
    pub to: Option<Address>,
    /// Baseline configuration.
    pub baseline: String,
    /// Candidate configuration, or `chain` (the recorded results).
    pub candidate: String,
    /// Per-field verdict.
    pub verdict: Vec<FieldVerdict>,
    /// All findings.
    pub findings: Vec<Finding>,
    /// Intrinsic gas differs (gas at the first step, baseline vs candidate).
    pub intrinsic_gas: Option<(u64, u64)>,
    /// The first diverging step, if the traces part.
    pub divergence: Option<Divergence>,
    /// Call frames, baseline side.
    pub calls_baseline: Vec<Frame>,
    /// Call frames, candidate side.
    pub calls_candidate: Vec<Frame>,
    /// Steps traced per side.
    pub steps: (usize, usize),
    /// Unified diff of both traces around the divergence (with `--diff`).
    pub diff: Option<String>,
    /// Wall time of the triage in milliseconds (corpus load excluded).
    pub elapsed_ms: u128,
    /// Outcomes of both sides.
    pub outcomes: (TxOutcome, Option<TxOutcome>),
    /// What the comparison with the chain rests on, when there is no candidate.
    pub note: Option<String>,
}

const CALLS: [u8; 6] = [0xf0, 0xf1, 0xf2, 0xf4, 0xf5, 0xfa];

/// First step where the two traces part.
fn first_divergence(a: &[Step], b: &[Step]) -> Option<(usize, &'static str)> {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if (x.pc, x.op, x.depth) != (y.pc, y.op, y.depth) {
            return Some((i, "instruction"));
        }
        if !CALLS.contains(&x.op) {
            if x.cost != y.cost {
                return Some((i, "gas_cost"));
            }
            if x.out != y.out && x.op != 0x5a {
                return Some((i, "result"));
            }
        }
    }
    (a.len() != b.len()).then(|| (a.len().min(b.len()), "trace_end"))
}

fn with_tx(reference: &BlockOutcome, t: &TxOutcome) -> BlockOutcome {
    let mut o = reference.clone();
    if let Some(slot) = o.txs.get_mut(t.index) {
        *slot = t.clone();
    }
    o
}

fn rich(steps: &mut [RichStep], trace: &[Step]) {
    for s in steps {
        if let Some(c) = trace.get(s.index) {
            s.depth = c.depth;
        }
    }
}

/// A trace line for the text diff: no absolute gas (an intrinsic-gas offset would make every
/// line differ), the cost and the top of the stack instead.
fn line(s: &RichStep) -> String {
    let stack: Vec<String> = s
        .stack
        .iter()
        .take(3)
        .map(|v| short_hex(&format!("{v:#x}"), 14))
        .collect();
    format!(
        "#{:<5} d{} pc {:<5} {:<10} cost {:<5} [{}]\n",
        s.index,
        s.depth,
        s.pc,
        s.name,
        s.cost,
        stack.join(" ")
    )
}

/// Shortens a long string in the middle.
pub fn short_hex(s: &str, max: usize) -> String {
    if s.len() <= max {
        s.to_string()
    } else {
        let keep = (max - 1) / 2;
        format!("{}…{}", &s[..keep], &s[s.len() - (max - 1 - keep)..])
    }
}

/// Options of a triage.
#[derive(Debug, Clone)]
pub struct TriageOptions {
    /// Steps of context around the divergence.
    pub context: usize,
    /// Step cap per side.
    pub max_steps: usize,
    /// Produce the unified diff.
    pub diff: bool,
}

/// Replays one tx under both sides (or the baseline against the chain) and triages it.
pub fn triage(
    corpus: &Path,
    which: &str,
    baseline: &SideConfig,
    candidate: Option<&SideConfig>,
    opts: &TriageOptions,
) -> Result<(Triage, SourceBlock)> {
    // only the block that holds the tx is loaded: triage of one tx must not pay for a corpus
    let (sb, index) = CorpusSource::open(corpus, None)?.find_tx(which)?;
    let t0 = Instant::now();
    let (block, chain) = (&sb.block, &sb.chain);
    if let Some(r) = &block.unsupported {
        bail!("block {} cannot be replayed: {r}", block.number());
    }
    let runner = TxRunner::new(block, chain, &sb.codes, baseline);
    let mut tb = StepTrace::new(opts.max_steps);
    let ob = runner.run(baseline, index, &mut tb);
    let (oc, tc) = match candidate {
        Some(c) => {
            let mut tc = StepTrace::new(opts.max_steps);
            let oc = runner.run(c, index, &mut tc);
            (Some(oc), Some(tc))
        }
        None => (None, None),
    };
    let findings = tx_findings(&sb, &runner, index, &ob, oc.as_ref());
    let verdict = verdicts(&findings);
    let traced = match (candidate, &tc) {
        (Some(c), Some(tc)) => {
            let sides = Sides {
                runner: &runner,
                baseline,
                candidate: c,
                index,
            };
            compare_traces(&sides, &tb, tc, opts)
        }
        _ => TraceComparison::default(),
    };
    let note = candidate
        .is_none()
        .then(|| chain_note(&sb, &runner.reference, index));
    let rec = &block.transactions[index];
    let t = Triage {
        note,
        schema_version: TRIAGE_SCHEMA_VERSION,
        tx: rec.hash,
        block: block.number(),
        index,
        from: rec.from,
        to: ob.to,
        baseline: baseline.describe(),
        candidate: candidate.map_or_else(|| "chain".to_string(), |c| c.describe()),
        verdict,
        findings,
        intrinsic_gas: traced.intrinsic_gas,
        divergence: traced.divergence,
        calls_baseline: tb.frames,
        calls_candidate: tc.as_ref().map(|t| t.frames.clone()).unwrap_or_default(),
        steps: (tb.steps.len(), tc.as_ref().map_or(0, |t| t.steps.len())),
        diff: traced.diff,
        elapsed_ms: t0.elapsed().as_millis(),
        outcomes: (ob, oc),
    };
    Ok((t, sb))
}

/// The findings about tx `index`: the baseline against the candidate, or against the chain.
fn tx_findings(
    sb: &SourceBlock,
    runner: &TxRunner<'_>,
    index: usize,
    ob: &TxOutcome,
    oc: Option<&TxOutcome>,
) -> Vec<Finding> {
    let (block, chain) = (&sb.block, &sb.chain);
    match oc {
        Some(oc) => diff_outcomes(
            block,
            &with_tx(&runner.reference, ob),
            &with_tx(&runner.reference, oc),
            Mode::Tx,
        ),
        None => diff_against_chain(
            block,
            chain,
            &with_tx(&runner.reference, ob),
            Mode::Tx,
            Comparison::BaselineVsChain,
        ),
    }
    .into_iter()
    .filter(|f| f.tx_index == Some(index))
    .collect()
}

/// One verdict per field, from the findings of that field's kinds.
fn verdicts(findings: &[Finding]) -> Vec<FieldVerdict> {
    let kinds = [
        ("error", vec![Kind::Error]),
        ("status", vec![Kind::Status]),
        ("gas", vec![Kind::Gas]),
        ("output", vec![Kind::Output]),
        ("logs", vec![Kind::Logs]),
        ("created_address", vec![Kind::CreatedAddress]),
        ("state", vec![Kind::State]),
    ];
    kinds
        .iter()
        .map(|(name, ks)| {
            let n = findings.iter().filter(|f| ks.contains(&f.kind)).count();
            FieldVerdict {
                field: (*name).into(),
                equal: n == 0,
                findings: n,
            }
        })
        .collect()
}

/// The runner and both sides of one tx, for the reruns that record a window of steps.
struct Sides<'a> {
    runner: &'a TxRunner<'a>,
    baseline: &'a SideConfig,
    candidate: &'a SideConfig,
    index: usize,
}

/// What the two step traces show.
#[derive(Default)]
struct TraceComparison {
    intrinsic_gas: Option<(u64, u64)>,
    divergence: Option<Divergence>,
    diff: Option<String>,
}

/// Compares the two step traces: the gas at the first step, the first diverging step with its
/// context, and (with `opts.diff`) the text diff around it.
fn compare_traces(
    sides: &Sides<'_>,
    tb: &StepTrace,
    tc: &StepTrace,
    opts: &TriageOptions,
) -> TraceComparison {
    let mut out = TraceComparison::default();
    if let (Some(a), Some(b)) = (tb.steps.first(), tc.steps.first())
        && a.gas != b.gas
    {
        out.intrinsic_gas = Some((a.gas, b.gas));
    }
    let Some((k, reason)) = first_divergence(&tb.steps, &tc.steps) else {
        return out;
    };
    let from = k.saturating_sub(opts.context);
    let to = k + opts.context + 1;
    let mut wb = StepWindow::new(from, to);
    let mut wc = StepWindow::new(from, to);
    sides.runner.run(sides.baseline, sides.index, &mut wb);
    sides.runner.run(sides.candidate, sides.index, &mut wc);
    rich(&mut wb.steps, &tb.steps);
    rich(&mut wc.steps, &tc.steps);
    if opts.diff {
        out.diff = Some(trace_diff(&wb.steps, &wc.steps, opts.context));
    }
    out.divergence = Some(divergence(tb, tc, k, reason, wb.steps, wc.steps));
    out
}

/// The unified diff of two windows of steps.
fn trace_diff(wb: &[RichStep], wc: &[RichStep], context: usize) -> String {
    let a: String = wb.iter().map(line).collect();
    let b: String = wc.iter().map(line).collect();
    let d = similar::TextDiff::from_lines(&a, &b);
    d.unified_diff()
        .context_radius(context)
        .header("baseline", "candidate")
        .to_string()
}

/// The divergence at step `k`: each side's step there, its frame, and the context windows.
fn divergence(
    tb: &StepTrace,
    tc: &StepTrace,
    k: usize,
    reason: &str,
    context_baseline: Vec<RichStep>,
    context_candidate: Vec<RichStep>,
) -> Divergence {
    let sb = tb.steps.get(k);
    let sc = tc.steps.get(k);
    let frame_of =
        |t: &StepTrace, s: Option<&Step>| s.and_then(|s| t.frames.get(s.frame as usize).cloned());
    let fr = frame_of(tb, sb).or_else(|| frame_of(tc, sc));
    let name = |op: u8| txshadow_replay::opcode_name(op);
    Divergence {
        step: k,
        reason: reason.into(),
        depth: sb.or(sc).map(|s| s.depth).unwrap_or(0),
        address: fr.as_ref().and_then(|f| f.code),
        selector: fr
            .as_ref()
            .and_then(|f| f.selector)
            .map(alloy_primitives::hex::encode_prefixed),
        frame_kind: fr.as_ref().map(|f| f.kind.clone()).unwrap_or_default(),
        frame: (sb.map(|s| s.frame), sc.map(|s| s.frame)),
        pc: (sb.map(|s| s.pc), sc.map(|s| s.pc)),
        opcode: (sb.map(|s| name(s.op)), sc.map(|s| name(s.op))),
        gas: (sb.map(|s| s.gas), sc.map(|s| s.gas)),
        gas_cost: (sb.map(|s| s.cost), sc.map(|s| s.cost)),
        context_baseline,
        context_candidate,
    }
}

/// Without a candidate: what the comparison with the chain rests on for tx `index`.
fn chain_note(sb: &SourceBlock, reference: &BlockOutcome, index: usize) -> String {
    let (block, chain) = (&sb.block, &sb.chain);
    let recorded = block.expected.receipts.is_some()
        || block.expected.txs.get(index).is_some_and(|x| x.is_some());
    let block_level: Vec<Finding> = diff_against_chain(
        block,
        chain,
        reference,
        Mode::Block,
        Comparison::BaselineVsChain,
    )
    .into_iter()
    .filter(|f| f.tx_index.is_none())
    .collect();
    match (recorded, block_level.is_empty()) {
        (true, _) => "compared with the receipt/trace the source recorded for this tx".to_string(),
        (false, true) => "the source recorded no per-tx result; the block replay reproduces the header's gas, logs bloom and receipts root, which include this tx's receipt".to_string(),
        (false, false) => format!(
            "the source recorded no per-tx result, and the block replay differs from the header ({} block-level findings: run txshadow replay)",
            block_level.len()
        ),
    }
}

/// Writes full EIP-3155 traces of both sides (`baseline.jsonl`, `candidate.jsonl`), streamed to
/// disk by revm's tracer, never held in memory.
pub fn write_eip3155(
    sb: &SourceBlock,
    t: &Triage,
    baseline: &SideConfig,
    candidate: Option<&SideConfig>,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let index = t.index;
    let runner = TxRunner::new(&sb.block, &sb.chain, &sb.codes, baseline);
    for (name, side) in [("baseline", Some(baseline)), ("candidate", candidate)] {
        let Some(side) = side else { continue };
        let file = std::fs::File::create(dir.join(format!("{name}.jsonl")))?;
        let tracer = revm::inspector::inspectors::TracerEip3155::new(Box::new(
            std::io::BufWriter::new(file),
        ));
        runner.run(side, index, tracer);
    }
    Ok(())
}
