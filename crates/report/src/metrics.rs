//! A run's results as Prometheus metrics: a registry the run feeds block by block, rendered in
//! the text exposition format 0.0.4 for a `/metrics` endpoint (`txshadow follow`) or written
//! atomically to a file at the end of a batch run (node_exporter's textfile collector).
//!
//! Every series has the `txshadow_` prefix and base units; counters end in `_total`. The
//! counters of replayed blocks, txs, accepted findings, errors and not-comparable txs mirror the
//! report's counts, so `/metrics` and `report.json` never disagree (a rotated live run's
//! counters are the sum of its reports'). The live series (node up, head lag, reorged blocks,
//! capture time, the latency from a head seen to its verdict) are written only by a live run.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Instant,
};

use txshadow_corpus::write_atomic;

use crate::{BlockResult, Report, ReportError, Sink, Verdict};

/// Buckets of the per-block time histograms, in seconds.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of the time from a head first seen to its block's verdict, in seconds (a poll
/// interval and a slow node's capture fit in).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Heads remembered until their verdict: a follower further behind than this measures no
/// latency for the oldest ones, and the registry stays bounded.
const SEEN_MEMORY: usize = 4096;

/// Buckets of the per-tx gas delta ratio, `(got − expected) / expected`.
pub const RATIO_BUCKETS: &[f64] = &[
    -0.5, -0.1, -0.05, -0.01, -0.001, 0.0, 0.001, 0.01, 0.05, 0.1, 0.5,
];

/// A histogram with fixed upper bounds.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (ascending).
    pub fn new(bounds: &[f64]) -> Self {
        Self {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts one value in.
    pub fn observe(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let k = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[k] += 1;
        self.sum += v;
        self.count += 1;
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut acc = 0;
        for (b, n) in self.bounds.iter().zip(&self.counts) {
            acc += n;
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {acc}", float(*b));
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", float(self.sum));
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// A label value escaped for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What the binary was built from, for `txshadow_build_info`.
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    /// txshadow's version.
    pub version: String,
    /// The revm version it replays with.
    pub revm_version: String,
}

/// The counters that mirror a report's counts.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    blocks: u64,
    txs: u64,
    accepted: u64,
    errors: u64,
    not_comparable: u64,
}

impl std::ops::Add for Tally {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            blocks: self.blocks + o.blocks,
            txs: self.txs + o.txs,
            accepted: self.accepted + o.accepted,
            errors: self.errors + o.errors,
            not_comparable: self.not_comparable + o.not_comparable,
        }
    }
}

#[derive(Debug)]
struct State {
    /// The counts of the current report.
    part: Tally,
    /// The counts of the reports before it (a rotated live run, see [`Metrics::next_part`]).
    before: Tally,
    reorged: u64,
    /// Unaccepted findings by (kind, configuration).
    differences: BTreeMap<(String, String), u64>,
    last_block: Option<u64>,
    /// The last block before the first one followed (lag is counted from it until a block is
    /// replayed).
    start_block: Option<u64>,
    head: Option<u64>,
    node_up: bool,
    last_block_at: Option<Instant>,
    capture: Histogram,
    replay: Histogram,
    gas_delta: Histogram,
    /// When each block not yet counted was first seen at the node's head.
    seen: BTreeMap<u64, Instant>,
    verdict_latency: Histogram,
}

/// The metrics registry of one run. Shared (`Arc`) between the run's sink, the block source
/// (node state, capture times, reorgs) and whoever renders it.
#[derive(Debug)]
pub struct Metrics {
    state: Mutex<State>,
    build: BuildInfo,
    live: bool,
}

