//! go-ethereum tracer test fixtures (`eth/tracers/internal/tracetest/testdata/<tracer>/<name>.json`).
//!
//! Each fixture is one transaction traced on top of a genesis: `{genesis: {parent header fields,
//! config, alloc}, context: {number, timestamp, difficulty, gasLimit, miner, baseFeePerGas?},
//! input: raw signed tx, tracerConfig?, result}`. Numbers are decimal or `0x`-hex, as JSON numbers
//! or strings. Every fixture becomes one synthetic block (label `<tracer dir>/<file stem>`) with
//! one transaction, the genesis alloc as its (complete) pre-state and its own [`ChainConfig`].
//!
//! # The harness's conventions
//!
//! go-ethereum's tracer test harness does not process a block: it turns `context` into a
//! `vm.BlockContext` (`callContext.toBlockContext`) and calls `core.ApplyMessage` once.
//! - The coinbase is `context.miner`; the gas pool holds exactly the tx's gas, so the block gas
//!   limit is never checked (`no_block_gas_limit`).
//! - No block reward (`rewards = false`) and no system call of any kind: no EIP-4788 beacon root,
//!   no EIP-2935 history write, no withdrawals or requests, no DAO transfer
//!   (`system_calls = false`; the DAO fork is left out of the schedule).
//! - `GetHash` is not set, so no fixture reads BLOCKHASH in range; the corpus answers zero
//!   (`unknown_blockhash_is_zero`).
//! - `Random` (PREVRANDAO) is `genesis.mixHash` only when `terminalTotalDifficulty` is 0, and
//!   geth's `Rules(num, isMerge = Random != nil, time)` then enables Paris and the timestamp forks
//!   (Shanghai on require `isMerge`, so they are left out otherwise); a pre-merge block's
//!   DIFFICULTY is `context.difficulty`.
//! - The base fee is `context.baseFeePerGas` when London is active.
//! - The blob base fee derives from the genesis (parent) blob fields: the block's excess blob gas
//!   is `max(0, genesis.excessBlobGas + genesis.blobGasUsed - target)`, with the target of the
//!   blob schedule in force (`blobSchedule` of the config, Ethereum defaults otherwise). Without
//!   those fields geth has no blob base fee at all, which only a blob tx or BLOBBASEFEE could read
//!   (and would crash the harness); revm requires one from Cancun on, so the excess is 0 then.
//! - EIP-155 (`eip155Block`) only changes signing; the EVM's Spurious Dragon rules follow
//!   `eip158Block`. Without `petersburgBlock`, Petersburg comes with Constantinople (geth's
//!   `IsPetersburg`).
//!
//! Config keys are matched case-insensitively, as Go's `encoding/json` does (one fixture spells
//! `IstanbulBlock`).
//!
//! # What is kept as expected results
//!
//! - callTracer (native, legacy JS, withLog) and erc7562Tracer: the top frame's `gasUsed`, which
//!   is the receipt's gas used (geth's `callTracer.OnTxEnd` sets `callstack[0].GasUsed =
//!   receipt.GasUsed`, and the harness passes `&types.Receipt{GasUsed: vmRet.UsedGas}`, i.e.
//!   intrinsic gas included and the refund applied; the JS tracer's `ctx.gasUsed` is the same
//!   receipt value); `output` (absent means empty: geth omits empty output, and drops it on
//!   errors other than a revert, where the EVM returns nothing); success or the `error`; and with
//!   `withLog` (and not `onlyTopCall`) the receipt's logs, rebuilt from the call tree: frames
//!   with an error are reverted and emit nothing, and a log's `position` is the number of
//!   sub-calls its frame made before it.
//! - flatCallTracer: the first (top) trace's success or `error`, and when it has a `result`, its
//!   `gasUsed` (the callTracer's value) and its `output` (`code` for a create).
//! - prestateTracer in diff mode: the post-state of every changed account, `post` merged over the
//!   genesis account; a slot in `pre` but not in `post` became zero; an account in `pre` but not
//!   in `post` was deleted; and since a diff lists every account the tx changed, every other
//!   genesis account is expected unchanged.
//! - prestateTracer without diff mode records only what the tx read: nothing to compare beyond the
//!   tx executing.
//!
//! One recorded value is not the tx's result: in a Frontier create whose code deposit (200 gas a
//! byte) cannot be paid, the contract is left without code and the tx succeeds, but geth's tracer
//! shows the init code's return data as the output. When the receipt gas proves the deposit
//! failed, the expected output is the deployed code: empty.
//!
//! # What cannot be replayed
//!
//! A fixture whose rules revm cannot express is written with `unsupported` set (and listed in the
//! import summary): a fork schedule that is not cumulative at the traced block, London without a
//! base fee, or Constantinople without Petersburg (EIP-1283 SSTORE metering, which revm does not
//! implement) when the fixture's code can execute SSTORE. When no code of the fixture has an
//! SSTORE instruction (nor calldata an 0x55 byte), Constantinople without Petersburg is exactly
//! Petersburg, and the block is replayed under it (noted in the provenance).

