//! Blockchain tests (ethereum/tests `BlockchainTests`, EEST `blockchain_test` and
//! `blockchain_test_engine`): a genesis (`genesisRLP`, or `genesisBlockHeader`), its complete
//! state (`pre`), blocks as RLP or as `engineNewPayloads` (each header rebuilt from its payload
//! and sidecar and checked against the payload's `blockHash`), and what the chain must end in
//! (`lastblockhash`, `postState` or `postStateHash`).
//!
//! Each case is a chain of its own: its schedule comes from `network` (transition networks
//! included), its chain id and blob schedule from `config`. The canonical chain is the one
//! `lastblockhash` picks; every block of it is written with the full state before it, derived
//! by executing the chain and held to every header (see [`crate::chain`]). The last block also
//! carries `postState` as its expected post-state, so the replay checks it account by account
//! (a `postStateHash` is its header's state root, which every replay checks).
//!
//! A block the test expects to be invalid (`expectException`, `validationError`) is written on
//! its parent's verified state with the test's reason: its replay must reject it, by a header
//! rule against the parent or by what its txs give (see `txshadow_replay::check_header`). One
//! that cannot even be decoded, or whose body does not match its header, is rejected here, as
//! the test expects, and not written. Not checked yet, and so counted as skipped with the
//! reason, never as passed: blocks off the canonical chain, and invalid blocks built on them.

use std::collections::{BTreeMap, HashMap};

use alloy_consensus::Block;
use alloy_primitives::{B256, Bytes};
use serde::Deserialize;
use txshadow_corpus::{BlockRecord, ChainConfig, CorpusWriter, StateMap, SuiteCase};
use txshadow_replay::Codes;

use super::{FixtureConfig, FixtureState, SuiteFile, full_state, network_chain, parse_network};
use crate::{
    ImportError, ImportOptions, ImportSummary,
    chain::{ChainBlock, Derivation, check_block, decode_block, derive_chain},
    common,
};

/// A blockchain test fixture.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockchainTest {
    #[serde(rename = "genesisRLP", default)]
    genesis_rlp: Option<Bytes>,
    #[serde(default)]
    genesis_block_header: Option<serde_json::Value>,
    pre: FixtureState,
    #[serde(default)]
    blocks: Vec<FixtureBlock>,
    #[serde(default)]
    engine_new_payloads: Vec<EnginePayload>,
    lastblockhash: B256,
    #[serde(default)]
    post_state: Option<FixtureState>,
    #[serde(default)]
    post_state_hash: Option<B256>,
    network: String,
    #[serde(default)]
    config: Option<FixtureConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixtureBlock {
    rlp: Bytes,
    #[serde(default)]
    expect_exception: Option<String>,
}

/// One `engine_newPayload` call of a `blockchain_test_engine` fixture.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnginePayload {
    /// `[executionPayload, blobVersionedHashes?, parentBeaconBlockRoot?, executionRequests?]`.
    params: Vec<serde_json::Value>,
    #[serde(default)]
    validation_error: Option<String>,
}

/// Imports every blockchain test under `inputs`.
pub(crate) fn import(
    inputs: &[std::path::PathBuf],
    out: &std::path::Path,
    opts: &ImportOptions,
    prov: txshadow_corpus::Provenance,
) -> Result<ImportSummary, ImportError> {
    super::import_suite(
        inputs,
        "blockchain test",
        out,
        opts,
        prov,
        "blockchain tests: each case a chain of its own (schedule from `network`), its blocks \
             with the full state before them, derived from `pre` and held to every header",
        import_file,
    )
}

