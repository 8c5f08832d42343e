//! Accepted differences: a versioned TOML file of rules, each with a reason.
//!
//! ```toml
//! version = 1
//! [[accept]]
//! reason = "Istanbul reprices SLOAD (EIP-1884)"
//! kind = "gas"                 # optional: finding kind
//! contract = "0xabc…"          # optional: the tx's `to`
//! selector = "0xa9059cbb"      # optional
//! field = "gas_used"           # optional: exact field, or a prefix ending in '*'
//! ```

use std::path::Path;

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};

use crate::{Finding, Kind};

/// Current version of the accepted-differences file.
pub const ACCEPTED_VERSION: u32 = 1;

/// One rule. Unknown keys are refused: a misspelt `contract` would otherwise leave a rule that
/// matches far more than meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptRule {
    /// Why it is accepted (required).
    pub reason: String,
    /// Kind of finding.
    #[serde(default)]
    pub kind: Option<String>,
    /// The tx's recipient.
    #[serde(default)]
    pub contract: Option<Address>,
    /// The tx's selector (`0x` + 8 hex).
    #[serde(default)]
    pub selector: Option<String>,
    /// Field, exact or prefix with a trailing `*`.
    #[serde(default)]
    pub field: Option<String>,
}

impl AcceptRule {
    fn matches(&self, f: &Finding) -> bool {
        if let Some(k) = &self.kind
            && Kind::parse(k) != Some(f.kind)
        {
            return false;
        }
        if let Some(c) = &self.contract
            && f.to != Some(*c)
        {
            return false;
        }
        if let Some(s) = &self.selector
            && f.selector.as_deref().map(str::to_ascii_lowercase) != Some(s.to_ascii_lowercase())
        {
            return false;
        }
        if let Some(field) = &self.field {
            let ok = match field.strip_suffix('*') {
                Some(prefix) => f.field.starts_with(prefix),
                None => f.field == *field,
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

/// The file (unknown keys refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedFile {
    /// Must be [`ACCEPTED_VERSION`].
    pub version: u32,
    /// Rules.
    #[serde(default)]
    pub accept: Vec<AcceptRule>,
}

impl AcceptedFile {
    /// Reads and validates the file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let f: Self = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if f.version != ACCEPTED_VERSION {
            return Err(format!(
                "{}: accepted-differences version {}, this txshadow reads version {ACCEPTED_VERSION}",
                path.display(),
                f.version
            ));
        }
        for (i, r) in f.accept.iter().enumerate() {
            if r.reason.trim().is_empty() {
                return Err(format!("{}: rule {i} has no reason", path.display()));
            }
            if let Some(k) = &r.kind
                && Kind::parse(k).is_none()
            {
                return Err(format!("{}: rule {i}: unknown kind {k:?}", path.display()));
            }
            if let Some(sel) = &r.selector {
                let hex = sel.strip_prefix("0x").unwrap_or("");
                if hex.len() != 8 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!(
                        "{}: rule {i}: selector {sel:?} is not 0x and 8 hex digits",
                        path.display()
                    ));
                }
            }
        }
        Ok(f)
    }
}

/// Rule usage after matching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The rule.
    pub rule: AcceptRule,
    /// How many findings it matched (0 = stale).
    pub matched: usize,
}

/// Marks findings an accepted rule matches; returns each rule with its match count.
pub fn apply_accepted(file: &AcceptedFile, findings: &mut [Finding], counts: &mut Vec<usize>) {
    counts.resize(file.accept.len(), 0);
    for f in findings.iter_mut() {
        if let Some((i, r)) = file.accept.iter().enumerate().find(|(_, r)| r.matches(f)) {
            f.accepted = Some(r.reason.clone());
            counts[i] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<AcceptedFile, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("accepted.toml");
        std::fs::write(&p, text).unwrap();
        AcceptedFile::load(&p)
    }

    #[test]
    fn a_misspelt_or_unknown_key_is_refused_by_name() {
        let e = load("version = 1\n[[accept]]\nreason = \"x\"\nkind = \"gas\"\ncontrct = \"0xdac17f958d2ee523a2206206994597c13d831ec7\"\n").unwrap_err();
        assert!(e.contains("contrct"), "{e}");
        let e = load("version = 1\nowner = \"me\"\n").unwrap_err();
        assert!(e.contains("owner"), "{e}");
        let e =
            load("version = 1\n[[accept]]\nreason = \"x\"\nselector = \"0xa9059c\"\n").unwrap_err();
        assert!(e.contains("selector"), "{e}");
        load(
            "version = 1\n[[accept]]\nreason = \"x\"\nkind = \"gas\"\nselector = \"0xa9059cbb\"\n",
        )
        .unwrap();
    }
}
