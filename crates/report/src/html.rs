//! `index.html`: one self-contained page a person reads. It works offline: the styles, the
//! small filter script and the plots are inline, and the plots are SVG drawn here (bars and a
//! line need no plotting library, and SVG keeps the numbers in the page: each bar carries its
//! value as a tooltip). The page stays small on a run of any size: it shows the aggregates and
//! the [`MAX_FINDINGS`] findings of most impact; `report.json` and `results.csv` hold the rest.

use std::fmt::Write;

use txshadow_diff::Finding;

use crate::{
    Report, RunVerdict,
    aggregate::{Aggregates, BlockBin},
    junit::esc,
    markdown::by_impact,
};

/// Findings listed in the page, the most impact first.
pub(crate) const MAX_FINDINGS: usize = 500;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0 2em 3em;color:#222}\
h1{margin:.6em 0 .2em}h2{margin:1.4em 0 .4em;font-size:1.15em}\
.banner{padding:.8em 1em;border-radius:6px;color:#fff;font-size:1.3em;margin:1em 0}\
.pass{background:#2e7d32}.fail{background:#c62828}.error{background:#6a1b9a}.pending{background:#ef6c00}\
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}\
code,.mono{font-family:ui-monospace,monospace;font-size:12px}\
.plots{display:flex;flex-wrap:wrap;gap:1.5em}.plot{border:1px solid #eee;padding:.5em}\
.filters{display:flex;flex-wrap:wrap;gap:.8em;align-items:center;margin:.5em 0}\
details pre{white-space:pre-wrap;word-break:break-all;margin:.3em 0}mark{background:#ffcdd2}\
mark.add{background:#c8e6c9}.muted{color:#777}";

const SCRIPT: &str = r#"(function(){
var ids=['f-kind','f-contract','f-selector','f-field','f-accepted'];
function val(id){return document.getElementById(id).value.trim().toLowerCase();}
function apply(){
 var k=val('f-kind'),c=val('f-contract'),s=val('f-selector'),f=val('f-field'),a=val('f-accepted');
 var rows=document.querySelectorAll('tr.finding'),shown=0;
 rows.forEach(function(r){
  var d=r.dataset,ok=(!k||d.kind===k)&&(!c||d.contract.indexOf(c)>=0)&&(!s||d.selector.indexOf(s)>=0)
   &&(!f||d.field.indexOf(f)>=0)&&(!a||(a==='accepted')===(d.accepted==='1'));
  r.hidden=!ok;var x=document.getElementById('d-'+r.id);if(x)x.hidden=!ok;if(ok)shown++;});
 document.getElementById('shown').textContent=shown+' of '+rows.length+' shown';
}
ids.forEach(function(id){var e=document.getElementById(id);e.addEventListener('input',apply);e.addEventListener('change',apply);});
var h=decodeURIComponent(location.hash.slice(1));
h.split('&').forEach(function(p){var kv=p.split('=');var e=document.getElementById('f-'+kv[0]);if(e&&kv.length>1)e.value=kv[1];});
apply();
})();"#;

/// Renders the page.
pub(crate) fn render(r: &Report, agg: &Aggregates) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("txshadow {} — {}", r.run.id, r.verdict.as_str());
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    banner(&mut h, r);
    counts(&mut h, r);
    plots(&mut h, r, agg);
    findings(&mut h, r);
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body></html>\n");
    h
}

fn banner(h: &mut String, r: &Report) {
    let (class, word) = match r.verdict {
        RunVerdict::Pass => ("pass", "PASS"),
        RunVerdict::Fail => ("fail", "FAIL"),
        RunVerdict::Error => ("error", "ERROR"),
        RunVerdict::Pending => ("pending", "NOT FINISHED"),
    };
    let c = &r.counts;
    let _ = writeln!(
        h,
        "<h1>txshadow</h1><div class=\"banner {class}\" id=\"verdict\">{word}: {} of {} txs \
         differ, {} errors ({} blocks)</div>",
        c.differing, c.txs, c.errors, c.blocks
    );
    let cf = &r.configurations;
    let _ = write!(
        h,
        "<table><tr><th>run</th><td class=\"mono\">{}</td></tr><tr><th>mode</th><td>{}</td></tr>\
         <tr><th>corpus</th><td class=\"mono\">{}</td></tr>\
         <tr><th>baseline</th><td class=\"mono\">{}</td></tr>",
        esc(&r.run.id),
        esc(&r.run.mode),
        esc(&r.run.corpus),
        esc(&cf.baseline)
    );
    let _ = write!(
        h,
        "<tr><th>candidate</th><td class=\"mono\">{}</td></tr><tr><th>compared with</th><td>{}</td></tr>",
        esc(cf
            .candidate
            .as_deref()
            .unwrap_or("(none: the chain's record)")),
        esc(&cf.compared_with)
    );
    if !r.run.merged_from.is_empty() {
        let _ = write!(
            h,
            "<tr><th>merged from</th><td>{} shards</td></tr>",
            r.run.merged_from.len()
        );
    }
    let crit = if r.launch_criteria.is_empty() {
        "any".to_string()
    } else {
        r.launch_criteria.join(", ")
    };
    let _ = writeln!(
        h,
        "<tr><th>launch criteria</th><td class=\"mono\">{}</td></tr></table>",
        esc(&crit)
    );
    if !r.failed_criteria.is_empty() {
        h.push_str("<h2>Launch criteria failed</h2><ul>");
        for f in &r.failed_criteria {
            let _ = write!(h, "<li>{}</li>", esc(f));
        }
        h.push_str("</ul>\n");
    }
}

fn counts(h: &mut String, r: &Report) {
    let c = &r.counts;
    h.push_str("<h2>Counts</h2><table id=\"counts\"><tr>");
    let cols: [(&str, usize); 10] = [
        ("blocks", c.blocks),
        ("txs", c.txs),
        ("matched", c.matched),
        ("differing", c.differing),
        ("errors", c.errors),
        ("skipped", c.skipped),
        ("not comparable", c.not_comparable),
        ("findings", c.findings),
        ("accepted", c.accepted),
        ("differing blocks", c.differing_blocks),
    ];
    for (k, _) in cols {
        let _ = write!(h, "<th>{k}</th>");
    }
    h.push_str("</tr><tr>");
    for (_, v) in cols {
        let _ = write!(h, "<td class=\"n\">{v}</td>");
    }
    let t = &r.throughput;
    let _ = writeln!(
        h,
        "</tr></table><p class=\"muted\">{:.1} Mgas/s, {:.0} tx/s with {} worker(s); replay {:.2} s.</p>",
        t.mgas_per_s, t.tx_per_s, t.jobs, t.replay_seconds
    );
}

/// A bar chart: `bars` as (label, value); negative values go left of the axis.
fn bar_chart(id: &str, title: &str, unit: &str, bars: &[(String, f64)]) -> String {
    let (w, row) = (520.0, 18.0);
    let hgt = 30.0 + row * bars.len().max(1) as f64;
    let max = bars.iter().map(|b| b.1.abs()).fold(0.0, f64::max).max(1e-9);
    let neg = bars.iter().any(|b| b.1 < 0.0);
    // room on the right for the value of the longest bar
    let (x0, span) = if neg { (320.0, 130.0) } else { (170.0, 280.0) };
    let mut s = format!(
        "<div class=\"plot\"><svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" \
         height=\"{hgt}\" role=\"img\"><title>{}</title>\
         <text x=\"4\" y=\"14\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        esc(title),
        esc(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = 24.0 + i as f64 * row;
        let len = v.abs() / max * span;
        let x = if *v < 0.0 { x0 - len } else { x0 };
        let color = if *v < 0.0 { "#2e7d32" } else { "#c62828" };
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"11\" font-family=\"monospace\">{}</text>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\" \
             data-value=\"{v}\"><title>{}: {v:.3} {unit}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
            y + 12.0,
            esc(&short(label, 24)),
            len.max(0.5),
            row - 4.0,
            esc(label),
            if *v < 0.0 { x0 + 3.0 } else { x0 + len + 3.0 },
            y + 11.0,
            fmt_num(*v)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{x0}\" x2=\"{x0}\" y1=\"20\" y2=\"{hgt}\" stroke=\"#999\"/></svg></div>"
    );
    s
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let keep = (n - 1) / 2;
        let chars: Vec<char> = s.chars().collect();
        format!(
            "{}…{}",
            chars[..keep].iter().collect::<String>(),
            chars[chars.len() - (n - 1 - keep)..]
                .iter()
                .collect::<String>()
        )
    }
}

/// A line chart of (x, y) points.
fn line_chart(id: &str, title: &str, xl: &str, yl: &str, pts: &[(f64, f64)]) -> String {
    let (w, hgt, l, b) = (520.0, 220.0, 50.0, 30.0);
    let xmax = pts.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-9);
    let ymax = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9);
    let path: Vec<String> = pts
        .iter()
        .map(|(x, y)| {
            format!(
                "{:.1},{:.1}",
                l + x / xmax * (w - l - 10.0),
                hgt - b - y / ymax * (hgt - b - 24.0)
            )
        })
        .collect();
    format!(
        "<div class=\"plot\"><svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" \
         height=\"{hgt}\" role=\"img\"><title>{t}</title>\
         <text x=\"4\" y=\"14\" font-size=\"13\" font-weight=\"bold\">{t}</text>\
         <line x1=\"{l}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#999\"/>\
         <line x1=\"{l}\" y1=\"20\" x2=\"{l}\" y2=\"{y0}\" stroke=\"#999\"/>\
         <polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\" points=\"{p}\" data-points=\"{n}\"/>\
         <text x=\"{l}\" y=\"{yb}\" font-size=\"10\">0</text><text x=\"{x2}\" y=\"{yb}\" font-size=\"10\">{xm} {xl}</text>\
         <text x=\"2\" y=\"30\" font-size=\"10\">{ym}</text><text x=\"2\" y=\"42\" font-size=\"10\">{yl}</text></svg></div>",
        t = esc(title),
        y0 = hgt - b,
        x1 = w - 10.0,
        p = path.join(" "),
        n = pts.len(),
        yb = hgt - b + 14.0,
        x2 = w - 90.0,
        xm = fmt_num((xmax * 100.0).round() / 100.0),
        ym = fmt_num(ymax)
    )
}

