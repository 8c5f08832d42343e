//! Chain identity and fork schedule carried by a corpus.

use alloy_eips::eip7840::BlobParams;
use alloy_hardforks::{EthereumChainHardforks, EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::{Address, address};
use serde::{Deserialize, Serialize};

/// Mainnet's deposit contract (EIP-6110).
pub const MAINNET_DEPOSIT_CONTRACT: Address =
    address!("0x00000000219ab540356cbb839cbe05303d7705fa");

/// The chain a block belongs to: its id and the schedule that decides which rules apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainConfig {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// A short name (`mainnet`, `hive`, `anvil`, ...), informational.
    #[serde(default)]
    pub name: String,
    /// Activation of each fork, in order.
    pub forks: Vec<(EthereumHardfork, ForkCondition)>,
    /// EIP-6110 deposit contract, if the chain has one.
    #[serde(default)]
    pub deposit_contract: Option<Address>,
    /// Blob parameters per fork that changes them (Cancun on). Forks not listed use the
    /// Ethereum defaults of the latest listed fork before them.
    #[serde(default)]
    pub blob_schedule: Vec<(EthereumHardfork, BlobParams)>,
}

impl ChainConfig {
    /// Ethereum mainnet.
    pub fn mainnet() -> Self {
        Self {
            chain_id: 1,
            name: "mainnet".into(),
            forks: EthereumHardfork::mainnet().to_vec(),
            deposit_contract: Some(MAINNET_DEPOSIT_CONTRACT),
            blob_schedule: default_blob_schedule(),
        }
    }

    /// The fork schedule as the executor understands it.
    pub fn hardforks(&self) -> EthereumChainHardforks {
        EthereumChainHardforks::new(self.forks.iter().cloned())
    }

    /// Blob parameters in force at `timestamp`, if Cancun is active then.
    pub fn blob_params_at(&self, timestamp: u64) -> Option<BlobParams> {
        let hf = self.hardforks();
        if !hf.is_cancun_active_at_timestamp(timestamp) {
            return None;
        }
        let mut params = BlobParams::cancun();
        for (fork, p) in &self.blob_schedule {
            if hf
                .ethereum_fork_activation(*fork)
                .active_at_timestamp(timestamp)
            {
                params = *p;
            }
        }
        Some(params)
    }

    /// The activation of `fork`, if the chain has it.
    pub fn activation(&self, fork: EthereumHardfork) -> ForkCondition {
        self.hardforks().ethereum_fork_activation(fork)
    }
}

/// Ethereum's blob parameters by fork (EIP-7840, EIP-7892).
pub fn default_blob_schedule() -> Vec<(EthereumHardfork, BlobParams)> {
    vec![
        (EthereumHardfork::Cancun, BlobParams::cancun()),
        (EthereumHardfork::Prague, BlobParams::prague()),
        (EthereumHardfork::Osaka, BlobParams::osaka()),
        (EthereumHardfork::Bpo1, BlobParams::bpo1()),
        (EthereumHardfork::Bpo2, BlobParams::bpo2()),
    ]
}

/// Parses a fork name as users write it (`istanbul`, `Cancun`, `spurious_dragon`, `merge`).
pub fn parse_fork(name: &str) -> Option<EthereumHardfork> {
    let n = name.to_ascii_lowercase().replace(['_', '-', ' '], "");
    let fork = match n.as_str() {
        "frontier" => EthereumHardfork::Frontier,
        "homestead" => EthereumHardfork::Homestead,
        "dao" => EthereumHardfork::Dao,
        "tangerine" | "tangerinewhistle" | "eip150" => EthereumHardfork::Tangerine,
        "spuriousdragon" | "eip158" | "eip155" => EthereumHardfork::SpuriousDragon,
        "byzantium" => EthereumHardfork::Byzantium,
        "constantinople" => EthereumHardfork::Constantinople,
        "petersburg" | "constantinoplefix" => EthereumHardfork::Petersburg,
        "istanbul" => EthereumHardfork::Istanbul,
        "muirglacier" => EthereumHardfork::MuirGlacier,
        "berlin" => EthereumHardfork::Berlin,
        "london" => EthereumHardfork::London,
        "arrowglacier" => EthereumHardfork::ArrowGlacier,
        "grayglacier" => EthereumHardfork::GrayGlacier,
        "paris" | "merge" => EthereumHardfork::Paris,
        "shanghai" => EthereumHardfork::Shanghai,
        "cancun" => EthereumHardfork::Cancun,
        "prague" => EthereumHardfork::Prague,
        "osaka" => EthereumHardfork::Osaka,
        "bpo1" => EthereumHardfork::Bpo1,
        "bpo2" => EthereumHardfork::Bpo2,
        _ => return None,
    };
    Some(fork)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_blob_params_follow_forks() {
        let c = ChainConfig::mainnet();
        assert_eq!(c.blob_params_at(1_700_000_000), None);
        assert_eq!(c.blob_params_at(1_710_338_135), Some(BlobParams::cancun()));
        assert_eq!(c.blob_params_at(1_746_612_311), Some(BlobParams::prague()));
    }

    #[test]
    fn fork_names() {
        assert_eq!(parse_fork("Istanbul"), Some(EthereumHardfork::Istanbul));
        assert_eq!(
            parse_fork("spurious_dragon"),
            Some(EthereumHardfork::SpuriousDragon)
        );
        assert_eq!(parse_fork("merge"), Some(EthereumHardfork::Paris));
        assert_eq!(parse_fork("nope"), None);
    }
}
