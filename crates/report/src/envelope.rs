use std::collections::BTreeMap;

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};
use txshadow_diff::{Accepted, Finding};

/// Version of the `report.json` schema. Bumped on any incompatible change.
///
/// - 2 (compatible additions since): `left_out`, present when a list passed its cap.
/// - 2: `verdict` is `pending` while the run goes (was empty); `run.status` may be
///   `interrupted`; `counts.block_errors` counts blocks that failed as a whole (they were in
///   `errors`), so `matched + differing + errors + not_comparable = txs`: every tx in one
///   verdict; `configurations` always has the same keys.
/// - 1: the first schema.
pub const SCHEMA_VERSION: u32 = 2;

/// The verdict of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunVerdict {
    /// The run has not finished.
    #[default]
    Pending,
    /// No launch criterion failed (exit 0).
    Pass,
    /// A launch criterion failed (exit 1).
    Fail,
    /// The harness failed (exit 2).
    Error,
}

impl RunVerdict {
    /// The name in the reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Error => "error",
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Running (or killed before it could say otherwise: see [`crate::read_report`]).
    #[default]
    Running,
    /// Finished.
    Complete,
    /// Stopped by a harness failure.
    Failed,
    /// Stopped before the end (a signal, or the process is gone).
    Interrupted,
}

impl RunStatus {
    /// The name in the reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }
}

/// What ran on each side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Configurations {
    /// The baseline configuration, described.
    pub baseline: String,
    /// The candidate configuration, described; `None` when the baseline is compared with the
    /// chain.
    pub candidate: Option<String>,
    /// What the replayed side is compared with: `baseline` or `recorded chain results`.
    pub compared_with: String,
    /// The baseline's engine (`revm`, or the node and the path the probe chose), when a side
    /// runs on a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_engine: Option<String>,
    /// The candidate's engine, when a side runs on a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_engine: Option<String>,
    /// What each node side's probe found, by side.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_capabilities: BTreeMap<String, serde_json::Value>,
    /// Said before the run about the node sides (e.g. a node that runs none of the corpus's
    /// forks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_warnings: Vec<String>,
}

/// Counts of a run.
///
/// Every tx replayed has exactly one verdict, so `matched + differing + errors +
/// not_comparable = txs`:
/// - `txs`: transactions in the blocks replayed (skipped ones excluded);
/// - `matched`: txs without any unaccepted finding or error (accepted ones included);
/// - `differing`: txs with an unaccepted finding;
/// - `errors`: txs that could not be replayed on a side;
/// - `skipped`: txs the corpus marks as not replayable (with a reason in `skipped`).
///
/// Block-level results: `differing_blocks` counts blocks with an unaccepted finding (a block
/// whose receipts root differs while every tx matches is one), `block_errors` blocks that
/// failed as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Blocks replayed.
    pub blocks: usize,
    /// Txs replayed.
    pub txs: usize,
    /// Txs that match.
    pub matched: usize,
    /// Txs that differ.
    pub differing: usize,
    /// Txs in error.
    pub errors: usize,
    /// Txs skipped.
    pub skipped: usize,
    /// Findings, accepted ones included.
    pub findings: usize,
    /// Findings an accepted-differences rule covers.
    pub accepted: usize,
    /// Blocks with at least one unaccepted finding.
    pub differing_blocks: usize,
    /// Blocks that failed as a whole (a block-level error: the block could not be run, or
    /// its state root could not be checked).
    #[serde(default)]
    pub block_errors: usize,
    /// Gas of the txs on the reference side (chain or baseline), where known.
    pub gas_expected: u64,
    /// Gas of the same txs on the replayed side.
    pub gas_got: u64,
    /// Txs a side cannot reproduce (a node that cannot be given what the tx needs through
    /// overrides); neither matched, differing nor errors. Listed in `not_comparable`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_comparable: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A tx whose sides cannot be compared, with the reason (e.g. the node ignores an override the
