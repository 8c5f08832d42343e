//! Realistic traffic on a fresh anvil: several blocks of many transactions each, signed here
//! and sent raw (`evm_setAutomine false`, a batch of `eth_sendRawTransaction`, `evm_mine`).
//!
//! Every block of a round mixes: ETH transfers (legacy, EIP-2930 with an access list, EIP-1559,
//! to new accounts), an ERC-20 (transfer, approve, transferFrom, a slot written and cleared in
//! the same block, a failing transfer), contract creation by a transaction, by CREATE and by
//! CREATE2 (one created and destroyed in the same tx), storage writes and clears, a revert
//! with a custom error, an out-of-gas call, a contract reading BLOCKHASH, TIMESTAMP, BASEFEE,
//! PREVRANDAO, COINBASE, GASLIMIT and CHAINID, a blob transaction (type 3) reading BLOBHASH and
//! BLOBBASEFEE, and EIP-7702 (type 4) delegations: set, used, and cleared in the last round.
//! One blob per block keeps the excess blob gas at zero (anvil's blob fees disagree with
//! themselves above it).

use alloy_primitives::{Address, B256, Bytes, U256, hex, keccak256};
use serde_json::{Value, json};

use crate::{Client, Wallet};

mod round;
mod sender;
mod setup;

use sender::Sender;

const TOKEN_BIN: &str = include_str!("../../contracts/out/Token.bin");
const PROBE_BIN: &str = include_str!("../../contracts/out/Probe.bin");
const DELEGATE_BIN: &str = include_str!("../../contracts/out/Delegate.bin");

const GWEI: u128 = 1_000_000_000;
const ETHER: u128 = 1_000_000_000_000_000_000;
/// The ERC-20 transfer.
const TRANSFER: &str = "transfer(address,uint256)";

/// How much traffic.
#[derive(Debug, Clone)]
pub struct TrafficOptions {
    /// Blocks of mixed traffic after the two setup blocks.
    pub rounds: usize,
    /// ETH and token transfers per round (each adds two txs).
    pub transfers: usize,
    /// Send blob transactions (needs Cancun).
    pub blobs: bool,
    /// Send EIP-7702 transactions (needs Prague).
    pub delegations: bool,
}

impl Default for TrafficOptions {
    fn default() -> Self {
        Self {
            rounds: 5,
            transfers: 12,
            blobs: true,
            delegations: true,
        }
    }
}

/// What the traffic did.
#[derive(Debug, Clone, Default)]
pub struct TrafficReport {
    /// First block with traffic.
    pub first_block: u64,
    /// Last block mined.
    pub last_block: u64,
    /// Transactions mined.
    pub txs: usize,
    /// Transactions by type (0..=4).
    pub by_type: [usize; 5],
    /// The ERC-20.
    pub token: Address,
    /// The block-context probe.
    pub probe: Address,
    /// The EIP-7702 delegate.
    pub delegate: Address,
    /// The account that delegates to it.
    pub delegator: Address,
}

fn selector(sig: &str) -> [u8; 4] {
    keccak256(sig.as_bytes())[..4].try_into().expect("4 bytes")
}

fn addr_word(a: Address) -> B256 {
    a.into_word()
}

fn num_word(v: impl Into<U256>) -> B256 {
    B256::from(v.into())
}

fn one(v: u128) -> U256 {
    U256::from(v)
}

/// A JSON-RPC quantity (`"0x.."`) as a number.
fn quantity(v: &Value) -> Result<u64, String> {
    u64::from_str_radix(v.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)
        .map_err(|e| e.to_string())
}

/// ABI call data: a selector and static words.
fn calldata(sig: &str, words: &[B256]) -> Bytes {
    let mut d = selector(sig).to_vec();
    for w in words {
        d.extend_from_slice(w.as_slice());
    }
    d.into()
}

fn code(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text.trim()).expect("compiled code is hex")
}

/// The storage slot of `mapping(address => ...)` at `slot` for `key`.
fn mapping_slot(key: Address, slot: u64) -> B256 {
    let mut b = [0u8; 64];
    b[..32].copy_from_slice(key.into_word().as_slice());
    b[32..].copy_from_slice(num_word(U256::from(slot)).as_slice());
    keccak256(b)
}

/// Drives the node at `url` (a fresh anvil: its dev accounts must be funded and unused).
pub fn run(url: &str, opts: &TrafficOptions) -> Result<TrafficReport, String> {
    let client = Client::new(url);
    let (mut s, mut w) = connect(&client)?;
    let c = setup::deploy(&mut s, &mut w)?;
    setup::distribute(&mut s, &mut w, c.token)?;
    let authority = Wallet::derived("txshadow traffic: EIP-7702 authority");
    s.report.delegator = authority.address;
    for r in 0..opts.rounds {
        round::block(&mut s, &mut w, &c, &authority, opts, r)?;
    }
    Ok(s.report)
}

/// Reads the chain id, turns automine off, and takes the ten dev accounts at their pending
/// nonces; the report starts at the block after the head.
fn connect(client: &Client) -> Result<(Sender<'_>, Vec<Wallet>), String> {
    let rpc = |m: &str, p: Value| client.call(m, p).map_err(|e| format!("{m}: {e}"));
    let chain_id = quantity(&rpc("eth_chainId", json!([]))?)?;
    rpc("evm_setAutomine", json!([false]))?;
    let mut w: Vec<Wallet> = (0..10).map(Wallet::dev).collect();
    for x in &mut w {
        x.nonce = quantity(&rpc(
            "eth_getTransactionCount",
            json!([x.address, "pending"]),
        )?)?;
    }
    let head = quantity(&rpc("eth_blockNumber", json!([]))?)?;
    let s = Sender {
        client,
        chain_id,
        pending: vec![],
        report: TrafficReport {
            first_block: head + 1,
            ..Default::default()
        },
    };
    Ok((s, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_helpers() {
        assert_eq!(
            hex::encode(selector("transfer(address,uint256)")),
            "a9059cbb"
        );
        assert_eq!(calldata("ping()", &[]).len(), 4);
        assert!(TOKEN_BIN.trim().len() > 100);
    }
}
