//! One row per tx: the typed [`TxRow`] and its `results.csv` form.

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use txshadow_diff::Kind;

/// A tx's verdict: every tx of a run has exactly one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No unaccepted finding, no error.
    #[default]
    Match,
    /// At least one unaccepted finding.
    Differ,
    /// Findings, every one covered by an accepted-differences rule.
    Accepted,
    /// The tx could not be replayed on a side.
    Error,
    /// The corpus marks the tx's block as not replayable.
    Skipped,
    /// A side cannot reproduce the tx (a node that cannot be given what it needs).
    NotComparable,
}

impl Verdict {
    /// The name written in `results.csv` and the reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::Differ => "differ",
            Self::Accepted => "accepted",
            Self::Error => "error",
            Self::Skipped => "skipped",
            Self::NotComparable => "not-comparable",
        }
    }
}

/// One tx, both sides: typed. Written as one row of `results.csv` (see [`CsvRow`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxRow {
    /// Block number.
    pub block: u64,
    /// Index in the block.
    pub index: usize,
    /// Tx hash.
    pub hash: B256,
    /// Sender.
    pub from: Address,
    /// Recipient (`None` for creations).
    pub to: Option<Address>,
    /// 4-byte selector, if the input has one.
    pub selector: Option<[u8; 4]>,
    /// EIP-2718 type.
    pub tx_type: u8,
    /// Status on the reference side (the chain, or the baseline), where known.
    pub expected_status: Option<bool>,
    /// Gas on the reference side, where known.
    pub expected_gas: Option<u64>,
    /// Status on the replayed side (baseline vs chain, or candidate).
    pub got_status: Option<bool>,
    /// Gas on the replayed side.
    pub got_gas: Option<u64>,
    /// Whether the logs are equal (`None`: not compared).
    pub logs_equal: Option<bool>,
    /// Whether the state changes are equal (`None`: not compared).
    pub state_equal: Option<bool>,
    /// The tx's verdict.
    pub verdict: Verdict,
    /// Kinds of the tx's findings, in the order found, without repeats.
    pub kinds: Vec<Kind>,
    /// Why the tx is not comparable or in error.
    pub note: Option<String>,
}

impl TxRow {
    /// got − expected gas, where both are known.
    pub fn gas_delta(&self) -> Option<i128> {
        Some(i128::from(self.got_gas?) - i128::from(self.expected_gas?))
    }

    /// The gas change in percent of the expected gas, where both are known and expected > 0.
    pub fn gas_delta_percent(&self) -> Option<f64> {
        let e = self.expected_gas.filter(|e| *e > 0)?;
        Some(self.gas_delta()? as f64 / e as f64 * 100.0)
    }

    /// The row as `results.csv` writes it.
    pub fn to_csv(&self) -> CsvRow {
        let status = |s: Option<bool>| s.map_or(String::new(), |s| u8::from(s).to_string());
        let num = |n: Option<u64>| n.map_or(String::new(), |n| n.to_string());
        let flag = |b: Option<bool>| b.map_or(String::new(), |b| b.to_string());
        // lower-case hex: the EIP-55 checksum costs a keccak per address
        CsvRow {
            block: self.block,
            index: self.index,
            hash: format!("{:#x}", self.hash),
            from: format!("{:#x}", self.from),
            to: self.to.map(|a| format!("{a:#x}")).unwrap_or_default(),
            selector: self
                .selector
                .map(alloy_primitives::hex::encode_prefixed)
                .unwrap_or_default(),
            tx_type: self.tx_type,
            expected_status: status(self.expected_status),
            expected_gas: num(self.expected_gas),
            got_status: status(self.got_status),
            got_gas: num(self.got_gas),
            gas_delta: self.gas_delta().map_or(String::new(), |d| d.to_string()),
            logs_equal: flag(self.logs_equal),
            state_equal: flag(self.state_equal),
            verdict: self.verdict.as_str().into(),
            kinds: self
                .kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            note: self.note.clone().unwrap_or_default(),
        }
    }
}

impl TxRow {
    /// Appends the row as one line of `results.csv` (`\n`-terminated) to `out`: the bytes
    /// [`Self::to_csv`] gives through the `csv` crate, written without a `String` per cell.
    /// A run writes a row per tx, so this is on the replay's path.
    pub fn write_csv(&self, out: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        let sep = |out: &mut Vec<u8>| out.push(b',');
        out.extend_from_slice(num.format(self.block).as_bytes());
        sep(out);
        out.extend_from_slice(num.format(self.index).as_bytes());
        sep(out);
        hex_prefixed(out, self.hash.as_slice());
        sep(out);
        hex_prefixed(out, self.from.as_slice());
        sep(out);
        if let Some(to) = &self.to {
            hex_prefixed(out, to.as_slice());
        }
        sep(out);
        if let Some(s) = &self.selector {
            hex_prefixed(out, s);
        }
        sep(out);
        out.extend_from_slice(num.format(self.tx_type).as_bytes());
        sep(out);
        let status = |out: &mut Vec<u8>, s: Option<bool>| {
            if let Some(s) = s {
                out.push(if s { b'1' } else { b'0' });
            }
        };
        let flag = |out: &mut Vec<u8>, b: Option<bool>| {
            if let Some(b) = b {
                out.extend_from_slice(if b { b"true" } else { b"false" });
            }
        };
        status(out, self.expected_status);
        sep(out);
        if let Some(g) = self.expected_gas {
            out.extend_from_slice(num.format(g).as_bytes());
        }
        sep(out);
        status(out, self.got_status);
        sep(out);
        if let Some(g) = self.got_gas {
            out.extend_from_slice(num.format(g).as_bytes());
        }
        sep(out);
        if let Some(d) = self.gas_delta() {
            out.extend_from_slice(num.format(d).as_bytes());
        }
        sep(out);
        flag(out, self.logs_equal);
        sep(out);
        flag(out, self.state_equal);
        sep(out);
        out.extend_from_slice(self.verdict.as_str().as_bytes());
        sep(out);
        for (i, k) in self.kinds.iter().enumerate() {
            if i > 0 {
                out.push(b';');
            }
            out.extend_from_slice(k.as_str().as_bytes());
        }
        sep(out);
        if let Some(note) = &self.note {
            csv_field(out, note.as_bytes());
        }
        out.push(b'\n');
    }
}

