//! The chain a node serves: its id, client and fork schedule.

use alloy_eips::eip7840::BlobParams;
use alloy_hardforks::{EthereumHardfork, ForkCondition};
use alloy_primitives::{Address, U64, U256, address};
use txshadow_corpus::{ChainConfig, MAINNET_DEPOSIT_CONTRACT, default_blob_schedule, parse_fork};

use txshadow_rpc::{Rpc, RpcError, geth_fork_schedule};

use super::CaptureError;

/// Ethereum's forks in order (the DAO fork is an irregular state change, not a rule set).
const ORDER: [EthereumHardfork; 23] = [
    EthereumHardfork::Frontier,
    EthereumHardfork::Homestead,
    EthereumHardfork::Tangerine,
    EthereumHardfork::SpuriousDragon,
    EthereumHardfork::Byzantium,
    EthereumHardfork::Constantinople,
    EthereumHardfork::Petersburg,
    EthereumHardfork::Istanbul,
    EthereumHardfork::MuirGlacier,
    EthereumHardfork::Berlin,
    EthereumHardfork::London,
    EthereumHardfork::ArrowGlacier,
    EthereumHardfork::GrayGlacier,
    EthereumHardfork::Paris,
    EthereumHardfork::Shanghai,
    EthereumHardfork::Cancun,
    EthereumHardfork::Prague,
    EthereumHardfork::Osaka,
    EthereumHardfork::Bpo1,
    EthereumHardfork::Bpo2,
    EthereumHardfork::Bpo3,
    EthereumHardfork::Bpo4,
    EthereumHardfork::Bpo5,
];

/// A chain where every fork up to and including `last` is active from genesis (dev nodes such
/// as anvil, and `--fork`).
pub fn genesis_schedule(chain_id: u64, name: &str, last: EthereumHardfork) -> ChainConfig {
    let mut forks = vec![];
    for f in ORDER {
        if f > last {
            break;
        }
        let cond = if f == EthereumHardfork::Paris {
            ForkCondition::TTD {
                activation_block_number: 0,
                fork_block: Some(0),
                total_difficulty: U256::ZERO,
            }
        } else if f >= EthereumHardfork::Shanghai {
            ForkCondition::Timestamp(0)
        } else {
            ForkCondition::Block(0)
        };
        forks.push((f, cond));
    }
    if last == EthereumHardfork::Amsterdam {
        forks.push((last, ForkCondition::Timestamp(0)));
    }
    let blob_schedule = default_blob_schedule()
        .into_iter()
        .filter(|(f, _)| *f <= last)
        .collect();
    ChainConfig {
        chain_id,
        name: name.into(),
        forks,
        deposit_contract: None,
        blob_schedule,
    }
}

/// Public Ethereum chains by id.
fn known_chain(chain_id: u64) -> Option<ChainConfig> {
    let (name, forks, deposit): (&str, Vec<(EthereumHardfork, ForkCondition)>, Address) =
        match chain_id {
            1 => return Some(ChainConfig::mainnet()),
            11_155_111 => (
                "sepolia",
                EthereumHardfork::sepolia().to_vec(),
                address!("0x7f02C3E3c98b133055B8B348B2Ac625669Ed295D"),
            ),
            17_000 => (
                "holesky",
                EthereumHardfork::holesky().to_vec(),
                address!("0x4242424242424242424242424242424242424242"),
            ),
            560_048 => (
                "hoodi",
                EthereumHardfork::hoodi().to_vec(),
                MAINNET_DEPOSIT_CONTRACT,
            ),
            _ => return None,
        };
    Some(ChainConfig {
        chain_id,
        name: name.into(),
        forks,
        deposit_contract: Some(deposit),
        blob_schedule: default_blob_schedule(),
    })
}

/// A go-ethereum `debug_chainConfig` answer as a schedule, when it can be read without the
/// chain's total difficulty.
fn from_geth_config(c: &alloy_genesis::ChainConfig) -> Option<ChainConfig> {
    use EthereumHardfork as F;
    let paris = match (c.terminal_total_difficulty, c.merge_netsplit_block) {
        (None, _) => ForkCondition::Never,
        (Some(ttd), Some(b)) => ForkCondition::TTD {
            activation_block_number: b,
            fork_block: Some(b),
            total_difficulty: ttd,
        },
        (Some(ttd), None) if ttd.is_zero() => ForkCondition::TTD {
            activation_block_number: 0,
            fork_block: Some(0),
            total_difficulty: ttd,
        },
        // the merge block is not in the config: it needs the chain's difficulty history
        (Some(_), None) => return None,
    };
    let forks = geth_fork_schedule(c, paris);
    let defaults = default_blob_schedule();
    let blob_schedule: Vec<(F, BlobParams)> = forks
        .iter()
        .filter_map(|(f, _)| {
            let key = f.name().to_ascii_lowercase();
            c.blob_schedule
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                .map(|(_, p)| (*f, *p))
                .or_else(|| defaults.iter().find(|(d, _)| d == f).copied())
        })
        .collect();
    Some(ChainConfig {
        chain_id: c.chain_id,
        name: format!("chain-{}", c.chain_id),
        forks,
        deposit_contract: c.deposit_contract_address,
        blob_schedule,
    })
}

