//! Configurations from the command line and the suite file.
//!
//! A configuration is written inline as comma-separated `key=value` items, or names an entry of
//! the suite file (`--config txshadow.toml`):
//!
//! - `spec=istanbul` force a spec (default: the chain's fork schedule);
//! - `code.0xADDR=FILE` replace runtime code: a hex file, or a Foundry/Hardhat artifact JSON
//!   (its deployed bytecode);
//! - `storage.0xADDR.0xSLOT=0xVALUE` set a storage slot;
//! - `balance.0xADDR=WEI` set a balance;
//! - `node=URL` run the txs on a node over JSON-RPC instead of revm (the node engine, tx mode),
//!   with `timeout=SECS`, `concurrency=N`, `retries=N` for its client and `state=auto|block|
//!   touched` for the accounts its state overrides hold; code, storage and
//!   balance settings become extra state overrides on the node.
//!
//! ```toml
//! # txshadow.toml
//! [config.upgrade]
//! spec = "prague"
//! code = { "0x1f98431c8ad98523631ae4a59f267346ea31f984" = "out/Factory.sol/Factory.json" }
//! storage = { "0x…" = { "0x0" = "0x1" } }
//! balance = { "0x…" = "1000000000000000000" }
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use alloy_primitives::{Address, Bytes, U256};
use eyre::{Result, WrapErr, bail, eyre};
use serde::Deserialize;
use txshadow_node::NodeSpec;
use txshadow_replay::{SideConfig, decode_code, parse_spec};

use crate::SideSpec;

/// One configuration in the suite file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigEntry {
    /// Forced spec name.
    #[serde(default)]
    pub spec: Option<String>,
    /// Address → code file.
    #[serde(default)]
    pub code: BTreeMap<Address, PathBuf>,
    /// Address → slot → value.
    #[serde(default)]
    pub storage: BTreeMap<Address, BTreeMap<U256, U256>>,
    /// Address → balance (decimal or 0x).
    #[serde(default)]
    pub balance: BTreeMap<Address, U256>,
    /// Run on this node (JSON-RPC URL) instead of revm.
    #[serde(default)]
    pub node: Option<String>,
    /// Node client: seconds per request.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Node client: requests in flight.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Node client: retries after a transient fault.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Node: which accounts the state overrides hold (`auto`, `block`, `touched`).
    #[serde(default)]
    pub state: Option<String>,
}

/// The suite file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Named configurations.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigEntry>,
    /// Default baseline name.
    #[serde(default)]
    pub baseline: Option<String>,
    /// Default candidate name.
    #[serde(default)]
    pub candidate: Option<String>,
    /// Accepted-differences file.
    #[serde(default)]
    pub accepted: Option<PathBuf>,
    /// Launch criteria (same syntax as `--fail-on`).
    #[serde(default)]
    pub fail_on: Vec<String>,
}

impl Suite {
    /// Reads a suite file; relative paths in it are relative to the file.
    pub fn load(path: &Path) -> Result<(Self, PathBuf)> {
        let text =
            std::fs::read_to_string(path).wrap_err_with(|| format!("read {}", path.display()))?;
        let s: Self =
            toml::from_str(&text).wrap_err_with(|| format!("parse {}", path.display()))?;
        Ok((s, path.parent().unwrap_or(Path::new(".")).to_path_buf()))
    }
}

/// Reads runtime bytecode from a hex file or a compiler artifact.
pub fn read_code(path: &Path) -> Result<Bytes> {
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("read code file {}", path.display()))?;
    let t = text.trim();
    let hex = if t.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(t)
            .wrap_err_with(|| format!("parse artifact {}", path.display()))?;
        let d = &v["deployedBytecode"];
        d.as_str()
            .or_else(|| d["object"].as_str())
            .or_else(|| v["evm"]["deployedBytecode"]["object"].as_str())
            .or_else(|| v["bytecode"]["deployedBytecode"].as_str())
            .ok_or_else(|| eyre!("{}: no deployedBytecode in the artifact", path.display()))?
            .to_string()
    } else {
        t.to_string()
    };
    let hex = hex.trim();
    let hex = if hex.starts_with("0x") {
        hex.to_string()
    } else {
        format!("0x{hex}")
    };
    let code: Bytes = hex
        .parse()
        .map_err(|e| eyre!("{}: not hex bytecode: {e}", path.display()))?;
    if code.is_empty() {
        bail!(
            "{}: empty bytecode (an abstract contract or an interface?)",
            path.display()
        );
    }
    Ok(code)
}

