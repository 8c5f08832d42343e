//! JSON helpers of the fixtures: quantities in every spelling geth accepts, hex bytes, and the
//! genesis config read case-insensitively.

use alloy_primitives::{Bytes, U256, hex};
use serde_json::{Map, Value};

/// `v[key]`, or an error naming the missing key.
pub(super) fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("missing `{key}`"))
}

/// A quantity: a JSON number, a decimal string or a `0x`-hex string.
pub(super) fn quantity(v: &Value) -> Result<U256, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(U256::from)
            .ok_or_else(|| format!("number {n} is not an unsigned 64-bit integer")),
        Value::String(s) => {
            let s = s.trim();
            let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some("") => Ok(U256::ZERO),
                Some(h) => U256::from_str_radix(h, 16),
                None => U256::from_str_radix(s, 10),
            };
            r.map_err(|e| format!("bad quantity {s:?}: {e}"))
        }
        other => Err(format!("expected a quantity, found {other}")),
    }
}

/// A [`quantity`] that fits in 64 bits.
pub(super) fn quantity_u64(v: &Value) -> Result<u64, String> {
    let q = quantity(v)?;
    u64::try_from(q).map_err(|_| format!("quantity {q} does not fit 64 bits"))
}

/// `v[key]` as a 64-bit quantity, `None` when absent or null.
pub(super) fn opt_u64(v: &Value, key: &str) -> Result<Option<u64>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => quantity_u64(x)
            .map(Some)
            .map_err(|e| format!("`{key}`: {e}")),
    }
}

/// A `0x`-hex string as bytes.
pub(super) fn bytes(v: &Value) -> Result<Bytes, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("expected a hex string, found {v}"))?;
    hex::decode(s.trim())
        .map(Bytes::from)
        .map_err(|e| format!("bad hex {s:?}: {e}"))
}

/// Parses `s`, naming `what` on error.
pub(super) fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| format!("bad {what} {s:?}: {e}"))
}

/// Whether `cfg[key]` is `true`.
pub(super) fn is_true(cfg: Option<&Value>, key: &str) -> bool {
    cfg.and_then(|c| c.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The genesis config with keys lower-cased (Go's JSON decoding is case-insensitive).
pub(super) struct GethConfig(pub(super) Map<String, Value>);

impl GethConfig {
    pub(super) fn new(v: &Value) -> Result<Self, String> {
        let obj = v
            .as_object()
            .ok_or("genesis.config is not an object".to_string())?;
        Ok(Self(
            obj.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        ))
    }

    pub(super) fn u64(&self, key: &str) -> Result<Option<u64>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => quantity_u64(v)
                .map(Some)
                .map_err(|e| format!("genesis.config.{key}: {e}")),
        }
    }

    /// Whether `terminalTotalDifficulty` is present and zero (geth's harness then sets
    /// `Random`, which makes the block post-merge).
    pub(super) fn ttd_is_zero(&self) -> bool {
        match self.0.get("terminaltotaldifficulty") {
            Some(Value::Number(n)) => n.as_u64() == Some(0) || n.as_f64() == Some(0.0),
            Some(v @ Value::String(_)) => quantity(v).is_ok_and(|q| q.is_zero()),
            _ => false,
        }
    }
}
