//! The chain rules of a fixture: the fork schedule as geth's harness sees it, the blob schedule,
//! and whether revm can express them at the traced block.

use alloy_eips::eip7840::BlobParams;
use alloy_hardforks::{EthereumHardfork as Fork, ForkCondition};
use txshadow_corpus::{ChainConfig, default_blob_schedule, parse_fork};

use super::json::{GethConfig, opt_u64};

/// The SSTORE opcode.
pub(super) const SSTORE: u8 = 0x55;

/// Forks whose rules reach the EVM, in the order revm applies them cumulatively.
pub(crate) const EVM_FORKS: [Fork; 14] = [
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
pub(super) struct Rules {
    pub(super) chain: ChainConfig,
    /// Whether the block is post-merge for geth's harness.
    pub(super) merged: bool,
    pub(super) unsupported: Option<String>,
    /// What the import adjusted, for the provenance notes.
    pub(super) note: Option<String>,
}

/// The blob schedule of the config (`blobSchedule`, Ethereum defaults for the forks it omits).
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
pub(super) fn chain_rules(
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
pub(super) fn has_opcode(code: &[u8], op: u8) -> bool {
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
