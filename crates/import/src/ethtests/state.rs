//! State tests (ethereum/tests `GeneralStateTests`, EEST `state_test`): one case per
//! (fork, data, gas, value) index of `post`, each a one-tx block.
//!
//! The block is synthetic: its header is built from `env` (number, coinbase, timestamp, gas
//! limit, difficulty or prevrandao, base fee, excess blob gas), the tx is the case's `txbytes`
//! (its sender recovered from the signature, not read from `sender`), and the state before it is
//! `pre`, complete. The harness of these suites pays no block reward and makes no system call;
//! BLOCKHASH of block `n` answers `keccak256(decimal n)` as their runners do. Each case checks
//! the post-state root (`hash`), the hash of the logs (`logs`) and the expected rejection
//! (`expectException`).

use std::collections::BTreeMap;

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header, transaction::SignerRecoverable};
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_hardforks::EthereumHardforks;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_trie::EMPTY_ROOT_HASH;
use serde::Deserialize;
use txshadow_corpus::{
    BlockRecord, ChainConfig, Conventions, CorpusWriter, Expected, ExpectedTx, SuiteCase, TxRecord,
    decode_tx,
};
use txshadow_replay::Codes;

use super::{FixtureConfig, FixtureState, SuiteFile, full_state, network_chain, parse_network};
use crate::{ImportError, ImportOptions, ImportSummary, chain::FullState, common};

