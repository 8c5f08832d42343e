//! Progress on stderr: a bar on a terminal; plain lines every few seconds elsewhere (CI logs);
//! nothing with `--quiet`.

use std::{
    io::IsTerminal,
    sync::Mutex,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `len` units, with a rate and an ETA (hidden without a terminal or with
/// `quiet`).
pub fn bar(len: u64, unit: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}}) {{msg}}"
        ))
        .expect("valid template"),
    );
    pb
}

/// Whether stderr takes colour: a terminal, and `NO_COLOR` unset.
pub fn color_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Progress of a run over blocks and txs.
#[derive(Debug)]
pub struct RunProgress {
    bar: Option<ProgressBar>,
    lines: bool,
    state: Mutex<Counts>,
}

#[derive(Debug)]
struct Counts {
    blocks: usize,
    txs: usize,
    plan_blocks: Option<usize>,
    plan_txs: Option<usize>,
    started: Instant,
    last_line: Instant,
}

impl RunProgress {
    /// A bar on a terminal, plain lines every 10 s otherwise, nothing when `quiet`.
    pub fn new(quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} txs ({per_sec}, eta {eta}) {msg}",
                )
                .expect("valid template"),
            );
            pb
        });
        Self {
            bar,
            lines: !quiet && !terminal,
            state: Mutex::new(Counts {
                blocks: 0,
                txs: 0,
                plan_blocks: None,
                plan_txs: None,
                started: Instant::now(),
                last_line: Instant::now(),
            }),
        }
    }

    /// The plan is known.
    pub fn start(&self, blocks: Option<usize>, txs: Option<usize>) {
        let mut s = self.state.lock().expect("not poisoned");
        s.plan_blocks = blocks;
        s.plan_txs = txs;
        s.started = Instant::now();
        s.last_line = Instant::now();
        if let Some(b) = &self.bar {
            b.set_length(txs.unwrap_or(0) as u64);
        }
    }

    /// One block done.
    pub fn block(&self, txs: usize) {
        let mut s = self.state.lock().expect("not poisoned");
        s.blocks += 1;
        s.txs += txs;
        let secs = s.started.elapsed().as_secs_f64().max(1e-9);
        let (bps, tps) = (s.blocks as f64 / secs, s.txs as f64 / secs);
        let of = |n: Option<usize>| n.map_or(String::new(), |n| format!("/{n}"));
        if let Some(b) = &self.bar {
            b.inc(txs as u64);
            b.set_message(format!(
                "{}{} blocks, {bps:.1} blocks/s",
                s.blocks,
                of(s.plan_blocks)
            ));
        }
        if self.lines && s.last_line.elapsed() >= Duration::from_secs(10) {
            s.last_line = Instant::now();
            let eta = s
                .plan_txs
                .filter(|t| *t > s.txs && tps > 0.0)
                .map_or(String::new(), |t| {
                    format!(", eta {:.0} s", (t - s.txs) as f64 / tps)
                });
            eprintln!(
                "progress: {}{} blocks, {}{} txs, {bps:.1} blocks/s, {tps:.0} tx/s{eta}",
                s.blocks,
                of(s.plan_blocks),
                s.txs,
                of(s.plan_txs)
            );
        }
    }

    /// The run ended: the bar goes.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
