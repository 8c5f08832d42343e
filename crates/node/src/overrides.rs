//! What the node is given: the tx as a call request, its pre-state as state overrides, the block
//! env as block overrides.

use std::collections::BTreeMap;

use alloy_consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rpc_types_eth::TransactionRequest;
use revm::state::{Account, EvmState, EvmStorageSlot, TransactionId};
use serde_json::{Map, Value, json};
use txshadow_corpus::{BlockRecord, ChainConfig, KECCAK_EMPTY, StateMap};
use txshadow_replay::{DbError, Overrides, SideConfig, TxOutcome, TxRunner};

use crate::Capabilities;

/// The full pre-state of tx `index`: every account and slot of the block pre-state and every
/// account and slot the earlier txs of `reference` changed, valued as the tx sees them (the block
/// pre-state, the pre-block system calls and the earlier txs' changes), with `overrides` (a
/// configuration's code, storage and balance settings) applied. Absent accounts are `None`.
pub fn tx_pre_state(
    runner: &TxRunner<'_>,
    block: &BlockRecord,
    reference: &[TxOutcome],
    index: usize,
    overrides: &Overrides,
) -> Result<(StateMap, BTreeMap<B256, Bytes>), DbError> {
    let mut keys: BTreeMap<Address, Vec<U256>> = BTreeMap::new();
    for (a, s) in &block.pre_state {
        let e = keys.entry(*a).or_default();
        if let Some(s) = s {
            e.extend(s.storage.keys().copied());
        }
    }
    for t in &reference[..index] {
        if let Some(e) = t.exec() {
            for (a, s) in &e.state {
                let k = keys.entry(*a).or_default();
                if let Some(s) = s {
                    k.extend(s.storage.keys().copied());
                }
            }
        }
    }
    for (a, s) in &overrides.storage {
        keys.entry(*a).or_default().extend(s.keys().copied());
    }
    for a in overrides.code.keys().chain(overrides.balance.keys()) {
        keys.entry(*a).or_default();
    }
    let mut loaded = EvmState::default();
    for (a, slots) in &keys {
        let mut acc = Account::default();
        for k in slots {
            acc.storage.insert(
                *k,
                EvmStorageSlot::new(U256::ZERO, TransactionId::default()),
            );
        }
        loaded.insert(*a, acc);
    }
    let side = SideConfig {
        name: "node".into(),
        spec: None,
        overrides: overrides.clone(),
    };
    let (mut pre, codes) = runner.pre_values(&side, index, &loaded)?;
    for a in keys.keys() {
        pre.entry(*a).or_insert(None);
    }
    Ok((pre, codes))
}

/// Which accounts a tx's state overrides hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateScope {
    /// The whole block pre-state plus the earlier txs' effects while that is at most
    /// [`AUTO_LIMIT`] bytes of JSON, else the accounts and slots the tx reads.
    #[default]
    Auto,
    /// Always the whole block pre-state plus the earlier txs' effects.
    Block,
    /// The accounts and slots the tx reads in the reference revm run (plus the configuration's
    /// overrides).
    Touched,
}

/// Largest state override (bytes of JSON, estimated) [`StateScope::Auto`] sends in full.
pub const AUTO_LIMIT: usize = 1 << 20;

/// Estimated JSON size of a state override.
pub fn override_size(pre: &StateMap, codes: &BTreeMap<B256, Bytes>) -> usize {
    pre.values()
        .map(|s| match s {
            None => 120,
            Some(s) => {
                200 + s.storage.len() * 140 + codes.get(&s.code_hash).map_or(0, |c| c.len() * 2)
            }
        })
        .sum::<usize>()
        + pre.len() * 48
}

/// The pre-state of tx `index` over the accounts and slots it reads when `ref_side` runs it
/// (the accounts it finds absent included, as `None`), with `overrides` applied.
pub fn tx_pre_state_touched(
    runner: &TxRunner<'_>,
    ref_side: &SideConfig,
    index: usize,
    overrides: &Overrides,
) -> Result<(StateMap, BTreeMap<B256, Bytes>), DbError> {
    let (_, loaded) = runner.run_with_state(ref_side, index, revm::inspector::NoOpInspector);
    let mut loaded = loaded.unwrap_or_default();
    for (a, s) in &overrides.storage {
        let acc = loaded.entry(*a).or_default();
        for k in s.keys() {
            acc.storage
                .entry(*k)
                .or_insert_with(|| EvmStorageSlot::new(U256::ZERO, TransactionId::default()));
        }
    }
    for a in overrides.code.keys().chain(overrides.balance.keys()) {
        loaded.entry(*a).or_default();
    }
    let side = SideConfig {
        name: "node".into(),
        spec: None,
        overrides: overrides.clone(),
    };
    let (mut pre, codes) = runner.pre_values(&side, index, &loaded)?;
    for a in loaded.keys() {
        pre.entry(*a).or_insert(None);
    }
    Ok((pre, codes))
}

