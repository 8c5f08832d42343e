//! Side by side with a peer: the same txs exported as state-test fixtures (the `txshadow tx
//! --export-fixture` format) and run by `revme statetest` (revm's own runner, same revm
//! version: `cargo install revme --version 43.0.3`), against txshadow's tx mode on those txs.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use eyre::{Result, WrapErr, bail, eyre};
use serde::Serialize;
use txshadow_replay::{SideConfig, Touches, TxRunner};

use crate::{
    bench::Loaded,
    fixture::{FixtureInput, build},
};

/// What the comparison measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RevmeFigures {
    /// The revme binary used.
    pub revme: String,
    /// Fixtures exported and run (txs that read BLOCKHASH are left out: state tests carry no
    /// block hashes).
    pub fixtures: usize,
    /// Wall seconds of `revme statetest --single-thread <dir>` (process start, JSON parse,
    /// state setup, execution, post-state root check).
    pub revme_seconds: f64,
    /// Fixtures revme ran per second.
    pub revme_tx_per_s: f64,
    /// Whether revme passed every fixture.
    pub revme_pass: bool,
    /// txshadow tx mode on the same txs, one thread, corpus already loaded: each tx's block
    /// reference run (which gives the tx its pre-state) plus the tx alone.
    pub txshadow_seconds: f64,
    /// Txs per second of that.
    pub txshadow_tx_per_s: f64,
    /// The per-tx runs alone (pre-states already derived), one thread.
    pub txshadow_tx_only_seconds: f64,
    /// Txs per second of that.
    pub txshadow_tx_only_tx_per_s: f64,
    /// revme tx/s / txshadow tx/s (above 1: revme is faster).
    pub revme_vs_txshadow: f64,
    /// revme tx/s / txshadow tx/s with the reference runs left out.
    pub revme_vs_txshadow_tx_only: f64,
    /// The command that ran revme.
    pub command: String,
}

/// Every `stride`-th tx of every block (by position), as (block index, tx index).
fn pick(loaded: &Loaded, want: usize) -> Vec<(usize, usize)> {
    let total: usize = loaded.blocks.iter().map(|b| b.transactions.len()).sum();
    let stride = (total / want.max(1)).max(1);
    let mut out = vec![];
    let mut k = 0usize;
    for (bi, b) in loaded.blocks.iter().enumerate() {
        if b.unsupported.is_some() {
            k += b.transactions.len();
            continue;
        }
        for ti in 0..b.transactions.len() {
            if k.is_multiple_of(stride) && out.len() < want {
                out.push((bi, ti));
            }
            k += 1;
        }
    }
    out
}

/// Exports about `want` txs of `loaded` as fixtures into `dir/fixtures`, runs `revme
/// statetest` on them and txshadow's tx mode on the same txs.
pub fn compare(loaded: &Loaded, revme: &Path, want: usize, dir: &Path) -> Result<RevmeFigures> {
    let fdir = dir.join("fixtures");
    std::fs::create_dir_all(&fdir).wrap_err_with(|| format!("create {}", fdir.display()))?;
    let side = SideConfig::chain("baseline");
    let picked = pick(loaded, want);
    let mut kept: Vec<(usize, usize)> = vec![];
    let mut by_block: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (bi, ti) in &picked {
        by_block.entry(*bi).or_default().push(*ti);
    }
    for (bi, tis) in &by_block {
        let block = &loaded.blocks[*bi];
        let chain = block.chain.as_ref().unwrap_or(&loaded.chain);
        let runner = TxRunner::new(block, chain, &loaded.codes, &side);
        let env = runner.env(&side);
        for ti in tis {
            let mut touches = Touches::default();
            let (o, state) = runner.run_with_state(&side, *ti, &mut touches);
            let (Ok(exec), Some(state)) = (o.result.as_ref(), state) else {
                continue;
            };
            if touches.opcodes[0x40] {
                continue;
            }
            let (pre, codes) = runner
                .pre_values(&side, *ti, &state)
                .map_err(|e| eyre!("{e}"))?;
            let rec = &block.transactions[*ti];
            let tx = txshadow_corpus::decode_tx(&rec.raw).map_err(|e| eyre!(e))?;
            let fx = build(&FixtureInput {
                name: format!("txshadow_{}_{}", block.number(), ti),
                tx: &tx,
                sender: rec.from,
                header: &block.header,
                chain_id: chain.chain_id,
                spec: env.cfg_env.spec,
                pre: &pre,
                codes: &codes,
                exec,
                prevrandao: env.block_env.prevrandao,
                source: format!(
                    "tx {} of block {} ({})",
                    rec.hash,
                    block.number(),
                    block.hash
                ),
            });
            let path = fdir.join(format!("{}_{}.json", block.number(), ti));
            txshadow_corpus::write_atomic(&path, serde_json::to_string(&fx)?.as_bytes())?;
            kept.push((*bi, *ti));
        }
    }
    if kept.is_empty() {
        bail!("no tx could be exported as a fixture");
    }

    // revme, one thread (txshadow's figure below is one thread too)
    let t = Instant::now();
    let out = Command::new(revme)
        .arg("statetest")
        .arg("--single-thread")
        .arg(&fdir)
        .output()
        .wrap_err_with(|| format!("run {}", revme.display()))?;
    let revme_seconds = t.elapsed().as_secs_f64();
    let revme_pass = out.status.success();

    // txshadow tx mode on the same txs, one thread
    let mut kept_by_block: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (bi, ti) in &kept {
        kept_by_block.entry(*bi).or_default().push(*ti);
    }
    let (mut all, mut only) = (0.0, 0.0);
    for (bi, tis) in &kept_by_block {
        let block = &loaded.blocks[*bi];
        let chain = block.chain.as_ref().unwrap_or(&loaded.chain);
        let t = Instant::now();
        let runner = TxRunner::new(block, chain, &loaded.codes, &side);
        let t1 = Instant::now();
        for ti in tis {
            let _ = runner.run(&side, *ti, revm::inspector::NoOpInspector);
        }
        only += t1.elapsed().as_secs_f64();
        all += t.elapsed().as_secs_f64();
    }
    let n = kept.len() as f64;
    let fig = RevmeFigures {
        revme: revme.display().to_string(),
        fixtures: kept.len(),
        revme_seconds,
        revme_tx_per_s: n / revme_seconds,
        revme_pass,
        txshadow_seconds: all,
        txshadow_tx_per_s: n / all,
        txshadow_tx_only_seconds: only,
        txshadow_tx_only_tx_per_s: n / only,
        revme_vs_txshadow: (n / revme_seconds) / (n / all),
        revme_vs_txshadow_tx_only: (n / revme_seconds) / (n / only),
        command: format!(
            "{} statetest --single-thread {}",
            revme.display(),
            fdir.display()
        ),
    };
    Ok(fig)
}

/// `revme` on the PATH or in cargo's bin directory, if installed.
pub fn find_revme() -> Option<PathBuf> {
    let cands = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin")));
    cands.map(|d| d.join("revme")).find(|p| p.is_file())
}
