//! JUnit XML: a test suite per run, a test case per block and per tx with findings.
//!
//! A run of any length stays in bounded memory: past [`crate::LISTED_PASSING_CASES`] passing
//! cases and [`crate::LISTED_PROBLEM_CASES`] failing, erroring or skipped ones, further cases
//! are counted in the suite's `tests`, `failures`, `errors` and `skipped` attributes and in
//! its `txshadow.unlisted.*` properties, not listed. Conformance suite cases (a finite corpus)
//! are always listed.

use std::fmt::Write;

use txshadow_diff::Finding;

use crate::Report;

/// Text escaped for XML and HTML (attributes and content); control characters dropped.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    esc_into(&mut o, s);
    o
}

/// [`esc`] appended to `o`: text with nothing to escape (nearly every name) is copied whole.
pub(crate) fn esc_into(o: &mut String, s: &str) {
    // every byte looked at without an early exit, so that the check is vectorised: a tx-mode
    // run's JUnit file has a case per tx
    let special = s.as_bytes().iter().fold(false, |any, &b| {
        any | (b == b'&')
            | (b == b'<')
            | (b == b'>')
            | (b == b'"')
            | (b == b'\'')
            | ((b < 0x20) & (b != b'\n') & (b != b'\t') & (b != b'\r'))
    });
    if !special {
        o.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {}
            c => o.push(c),
        }
    }
}

/// A readable diff of a finding's two values, made with `similar`.
pub(crate) fn finding_diff(f: &Finding) -> String {
    let split = |s: &str| -> String {
        // long hex values are split into 64-char lines so the diff points at the changed words
        let body = s.strip_prefix("0x").unwrap_or(s);
        if body.len() > 64 && body.chars().all(|c| c.is_ascii_hexdigit()) {
            body.as_bytes()
                .chunks(64)
                .map(|c| String::from_utf8_lossy(c).to_string() + "\n")
                .collect()
        } else {
            format!("{s}\n")
        }
    };
    let (a, b) = (split(&f.expected), split(&f.got));
    let diff = similar::TextDiff::from_lines(&a, &b);
    format!(
        "{}\n{}",
        f.field,
        diff.unified_diff()
            .context_radius(2)
            .header("expected", "got")
    )
}

/// Test cases counted but not listed, by outcome (past the caps of
/// [`crate::LISTED_PASSING_CASES`] and [`crate::LISTED_PROBLEM_CASES`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Unlisted {
    pub(crate) passed: usize,
    pub(crate) failures: usize,
    pub(crate) errors: usize,
    pub(crate) skipped: usize,
}

/// The `<property>` names of [`Unlisted`] in `junit.xml`.
const UNLISTED_PROPS: [&str; 4] = [
    "txshadow.unlisted.passed",
    "txshadow.unlisted.failures",
    "txshadow.unlisted.errors",
    "txshadow.unlisted.skipped",
];

impl Unlisted {
    fn values(&self) -> [usize; 4] {
        [self.passed, self.failures, self.errors, self.skipped]
    }

    fn total(&self) -> usize {
        self.values().iter().sum()
    }

    /// Adds the counts a `junit.xml` txshadow wrote says it left out.
    pub(crate) fn add_from_xml(&mut self, xml: &str) {
        for line in xml.lines().take_while(|l| !l.contains("<testcase ")) {
            for (i, name) in UNLISTED_PROPS.iter().enumerate() {
                let Some(rest) = line.split(&format!("name=\"{name}\" value=\"")).nth(1) else {
                    continue;
                };
                let n: usize = rest
                    .split('"')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                match i {
                    0 => self.passed += n,
                    1 => self.failures += n,
                    2 => self.errors += n,
                    _ => self.skipped += n,
                }
            }
        }
    }
}

/// Renders the JUnit XML of these cases, and of those counted but not listed.
pub(crate) fn render(report: &Report, cases: &[Case], unlisted: &Unlisted) -> String {
    let mut counts = Counts {
        tests: cases.len(),
        ..Counts::default()
    };
    for c in cases {
        if c.skipped.is_some() {
            counts.skipped += 1;
        } else if c.error.is_some() {
            counts.errors += 1;
        } else if !c.findings.is_empty() {
            counts.failures += 1;
        }
    }
    // the cases straight into the document, behind its counts
    let mut x = suite_head(report, counts, unlisted, cases.len() * 160);
    for c in cases {
        case_xml(&mut x, c);
    }
    suite_tail(&mut x);
    x
}

/// Renders the JUnit XML around test cases already rendered (a merge takes the shards'). The
/// suite's counts include the `unlisted` cases, which are named in its properties.
pub(crate) fn render_cases(
    report: &Report,
    cases: &[&(u64, String)],
    unlisted: &Unlisted,
) -> String {
    let count = |tag: &str| cases.iter().filter(|c| c.1.contains(tag)).count();
    let counts = Counts {
        tests: cases.len(),
        failures: count("<failure "),
        errors: count("<error "),
        skipped: count("<skipped "),
    };
    let xml: Vec<&str> = cases.iter().map(|c| c.1.as_str()).collect();
    suite(report, counts, unlisted, &xml)
}