fn plots(h: &mut String, r: &Report, agg: &Aggregates) {
    h.push_str("<h2>Plots</h2><div class=\"plots\">\n");
    let hist: Vec<(String, f64)> = crate::aggregate::GAS_BUCKETS
        .iter()
        .zip(agg.gas_buckets)
        .map(|((_, _, label), n)| (label.to_string(), n as f64))
        .collect();
    h.push_str(&bar_chart(
        "plot-gas-hist",
        "Gas delta per tx (got vs expected, %): txs",
        "txs",
        &hist,
    ));
    let mut by_gas: Vec<(&String, i128)> = agg
        .by_contract
        .iter()
        .filter(|(_, c)| c.gas_delta != 0)
        .map(|(k, c)| (k, c.gas_delta))
        .collect();
    by_gas.sort_by_key(|(k, d)| (std::cmp::Reverse(d.unsigned_abs()), (*k).clone()));
    let top: Vec<(String, f64)> = by_gas
        .iter()
        .take(15)
        .map(|(k, d)| ((*k).clone(), *d as f64))
        .collect();
    h.push_str(&bar_chart(
        "plot-gas-contract",
        "Gas delta by contract (top 15, gas)",
        "gas",
        &top,
    ));
    h.push_str(&bar_chart(
        "plot-diff-block",
        "Differing txs per block",
        "txs",
        &per_block_bins(&agg.per_block),
    ));
    if agg.progress.len() > 1 {
        let pts: Vec<(f64, f64)> = agg.progress.iter().map(|(t, n)| (*t, *n as f64)).collect();
        h.push_str(&line_chart(
            "plot-throughput",
            "Throughput over the run: txs done",
            "s",
            "txs",
            &pts,
        ));
    }
    if r.configurations.candidate.is_some() {
        let mut share: Vec<(&String, f64, usize)> = agg
            .by_contract
            .iter()
            .filter(|(_, c)| c.changed > 0)
            .map(|(k, c)| (k, c.changed as f64 / c.txs as f64 * 100.0, c.changed))
            .collect();
        share.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
        let bars: Vec<(String, f64)> = share
            .iter()
            .take(15)
            .map(|(k, s, _)| ((*k).clone(), (*s * 10.0).round() / 10.0))
            .collect();
        h.push_str(&bar_chart(
            "plot-changed-share",
            "Share of txs changed per contract (top 15 by changed txs, %)",
            "%",
            &bars,
        ));
    }
    h.push_str("</div>\n");
}