/// tx depends on, or its call API does not take the tx's type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotComparable {
    /// Block number.
    pub block: u64,
    /// Index in the block.
    pub tx_index: usize,
    /// Tx hash.
    pub tx_hash: String,
    /// Why.
    pub reason: String,
    /// Findings the comparison would have reported, set aside.
    pub findings_set_aside: usize,
}

/// A block or tx left out, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Block number.
    pub block: u64,
    /// Label (fixture name), if any.
    pub label: Option<String>,
    /// Txs in it.
    pub txs: usize,
    /// Why.
    pub reason: String,
}

/// Measured speed of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Seconds loading the corpus: the reader threads' wall time in the load, summed over them
    /// (one reader per four workers; it overlaps the replay).
    pub load_seconds: f64,
    /// CPU seconds loading the corpus (all reader threads).
    #[serde(default)]
    pub load_cpu_seconds: f64,
    /// Seconds replaying and diffing.
    pub replay_seconds: f64,
    /// Gas executed per side (sum of tx gas).
    pub gas: u64,
    /// Mgas/s of the replay phase (all sides).
    pub mgas_per_s: f64,
    /// Txs per second of the replay phase.
    pub tx_per_s: f64,
    /// Worker threads.
    pub jobs: usize,
    /// How the block runs (of every side) checked their receipts: by the receipts trie and
    /// blooms, or field by field against the block's sealed recorded receipts.
    #[serde(default)]
    pub receipts_checks: ReceiptsChecks,
}

/// Block runs by how they checked their receipts (see [`Throughput::receipts_checks`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptsChecks {
    /// Receipts trie root and blooms computed.
    pub trie: usize,
    /// Equal field by field to sealed recorded receipts (root and bloom are the header's).
    pub recorded: usize,
    /// The logs bloom alone: before Byzantium without the per-tx state roots, a receipts root
    /// the header's cannot be compared with is not computed.
    #[serde(default)]
    pub bloom: usize,
}

impl ReceiptsChecks {
    /// Adds another's counts.
    pub fn add(&mut self, o: Self) {
        self.trie += o.trie;
        self.recorded += o.recorded;
        self.bloom += o.bloom;
    }
}

/// Run identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Run id (directory name).
    pub id: String,
    /// txshadow version.
    pub tool_version: String,
    /// Start time, RFC 3339.
    pub started: String,
    /// End time, RFC 3339 (empty while running).
    pub finished: String,
    /// Where the run stands.
    pub status: RunStatus,
    /// Replay mode (`block` or `tx`).
    pub mode: String,
    /// Corpus directory.
    pub corpus: String,
    /// Shard, if the run is one (`i/n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// What identifies the corpus whatever its path (its manifest's checksum), so shard
    /// reports from different machines can be told to come from the same corpus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus_checksum: Option<String>,
    /// The process that writes the report: a reader that finds the run `running` while no
    /// such process is alive knows it was killed ([`Report::status_now`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The shard run directories a merged report was made from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

/// The whole `report.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Run identity.
    pub run: RunInfo,
    /// What ran on each side.
    pub configurations: Configurations,
    /// Counts.
    pub counts: Counts,
    /// `pass` (exit 0), `fail` (exit 1), `error` (the harness failed), `pending` while the
    /// run goes.
    pub verdict: RunVerdict,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// Accepted-differences rules with their match counts (0 = stale).
    #[serde(default)]
    pub accepted_rules: Vec<Accepted>,
    /// Skipped blocks with reasons.
    pub skipped: Vec<Skipped>,
    /// Txs that cannot be compared, with reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_comparable: Vec<NotComparable>,
    /// Throughput.
    pub throughput: Throughput,
    /// The launch criteria the run was held to (`--fail-on` syntax).
    #[serde(default)]
    pub launch_criteria: Vec<String>,
    /// Launch criteria that failed the run.
    #[serde(default)]
    pub failed_criteria: Vec<String>,
    /// Warnings (e.g. accounts read outside the pre-state).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Per block, the real post-block state root where the run could compute it (a witness,
    /// or the full state), by block number.
    #[serde(default)]
    pub state_roots: Vec<StateRootEntry>,
    /// Cases passed, failed and skipped by folder and fork, for a corpus of conformance suite
    /// cases (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conformance: Option<crate::Conformance>,
    /// What the lists above leave out, counted: a run long enough (a live one) to pass a
    /// list's cap ([`crate::LISTED_FINDINGS`], [`crate::LISTED_ENTRIES`],
    /// [`crate::LISTED_WARNINGS`]). Absent when every entry is listed; `counts` are exact
    /// either way.
    #[serde(default, skip_serializing_if = "LeftOut::is_empty")]
    pub left_out: LeftOut,
}

