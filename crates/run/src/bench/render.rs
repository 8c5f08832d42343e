//! The bench as Markdown.

use super::BenchReport;

fn f2(x: f64) -> String {
    format!("{x:.2}")
}

/// The bench as Markdown (`bench.md`, and what `txshadow bench` prints).
pub fn render_markdown(r: &BenchReport) -> String {
    use std::fmt::Write;
    let h = &r.headline;
    let mut s = String::new();
    let _ = writeln!(s, "# txshadow bench\n");
    let _ = writeln!(
        s,
        "{} blocks, {} txs, {:.1} Mgas per side; {} cores; {} repetitions: times are the best (range in brackets), ratios the median of each repetition's ratio (best/best and range beside).\n",
        r.info.blocks,
        r.info.txs,
        r.info.gas as f64 / 1e6,
        r.info.cores,
        r.info.reps
    );
    let _ = writeln!(
        s,
        "| target | measured | limit | met |\n| --- | --- | --- | --- |"
    );
    for t in &r.targets {
        let _ = writeln!(
            s,
            "| {} | {:.3} | {} {} | {} |",
            t.name,
            t.value,
            t.op,
            t.limit,
            if t.met { "yes" } else { "NO" }
        );
    }
    for (name, m) in [("block", &r.block_mode), ("tx", &r.tx_mode)] {
        let _ = writeln!(
            s,
            "\n## {name} mode\n\nscaling -j 1 -> -j {}: harness {:.2}x (best/best {:.2}x), raw revm {:.2}x; harness {}\n",
            m.by_jobs.last().map_or(1, |a| a.jobs),
            m.scaling,
            m.scaling_best_vs_best,
            m.raw_scaling,
            if m.harness_pass {
                "matched the chain on every run"
            } else {
                "FOUND DIFFERENCES"
            }
        );
        let c = &m.receipts_checks;
        let _ = writeln!(
            s,
            "receipts checked per run: {} blocks field by field against sealed receipts, {} by the receipts trie and blooms, {} by the blooms alone (before Byzantium, no per-tx state roots: no root to compare)\n",
            c.recorded, c.trie, c.bloom
        );
        let _ = writeln!(
            s,
            "| -j | harness Mgas/s | harness tx/s | raw Mgas/s | raw tx/s | harness/raw (best/best) | harness/raw CPU | harness s | raw s | load s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for a in &m.by_jobs {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.3} ({:.3}) [{:.3}-{:.3}] | {:.3} [{:.3}-{:.3}] | {:.3} [{:.3}] | {:.3} [{:.3}] | {:.3} |",
                a.jobs,
                a.harness_mgas_per_s,
                a.harness_tx_per_s,
                a.raw_mgas_per_s,
                a.raw_tx_per_s,
                a.overhead_vs_raw,
                a.overhead_best_vs_best,
                a.overhead_range[0],
                a.overhead_range[1],
                a.overhead_cpu_vs_raw,
                a.overhead_cpu_range[0],
                a.overhead_cpu_range[1],
                a.harness_seconds.best,
                a.harness_seconds.worst,
                a.raw_seconds.best,
                a.raw_seconds.worst,
                a.load_seconds.best
            );
        }
    }
    let _ = writeln!(
        s,
        "\nload (CPU time): {}% of the replay's, {}% of the whole job's (reader thread's wall time: {}% of the run's)\n\nCPU time by thread (block, -j {}): workers {}%, reader (load) {}%, main (open, tally, reports) {}%; against raw revm's CPU time: workers {}x, and {}x if the workers did only raw revm's work (the load and the main thread added to it: at -j = cores the time ratio cannot go far below this); the workers take {}x the reader's CPU time (one reader thread keeps that many workers fed; a run starts one per {} workers)\n\nbaseline + candidate (block, -j {}): {:.3} s vs {:.3} s baseline only (best of each) = {}x (best/best {}x)\n\ncommand: `{}`",
        f2(h.load_share_of_replay * 100.0),
        f2(h.load_share_of_job * 100.0),
        f2(h.load_wall_share_of_replay * 100.0),
        h.jobs,
        f2((1.0 - h.load_share_of_job - h.main_share_of_job) * 100.0),
        f2(h.load_share_of_job * 100.0),
        f2(h.main_share_of_job * 100.0),
        f2(h.block_workers_cpu_vs_raw),
        f2(h.block_floor_cpu_vs_raw),
        f2(h.block_workers_per_reader),
        crate::WORKERS_PER_READER,
        r.candidate.jobs,
        r.candidate.with_candidate_seconds.best,
        r.candidate.baseline_only_seconds.best,
        f2(r.candidate.cost_x_baseline),
        f2(r.candidate.cost_best_vs_best),
        r.info.command
    );
    let c = &r.candidate;
    let _ = writeln!(
        s,
        "\nbaseline + candidate (tx, -j {}): {:.3} s (best) = {:.2}x raw revm's tx loop; {}; receipts of the block runs: {} field by field, {} by trie, {} by blooms alone",
        c.jobs,
        c.tx_with_candidate_seconds.best,
        c.tx_overhead_vs_raw,
        if c.pass && c.tx_pass {
            "no difference found"
        } else {
            "FOUND DIFFERENCES"
        },
        c.receipts_checks.recorded,
        c.receipts_checks.trie,
        c.receipts_checks.bloom
    );
    let (z, d) = (&r.seal, &r.disk);
    let _ = writeln!(
        s,
        "\nsealing the receipts (timed on its own, a dry run replaying every block with its trie): {:.3} s [{:.3}]; {} blocks sealed, {} sealable, {} not{}\n\non disk: {} block files ({} binary, {} JSON) {:.0} bytes/tx; with codes and manifest {:.0} bytes/tx; {} packed codes, {} of them compressed, {} bytes stored for {} read",
        z.seconds.best,
        z.seconds.worst,
        z.sealed_blocks,
        z.sealable_blocks,
        z.unsealed_blocks,
        z.unsealed_reason
            .as_ref()
            .map(|r| format!(" (first: {r})"))
            .unwrap_or_default(),
        d.binary_block_files + d.json_block_files,
        d.binary_block_files,
        d.json_block_files,
        d.block_bytes_per_tx,
        d.total_bytes_per_tx,
        d.packs.codes,
        d.packs.compressed,
        d.packs.stored,
        d.packs.bytes
    );
    if let Some(v) = &r.revme {
        let _ = writeln!(
            s,
            "\n## revme statetest, same txs\n\n{} fixtures: revme {:.0} tx/s ({:.3} s, {}), txshadow tx mode {:.0} tx/s ({:.3} s with the reference block runs), {:.0} tx/s per-tx runs alone; revme / txshadow = {:.2}x ({:.2}x against the per-tx runs alone)\n\n`{}`",
            v.fixtures,
            v.revme_tx_per_s,
            v.revme_seconds,
            if v.revme_pass {
                "all pass"
            } else {
                "SOME FAIL"
            },
            v.txshadow_tx_per_s,
            v.txshadow_seconds,
            v.txshadow_tx_only_tx_per_s,
            v.revme_vs_txshadow,
            v.revme_vs_txshadow_tx_only,
            v.command
        );
    }
    s
}