mod expected;
mod json;
mod rules;

pub(crate) use rules::EVM_FORKS;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use alloy_consensus::{Header, Transaction, TxEnvelope, transaction::SignerRecoverable};
use alloy_hardforks::{EthereumChainHardforks, EthereumHardforks};
use alloy_primitives::{Address, B256, Bytes, keccak256};
use serde_json::Value;
use txshadow_corpus::{
    AccountState, BlockRecord, ChainConfig, Conventions, CorpusWriter, Expected, ExpectedTx,
    KECCAK_EMPTY, Provenance, StateMap, TxRecord, decode_tx,
};

use self::{
    expected::{expected_from_diff, expected_from_flat, expected_from_frame},
    json::{GethConfig, bytes, field, is_true, opt_u64, parse, quantity, quantity_u64},
    rules::{Rules, SSTORE, chain_rules, has_opcode},
};
use super::{ImportError, ImportOptions, ImportSummary, common};

/// Finds the fixture files among the inputs: a testdata root (tracer dirs inside), a tracer dir,
/// or single files. Returns `(label, path)` sorted by label.
fn fixture_files(inputs: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, ImportError> {
    let read = |p: &Path| {
        fs::read_dir(p).map_err(|source| ImportError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let is_json = |p: &Path| p.is_file() && p.extension().is_some_and(|e| e == "json");
    let label = |p: &Path| {
        let dir = p
            .parent()
            .and_then(|d| d.file_name())
            .map(|d| d.to_string_lossy().to_string())
            .unwrap_or_default();
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if dir.is_empty() {
            stem
        } else {
            format!("{dir}/{stem}")
        }
    };
    let mut files = vec![];
    for input in inputs {
        if is_json(input) {
            files.push(input.clone());
            continue;
        }
        if !input.is_dir() {
            return Err(ImportError::source(
                input,
                "not a geth tracetest fixture file nor a directory of them",
            ));
        }
        for e in read(input)?.flatten() {
            let p = e.path();
            if is_json(&p) {
                files.push(p);
            } else if p.is_dir() {
                for e in read(&p)?.flatten() {
                    if is_json(&e.path()) {
                        files.push(e.path());
                    }
                }
            }
        }
    }
    if files.is_empty() {
        return Err(ImportError::source(
            inputs
                .first()
                .map(PathBuf::as_path)
                .unwrap_or(Path::new(".")),
            "no geth tracetest fixture found (expected <tracer>/<name>.json)",
        ));
    }
    let mut out: Vec<(String, PathBuf)> = files.into_iter().map(|p| (label(&p), p)).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

pub(crate) fn import(
    inputs: &[PathBuf],
    out: &Path,
    opts: &ImportOptions,
    prov: Provenance,
) -> Result<ImportSummary, ImportError> {
    let files = fixture_files(inputs)?;
    // every block carries its own chain; the manifest's is only a default
    let mut manifest_chain = ChainConfig::mainnet();
    manifest_chain.name = "per-block chains (geth tracetest)".into();
    let mut w = CorpusWriter::create(out, manifest_chain, prov, opts.overwrite)?;
    w.add_note(
        "geth tracetest: one synthetic block per fixture; harness conventions: no block reward, \
         no system calls, no block gas limit check, BLOCKHASH unknown (zero), PREVRANDAO = \
         genesis.mixHash only when terminalTotalDifficulty is 0",
    );
    let mut summary = ImportSummary::default();
    for (label, path) in files {
        let fx = match common::read_json::<Value>(&path).and_then(|json| {
            convert(&label, &json, &mut w).map_err(|e| ImportError::source(&path, e))
        }) {
            Ok(fx) => fx,
            Err(e) => {
                summary.fail_input(&path, e)?;
                continue;
            }
        };
        if w.has_block(&fx.block.hash) {
            summary.skipped_existing += 1;
            continue;
        }
        for note in fx.notes {
            w.add_note(format!("{label}: {note}"));
        }
        if let Some(reason) = &fx.block.unsupported {
            summary.unsupported.push((label.clone(), reason.clone()));
        }
        summary.blocks += 1;
        summary.txs += fx.block.transactions.len();
        w.put_block(&fx.block)?;
    }
    w.finish()?;
    Ok(summary)
}

/// A converted fixture.
struct Converted {
    block: BlockRecord,
    /// What the import adjusted, for the provenance notes.
    notes: Vec<String>,
}

/// Converts one fixture; its codes go to `w`.
fn convert(label: &str, json: &Value, w: &mut CorpusWriter) -> Result<Converted, String> {
    let genesis = field(json, "genesis")?;
    let ctx = field(json, "context")?;
    let cfg = GethConfig::new(field(genesis, "config")?)?;
    let tracer_cfg = json.get("tracerConfig").filter(|c| !c.is_null());
    let result = field(json, "result")?;

    let (tx, env) = read_tx(json)?;
    let (pre_state, codes) = read_alloc(genesis, w)?;

    // the block context
    let number = quantity_u64(field(ctx, "number")?).map_err(|e| format!("context.number: {e}"))?;
    let timestamp =
        quantity_u64(field(ctx, "timestamp")?).map_err(|e| format!("context.timestamp: {e}"))?;
    let rules = chain_rules(&cfg, number, timestamp, || may_sstore(&codes, &env))?;
    let hf = rules.chain.hardforks();
    let mut unsupported = rules.unsupported.clone();
    let (base_fee, excess_blob_gas) = block_fees(
        genesis,
        ctx,
        &rules,
        number,
        timestamp,
        &env,
        &mut unsupported,
    )?;
    let mut notes: Vec<String> = rules.note.iter().cloned().collect();
    let (mix_hash, parent_hash, miner) = parent_fields(genesis, ctx, rules.merged)?;

    let mut expected_tx = recorded_result(result, tracer_cfg, &pre_state)?;
    if let Some(x) = expected_tx.as_mut()
        && let Some(note) = failed_code_deposit(x, &hf, number, &env)
    {
        notes.push(note);
    }

    let header = Header {
        parent_hash,
        beneficiary: miner,
        difficulty: quantity(field(ctx, "difficulty")?)
            .map_err(|e| format!("context.difficulty: {e}"))?,
        number,
        gas_limit: quantity_u64(field(ctx, "gasLimit")?)
            .map_err(|e| format!("context.gasLimit: {e}"))?,
        gas_used: expected_tx
            .as_ref()
            .and_then(|x| x.gas_used)
            .unwrap_or_default(),
        timestamp,
        mix_hash,
        base_fee_per_gas: base_fee,
        excess_blob_gas,
        blob_gas_used: excess_blob_gas.map(|_| env.blob_gas_used().unwrap_or(0)),
        ..Default::default()
    };
    let block = synthetic_block(
        label,
        header,
        tx,
        pre_state,
        expected_tx,
        rules.chain,
        unsupported,
    );
    Ok(Converted { block, notes })
}

/// The fixture's transaction (`input`) and its sender.
fn read_tx(json: &Value) -> Result<(TxRecord, TxEnvelope), String> {
    let raw = bytes(field(json, "input")?).map_err(|e| format!("input: {e}"))?;
    let env = decode_tx(&raw).map_err(|e| format!("input: {e}"))?;
    let from = env
        .recover_signer()
        .map_err(|e| format!("input: cannot recover the sender: {e}"))?;
    let tx = TxRecord {
        hash: *env.tx_hash(),
        from,
        raw,
    };
    Ok((tx, env))
}

/// The pre-state: the genesis alloc, complete. Its codes are written to the corpus and returned.
fn read_alloc(genesis: &Value, w: &mut CorpusWriter) -> Result<(StateMap, Vec<Bytes>), String> {
    let mut pre_state = StateMap::new();
    let mut codes: Vec<Bytes> = vec![];
    let alloc = field(genesis, "alloc")?
        .as_object()
        .ok_or("genesis.alloc is not an object")?;
    for (a, acc) in alloc {
        let addr: Address = parse(a, "alloc address")?;
        let ctx_err = |e: String| format!("genesis.alloc.{a}: {e}");
        let balance = acc
            .get("balance")
            .map(quantity)
            .transpose()
            .map_err(ctx_err)?
            .unwrap_or_default();
        let nonce = opt_u64(acc, "nonce").map_err(ctx_err)?.unwrap_or(0);
        let code = match acc.get("code") {
            Some(c) if !c.is_null() => bytes(c).map_err(ctx_err)?,
            _ => Bytes::new(),
        };
        let code_hash = if code.is_empty() {
            KECCAK_EMPTY
        } else {
            let h = w.put_code(&code).map_err(|e| e.to_string())?;
            codes.push(code);
            h
        };
        let mut storage = BTreeMap::new();
        for (k, v) in acc
            .get("storage")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let key = quantity(&Value::String(k.clone())).map_err(ctx_err)?;
            storage.insert(key, quantity(v).map_err(ctx_err)?);
        }
        pre_state.insert(
            addr,
            Some(AccountState {
                balance,
                nonce,
                code_hash,
                storage,
            }),
        );
    }
    Ok((pre_state, codes))
}

/// Whether the fixture can execute SSTORE: a code of the alloc or the init code has the
/// instruction, or the calldata has an 0x55 byte (it could be deployed as code).
fn may_sstore(codes: &[Bytes], env: &TxEnvelope) -> bool {
    codes.iter().any(|c| has_opcode(c, SSTORE))
        || if env.kind().is_create() {
            has_opcode(env.input(), SSTORE)
        } else {
            // calldata could be deployed as code: any 0x55 byte counts
            env.input().contains(&SSTORE)
        }
}

/// The block's base fee (from London on) and excess blob gas (from Cancun on), as geth's
/// harness derives them. What makes the block unreplayable goes to `unsupported`.
fn block_fees(
    genesis: &Value,
    ctx: &Value,
    rules: &Rules,
    number: u64,
    timestamp: u64,
    env: &TxEnvelope,
    unsupported: &mut Option<String>,
) -> Result<(Option<u64>, Option<u64>), String> {
    let london = rules.chain.hardforks().is_london_active_at_block(number);
    let base_fee = match ctx.get("baseFeePerGas") {
        Some(b) if london => {
            Some(quantity_u64(b).map_err(|e| format!("context.baseFeePerGas: {e}"))?)
        }
        _ => None,
    };
    if london && base_fee.is_none() && unsupported.is_none() {
        *unsupported = Some("London is active but the context has no baseFeePerGas".into());
    }
    let excess_blob_gas = match rules.chain.blob_params_at(timestamp) {
        Some(params) => {
            let (excess, used) = (
                opt_u64(genesis, "excessBlobGas")?,
                opt_u64(genesis, "blobGasUsed")?,
            );
            match (excess, used) {
                (Some(e), Some(u)) => Some(
                    e.saturating_add(u)
                        .saturating_sub(params.target_blob_gas_per_block()),
                ),
                _ => {
                    // geth's harness then has no blob base fee at all (nil), which only a blob
                    // tx or BLOBBASEFEE would read (and crash the harness); revm needs a value
                    if env.blob_versioned_hashes().is_some_and(|h| !h.is_empty()) {
                        unsupported.get_or_insert_with(|| {
                            "blob tx, but the genesis has no blob fields: geth's harness has no \
                             blob base fee"
                                .into()
                        });
                    }
                    Some(0)
                }
            }
        }
        None => None,
    };
    Ok((base_fee, excess_blob_gas))
}

/// The block's mix hash (PREVRANDAO: `genesis.mixHash` when post-merge), parent hash (the
/// genesis hash) and coinbase (`context.miner`).
fn parent_fields(
    genesis: &Value,
    ctx: &Value,
    merged: bool,
) -> Result<(B256, B256, Address), String> {
    let mix_hash = if merged {
        genesis
            .get("mixHash")
            .and_then(Value::as_str)
            .map(|s| parse::<B256>(s, "genesis.mixHash"))
            .transpose()?
            .unwrap_or_default()
    } else {
        B256::ZERO
    };
    let parent_hash = genesis
        .get("hash")
        .and_then(Value::as_str)
        .map(|s| parse::<B256>(s, "genesis.hash"))
        .transpose()?
        .unwrap_or_default();
    let miner: Address = parse(
        field(ctx, "miner")?.as_str().ok_or("context.miner")?,
        "context.miner",
    )?;
    Ok((mix_hash, parent_hash, miner))
}

/// What the tracer recorded, by the shape of its result.
fn recorded_result(
    result: &Value,
    tracer_cfg: Option<&Value>,
    pre_state: &StateMap,
) -> Result<Option<ExpectedTx>, String> {
    Ok(if result.is_array() {
        let top = result
            .get(0)
            .ok_or("result: an empty flat trace has no top call")?;
        Some(expected_from_flat(top)?)
    } else if result.get("type").is_some() && result.get("from").is_some() {
        Some(expected_from_frame(result, tracer_cfg)?)
    } else if is_true(tracer_cfg, "diffMode") {
        Some(expected_from_diff(result, pre_state, tracer_cfg)?)
    } else {
        // prestate without diff: only what the tx read
        None
    })
}

/// A Frontier create whose code deposit (200 gas a byte) cannot be paid succeeds with empty
/// code, but geth's tracer still shows the init code's return data as the output. A successful
/// deposit costs at least 200 gas a byte before refunds, so at least 100 a byte after the (at
/// most half) refund: a receipt gas below that proves the deposit failed, and the deployed code
/// (the tx's output) is empty. Sets the expected output so and returns the note, if it applies.
fn failed_code_deposit(
    x: &mut ExpectedTx,
    hf: &EthereumChainHardforks,
    number: u64,
    env: &TxEnvelope,
) -> Option<String> {
    if !hf.is_homestead_active_at_block(number)
        && env.kind().is_create()
        && x.error.is_none()
        && let (Some(out), Some(gas)) = (&x.output, x.gas_used)
        && 100 * out.len() as u64 > gas
    {
        let note = format!(
            "Frontier create whose code deposit ({} bytes) could not be paid: the tracer's \
             output is the init code's return data; no code was deployed, so the expected \
             output is empty",
            out.len()
        );
        x.output = Some(Bytes::new());
        return Some(note);
    }
    None
}

/// The synthetic block of a fixture: its one tx on the complete genesis state, under the
/// harness's conventions.
fn synthetic_block(
    label: &str,
    header: Header,
    tx: TxRecord,
    pre_state: StateMap,
    expected_tx: Option<ExpectedTx>,
    chain: ChainConfig,
    unsupported: Option<String>,
) -> BlockRecord {
    // fixtures share contexts: the label makes the synthetic hash unique
    let mut preimage = header.hash_slow().to_vec();
    preimage.extend_from_slice(label.as_bytes());
    let hash = keccak256(&preimage);
    BlockRecord {
        hash,
        header,
        transactions: vec![tx],
        ommers: vec![],
        ommers_missing: 0,
        withdrawals: None,
        pre_state,
        pre_state_is_full: true,
        block_hashes: BTreeMap::new(),
        expected: Expected {
            receipts: None,
            txs: vec![expected_tx],
            header_checks: false,
            ..Expected::default()
        },
        conventions: Conventions {
            rewards: false,
            system_calls: false,
            unknown_blockhash_is_zero: true,
            no_block_gas_limit: true,
        },
        chain: Some(chain),
        synthetic: true,
        label: Some(label.to_string()),
        unsupported,
        witness: None,
        case: None,
    }
}

#[cfg(test)]
mod tests;