fn import_file(
    f: &SuiteFile,
    w: &mut CorpusWriter,
    codes: &mut Codes,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let tests: BTreeMap<String, BlockchainTest> = common::read_json(&f.path)?;
    for (name, t) in &tests {
        let case = SuiteCase {
            id: format!("{}::{name}", f.stem()),
            folder: f.folder.clone(),
            fork: t.network.clone(),
        };
        match import_case(t, case, &f.path, w, codes, summary) {
            Ok(()) => {}
            // a malformed case is listed and the others go on; a failed write stops the import
            Err(CaseError::Fixture(why)) => summary
                .failed
                .push((f.path.clone(), format!("{name}: {why}"))),
            Err(CaseError::Import(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Why a case cannot be imported: a malformed fixture, or a write that failed.
enum CaseError {
    Fixture(String),
    Import(ImportError),
}

impl From<ImportError> for CaseError {
    fn from(e: ImportError) -> Self {
        Self::Import(e)
    }
}

impl From<String> for CaseError {
    fn from(s: String) -> Self {
        Self::Fixture(s)
    }
}

fn import_case(
    t: &BlockchainTest,
    case: SuiteCase,
    path: &std::path::Path,
    w: &mut CorpusWriter,
    codes: &mut Codes,
    summary: &mut ImportSummary,
) -> Result<(), CaseError> {
    let network =
        parse_network(&t.network).ok_or_else(|| format!("unknown network {:?}", t.network))?;
    let genesis = genesis(t)?;
    let Blocks {
        canonical,
        invalid,
        skipped,
    } = canonical_chain(t, &genesis)?;
    let first_zero = canonical
        .iter()
        .map(|b| &b.block.header)
        .find(|h| h.difficulty.is_zero())
        .map(|h| h.number);
    let default = FixtureConfig::default();
    let config = t.config.as_ref().unwrap_or(&default);
    let (chain, unsupported) = network_chain(&network, config, first_zero);

    let pre = full_state(&t.pre, w, codes)?;
    let pre_root = txshadow_replay::state_root(&pre);
    if pre_root != genesis.block.header.state_root {
        return Err(CaseError::Fixture(format!(
            "pre hashes to state root {pre_root}, the genesis header says {}",
            genesis.block.header.state_root
        )));
    }
    for (b, why) in skipped {
        write_skipped(w, &chain, &case, b, why, summary)?;
    }
    if let Some(why) = unsupported {
        for b in canonical {
            write_skipped(w, &chain, &case, b, why.clone(), summary)?;
        }
        return Ok(());
    }
    let expected_post = t
        .post_state
        .as_ref()
        .map(|post| expected_post_state(&pre, post));
    if let (Some(h), Some(last)) = (t.post_state_hash, canonical.last())
        && h != last.block.header.state_root
    {
        return Err(CaseError::Fixture(format!(
            "postStateHash {h} is not the state root of the last block {}",
            last.block.header.state_root
        )));
    }
    let hashes = BTreeMap::from([(genesis.block.header.number, genesis.hash)]);
    let id = case.id.clone();
    // the chain each expected-invalid block builds on: its parent's header, hash and ancestors
    let mut headers: HashMap<B256, alloy_consensus::Header> =
        HashMap::from([(genesis.hash, genesis.block.header.clone())]);
    headers.extend(canonical.iter().map(|b| (b.hash, b.block.header.clone())));
    let d = Derivation {
        chain: &chain,
        chain_per_block: true,
        case: Some(case.clone()),
        source: path,
        last_post_state: expected_post,
        keep_states: invalid
            .iter()
            .map(|(b, _)| b.block.header.parent_hash)
            .collect(),
    };
    let written = summary.blocks;
    let mut states = derive_chain(w, &d, pre.clone(), codes, hashes, canonical, summary)?;
    states.insert(genesis.hash, pre);
    for (b, reason) in invalid {
        let parent = b.block.header.parent_hash;
        match (headers.get(&parent), states.get(&parent)) {
            (Some(ph), Some(state)) => {
                let ancestors = ancestors(&headers, parent);
                write_invalid(
                    w,
                    &chain,
                    &case,
                    b,
                    reason,
                    ph.clone(),
                    state,
                    ancestors,
                    summary,
                )?;
            }
            _ => write_skipped(
                w,
                &chain,
                &case,
                b,
                format!(
                    "the test expects this block to be invalid ({reason}), and its parent is not \
                     a verified block of the canonical chain: not replayed"
                ),
                summary,
            )?,
        }
    }
    if summary.blocks == written {
        // a block is stored once by its hash: a case whose blocks another case already wrote
        // (the same genesis and blocks) is replayed and counted as that case
        w.add_note(format!(
            "{id}: its blocks are those of another case of the import, stored and replayed once \
             under that case"
        ));
    }
    Ok(())
}

/// A case's blocks, by what is done with them.
struct Blocks {
    /// The chain `lastblockhash` picks, from the genesis on.
    canonical: Vec<ChainBlock>,
    /// Blocks the test expects to be invalid, each with the test's reason.
    invalid: Vec<(ChainBlock, String)>,
    /// Blocks not replayed, each with why.
    skipped: Vec<(ChainBlock, String)>,
}

/// The blocks `lastblockhash` picks, in order from the genesis, and the others with why they
/// are not replayed.
fn canonical_chain(t: &BlockchainTest, genesis: &ChainBlock) -> Result<Blocks, CaseError> {
    let mut by_hash: HashMap<B256, ChainBlock> = HashMap::new();
    let (mut skipped, mut invalid) = (vec![], vec![]);
    let given = t
        .blocks
        .iter()
        .map(|b| (decode_block(&b.rlp), b.expect_exception.clone()))
        .chain(
            t.engine_new_payloads
                .iter()
                .map(|p| (payload_block(p), p.validation_error.clone())),
        );
    for (i, (decoded, expect)) in given.enumerate() {
        match (decoded, expect) {
            (Ok(cb), None) => {
                by_hash.insert(cb.hash, cb);
            }
            (Ok(cb), Some(x)) => invalid.push((cb, x)),
            // an invalid block that cannot even be decoded is rejected, as the test expects
            (Err(_), Some(_)) => {}
            (Err(e), None) => return Err(format!("block {i}: {e}").into()),
        }
    }
    let mut chain = vec![];
    let mut at = t.lastblockhash;
    while at != genesis.hash {
        let Some(b) = by_hash.remove(&at) else {
            return Err(format!(
                "lastblockhash {} does not lead back to the genesis: block {at} is missing",
                t.lastblockhash
            )
            .into());
        };
        at = b.block.header.parent_hash;
        chain.push(b);
    }
    chain.reverse();
    skipped.extend(by_hash.into_values().map(|b| {
        (
            b,
            "not on the canonical chain (the one lastblockhash picks); side branches are not \
             replayed yet"
                .to_string(),
        )
    }));
    Ok(Blocks {
        canonical: chain,
        invalid,
        skipped,
    })
}

/// The hashes BLOCKHASH may read from a block built on `parent`: its 256 nearest ancestors.
fn ancestors(
    headers: &HashMap<B256, alloy_consensus::Header>,
    parent: B256,
) -> BTreeMap<u64, B256> {
    let mut out = BTreeMap::new();
    let mut at = parent;
    while let Some(h) = headers.get(&at) {
        out.insert(h.number, at);
        if out.len() as u64 >= crate::chain::BLOCKHASH_WINDOW || h.number == 0 {
            break;
        }
        at = h.parent_hash;
    }
    out
}

/// A block the test expects to be invalid, on its parent's verified full state: its replay
/// must reject it (a header rule, an invalid tx, or a root, bloom or gas its txs do not give).
#[allow(clippy::too_many_arguments)]
fn write_invalid(
    w: &mut CorpusWriter,
    chain: &ChainConfig,
    case: &SuiteCase,
    b: ChainBlock,
    reason: String,
    parent: alloy_consensus::Header,
    state: &crate::chain::FullState,
    block_hashes: BTreeMap<u64, B256>,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let ChainBlock { hash, block, txs } = b;
    let Block { header, body } = block;
    let mut rec = BlockRecord {
        chain: Some(chain.clone()),
        label: Some(case.id.clone()),
        case: Some(case.clone()),
        ommers: body.ommers,
        withdrawals: body.withdrawals.map(|w| w.into_inner()),
        pre_state: state.iter().map(|(a, s)| (*a, Some(s.clone()))).collect(),
        pre_state_is_full: true,
        block_hashes,
        ..BlockRecord::new(hash, header, txs)
    };
    rec.expected.invalid_block = Some(txshadow_corpus::InvalidBlock { reason, parent });
    if w.has_block(&rec.hash) {
        summary.skipped_existing += 1;
        return Ok(());
    }
    summary.blocks += 1;
    summary.txs += rec.transactions.len();
    Ok(w.put_block_deferred(&rec)?)
}

/// The genesis block: `genesisRLP`, or (engine fixtures) `genesisBlockHeader` whose fields
/// must hash to its `hash`.
fn genesis(t: &BlockchainTest) -> Result<ChainBlock, CaseError> {
    if let Some(rlp) = &t.genesis_rlp {
        return Ok(decode_block(rlp).map_err(|e| format!("genesisRLP: {e}"))?);
    }
    let v = t
        .genesis_block_header
        .as_ref()
        .ok_or_else(|| "neither genesisRLP nor genesisBlockHeader".to_string())?;
    let (header, hash) = fixture_header(v).map_err(|e| format!("genesisBlockHeader: {e}"))?;
    // a genesis has no txs or ommers, and no withdrawals where its header has a root for them
    let body = alloy_consensus::BlockBody {
        withdrawals: header.withdrawals_root.map(|_| Default::default()),
        ..Default::default()
    };
    let block = Block { header, body };
    Ok(check_block(block, hash).map_err(|e| format!("genesisBlockHeader: {e}"))?)
}

/// A header in the suites' JSON (`uncleHash`, `coinbase`, `transactionsTrie`, `receiptTrie`,
/// `bloom`, the other fields as in JSON-RPC) and the `hash` it carries.
fn fixture_header(v: &serde_json::Value) -> Result<(alloy_consensus::Header, B256), String> {
    let mut m = v.as_object().ok_or("not an object")?.clone();
    for (from, to) in [
        ("uncleHash", "sha3Uncles"),
        ("coinbase", "miner"),
        ("transactionsTrie", "transactionsRoot"),
        ("receiptTrie", "receiptsRoot"),
        ("bloom", "logsBloom"),
    ] {
        if let Some(x) = m.remove(from) {
            m.insert(to.into(), x);
        }
    }
    let hash: B256 = m
        .remove("hash")
        .ok_or("no hash")
        .and_then(|h| serde_json::from_value(h).map_err(|_| "hash is not 32 bytes"))?;
    let header = serde_json::from_value(serde_json::Value::Object(m)).map_err(|e| e.to_string())?;
    Ok((header, hash))
}

/// The block of an `engine_newPayload` call: the header rebuilt from the payload and its
/// sidecar (versioned hashes, parent beacon block root, execution requests), which must hash to
/// the payload's `blockHash`; the versioned hashes must be the txs' own.
fn payload_block(p: &EnginePayload) -> Result<ChainBlock, String> {
    use alloy_rpc_types_engine::{
        CancunPayloadFields, ExecutionPayload, ExecutionPayloadSidecar, PraguePayloadFields,
    };
    let param = |i: usize| p.params.get(i).cloned();
    let payload: ExecutionPayload = serde_json::from_value(param(0).ok_or("no payload")?)
        .map_err(|e| format!("executionPayload: {e}"))?;
    let hashes: Option<Vec<B256>> = param(1)
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("blobVersionedHashes: {e}"))?;
    let beacon: Option<B256> = param(2)
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("parentBeaconBlockRoot: {e}"))?;
    let requests: Option<Vec<Bytes>> = param(3)
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("executionRequests: {e}"))?;
    let sidecar = match (beacon, requests) {
        (Some(root), None) => ExecutionPayloadSidecar::v3(CancunPayloadFields::new(
            root,
            hashes.clone().unwrap_or_default(),
        )),
        (Some(root), Some(r)) => ExecutionPayloadSidecar::v4(
            CancunPayloadFields::new(root, hashes.clone().unwrap_or_default()),
            PraguePayloadFields::new(alloy_eips::eip7685::Requests::new(r)),
        ),
        (None, _) => ExecutionPayloadSidecar::none(),
    };
    let hash = payload.block_hash();
    let block = payload
        .try_into_block_with_sidecar::<alloy_consensus::TxEnvelope>(&sidecar)
        .map_err(|e| format!("payload {hash}: {e}"))?;
    if let Some(want) = hashes {
        let got: Vec<B256> = block
            .body
            .transactions
            .iter()
            .filter_map(|tx| alloy_consensus::Transaction::blob_versioned_hashes(tx))
            .flatten()
            .copied()
            .collect();
        if got != want {
            return Err(format!(
                "payload {hash}: its blob txs carry versioned hashes {got:?}, the call gives {want:?}"
            ));
        }
    }
    check_block(block, hash)
}

/// The expected post-state: every account of `post`, and every account of `pre` that `post`
/// lacks as deleted.
fn expected_post_state(pre: &crate::chain::FullState, post: &FixtureState) -> StateMap {
    let post = super::state_of(post);
    let mut out: StateMap = post.into_iter().map(|(a, s)| (a, Some(s))).collect();
    for a in pre.keys() {
        out.entry(*a).or_insert(None);
    }
    out
}

/// A block written as skipped, with its reason.
fn write_skipped(
    w: &mut CorpusWriter,
    chain: &ChainConfig,
    case: &SuiteCase,
    b: ChainBlock,
    why: String,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let ChainBlock { hash, block, txs } = b;
    let Block { header, body } = block;
    let rec = BlockRecord {
        chain: Some(chain.clone()),
        label: Some(case.id.clone()),
        case: Some(case.clone()),
        ommers: body.ommers,
        withdrawals: body.withdrawals.map(|w| w.into_inner()),
        unsupported: Some(why.clone()),
        ..BlockRecord::new(hash, header, txs)
    };
    summary.unsupported.push((case.id.clone(), why));
    if w.has_block(&rec.hash) {
        summary.skipped_existing += 1;
        return Ok(());
    }
    summary.blocks += 1;
    summary.txs += rec.transactions.len();
    w.put_block_deferred(&rec)?;
    Ok(())
}
