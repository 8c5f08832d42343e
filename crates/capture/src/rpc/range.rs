//! `--blocks`: which blocks to capture.

use std::str::FromStr;

use super::CaptureError;

/// Blocks to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockRange {
    /// `A..B` (both included; `A..=B` says the same), `A:B` (as cryo writes it: B not included),
    /// or a single number `N`.
    Span {
        /// First block.
        from: u64,
        /// Last block (included).
        to: u64,
    },
    /// `latest-N`: the last N blocks at the time the capture starts (`latest` = `latest-1`).
    Latest {
        /// How many.
        count: u64,
    },
}

impl BlockRange {
    /// The blocks as `(first, last)`, given the node's latest block number.
    pub fn resolve(self, head: u64) -> Result<(u64, u64), CaptureError> {
        match self {
            Self::Span { from, to } => {
                if to > head {
                    return Err(CaptureError::Input(format!(
                        "--blocks {from}..{to}: the node's latest block is {head}"
                    )));
                }
                Ok((from, to))
            }
            Self::Latest { count } => {
                let count = count.min(head + 1);
                Ok((head + 1 - count, head))
            }
        }
    }
}

impl std::fmt::Display for BlockRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Span { from, to } => write!(f, "{from}..{to}"),
            Self::Latest { count } => write!(f, "latest-{count}"),
        }
    }
}

fn num(s: &str, whole: &str) -> Result<u64, CaptureError> {
    let s = s.trim().replace('_', "");
    let v = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    };
    v.ok_or_else(|| {
        CaptureError::Input(format!(
            "--blocks {whole}: {s:?} is not a block number (use A..B, N or latest-N)"
        ))
    })
}

impl FromStr for BlockRange {
    type Err = CaptureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t == "latest" {
            return Ok(Self::Latest { count: 1 });
        }
        if let Some(n) = t.strip_prefix("latest-") {
            let count = num(n, t)?;
            if count == 0 {
                return Err(CaptureError::Input(format!(
                    "--blocks {t}: N must be at least 1"
                )));
            }
            return Ok(Self::Latest { count });
        }
        if let Some((a, b)) = t.split_once(':') {
            // cryo's `A:B`: the end is not included
            let (from, end) = (num(a, t)?, num(b, t)?);
            if end <= from {
                return Err(CaptureError::Input(format!(
                    "--blocks {t}: A:B takes the blocks from A up to B, B not included: B must be after A"
                )));
            }
            return Ok(Self::Span { from, to: end - 1 });
        }
        let (from, to) = match t.split_once("..") {
            Some((a, b)) => (num(a, t)?, num(b.strip_prefix('=').unwrap_or(b), t)?),
            None => {
                let n = num(t, t)?;
                (n, n)
            }
        };
        if from > to {
            return Err(CaptureError::Input(format!(
                "--blocks {t}: the first block is after the last"
            )));
        }
        Ok(Self::Span { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        let p = |s: &str| s.parse::<BlockRange>().unwrap();
        assert_eq!(p("1..5"), BlockRange::Span { from: 1, to: 5 });
        assert_eq!(p("1..=5"), BlockRange::Span { from: 1, to: 5 });
        assert_eq!(p("7"), BlockRange::Span { from: 7, to: 7 });
        assert_eq!(p("0x10..0x11"), BlockRange::Span { from: 16, to: 17 });
        assert_eq!(p("latest-20"), BlockRange::Latest { count: 20 });
        assert_eq!(p("latest"), BlockRange::Latest { count: 1 });
        assert!("5..1".parse::<BlockRange>().is_err());
        assert!("latest-0".parse::<BlockRange>().is_err());
        assert!("a..b".parse::<BlockRange>().is_err());
    }

    #[test]
    fn resolves_against_head() {
        assert_eq!(
            BlockRange::Latest { count: 3 }.resolve(10).unwrap(),
            (8, 10)
        );
        assert_eq!(
            BlockRange::Latest { count: 30 }.resolve(10).unwrap(),
            (0, 10)
        );
        assert!(BlockRange::Span { from: 1, to: 11 }.resolve(10).is_err());
    }

    #[test]
    fn cryo_ranges_leave_out_their_end() {
        assert_eq!(
            "100:200".parse::<BlockRange>().unwrap(),
            BlockRange::Span { from: 100, to: 199 }
        );
        assert!("200:200".parse::<BlockRange>().is_err());
        assert!("1:x".parse::<BlockRange>().is_err());
    }
}
