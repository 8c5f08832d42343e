//! kkrt-labs/keth block dumps: one JSON file per block with
//!
//! - `blocks[0]`: `header` (RPC form, with `hash`), `transaction` (signed txs in RPC form, without
//!   sender), `uncles`, `withdrawals`;
//! - `witness`: `state` (RLP trie nodes of the parent state touched by the block), `ancestors`
//!   (headers of the parent and older blocks), `codes`;
//! - `chainConfig` (geth genesis config form);
//! - `extra.preState` (address → account at `N-1` with its code and read slots, `null` for an
//!   account that did not exist) and `extra.stateDiffs` (per changed account: pre/post account
//!   and pre/post value of each changed slot).
//!
//! The block pre-state is `extra.preState`, checked account by account and slot by slot against
//! the witness under the parent's state root. A value whose proof ends in a node the witness
//! lacks (real dumps miss the node proving some absent accounts) is unproven, not wrong: the
//! block is run once watching those values. One the block reads fails the file, naming the
//! account or slot; one it only changes or never reads is a warning on the block (a corpus note
//! and a log line), and the value is kept from `extra.preState`. The expected post-state covers every account and
//! slot of the pre-state: the post values from `extra.stateDiffs` where it lists a change, the
//! pre-state's own values where it lists none (`stateDiffs` lists every account and slot the
//! block changed, system contracts included). Transactions, withdrawals and uncles are checked
//! against the header's roots; senders are recovered from the signatures. The block keeps the
//! witness's state nodes (those reachable from the parent's state root) and the parent header.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use alloy_consensus::{Header, TxEnvelope, transaction::SignerRecoverable};
use alloy_eips::{eip2718::Encodable2718, eip4895::Withdrawal};
use alloy_primitives::{Address, B256, Bytes, U64, U256, keccak256};
use alloy_rlp::Decodable;
use alloy_rpc_types_eth::Header as RpcHeader;
use alloy_trie::{EMPTY_ROOT_HASH, TrieAccount};
use serde::Deserialize;
use txshadow_corpus::{
    AccountState, BlockRecord, CorpusWriter, KECCAK_EMPTY, Provenance, StateMap, TxRecord,
};
use txshadow_replay::{BlockRunOptions, Codes, SideConfig, decode_code, run_block};
use txshadow_trie::{NodeSet, witness};

