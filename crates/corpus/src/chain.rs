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
    /// Ethereum defaults of the latest listed fork before them. Written with the per-tx blob
    /// limit and the EIP-7918 base cost where they are not the defaults (see
    /// `blob_schedule_serde`).
    #[serde(default, with = "blob_schedule_serde")]
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
                params = osaka_limits(*fork, *p);
            }
        }
        Some(params)
    }

    /// The activation of `fork`, if the chain has it.
    pub fn activation(&self, fork: EthereumHardfork) -> ForkCondition {
        self.hardforks().ethereum_fork_activation(fork)
    }
}

/// From Osaka on every blob schedule has the per-tx limit of EIP-7594 and the base cost of
/// EIP-7918. A schedule entry of Osaka or later without a base cost comes from a corpus written
/// before txshadow kept these two fields (their JSON form has neither): it gets Osaka's.
fn osaka_limits(fork: EthereumHardfork, p: BlobParams) -> BlobParams {
    if fork >= EthereumHardfork::Osaka && p.blob_base_cost == 0 {
        p.with_blob_base_cost(alloy_eips::eip7840::BLOB_BASE_COST)
            .with_max_blobs_per_tx(
                p.max_blobs_per_tx
                    .min(alloy_eips::eip7594::MAX_BLOBS_PER_TX_FUSAKA),
            )
    } else {
        p
    }
}

/// The blob schedule in JSON: alloy's form of [`BlobParams`] (`target`, `max`,
/// `baseFeeUpdateFraction`) drops the per-tx blob limit and the EIP-7918 base cost, so they are
/// kept beside it (`maxBlobsPerTx`, `blobBaseCost`, `minBlobFee`) where they differ from what
/// reading alloy's form gives (the limit equal to `max`, no base cost, the EIP-4844 minimum
/// fee). An entry without them reads back exactly as before, so a manifest written earlier keeps
/// its checksum.
pub(crate) mod blob_schedule_serde {
    use alloy_eips::{eip4844::BLOB_TX_MIN_BLOB_GASPRICE, eip7840::BlobParams};
    use alloy_hardforks::EthereumHardfork;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry {
        // alloy's order: an entry without the extra fields is written as alloy writes it
        base_fee_update_fraction: u128,
        max: u64,
        target: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_blobs_per_tx: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blob_base_cost: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_blob_fee: Option<u128>,
    }

    /// Writes the schedule.
    pub(crate) fn serialize<S: Serializer>(
        v: &[(EthereumHardfork, BlobParams)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let entries: Vec<(EthereumHardfork, Entry)> = v
            .iter()
            .map(|(f, p)| {
                let e = Entry {
                    target: p.target_blob_count,
                    max: p.max_blob_count,
                    base_fee_update_fraction: p.update_fraction,
                    max_blobs_per_tx: (p.max_blobs_per_tx != p.max_blob_count)
                        .then_some(p.max_blobs_per_tx),
                    blob_base_cost: (p.blob_base_cost != 0).then_some(p.blob_base_cost),
                    min_blob_fee: (p.min_blob_fee != BLOB_TX_MIN_BLOB_GASPRICE)
                        .then_some(p.min_blob_fee),
                };
                (*f, e)
            })
            .collect();
        entries.serialize(s)
    }

    /// Reads the schedule.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(EthereumHardfork, BlobParams)>, D::Error> {
        let entries = Vec::<(EthereumHardfork, Entry)>::deserialize(d)?;
        Ok(entries
            .into_iter()
            .map(|(f, e)| {
                let p = BlobParams {
                    target_blob_count: e.target,
                    max_blob_count: e.max,
                    update_fraction: e.base_fee_update_fraction,
                    min_blob_fee: e.min_blob_fee.unwrap_or(BLOB_TX_MIN_BLOB_GASPRICE),
                    max_blobs_per_tx: e.max_blobs_per_tx.unwrap_or(e.max),
                    blob_base_cost: e.blob_base_cost.unwrap_or(0),
                };
                (f, p)
            })
            .collect())
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
    fn osaka_blob_limits_survive_a_round_trip() {
        let c = ChainConfig::mainnet();
        let json = serde_json::to_string(&c).unwrap();
        let back: ChainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c, "{json}");
        let osaka = back
            .blob_schedule
            .iter()
            .find(|(f, _)| *f == EthereumHardfork::Osaka)
            .unwrap()
            .1;
        assert_eq!(osaka.max_blobs_per_tx, 6);
        assert_eq!(osaka.blob_base_cost, alloy_eips::eip7840::BLOB_BASE_COST);
        // a schedule written before these fields were kept reads back as it was written (so
        // its manifest checksum holds) and is given Osaka's limits where it is used
        let old = json
            .replace(",\"maxBlobsPerTx\":6", "")
            .replace(",\"blobBaseCost\":8192", "");
        assert_ne!(old, json);
        let back: ChainConfig = serde_json::from_str(&old).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), old);
        // and an entry is written as alloy writes it where it has no extra field
        let cancun = serde_json::to_string(&BlobParams::cancun()).unwrap();
        assert!(json.contains(&cancun), "{cancun} in {json}");
        let ts = 1_800_000_000;
        let mut osaka_only = back;
        osaka_only
            .forks
            .retain(|(f, _)| *f <= EthereumHardfork::Osaka);
        let p = osaka_only.blob_params_at(ts).unwrap();
        assert_eq!((p.max_blobs_per_tx, p.blob_base_cost), (6, 8192));
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
