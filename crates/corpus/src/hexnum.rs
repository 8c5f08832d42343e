//! Reading the 256-bit numbers of a state map (balances, slots, values) from JSON (and from the
//! binary encoding's big-endian bytes).
//!
//! A block file's pre-state is mostly storage slots and their values, each a `0x` hex string.
//! ruint's generic string parser (decimal or any radix, digit by digit) was half of all the time
//! spent loading a corpus; a `0x` string of at most 64 hex digits is decoded here in one pass
//! instead. Every other form the generic parser accepts (decimal strings, JSON numbers) still
//! goes to it, so what a corpus may contain is unchanged.

use std::{collections::BTreeMap, fmt};

use alloy_primitives::U256;
use serde::{
    Deserializer,
    de::{Error, MapAccess, Unexpected, Visitor},
};

/// `0x` followed by 1 to 64 hex digits, decoded in one pass; `None` for any other form.
pub(crate) fn parse_hex_u256(s: &str) -> Option<U256> {
    let digits = s.strip_prefix("0x")?.as_bytes();
    if digits.is_empty() || digits.len() > 64 {
        return None;
    }
    let mut padded = [b'0'; 64];
    padded[64 - digits.len()..].copy_from_slice(digits);
    let mut out = [0u8; 32];
    alloy_primitives::hex::decode_to_slice(padded, &mut out).ok()?;
    Some(U256::from_be_bytes(out))
}

struct U256Visitor;

impl Visitor<'_> for U256Visitor {
    type Value = U256;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 256-bit number (0x hex string, decimal string or integer)")
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<U256, E> {
        Ok(U256::from(v))
    }

    fn visit_u128<E: Error>(self, v: u128) -> Result<U256, E> {
        Ok(U256::from(v))
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<U256, E> {
        // the binary encoding: big-endian bytes, as ruint writes them
        U256::try_from_be_slice(v).ok_or_else(|| E::invalid_length(v.len(), &self))
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<U256, E> {
        parse_hex_u256(s)
            .or_else(|| s.parse().ok())
            .ok_or_else(|| E::invalid_value(Unexpected::Str(s), &self))
    }
}

/// A `U256` field.
pub(crate) fn u256<'de, D: Deserializer<'de>>(d: D) -> Result<U256, D::Error> {
    d.deserialize_any(U256Visitor)
}

struct SlotKey(U256);

impl<'de> serde::Deserialize<'de> for SlotKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(U256Visitor).map(SlotKey)
    }
}

struct SlotValue(U256);

impl<'de> serde::Deserialize<'de> for SlotValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(U256Visitor).map(SlotValue)
    }
}

struct StorageVisitor;

impl<'de> Visitor<'de> for StorageVisitor {
    type Value = BTreeMap<U256, U256>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of storage slots to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((SlotKey(k), SlotValue(v))) = map.next_entry()? {
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// A storage map (slot → value).
pub(crate) fn storage<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<U256, U256>, D::Error> {
    d.deserialize_map(StorageVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "u256")]
        n: U256,
        #[serde(deserialize_with = "storage")]
        s: BTreeMap<U256, U256>,
    }

    fn parse(json: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn every_form_the_generic_parser_takes_gives_the_same_number() {
        for text in [
            "\"0x0\"",
            "\"0x1\"",
            "\"0xdeadBEEF\"",
            "\"0x00000000000000000000000000000000000000000000000000000000000000ff\"",
            "\"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"",
            "\"12345678901234567890123456789\"",
            "\"0\"",
            "42",
        ] {
            let want: U256 = serde_json::from_str(text).unwrap();
            let got = parse(&format!("{{\"n\":{text},\"s\":{{}}}}")).unwrap().n;
            assert_eq!(got, want, "{text}");
        }
        let t = parse(r#"{"n":"0x2","s":{"0x01":"0xff","0x0000000000000000000000000000000000000000000000000000000000000002":"7"}}"#)
            .unwrap();
        assert_eq!(t.s.get(&U256::from(1)), Some(&U256::from(255)));
        assert_eq!(t.s.get(&U256::from(2)), Some(&U256::from(7)));
    }

    #[test]
    fn malformed_numbers_fail_as_with_the_generic_parser() {
        for bad in [
            "\"0x\"",
            "\"0xg1\"",
            "\"0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"",
            "\"-1\"",
            "\"\"",
            "\"0X1\"",
        ] {
            let generic = serde_json::from_str::<U256>(bad).ok();
            let ours = parse(&format!("{{\"n\":{bad},\"s\":{{}}}}"));
            assert_eq!(ours.as_ref().ok().map(|t| t.n), generic, "{bad}");
        }
        let e = parse(r#"{"n":"0xg1","s":{}}"#).err().expect("not a number");
        assert!(e.to_string().contains("256-bit number"), "{e}");
        assert!(parse(r#"{"n":"0x1","s":{"0x1":"0xzz"}}"#).is_err());
    }
}
