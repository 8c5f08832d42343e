//! A long run cut into parts (`txshadow follow --rotate`): every N blocks, or per UTC day of
//! the blocks' timestamps. Each part is a run of its own, with a complete run directory
//! (`report.json`, `results.csv`, `summary.md`, `junit.xml`, `index.html`), under
//! `<out-dir>/<run-id>/`, named so that the parts sort in order: `part-0001`, `part-0002`, …
//! (with the day: `part-0001-2025-05-04`). One source feeds every part, so nothing is
//! replayed twice and nothing is skipped at a cut.

use std::str::FromStr;

use crate::{BlockSource, RunConfig, RunError, RunHooks, RunOutcome, SourceBlock, SourcePlan};

/// When a run starts a new part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotate {
    /// After this many blocks.
    Blocks(u64),
    /// When a block's timestamp falls on another UTC day than the part's first block.
    Day,
}

impl FromStr for Rotate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "day" => Ok(Self::Day),
            n => match n.parse::<u64>() {
                Ok(0) | Err(_) => Err(format!(
                    "--rotate {s}: expected a number of blocks (at least 1) or `day`"
                )),
                Ok(n) => Ok(Self::Blocks(n)),
            },
        }
    }
}

/// The UTC day of a unix timestamp, `YYYY-MM-DD`.
pub fn utc_day(timestamp: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(timestamp.min(i64::MAX as u64) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// The parts of a run: the source, and the block that opens the next part.
struct Parts<'s> {
    source: &'s mut dyn BlockSource,
    rotate: Rotate,
    /// The first block of the next part, read ahead (a day part is named after it).
    ahead: Option<Result<SourceBlock, RunError>>,
}

/// One part: blocks from [`Parts`] until the part is full or the source ends.
struct Part<'p, 's> {
    parts: &'p mut Parts<'s>,
    given: u64,
    day: Option<String>,
}

impl BlockSource for Part<'_, '_> {
    fn chain(&self) -> &txshadow_corpus::ChainConfig {
        self.parts.source.chain()
    }

    fn plan(&self) -> SourcePlan {
        let inner = self.parts.source.plan();
        let left = match self.parts.rotate {
            Rotate::Blocks(n) => Some(n as usize),
            Rotate::Day => None,
        };
        SourcePlan {
            blocks: match (inner.blocks, left) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            ..Default::default()
        }
    }

    fn describe(&self) -> String {
        self.parts.source.describe()
    }

    fn identity(&self) -> Option<String> {
        self.parts.source.identity()
    }

    fn next_block(&mut self) -> Option<Result<SourceBlock, RunError>> {
        if let Rotate::Blocks(n) = self.parts.rotate
            && self.given >= n
        {
            return None;
        }
        let b = match self.parts.ahead.take() {
            Some(b) => b,
            None => self.parts.source.next_block()?,
        };
        if let (Rotate::Day, Ok(sb)) = (self.parts.rotate, &b) {
            let day = utc_day(sb.block.header.timestamp);
            match &self.day {
                Some(d) if *d != day => {
                    // the first block of the next day opens the next part
                    self.parts.ahead = Some(b);
                    return None;
                }
                Some(_) => {}
                None => self.day = Some(day),
            }
        }
        self.given += 1;
        Some(b)
    }
}

/// What a rotated run did: each part's outcome, in order.
#[derive(Debug, Default)]
pub struct RotatedOutcome {
    /// The parts' outcomes. A part's report keeps its counts, verdict, criteria and
    /// throughput, not its lists (findings, skipped, warnings, …: they are in the part's
    /// `report.json`), so a run of many parts holds little per part.
    pub parts: Vec<RunOutcome>,
    /// The exit code of the whole: the worst of the parts' (0 with no part).
    pub exit: u8,
}

/// Runs `source` in parts per `rotate` (see the [module](self) docs), each under `cfg` with
/// the hooks `hooks(part)` gives (part numbers start at 1), until the source ends. A part is
/// started only once its first block is there, so a stop while waiting leaves no empty part.
/// `cfg.run_id` names the directory of the parts (required).
pub fn run_rotated<'h>(
    source: &mut dyn BlockSource,
    cfg: &RunConfig,
    rotate: Rotate,
    mut hooks: impl FnMut(usize) -> RunHooks<'h>,
) -> Result<RotatedOutcome, RunError> {
    let run_id = cfg
        .run_id
        .clone()
        .ok_or_else(|| RunError::Input("a rotated run needs a run id".into()))?;
    let mut parts = Parts {
        source,
        rotate,
        ahead: None,
    };
    let mut out = RotatedOutcome::default();
    loop {
        if parts.ahead.is_none() {
            parts.ahead = parts.source.next_block();
        }
        let day = match &parts.ahead {
            None => return Ok(out),
            Some(Err(_)) => None,
            Some(Ok(sb)) => Some(utc_day(sb.block.header.timestamp)),
        };
        let n = out.parts.len() + 1;
        let mut part_cfg = cfg.clone();
        part_cfg.out_dir = cfg.out_dir.join(&run_id);
        part_cfg.run_id = Some(match (rotate, day) {
            (Rotate::Day, Some(d)) => format!("part-{n:04}-{d}"),
            _ => format!("part-{n:04}"),
        });
        let h = hooks(n);
        if h.stop
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Ok(out);
        }
        let mut part = Part {
            parts: &mut parts,
            given: 0,
            day: None,
        };
        let mut o = crate::run(&mut part, &part_cfg, h)?;
        out.exit = out.exit.max(o.exit);
        slim(&mut o.report);
        out.parts.push(o);
    }
}

/// A finished part's report without its lists (written to its directory already).
fn slim(r: &mut txshadow_report::Report) {
    r.findings = vec![];
    r.skipped = vec![];
    r.not_comparable = vec![];
    r.warnings = vec![];
    r.state_roots = vec![];
    r.accepted_rules = vec![];
    r.conformance = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_parses_blocks_or_day() {
        assert_eq!("day".parse::<Rotate>(), Ok(Rotate::Day));
        assert_eq!("100".parse::<Rotate>(), Ok(Rotate::Blocks(100)));
        for bad in ["0", "-1", "week", ""] {
            let e = bad.parse::<Rotate>().unwrap_err();
            assert!(e.contains("`day`"), "{e}");
        }
    }

    #[test]
    fn a_timestamp_falls_on_its_utc_day() {
        assert_eq!(utc_day(0), "1970-01-01");
        // 2024-03-13 23:59:59 and the next second
        assert_eq!(utc_day(1_710_374_399), "2024-03-13");
        assert_eq!(utc_day(1_710_374_400), "2024-03-14");
    }
}
