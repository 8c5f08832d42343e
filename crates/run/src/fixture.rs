//! Export one tx as an ethereum/tests state-test fixture (`env`, `pre`, `transaction`, `post`),
//! built from the baseline side, that other EVMs (e.g. `revme statetest`) run.
//!
//! State tests carry no signature: `transaction.sender` names the sender and `secretKey` is a
//! placeholder runners require. They have no block hashes either: a tx that reads BLOCKHASH
//! cannot be reproduced by a state test (the export says so).

use std::collections::BTreeMap;

use alloy_consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use serde::Serialize;
use serde_json::{Value, json};
use txshadow_corpus::{AccountState, StateMap};
use txshadow_replay::{SpecId, TxExec, state_root_after};

/// The ethereum/tests name of a spec.
pub fn fork_name(spec: SpecId) -> &'static str {
    use SpecId::*;
    match spec {
        FRONTIER => "Frontier",
        HOMESTEAD => "Homestead",
        TANGERINE => "EIP150",
        SPURIOUS_DRAGON => "EIP158",
        BYZANTIUM => "Byzantium",
        PETERSBURG => "ConstantinopleFix",
        ISTANBUL => "Istanbul",
        BERLIN => "Berlin",
        LONDON => "London",
        MERGE => "Merge",
        SHANGHAI => "Shanghai",
        CANCUN => "Cancun",
        PRAGUE => "Prague",
        _ => "Osaka",
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PreAccount {
    balance: U256,
    code: Bytes,
    nonce: String,
    storage: BTreeMap<U256, U256>,
}

fn hex_u(v: impl std::fmt::LowerHex) -> String {
    format!("{v:#x}")
}

/// What to export.
#[derive(Debug)]
pub struct FixtureInput<'a> {
    /// Fixture name.
    pub name: String,
    /// The tx.
    pub tx: &'a TxEnvelope,
    /// Its sender.
    pub sender: Address,
    /// The block header.
    pub header: &'a alloy_consensus::Header,
    /// Chain id.
    pub chain_id: u64,
    /// The spec the baseline ran under.
    pub spec: SpecId,
    /// Pre-state of every account the tx loaded.
    pub pre: &'a StateMap,
    /// Codes by hash.
    pub codes: &'a BTreeMap<B256, Bytes>,
    /// The baseline's execution.
    pub exec: &'a TxExec,
    /// Whether the block env has prevrandao (merged).
    pub prevrandao: Option<B256>,
    /// Source description for `_info`.
    pub source: String,
}

/// Builds the fixture JSON.
pub fn build(f: &FixtureInput<'_>) -> Value {
    let pre = pre_accounts(f);
    let root = post_state_root(f);
    let logs_hash = keccak256(alloy_rlp::encode(&f.exec.logs));
    let env = env_json(f);
    let t = tx_json(f);
    json!({
        f.name.clone(): {
            "_info": { "comment": f.source, "generatedBy": format!("txshadow {}", env!("CARGO_PKG_VERSION")) },
            "env": env,
            "pre": pre,
            "transaction": t,
            "post": {
                fork_name(f.spec): [{
                    "hash": root,
                    "logs": logs_hash,
                    "indexes": { "data": 0, "gas": 0, "value": 0 },
                }]
            },
        }
    })
}

/// The `pre` section: every account the tx loaded, with its code and non-zero slots.
fn pre_accounts(f: &FixtureInput<'_>) -> BTreeMap<Address, PreAccount> {
    let mut pre = BTreeMap::new();
    for (a, s) in f.pre {
        let Some(s) = s else { continue };
        let code = f.codes.get(&s.code_hash).cloned().unwrap_or_default();
        pre.insert(
            *a,
            PreAccount {
                balance: s.balance,
                code,
                nonce: hex_u(s.nonce),
                storage: s
                    .storage
                    .iter()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(k, v)| (*k, *v))
                    .collect(),
            },
        );
    }
    pre
}

/// The state root after the tx: the baseline's changes over the pre-state (zero slots left out).
fn post_state_root(f: &FixtureInput<'_>) -> B256 {
    let full_pre: StateMap = f
        .pre
        .iter()
        .map(|(a, s)| {
            (
                *a,
                s.as_ref().map(|s| AccountState {
                    storage: s
                        .storage
                        .iter()
                        .filter(|(_, v)| !v.is_zero())
                        .map(|(k, v)| (*k, *v))
                        .collect(),
                    ..s.clone()
                }),
            )
        })
        .collect();
    state_root_after(&full_pre, &f.exec.state, &f.exec.storage_reset)
}

