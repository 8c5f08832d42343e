//! Signing, sending and mining the traffic's transactions.

use alloy_consensus::{
    TxEip1559, TxEip2930, TxEip4844, TxEip4844WithSidecar, TxEip7702, TxEnvelope, TxLegacy,
};
use alloy_eips::{
    eip2718::Encodable2718,
    eip2930::AccessList,
    eip4844::builder::{SidecarBuilder, SimpleCoder},
    eip7594::BlobTransactionSidecarVariant,
    eip7702::SignedAuthorization,
};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use serde_json::{Value, json};

use super::{GWEI, TrafficReport, quantity};
use crate::{Client, Wallet};

/// Signs and sends the txs of a block, mines it, and keeps the report.
pub(super) struct Sender<'a> {
    /// The node.
    pub(super) client: &'a Client,
    /// Its chain id.
    pub(super) chain_id: u64,
    /// Sent and not mined yet: hash and type.
    pub(super) pending: Vec<(B256, u8)>,
    /// What was mined so far.
    pub(super) report: TrafficReport,
}

impl Sender<'_> {
    /// Sends a signed tx raw and keeps it pending.
    fn send(&mut self, env: TxEnvelope, raw: Vec<u8>) -> Result<(), String> {
        let ty = env.tx_type() as u8;
        let hash = *env.tx_hash();
        self.client
            .call("eth_sendRawTransaction", json!([Bytes::from(raw)]))
            .map_err(|e| format!("eth_sendRawTransaction (type {ty}): {e}"))?;
        self.pending.push((hash, ty));
        Ok(())
    }

    /// A legacy tx (EIP-155); returns the address a create makes.
    pub(super) fn legacy(
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

    /// An EIP-2930 tx with `access_list`.
    pub(super) fn eip2930(
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

    /// An EIP-1559 tx paying `tip_gwei`; returns the address a create makes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn eip1559(
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

    /// A blob tx (EIP-4844) carrying `data` in its sidecar.
    pub(super) fn blob(
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

    /// An EIP-7702 tx carrying the authorizations `auths`.
    pub(super) fn eip7702(
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
    pub(super) fn mine(&mut self) -> Result<u64, String> {
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
        let n = quantity(&rpc("eth_blockNumber", json!([]))?)?;
        self.report.last_block = n;
        Ok(n)
    }
}
