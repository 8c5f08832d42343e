//! The replay run: a work queue over blocks (largest first), a config struct, a progress channel.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::Instant,
};

use eyre::{Result, WrapErr};
use txshadow_corpus::{BlockRecord, ChainConfig, Corpus};
use txshadow_diff::{
    AcceptedFile, Finding, Kind, Mode, Side, apply_accepted, diff_against_chain, diff_outcomes,
};
use txshadow_replay::{
    BlockOutcome, BlockRunOptions, Codes, SideConfig, TxOutcome, run_block, run_block_pair,
    run_block_tx_mode,
};
use txshadow_report::{BlockResult, Report, ReportWriter, RunInfo, TxRow};

use crate::node_run::NodeSides;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Corpus directory.
    pub corpus: PathBuf,
    /// Mode.
    pub mode: Mode,
    /// Worker threads (0 = all cores).
    pub jobs: usize,
    /// Baseline configuration.
    pub baseline: SideConfig,
    /// Candidate configuration; `None` compares the baseline with the chain.
    pub candidate: Option<SideConfig>,
    /// The node the baseline runs on (node engine), if any.
    pub baseline_node: Option<txshadow_node::NodeSpec>,
    /// The node the candidate runs on (node engine), if any.
    pub candidate_node: Option<txshadow_node::NodeSpec>,
    /// Where run directories go.
    pub out_dir: PathBuf,
    /// Run id (default: time-based).
    pub run_id: Option<String>,
    /// Accepted differences.
    pub accepted: Option<AcceptedFile>,
    /// Launch criteria.
    pub fail_on: Vec<crate::cmd::replay::Criterion>,
    /// Only blocks of shard `i` of `n` (by position in the corpus).
    pub shard: Option<(usize, usize)>,
}

/// A progress event.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Blocks and txs to do.
    Start {
        /// Blocks.
        blocks: usize,
        /// Txs.
        txs: usize,
    },
    /// One block done.
    Block {
        /// Its txs.
        txs: usize,
        /// Gas executed.
        gas: u64,
    },
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The final report.
    pub report: Report,
    /// The run directory.
    pub dir: PathBuf,
    /// Exit code.
    pub exit: u8,
}

/// The corpus loaded for replay.
#[derive(Debug)]
pub struct Loaded {
    /// Blocks.
    pub blocks: Vec<BlockRecord>,
    /// Codes, decoded.
    pub codes: Codes,
    /// The chain.
    pub chain: ChainConfig,
    /// Seconds spent.
    pub seconds: f64,
    /// CPU seconds spent (all threads).
    pub cpu_seconds: f64,
}

/// Loads and checks a corpus.
pub fn load(dir: &std::path::Path, shard: Option<(usize, usize)>) -> Result<Loaded> {
    let t = Instant::now();
    let cpu = crate::process_cpu_seconds();
    let corpus = Corpus::open(dir)?;
    let mut blocks = corpus.load_blocks()?;
    if let Some((i, n)) = shard {
        blocks = blocks
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % n == i)
            .map(|(_, b)| b)
            .collect();
    }
    let store = corpus.load_codes(&blocks)?;
    // the store holds exactly the codes these blocks refer to
    let codes = Codes::from_store(&store, store.hashes());
    Ok(Loaded {
        blocks,
        codes,
        chain: corpus.manifest().chain.clone(),
        seconds: t.elapsed().as_secs_f64(),
        cpu_seconds: crate::process_cpu_seconds() - cpu,
    })
}

fn sel(t: &TxOutcome) -> String {
    t.selector
        .map(alloy_primitives::hex::encode_prefixed)
        .unwrap_or_default()
}

/// A row's fields from the tx. Addresses are lower-case hex: the EIP-55 checksum costs a keccak
/// per address, which over every row was 2% of a whole block-mode run.
fn row_base(block: &BlockRecord, t: &TxOutcome) -> TxRow {
    let name = |a: alloy_primitives::Address| format!("{a:#x}");
    TxRow {
        block: block.number(),
        index: t.index,
        hash: t.hash.to_string(),
        from: name(t.from),
        to: t.to.map(name).unwrap_or_default(),
        selector: sel(t),
        tx_type: t.tx_type,
        ..Default::default()
    }
}

fn status(s: bool) -> String {
    if s { "1".into() } else { "0".into() }
}

