//! The Ethereum conformance suites: ethereum/tests and EEST (execution-spec-tests) fixtures.
//!
//! - [`state`]: `state_test` fixtures (GeneralStateTests): one case per (fork, data, gas,
//!   value) index, each a one-tx block on the complete pre-state;
//! - [`blockchain`]: `blockchain_test` and `blockchain_test_engine` fixtures: a genesis, a
//!   full pre-state and a chain of blocks, each block made self-contained with the full state
//!   before it (see [`crate::chain`]).
//!
//! Many cases, each with its own chain (fork schedule, chain id, blob schedule), go into one
//! corpus: every block carries its chain config and its [`SuiteCase`], and one process replays
//! them all in parallel. What a case needs that revm cannot give is marked `unsupported` with
//! its reason (listed as skipped, never as passed).
//!
//! Shared here: finding fixture files under the inputs, the `pre` state, and the chain config
//! of a `network` name (`Cancun`, `ShanghaiToCancunAtTime15k`, `ArrowGlacierToParisAtDiffC0000`).

pub(crate) mod blockchain;
pub(crate) mod state;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use alloy_eips::eip7840::BlobParams;
use alloy_hardforks::{EthereumHardfork as Fork, ForkCondition};
use alloy_primitives::{Address, Bytes, U64, U256, keccak256};
use serde::Deserialize;
use txshadow_corpus::{
    AccountState, ChainConfig, CorpusWriter, KECCAK_EMPTY, MAINNET_DEPOSIT_CONTRACT,
    default_blob_schedule, parse_fork,
};
use txshadow_replay::{Codes, decode_code};

use crate::{ImportError, chain::FullState, geth::EVM_FORKS};

/// Blocks written between two rewrites of the manifest (an interrupted import keeps the cases
/// indexed so far; a resumed one skips them).
pub(crate) const MANIFEST_EVERY: usize = 2000;

/// Why a case under Constantinople without Petersburg is skipped.
pub(crate) const NO_EIP1283: &str = "Constantinople without Petersburg needs EIP-1283 net gas \
     metering, which revm does not implement (Petersburg removed it from every chain)";

/// A fixture file and the folder it is counted under.
#[derive(Debug, Clone)]
pub(crate) struct SuiteFile {
    pub(crate) path: PathBuf,
    /// The file's folder relative to the input it was found under (the input's own name when
    /// the file sits at its top, or was given itself).
    pub(crate) folder: String,
}

impl SuiteFile {
    /// `<folder>/<file stem>`: the start of its cases' ids.
    pub(crate) fn stem(&self) -> String {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        format!("{}/{stem}", self.folder)
    }
}

/// Imports every fixture file under `inputs` into a new corpus at `out` with `import_file`
/// (one file's cases at a time): a file that fails is listed in the summary and the others go
/// on; the manifest is indexed in batches.
pub(crate) fn import_suite(
    inputs: &[PathBuf],
    what: &str,
    out: &Path,
    opts: &crate::ImportOptions,
    prov: txshadow_corpus::Provenance,
    note: &str,
    import_file: fn(
        &SuiteFile,
        &mut CorpusWriter,
        &mut Codes,
        &mut crate::ImportSummary,
    ) -> Result<(), ImportError>,
) -> Result<crate::ImportSummary, ImportError> {
    let files = suite_files(inputs, what)?;
    let mut w = CorpusWriter::create(out, ChainConfig::mainnet(), prov, opts.overwrite)?;
    w.add_note(note);
    let mut summary = crate::ImportSummary::default();
    let mut codes = Codes::default();
    let mut indexed = 0;
    for f in &files {
        if let Err(e) = import_file(f, &mut w, &mut codes, &mut summary) {
            summary.fail_input(&f.path, e)?;
        }
        // the manifest is rewritten in batches: once per file would be quadratic in cases
        if summary.blocks >= indexed + MANIFEST_EVERY {
            w.write_manifest()?;
            indexed = summary.blocks;
        }
    }
    w.finish()?;
    Ok(summary)
}