/// `stateOverrides`: every account replaced in full (`state`, not `stateDiff`); an absent
/// account becomes an empty one (no balance, nonce 0, no code, no storage).
pub fn state_overrides(pre: &StateMap, codes: &BTreeMap<B256, Bytes>) -> Value {
    let mut m = Map::new();
    for (a, s) in pre {
        let v = match s {
            None => json!({"balance": "0x0", "nonce": "0x0", "code": "0x", "state": {}}),
            Some(s) => {
                let code = if s.code_hash == KECCAK_EMPTY {
                    Bytes::new()
                } else {
                    codes.get(&s.code_hash).cloned().unwrap_or_default()
                };
                let state: Map<String, Value> = s
                    .storage
                    .iter()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(k, v)| {
                        (
                            B256::from(*k).to_string(),
                            Value::String(B256::from(*v).to_string()),
                        )
                    })
                    .collect();
                json!({
                    "balance": format!("{:#x}", s.balance),
                    "nonce": format!("{:#x}", s.nonce),
                    "code": code,
                    "state": state,
                })
            }
        };
        m.insert(a.to_string(), v);
    }
    Value::Object(m)
}

/// `blockOverrides` for `block`: number, time, gas limit, fee recipient, base fee, prevrandao
/// (difficulty before the merge), blob base fee, and the ancestors' hashes.
pub fn block_overrides(block: &BlockRecord, chain: &ChainConfig, caps: &Capabilities) -> Value {
    let h = &block.header;
    let mut m = Map::new();
    m.insert("number".into(), json!(format!("{:#x}", h.number)));
    m.insert("time".into(), json!(format!("{:#x}", h.timestamp)));
    m.insert("gasLimit".into(), json!(format!("{:#x}", h.gas_limit)));
    m.insert("feeRecipient".into(), json!(h.beneficiary));
    if let Some(b) = h.base_fee_per_gas {
        m.insert("baseFeePerGas".into(), json!(format!("{b:#x}")));
    }
    if h.difficulty.is_zero() {
        m.insert("prevRandao".into(), json!(h.mix_hash));
    } else {
        m.insert("difficulty".into(), json!(format!("{:#x}", h.difficulty)));
    }
    if let Some(fee) = block_blob_fee(block, chain)
        && caps.takes("blobBaseFee")
    {
        m.insert("blobBaseFee".into(), json!(format!("{fee:#x}")));
    }
    if caps.block_hash_override && !block.block_hashes.is_empty() {
        let hashes: Map<String, Value> = block
            .block_hashes
            .iter()
            .map(|(n, h)| (n.to_string(), json!(h)))
            .collect();
        m.insert("blockHash".into(), Value::Object(hashes));
    }
    Value::Object(m)
}

/// The blob base fee of `block` (Cancun on).
pub fn block_blob_fee(block: &BlockRecord, chain: &ChainConfig) -> Option<u128> {
    let chain = block.chain.as_ref().unwrap_or(chain);
    chain
        .blob_params_at(block.header.timestamp)
        .and_then(|p| block.header.blob_fee(p))
}

/// The tx as a call request: sender, recipient, gas, fees, value, input, nonce, chain id, access
/// list, blob hashes and blob fee cap, authorization list.
pub fn call_request(env: &TxEnvelope, from: Address) -> Value {
    let mut req = TransactionRequest::from_transaction_with_sender(env.clone(), from);
    // some nodes take a legacy tx's chain id only with the type; keep what the tx signed
    if env.chain_id().is_none() {
        req.chain_id = None;
    }
    serde_json::to_value(req).expect("a tx request serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use txshadow_corpus::AccountState;

    #[test]
    fn accounts_are_replaced_in_full_and_absent_ones_emptied() {
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let code = Bytes::from_static(&[0x60, 0x00]);
        let hash = alloy_primitives::keccak256(&code);
        let mut pre = StateMap::new();
        pre.insert(
            a,
            Some(AccountState {
                balance: U256::from(5),
                nonce: 2,
                code_hash: hash,
                storage: [(U256::from(1), U256::from(7)), (U256::from(2), U256::ZERO)].into(),
            }),
        );
        pre.insert(b, None);
        let v = state_overrides(&pre, &[(hash, code)].into());
        let a = &v[a.to_string()];
        assert_eq!(a["balance"], "0x5");
        assert_eq!(a["nonce"], "0x2");
        assert_eq!(a["code"], "0x6000");
        // `state` (full replacement), zero slots left out
        assert_eq!(a["state"].as_object().unwrap().len(), 1);
        assert!(a.get("stateDiff").is_none());
        let b = &v[b.to_string()];
        assert_eq!(b["balance"], "0x0");
        assert_eq!(b["code"], "0x");
        assert_eq!(b["state"], serde_json::json!({}));
    }
}