/// Sets a row's verdict from its findings. `logs_equal`/`state_equal` hold a marker when the
/// field was compared and become `true`/`false`.
fn fill_verdict(row: &mut TxRow, mine: &[&Finding]) {
    if row.verdict == "skipped" || row.verdict == "not-comparable" {
        return;
    }
    let compared_logs = !row.logs_equal.is_empty();
    let compared_state = !row.state_equal.is_empty();
    let open = mine.iter().any(|f| f.accepted.is_none());
    let has = |k: Kind| mine.iter().any(|f| f.kind == k);
    if compared_logs {
        row.logs_equal = (!has(Kind::Logs)).to_string();
    }
    if compared_state {
        row.state_equal = (!has(Kind::State)).to_string();
    }
    let mut kinds: Vec<&str> = mine.iter().map(|f| f.kind.as_str()).collect();
    kinds.dedup();
    row.kinds = kinds.join(";");
    row.verdict = if has(Kind::Error) {
        "error"
    } else if open {
        "differ"
    } else if !mine.is_empty() {
        "accepted"
    } else {
        "match"
    }
    .into();
    if let (Ok(g), Ok(e)) = (
        row.got_gas.parse::<i128>(),
        row.expected_gas.parse::<i128>(),
    ) {
        row.gas_delta = (g - e).to_string();
    }
}

/// Why a side's post-block state root could not be computed from the witness.
fn witness_error(o: &BlockOutcome) -> Option<String> {
    o.witness.as_ref()?.error.clone()
}