/// Differing txs per block, in at most 60 bins of consecutive blocks.
fn per_block_bins(per_block: &[BlockBin]) -> Vec<(String, f64)> {
    let per = per_block.len().div_ceil(60).max(1);
    per_block
        .chunks(per)
        .map(|c| {
            let (first, last) = (c[0].first, c[c.len() - 1].last);
            let label = if first == last {
                first.to_string()
            } else {
                format!("{first}..{last}")
            };
            (label, c.iter().map(|b| b.differing).sum::<usize>() as f64)
        })
        .collect()
}

fn options(values: impl IntoIterator<Item = String>) -> String {
    let mut v: Vec<String> = values.into_iter().collect();
    v.sort();
    v.dedup();
    v.iter()
        .map(|x| format!("<option value=\"{0}\">{0}</option>", esc(x)))
        .collect()
}

fn findings(h: &mut String, r: &Report) {
    let shown = pick(&r.findings);
    let shown = &shown[..];
    let listed = if r.left_out.findings > 0 {
        format!(
            "report.json lists {} of them (those of most impact), the others are counted",
            r.findings.len()
        )
    } else {
        "every one is in report.json".into()
    };
    let _ = write!(
        h,
        "<h2>Findings</h2><p class=\"muted\">{} findings; the {} of most impact (errors, status \
         flips, the largest gas changes, then the rest) are listed here, {listed}.</p>",
        r.findings.len() + r.left_out.findings,
        shown.len()
    );
    let kinds = options(shown.iter().map(|f| f.kind.as_str().to_string()));
    let _ = write!(
        h,
        "<div class=\"filters\"><label>kind <select id=\"f-kind\"><option value=\"\">all</option>{kinds}</select></label>\
         <label>contract <input id=\"f-contract\" size=\"14\" placeholder=\"0x…\"></label>\
         <label>selector <input id=\"f-selector\" size=\"10\" placeholder=\"0xa9059cbb\"></label>\
         <label>field <input id=\"f-field\" size=\"14\"></label>\
         <label>accepted <select id=\"f-accepted\"><option value=\"\">all</option><option value=\"open\">open</option><option value=\"accepted\">accepted</option></select></label>\
         <span id=\"shown\"></span></div>\n<table id=\"findings\"><tr><th>block</th><th>tx</th><th>kind</th><th>contract</th><th>selector</th><th>field</th><th>got / expected</th></tr>\n"
    );
    for (i, f) in shown.iter().enumerate() {
        let contract = f.to.map(|a| format!("{a:#x}")).unwrap_or_default();
        let tx = match (f.tx_index, f.tx_hash) {
            (Some(i), Some(hash)) => format!("{i} <span class=\"mono\">{hash:#x}</span>"),
            _ => "(block)".into(),
        };
        let (eg, gg) = marked(&f.expected, &f.got);
        let _ = writeln!(
            h,
            "<tr class=\"finding\" id=\"f{i}\" data-kind=\"{}\" data-contract=\"{}\" data-selector=\"{}\" \
             data-field=\"{}\" data-accepted=\"{}\"><td class=\"n\">{}</td><td>{tx}</td><td>{}</td>\
             <td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td>\
             <td><details><summary class=\"mono\">{} / {}</summary>\
             <pre>expected {eg}</pre><pre>got      {gg}</pre>{}</details></td></tr>",
            f.kind.as_str(),
            esc(&contract),
            esc(f.selector.as_deref().unwrap_or("")),
            esc(&f.field.to_ascii_lowercase()),
            u8::from(f.accepted.is_some()),
            f.block,
            f.kind.as_str(),
            esc(&short(&contract, 14)),
            esc(f.selector.as_deref().unwrap_or("")),
            esc(&f.field),
            esc(&short(&f.got, 24)),
            esc(&short(&f.expected, 24)),
            f.accepted
                .as_ref()
                .map(|a| format!("<p>accepted: {}</p>", esc(a)))
                .unwrap_or_default()
        );
    }
    h.push_str("</table>\n");
}