fn build(name: &str, e: &ConfigEntry, base: &Path) -> Result<SideSpec> {
    let node = match &e.node {
        None => {
            if e.timeout.is_some()
                || e.concurrency.is_some()
                || e.retries.is_some()
                || e.state.is_some()
            {
                bail!("{name}: timeout, concurrency, retries and state are settings of node=URL");
            }
            None
        }
        Some(url) => {
            if let Some(s) = &e.spec {
                bail!(
                    "{name}: spec={s} with node=: a node runs its own rules; start it with the \
                     hardfork to test (anvil: --hardfork {s})"
                );
            }
            let url = if let Some(var) = url.strip_prefix('$') {
                std::env::var(var).map_err(|_| eyre!("{name}: node=${var}: {var} is not set"))?
            } else {
                url.clone()
            };
            let mut spec = NodeSpec::parse(&url).map_err(|e| eyre!("{name}: {e}"))?;
            if let Some(t) = e.timeout {
                spec.client.timeout = std::time::Duration::from_secs(t.max(1));
            }
            if let Some(c) = e.concurrency {
                spec.client.concurrency = c.max(1);
            }
            if let Some(r) = e.retries {
                spec.client.retries = r;
            }
            if let Some(st) = &e.state {
                spec.scope = match st.as_str() {
                    "auto" => txshadow_node::StateScope::Auto,
                    "block" => txshadow_node::StateScope::Block,
                    "touched" => txshadow_node::StateScope::Touched,
                    _ => bail!("{name}: state={st}: expected auto, block or touched"),
                };
            }
            Some(spec)
        }
    };
    let mut side = SideConfig::chain(name);
    if let Some(s) = &e.spec {
        side.spec =
            Some(parse_spec(s).ok_or_else(|| eyre!("configuration {name}: unknown spec {s:?}"))?);
    }
    for (a, p) in &e.code {
        let p = if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        };
        side.overrides.set_code(*a, decode_code(read_code(&p)?));
    }
    side.overrides.storage = e.storage.clone();
    side.overrides.balance = e.balance.clone();
    Ok(SideSpec { config: side, node })
}

/// Parses `--baseline`/`--candidate` for a command that runs revm only (`txshadow tx`).
pub fn parse_side(name: &str, value: &str, suite: Option<&(Suite, PathBuf)>) -> Result<SideConfig> {
    let side = parse_side_engine(name, value, suite)?;
    if side.node.is_some() {
        bail!(
            "{name}: the node engine runs in `txshadow replay --mode tx`; this command replays \
             under revm only"
        );
    }
    Ok(side.config)
}