/// Replays one block under the run's configuration and diffs it. Fails only when a node the
/// run depends on fails for good (a harness failure).
pub fn process_block(
    block: &BlockRecord,
    chain: &ChainConfig,
    codes: &Codes,
    cfg: &RunConfig,
    nodes: NodeSides<'_>,
) -> Result<BlockResult, txshadow_node::NodeError> {
    let mut r = BlockResult {
        block: block.number(),
        label: block.label.clone(),
        ..Default::default()
    };
    if let Some(reason) = &block.unsupported {
        r.skipped = Some(reason.clone());
        r.rows = block
            .transactions
            .iter()
            .enumerate()
            .map(|(i, t)| TxRow {
                block: block.number(),
                index: i,
                hash: t.hash.to_string(),
                from: t.from.to_string(),
                verdict: "skipped".into(),
                ..Default::default()
            })
            .collect();
        return Ok(r);
    }
    let ch = block.chain.as_ref().unwrap_or(chain);
    let mut block_mode_run = None;
    let mut not_comparable = std::collections::BTreeMap::new();
    let mut state_compared = true;
    let (reference, got): (Option<BlockOutcome>, BlockOutcome) = match (cfg.mode, &cfg.candidate) {
        _ if nodes.any() => {
            let o = crate::node_run::run(
                block,
                ch,
                codes,
                &cfg.baseline,
                cfg.candidate.as_ref(),
                nodes,
            )?;
            not_comparable = o.not_comparable;
            state_compared = o.state_compared;
            (o.reference, o.got)
        }
        (Mode::Block, None) => {
            // per-tx state only when the chain recorded some to compare it with
            let tx_state = block.expected.has_tx_post_states();
            let opts = BlockRunOptions {
                tx_state,
                ..Default::default()
            };
            let run = run_block(block, ch, codes, &cfg.baseline, &opts);
            (None, run.outcome)
        }
        (Mode::Tx, None) => {
            let o = run_block_tx_mode(block, ch, codes, &cfg.baseline, None);
            block_mode_run = Some(o.reference);
            (None, o.baseline)
        }
        (Mode::Block, Some(c)) => {
            let opts = BlockRunOptions::default();
            let (b, k) = run_block_pair(block, ch, codes, &cfg.baseline, c, &opts);
            (Some(b.outcome), k.outcome)
        }
        (Mode::Tx, Some(c)) => {
            let o = run_block_tx_mode(block, ch, codes, &cfg.baseline, Some(c));
            (Some(o.baseline), o.candidate.expect("candidate requested"))
        }
    };
    r.findings = match &reference {
        None => diff_against_chain(block, ch, &got, cfg.mode, Side::BaselineVsChain),
        Some(b) => diff_outcomes(block, b, &got, cfg.mode),
    };
    if let Some(block_run) = &block_mode_run {
        // tx mode against the chain: each tx alone must also agree with the block run, whose
        // receipts the header's receipts root vouches for
        let mut agree = diff_outcomes(block, block_run, &got, Mode::Tx);
        for f in &mut agree {
            f.side = Side::BaselineVsChain;
            f.field = format!("{} (tx mode vs block mode)", f.field);
        }
        r.findings.extend(agree);
    }
    r.error = got
        .error
        .clone()
        .or_else(|| reference.as_ref().and_then(|b| b.error.clone()))
        .or_else(|| witness_error(&got).or_else(|| reference.as_ref().and_then(witness_error)));
    r.state_root = match &reference {
        None => crate::state_roots::entry(block, &got, None),
        Some(b) => crate::state_roots::entry(block, b, Some(&got)),
    };
    r.gas = got.gas_executed + reference.as_ref().map_or(0, |b| b.gas_executed);
    for t in &got.txs {
        if let Err(e) = &t.result {
            r.tx_errors.push((t.index, e.clone()));
        }
        if let Some(Err(e)) = reference
            .as_ref()
            .and_then(|b| b.txs.get(t.index))
            .map(|x| &x.result)
            && t.result.is_ok()
        {
            r.tx_errors.push((t.index, format!("baseline: {e}")));
        }
    }
    if !state_compared {
        // a node path without post-state (eth_simulateV1): tx state changes are not compared
        r.findings
            .retain(|f| f.kind != Kind::State || f.tx_index.is_none());
    }
    if !not_comparable.is_empty() {
        // not a difference and not an error: set the findings aside, keep the reason
        let mut set_aside: std::collections::BTreeMap<usize, usize> = Default::default();
        r.findings.retain(|f| match f.tx_index {
            Some(i) if not_comparable.contains_key(&i) => {
                *set_aside.entry(i).or_default() += 1;
                false
            }
            _ => true,
        });
        r.tx_errors.retain(|(i, _)| !not_comparable.contains_key(i));
        for (i, reason) in &not_comparable {
            r.not_comparable.push(txshadow_report::NotComparable {
                block: block.number(),
                tx_index: *i,
                tx_hash: block.transactions[*i].hash.to_string(),
                reason: reason.clone(),
                findings_set_aside: set_aside.get(i).copied().unwrap_or_default(),
            });
        }
    }
    let receipts = block.expected.receipts.as_ref();
    for t in &got.txs {
        let mut row = row_base(block, t);
        if let Some(reason) = not_comparable.get(&t.index) {
            row.verdict = "not-comparable".into();
            row.note = reason.clone();
            r.rows.push(row);
            continue;
        }
        if let Some(e) = t.exec() {
            row.got_status = status(e.status);
            row.got_gas = e.gas_used.to_string();
        }
        let (compared_logs, compared_state) = match &reference {
            Some(b) => {
                if let Some(e) = b.txs.get(t.index).and_then(|x| x.exec()) {
                    row.expected_status = status(e.status);
                    row.expected_gas = e.gas_used.to_string();
                }
                (true, true)
            }
            None => {
                let rc = receipts.and_then(|r| r.get(t.index));
                let x = block.expected.txs.get(t.index).and_then(|x| x.as_ref());
                if let Some(rc) = rc {
                    row.expected_status = rc.status.map(status).unwrap_or_default();
                    row.expected_gas = rc.gas_used.to_string();
                } else if let Some(x) = x {
                    row.expected_status = x.status.map(status).unwrap_or_default();
                    row.expected_gas = x.gas_used.map(|g| g.to_string()).unwrap_or_default();
                }
                (
                    rc.is_some() || x.is_some_and(|x| x.logs.is_some()),
                    x.is_some_and(|x| x.post_state.is_some()),
                )
            }
        };
        if compared_logs {
            row.logs_equal = "compared".into();
        }
        if compared_state && state_compared {
            row.state_equal = "compared".into();
        }
        r.rows.push(row);
    }
    Ok(r)
}

/// Runs `f` on every item of `order` on the pool's threads: one task per thread pulls the next
/// item of the shared queue until it is empty, so with `order` sorted largest first no thread
/// idles while a large item waits, and the last items to run are the small ones. A thread
/// whose queue is empty helps with the nested parallel work of the others (tx mode).
pub fn for_each_queued<F: Fn(usize) + Sync>(pool: &rayon::ThreadPool, order: &[usize], f: F) {
    let next = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..pool.current_num_threads() {
            s.spawn(|_| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    f(i);
                }
            });
        }
    });
}

