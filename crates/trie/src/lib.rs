//! txshadow trie: a sparse Merkle-Patricia trie over a state witness.
//!
//! A corpus built from prestate traces holds only the accounts and slots a block touches. With
//! a witness (the trie nodes of those accounts and slots under the parent's state root), this
//! crate checks the pre-state against that root and computes the state root after the block:
//! the witness reveals the paths of the touched keys, the rest of the trie stays hashes.
//!
//! ```
//! use std::sync::Arc;
//! use alloy_primitives::{Address, B256, U256};
//! use alloy_trie::{EMPTY_ROOT_HASH, KECCAK_EMPTY};
//! use txshadow_trie::{AccountUpdate, NodeSet, StateTrie};
//!
//! // an empty parent state: nothing to reveal
//! let mut state = StateTrie::new(EMPTY_ROOT_HASH, Arc::new(NodeSet::default()));
//! let a = Address::repeat_byte(1);
//! assert_eq!(state.account(a).unwrap(), None);
//! let update = AccountUpdate { balance: U256::from(1), code_hash: KECCAK_EMPTY, ..Default::default() };
//! state.set_account(a, Some(&update)).unwrap();
//! assert_ne!(state.root(), EMPTY_ROOT_HASH);
//! ```

mod sparse;
mod state;
pub mod witness;

#[cfg(test)]
mod tests;

pub use sparse::{Need, NodeSet, Path, SparseError, SparseTrie};
pub use state::{AccountUpdate, Key, StateTrie, TrieError};