/// Parses `--baseline`/`--candidate`: a suite name, or inline `key=value` items; a side may
/// run on a node (`node=URL`).
pub fn parse_side_engine(
    name: &str,
    value: &str,
    suite: Option<&(Suite, PathBuf)>,
) -> Result<SideSpec> {
    if let Some((s, base)) = suite
        && let Some(e) = s.config.get(value)
    {
        let mut side = build(value, e, base)?;
        side.config.name = format!("{name}:{value}");
        return Ok(side);
    }
    if value.contains("://") && !value.starts_with("node=") && !value.contains(",node=") {
        // a bare URL: never echoed, it may carry credentials
        bail!("{name}: looks like a node URL; write node=URL (or node=$VAR to read it from VAR)");
    }
    if !value.contains('=') {
        bail!(
            "{name} {value:?}: neither a configuration of the suite file nor key=value items (e.g. spec=istanbul)"
        );
    }
    let mut e = ConfigEntry::default();
    let mut seen = std::collections::BTreeSet::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let key = item.split_once('=').map_or(item, |(k, _)| k);
        if !key.contains("://") && !seen.insert(key.to_ascii_lowercase()) {
            bail!("{name}: {key} is given twice; give each setting once");
        }
        if let Some(url) = item.strip_prefix("node=") {
            e.node = Some(url.to_string());
            continue;
        }
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| eyre!("{name}: {item:?} is not key=value"))?;
        let mut parts = k.split('.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("spec"), None, None) => e.spec = Some(v.to_string()),
            (Some("code"), Some(a), None) => {
                e.code.insert(
                    a.parse().map_err(|_| eyre!("{name}: bad address {a}"))?,
                    PathBuf::from(v),
                );
            }
            (Some("storage"), Some(a), Some(slot)) => {
                let a: Address = a.parse().map_err(|_| eyre!("{name}: bad address {a}"))?;
                let slot: U256 = slot.parse().map_err(|_| eyre!("{name}: bad slot {slot}"))?;
                let val: U256 = v.parse().map_err(|_| eyre!("{name}: bad value {v}"))?;
                e.storage.entry(a).or_default().insert(slot, val);
            }
            (Some("balance"), Some(a), None) => {
                let a: Address = a.parse().map_err(|_| eyre!("{name}: bad address {a}"))?;
                e.balance
                    .insert(a, v.parse().map_err(|_| eyre!("{name}: bad balance {v}"))?);
            }
            (Some("timeout"), None, None) => {
                e.timeout = Some(v.parse().map_err(|_| eyre!("{name}: bad timeout {v}"))?);
            }
            (Some("concurrency"), None, None) => {
                e.concurrency = Some(
                    v.parse()
                        .map_err(|_| eyre!("{name}: bad concurrency {v}"))?,
                );
            }
            (Some("state"), None, None) => e.state = Some(v.to_string()),
            (Some("retries"), None, None) => {
                e.retries = Some(v.parse().map_err(|_| eyre!("{name}: bad retries {v}"))?);
            }
            _ if k.contains("://") => bail!(
                "{name}: a node URL needs node= before it (node=URL or node=$VAR); the value is \
                 not shown, it may carry credentials"
            ),
            _ => bail!(
                "{name}: unknown setting {k:?} (spec, code.ADDR, storage.ADDR.SLOT, balance.ADDR, \
                 node, timeout, concurrency, retries, state)"
            ),
        }
    }
    build(name, &e, Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_sides_parse_with_their_client_settings() {
        let s = parse_side_engine(
            "candidate",
            "node=https://user:pw@node.example:8545/key,timeout=7,concurrency=3,retries=1,state=block",
            None,
        )
        .unwrap();
        let n = s.node.expect("a node side");
        assert_eq!(n.display(), "https://node.example:8545/<redacted>");
        assert_eq!(n.client.timeout, std::time::Duration::from_secs(7));
        assert_eq!(n.client.concurrency, 3);
        assert_eq!(n.client.retries, 1);
        assert_eq!(n.scope, txshadow_node::StateScope::Block);
        assert!(!format!("{n:?}").contains("pw"));
    }

    #[test]
    fn a_url_without_node_is_refused_without_echoing_it() {
        for v in [
            "https://user:pw@node.example/secretkey",
            "https://node.example/v2/secretkey?apikey=pw",
            "timeout=3,https://node.example/secretkey",
        ] {
            let e = parse_side_engine("candidate", v, None)
                .unwrap_err()
                .to_string();
            assert!(e.contains("node="), "{e}");
            assert!(!e.contains("secretkey") && !e.contains("pw"), "{e}");
        }
    }

    #[test]
    fn a_setting_given_twice_is_refused() {
        let e = parse_side_engine("candidate", "spec=istanbul,spec=berlin", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("spec is given twice"), "{e}");
        parse_side_engine("candidate", "spec=istanbul,balance.0x0000000000000000000000000000000000000001=1,balance.0x0000000000000000000000000000000000000002=1", None).unwrap();
    }

    #[test]
    fn node_settings_that_cannot_apply_are_refused() {
        let e = parse_side_engine("candidate", "spec=cancun,node=http://127.0.0.1:1", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--hardfork"), "{e}");
        let e = parse_side_engine("candidate", "spec=cancun,timeout=5", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("node=URL"), "{e}");
        let e = parse_side("candidate", "node=http://127.0.0.1:1", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--mode tx"), "{e}");
    }
}
