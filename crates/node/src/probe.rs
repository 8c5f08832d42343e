//! What a node can do, found once per node before the run.

use alloy_primitives::{Address, B256, U256};
use serde::Serialize;
use serde_json::{Value, json};
use txshadow_rpc::{Rpc, RpcError};

use crate::NodeError;

/// The block overrides the engine sends and the opcode each one answers (`None`: it changes the
/// fee accounting of every tx, so a node that ignores it makes every tx not comparable).
pub const OVERRIDE_FIELDS: &[(&str, Option<u8>)] = &[
    ("number", None),
    ("time", None),
    ("gasLimit", None),
    ("feeRecipient", None),
    ("baseFeePerGas", None),
    ("prevRandao", Some(0x44)),
    ("blockHash", Some(0x40)),
    ("blobBaseFee", Some(0x4a)),
];

/// What the probe found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Capabilities {
    /// `web3_clientVersion`.
    pub client: String,
    /// The node's chain id.
    pub chain_id: u64,
    /// The node's hardfork, where it says (`anvil_nodeInfo`).
    pub hardfork: Option<String>,
    /// The path used for txs.
    pub path: String,
    /// Whether the node serves `eth_simulateV1` (recorded; the engine needs the post-state,
    /// which only `debug_traceCall` gives).
    pub simulate_v1: bool,
    /// Whether `blockHash` overrides reach BLOCKHASH.
    pub block_hash_override: bool,
    /// Block overrides the node accepted but did not apply (or rejected).
    pub ignored_overrides: Vec<String>,
    /// Whether the path gives the post-state (`debug_traceCall`'s prestate tracer); without
    /// it, state changes are not compared.
    pub state_compared: bool,
    /// BLOBBASEFEE on the node without an override (what a blob tx pays there when the
    /// `blobBaseFee` override is not taken).
    pub native_blob_base_fee: Option<u128>,
}

impl Capabilities {
    /// Whether the node takes the block override `field`.
    pub fn takes(&self, field: &str) -> bool {
        !self.ignored_overrides.iter().any(|o| o == field)
    }

    /// The overrides that matter for a block whose blob base fee is `blob_fee`: the ignored
    /// ones, less `blobBaseFee` when the node's own blob base fee is the block's.
    pub fn ignored_for(&self, blob_fee: Option<u128>) -> Vec<String> {
        self.ignored_overrides
            .iter()
            .filter(|o| {
                *o != "blobBaseFee" || blob_fee.is_some() && blob_fee != self.native_blob_base_fee
            })
            .cloned()
            .collect()
    }

    /// Why a tx of type `ty` is not comparable given the `ignored` overrides, if it is not.
    pub fn unsupported_tx_type(ignored: &[String], ty: u8) -> Option<String> {
        (ty == 3 && ignored.iter().any(|o| o == "blobBaseFee")).then(|| {
            "blob tx: the node does not take the blobBaseFee block override and its own blob \
             base fee is not the block's, so the blob fee differs"
                .to_string()
        })
    }

    /// Why every tx is not comparable (an ignored override changes every tx's accounting).
    pub fn not_comparable_at_all(ignored: &[String]) -> Option<String> {
        OVERRIDE_FIELDS
            .iter()
            .filter(|(_, op)| op.is_none())
            .find(|(f, _)| ignored.iter().any(|o| o == f))
            .map(|(f, _)| format!("the node does not take the {f} block override"))
    }

    /// Why a tx that executed the opcodes `ran` says yes to is not comparable, if it is not.
    pub fn not_comparable_opcodes(ignored: &[String], ran: &dyn Fn(u8) -> bool) -> Option<String> {
        OVERRIDE_FIELDS
            .iter()
            .filter_map(|(f, op)| op.map(|o| (f, o)))
            .find(|(f, o)| ran(*o) && ignored.iter().any(|x| x == *f))
            .map(|(f, o)| {
                format!(
                    "reads {} and the node does not take the {f} block override",
                    txshadow_replay::opcode_name(o)
                )
            })
    }