impl Metrics {
    /// A registry; `live` adds the series of a followed node (up, head lag, reorgs, capture).
    pub fn new(build: BuildInfo, live: bool) -> Self {
        Self {
            state: Mutex::new(State {
                part: Tally::default(),
                before: Tally::default(),
                reorged: 0,
                differences: BTreeMap::new(),
                last_block: None,
                start_block: None,
                head: None,
                node_up: false,
                last_block_at: None,
                capture: Histogram::new(SECONDS_BUCKETS),
                replay: Histogram::new(SECONDS_BUCKETS),
                gas_delta: Histogram::new(RATIO_BUCKETS),
                seen: BTreeMap::new(),
                verdict_latency: Histogram::new(LATENCY_BUCKETS),
            }),
            build,
            live,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the node answered its last request.
    pub fn set_node_up(&self, up: bool) {
        self.lock().node_up = up;
    }

    /// The node's head, as last polled.
    pub fn set_head(&self, head: u64) {
        self.lock().head = Some(head);
    }

    /// The block before the first one followed (head lag counts from it until a block is
    /// replayed).
    pub fn set_start(&self, before_first: u64) {
        self.lock().start_block = Some(before_first);
    }

    /// Block `number` was first seen at the node's head at `at` (by a poll, or announced by a
    /// subscription): its verdict's latency is counted from then. A later sighting of the same
    /// number is ignored.
    pub fn head_seen(&self, number: u64, at: Instant) {
        let mut s = self.lock();
        if s.last_block.is_some_and(|b| number <= b) {
            return;
        }
        s.seen.entry(number).or_insert(at);
        while s.seen.len() > SEEN_MEMORY {
            s.seen.pop_first();
        }
    }

    /// Blocks replaced by a reorg.
    pub fn add_reorged(&self, blocks: u64) {
        self.lock().reorged += blocks;
    }

    /// The seconds one block took to capture.
    pub fn observe_capture(&self, seconds: f64) {
        self.lock().capture.observe(seconds);
    }

    /// Head minus the last block replayed (0 before the head is known).
    pub fn head_lag(&self) -> u64 {
        let s = self.lock();
        let last = s.last_block.or(s.start_block).unwrap_or(0);
        s.head.map_or(0, |h| h.saturating_sub(last))
    }

    /// Counts one block's result in; `report` is the report after it (the counters mirror its
    /// counts).
    pub fn record_block(&self, r: &BlockResult, report: &Report) {
        let configuration = report
            .configurations
            .candidate
            .clone()
            .unwrap_or_else(|| "chain".into());
        let mut s = self.lock();
        let c = &report.counts;
        s.part = Tally {
            blocks: c.blocks as u64,
            txs: c.txs as u64,
            accepted: c.accepted as u64,
            errors: (c.errors + c.block_errors) as u64,
            not_comparable: c.not_comparable as u64,
        };
        for f in r.findings.iter().filter(|f| f.accepted.is_none()) {
            *s.differences
                .entry((f.kind.as_str().to_string(), configuration.clone()))
                .or_default() += 1;
        }
        if r.skipped.is_none() {
            for row in &r.rows {
                if row.verdict == Verdict::Skipped {
                    continue;
                }
                if let (Some(e), Some(g)) = (row.expected_gas, row.got_gas)
                    && e > 0
                {
                    s.gas_delta.observe((g as f64 - e as f64) / e as f64);
                }
            }
        }
        s.replay.observe(r.seconds);
        if let Some(at) = s.seen.remove(&r.block) {
            s.verdict_latency.observe(at.elapsed().as_secs_f64());
        }
        // a block at or below this one will not be counted again before a reorg, whose
        // replayed branch is not measured
        s.seen.retain(|n, _| *n > r.block);
        s.last_block = Some(s.last_block.map_or(r.block, |b| b.max(r.block)));
        s.last_block_at = Some(Instant::now());
    }

    /// The report the counters mirror is finished and a new one starts (a live run's
    /// `--rotate`): the counters keep counting from where they are instead of starting again
    /// from the new report's zero.
    pub fn next_part(&self) {
        let mut s = self.lock();
        s.before = s.before + s.part;
        s.part = Tally::default();
    }

    /// The text exposition (format 0.0.4) of every series.
    pub fn render(&self) -> String {
        let s = self.lock();
        let t = s.before + s.part;
        let mut o = String::new();
        let head = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
        };
        let simple = |o: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            head(o, name, kind, help);
            let _ = writeln!(o, "{name} {v}");
        };
        simple(
            &mut o,
            "txshadow_blocks_replayed_total",
            "counter",
            "Blocks replayed and diffed.",
            t.blocks,
        );
        simple(
            &mut o,
            "txshadow_txs_replayed_total",
            "counter",
            "Transactions replayed and diffed.",
            t.txs,
        );
        simple(
            &mut o,
            "txshadow_accepted_total",
            "counter",
            "Findings matched by an accepted-difference rule.",
            t.accepted,
        );
        simple(
            &mut o,
            "txshadow_errors_total",
            "counter",
            "Transactions and whole blocks that failed to replay.",
            t.errors,
        );
        simple(
            &mut o,
            "txshadow_not_comparable_total",
            "counter",
            "Transactions a node engine could not reproduce.",
            t.not_comparable,
        );
        let _ = writeln!(
            o,
            "# HELP txshadow_differences_total Unaccepted findings, by kind and by the configuration compared (the candidate, or chain)."
        );
        let _ = writeln!(o, "# TYPE txshadow_differences_total counter");
        for ((kind, conf), n) in &s.differences {
            let _ = writeln!(
                o,
                "txshadow_differences_total{{kind=\"{}\",configuration=\"{}\"}} {n}",
                label(kind),
                label(conf)
            );
        }
        if let Some(b) = s.last_block {
            simple(
                &mut o,
                "txshadow_last_block_number",
                "gauge",
                "Number of the last block replayed.",
                b,
            );
        }
        if self.live {
            simple(
                &mut o,
                "txshadow_reorged_blocks_total",
                "counter",
                "Blocks replayed and then replaced by a reorg.",
                s.reorged,
            );
            let last = s.last_block.or(s.start_block).unwrap_or(0);
            simple(
                &mut o,
                "txshadow_head_lag_blocks",
                "gauge",
                "The node's head minus the last block replayed.",
                s.head.map_or(0, |h| h.saturating_sub(last)),
            );
            simple(
                &mut o,
                "txshadow_node_up",
                "gauge",
                "Whether the followed node answered its last request (1) or not (0).",
                u64::from(s.node_up),
            );
            if let Some(t) = s.last_block_at {
                head(
                    &mut o,
                    "txshadow_seconds_since_last_block",
                    "gauge",
                    "Seconds since the last block was replayed.",
                );
                let _ = writeln!(
                    o,
                    "txshadow_seconds_since_last_block {}",
                    float(t.elapsed().as_secs_f64())
                );
            }
            head(
                &mut o,
                "txshadow_capture_seconds",
                "histogram",
                "Seconds to capture one block from the node.",
            );
            s.capture.render(&mut o, "txshadow_capture_seconds");
            head(
                &mut o,
                "txshadow_block_verdict_latency_seconds",
                "histogram",
                "Seconds from a block first seen at the node's head to its verdict counted here.",
            );
            s.verdict_latency
                .render(&mut o, "txshadow_block_verdict_latency_seconds");
        }
        head(
            &mut o,
            "txshadow_replay_seconds",
            "histogram",
            "Seconds to replay and diff one block.",
        );
        s.replay.render(&mut o, "txshadow_replay_seconds");
        head(
            &mut o,
            "txshadow_gas_delta_ratio",
            "histogram",
            "Per transaction with both gases: (got - expected) / expected gas used.",
        );
        s.gas_delta.render(&mut o, "txshadow_gas_delta_ratio");
        head(
            &mut o,
            "txshadow_build_info",
            "gauge",
            "The txshadow and revm versions of this binary (always 1).",
        );
        let _ = writeln!(
            o,
            "txshadow_build_info{{version=\"{}\",revm_version=\"{}\"}} 1",
            label(&self.build.version),
            label(&self.build.revm_version)
        );
        o
    }

