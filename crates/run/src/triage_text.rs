//! `txshadow tx` as text: the verdict per field, the first diverging step with its context,
//! both call trees and the trace diff, in 80 columns, coloured on a terminal.

use std::fmt::Write;

use txshadow_replay::RichStep;

use crate::triage::{Divergence, Triage, short_hex};

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for w in text.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.chars().count() + 1 + w.chars().count() > width {
            lines.push(w.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(w);
        }
    }
    lines
}

struct Paint(bool);

impl Paint {
    fn red(&self, s: &str) -> String {
        if self.0 {
            format!("\x1b[31m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn green(&self, s: &str) -> String {
        if self.0 {
            format!("\x1b[32m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        if self.0 {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

fn addr(a: &alloy_primitives::Address) -> String {
    short_hex(&a.to_string(), 13)
}

/// The triage as text for a terminal (80 columns), coloured when `color`.
pub fn render_text(t: &Triage, color: bool) -> String {
    render(t, &Paint(color))
}

fn render(t: &Triage, p: &Paint) -> String {
    let mut s = String::new();
    render_header(&mut s, t, p);
    render_verdict(&mut s, t, p);
    if let Some((a, b)) = t.intrinsic_gas {
        // both sides start with the tx's gas limit: what the first step has left differs by
        // the intrinsic gas (calldata, access list, creation)
        let _ = writeln!(
            s,
            "\nintrinsic gas differs by {}\n  gas left at the first step: {a} (baseline), {b} (candidate)",
            i128::from(a) - i128::from(b)
        );
    }
    match &t.divergence {
        Some(d) => render_divergence(&mut s, d, p),
        None if t.candidate != "chain" => {
            let _ = writeln!(s, "\nthe step traces do not diverge ({} steps)", t.steps.0);
        }
        None => {}
    }
    render_call_trees(&mut s, t, p);
    if let Some(d) = &t.diff {
        let _ = writeln!(s, "\ntrace diff (baseline -> candidate)\n{d}");
    }
    let _ = writeln!(
        s,
        "\n{} ms, {} + {} steps",
        t.elapsed_ms, t.steps.0, t.steps.1
    );
    s
}

/// The tx, its block and both sides.
fn render_header(s: &mut String, t: &Triage, p: &Paint) {
    let _ = writeln!(s, "{}", p.bold(&format!("tx {:#x}", t.tx)));
    let _ = writeln!(
        s,
        "block {} index {}  from {} to {}",
        t.block,
        t.index,
        addr(&t.from),
        t.to.as_ref().map_or("(create)".into(), addr)
    );
    let _ = writeln!(s, "baseline  {}", t.baseline);
    let _ = writeln!(s, "candidate {}", t.candidate);
}

/// The per-field verdict, the first findings, and the note on what the comparison rests on.
fn render_verdict(s: &mut String, t: &Triage, p: &Paint) {
    let _ = writeln!(s, "\nverdict");
    for v in &t.verdict {
        let mark = if v.equal {
            p.green("same")
        } else {
            p.red(&format!("differs ({})", v.findings))
        };
        let _ = writeln!(s, "  {:<16}{mark}", v.field);
    }
    for f in t.findings.iter().take(12) {
        let _ = writeln!(
            s,
            "    {}: {} -> {}",
            short_hex(&f.field, 32),
            short_hex(&f.expected, 16),
            short_hex(&f.got, 16)
        );
    }
    if t.findings.len() > 12 {
        let _ = writeln!(s, "    ... {} more (--json)", t.findings.len() - 12);
    }
    if let Some(n) = &t.note {
        for l in wrap(n, 76) {
            let _ = writeln!(s, "  {l}");
        }
    }
}

/// The first diverging step: its frame, both sides' values, and the steps around it.
fn render_divergence(s: &mut String, d: &Divergence, p: &Paint) {
    let _ = writeln!(
        s,
        "\n{}",
        p.bold(&format!(
            "first divergence at step {} ({})",
            d.step, d.reason
        ))
    );
    let _ = writeln!(
        s,
        "  frame   {} {} {} depth {}",
        d.frame_kind,
        d.address.as_ref().map_or("?".into(), addr),
        d.selector.clone().unwrap_or_default(),
        d.depth
    );
    let two = |a: &Option<String>, b: &Option<String>| {
        if a == b {
            a.clone().unwrap_or("-".into())
        } else {
            format!(
                "{} | {}",
                a.clone().unwrap_or("-".into()),
                b.clone().unwrap_or("-".into())
            )
        }
    };
    let o = |x: Option<u64>| x.map(|v| v.to_string());
    let _ = writeln!(
        s,
        "  pc      {}",
        two(
            &d.pc.0.map(|v| v.to_string()),
            &d.pc.1.map(|v| v.to_string())
        )
    );
    let _ = writeln!(s, "  opcode  {}", p.red(&two(&d.opcode.0, &d.opcode.1)));
    let _ = writeln!(s, "  gas     {}", two(&o(d.gas.0), &o(d.gas.1)));
    let _ = writeln!(s, "  cost    {}", two(&o(d.gas_cost.0), &o(d.gas_cost.1)));
    for (name, ctx) in [
        ("baseline", &d.context_baseline),
        ("candidate", &d.context_candidate),
    ] {
        let _ = writeln!(s, "  {name}:");
        for st in ctx {
            render_context_step(s, st, d.step);
        }
    }
}

/// One step of the context around the divergence (`>` marks the diverging one).
fn render_context_step(s: &mut String, st: &RichStep, step: usize) {
    let here = if st.index == step { ">" } else { " " };
    let top = st
        .stack
        .first()
        .map(|v| short_hex(&format!("{v:#x}"), 12))
        .unwrap_or_default();
    let mut extra = String::new();
    if let Some((k, v)) = st.storage {
        extra = format!(
            " [{}]={}",
            short_hex(&format!("{k:#x}"), 11),
            short_hex(&format!("{v:#x}"), 8)
        );
    }
    let top = if extra.is_empty() { top } else { String::new() };
    let _ = writeln!(
        s,
        " {here}{:>5} pc {:<5} {:<10} gas {:<7} c {:<4} m {:<4} {top}{extra}",
        st.index, st.pc, st.name, st.gas, st.cost, st.memory
    );
}

/// Both sides' call trees, the diverging frame marked.
fn render_call_trees(s: &mut String, t: &Triage, p: &Paint) {
    for (name, calls, marked) in [
        (
            "baseline",
            &t.calls_baseline,
            t.divergence.as_ref().and_then(|d| d.frame.0),
        ),
        (
            "candidate",
            &t.calls_candidate,
            t.divergence.as_ref().and_then(|d| d.frame.1),
        ),
    ] {
        if calls.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\ncall tree ({name})");
        for (i, f) in calls.iter().enumerate().take(40) {
            let ind = "  ".repeat(f.depth as usize);
            let status = if f.success {
                p.green("ok")
            } else {
                p.red(&f.result)
            };
            let m = if marked == Some(i as u32) {
                " <- diverges"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "{ind}{} {} {} gas {}/{} {status}{m}",
                f.kind,
                f.to.as_ref().map_or("?".into(), addr),
                f.selector
                    .map(alloy_primitives::hex::encode_prefixed)
                    .unwrap_or_default(),
                f.gas_used,
                f.gas_limit
            );
        }
        if calls.len() > 40 {
            let _ = writeln!(s, "  ... {} more frames (--json)", calls.len() - 40);
        }
    }
}