    /// Whether txs must be checked for the opcodes they run (an override they read is ignored).
    pub fn needs_opcode_check(ignored: &[String]) -> bool {
        OVERRIDE_FIELDS
            .iter()
            .any(|(f, op)| op.is_some() && ignored.iter().any(|o| o == f))
    }
}

fn word(v: &Value, i: usize) -> Option<U256> {
    let s = v.get("output")?.as_str()?.trim_start_matches("0x");
    let w = s.get(i * 64..(i + 1) * 64)?;
    U256::from_str_radix(w, 16).ok()
}

/// Probes the node: chain id, client, hardfork, the tracers, and which block overrides it
/// honours (a contract put in place by a state override returns what it reads).
pub(crate) async fn probe(rpc: &Rpc, chain_id: u64) -> Result<Capabilities, NodeError> {
    let node = rpc.url().display().to_string();
    let mut caps = identify(rpc, chain_id, &node).await?;
    let p = ProbeCall::new();
    let r: Value = match rpc
        .call(
            "debug_traceCall",
            json!([p.call, "latest", {"tracer": "callTracer", "stateOverrides": p.state, "blockOverrides": p.block}]),
            None,
        )
        .await
    {
        Ok(r) => r,
        Err(RpcError::MethodUnavailable { reason, .. }) => {
            // no debug_traceCall: eth_simulateV1 gives status, gas, output and logs
            probe_simulate(rpc, &mut caps, &p.call, &p.state, &p.block, &p.checks)
                .await
                .map_err(|e| NodeError::Capability {
                    node: node.clone(),
                    reason: format!(
                        "the node serves neither debug_traceCall ({reason}) nor eth_simulateV1 \
                         ({}); the node engine needs one of them with state and block overrides \
                         (anvil, geth or reth with the debug or eth namespace)",
                        crate::rpc_text(&e)
                    ),
                })?;
            return Ok(caps);
        }
        Err(e) => return Err(missing(&node, e)),
    };
    apply_checks(&r, &mut caps, &p.checks);
    caps.block_hash_override = !caps.ignored_overrides.iter().any(|o| o == "blockHash");
    probe_blob_fee(rpc, &mut caps, &p).await;
    check_prestate(rpc, &p, &node).await?;
    caps.simulate_v1 = rpc
        .call::<_, Value>(
            "eth_simulateV1",
            json!([{"blockStateCalls": [{"calls": []}]}, "latest"]),
            None,
        )
        .await
        .is_ok();
    Ok(caps)
}

