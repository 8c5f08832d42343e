//! Blockchain tests (ethereum/tests `BlockchainTests`, EEST `blockchain_test`): a genesis
//! (`genesisRLP`), its complete state (`pre`), blocks as RLP, and what the chain must end in
//! (`lastblockhash`, `postState` or `postStateHash`).
//!
//! Each case is a chain of its own: its schedule comes from `network` (transition networks
//! included), its chain id and blob schedule from `config`. The canonical chain is the one
//! `lastblockhash` picks; every block of it is written with the full state before it, derived
//! by executing the chain and held to every header (see [`crate::chain`]). The last block also
//! carries `postState` as its expected post-state, so the replay checks it account by account
//! (a `postStateHash` is its header's state root, which every replay checks).
//!
//! Not checked yet, and so counted as skipped with the reason, never as passed: blocks the test
//! expects to be invalid (`expectException`: txshadow has no header validity rules yet), and
//! blocks off the canonical chain.

use std::collections::{BTreeMap, HashMap};

use alloy_consensus::Block;
use alloy_primitives::{B256, Bytes};
use serde::Deserialize;
use txshadow_corpus::{BlockRecord, ChainConfig, CorpusWriter, StateMap, SuiteCase};
use txshadow_replay::Codes;

use super::{FixtureConfig, FixtureState, SuiteFile, full_state, network_chain, parse_network};
use crate::{
    ImportError, ImportOptions, ImportSummary,
    chain::{ChainBlock, Derivation, decode_block, derive_chain},
    common,
};

/// A blockchain test fixture.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockchainTest {
    #[serde(rename = "genesisRLP")]
    genesis_rlp: Bytes,
    pre: FixtureState,
    #[serde(default)]
    blocks: Vec<FixtureBlock>,
    #[serde(default)]
    engine_new_payloads: Option<serde_json::Value>,
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

/// Imports every blockchain test under `inputs`.
pub(crate) fn import(
    inputs: &[std::path::PathBuf],
    out: &std::path::Path,
    opts: &ImportOptions,
    prov: txshadow_corpus::Provenance,
) -> Result<ImportSummary, ImportError> {
    let files = super::suite_files(inputs, "blockchain test")?;
    let mut w = CorpusWriter::create(out, ChainConfig::mainnet(), prov, opts.overwrite)?;
    w.add_note(
        "blockchain tests: each case a chain of its own (schedule from `network`), its blocks \
         with the full state before them, derived from `pre` and held to every header",
    );
    let mut summary = ImportSummary::default();
    let mut codes = Codes::default();
    let mut indexed = 0;
    for f in &files {
        if let Err(e) = import_file(f, &mut w, &mut codes, &mut summary) {
            summary.fail_input(&f.path, e)?;
        }
        // the manifest is rewritten in batches: once per file would be quadratic in cases
        if summary.blocks >= indexed + super::MANIFEST_EVERY {
            w.write_manifest()?;
            indexed = summary.blocks;
        }
    }
    w.finish()?;
    Ok(summary)
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
    if t.engine_new_payloads.is_some() && t.blocks.is_empty() {
        return Err(CaseError::Fixture(
            "blockchain_test_engine fixtures (engineNewPayloads) are not read yet: import the \
             blockchain_test form of the same release"
                .into(),
        ));
    }
    let network =
        parse_network(&t.network).ok_or_else(|| format!("unknown network {:?}", t.network))?;
    let genesis = decode_block(&t.genesis_rlp).map_err(|e| format!("genesisRLP: {e}"))?;
    let (canonical, skipped) = canonical_chain(t, &genesis)?;
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
    let d = Derivation {
        chain: &chain,
        chain_per_block: true,
        case: Some(case),
        source: path,
        last_post_state: expected_post,
    };
    derive_chain(w, &d, pre, codes, hashes, canonical, summary)?;
    Ok(())
}

/// The blocks `lastblockhash` picks, in order from the genesis, and the others with why they
/// are not replayed.
fn canonical_chain(
    t: &BlockchainTest,
    genesis: &ChainBlock,
) -> Result<(Vec<ChainBlock>, Vec<(ChainBlock, String)>), CaseError> {
    let mut by_hash: HashMap<B256, ChainBlock> = HashMap::new();
    let mut skipped = vec![];
    for (i, b) in t.blocks.iter().enumerate() {
        match (decode_block(&b.rlp), &b.expect_exception) {
            (Ok(cb), None) => {
                by_hash.insert(cb.hash, cb);
            }
            (Ok(cb), Some(x)) => skipped.push((
                cb,
                format!(
                    "the test expects this block to be invalid ({x}); txshadow does not check \
                     header and block validity rules yet"
                ),
            )),
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
    Ok((chain, skipped))
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