/// The `env` section, from the block header.
fn env_json(f: &FixtureInput<'_>) -> Value {
    let h = f.header;
    let mut env = json!({
        "currentCoinbase": h.beneficiary,
        "currentDifficulty": hex_u(h.difficulty),
        "currentGasLimit": hex_u(h.gas_limit),
        "currentNumber": hex_u(h.number),
        "currentTimestamp": hex_u(h.timestamp),
        "currentChainID": hex_u(f.chain_id),
        "previousHash": h.parent_hash,
    });
    if let Some(b) = h.base_fee_per_gas {
        env["currentBaseFee"] = json!(hex_u(b));
    }
    if let Some(r) = f.prevrandao {
        env["currentRandom"] = json!(r);
        env["currentDifficulty"] = json!("0x0");
    }
    if let Some(x) = h.excess_blob_gas {
        env["currentExcessBlobGas"] = json!(hex_u(x));
    }
    if let Some(r) = h.parent_beacon_block_root {
        env["currentBeaconRoot"] = json!(r);
    }
    env
}

/// The `transaction` section: fields by tx type, the sender instead of a signature.
fn tx_json(f: &FixtureInput<'_>) -> Value {
    let tx = f.tx;
    let mut t = json!({
        "type": tx.tx_type() as u8,
        "data": [tx.input()],
        "gasLimit": [hex_u(tx.gas_limit())],
        "nonce": hex_u(tx.nonce()),
        "sender": f.sender,
        // placeholder: state tests are unsigned; runners use `sender`
        "secretKey": "0x45a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8",
        "to": tx.to().map(|a| a.to_string()).unwrap_or_default(),
        "value": [hex_u(tx.value())],
    });
    if let Some(id) = tx.chain_id() {
        t["chainId"] = json!(hex_u(id));
    }
    match tx {
        TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) => {
            t["gasPrice"] = json!(hex_u(tx.max_fee_per_gas()));
        }
        _ => {
            t["maxFeePerGas"] = json!(hex_u(tx.max_fee_per_gas()));
            t["maxPriorityFeePerGas"] =
                json!(hex_u(tx.max_priority_fee_per_gas().unwrap_or_default()));
        }
    }
    if let Some(al) = tx.access_list() {
        t["accessLists"] = json!([al]);
    }
    if let Some(h) = tx.blob_versioned_hashes() {
        t["blobVersionedHashes"] = json!(h);
        t["maxFeePerBlobGas"] = json!(hex_u(tx.max_fee_per_blob_gas().unwrap_or_default()));
    }
    if let Some(list) = authorization_list(tx) {
        t["authorizationList"] = json!(list);
    }
    t
}

/// The tx's EIP-7702 authorization list, each entry with its recovered signer.
fn authorization_list(tx: &TxEnvelope) -> Option<Vec<Value>> {
    let auth = tx.authorization_list()?;
    let list = auth
        .iter()
        .map(|a| {
            json!({
                "chainId": hex_u(a.inner().chain_id),
                "address": a.inner().address,
                "nonce": hex_u(a.inner().nonce),
                "v": hex_u(a.y_parity()),
                "r": hex_u(a.r()),
                "s": hex_u(a.s()),
                "signer": a.recover_authority().ok(),
            })
        })
        .collect();
    Some(list)
}

/// Exports a triaged tx as an ethereum/tests state test at `path`, built from the baseline's
/// run. Returns warnings (a tx that reads BLOCKHASH: state tests carry no block hashes).
pub fn export(
    sb: &crate::SourceBlock,
    t: &crate::triage::Triage,
    baseline: &txshadow_replay::SideConfig,
    path: &std::path::Path,
) -> eyre::Result<Vec<String>> {
    use eyre::{WrapErr, eyre};
    let (block, chain) = (&sb.block, &sb.chain);
    let runner = txshadow_replay::TxRunner::new(block, chain, &sb.codes, baseline);
    let mut warnings = vec![];
    let mut touches = txshadow_replay::Touches::default();
    let (o, state) = runner.run_with_state(baseline, t.index, &mut touches);
    let exec = o
        .result
        .as_ref()
        .map_err(|e| eyre!("the baseline cannot execute tx {}: {e}", t.tx))?;
    let state = state.ok_or_else(|| eyre!("no state for tx {}", t.tx))?;
    if touches.opcodes[0x40] {
        warnings.push(format!(
            "tx {} reads BLOCKHASH; state tests carry no block hashes, so the fixture will not reproduce it",
            t.tx
        ));
    }
    let (pre, codes) = runner
        .pre_values(baseline, t.index, &state)
        .map_err(|e| eyre!("export of tx {}: reading its pre-state: {e}", t.tx))?;
    let tx = txshadow_corpus::decode_tx(&block.transactions[t.index].raw).map_err(|e| eyre!(e))?;
    let env = runner.env(baseline);
    let fx = build(&FixtureInput {
        name: format!("txshadow_{}_{}", t.block, t.index),
        tx: &tx,
        sender: block.transactions[t.index].from,
        header: &block.header,
        chain_id: chain.chain_id,
        spec: env.cfg_env.spec,
        pre: &pre,
        codes: &codes,
        exec,
        prevrandao: env.block_env.prevrandao,
        source: format!("tx {} of block {} ({})", t.tx, t.block, block.hash),
    });
    txshadow_corpus::write_atomic(path, serde_json::to_string_pretty(&fx)?.as_bytes())
        .wrap_err_with(|| format!("write {}", path.display()))?;
    Ok(warnings)
}
