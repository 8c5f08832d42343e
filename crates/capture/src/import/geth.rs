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

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use alloy_consensus::{Header, Transaction, transaction::SignerRecoverable};
use alloy_eips::eip7840::BlobParams;
use alloy_hardforks::{EthereumHardfork as Fork, EthereumHardforks, ForkCondition};
use alloy_primitives::{Address, B256, Bytes, Log, U256, hex, keccak256};
use serde_json::{Map, Value};
use txshadow_corpus::{
    AccountState, BlockRecord, ChainConfig, Conventions, CorpusWriter, Expected, ExpectedTx,
    KECCAK_EMPTY, Provenance, StateMap, TxRecord, decode_tx, default_blob_schedule, parse_fork,
};

use super::{ImportError, ImportOptions, ImportSummary, common};

/// The SSTORE opcode.
const SSTORE: u8 = 0x55;

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
        let json: Value = common::read_json(&path)?;
        let fx = convert(&label, &json, &mut w).map_err(|e| ImportError::source(&path, e))?;
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

// ---------------------------------------------------------------------------------------------
// JSON helpers

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("missing `{key}`"))
}

/// A quantity: a JSON number, a decimal string or a `0x`-hex string.
fn quantity(v: &Value) -> Result<U256, String> {
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

fn quantity_u64(v: &Value) -> Result<u64, String> {
    let q = quantity(v)?;
    u64::try_from(q).map_err(|_| format!("quantity {q} does not fit 64 bits"))
}

fn opt_u64(v: &Value, key: &str) -> Result<Option<u64>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => quantity_u64(x)
            .map(Some)
            .map_err(|e| format!("`{key}`: {e}")),
    }
}

fn bytes(v: &Value) -> Result<Bytes, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("expected a hex string, found {v}"))?;
    hex::decode(s.trim())
        .map(Bytes::from)
        .map_err(|e| format!("bad hex {s:?}: {e}"))
}

fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| format!("bad {what} {s:?}: {e}"))
}