/// `0x` and the lower-case hex of `bytes`.
fn hex_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(b"0x");
    let at = out.len();
    out.resize(at + 2 * bytes.len(), 0);
    alloy_primitives::hex::encode_to_slice(bytes, &mut out[at..]).expect("sized for the hex");
}

/// A free-text cell as the `csv` crate writes it by default: quoted when it holds a comma, a
/// quote or a line break, its quotes doubled.
fn csv_field(out: &mut Vec<u8>, field: &[u8]) {
    if !field
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.extend_from_slice(field);
        return;
    }
    out.push(b'"');
    for &b in field {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The columns of `results.csv`, in order: the fields of [`CsvRow`].
pub(crate) const CSV_HEADER: [&str; 17] = [
    "block",
    "index",
    "hash",
    "from",
    "to",
    "selector",
    "tx_type",
    "expected_status",
    "expected_gas",
    "got_status",
    "got_gas",
    "gas_delta",
    "logs_equal",
    "state_equal",
    "verdict",
    "kinds",
    "note",
];

/// One row of `results.csv` as written: the column names and their text. Empty cells are
/// unknown or not compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvRow {
    /// Block number.
    pub block: u64,
    /// Index in the block.
    pub index: usize,
    /// Tx hash, `0x` + 64 lower-case hex.
    pub hash: String,
    /// Sender, lower-case hex.
    pub from: String,
    /// Recipient (empty for creations).
    pub to: String,
    /// 4-byte selector (empty if none).
    pub selector: String,
    /// EIP-2718 type.
    pub tx_type: u8,
    /// Status on the reference side: 1, 0, or empty if unknown.
    pub expected_status: String,
    /// Gas on the reference side (empty if unknown).
    pub expected_gas: String,
    /// Status on the replayed side.
    pub got_status: String,
    /// Gas on the replayed side.
    pub got_gas: String,
    /// got − expected gas (empty if either is unknown).
    pub gas_delta: String,
    /// `true`/`false`, empty if not compared.
    pub logs_equal: String,
    /// `true`/`false`, empty if not compared.
    pub state_equal: String,
    /// `match`, `differ`, `accepted`, `error`, `skipped` or `not-comparable`.
    pub verdict: String,
    /// Kinds of the findings, `;`-separated.
    pub kinds: String,
    /// Why the tx is not comparable or in error (empty otherwise).
    pub note: String,
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256};

    use super::*;

    fn rows() -> Vec<TxRow> {
        let full = TxRow {
            block: 19_000_000,
            index: 7,
            hash: B256::repeat_byte(0xab),
            from: Address::repeat_byte(0x01),
            to: Some(Address::repeat_byte(0xfe)),
            selector: Some([0xa9, 0x05, 0x9c, 0xbb]),
            tx_type: 2,
            expected_status: Some(true),
            expected_gas: Some(51_234),
            got_status: Some(false),
            got_gas: Some(21_000),
            logs_equal: Some(false),
            state_equal: Some(true),
            verdict: Verdict::Differ,
            kinds: vec![Kind::Status, Kind::Gas, Kind::Logs],
            note: None,
        };
        let notes = [
            "plain words",
            "a, comma",
            "a \"quoted\" word",
            "two\nlines",
            "carriage\rreturn",
            "",
            "\"",
        ];
        let mut v = vec![full.clone(), TxRow::default()];
        for (i, n) in notes.iter().enumerate() {
            v.push(TxRow {
                index: i,
                to: None,
                selector: None,
                expected_gas: Some(100),
                got_gas: Some(7),
                verdict: Verdict::Error,
                kinds: vec![],
                note: Some((*n).into()),
                ..full.clone()
            });
        }
        v
    }

    /// The hand-written rows are byte for byte what the `csv` crate writes for [`CsvRow`],
    /// and read back as the same rows.
    #[test]
    fn hand_written_rows_are_the_csv_crates_rows() {
        for row in rows() {
            let mut want = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(vec![]);
            want.serialize(row.to_csv()).unwrap();
            let want = want.into_inner().unwrap();
            let mut got = vec![];
            row.write_csv(&mut got);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{row:?}"
            );
            let back: CsvRow = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(&got[..])
                .deserialize()
                .next()
                .unwrap()
                .unwrap();
            assert_eq!(back, row.to_csv());
        }
    }
}
