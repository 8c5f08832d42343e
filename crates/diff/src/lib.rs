//! txshadow diff: typed got/expected comparison of replay outcomes.
//!
//! Sits between replay and report: `outcomes → diff → findings`. Pure: no I/O but reading the
//! accepted-differences file. Two comparisons:
//! - [`diff_against_chain`]: a replay against what the chain recorded (receipts, traces, header
//!   roots, post-state);
//! - [`diff_outcomes`]: a candidate against a baseline.
//!
//! It also holds the accepted-differences file ([`AcceptedFile`]) and the launch criteria
//! ([`Criterion`], [`evaluate`]) a run's exit code follows.
//!
//! Order of checks: status → gas → return data → logs → created address → state changes →
//! block level (cumulative gas, receipts root, logs bloom, state root).
//!
//! ```
//! use txshadow_diff::{Finding, Kind};
//! let f = Finding::block(1, Default::default(), Kind::BlockGas, "gas_used", 21000, 21001);
//! assert_eq!(f.got, "21000");
//! ```

mod accept;
mod compare;
mod criteria;
mod finding;
mod rejection;

pub use accept::{ACCEPTED_VERSION, AcceptRule, Accepted, AcceptedFile, apply_accepted};
pub use compare::{Mode, diff_against_chain, diff_outcomes};
pub use criteria::{CRITERIA_SYNTAX, CriteriaTally, Criterion, Totals, evaluate};
pub use finding::{Comparison, Finding, Kind};
pub use rejection::{rejection_known, rejection_matches, rejection_reason, same_rejection};
