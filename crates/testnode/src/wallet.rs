//! Signing keys: anvil's ten funded dev accounts and throwaway keys.

use alloy_consensus::{SignableTransaction, Signed};
use alloy_eips::eip7702::{Authorization, SignedAuthorization};
use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use k256::ecdsa::SigningKey;

/// The private keys of anvil's default accounts (mnemonic `test test ... junk`): public test
/// keys, funded with 10 000 ETH each on a fresh anvil.
pub const DEV_KEYS: [&str; 10] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// A key with its address and the next nonce it will use.
#[derive(Debug, Clone)]
pub struct Wallet {
    key: SigningKey,
    /// Its address.
    pub address: Address,
    /// The nonce of its next transaction.
    pub nonce: u64,
}

impl Wallet {
    /// Anvil's dev account `i` (0..10).
    pub fn dev(i: usize) -> Self {
        let bytes: B256 = DEV_KEYS[i].parse().expect("dev key");
        Self::from_secret(bytes)
    }

    /// A throwaway key derived from `label` (unfunded).
    pub fn derived(label: &str) -> Self {
        Self::from_secret(keccak256(label.as_bytes()))
    }

    fn from_secret(secret: B256) -> Self {
        let key = SigningKey::from_slice(secret.as_slice()).expect("valid secret key");
        let address = Address::from_private_key(&key);
        Self {
            key,
            address,
            nonce: 0,
        }
    }

    /// Signs a 32-byte hash.
    pub fn sign_hash(&self, hash: B256) -> Signature {
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(hash.as_slice())
            .expect("sign");
        Signature::from_signature_and_parity(sig, recid.is_y_odd())
    }

    /// Signs a transaction.
    pub fn sign<T: SignableTransaction<Signature>>(&self, tx: T) -> Signed<T> {
        let sig = self.sign_hash(tx.signature_hash());
        tx.into_signed(sig)
    }

    /// An EIP-7702 authorization to delegate this account to `to` (the zero address clears the
    /// delegation), valid at `nonce`.
    pub fn authorize(&self, chain_id: u64, to: Address, nonce: u64) -> SignedAuthorization {
        let auth = Authorization {
            chain_id: U256::from(chain_id),
            address: to,
            nonce,
        };
        let sig = self.sign_hash(auth.signature_hash());
        auth.into_signed(sig)
    }
}
