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

use alloy_consensus::{
    TxEip1559, TxEip2930, TxEip4844, TxEip4844WithSidecar, TxEip7702, TxEnvelope, TxLegacy,
};
use alloy_eips::{
    eip2718::Encodable2718,
    eip2930::{AccessList, AccessListItem},
    eip4844::builder::{SidecarBuilder, SimpleCoder},
    eip7594::BlobTransactionSidecarVariant,
    eip7702::SignedAuthorization,
};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, hex, keccak256};
use serde_json::{Value, json};

use crate::{Client, Wallet};

const TOKEN_BIN: &str = include_str!("../contracts/out/Token.bin");
const PROBE_BIN: &str = include_str!("../contracts/out/Probe.bin");
const DELEGATE_BIN: &str = include_str!("../contracts/out/Delegate.bin");

const GWEI: u128 = 1_000_000_000;
const ETHER: u128 = 1_000_000_000_000_000_000;

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

struct Sender<'a> {
    client: &'a Client,
    chain_id: u64,
    pending: Vec<(B256, u8)>,
    report: TrafficReport,
}

impl Sender<'_> {
    fn send(&mut self, env: TxEnvelope, raw: Vec<u8>) -> Result<(), String> {
        let ty = env.tx_type() as u8;
        let hash = *env.tx_hash();
        self.client
            .call("eth_sendRawTransaction", json!([Bytes::from(raw)]))
            .map_err(|e| format!("eth_sendRawTransaction (type {ty}): {e}"))?;
        self.pending.push((hash, ty));
        Ok(())
    }

    fn legacy(
        &mut self,
        w: &mut Wallet,
        to: TxKind,
        value: U256,
        input: Bytes,
        gas: u64,
    ) -> Result<Address, String> {
        let tx = TxLegacy {
            chain_id: Some(self.chain_id),
            nonce: w.nonce,
            gas_price: 20 * GWEI,
            gas_limit: gas,
            to,
            value,
            input,
        };
        let created = w.address.create(w.nonce);
        let env: TxEnvelope = w.sign(tx).into();
        let raw = env.encoded_2718();
        self.send(env, raw)?;
        w.nonce += 1;
        Ok(created)
    }

    fn eip2930(
        &mut self,
        w: &mut Wallet,
        to: Address,
        value: U256,
        input: Bytes,
        gas: u64,
        access_list: AccessList,
    ) -> Result<(), String> {
        let tx = TxEip2930 {
            chain_id: self.chain_id,
            nonce: w.nonce,
            gas_price: 20 * GWEI,
            gas_limit: gas,
            to: TxKind::Call(to),
            value,
            access_list,
            input,
        };
        let env: TxEnvelope = w.sign(tx).into();
        let raw = env.encoded_2718();
        self.send(env, raw)?;
        w.nonce += 1;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn eip1559(
        &mut self,
        w: &mut Wallet,
        to: TxKind,
        value: U256,
        input: Bytes,
        gas: u64,
        tip_gwei: u128,
    ) -> Result<Address, String> {
        let tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce: w.nonce,
            gas_limit: gas,
            max_fee_per_gas: 30 * GWEI,
            max_priority_fee_per_gas: tip_gwei * GWEI,
            to,
            value,
            access_list: AccessList::default(),
            input,
        };
        let created = w.address.create(w.nonce);
        let env: TxEnvelope = w.sign(tx).into();
        let raw = env.encoded_2718();
        self.send(env, raw)?;
        w.nonce += 1;
        Ok(created)
    }

    fn blob(
        &mut self,
        w: &mut Wallet,
        to: Address,
        input: Bytes,
        data: &[u8],
    ) -> Result<(), String> {
        let sidecar = SidecarBuilder::<SimpleCoder>::from_slice(data)
            .build_7594()
            .map_err(|e| format!("blob sidecar: {e}"))?;
        let tx = TxEip4844 {
            chain_id: self.chain_id,
            nonce: w.nonce,
            gas_limit: 120_000,
            max_fee_per_gas: 30 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to,
            value: U256::ZERO,
            access_list: AccessList::default(),
            blob_versioned_hashes: sidecar.versioned_hashes().collect(),
            max_fee_per_blob_gas: 10 * GWEI,
            input,
        };
        let with = TxEip4844WithSidecar::from_tx_and_sidecar(
            tx,
            BlobTransactionSidecarVariant::Eip7594(sidecar),
        );
        let signed = w.sign(with);
        let env = TxEnvelope::Eip4844(signed.into());
        let raw = env.encoded_2718();
        self.send(env, raw)?;
        w.nonce += 1;
        Ok(())
    }

    fn eip7702(
        &mut self,
        w: &mut Wallet,
        to: Address,
        input: Bytes,
        auths: Vec<SignedAuthorization>,
    ) -> Result<(), String> {
        let tx = TxEip7702 {
            chain_id: self.chain_id,
            nonce: w.nonce,
            gas_limit: 200_000,
            max_fee_per_gas: 30 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to,
            value: U256::ZERO,
            access_list: AccessList::default(),
            authorization_list: auths,
            input,
        };
        let env: TxEnvelope = w.sign(tx).into();
        let raw = env.encoded_2718();
        self.send(env, raw)?;
        w.nonce += 1;
        Ok(())
    }

    /// Mines the pending txs into one block and checks they all made it.
    fn mine(&mut self) -> Result<u64, String> {
        let rpc = |m: &str, p: Value| self.client.call(m, p).map_err(|e| format!("{m}: {e}"));
        rpc("evm_mine", json!([]))?;
        for (h, ty) in std::mem::take(&mut self.pending) {
            let r = rpc("eth_getTransactionReceipt", json!([h]))?;
            if r.is_null() {
                return Err(format!("tx {h} (type {ty}) was not mined"));
            }
            self.report.txs += 1;
            self.report.by_type[ty as usize] += 1;
        }
        let n = rpc("eth_blockNumber", json!([]))?;
        let n = u64::from_str_radix(n.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)
            .map_err(|e| e.to_string())?;
        self.report.last_block = n;
        Ok(n)
    }
}

