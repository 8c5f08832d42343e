//! The database a replay reads: a block's pre-state, shared codes and stored ancestor hashes.
//! Nothing is invented: an unknown block hash is an error (unless the source's conventions say
//! otherwise), and so is an unknown code.

use std::collections::HashMap;

use alloy_primitives::{Address, B256, U256};
use revm::{
    bytecode::Bytecode,
    database_interface::{DBErrorMarker, Database},
    primitives::StorageKey,
    state::AccountInfo,
};
use txshadow_corpus::{BlockRecord, CodeStore, KECCAK_EMPTY};

/// Codes decoded and analysed once per run, shared by every block and worker.
#[derive(Debug, Default, Clone)]
pub struct Codes {
    map: HashMap<B256, Bytecode>,
}

impl Codes {
    /// Decodes every code of a store (invalid code is kept as raw legacy bytes).
    pub fn from_store(store: &CodeStore, hashes: impl IntoIterator<Item = B256>) -> Self {
        let mut map = HashMap::new();
        for h in hashes {
            if let Some(code) = store.get(&h) {
                map.insert(h, decode_code(code.clone()));
            }
        }
        Self { map }
    }

    /// Looks a code up.
    pub fn get(&self, h: &B256) -> Option<&Bytecode> {
        self.map.get(h)
    }

    /// Adds a code.
    pub fn insert(&mut self, code: Bytecode) -> B256 {
        let h = code.hash_slow();
        self.map.insert(h, code);
        h
    }
}

/// Bytecode from raw bytes; malformed EOF/7702 bytes stay raw legacy code instead of panicking.
pub fn decode_code(code: alloy_primitives::Bytes) -> Bytecode {
    Bytecode::new_raw_checked(code.clone()).unwrap_or_else(|_| Bytecode::new_legacy(code))
}

/// A read the corpus cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// BLOCKHASH of a block whose hash the corpus does not store.
    #[error("BLOCKHASH({0}) read, but the corpus does not store that block's hash")]
    UnknownBlockHash(u64),
    /// Code referenced but not in the corpus.
    #[error("code {0} not in the corpus")]
    UnknownCode(B256),
}

impl DBErrorMarker for DbError {}

/// A block's pre-state as a revm database.
#[derive(Debug, Clone)]
pub struct CorpusDb<'a> {
    block: &'a BlockRecord,
    codes: &'a Codes,
    unknown_blockhash_is_zero: bool,
    /// Accounts read that the pre-state does not list (assumed absent).
    pub unknown_accounts: Vec<Address>,
}

impl<'a> CorpusDb<'a> {
    /// A database over `block`'s pre-state.
    pub fn new(block: &'a BlockRecord, codes: &'a Codes) -> Self {
        Self {
            block,
            codes,
            unknown_blockhash_is_zero: block.conventions.unknown_blockhash_is_zero,
            unknown_accounts: Vec::new(),
        }
    }
}

impl Database for CorpusDb<'_> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        let info = match self.block.pre_state.get(&address) {
            Some(Some(acc)) => {
                let code_hash = if acc.code_hash == B256::ZERO {
                    KECCAK_EMPTY
                } else {
                    acc.code_hash
                };
                // code the corpus lacks (recorded as unavailable) is left unloaded: revm asks
                // `code_by_hash` when it needs the bytes, which then fails naming the hash; an
                // account that is only credited (a withdrawal) replays without them
                let code = if code_hash == KECCAK_EMPTY {
                    Some(Bytecode::default())
                } else {
                    self.codes.get(&code_hash).cloned()
                };
                Some(AccountInfo {
                    balance: acc.balance,
                    nonce: acc.nonce,
                    code_hash,
                    code,
                    ..Default::default()
                })
            }
            Some(None) => None,
            None => {
                self.unknown_accounts.push(address);
                None
            }
        };
        Ok(info)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        self.codes
            .get(&code_hash)
            .cloned()
            .ok_or(DbError::UnknownCode(code_hash))
    }

    fn storage(&mut self, address: Address, index: StorageKey) -> Result<U256, DbError> {
        Ok(self
            .block
            .pre_state
            .get(&address)
            .and_then(|a| a.as_ref())
            .and_then(|a| a.storage.get(&index).copied())
            .unwrap_or_default())
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        if let Some(h) = self.block.block_hashes.get(&number) {
            return Ok(*h);
        }
        if number + 1 == self.block.number() && !self.block.synthetic {
            return Ok(self.block.header.parent_hash);
        }
        if self.unknown_blockhash_is_zero {
            return Ok(B256::ZERO);
        }
        Err(DbError::UnknownBlockHash(number))
    }
}