/// The findings the page lists: by impact, every kind given a share (so a filter by kind
/// finds some of each), then the rest of the [`MAX_FINDINGS`] by impact; in impact order.
fn pick(findings: &[Finding]) -> Vec<&Finding> {
    let all: Vec<&Finding> = findings.iter().collect();
    let ranked = by_impact(&all);
    if ranked.len() <= MAX_FINDINGS {
        return ranked;
    }
    let kinds: std::collections::BTreeSet<_> = ranked.iter().map(|f| f.kind).collect();
    let quota = MAX_FINDINGS / kinds.len().max(1);
    let mut per_kind: std::collections::BTreeMap<_, usize> = Default::default();
    let mut take = vec![false; ranked.len()];
    let mut n = 0;
    for (i, f) in ranked.iter().enumerate() {
        let k = per_kind.entry(f.kind).or_default();
        if *k < quota {
            *k += 1;
            take[i] = true;
            n += 1;
        }
    }
    for t in take.iter_mut() {
        if n >= MAX_FINDINGS {
            break;
        }
        if !*t {
            *t = true;
            n += 1;
        }
    }
    ranked
        .into_iter()
        .zip(take)
        .filter(|(_, t)| *t)
        .map(|(f, _)| f)
        .collect()
}

/// Both values with what differs marked: long hex values word by word (32-byte words, the
/// differing ones marked), others character by character.
fn marked(expected: &str, got: &str) -> (String, String) {
    let hex = |s: &str| {
        s.strip_prefix("0x")
            .filter(|b| b.len() > 64 && b.chars().all(|c| c.is_ascii_hexdigit()))
            .map(str::to_string)
    };
    if let (Some(a), Some(b)) = (hex(expected), hex(got)) {
        let words = |s: &str| -> Vec<String> {
            s.as_bytes()
                .chunks(64)
                .map(|c| String::from_utf8_lossy(c).to_string())
                .collect()
        };
        let (wa, wb) = (words(&a), words(&b));
        let mark = |mine: &[String], other: &[String], class: &str| -> String {
            let mut o = String::from("0x");
            for (i, w) in mine.iter().enumerate() {
                if i > 0 {
                    o.push(' ');
                }
                if other.get(i) == Some(w) {
                    o.push_str(&esc(w));
                } else {
                    let _ = write!(o, "<mark{class}>{}</mark>", esc(w));
                }
            }
            o
        };
        return (mark(&wa, &wb, ""), mark(&wb, &wa, " class=\"add\""));
    }
    let diff = similar::TextDiff::from_chars(expected, got);
    let (mut e, mut g) = (String::new(), String::new());
    for op in diff.iter_all_changes() {
        let v = esc(op.value());
        match op.tag() {
            similar::ChangeTag::Equal => {
                e.push_str(&v);
                g.push_str(&v);
            }
            similar::ChangeTag::Delete => {
                let _ = write!(e, "<mark>{v}</mark>");
            }
            similar::ChangeTag::Insert => {
                let _ = write!(g, "<mark class=\"add\">{v}</mark>");
            }
        }
    }
    (e, g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_words_and_characters_are_marked() {
        let a = format!("0x{}{}", "00".repeat(32), "11".repeat(32));
        let b = format!("0x{}{}", "00".repeat(32), "12".repeat(32));
        let (e, g) = marked(&a, &b);
        assert_eq!(e.matches("<mark").count(), 1, "{e}");
        assert!(g.contains(&format!("<mark class=\"add\">{}</mark>", "12".repeat(32))));
        let (e, g) = marked("21000", "21800");
        assert!(
            e.contains("<mark>") && g.contains("<mark class=\"add\">"),
            "{e} {g}"
        );
    }
}