/// What the node told about its chain.
#[derive(Debug, Clone)]
pub struct DetectedChain {
    /// Chain id and fork schedule.
    pub config: ChainConfig,
    /// `web3_clientVersion`, when the node answers it.
    pub client_version: Option<String>,
    /// Where the fork schedule came from (recorded in the manifest's notes).
    pub schedule_source: String,
}

/// Asks the node for its chain id, client version and fork schedule. `fork` forces a schedule
/// where every fork up to it is active from genesis.
pub async fn detect_chain(
    rpc: &Rpc,
    fork: Option<EthereumHardfork>,
) -> Result<DetectedChain, CaptureError> {
    let chain_id: U64 = rpc.call("eth_chainId", (), None).await?;
    let chain_id = chain_id.to::<u64>();
    let client_version: Option<String> = match rpc.call("web3_clientVersion", (), None).await {
        Ok(v) => Some(v),
        Err(RpcError::MethodUnavailable { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let is_anvil = client_version
        .as_deref()
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("anvil"));
    if let Some(f) = fork {
        return Ok(DetectedChain {
            config: genesis_schedule(chain_id, &format!("chain-{chain_id}"), f),
            client_version,
            schedule_source: format!(
                "fork schedule: every fork up to {} active from genesis (--fork)",
                f.name()
            ),
        });
    }
    if is_anvil {
        let info: serde_json::Value = rpc.call("anvil_nodeInfo", (), None).await?;
        let hf = info
            .get("hardFork")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let fork = parse_fork(&hf).ok_or_else(|| {
            CaptureError::Input(format!(
                "anvil reports hardfork {hf:?}, which txshadow does not know; pass --fork"
            ))
        })?;
        return Ok(DetectedChain {
            config: genesis_schedule(chain_id, "anvil", fork),
            client_version,
            schedule_source: format!(
                "fork schedule: anvil_nodeInfo hardfork {hf}, every fork up to it active from genesis"
            ),
        });
    }
    if let Some(config) = known_chain(chain_id) {
        let name = config.name.clone();
        return Ok(DetectedChain {
            config,
            client_version,
            schedule_source: format!("fork schedule: {name} (by chain id {chain_id})"),
        });
    }
    match rpc
        .call::<_, alloy_genesis::ChainConfig>("debug_chainConfig", (), None)
        .await
    {
        Ok(c) if c.chain_id == chain_id => {
            if let Some(config) = from_geth_config(&c) {
                return Ok(DetectedChain {
                    config,
                    client_version,
                    schedule_source: "fork schedule: the node's debug_chainConfig".into(),
                });
            }
        }
        Ok(_) | Err(RpcError::MethodUnavailable { .. }) | Err(RpcError::Failed { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Err(CaptureError::Input(format!(
        "chain id {chain_id} has no built-in fork schedule and the node reports none; pass \
         --fork <name> if every fork up to it is active from genesis"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_hardforks::EthereumHardforks;

    #[test]
    fn genesis_schedule_activates_up_to_the_fork() {
        let c = genesis_schedule(31337, "anvil", EthereumHardfork::Bpo1);
        let hf = c.hardforks();
        assert!(hf.is_osaka_active_at_timestamp(0));
        assert!(hf.is_prague_active_at_timestamp(1));
        assert!(hf.is_paris_active_at_block(0));
        assert!(hf.is_spurious_dragon_active_at_block(0));
        assert!(
            !hf.ethereum_fork_activation(EthereumHardfork::Bpo2)
                .active_at_timestamp(10)
        );
        assert_eq!(c.blob_params_at(5), Some(BlobParams::bpo1()));
        let c = genesis_schedule(1337, "x", EthereumHardfork::London);
        assert!(c.hardforks().is_london_active_at_block(0));
        assert!(!c.hardforks().is_paris_active_at_block(5));
        assert_eq!(c.blob_params_at(5), None);
    }

    #[test]
    fn geth_config_reads() {
        let c: alloy_genesis::ChainConfig = serde_json::from_value(serde_json::json!({
            "chainId": 1337, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0,
            "eip158Block": 0, "byzantiumBlock": 0, "constantinopleBlock": 0,
            "petersburgBlock": 0, "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0,
            "terminalTotalDifficulty": 0, "shanghaiTime": 0, "cancunTime": 0
        }))
        .unwrap();
        let s = from_geth_config(&c).unwrap();
        assert!(s.hardforks().is_cancun_active_at_timestamp(0));
        assert!(!s.hardforks().is_prague_active_at_timestamp(u64::MAX));
    }
}