/// Every `*.json` file under `inputs`, recursively, in path order (files given directly are
/// taken as they are).
pub(crate) fn suite_files(inputs: &[PathBuf], what: &str) -> Result<Vec<SuiteFile>, ImportError> {
    let mut out = vec![];
    for input in inputs {
        let name = |p: &Path| {
            p.file_name()
                .map_or_else(|| ".".to_string(), |n| n.to_string_lossy().to_string())
        };
        if input.is_file() {
            let folder = input.parent().map_or_else(|| ".".into(), name);
            out.push(SuiteFile {
                path: input.clone(),
                folder,
            });
            continue;
        }
        if !input.is_dir() {
            return Err(ImportError::Io {
                path: input.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let mut files = vec![];
        walk(input, &mut files)?;
        files.sort();
        for path in files {
            let rel = path
                .parent()
                .and_then(|p| p.strip_prefix(input).ok())
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let folder = if rel.is_empty() { name(input) } else { rel };
            out.push(SuiteFile { path, folder });
        }
    }
    if out.is_empty() {
        return Err(ImportError::source(
            inputs.first().map_or(Path::new("."), PathBuf::as_path),
            format!("no {what} JSON file found"),
        ));
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let rd = fs::read_dir(dir).map_err(|source| ImportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    Ok(())
}

/// One account of a fixture's `pre` or `postState`.
#[derive(Debug, Deserialize)]
pub(crate) struct FixtureAccount {
    #[serde(default)]
    balance: U256,
    #[serde(default)]
    code: Bytes,
    #[serde(default)]
    nonce: U64,
    #[serde(default)]
    storage: BTreeMap<U256, U256>,
}

/// A fixture's state: accounts by address.
pub(crate) type FixtureState = BTreeMap<Address, FixtureAccount>;

/// The full state of a fixture's accounts (zero slots dropped), its codes put into the corpus
/// and into `codes`.
pub(crate) fn full_state(
    accounts: &FixtureState,
    w: &mut CorpusWriter,
    codes: &mut Codes,
) -> Result<FullState, ImportError> {
    let mut state = FullState::new();
    for (addr, a) in accounts {
        let code_hash = if a.code.is_empty() {
            KECCAK_EMPTY
        } else {
            let h = keccak256(&a.code);
            if !codes.contains(&h) {
                w.put_code(&a.code)?;
                codes.insert(decode_code(a.code.clone()));
            }
            h
        };
        state.insert(*addr, account(a, code_hash));
    }
    Ok(state)
}

/// The state of `accounts` without touching a corpus (a post-state to compare with).
pub(crate) fn state_of(accounts: &FixtureState) -> FullState {
    accounts
        .iter()
        .map(|(addr, a)| {
            let h = if a.code.is_empty() {
                KECCAK_EMPTY
            } else {
                keccak256(&a.code)
            };
            (*addr, account(a, h))
        })
        .collect()
}

fn account(a: &FixtureAccount, code_hash: alloy_primitives::B256) -> AccountState {
    AccountState {
        balance: a.balance,
        nonce: a.nonce.to(),
        code_hash,
        storage: a
            .storage
            .iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (*k, *v))
            .collect(),
    }
}

/// A fixture's `config` (EEST): chain id and blob schedule.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FixtureConfig {
    #[serde(default)]
    chainid: Option<U64>,
    #[serde(default)]
    blob_schedule: BTreeMap<String, FixtureBlobParams>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixtureBlobParams {
    target: U64,
    max: U64,
    base_fee_update_fraction: U256,
}

/// A network's schedule: the forks in force from genesis, and the one a transition adds later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Network {
    /// The fork in force at genesis.
    pub(crate) base: Fork,
    /// A transition: the fork and when (`Block`, `Timestamp`, or `TTD` for a merge).
    pub(crate) transition: Option<(Fork, Transition)>,
}

/// When a transition network switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// At this block.
    Block(u64),
    /// At this timestamp.
    Time(u64),
    /// When the total difficulty reaches this value.
    Difficulty(U256),
}

/// Parses a network name: a fork (`Cancun`, `EIP158`, `ConstantinopleFix`, `Merge`) or a
/// transition (`BerlinToLondonAt5`, `ShanghaiToCancunAtTime15k`,
/// `ArrowGlacierToParisAtDiffC0000`).
pub(crate) fn parse_network(name: &str) -> Option<Network> {
    if let Some(base) = parse_fork(name) {
        return Some(Network {
            base,
            transition: None,
        });
    }
    let (from, rest) = name.split_once("To")?;
    let (to, at) = rest.split_once("At")?;
    let (base, next) = (parse_fork(from)?, parse_fork(to)?);
    let number = |s: &str| -> Option<u64> {
        match s.strip_suffix('k') {
            Some(k) => k.parse::<u64>().ok()?.checked_mul(1000),
            None => s.parse().ok(),
        }
    };
    let when = if let Some(t) = at.strip_prefix("Time") {
        Transition::Time(number(t)?)
    } else if let Some(d) = at.strip_prefix("Diff") {
        Transition::Difficulty(U256::from_str_radix(d, 16).ok()?)
    } else {
        Transition::Block(number(at)?)
    };
    Some(Network {
        base,
        transition: Some((next, when)),
    })
}

/// The chain config of `network` and why revm cannot run it, if it cannot.
/// `first_zero_difficulty` places a difficulty transition (the chain's first post-merge block).
pub(crate) fn network_chain(
    network: &Network,
    config: &FixtureConfig,
    first_zero_difficulty: Option<u64>,
) -> (ChainConfig, Option<String>) {
    // Frontier, then every fork whose rules reach the EVM (the glaciers change only the bomb)
    let evm_forks: Vec<Fork> = std::iter::once(Fork::Frontier).chain(EVM_FORKS).collect();
    let order = |f: Fork| evm_forks.iter().position(|g| *g == f);
    let base_at = order(network.base);
    let next = network.transition.and_then(|(f, w)| Some((order(f)?, w)));
    let mut forks = vec![];
    for (i, fork) in evm_forks.iter().enumerate() {
        let timestamp_fork = *fork >= Fork::Shanghai;
        let cond = if base_at.is_some_and(|b| i <= b) {
            if *fork == Fork::Paris {
                ttd_at(0, U256::ZERO)
            } else if timestamp_fork {
                ForkCondition::Timestamp(0)
            } else {
                ForkCondition::Block(0)
            }
        } else if let Some((_, when)) = next.filter(|(n, _)| i <= *n) {
            match when {
                Transition::Block(b) if *fork == Fork::Paris => ttd_at(b, U256::ZERO),
                Transition::Block(b) => ForkCondition::Block(b),
                Transition::Time(t) if timestamp_fork => ForkCondition::Timestamp(t),
                Transition::Time(_) => ForkCondition::Block(0),
                Transition::Difficulty(ttd) => {
                    ttd_at(first_zero_difficulty.unwrap_or(u64::MAX), ttd)
                }
            }
        } else {
            continue;
        };
        forks.push((*fork, cond));
    }
    if let Some((Fork::Dao, Transition::Block(b))) = network.transition {
        forks.push((Fork::Dao, ForkCondition::Block(b)));
    }
    let has = |f: Fork| forks.iter().any(|(g, _)| *g == f);
    let unsupported =
        (has(Fork::Constantinople) && !has(Fork::Petersburg)).then(|| NO_EIP1283.to_string());
    let chain = ChainConfig {
        chain_id: config.chainid.map_or(1, |c| c.to()),
        name: "ethereum-tests".into(),
        forks,
        deposit_contract: Some(MAINNET_DEPOSIT_CONTRACT),
        blob_schedule: blob_schedule(config),
    };
    (chain, unsupported)
}

/// `ForkCondition::TTD` reached at `block`.
fn ttd_at(block: u64, ttd: U256) -> ForkCondition {
    ForkCondition::TTD {
        activation_block_number: block,
        fork_block: None,
        total_difficulty: ttd,
    }
}

/// The blob schedule: Ethereum's, with the fixture's `blobSchedule` over it.
fn blob_schedule(config: &FixtureConfig) -> Vec<(Fork, BlobParams)> {
    let mut out = default_blob_schedule();
    for (name, p) in &config.blob_schedule {
        let Some(fork) = parse_fork(name) else {
            continue;
        };
        let base = out
            .iter()
            .find(|(f, _)| *f == fork)
            .map_or_else(BlobParams::cancun, |(_, p)| *p);
        let params = BlobParams {
            target_blob_count: p.target.to(),
            max_blob_count: p.max.to(),
            update_fraction: p.base_fee_update_fraction.to(),
            max_blobs_per_tx: if fork >= Fork::Osaka {
                base.max_blobs_per_tx
            } else {
                p.max.to()
            },
            ..base
        };
        out.retain(|(f, _)| *f != fork);
        out.push((fork, params));
    }
    out.sort_by_key(|(f, _)| *f);
    out
}

#[cfg(test)]
mod tests {
    use alloy_hardforks::EthereumHardforks;

    use super::*;

    #[test]
    fn networks_parse() {
        assert_eq!(
            parse_network("Cancun"),
            Some(Network {
                base: Fork::Cancun,
                transition: None
            })
        );
        assert_eq!(
            parse_network("ShanghaiToCancunAtTime15k"),
            Some(Network {
                base: Fork::Shanghai,
                transition: Some((Fork::Cancun, Transition::Time(15_000)))
            })
        );
        assert_eq!(
            parse_network("BerlinToLondonAt5").unwrap().transition,
            Some((Fork::London, Transition::Block(5)))
        );
        assert_eq!(
            parse_network("ArrowGlacierToParisAtDiffC0000")
                .unwrap()
                .transition,
            Some((Fork::Paris, Transition::Difficulty(U256::from(0xC0000))))
        );
        assert_eq!(parse_network("EIP158").unwrap().base, Fork::SpuriousDragon);
        assert_eq!(parse_network("NotAFork"), None);
    }

    #[test]
    fn schedules_follow_the_network() {
        let cfg = FixtureConfig::default();
        let (c, skip) = network_chain(&parse_network("Cancun").unwrap(), &cfg, None);
        assert!(skip.is_none());
        let hf = c.hardforks();
        assert!(hf.is_cancun_active_at_timestamp(0));
        assert!(hf.is_paris_active_at_block(0));
        assert!(!hf.is_prague_active_at_timestamp(u64::MAX));
        let (c, _) = network_chain(
            &parse_network("ShanghaiToCancunAtTime15k").unwrap(),
            &cfg,
            None,
        );
        let hf = c.hardforks();
        assert!(hf.is_shanghai_active_at_timestamp(0));
        assert!(!hf.is_cancun_active_at_timestamp(14_999));
        assert!(hf.is_cancun_active_at_timestamp(15_000));
        let (c, _) = network_chain(&parse_network("BerlinToLondonAt5").unwrap(), &cfg, None);
        let hf = c.hardforks();
        assert!(hf.is_berlin_active_at_block(0) && !hf.is_london_active_at_block(4));
        assert!(hf.is_london_active_at_block(5));
        let (_, skip) = network_chain(&parse_network("Constantinople").unwrap(), &cfg, None);
        assert_eq!(skip.as_deref(), Some(NO_EIP1283));
        let (_, skip) = network_chain(&parse_network("ConstantinopleFix").unwrap(), &cfg, None);
        assert!(skip.is_none());
    }
}