/// The node's chain id (which must be `chain_id`), client and hardfork, with the
/// `debug_traceCall` path assumed until the probe finds otherwise.
async fn identify(rpc: &Rpc, chain_id: u64, node: &str) -> Result<Capabilities, NodeError> {
    let connect = |e: RpcError| NodeError::Connect {
        node: node.to_string(),
        reason: crate::rpc_text(&e),
    };
    let id: String = rpc
        .call("eth_chainId", json!([]), None)
        .await
        .map_err(connect)?;
    let got =
        u64::from_str_radix(id.trim_start_matches("0x"), 16).map_err(|e| NodeError::Connect {
            node: node.to_string(),
            reason: format!("eth_chainId answered {id:?}: {e}"),
        })?;
    if got != chain_id {
        return Err(NodeError::ChainId {
            node: node.to_string(),
            got,
            expected: chain_id,
        });
    }
    let client: String = rpc
        .call("web3_clientVersion", json!([]), None)
        .await
        .unwrap_or_else(|_| "unknown client".into());
    let hardfork = rpc
        .call::<_, Value>("anvil_nodeInfo", json!([]), None)
        .await
        .ok()
        .and_then(|v| {
            v.get("hardFork")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    Ok(Capabilities {
        client,
        chain_id,
        hardfork,
        path: "debug_traceCall (prestateTracer diffMode + callTracer withLog)".into(),
        state_compared: true,
        ..Default::default()
    })
}

/// The address the probe contract is put at (by a state override).
const PROBE: Address = Address::repeat_byte(0x7a);
/// Code returning BLOBBASEFEE as one word.
const BLOB_CODE: &str = "0x4a60005260206000f3";

/// The probe call: a contract returning what the block overrides should set, the overrides,
/// and the value each returned word must have.
struct ProbeCall {
    /// The call to the probe contract.
    call: Value,
    /// The state override that puts the probe contract in place.
    state: Value,
    /// The block overrides.
    block: Value,
    /// Per returned word: the override it answers and its value when taken.
    checks: [(&'static str, U256); 7],
}

impl ProbeCall {
    /// The probe contract returns BLOCKHASH(n-1), NUMBER, PREVRANDAO, TIMESTAMP, COINBASE,
    /// BASEFEE, GASLIMIT as words 0..7.
    fn new() -> Self {
        let number = 0x0123_4567u64;
        let hash = B256::repeat_byte(0xab);
        let randao = B256::repeat_byte(0xcd);
        let coinbase = Address::repeat_byte(0xee);
        let (time, gas_limit, base_fee) = (0x6000_0000u64, 0x01c9_c381u64, 7u64);
        let code = format!(
            "0x63{:08x}40600052436020524460405242606052416080524860a0524560c05260e06000f3",
            number - 1
        );
        let from = Address::repeat_byte(0x11);
        let call = json!({"from": from, "to": PROBE, "gas": "0x100000"});
        let block = json!({
            "number": format!("{number:#x}"),
            "time": format!("{time:#x}"),
            "gasLimit": format!("{gas_limit:#x}"),
            "feeRecipient": coinbase,
            "baseFeePerGas": format!("{base_fee:#x}"),
            "prevRandao": randao,
            "blockHash": { (number - 1).to_string(): hash },
        });
        let state = json!({ PROBE.to_string(): {"code": code} });
        let checks = [
            ("blockHash", hash.into()),
            ("number", U256::from(number)),
            ("prevRandao", randao.into()),
            ("time", U256::from(time)),
            ("feeRecipient", U256::from_be_slice(coinbase.as_slice())),
            ("baseFeePerGas", U256::from(base_fee)),
            ("gasLimit", U256::from(gas_limit)),
        ];
        Self {
            call,
            state,
            block,
            checks,
        }
    }
}

/// The error for a probe call the node failed: no answer at all is a connection problem, an
/// answered failure a missing capability.
fn missing(node: &str, e: RpcError) -> NodeError {
    if e.gave_up() {
        // no answer at all (down, timing out, refusing the connection): not a missing method
        NodeError::Connect {
            node: node.to_string(),
            reason: format!(
                "no answer to the capability probe: {}; check that the node is up and \
                 answers within the timeout (node=URL,timeout=SECONDS,retries=N)",
                crate::rpc_text(&e)
            ),
        }
    } else {
        NodeError::Capability {
            node: node.to_string(),
            reason: format!(
                "{}; the node engine needs debug_traceCall with state and block overrides \
                 and the callTracer and prestateTracer (anvil, geth or reth with the debug \
                 namespace)",
                crate::rpc_text(&e)
            ),
        }
    }
}

/// BLOBBASEFEE alone (an older hardfork does not have the opcode): whether the `blobBaseFee`
/// override is taken, else the node's own blob base fee.
async fn probe_blob_fee(rpc: &Rpc, caps: &mut Capabilities, p: &ProbeCall) {
    let mut blob_block = p.block.clone();
    blob_block["blobBaseFee"] = json!("0x3");
    let r: Result<Value, _> = rpc
        .call(
            "debug_traceCall",
            json!([p.call, "latest", {"tracer": "callTracer",
                "stateOverrides": { PROBE.to_string(): {"code": BLOB_CODE} },
                "blockOverrides": blob_block}]),
            None,
        )
        .await;
    match r {
        Ok(v) if word(&v, 0) == Some(U256::from(3)) => {}
        _ => caps.ignored_overrides.push("blobBaseFee".into()),
    }
    if !caps.takes("blobBaseFee") {
        let r: Result<Value, _> = rpc
            .call(
                "debug_traceCall",
                json!([p.call, "latest", {"tracer": "callTracer",
                    "stateOverrides": { PROBE.to_string(): {"code": BLOB_CODE} }}]),
                None,
            )
            .await;
        caps.native_blob_base_fee = r
            .ok()
            .filter(|v| v.get("error").is_none())
            .and_then(|v| word(&v, 0))
            .and_then(|w| u128::try_from(w).ok());
    }
}

/// Checks that the prestate tracer in diff mode gives the pre- and post-state.
async fn check_prestate(rpc: &Rpc, p: &ProbeCall, node: &str) -> Result<(), NodeError> {
    let r: Value = rpc
        .call(
            "debug_traceCall",
            json!([p.call, "latest", {"tracer": "prestateTracer", "tracerConfig": {"diffMode": true},
                "stateOverrides": p.state, "blockOverrides": p.block}]),
            None,
        )
        .await
        .map_err(|e| missing(node, e))?;
    if r.get("pre").is_none() || r.get("post").is_none() {
        return Err(NodeError::Capability {
            node: node.to_string(),
            reason: "debug_traceCall with the prestateTracer in diffMode gave no pre/post".into(),
        });
    }
    Ok(())
}

fn apply_checks(r: &Value, caps: &mut Capabilities, checks: &[(&str, U256)]) {
    for (i, (f, want)) in checks.iter().enumerate() {
        if word(r, i) != Some(*want) {
            caps.ignored_overrides.push((*f).to_string());
        }
    }
}

/// The `eth_simulateV1` request for one call on `block` (overrides) over `state`.
pub(crate) fn simulate_params(call: &Value, state: &Value, block: &Value) -> Value {
    json!([{
        "blockStateCalls": [{"blockOverrides": block, "stateOverrides": state, "calls": [call]}],
        "validation": true,
        "traceTransfers": false,
    }, "earliest"])
}

/// The probe through `eth_simulateV1` (no `blockHash` override there: the spec leaves it out).
async fn probe_simulate(
    rpc: &Rpc,
    caps: &mut Capabilities,
    call: &Value,
    state: &Value,
    block: &Value,
    checks: &[(&str, U256)],
) -> Result<(), RpcError> {
    let mut block = block.clone();
    if let Some(b) = block.as_object_mut() {
        b.remove("blockHash");
    }
    // with validation the call pays for its gas like a tx
    let mut call = call.clone();
    call["maxFeePerGas"] = json!("0x64");
    call["maxPriorityFeePerGas"] = json!("0x0");
    let mut state = state.clone();
    state[call["from"].as_str().unwrap_or_default()] = json!({"balance": "0xffffffffffff"});
    let r: Value = rpc
        .call(
            "eth_simulateV1",
            simulate_params(&call, &state, &block),
            None,
        )
        .await?;
    let c = &r[0]["calls"][0];
    let out = json!({"output": c["returnData"]});
    caps.path = "eth_simulateV1 (status, gas, output, logs; no post-state)".into();
    caps.simulate_v1 = true;
    caps.state_compared = false;
    apply_checks(&out, caps, checks);
    caps.block_hash_override = false;
    if !caps.ignored_overrides.iter().any(|o| o == "blockHash") {
        caps.ignored_overrides.insert(0, "blockHash".into());
    }
    // BLOBBASEFEE: taken as an override, else the node's own value
    let blob_call = {
        let mut c = call.clone();
        c["to"] = json!(Address::repeat_byte(0x7b));
        c
    };
    let blob_state = {
        let mut s = state.clone();
        s[Address::repeat_byte(0x7b).to_string()] = json!({"code": "0x4a60005260206000f3"});
        s
    };
    let mut blob_block = block.clone();
    blob_block["blobBaseFee"] = json!("0x3");
    let taken: Option<Value> = rpc
        .call(
            "eth_simulateV1",
            simulate_params(&blob_call, &blob_state, &blob_block),
            None,
        )
        .await
        .ok();
    let fee = |v: &Value| word(&json!({"output": v[0]["calls"][0]["returnData"]}), 0);
    if taken.as_ref().and_then(fee) != Some(U256::from(3)) {
        caps.ignored_overrides.push("blobBaseFee".into());
        let native: Option<Value> = rpc
            .call(
                "eth_simulateV1",
                simulate_params(&blob_call, &blob_state, &block),
                None,
            )
            .await
            .ok();
        caps.native_blob_base_fee = native
            .as_ref()
            .and_then(fee)
            .and_then(|w| u128::try_from(w).ok());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(ignored: &[&str], native: Option<u128>) -> Capabilities {
        Capabilities {
            ignored_overrides: ignored.iter().map(|s| s.to_string()).collect(),
            native_blob_base_fee: native,
            ..Default::default()
        }
    }

    #[test]
    fn rpc_failures_are_told_without_the_capture_hints() {
        let unavailable = RpcError::MethodUnavailable {
            method: "eth_simulateV1",
            block: None,
            reason: "JSON-RPC error -32601: method not found".into(),
        };
        assert!(
            unavailable.to_string().contains("capture needs"),
            "{unavailable}"
        );
        let t = crate::rpc_text(&unavailable);
        assert_eq!(
            t,
            "the node does not serve eth_simulateV1: JSON-RPC error -32601: method not found"
        );
        let no_state = RpcError::NoState {
            method: "debug_traceCall",
            block: Some(7),
            reason: "missing trie node".into(),
        };
        let t = crate::rpc_text(&no_state);
        assert!(
            !t.contains("capture") && t.contains("missing trie node"),
            "{t}"
        );
        let gave_up = RpcError::Failed {
            method: "debug_traceCall",
            block: None,
            reason: "gave up after 2 attempts: HTTP 503".into(),
        };
        assert_eq!(
            crate::rpc_text(&gave_up),
            "debug_traceCall failed: gave up after 2 attempts: HTTP 503"
        );
        assert!(gave_up.gave_up() && !unavailable.gave_up() && !no_state.gave_up());
    }

    #[test]
    fn a_missing_blob_fee_override_matters_only_when_the_fees_differ() {
        let c = caps(&["blobBaseFee"], Some(1));
        assert!(c.ignored_for(Some(1)).is_empty());
        assert!(c.ignored_for(None).is_empty());
        let ig = c.ignored_for(Some(7));
        assert_eq!(ig, vec!["blobBaseFee".to_string()]);
        assert!(Capabilities::unsupported_tx_type(&ig, 3).is_some());
        assert!(Capabilities::unsupported_tx_type(&ig, 2).is_none());
        assert!(Capabilities::needs_opcode_check(&ig));
        let r = Capabilities::not_comparable_opcodes(&ig, &|o| o == 0x4a).unwrap();
        assert!(r.contains("BLOBBASEFEE"), "{r}");
        assert!(Capabilities::not_comparable_opcodes(&ig, &|o| o == 0x40).is_none());
        assert!(Capabilities::not_comparable_at_all(&ig).is_none());
    }

    #[test]
    fn ignored_overrides_decide_what_is_not_comparable() {
        let ig = caps(&["blockHash"], None).ignored_for(None);
        let r = Capabilities::not_comparable_opcodes(&ig, &|o| o == 0x40).unwrap();
        assert!(r.contains("BLOCKHASH") && r.contains("blockHash"), "{r}");
        let ig = caps(&["baseFeePerGas"], None).ignored_for(None);
        assert!(Capabilities::not_comparable_at_all(&ig).is_some());
        assert!(!Capabilities::needs_opcode_check(&ig));
    }
}
