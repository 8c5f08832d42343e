//! Configurations from the command line and the suite file.
//!
//! A configuration is written inline as comma-separated `key=value` items, or names an entry of
//! the suite file (`--config txshadow.toml`):
//!
//! - `spec=istanbul` force a spec (default: the chain's fork schedule);
//! - `code.0xADDR=FILE` replace runtime code: a hex file, or a Foundry/Hardhat artifact JSON
//!   (its deployed bytecode);
//! - `storage.0xADDR.0xSLOT=0xVALUE` set a storage slot;
//! - `balance.0xADDR=WEI` set a balance.
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
use txshadow_replay::{SideConfig, decode_code, parse_spec};

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

fn build(name: &str, e: &ConfigEntry, base: &Path) -> Result<SideConfig> {
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
    Ok(side)
}

/// Parses `--baseline`/`--candidate`: a suite name, or inline `key=value` items.
pub fn parse_side(name: &str, value: &str, suite: Option<&(Suite, PathBuf)>) -> Result<SideConfig> {
    if let Some((s, base)) = suite
        && let Some(e) = s.config.get(value)
    {
        let mut side = build(value, e, base)?;
        side.name = format!("{name}:{value}");
        return Ok(side);
    }
    if !value.contains('=') {
        bail!(
            "{name} {value:?}: neither a configuration of the suite file nor key=value items (e.g. spec=istanbul)"
        );
    }
    let mut e = ConfigEntry::default();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
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
            (Some("node"), None, None) => {
                bail!("{name}: the node engine is not available in this build")
            }
            _ => bail!(
                "{name}: unknown setting {k:?} (spec, code.ADDR, storage.ADDR.SLOT, balance.ADDR)"
            ),
        }
    }
    build(name, &e, Path::new("."))
}