/// A node that says which hardfork it runs (anvil) and runs none of the corpus blocks' forks
/// applies other rules to every tx: said before the run (and in the report), not an error,
/// since comparing rules is a use of its own.
fn node_fork_warnings(loaded: &Loaded, nodes: NodeSides<'_>) -> Vec<String> {
    let forks: std::collections::BTreeSet<_> = loaded
        .blocks
        .iter()
        .filter(|b| b.unsupported.is_none())
        .map(|b| {
            let ch = b.chain.as_ref().unwrap_or(&loaded.chain);
            txshadow_replay::evm_env(b, ch, &SideConfig::chain("corpus"))
                .cfg_env
                .spec
        })
        .collect();
    [("baseline", nodes.baseline), ("candidate", nodes.candidate)]
        .into_iter()
        .filter_map(|(side, n)| {
            let n = n?;
            let fork = n.caps.hardfork.as_deref()?;
            let spec = txshadow_replay::parse_spec(fork)?;
            (!forks.contains(&spec)).then(|| {
                let names: Vec<String> = forks
                    .iter()
                    .map(|s| txshadow_replay::spec_name(*s))
                    .collect();
                format!(
                    "{side} node runs {fork}, the corpus's blocks run {}: its txs run under \
                     other rules (start the node with the corpus's hardfork to compare engines)",
                    names.join(", ")
                )
            })
        })
        .collect()
}

