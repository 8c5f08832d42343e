//! Prestate tracer output into corpus state: the block pre-state (first-seen value of every
//! account and slot over the block's txs) and each tx's recorded post-state (diff mode).

use std::collections::{BTreeMap, BTreeSet};

use alloy_consensus::TxEnvelope;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rpc_types_trace::geth::pre_state::{AccountState as TraceAccount, DiffMode};
use txshadow_corpus::{AccountState, KECCAK_EMPTY, StateMap};

/// Codes met while converting, by hash.
pub type CodeMap = BTreeMap<B256, Bytes>;

fn word(v: &B256) -> U256 {
    U256::from_be_bytes(v.0)
}

fn code_hash(code: Option<&Bytes>, codes: &mut CodeMap) -> B256 {
    match code {
        Some(c) if !c.is_empty() => {
            let h = keccak256(c);
            codes.entry(h).or_insert_with(|| c.clone());
            h
        }
        _ => KECCAK_EMPTY,
    }
}

/// One traced account as it was before the tx. The tracer lists the accounts the tx touched
/// that the node's EVM sees as existing, so a listed account is recorded as existing even when
/// empty (anvil reports a touched, never-funded account as `{"balance":"0x0"}` and its EVM
/// treats it as existing, e.g. for the EIP-7702 refund); the accounts it omits stay unknown,
/// which a replay reads as absent.
fn traced_account(a: &TraceAccount, codes: &mut CodeMap) -> AccountState {
    AccountState {
        balance: a.balance.unwrap_or_default(),
        nonce: a.nonce.unwrap_or_default(),
        code_hash: code_hash(a.code.as_ref(), codes),
        storage: a.storage.iter().map(|(k, v)| (word(k), word(v))).collect(),
    }
}

/// The accounts a tx created (CREATE/CREATE2 on an empty address): in its diff's `post` but not
/// in its `pre`. They did not exist before it.
pub fn created_accounts(diff: &DiffMode) -> BTreeSet<Address> {
    diff.post
        .keys()
        .filter(|a| !diff.pre.contains_key(*a))
        .copied()
        .collect()
}

/// The block pre-state from the per-tx prestates in block order: the first-seen value of each
/// account and of each slot. Slots first seen in a later tx are added to an account first seen
/// earlier (no earlier tx read or wrote them, or its prestate would list them). An account
/// first seen in the tx that created it (`created[i]`) did not exist: it is recorded as absent,
/// and stays so (whatever a later tx sees was made inside the block).
pub fn merge_pre_states(
    per_tx: &[BTreeMap<Address, TraceAccount>],
    created: &[BTreeSet<Address>],
    codes: &mut CodeMap,
) -> StateMap {
    let mut out = StateMap::new();
    for (i, tx) in per_tx.iter().enumerate() {
        let made = created.get(i);
        for (addr, acc) in tx {
            match out.get_mut(addr) {
                None if made.is_some_and(|m| m.contains(addr)) => {
                    out.insert(*addr, None);
                }
                None => {
                    out.insert(*addr, Some(traced_account(acc, codes)));
                }
                Some(Some(known)) => {
                    for (k, v) in &acc.storage {
                        known.storage.entry(word(k)).or_insert_with(|| word(v));
                    }
                }
                Some(None) => {}
            }
        }
        for addr in made.into_iter().flatten() {
            out.entry(*addr).or_insert(None);
        }
    }
    out
}

/// The state one tx left, from its diff-mode trace: every account it changed, with the post
/// value of each changed field merged over the pre value, each changed slot's post value (the
/// tracer omits zero values, so a slot listed in `pre` but not in `post` was cleared), and
/// `None` for an account the tx destroyed.
///
/// The tracer also omits an empty post code, so "code unchanged" and "code cleared" look the
/// same; `cleared_delegations` names the accounts whose EIP-7702 delegation the tx reset to the
/// zero address, whose code is therefore empty.
pub fn tx_post_state(diff: &DiffMode, cleared_delegations: &[Address]) -> StateMap {
    let mut scratch = CodeMap::new();
    let mut out = StateMap::new();
    let addrs: BTreeSet<&Address> = diff.pre.keys().chain(diff.post.keys()).collect();
    for addr in addrs {
        let pre = diff.pre.get(addr);
        let Some(post) = diff.post.get(addr) else {
            // in pre only: the tx destroyed it
            out.insert(*addr, None);
            continue;
        };
        let balance = post
            .balance
            .or(pre.and_then(|p| p.balance))
            .unwrap_or_default();
        let nonce = post.nonce.or(pre.and_then(|p| p.nonce)).unwrap_or_default();
        let code = match (&post.code, pre.and_then(|p| p.code.as_ref())) {
            (Some(c), _) => Some(c),
            (None, _) if cleared_delegations.contains(addr) => None,
            (None, pre_code) => pre_code,
        };
        let code_hash = code_hash(code, &mut scratch);
        let mut storage: BTreeMap<U256, U256> = BTreeMap::new();
        if let Some(p) = pre {
            for k in p.storage.keys() {
                storage.insert(word(k), U256::ZERO);
            }
        }
        for (k, v) in &post.storage {
            storage.insert(word(k), word(v));
        }
        out.insert(
            *addr,
            Some(AccountState {
                balance,
                nonce,
                code_hash,
                storage,
            }),
        );
    }
    out
}

