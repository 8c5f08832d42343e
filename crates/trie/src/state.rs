//! The Ethereum state as sparse tries: the account trie and one storage trie per account.

use std::{collections::HashMap, fmt, sync::Arc};

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles, TrieAccount};

use crate::sparse::{NodeSet, Path, SparseError, SparseTrie};

/// The account or slot an operation was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// An account, in the account trie.
    Account(Address),
    /// A storage slot, in the account's storage trie.
    Slot(Address, U256),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(a) => write!(f, "account {a} (account trie)"),
            Self::Slot(a, k) => write!(f, "slot {k:#x} of {a} (its storage trie)"),
        }
    }
}

/// A state-trie operation failed: which account or slot, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {source}")]
pub struct TrieError {
    /// The account or slot.
    pub key: Key,
    /// The trie-level failure.
    #[source]
    pub source: Box<SparseError>,
}

/// The new value of an account after a block (or a tx).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    /// Balance.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Code hash.
    pub code_hash: B256,
    /// The storage was wiped (account destroyed or created anew) before `storage` was written.
    pub wipe_storage: bool,
    /// Slots written, with their new values (zero deletes the slot).
    pub storage: Vec<(U256, U256)>,
}

/// The state under a root, revealed from a witness as it is read and written.
#[derive(Debug, Clone)]
pub struct StateTrie {
    nodes: Arc<NodeSet>,
    accounts: SparseTrie,
    storages: HashMap<Address, SparseTrie>,
}

fn account_key(a: &Address) -> Nibbles {
    Nibbles::unpack(keccak256(a))
}

fn slot_key(k: &U256) -> Nibbles {
    Nibbles::unpack(keccak256(B256::from(*k)))
}

impl TrieError {
    fn new(key: Key, source: SparseError) -> Self {
        Self {
            key,
            source: Box::new(source),
        }
    }
}

impl StateTrie {
    /// The state whose account trie has root `state_root`, with `nodes` to reveal it from.
    pub fn new(state_root: B256, nodes: Arc<NodeSet>) -> Self {
        Self {
            nodes,
            accounts: SparseTrie::new(state_root),
            storages: HashMap::new(),
        }
    }

    /// The witness nodes.
    pub fn nodes(&self) -> &NodeSet {
        &self.nodes
    }

    /// An account as the trie holds it; `None` when the trie proves it absent.
    pub fn account(&mut self, a: Address) -> Result<Option<TrieAccount>, TrieError> {
        let key = account_key(&a);
        let err = |source| TrieError::new(Key::Account(a), source);
        let Some(leaf) = self.accounts.get(&self.nodes, &key).map_err(err)? else {
            return Ok(None);
        };
        let acc = TrieAccount::decode(&mut leaf.as_slice()).map_err(|e| {
            err(SparseError::Invalid {
                path: Path(key),
                reason: format!("undecodable account leaf: {e}"),
            })
        })?;
        Ok(Some(acc))
    }

    /// The storage trie of `a`, created from `storage_root` the first time.
    fn storage_trie(&mut self, a: Address, storage_root: B256) -> &mut SparseTrie {
        self.storages
            .entry(a)
            .or_insert_with(|| SparseTrie::new(storage_root))
    }

    /// A slot's value (zero when the trie proves it absent, or when the account is absent).
    pub fn storage(&mut self, a: Address, slot: U256) -> Result<U256, TrieError> {
        let Some(acc) = self.account(a)? else {
            return Ok(U256::ZERO);
        };
        let key = slot_key(&slot);
        let err = |source| TrieError::new(Key::Slot(a, slot), source);
        let nodes = Arc::clone(&self.nodes);
        let Some(leaf) = self
            .storage_trie(a, acc.storage_root)
            .get(&nodes, &key)
            .map_err(err)?
        else {
            return Ok(U256::ZERO);
        };
        U256::decode(&mut leaf.as_slice()).map_err(|e| {
            err(SparseError::Invalid {
                path: Path(key),
                reason: format!("undecodable slot value: {e}"),
            })
        })
    }

    /// Sets an account (`None` deletes it and its storage), writing its slots and its new
    /// storage root.
    pub fn set_account(
        &mut self,
        a: Address,
        update: Option<&AccountUpdate>,
    ) -> Result<(), TrieError> {
        let key = account_key(&a);
        let nodes = Arc::clone(&self.nodes);
        let Some(u) = update else {
            self.storages.remove(&a);
            self.accounts
                .remove(&nodes, &key)
                .map_err(|source| TrieError::new(Key::Account(a), source))?;
            return Ok(());
        };
        let pre = self.account(a)?;
        let storage_root = match pre {
            Some(p) if !u.wipe_storage => p.storage_root,
            _ => {
                self.storages.insert(a, SparseTrie::empty());
                EMPTY_ROOT_HASH
            }
        };
        let trie = self.storage_trie(a, storage_root);
        for (slot, value) in &u.storage {
            let k = slot_key(slot);
            let r = if value.is_zero() {
                trie.remove(&nodes, &k).map(|_| ())
            } else {
                trie.insert(&nodes, &k, alloy_rlp::encode(value))
            };
            r.map_err(|source| TrieError::new(Key::Slot(a, *slot), source))?;
        }
        let account = TrieAccount {
            nonce: u.nonce,
            balance: u.balance,
            storage_root: trie.root(),
            code_hash: u.code_hash,
        };
        self.accounts
            .insert(&nodes, &key, alloy_rlp::encode(account))
            .map_err(|source| TrieError::new(Key::Account(a), source))
    }

    /// The state root.
    pub fn root(&mut self) -> B256 {
        self.accounts.root()
    }
}