/// The listed cases by outcome.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

/// The document: the suite's counts (listed and `unlisted`), its properties, the cases' XML.
fn suite(report: &Report, listed: Counts, unlisted: &Unlisted, cases: &[&str]) -> String {
    let len: usize = cases.iter().map(|c| c.len()).sum();
    let mut x = suite_head(report, listed, unlisted, len);
    for c in cases {
        x.push_str(c);
    }
    suite_tail(&mut x);
    x
}

/// The document up to its first case, with room for `cases` more bytes.
fn suite_head(report: &Report, listed: Counts, unlisted: &Unlisted, cases: usize) -> String {
    let failures = listed.failures + unlisted.failures;
    let errors = listed.errors + unlisted.errors;
    let skipped = listed.skipped + unlisted.skipped;
    let tests = listed.tests + unlisted.total();
    let mut x = String::with_capacity(cases + 1024);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"txshadow\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        report.throughput.replay_seconds
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"txshadow.{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\" timestamp=\"{}\">",
        esc(&report.run.mode),
        report.throughput.replay_seconds,
        esc(report.run.started.trim_end_matches('Z'))
    );
    if unlisted.total() > 0 {
        // counted in the suite's attributes, not listed: the caps of a run of any length
        x.push_str("    <properties>\n");
        for (name, n) in UNLISTED_PROPS.iter().zip(unlisted.values()) {
            let _ = writeln!(x, "      <property name=\"{name}\" value=\"{n}\"/>");
        }
        x.push_str("    </properties>\n");
    }
    x
}

/// Closes the document.
fn suite_tail(x: &mut String) {
    x.push_str("  </testsuite>\n</testsuites>\n");
}

/// Appends the XML of one test case to `x`.
fn case_xml(x: &mut String, c: &Case) {
    x.push_str("    <testcase classname=\"");
    match &c.classname {
        Some(k) => esc_into(x, k),
        None => {
            x.push_str("block.");
            x.push_str(itoa::Buffer::new().format(c.block));
        }
    }
    x.push_str("\" name=\"");
    esc_into(x, &c.name);
    x.push_str("\" time=\"0\"");
    if let Some(r) = &c.skipped {
        x.push_str(">\n      <skipped message=\"");
        esc_into(x, r);
        x.push_str("\"/>\n    </testcase>\n");
    } else if let Some(e) = &c.error {
        x.push_str(">\n      <error message=\"");
        esc_into(x, &first_line(e));
        x.push_str("\" type=\"replay\">");
        esc_into(x, e);
        x.push_str("</error>\n    </testcase>\n");
    } else if !c.findings.is_empty() {
        let msg = format!(
            "{} difference(s): {}",
            c.findings.len(),
            c.findings
                .iter()
                .map(|f| f.field.as_str())
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let body: Vec<String> = c.findings.iter().map(finding_diff).collect();
        x.push_str(">\n      <failure message=\"");
        esc_into(x, &msg);
        x.push_str("\" type=\"difference\">");
        esc_into(x, &body.join("\n"));
        x.push_str("</failure>\n    </testcase>\n");
    } else {
        x.push_str("/>\n");
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

/// One JUnit test case.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) block: u64,
    pub(crate) name: String,
    pub(crate) findings: Vec<Finding>,
    pub(crate) error: Option<String>,
    pub(crate) skipped: Option<String>,
    /// The test case's class: a conformance case's folder (else `block.<N>`).
    pub(crate) classname: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::esc;

    /// What escaping means, one char at a time.
    fn reference(s: &str) -> String {
        s.chars()
            .filter(|c| *c as u32 >= 0x20 || matches!(c, '\n' | '\t' | '\r'))
            .map(|c| match c {
                '&' => "&amp;".to_string(),
                '<' => "&lt;".into(),
                '>' => "&gt;".into(),
                '"' => "&quot;".into(),
                '\'' => "&#39;".into(),
                c => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn every_special_byte_is_escaped_wherever_it_is() {
        let plain = "block 19000000 tx 17 0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be";
        assert_eq!(esc(plain), plain);
        assert_eq!(esc("ünïcödé\n\t\r"), "ünïcödé\n\t\r");
        for special in ["&", "<", ">", "\"", "'", "\u{1}", "\u{1f}", "\u{0}"] {
            // at the start, inside and at the end, of strings short and long
            for at in [0, 1, 15, 16, 31, 32, 33, 63, plain.len()] {
                let s = format!("{}{special}{}", &plain[..at], &plain[at..]);
                assert_eq!(esc(&s), reference(&s), "{special:?} at {at}");
                assert_ne!(esc(&s), s, "{special:?} at {at} left as it was");
            }
        }
    }
}