    /// Writes [`Self::render`] to `path` atomically (a textfile collector never reads half).
    pub fn write_file(&self, path: &Path) -> Result<(), ReportError> {
        write_atomic(path, self.render().as_bytes()).map_err(|e| ReportError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
    }
}

/// The sink that feeds a [`Metrics`] registry, and writes it to a file at the end when given
/// one.
#[derive(Debug)]
pub struct MetricsSink {
    metrics: Arc<Metrics>,
    file: Option<PathBuf>,
}

impl MetricsSink {
    /// A sink feeding `metrics`; with `file`, the metrics are written there when the run ends.
    pub fn new(metrics: Arc<Metrics>, file: Option<PathBuf>) -> Self {
        Self { metrics, file }
    }
}

impl Sink for MetricsSink {
    fn block(&mut self, result: &BlockResult, report: &Report) -> Result<(), ReportError> {
        self.metrics.record_block(result, report);
        Ok(())
    }

    fn finish(&mut self, _report: &Report) -> Result<(), ReportError> {
        match &self.file {
            Some(p) => self.metrics.write_file(p),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use txshadow_diff::{Finding, Kind};

    use super::*;
    use crate::TxRow;

    fn build() -> BuildInfo {
        BuildInfo {
            version: "1.2.3".into(),
            revm_version: "4.5.6".into(),
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 3.0] {
            h.observe(v);
        }
        let mut o = String::new();
        h.render(&mut o, "x");
        assert_eq!(
            o,
            "x_bucket{le=\"0.1\"} 2\nx_bucket{le=\"1\"} 3\nx_bucket{le=\"+Inf\"} 4\nx_sum 3.65\nx_count 4\n"
        );
    }

    #[test]
    fn counters_mirror_the_report_and_differences_are_labelled() {
        let m = Metrics::new(build(), true);
        let mut report = Report::default();
        report.configurations.candidate = Some("spec=\"istanbul\"".into());
        let rows = vec![
            TxRow {
                block: 7,
                verdict: Verdict::Differ,
                expected_gas: Some(100),
                got_gas: Some(110),
                ..Default::default()
            },
            TxRow {
                block: 7,
                index: 1,
                verdict: Verdict::Match,
                expected_gas: Some(50),
                got_gas: Some(50),
                ..Default::default()
            },
        ];
        let f = Finding::block(7, Default::default(), Kind::Gas, "gas_used", 110, 100);
        let r = BlockResult {
            block: 7,
            rows,
            findings: vec![f.clone(), f],
            seconds: 0.02,
            ..Default::default()
        };
        report.add_block(&r);
        m.set_head(9);
        m.set_node_up(true);
        m.record_block(&r, &report);
        let text = m.render();
        for want in [
            "txshadow_blocks_replayed_total 1\n",
            "txshadow_txs_replayed_total 2\n",
            "txshadow_differences_total{kind=\"gas\",configuration=\"spec=\\\"istanbul\\\"\"} 2\n",
            "txshadow_last_block_number 7\n",
            "txshadow_head_lag_blocks 2\n",
            "txshadow_node_up 1\n",
            "txshadow_gas_delta_ratio_bucket{le=\"0\"} 1\n",
            "txshadow_gas_delta_ratio_bucket{le=\"0.1\"} 2\n",
            "txshadow_replay_seconds_bucket{le=\"0.025\"} 1\n",
            "txshadow_build_info{version=\"1.2.3\",revm_version=\"4.5.6\"} 1\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // every sample's family has HELP and TYPE
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
                .unwrap_or(name);
            assert!(text.contains(&format!("# HELP {family} ")), "{family}");
            assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
        }
    }

    #[test]
    fn a_batch_registry_has_no_live_series_and_writes_its_file() {
        let m = Arc::new(Metrics::new(build(), false));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("txshadow.prom");
        let mut sink = MetricsSink::new(m, Some(path.clone()));
        sink.finish(&Report::default()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("txshadow_blocks_replayed_total 0"));
        assert!(!text.contains("txshadow_node_up"));
        assert!(!text.contains("txshadow_capture_seconds"));
        assert!(!text.contains("txshadow_block_verdict_latency_seconds"));
    }

    #[test]
    fn a_verdict_latency_is_counted_from_the_first_sighting_of_its_head() {
        let m = Metrics::new(build(), true);
        let long_ago = Instant::now() - std::time::Duration::from_secs(3);
        m.head_seen(5, long_ago);
        m.head_seen(5, Instant::now());
        m.head_seen(6, Instant::now());
        let block = |n| BlockResult {
            block: n,
            ..Default::default()
        };
        m.record_block(&block(5), &Report::default());
        let text = m.render();
        for want in [
            "txshadow_block_verdict_latency_seconds_bucket{le=\"2.5\"} 0\n",
            "txshadow_block_verdict_latency_seconds_bucket{le=\"5\"} 1\n",
            "txshadow_block_verdict_latency_seconds_count 1\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // a block seen after its verdict (a late poll) is not counted again
        m.head_seen(5, Instant::now());
        m.record_block(&block(6), &Report::default());
        m.record_block(&block(7), &Report::default());
        assert!(
            m.render()
                .contains("txshadow_block_verdict_latency_seconds_count 2\n")
        );
    }

    #[test]
    fn counters_go_on_across_rotated_reports() {
        let m = Metrics::new(build(), true);
        let mut report = Report::default();
        let r = BlockResult {
            block: 1,
            rows: vec![TxRow::default(), TxRow::default()],
            ..Default::default()
        };
        report.add_block(&r);
        m.record_block(&r, &report);
        m.next_part();
        let mut report = Report::default();
        let r = BlockResult {
            block: 2,
            rows: vec![TxRow::default()],
            ..Default::default()
        };
        report.add_block(&r);
        m.record_block(&r, &report);
        let text = m.render();
        assert!(
            text.contains("txshadow_blocks_replayed_total 2\n"),
            "{text}"
        );
        assert!(text.contains("txshadow_txs_replayed_total 3\n"), "{text}");
    }
}

/// Where a batch run's metrics are pushed: a Prometheus Pushgateway over `http://` (with
/// `user:password@` for basic auth). The URL's credentials are never shown: messages name the
/// host and port only.
#[derive(Clone)]
pub struct Pushgateway {
    host: String,
    port: u16,
    base: String,
    auth: Option<String>,
}

impl std::fmt::Debug for Pushgateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pushgateway({})", self.display())
    }
}

/// Standard base64 with padding (for a basic-auth header).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Pushgateway {
    /// Parses `http://[user:password@]host[:port][/path]`; the error never repeats the URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            "--pushgateway: give an http:// URL (put a TLS proxy in front of a gateway that \
             only speaks https)"
                .to_string()
        })?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (auth, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, h)) => (Some(base64(userinfo.as_bytes())), h),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| "--pushgateway: the port is not a number".to_string())?,
            ),
            None => (hostport.to_string(), 80),
        };
        if host.is_empty() {
            return Err("--pushgateway: no host in the URL".into());
        }
        Ok(Self {
            host,
            port,
            base: format!("/{}", path.trim_end_matches('/'))
                .trim_end_matches('/')
                .to_string(),
            auth,
        })
    }

    /// The gateway as messages show it: `http://host:port`, no credentials, no path.
    pub fn display(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// Pushes `metrics` under `job` and `instance` (replacing that group, as Prometheus's
    /// push API's PUT does).
    pub fn push(&self, metrics: &Metrics, job: &str, instance: &str) -> Result<(), ReportError> {
        use std::io::{Read, Write};
        let seg = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    b => format!("%{b:02X}"),
                })
                .collect()
        };
        let body = metrics.render();
        let path = format!(
            "{}/metrics/job/{}/instance/{}",
            self.base,
            seg(job),
            seg(instance)
        );
        let fail = |why: String| ReportError::Other(format!("push to {}: {why}", self.display()));
        let mut conn = std::net::TcpStream::connect((self.host.as_str(), self.port))
            .map_err(|e| fail(e.to_string()))?;
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .map_err(|e| fail(e.to_string()))?;
        let auth = self
            .auth
            .as_ref()
            .map(|a| format!("Authorization: Basic {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "PUT {path} HTTP/1.1\r\nHost: {}:{}\r\n{auth}Content-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.host,
            self.port,
            body.len()
        );
        conn.write_all(req.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)
            .map_err(|e| fail(e.to_string()))?;
        let status = answer.lines().next().unwrap_or("");
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if (200..300).contains(&code) {
            Ok(())
        } else {
            let detail = answer.split("\r\n\r\n").nth(1).unwrap_or("").trim();
            Err(fail(format!("{status} {detail}")))
        }
    }
}

#[cfg(test)]
mod push_tests {
    use super::*;

    #[test]
    fn a_pushgateway_url_keeps_its_credentials_out_of_sight() {
        let p = Pushgateway::parse("http://ci:s3cret@gw.example:9091/prefix/").unwrap();
        assert_eq!(p.display(), "http://gw.example:9091");
        assert!(!format!("{p:?}").contains("s3cret"));
        assert_eq!(p.base, "/prefix");
        assert_eq!(p.auth.as_deref(), Some("Y2k6czNjcmV0"));
        assert!(Pushgateway::parse("https://gw.example").is_err());
        let e = Pushgateway::parse("http://u:pw@gw:notaport").unwrap_err();
        assert!(!e.contains("pw"), "{e}");
    }
}