fn is_true(cfg: Option<&Value>, key: &str) -> bool {
    cfg.and_then(|c| c.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The genesis config with keys lower-cased (Go's JSON decoding is case-insensitive).
struct GethConfig(Map<String, Value>);

impl GethConfig {
    fn new(v: &Value) -> Result<Self, String> {
        let obj = v
            .as_object()
            .ok_or("genesis.config is not an object".to_string())?;
        Ok(Self(
            obj.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        ))
    }

    fn u64(&self, key: &str) -> Result<Option<u64>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => quantity_u64(v)
                .map(Some)
                .map_err(|e| format!("genesis.config.{key}: {e}")),
        }
    }

    /// Whether `terminalTotalDifficulty` is present and zero (geth's harness then sets
    /// `Random`, which makes the block post-merge).
    fn ttd_is_zero(&self) -> bool {
        match self.0.get("terminaltotaldifficulty") {
            Some(Value::Number(n)) => n.as_u64() == Some(0) || n.as_f64() == Some(0.0),
            Some(v @ Value::String(_)) => quantity(v).is_ok_and(|q| q.is_zero()),
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chain rules

/// Forks whose rules reach the EVM, in the order revm applies them cumulatively.
const EVM_FORKS: [Fork; 14] = [
    Fork::Homestead,
    Fork::Tangerine,
    Fork::SpuriousDragon,
    Fork::Byzantium,
    Fork::Constantinople,
    Fork::Petersburg,
    Fork::Istanbul,
    Fork::Berlin,
    Fork::London,
    Fork::Paris,
    Fork::Shanghai,
    Fork::Cancun,
    Fork::Prague,
    Fork::Osaka,
];

/// The chain config of a fixture, and why it cannot be replayed (if so).
struct Rules {
    chain: ChainConfig,
    merged: bool,
    unsupported: Option<String>,
    note: Option<String>,
}

fn blob_schedule(cfg: &GethConfig) -> Result<Vec<(Fork, BlobParams)>, String> {
    let Some(sched) = cfg.0.get("blobschedule") else {
        return Ok(default_blob_schedule());
    };
    let sched = sched
        .as_object()
        .ok_or("genesis.config.blobSchedule is not an object")?;
    let mut out = vec![];
    for (name, p) in sched {
        let Some(fork) = parse_fork(name) else {
            return Err(format!(
                "genesis.config.blobSchedule: unknown fork {name:?}"
            ));
        };
        let base = match fork {
            Fork::Cancun => BlobParams::cancun(),
            Fork::Prague => BlobParams::prague(),
            Fork::Osaka => BlobParams::osaka(),
            Fork::Bpo1 => BlobParams::bpo1(),
            Fork::Bpo2 => BlobParams::bpo2(),
            _ => BlobParams::osaka(),
        };
        let get = |k: &str| -> Result<Option<u64>, String> {
            opt_u64(p, k).map_err(|e| format!("genesis.config.blobSchedule.{name}: {e}"))
        };
        let mut params = base;
        if let Some(t) = get("target")? {
            params.target_blob_count = t;
        }
        if let Some(m) = get("max")? {
            params.max_blob_count = m;
            if base.max_blobs_per_tx == base.max_blob_count {
                // before Osaka a tx may carry as many blobs as a block
                params.max_blobs_per_tx = m;
            }
        }
        if let Some(f) = get("baseFeeUpdateFraction")? {
            params.update_fraction = f as u128;
        }
        out.push((fork, params));
    }
    out.sort_by_key(|(f, _)| *f as usize);
    Ok(out)
}

/// Builds the fork schedule as geth's harness sees it and checks that revm can express it at the
/// traced block. `may_sstore` is asked only when Constantinople is active without Petersburg.
fn chain_rules(
    cfg: &GethConfig,
    number: u64,
    timestamp: u64,
    may_sstore: impl FnOnce() -> bool,
) -> Result<Rules, String> {
    let chain_id = cfg.u64("chainid")?.ok_or("genesis.config has no chainId")?;
    let mut forks: Vec<(Fork, ForkCondition)> = vec![(Fork::Frontier, ForkCondition::Block(0))];
    for (fork, key) in [
        (Fork::Homestead, "homesteadblock"),
        (Fork::Tangerine, "eip150block"),
        // EIP-155 (eip155Block) only changes signing; the EVM rules follow eip158Block
        (Fork::SpuriousDragon, "eip158block"),
        (Fork::Byzantium, "byzantiumblock"),
        (Fork::Constantinople, "constantinopleblock"),
        (Fork::Petersburg, "petersburgblock"),
        (Fork::Istanbul, "istanbulblock"),
        (Fork::MuirGlacier, "muirglacierblock"),
        (Fork::Berlin, "berlinblock"),
        (Fork::London, "londonblock"),
        (Fork::ArrowGlacier, "arrowglacierblock"),
        (Fork::GrayGlacier, "grayglacierblock"),
    ] {
        if let Some(b) = cfg.u64(key)? {
            forks.push((fork, ForkCondition::Block(b)));
        }
    }
    // geth: IsPetersburg = petersburgBlock reached, or no petersburgBlock and Constantinople
    let petersburg = forks.iter().any(|(f, _)| *f == Fork::Petersburg);
    if !petersburg
        && let Some(c) = forks
            .iter()
            .find(|(f, _)| *f == Fork::Constantinople)
            .map(|(_, c)| *c)
    {
        forks.push((Fork::Petersburg, c));
    }
    let merged = cfg.ttd_is_zero();
    if merged {
        forks.push((Fork::Paris, ForkCondition::Block(0)));
        for (fork, key) in [
            (Fork::Shanghai, "shanghaitime"),
            (Fork::Cancun, "cancuntime"),
            (Fork::Prague, "praguetime"),
            (Fork::Osaka, "osakatime"),
            (Fork::Bpo1, "bpo1time"),
            (Fork::Bpo2, "bpo2time"),
        ] {
            if let Some(t) = cfg.u64(key)? {
                forks.push((fork, ForkCondition::Timestamp(t)));
            }
        }
    }
    forks.sort_by_key(|(f, _)| *f as usize);
    let active = |forks: &[(Fork, ForkCondition)], f: Fork| {
        forks.iter().any(|(g, c)| {
            *g == f && (c.active_at_block(number) || c.active_at_timestamp(timestamp))
        })
    };
    let mut unsupported = None;
    let mut note = None;
    if active(&forks, Fork::Constantinople) && !active(&forks, Fork::Petersburg) {
        if may_sstore() {
            unsupported = Some(format!(
                "Constantinople without Petersburg at block {number}: geth meters SSTORE with \
                 EIP-1283, which revm does not implement, and this fixture's code can execute \
                 SSTORE"
            ));
        } else {
            // EIP-1283 only changes SSTORE, which no code of the fixture contains
            let c = forks
                .iter()
                .find(|(f, _)| *f == Fork::Constantinople)
                .map(|(_, c)| *c)
                .expect("active");
            for (f, cond) in forks.iter_mut() {
                if *f == Fork::Petersburg {
                    *cond = c;
                }
            }
            note = Some(format!(
                "Constantinople without Petersburg at block {number}: replayed under Petersburg \
                 (EIP-1283 changes only SSTORE, which no code of the fixture contains)"
            ));
        }
    }
    if unsupported.is_none() {
        let mut first_inactive: Option<Fork> = None;
        for f in EVM_FORKS {
            match (active(&forks, f), first_inactive) {
                (false, None) => first_inactive = Some(f),
                (true, Some(missing)) => {
                    unsupported = Some(format!(
                        "fork schedule is not cumulative at block {number} (timestamp \
                         {timestamp}): {f:?} is active but {missing:?} is not, which revm cannot \
                         express"
                    ));
                    break;
                }
                _ => {}
            }
        }
    }
    let chain = ChainConfig {
        chain_id,
        name: format!("geth-tracetest chain {chain_id}"),
        forks,
        deposit_contract: None,
        blob_schedule: blob_schedule(cfg)?,
    };
    Ok(Rules {
        chain,
        merged,
        unsupported,
        note,
    })
}

/// Whether `code` contains `op` as an instruction (a linear sweep that skips PUSH data).
fn has_opcode(code: &[u8], op: u8) -> bool {
    let mut i = 0;
    while i < code.len() {
        let b = code[i];
        if b == op {
            return true;
        }
        if (0x60..=0x7f).contains(&b) {
            i += (b - 0x5f) as usize;
        }
        i += 1;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Expected results

/// A call frame's logs in emission order: logs interleaved with sub-calls by `position`; a frame
/// with an error is reverted together with its sub-calls.
fn frame_logs(frame: &Value, out: &mut Vec<Log>) -> Result<(), String> {
    if frame.get("error").is_some_and(|e| !e.is_null()) {
        return Ok(());
    }
    let mut logs = vec![];
    for l in frame
        .get("logs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let address: Address = parse(
            field(l, "address")?.as_str().ok_or("log address")?,
            "log address",
        )?;
        let topics = l
            .get("topics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| parse::<B256>(t.as_str().unwrap_or_default(), "log topic"))
            .collect::<Result<Vec<_>, _>>()?;
        let data = match l.get("data") {
            Some(d) if !d.is_null() => bytes(d)?,
            _ => Bytes::new(),
        };
        let position = opt_u64(l, "position")?.unwrap_or(0);
        logs.push((position, Log::new_unchecked(address, topics, data)));
    }
    // stable: logs at the same position keep their order
    logs.sort_by_key(|(p, _)| *p);
    let mut logs = logs.into_iter().peekable();
    let calls = frame
        .get("calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, call) in calls.iter().enumerate() {
        while let Some((_, l)) = logs.next_if(|(p, _)| *p <= i as u64) {
            out.push(l);
        }
        frame_logs(call, out)?;
    }
    out.extend(logs.map(|(_, l)| l));
    Ok(())
}

/// What a callTracer-like top frame (callTracer, legacy JS callTracer, erc7562Tracer) records.
fn expected_from_frame(top: &Value, tracer_cfg: Option<&Value>) -> Result<ExpectedTx, String> {
    let error = top.get("error").and_then(Value::as_str).map(str::to_string);
    let output = match top.get("output") {
        Some(o) if !o.is_null() => bytes(o)?,
        _ => Bytes::new(),
    };
    let logs = if is_true(tracer_cfg, "withLog") && !is_true(tracer_cfg, "onlyTopCall") {
        let mut logs = vec![];
        frame_logs(top, &mut logs)?;
        Some(logs)
    } else {
        None
    };
    Ok(ExpectedTx {
        status: Some(error.is_none()),
        gas_used: opt_u64(top, "gasUsed")?,
        output: Some(output),
        error,
        logs,
        post_state: None,
    })
}

/// What a flatCallTracer's top trace records.
fn expected_from_flat(top: &Value) -> Result<ExpectedTx, String> {
    let error = top.get("error").and_then(Value::as_str).map(str::to_string);
    let mut x = ExpectedTx {
        status: Some(error.is_none()),
        error,
        ..Default::default()
    };
    if let Some(res) = top.get("result").filter(|r| r.get("gasUsed").is_some()) {
        x.gas_used = opt_u64(res, "gasUsed")?;
        let key = if top.get("type").and_then(Value::as_str) == Some("create") {
            "code"
        } else {
            "output"
        };
        x.output = Some(match res.get(key) {
            Some(o) if !o.is_null() => bytes(o)?,
            _ => Bytes::new(),
        });
    }
    Ok(x)
}

/// The post-state of a prestateTracer diff: `post` merged over the genesis account.
fn expected_from_diff(
    result: &Value,
    pre_state: &StateMap,
    tracer_cfg: Option<&Value>,
) -> Result<ExpectedTx, String> {
    let obj = |k: &str| -> Result<&Map<String, Value>, String> {
        field(result, k)?
            .as_object()
            .ok_or_else(|| format!("result.{k} is not an object"))
    };
    let (pre, post) = (obj("pre")?, obj("post")?);
    let storage_kept = !is_true(tracer_cfg, "disableStorage");
    let mut out = StateMap::new();
    for (a, p) in post {
        let addr: Address = parse(a, "address")?;
        let mut acc = pre_state
            .get(&addr)
            .cloned()
            .flatten()
            .unwrap_or_else(|| AccountState {
                code_hash: KECCAK_EMPTY,
                ..Default::default()
            });
        // only the slots the diff names are expectations
        acc.storage.clear();
        if let Some(b) = p.get("balance") {
            acc.balance = quantity(b).map_err(|e| format!("post.{a}.balance: {e}"))?;
        }
        if let Some(n) = p.get("nonce") {
            acc.nonce = quantity_u64(n).map_err(|e| format!("post.{a}.nonce: {e}"))?;
        }
        if let Some(h) = p.get("codeHash") {
            let h: B256 = parse(h.as_str().unwrap_or_default(), "codeHash")?;
            acc.code_hash = if h == B256::ZERO { KECCAK_EMPTY } else { h };
        } else if let Some(c) = p.get("code") {
            acc.code_hash = keccak256(bytes(c)?);
        }
        if storage_kept {
            // a changed slot that is in `pre` but not in `post` became zero
            let changed = pre
                .get(a)
                .and_then(|x| x.get("storage"))
                .and_then(Value::as_object);
            for k in changed.into_iter().flat_map(|m| m.keys()) {
                acc.storage.insert(parse(k, "slot")?, U256::ZERO);
            }
            for (k, v) in p
                .get("storage")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                acc.storage.insert(
                    parse(k, "slot")?,
                    quantity(v).map_err(|e| format!("post.{a}.storage.{k}: {e}"))?,
                );
            }
        }
        out.insert(addr, Some(acc));
    }
    // an account in `pre` but not in `post` was deleted
    for a in pre.keys().filter(|a| !post.contains_key(*a)) {
        out.insert(parse(a, "address")?, None);
    }
    // a diff lists every account the tx changed: any other genesis account is unchanged, slots
    // included (an account's storage is wiped only by a selfdestruct or a creation, both listed)
    // unless the tracer ignored storage
    for (addr, acc) in pre_state {
        if let (false, Some(acc)) = (out.contains_key(addr), acc) {
            let mut acc = acc.clone();
            if !storage_kept {
                acc.storage.clear();
            }
            out.insert(*addr, Some(acc));
        }
    }
    Ok(ExpectedTx {
        post_state: Some(out),
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------------------------
// One fixture

fn convert(label: &str, json: &Value, w: &mut CorpusWriter) -> Result<Converted, String> {
    let genesis = field(json, "genesis")?;
    let ctx = field(json, "context")?;
    let cfg = GethConfig::new(field(genesis, "config")?)?;
    let tracer_cfg = json.get("tracerConfig").filter(|c| !c.is_null());
    let result = field(json, "result")?;

    // the transaction
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

    // the pre-state: the genesis alloc, complete
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

    // the block context
    let number = quantity_u64(field(ctx, "number")?).map_err(|e| format!("context.number: {e}"))?;
    let timestamp =
        quantity_u64(field(ctx, "timestamp")?).map_err(|e| format!("context.timestamp: {e}"))?;
    let may_sstore = || {
        codes.iter().any(|c| has_opcode(c, SSTORE))
            || if env.kind().is_create() {
                has_opcode(env.input(), SSTORE)
            } else {
                // calldata could be deployed as code: any 0x55 byte counts
                env.input().contains(&SSTORE)
            }
    };
    let rules = chain_rules(&cfg, number, timestamp, may_sstore)?;
    let mut unsupported = rules.unsupported;
    let hf = rules.chain.hardforks();
    let london = hf.is_london_active_at_block(number);
    let base_fee = match ctx.get("baseFeePerGas") {
        Some(b) if london => {
            Some(quantity_u64(b).map_err(|e| format!("context.baseFeePerGas: {e}"))?)
        }
        _ => None,
    };
    if london && base_fee.is_none() && unsupported.is_none() {
        unsupported = Some("London is active but the context has no baseFeePerGas".into());
    }
    let mut notes: Vec<String> = rules.note.into_iter().collect();
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
    let mix_hash = if rules.merged {
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

    // what the tracer recorded
    let mut expected_tx = if result.is_array() {
        let top = result
            .get(0)
            .ok_or("result: an empty flat trace has no top call")?;
        Some(expected_from_flat(top)?)
    } else if result.get("type").is_some() && result.get("from").is_some() {
        Some(expected_from_frame(result, tracer_cfg)?)
    } else if is_true(tracer_cfg, "diffMode") {
        Some(expected_from_diff(result, &pre_state, tracer_cfg)?)
    } else {
        // prestate without diff: only what the tx read
        None
    };

    // A Frontier create whose code deposit (200 gas a byte) cannot be paid succeeds with empty
    // code, but geth's tracer still shows the init code's return data as the output. A
    // successful deposit costs at least 200 gas a byte before refunds, so at least 100 a byte
    // after the (at most half) refund: a receipt gas below that proves the deposit failed, and
    // the deployed code (the tx's output) is empty.
    if let Some(x) = expected_tx.as_mut()
        && !hf.is_homestead_active_at_block(number)
        && env.kind().is_create()
        && x.error.is_none()
        && let (Some(out), Some(gas)) = (&x.output, x.gas_used)
        && 100 * out.len() as u64 > gas
    {
        notes.push(format!(
            "Frontier create whose code deposit ({} bytes) could not be paid: the tracer's \
             output is the init code's return data; no code was deployed, so the expected \
             output is empty",
            out.len()
        ));
        x.output = Some(Bytes::new());
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
    // fixtures share contexts: the label makes the synthetic hash unique
    let mut preimage = header.hash_slow().to_vec();
    preimage.extend_from_slice(label.as_bytes());
    let hash = keccak256(&preimage);

    let block = BlockRecord {
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
            post_state: None,
            header_checks: false,
        },
        conventions: Conventions {
            rewards: false,
            system_calls: false,
            unknown_blockhash_is_zero: true,
            no_block_gas_limit: true,
        },
        chain: Some(rules.chain),
        synthetic: true,
        label: Some(label.to_string()),
        unsupported,
    };
    Ok(Converted { block, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity(&Value::from(7)).unwrap(), U256::from(7));
        assert_eq!(quantity(&Value::from("0x1f")).unwrap(), U256::from(31));
        assert_eq!(quantity(&Value::from("31")).unwrap(), U256::from(31));
        assert_eq!(quantity(&Value::from("0x")).unwrap(), U256::ZERO);
        assert!(quantity(&Value::from("x1")).is_err());
    }

    fn cfg(json: &str) -> GethConfig {
        GethConfig::new(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn schedule_follows_geth_rules() {
        // timestamp forks need terminalTotalDifficulty 0 (geth's isMerge); keys are case-blind
        let c = cfg(
            r#"{"chainId":5,"homesteadBlock":0,"eip150Block":0,"eip158Block":0,
            "byzantiumBlock":0,"constantinopleBlock":0,"petersburgBlock":0,"IstanbulBlock":"0x10",
            "berlinBlock":0,"londonBlock":0,"shanghaiTime":0}"#,
        );
        let r = chain_rules(&c, 20, 1, || unreachable!()).unwrap();
        assert!(r.unsupported.is_none() && !r.merged);
        assert_eq!(r.chain.activation(Fork::Istanbul), ForkCondition::Block(16));
        assert_eq!(r.chain.activation(Fork::Shanghai), ForkCondition::Never);
        // a later fork without an earlier one cannot be expressed
        let c = cfg(r#"{"chainId":1,"homesteadBlock":100,"byzantiumBlock":0}"#);
        let r = chain_rules(&c, 50, 1, || unreachable!()).unwrap();
        assert!(r.unsupported.unwrap().contains("not cumulative"));
        // Constantinople without Petersburg: Petersburg when no SSTORE can run, else unsupported
        let c = cfg(
            r#"{"chainId":63,"homesteadBlock":0,"eip150Block":0,"eip158Block":0,
            "byzantiumBlock":0,"constantinopleBlock":10,"petersburgBlock":99}"#,
        );
        let r = chain_rules(&c, 50, 1, || false).unwrap();
        assert!(r.unsupported.is_none() && r.note.is_some());
        assert_eq!(
            r.chain.activation(Fork::Petersburg),
            ForkCondition::Block(10)
        );
        let r = chain_rules(&c, 50, 1, || true).unwrap();
        assert!(r.unsupported.unwrap().contains("EIP-1283"));
        // no petersburgBlock: Petersburg comes with Constantinople
        let c = cfg(
            r#"{"chainId":1,"homesteadBlock":0,"eip150Block":0,"eip158Block":0,
            "byzantiumBlock":0,"constantinopleBlock":10}"#,
        );
        let r = chain_rules(&c, 50, 1, || unreachable!()).unwrap();
        assert_eq!(
            r.chain.activation(Fork::Petersburg),
            ForkCondition::Block(10)
        );
    }

    #[test]
    fn diff_post_merges_over_genesis() {
        let a1 = Address::repeat_byte(1);
        let a2 = Address::repeat_byte(2);
        let a3 = Address::repeat_byte(3);
        let mut genesis = StateMap::new();
        let acc = |balance: u64, storage: &[(u64, u64)]| AccountState {
            balance: U256::from(balance),
            nonce: 1,
            code_hash: KECCAK_EMPTY,
            storage: storage
                .iter()
                .map(|(k, v)| (U256::from(*k), U256::from(*v)))
                .collect(),
        };
        genesis.insert(a1, Some(acc(10, &[(1, 5), (2, 6)])));
        genesis.insert(a2, Some(acc(20, &[])));
        genesis.insert(a3, Some(acc(30, &[(7, 8)])));
        let slot = |n: u8| format!("0x{n:064x}");
        let result: Value = serde_json::json!({
            "pre": {
                a1.to_string(): {"balance": "0xa", "nonce": 1, "storage": {slot(1): slot(5)}},
                a2.to_string(): {"balance": "0x14", "nonce": 1}
            },
            "post": {
                a1.to_string(): {"balance": "0x9", "storage": {slot(3): slot(9)}}
            }
        });
        let x = expected_from_diff(&result, &genesis, None).unwrap();
        let post = x.post_state.unwrap();
        // changed: balance from post, nonce kept, slot 1 cleared, slot 3 set, slot 2 not named
        let p1 = post[&a1].as_ref().unwrap();
        assert_eq!((p1.balance, p1.nonce), (U256::from(9), 1));
        assert_eq!(
            p1.storage,
            BTreeMap::from([(U256::from(1), U256::ZERO), (U256::from(3), U256::from(9))])
        );
        // in pre, not in post: deleted; untouched genesis account: unchanged, slots included
        assert_eq!(post[&a2], None);
        assert_eq!(post[&a3], genesis[&a3]);
    }

    #[test]
    fn opcode_sweep_skips_push_data() {
        // PUSH1 0x55, STOP: no SSTORE
        assert!(!has_opcode(&[0x60, 0x55, 0x00], SSTORE));
        // PUSH1 1, PUSH1 0, SSTORE
        assert!(has_opcode(&[0x60, 0x01, 0x60, 0x00, 0x55], SSTORE));
    }

    #[test]
    fn logs_interleave_with_calls_by_position() {
        let frame: Value = serde_json::from_str(
            r#"{"logs":[{"address":"0x0000000000000000000000000000000000000001","topics":[],"data":"0x01","position":"0x1"},
                        {"address":"0x0000000000000000000000000000000000000001","topics":[],"data":"0x00","position":"0x0"}],
                "calls":[{"logs":[{"address":"0x0000000000000000000000000000000000000002","topics":[],"data":"0x02","position":"0x0"}]},
                         {"error":"execution reverted","logs":[{"address":"0x0000000000000000000000000000000000000003","topics":[],"data":"0x03","position":"0x0"}]}]}"#,
        )
        .unwrap();
        let mut out = vec![];
        frame_logs(&frame, &mut out).unwrap();
        let data: Vec<u8> = out.iter().map(|l| l.data.data[0]).collect();
        assert_eq!(data, vec![0, 2, 1]);
    }
}