/// Entries a report counts but does not list, past the caps that keep a run of any length in
/// bounded memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    /// Findings not listed (the listed ones are those of most impact).
    #[serde(default)]
    pub findings: usize,
    /// Those findings by kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub findings_by_kind: BTreeMap<String, KindCounts>,
    /// Skipped blocks not listed in `skipped`.
    #[serde(default)]
    pub skipped: usize,
    /// Txs not listed in `not_comparable`.
    #[serde(default)]
    pub not_comparable: usize,
    /// Warnings not listed.
    #[serde(default)]
    pub warnings: usize,
    /// Blocks' state root checks not listed in `state_roots`.
    #[serde(default)]
    pub state_roots: usize,
}

impl LeftOut {
    /// Whether nothing was left out.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Adds what another report left out (a shard's).
    pub fn add(&mut self, o: &Self) {
        self.findings += o.findings;
        for (k, v) in &o.findings_by_kind {
            let e = self.findings_by_kind.entry(k.clone()).or_default();
            e.open += v.open;
            e.accepted += v.accepted;
        }
        self.skipped += o.skipped;
        self.not_comparable += o.not_comparable;
        self.warnings += o.warnings;
        self.state_roots += o.state_roots;
    }
}

/// Findings of one kind, open and accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCounts {
    /// Not covered by an accepted-differences rule.
    pub open: usize,
    /// Covered by one.
    pub accepted: usize,
}

/// One block's state root check.
///
/// With a witness, the pre-state was checked against `parent_state_root` (`pre_state_verified`)
/// and each side's root was computed from the witness; with the full state as pre-state, the
/// roots were computed from it. `matches_header` compares a side's root with the header's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateRootEntry {
    /// Block number.
    pub block: u64,
    /// Label (fixture name), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The state root the block's header carries.
    pub header_state_root: B256,
    /// `witness` or `full pre-state`.
    pub source: String,
    /// The parent's state root the witness proves the pre-state under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_state_root: Option<B256>,
    /// Whether every pre-state account and slot matched the parent state (witness only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_state_verified: Option<bool>,
    /// Pre-state accounts checked.
    pub accounts: usize,
    /// Pre-state slots checked.
    pub slots: usize,
    /// Witness nodes.
    pub witness_nodes: usize,
    /// Witness bytes.
    pub witness_bytes: usize,
    /// Milliseconds to check the pre-state against the parent root (baseline side).
    pub verify_ms: f64,
    /// The baseline's post-block state root.
    pub baseline: SideStateRoot,
    /// The candidate's, when the run has a candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<SideStateRoot>,
}

/// One side's post-block state root.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SideStateRoot {
    /// The computed root (`None` when it could not be computed; see `error`).
    pub state_root: Option<B256>,
    /// Whether it equals the header's (`None` when not compared: no root, or a synthetic
    /// header).
    pub matches_header: Option<bool>,
    /// Milliseconds to compute it from the witness.
    pub root_ms: f64,
    /// Why the root or the pre-state check failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// The run's status as it stands now: a report left `running` by a process that is gone
    /// (killed) is `interrupted`.
    pub fn status_now(&self) -> RunStatus {
        match (self.run.status, self.run.pid) {
            (RunStatus::Running, Some(pid)) if !process_alive(pid) => RunStatus::Interrupted,
            (s, _) => s,
        }
    }
}

fn process_alive(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        true
    }
}