use super::{
    ImportError, ImportOptions, ImportSummary,
    common::{self, NodeError},
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KethFile {
    blocks: Vec<KethBlock>,
    witness: Witness,
    chain_config: ChainCfg,
    extra: Extra,
}

#[derive(Deserialize)]
struct KethBlock {
    header: RpcHeader,
    transaction: Vec<serde_json::Value>,
    #[serde(default)]
    uncles: Vec<Header>,
    #[serde(default)]
    withdrawals: Option<Vec<Withdrawal>>,
}

#[derive(Deserialize)]
struct Witness {
    #[serde(default)]
    state: Vec<Bytes>,
    #[serde(default)]
    ancestors: Vec<Header>,
    #[serde(default)]
    codes: Vec<Bytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChainCfg {
    chain_id: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Extra {
    pre_state: BTreeMap<Address, Option<KethAccount>>,
    state_diffs: Vec<StateDiff>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountFields {
    balance: U256,
    code_hash: B256,
    nonce: U64,
    storage_hash: B256,
}

#[derive(Deserialize)]
struct KethAccount {
    #[serde(flatten)]
    fields: AccountFields,
    #[serde(default)]
    code: Option<Bytes>,
    #[serde(default)]
    storage: BTreeMap<U256, U256>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateDiff {
    address: Address,
    #[serde(default)]
    pre_account: Option<AccountFields>,
    #[serde(default)]
    post_account: Option<AccountFields>,
    #[serde(default)]
    storage: Vec<SlotDiff>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlotDiff {
    storage_key: U256,
    pre_value: U256,
    post_value: U256,
}

fn same_account(a: &AccountFields, s: &AccountState) -> bool {
    a.balance == s.balance && a.nonce.to::<u64>() == s.nonce && a.code_hash == s.code_hash
}

/// Decodes the signed transactions (RPC form, no sender) and recovers their senders.
fn transactions(block: &KethBlock) -> Result<Vec<TxRecord>, String> {
    block
        .transaction
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let env: TxEnvelope = serde_json::from_value(v.clone())
                .map_err(|e| format!("transaction {i}: not a signed transaction: {e}"))?;
            // the envelope takes a `hash` field on trust: hash the encoding instead
            let raw = Bytes::from(env.encoded_2718());
            let hash = keccak256(&raw);
            if let Some(h) = v.get("hash") {
                let h: B256 = serde_json::from_value(h.clone())
                    .map_err(|e| format!("transaction {i}: bad hash: {e}"))?;
                if h != hash {
                    return Err(format!(
                        "transaction {i}: its fields hash to {hash}, the source says {h}"
                    ));
                }
            }
            let from = env
                .recover_signer()
                .map_err(|e| format!("transaction {i} ({hash}): no sender: {e}"))?;
            Ok(TxRecord { hash, from, raw })
        })
        .collect()
}

/// Checks one pre-state account (and its slots) against the witness under the parent root. A
/// value whose proof ends in a node the witness lacks is not checked: it is pushed on
/// `unproven` (naming the account or slot and the node), for the block run to judge.
fn check_against_witness(
    trie: &common::TrieNodes,
    root: B256,
    addr: &Address,
    acc: Option<&KethAccount>,
    unproven: &mut Vec<String>,
) -> Result<(), String> {
    let leaf = match trie.get(root, addr.as_slice()) {
        Ok(leaf) => leaf,
        Err(e @ NodeError::Missing(_)) => {
            unproven.push(format!("account {addr} ({e})"));
            return Ok(());
        }
        Err(e) => return Err(format!("{addr}: {e}")),
    };
    let proved = leaf
        .map(|l| TrieAccount::decode(&mut l.as_slice()))
        .transpose()
        .map_err(|e| format!("{addr}: undecodable account in the witness: {e}"))?;
    let Some(acc) = acc else {
        return match proved {
            None => Ok(()),
            Some(p) => Err(format!(
                "{addr}: absent in preState, the witness has it (balance {}, nonce {})",
                p.balance, p.nonce
            )),
        };
    };
    let a = &acc.fields;
    let Some(p) = proved else {
        return Err(format!(
            "{addr}: in preState, absent from the witness's state"
        ));
    };
    if p.balance != a.balance
        || p.nonce != a.nonce.to::<u64>()
        || p.code_hash != a.code_hash
        || p.storage_root != a.storage_hash
    {
        return Err(format!(
            "{addr}: preState (balance {}, nonce {}, code {}, storage {}) differs from the \
             witness (balance {}, nonce {}, code {}, storage {})",
            a.balance,
            a.nonce,
            a.code_hash,
            a.storage_hash,
            p.balance,
            p.nonce,
            p.code_hash,
            p.storage_root
        ));
    }
    for (k, v) in &acc.storage {
        let leaf = match trie.get(p.storage_root, &B256::from(*k).0) {
            Ok(leaf) => leaf,
            Err(e @ NodeError::Missing(_)) => {
                unproven.push(format!("slot {k:#x} of {addr} ({e})"));
                continue;
            }
            Err(e) => return Err(format!("{addr} slot {k:#x}: {e}")),
        };
        let got = leaf
            .map(|l| U256::decode(&mut l.as_slice()))
            .transpose()
            .map_err(|e| format!("{addr} slot {k:#x}: undecodable value: {e}"))?
            .unwrap_or_default();
        if got != *v {
            return Err(format!(
                "{addr} slot {k:#x}: preState says {v:#x}, the witness {got:#x}"
            ));
        }
    }
    Ok(())
}

fn import_file(
    path: &Path,
    w: &mut CorpusWriter,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let bad = |reason: String| ImportError::source(path, reason);
    let file: KethFile = common::read_json(path)?;
    if file.chain_config.chain_id != 1 {
        return Err(bad(format!(
            "chainConfig.chainId is {}, only mainnet (1) is supported",
            file.chain_config.chain_id
        )));
    }
    let [block] = file.blocks.as_slice() else {
        return Err(bad(format!(
            "expected exactly one block, found {}",
            file.blocks.len()
        )));
    };
    let header = block.header.inner.clone();
    let n = header.number;
    let hash = header.hash_slow();
    if hash != block.header.hash {
        return Err(bad(format!(
            "block {n}: header hashes to {hash}, the source says {}",
            block.header.hash
        )));
    }
    if w.has_block(&hash) {
        summary.skipped_existing += 1;
        return Ok(());
    }

    let (block_hashes, parent) = ancestors(&file.witness, &header).map_err(&bad)?;
    let parent_root = parent.state_root;

    let transactions = transactions(block).map_err(&bad)?;
    let mut rec = BlockRecord {
        ommers: block.uncles.clone(),
        withdrawals: block.withdrawals.clone(),
        block_hashes,
        ..BlockRecord::new(hash, header, transactions)
    };
    common::check_body_roots(&rec).map_err(|e| bad(format!("block {n}: {e}")))?;

    let (unavailable, unproven) = read_pre_state(path, &file, parent_root, w, &mut rec)?;
    let post = post_state(&file.extra.state_diffs, &mut rec.pre_state).map_err(&bad)?;
    rec.expected.post_state = Some(post);
    // the witness: its state nodes reachable from the parent's state root
    let nodes = witness::reachable(
        parent_root,
        &NodeSet::new(file.witness.state.iter().cloned()),
    );
    let dropped = file.witness.state.len() - nodes.len();
    if dropped > 0 {
        w.add_note(format!(
            "{}: block {n}: {dropped} witness nodes not reachable from the parent state root (dropped)",
            common::file_name(path)
        ));
    }
    rec.witness = Some(txshadow_corpus::Witness::new(
        parent,
        nodes,
        "keth: witness.state",
    ));
    if !unproven.is_empty() {
        let warnings = judge_unproven(&rec, &file)
            .map_err(|e| bad(format!("block {n}: extra.preState: {e}")))?;
        for warning in warnings {
            tracing::warn!("{}: block {n}: {warning}", path.display());
            w.add_note(format!("{}: block {n}: {warning}", common::file_name(path)));
        }
    }
    if !unavailable.is_empty() {
        w.add_note(format!(
            "{}: block {n}: code not in the source for {}",
            common::file_name(path),
            unavailable.join(", ")
        ));
    }

    summary.blocks += 1;
    summary.txs += rec.transactions.len();
    w.put_block(&rec)?;
    Ok(())
}

/// Runs the block once over its pre-state, watching the values its witness cannot prove: the
/// warnings for those it only changes or never reads, or the error naming one it reads.
fn judge_unproven(rec: &BlockRecord, file: &KethFile) -> Result<Vec<String>, String> {
    let mut codes = Codes::default();
    let sources = file.witness.codes.iter();
    let own = file.extra.pre_state.values().flatten();
    for code in sources.chain(own.filter_map(|a| a.code.as_ref())) {
        codes.insert(decode_code(code.clone()));
    }
    let run = run_block(
        rec,
        &txshadow_corpus::ChainConfig::mainnet(),
        &codes,
        &SideConfig::chain("import"),
        &BlockRunOptions::receipts_only(),
    );
    let Some(witness) = run.outcome.witness else {
        return Err(run
            .outcome
            .error
            .unwrap_or_else(|| "the block ran without its witness".into()));
    };
    match witness.error {
        Some(e) => Err(e),
        None => Ok(witness.unproven),
    }
}

/// The ancestors of the witness: their hashes for BLOCKHASH, and the parent header (whose state
/// root the witness proves the pre-state under).
fn ancestors(witness: &Witness, header: &Header) -> Result<(BTreeMap<u64, B256>, Header), String> {
    let n = header.number;
    let mut block_hashes = BTreeMap::new();
    let mut parent = None;
    for a in &witness.ancestors {
        let h = a.hash_slow();
        if h == header.parent_hash {
            parent = Some(a.clone());
        }
        block_hashes.insert(a.number, h);
        if a.number > 0 {
            block_hashes.entry(a.number - 1).or_insert(a.parent_hash);
        }
    }
    if n > 0 {
        block_hashes.insert(n - 1, header.parent_hash);
    }
    let Some(parent) = parent else {
        return Err(format!(
            "witness.ancestors lacks the parent header {}",
            header.parent_hash
        ));
    };
    Ok((block_hashes, parent))
}

/// The pre-state of `extra.preState` into `rec`, each account checked against the witness under
/// `parent_root`; codes are written once per hash. Returns the accounts whose code the source
/// does not carry (recorded as unavailable), and the accounts and slots the witness cannot
/// prove (kept from the source, for the block run to judge).
fn read_pre_state(
    path: &Path,
    file: &KethFile,
    parent_root: B256,
    w: &mut CorpusWriter,
    rec: &mut BlockRecord,
) -> Result<(Vec<String>, Vec<String>), ImportError> {
    let bad = |reason: String| ImportError::source(path, reason);
    let trie = common::TrieNodes::new(file.witness.state.iter().cloned());
    let codes: HashMap<B256, &Bytes> = file
        .witness
        .codes
        .iter()
        .map(|c| (keccak256(c), c))
        .collect();
    let mut unavailable = vec![];
    let mut unproven = vec![];
    for (addr, acc) in &file.extra.pre_state {
        check_against_witness(&trie, parent_root, addr, acc.as_ref(), &mut unproven)
            .map_err(|e| bad(format!("extra.preState: {e}")))?;
        let Some(acc) = acc else {
            rec.pre_state.insert(*addr, None);
            continue;
        };
        let code_hash = acc.fields.code_hash;
        if code_hash != KECCAK_EMPTY && !w.has_code(&code_hash) {
            match acc.code.as_ref().or_else(|| codes.get(&code_hash).copied()) {
                Some(code) => {
                    let h = w.put_code(code)?;
                    if h != code_hash {
                        return Err(bad(format!(
                            "extra.preState: {addr}: code hashes to {h}, the source says {code_hash}"
                        )));
                    }
                }
                // The witness carries the code of the contracts the block runs. A contract that
                // is only credited (a withdrawal recipient: withdrawals run no code) has its
                // code hash in its account but no code anywhere in the file. The corpus records
                // the hash as unavailable: the account replays with its true code hash, and a
                // replay that would need the bytes fails naming the hash instead of running
                // other code.
                None => {
                    w.put_code_unavailable(code_hash)?;
                    unavailable.push(format!("{addr} ({code_hash})"));
                }
            }
        }
        rec.pre_state.insert(
            *addr,
            Some(AccountState {
                balance: acc.fields.balance,
                nonce: acc.fields.nonce.to::<u64>(),
                code_hash,
                storage: acc.storage.clone(),
            }),
        );
    }
    Ok((unavailable, unproven))
}

/// The post-state: every pre-state account and slot, with the changes of `extra.stateDiffs`
/// applied, each diff checked against the pre-state. A written slot the pre-state does not list
/// is added to `pre_state` with its pre-value.
fn post_state(diffs: &[StateDiff], pre_state: &mut StateMap) -> Result<StateMap, String> {
    let mut post: StateMap = pre_state.clone();
    let mut unlisted = vec![];
    for d in diffs {
        let a = d.address;
        let Some(pre) = pre_state.get(&a) else {
            return Err(format!(
                "extra.stateDiffs: {a} changes but is not in extra.preState"
            ));
        };
        match (&d.pre_account, pre) {
            (None, None) => {}
            (Some(x), Some(p)) if same_account(x, p) => {}
            _ => {
                return Err(format!(
                    "extra.stateDiffs: {a}: preAccount disagrees with extra.preState"
                ));
            }
        }
        let Some(pa) = &d.post_account else {
            post.insert(a, None);
            continue;
        };
        let mut acc = pre.clone().unwrap_or_default();
        if pre.is_none() || pa.storage_hash == EMPTY_ROOT_HASH {
            // a new account, or one whose storage is now empty: no slot survives
            for v in acc.storage.values_mut() {
                *v = U256::ZERO;
            }
        }
        acc.balance = pa.balance;
        acc.nonce = pa.nonce.to::<u64>();
        acc.code_hash = pa.code_hash;
        for s in &d.storage {
            match pre.as_ref().map(|p| p.storage.get(&s.storage_key)) {
                Some(Some(v)) if *v != s.pre_value => {
                    return Err(format!(
                        "extra.stateDiffs: {a} slot {:#x}: preValue {:#x}, extra.preState says {v:#x}",
                        s.storage_key, s.pre_value
                    ));
                }
                None if !s.pre_value.is_zero() => {
                    return Err(format!(
                        "extra.stateDiffs: {a} slot {:#x}: preValue {:#x} of an account that did not exist",
                        s.storage_key, s.pre_value
                    ));
                }
                // a written slot the pre-state does not list: its value at N-1 is the preValue
                Some(None) => unlisted.push((a, s.storage_key, s.pre_value)),
                _ => {}
            }
            acc.storage.insert(s.storage_key, s.post_value);
        }
        post.insert(a, Some(acc));
    }
    for (a, k, v) in unlisted {
        if let Some(Some(acc)) = pre_state.get_mut(&a) {
            acc.storage.insert(k, v);
        }
    }
    Ok(post)
}

pub(crate) fn import(
    inputs: &[PathBuf],
    out: &Path,
    opts: &ImportOptions,
    prov: Provenance,
) -> Result<ImportSummary, ImportError> {
    common::import_json_files(inputs, "keth block", out, opts, prov, import_file)
}