/// Drives the node at `url` (a fresh anvil: its dev accounts must be funded and unused).
pub fn run(url: &str, opts: &TrafficOptions) -> Result<TrafficReport, String> {
    let client = Client::new(url);
    let rpc = |m: &str, p: Value| client.call(m, p).map_err(|e| format!("{m}: {e}"));
    let chain_id = rpc("eth_chainId", json!([]))?;
    let chain_id = u64::from_str_radix(
        chain_id.as_str().unwrap_or("0x0").trim_start_matches("0x"),
        16,
    )
    .map_err(|e| e.to_string())?;
    rpc("evm_setAutomine", json!([false]))?;
    let mut w: Vec<Wallet> = (0..10).map(Wallet::dev).collect();
    for x in &mut w {
        let n = rpc("eth_getTransactionCount", json!([x.address, "pending"]))?;
        x.nonce = u64::from_str_radix(n.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)
            .map_err(|e| e.to_string())?;
    }
    let head = rpc("eth_blockNumber", json!([]))?;
    let head = u64::from_str_radix(head.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)
        .map_err(|e| e.to_string())?;
    let mut s = Sender {
        client: &client,
        chain_id,
        pending: vec![],
        report: TrafficReport {
            first_block: head + 1,
            ..Default::default()
        },
    };
    let one = |v: u128| U256::from(v);

    // block 1: the contracts, by create transactions
    let supply = U256::from(1_000_000u64) * one(ETHER);
    let mut token_init = code(TOKEN_BIN);
    token_init.extend_from_slice(num_word(supply).as_slice());
    let token = s.eip1559(
        &mut w[0],
        TxKind::Create,
        U256::ZERO,
        token_init.into(),
        1_500_000,
        2,
    )?;
    let probe = s.eip1559(
        &mut w[0],
        TxKind::Create,
        U256::ZERO,
        code(PROBE_BIN).into(),
        1_500_000,
        2,
    )?;
    let delegate = s.legacy(
        &mut w[0],
        TxKind::Create,
        U256::ZERO,
        code(DELEGATE_BIN).into(),
        500_000,
    )?;
    for i in 1..8 {
        let (a, b) = w.split_at_mut(i);
        s.eip1559(
            &mut a[0],
            TxKind::Call(b[0].address),
            one(ETHER),
            Bytes::new(),
            21_000,
            1,
        )?;
    }
    s.mine()?;
    s.report.token = token;
    s.report.probe = probe;
    s.report.delegate = delegate;

    // block 2: token distribution and a standing allowance
    let transfer = "transfer(address,uint256)";
    for i in 1..8 {
        let to = w[i].address;
        let data = calldata(transfer, &[addr_word(to), num_word(one(10_000 * ETHER))]);
        s.eip1559(&mut w[0], TxKind::Call(token), U256::ZERO, data, 90_000, 2)?;
    }
    let approve_max = calldata(
        "approve(address,uint256)",
        &[addr_word(w[2].address), num_word(U256::MAX)],
    );
    s.eip1559(
        &mut w[1],
        TxKind::Call(token),
        U256::ZERO,
        approve_max,
        80_000,
        1,
    )?;
    s.mine()?;

    let authority = Wallet::derived("txshadow traffic: EIP-7702 authority");
    s.report.delegator = authority.address;
    let ping = calldata("ping()", &[]);
    for r in 0..opts.rounds {
        let number = s.report.last_block + 1;
        // transfers among accounts 1..=6: ETH (three tx types) and tokens
        for i in 0..opts.transfers {
            let a = 1 + (i + r) % 6;
            let b = 1 + (i + r + 1) % 6;
            let to = w[b].address;
            let value = one((i as u128 + 1) * ETHER / 1000);
            let wa = &mut w[a];
            match i % 3 {
                0 => {
                    s.legacy(wa, TxKind::Call(to), value, Bytes::new(), 21_000)?;
                }
                1 => {
                    let al = AccessList(vec![AccessListItem {
                        address: to,
                        storage_keys: vec![],
                    }]);
                    s.eip2930(wa, to, value, Bytes::new(), 30_000, al)?;
                }
                _ => {
                    s.eip1559(wa, TxKind::Call(to), value, Bytes::new(), 21_000, 1)?;
                }
            }
            let data = calldata(
                transfer,
                &[addr_word(to), num_word(one((i as u128 + 1) * ETHER))],
            );
            if i % 4 == 1 {
                // token transfer with the touched balance slots in an access list
                let from = w[a].address;
                let al = AccessList(vec![AccessListItem {
                    address: token,
                    storage_keys: vec![mapping_slot(from, 0), mapping_slot(to, 0)],
                }]);
                s.eip2930(&mut w[a], token, U256::ZERO, data, 90_000, al)?;
            } else {
                s.eip1559(&mut w[a], TxKind::Call(token), U256::ZERO, data, 90_000, 1)?;
            }
        }
        // approve then spend the whole allowance (its slot written and cleared in one block);
        // higher tips order them
        let (w3, w4, w5) = (w[3].address, w[4].address, w[5].address);
        let approve = calldata(
            "approve(address,uint256)",
            &[addr_word(w4), num_word(one(5 * ETHER))],
        );
        s.eip1559(
            &mut w[3],
            TxKind::Call(token),
            U256::ZERO,
            approve,
            80_000,
            4,
        )?;
        let spend = calldata(
            "transferFrom(address,address,uint256)",
            &[addr_word(w3), addr_word(w5), num_word(one(5 * ETHER))],
        );
        s.eip1559(&mut w[4], TxKind::Call(token), U256::ZERO, spend, 90_000, 1)?;
        // a standing max allowance: transferFrom without an allowance write
        let (w1, w6) = (w[1].address, w[6].address);
        let spend = calldata(
            "transferFrom(address,address,uint256)",
            &[addr_word(w1), addr_word(w6), num_word(one(ETHER))],
        );
        s.eip1559(&mut w[2], TxKind::Call(token), U256::ZERO, spend, 90_000, 1)?;
        // account 7's balance slot: written by account 0, cleared by 7 in the same block
        let w7 = w[7].address;
        let give = calldata(transfer, &[addr_word(w7), num_word(one(1000 * ETHER))]);
        s.eip1559(&mut w[0], TxKind::Call(token), U256::ZERO, give, 90_000, 5)?;
        let held = if r == 0 { 10_000 * ETHER } else { 0 };
        let back = calldata(
            transfer,
            &[addr_word(w[0].address), num_word(one(1000 * ETHER + held))],
        );
        s.eip1559(&mut w[7], TxKind::Call(token), U256::ZERO, back, 90_000, 1)?;
        // a failing transfer (custom error revert)
        let too_much = calldata(
            transfer,
            &[addr_word(w3), num_word(one(ETHER) * one(ETHER))],
        );
        s.eip1559(
            &mut w[5],
            TxKind::Call(token),
            U256::ZERO,
            too_much,
            90_000,
            1,
        )?;

        // the probe: block context, storage writes and clears, out of gas, revert, creates
        let back_n = (r as u64 + 2).min(number);
        s.eip1559(
            &mut w[1],
            TxKind::Call(probe),
            U256::ZERO,
            calldata("context(uint256)", &[num_word(U256::from(back_n))]),
            120_000,
            1,
        )?;
        let key = U256::from(r * 10 + 1);
        s.eip1559(
            &mut w[2],
            TxKind::Call(probe),
            U256::ZERO,
            calldata(
                "put(uint256,uint256)",
                &[num_word(key), num_word(U256::from(r + 7))],
            ),
            60_000,
            1,
        )?;
        if r > 0 {
            let prev = U256::from((r - 1) * 10 + 1);
            s.eip1559(
                &mut w[3],
                TxKind::Call(probe),
                U256::ZERO,
                calldata(
                    "put(uint256,uint256)",
                    &[num_word(prev), num_word(U256::ZERO)],
                ),
                60_000,
                1,
            )?;
        }
        s.eip1559(
            &mut w[4],
            TxKind::Call(probe),
            U256::ZERO,
            calldata(
                "putMany(uint256,uint256,uint256)",
                &[
                    num_word(U256::from(1000 * r)),
                    num_word(U256::from(200)),
                    num_word(U256::from(1)),
                ],
            ),
            80_000,
            1,
        )?;
        s.eip1559(
            &mut w[5],
            TxKind::Call(probe),
            U256::ZERO,
            calldata("fail(uint256)", &[num_word(U256::from(r))]),
            60_000,
            1,
        )?;
        s.eip1559(
            &mut w[6],
            TxKind::Call(probe),
            one(ETHER / 100),
            calldata("make(bytes32)", &[num_word(U256::from(r))]),
            600_000,
            1,
        )?;
        s.eip1559(
            &mut w[3],
            TxKind::Call(probe),
            U256::ZERO,
            calldata("makeAndKill(bytes32)", &[num_word(U256::from(1000 + r))]),
            400_000,
            1,
        )?;
        // a contract created by a transaction (legacy, then EIP-1559)
        let mut init = code(TOKEN_BIN);
        init.extend_from_slice(num_word(U256::from(1000 + r)).as_slice());
        if r % 2 == 0 {
            s.legacy(
                &mut w[5],
                TxKind::Create,
                U256::ZERO,
                init.into(),
                1_500_000,
            )?;
        } else {
            s.eip1559(
                &mut w[5],
                TxKind::Create,
                U256::ZERO,
                init.into(),
                1_500_000,
                1,
            )?;
        }
        // ETH to a new account
        let fresh = Wallet::derived(&format!("txshadow traffic: fresh {r}")).address;
        s.eip1559(
            &mut w[6],
            TxKind::Call(fresh),
            one(ETHER / 10),
            Bytes::new(),
            21_000,
            1,
        )?;
        // a blob (one per block keeps the excess blob gas at zero)
        if opts.blobs {
            let payload = format!("txshadow blob {r}").repeat(64);
            s.blob(
                &mut w[8],
                probe,
                calldata("blob()", &[]),
                payload.as_bytes(),
            )?;
        }
        // EIP-7702: delegate in the first round, use the delegation, clear it in the last
        if opts.delegations {
            if r == 0 {
                let auth = authority.authorize(chain_id, delegate, 0);
                s.eip7702(&mut w[9], authority.address, ping.clone(), vec![auth])?;
            } else if r + 1 == opts.rounds {
                let auth = authority.authorize(chain_id, Address::ZERO, 1);
                s.eip7702(&mut w[9], authority.address, Bytes::new(), vec![auth])?;
            } else {
                s.eip1559(
                    &mut w[9],
                    TxKind::Call(authority.address),
                    U256::ZERO,
                    ping.clone(),
                    100_000,
                    1,
                )?;
            }
        }
        s.mine()?;
    }
    Ok(s.report)
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