/// The accounts whose EIP-7702 delegation `tx` resets to the zero address (the ones to pass to
/// [`tx_post_state`], whose trace cannot tell a cleared code from an unchanged one).
pub fn cleared_delegations(tx: &TxEnvelope) -> Vec<Address> {
    let TxEnvelope::Eip7702(signed) = tx else {
        return vec![];
    };
    signed
        .tx()
        .authorization_list
        .iter()
        .filter(|a| a.address == Address::ZERO)
        .filter_map(|a| a.recover_authority().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    fn acc(json: serde_json::Value) -> TraceAccount {
        serde_json::from_value(json).unwrap()
    }

    const A: Address = address!("0x00000000000000000000000000000000000000aa");
    const B: Address = address!("0x00000000000000000000000000000000000000bb");

    #[test]
    fn first_seen_wins() {
        let tx0 = BTreeMap::from([
            (
                A,
                acc(
                    serde_json::json!({"balance": "0x10", "nonce": 1, "code": "0x6000",
                "storage": {"0x0000000000000000000000000000000000000000000000000000000000000001":
                    "0x0000000000000000000000000000000000000000000000000000000000000005"}}),
                ),
            ),
            (B, acc(serde_json::json!({"balance": "0x0"}))),
        ]);
        let tx1 = BTreeMap::from([
            (
                A,
                acc(
                    serde_json::json!({"balance": "0x99", "nonce": 2, "code": "0x6000",
                "storage": {
                  "0x0000000000000000000000000000000000000000000000000000000000000001":
                    "0x0000000000000000000000000000000000000000000000000000000000000009",
                  "0x0000000000000000000000000000000000000000000000000000000000000002":
                    "0x0000000000000000000000000000000000000000000000000000000000000007"}}),
                ),
            ),
            (B, acc(serde_json::json!({"balance": "0x5", "nonce": 1}))),
        ]);
        let mut codes = CodeMap::new();
        let c = address!("0x00000000000000000000000000000000000000cc");
        let tx1_created = BTreeSet::from([c]);
        let s = merge_pre_states(&[tx0, tx1], &[BTreeSet::new(), tx1_created], &mut codes);
        let a = s[&A].as_ref().unwrap();
        assert_eq!(a.balance, U256::from(0x10));
        assert_eq!(a.nonce, 1);
        assert_eq!(a.storage[&U256::from(1)], U256::from(5));
        assert_eq!(a.storage[&U256::from(2)], U256::from(7));
        assert_eq!(codes.len(), 1);
        assert_eq!(
            s[&B],
            Some(AccountState {
                code_hash: KECCAK_EMPTY,
                ..Default::default()
            }),
            "a listed empty account exists for the node"
        );
        assert_eq!(s[&c], None, "created in the block: absent before it");
    }

    #[test]
    fn diff_post_state() {
        let diff: DiffMode = serde_json::from_value(serde_json::json!({
            "pre": {
                "0x00000000000000000000000000000000000000aa": {"balance": "0x10", "nonce": 1,
                    "code": "0x6000",
                    "storage": {"0x0000000000000000000000000000000000000000000000000000000000000001":
                        "0x0000000000000000000000000000000000000000000000000000000000000005"}},
                "0x00000000000000000000000000000000000000bb": {"balance": "0x3"}
            },
            "post": {
                "0x00000000000000000000000000000000000000aa": {"balance": "0x11",
                    "storage": {"0x0000000000000000000000000000000000000000000000000000000000000002":
                        "0x0000000000000000000000000000000000000000000000000000000000000007"}},
                "0x00000000000000000000000000000000000000cc": {"balance": "0x1", "nonce": 1, "code": "0x60016000"}
            }
        }))
        .unwrap();
        assert_eq!(
            created_accounts(&diff),
            BTreeSet::from([address!("0x00000000000000000000000000000000000000cc")])
        );
        let s = tx_post_state(&diff, &[]);
        let a = s[&A].as_ref().unwrap();
        assert_eq!(a.balance, U256::from(0x11));
        assert_eq!(a.nonce, 1, "unchanged nonce comes from pre");
        assert_eq!(a.code_hash, keccak256([0x60, 0x00]));
        assert_eq!(a.storage[&U256::from(1)], U256::ZERO, "cleared slot");
        assert_eq!(a.storage[&U256::from(2)], U256::from(7));
        assert_eq!(s[&B], None, "destroyed");
        let c = s[&address!("0x00000000000000000000000000000000000000cc")]
            .as_ref()
            .unwrap();
        assert_eq!(c.nonce, 1);
        assert_eq!(c.code_hash, keccak256([0x60, 0x01, 0x60, 0x00]));
        let s = tx_post_state(&diff, &[A]);
        assert_eq!(s[&A].as_ref().unwrap().code_hash, KECCAK_EMPTY);
    }
}