/// A state test fixture.
#[derive(Debug, Deserialize)]
struct StateTest {
    env: Env,
    pre: FixtureState,
    post: BTreeMap<String, Vec<PostEntry>>,
    #[serde(default)]
    config: Option<FixtureConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Env {
    current_coinbase: Address,
    #[serde(default)]
    current_difficulty: Option<U256>,
    current_gas_limit: U256,
    current_number: U256,
    current_timestamp: U256,
    #[serde(default)]
    current_base_fee: Option<U256>,
    #[serde(default)]
    current_random: Option<B256>,
    #[serde(default)]
    current_excess_blob_gas: Option<U256>,
    #[serde(default)]
    current_beacon_root: Option<B256>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostEntry {
    hash: B256,
    logs: B256,
    indexes: Indexes,
    #[serde(default)]
    txbytes: Option<Bytes>,
    #[serde(default)]
    expect_exception: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Indexes {
    data: usize,
    gas: usize,
    value: usize,
}

/// Imports every state test under `inputs`.
pub(crate) fn import(
    inputs: &[std::path::PathBuf],
    out: &std::path::Path,
    opts: &ImportOptions,
    prov: txshadow_corpus::Provenance,
) -> Result<ImportSummary, ImportError> {
    super::import_suite(
        inputs,
        "state test",
        out,
        opts,
        prov,
        "state tests: one synthetic one-tx block per (fork, data, gas, value) case; harness \
             conventions: no block reward, no system calls, BLOCKHASH(n) = keccak256(decimal n)",
        import_file,
    )
}

fn import_file(
    f: &SuiteFile,
    w: &mut CorpusWriter,
    codes: &mut Codes,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let tests: BTreeMap<String, StateTest> = common::read_json(&f.path)?;
    for (name, t) in &tests {
        let pre = full_state(&t.pre, w, codes)?;
        for (fork, entries) in &t.post {
            for e in entries {
                let i = &e.indexes;
                let id = format!(
                    "{}::{name}[{fork}][d{},g{},v{}]",
                    f.stem(),
                    i.data,
                    i.gas,
                    i.value
                );
                let case = SuiteCase {
                    id,
                    folder: f.folder.clone(),
                    fork: fork.clone(),
                };
                let rec = case_block(t, fork, e, &pre, case).map_err(|why| {
                    ImportError::source(&f.path, format!("{name} [{fork}]: {why}"))
                })?;
                if let Some(why) = &rec.unsupported {
                    summary
                        .unsupported
                        .push((rec.label.clone().unwrap_or_default(), why.clone()));
                }
                if w.has_block(&rec.hash) {
                    summary.skipped_existing += 1;
                    continue;
                }
                summary.blocks += 1;
                summary.txs += rec.transactions.len();
                w.put_block_deferred(&rec)?;
            }
        }
    }
    Ok(())
}

/// The one-tx block of a case.
fn case_block(
    t: &StateTest,
    fork: &str,
    e: &PostEntry,
    pre: &FullState,
    case: SuiteCase,
) -> Result<BlockRecord, String> {
    let network = parse_network(fork).ok_or_else(|| format!("unknown fork {fork:?}"))?;
    let default = FixtureConfig::default();
    let config = t.config.as_ref().unwrap_or(&default);
    let (chain, mut unsupported) = network_chain(&network, config, None);
    let header = header(&t.env, &chain, e.hash)?;
    let raw = e
        .txbytes
        .clone()
        .ok_or("the post entry has no txbytes (fixtures filled before txbytes are not read)")?;
    let tx = match decode_tx(&raw) {
        Ok(env) => {
            let from = env.recover_signer().unwrap_or_else(|err| {
                unsupported.get_or_insert(format!("cannot recover the sender: {err}"));
                Address::ZERO
            });
            TxRecord {
                hash: *env.tx_hash(),
                from,
                raw,
            }
        }
        // an undecodable tx is kept as it is: the replay rejects it (a test may expect that)
        Err(_) => TxRecord {
            hash: keccak256(&raw),
            from: Address::ZERO,
            raw,
        },
    };
    let number = header.number;
    let mut preimage = header.hash_slow().to_vec();
    preimage.extend_from_slice(case.id.as_bytes());
    let expected_tx = e.expect_exception.as_ref().map(|x| ExpectedTx {
        rejected: Some(x.clone()),
        ..Default::default()
    });
    Ok(BlockRecord {
        pre_state: pre.iter().map(|(a, s)| (*a, Some(s.clone()))).collect(),
        pre_state_is_full: true,
        block_hashes: (number.saturating_sub(256)..number)
            .map(|n| (n, keccak256(n.to_string())))
            .collect(),
        expected: Expected {
            txs: vec![expected_tx],
            header_checks: false,
            state_root: Some(e.hash),
            logs_hash: Some(e.logs),
            ..Expected::default()
        },
        conventions: Conventions {
            rewards: false,
            system_calls: false,
            unknown_blockhash_is_zero: false,
            no_block_gas_limit: false,
        },
        chain: Some(chain),
        synthetic: true,
        label: Some(case.id.clone()),
        unsupported,
        case: Some(case),
        ..BlockRecord::new(keccak256(&preimage), header, vec![tx])
    })
}

/// The synthetic header of `env` under `chain`'s rules at its block.
fn header(env: &Env, chain: &ChainConfig, post_root: B256) -> Result<Header, String> {
    let num = |v: &U256, what: &str| -> Result<u64, String> {
        u64::try_from(*v).map_err(|_| format!("env.{what} {v} does not fit 64 bits"))
    };
    let number = num(&env.current_number, "currentNumber")?;
    let timestamp = num(&env.current_timestamp, "currentTimestamp")?;
    let hf = chain.hardforks();
    let merged = hf.is_paris_active_at_block(number);
    let london = hf.is_london_active_at_block(number);
    let shanghai = hf.is_shanghai_active_at_timestamp(timestamp);
    let cancun = hf.is_cancun_active_at_timestamp(timestamp);
    let prague = hf.is_prague_active_at_timestamp(timestamp);
    let base_fee = env
        .current_base_fee
        .map(|f| num(&f, "currentBaseFee"))
        .transpose()?;
    let excess = env
        .current_excess_blob_gas
        .map(|f| num(&f, "currentExcessBlobGas"))
        .transpose()?;
    Ok(Header {
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: env.current_coinbase,
        state_root: post_root,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        difficulty: if merged {
            U256::ZERO
        } else {
            env.current_difficulty.unwrap_or_default()
        },
        number,
        gas_limit: num(&env.current_gas_limit, "currentGasLimit")?,
        timestamp,
        mix_hash: if merged {
            env.current_random.unwrap_or_default()
        } else {
            B256::ZERO
        },
        base_fee_per_gas: london.then(|| base_fee.unwrap_or_default()),
        withdrawals_root: shanghai.then_some(EMPTY_ROOT_HASH),
        blob_gas_used: cancun.then_some(0),
        excess_blob_gas: cancun.then(|| excess.unwrap_or_default()),
        parent_beacon_block_root: cancun.then(|| env.current_beacon_root.unwrap_or_default()),
        requests_hash: prague.then_some(EMPTY_REQUESTS_HASH),
        ..Default::default()
    })
}