/// Runs a replay: load, replay in parallel, diff, stream reports. Errors are harness failures.
pub fn run(cfg: &RunConfig, progress: &(dyn Fn(Progress) + Sync)) -> Result<RunOutcome> {
    let loaded = load(&cfg.corpus, cfg.shard)?;
    if (cfg.baseline_node.is_some() || cfg.candidate_node.is_some()) && cfg.mode != Mode::Tx {
        eyre::bail!("the node engine runs in tx mode only: use --mode tx");
    }
    let connect = |spec: &Option<txshadow_node::NodeSpec>| {
        spec.as_ref()
            .map(|s| txshadow_node::NodeEngine::connect(s, loaded.chain.chain_id))
            .transpose()
    };
    if cfg.baseline_node.is_some() || cfg.candidate_node.is_some() {
        // the binary restores SIGPIPE's default so `| head` ends it quietly, but a node that
        // closes a connection while a request is being written must be an error, not death
        #[cfg(unix)]
        // SAFETY: changes the disposition of one signal; no handler runs Rust code
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
    let baseline_node = connect(&cfg.baseline_node)?;
    let candidate_node = connect(&cfg.candidate_node)?;
    let nodes = NodeSides {
        baseline: baseline_node.as_ref(),
        candidate: candidate_node.as_ref(),
    };
    let engine = |n: Option<&txshadow_node::NodeEngine>| {
        n.map_or_else(|| "revm".to_string(), |e| e.describe())
    };
    let started = crate::now_rfc3339();
    let run_id = cfg.run_id.clone().unwrap_or_else(|| {
        crate::default_run_id(match cfg.mode {
            Mode::Block => "block",
            Mode::Tx => "tx",
        })
    });
    let dir = cfg.out_dir.join(&run_id);
    let mut configurations = serde_json::json!({
        "baseline": cfg.baseline.describe(),
        "candidate": cfg.candidate.as_ref().map(|c| c.describe()),
        "compared_with": if cfg.candidate.is_some() { "baseline" } else { "recorded chain results" },
    });
    if nodes.any() {
        // which engine, and for a node which path (the probe's choice), per side
        configurations["baseline_engine"] = engine(nodes.baseline).into();
        if cfg.candidate.is_some() {
            configurations["candidate_engine"] = engine(nodes.candidate).into();
        }
        let caps: serde_json::Map<String, serde_json::Value> =
            [("baseline", nodes.baseline), ("candidate", nodes.candidate)]
                .into_iter()
                .filter_map(|(k, n)| Some((k.to_string(), serde_json::to_value(&n?.caps).ok()?)))
                .collect();
        configurations["node_capabilities"] = caps.into();
        let warnings = node_fork_warnings(&loaded, nodes);
        for w in &warnings {
            tracing::warn!("{w}");
        }
        if !warnings.is_empty() {
            configurations["node_warnings"] = warnings.into();
        }
    }
    let report = Report {
        schema_version: txshadow_report::SCHEMA_VERSION,
        run: RunInfo {
            id: run_id,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            started,
            mode: match cfg.mode {
                Mode::Block => "block".into(),
                Mode::Tx => "tx".into(),
            },
            corpus: cfg.corpus.display().to_string(),
            shard: cfg.shard.map(|(i, n)| format!("{i}/{n}")),
            ..Default::default()
        },
        configurations,
        ..Default::default()
    };
    let mut writer = ReportWriter::create(&dir, report, cfg.mode == Mode::Tx)
        .wrap_err_with(|| format!("create the report directory {}", dir.display()))?;
    writer.report.throughput.load_seconds = loaded.seconds;
    writer.report.throughput.load_cpu_seconds = loaded.cpu_seconds;
    let txs: usize = loaded.blocks.iter().map(|b| b.transactions.len()).sum();
    progress(Progress::Start {
        blocks: loaded.blocks.len(),
        txs,
    });

    // largest blocks first so the last worker is not left with a giant block
    let mut order: Vec<usize> = (0..loaded.blocks.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(loaded.blocks[*i].gas_used()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.jobs)
        .build()?;
    writer.report.throughput.jobs = pool.current_num_threads();
    let t = Instant::now();
    let (tx, rx) = mpsc::channel::<BlockResult>();
    let mut accepted_counts = vec![];
    // a node that fails for good stops the run: the first failure, and no new block after it
    let fatal: std::sync::Mutex<Option<txshadow_node::NodeError>> = Default::default();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let write_result = std::thread::scope(|s| {
        let loaded = &loaded;
        let (fatal, stop) = (&fatal, &stop);
        s.spawn(move || {
            for_each_queued(&pool, &order, |i| {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let b = &loaded.blocks[i];
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    process_block(b, &loaded.chain, &loaded.codes, cfg, nodes)
                }))
                .unwrap_or_else(|_| {
                    Ok(BlockResult {
                        block: b.number(),
                        label: b.label.clone(),
                        error: Some("panic while replaying or diffing this block".into()),
                        ..Default::default()
                    })
                });
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                        fatal.lock().expect("not poisoned").get_or_insert(e);
                        return;
                    }
                };
                let _ = tx.send(r);
            });
        });
        let mut res = Ok(());
        for mut r in rx {
            if let Some(a) = &cfg.accepted {
                apply_accepted(a, &mut r.findings, &mut accepted_counts);
            }
            // findings grouped by tx once, not scanned once per row
            let mut by_tx: std::collections::HashMap<usize, Vec<&Finding>> = Default::default();
            for f in &r.findings {
                if let Some(i) = f.tx_index {
                    by_tx.entry(i).or_default().push(f);
                }
            }
            for row in &mut r.rows {
                fill_verdict(row, by_tx.get(&row.index).map_or(&[][..], Vec::as_slice));
            }
            progress(Progress::Block {
                txs: r.rows.len(),
                gas: r.gas,
            });
            if res.is_ok() {
                res = writer.add(r);
            }
        }
        res
    });
    write_result.wrap_err("write the report")?;
    if let Some(e) = fatal.into_inner().expect("not poisoned") {
        // a harness failure: keep what was written, marked as failed
        let _ = writer.finish("error", crate::now_rfc3339());
        return Err(eyre::eyre!(e).wrap_err(format!(
            "the run stopped (partial report in {})",
            dir.display()
        )));
    }
    let secs = t.elapsed().as_secs_f64();
    let tp = &mut writer.report.throughput;
    tp.replay_seconds = secs;
    tp.mgas_per_s = tp.gas as f64 / 1e6 / secs.max(1e-9);
    tp.tx_per_s = writer.report.counts.txs as f64 / secs.max(1e-9);
    if let Some(a) = &cfg.accepted {
        accepted_counts.resize(a.accept.len(), 0);
        writer.report.accepted_rules = a
            .accept
            .iter()
            .zip(&accepted_counts)
            .map(|(rule, n)| txshadow_diff::Accepted {
                rule: rule.clone(),
                matched: *n,
            })
            .collect();
    }
    let failed = crate::cmd::replay::evaluate(&cfg.fail_on, &writer.report);
    writer.report.failed_criteria = failed.clone();
    let exit = if failed.is_empty() {
        crate::EXIT_OK
    } else {
        crate::EXIT_DIFF
    };
    let verdict = if exit == crate::EXIT_OK {
        "pass"
    } else {
        "fail"
    };
    let report = writer.finish(verdict, crate::now_rfc3339())?;
    Ok(RunOutcome { report, dir, exit })
}
