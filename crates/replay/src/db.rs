//! The database a replay reads: a block's pre-state, shared codes and stored ancestor hashes.
//! Nothing is invented: an unknown block hash is an error (unless the source's conventions say
//! otherwise), and so is an unknown code.

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    ops::{Deref, DerefMut},
    sync::OnceLock,
};

use alloy_primitives::{Address, B256, U256};
use revm::{
    bytecode::{Bytecode, JumpTable},
    database::{AccountState as DbAccountState, CacheDB},
    database_interface::{DBErrorMarker, Database, DatabaseCommit, DatabaseRef},
    primitives::{AddressMap, StorageKey},
    state::{Account, AccountInfo},
};
use txshadow_corpus::{AccountState, Analysed, BlockRecord, CodeStore, KECCAK_EMPTY};
use txshadow_trie::Key;

use crate::Overrides;

/// Codes shared by every block and worker, each decoded the first time a replay runs or reads
/// it, once per run: a code the corpus holds for an account whose code no tx loads (a balance
/// read, a credited contract) is never decoded. A packed code comes with the jump table revm's
/// analysis gave it when it was packed, and is taken as it is from the mapped pack; any other
/// code is analysed then.
#[derive(Debug, Default, Clone)]
pub struct Codes {
    map: alloy_primitives::map::B256Map<LazyCode>,
}

#[derive(Debug, Clone)]
struct LazyCode {
    raw: alloy_primitives::Bytes,
    analysed: Option<Analysed>,
    decoded: OnceLock<Bytecode>,
    /// Decoding it panics (see [`Codes::insert_panicking`]).
    panics: bool,
}

impl Codes {
    /// The codes of a store, decoded on first use (invalid code is kept as raw legacy bytes).
    pub fn from_store(store: &CodeStore, hashes: impl IntoIterator<Item = B256>) -> Self {
        let map = hashes
            .into_iter()
            .filter_map(|h| {
                store.get(&h).map(|code| {
                    let lazy = LazyCode {
                        raw: code.clone(),
                        analysed: store.analysed(&h).cloned(),
                        decoded: OnceLock::new(),
                        panics: false,
                    };
                    (h, lazy)
                })
            })
            .collect();
        Self { map }
    }

    /// Looks a code up, decoding it on first use.
    pub fn get(&self, h: &B256) -> Option<&Bytecode> {
        self.map.get(h).map(|c| {
            c.decoded.get_or_init(|| {
                assert!(
                    !c.panics,
                    "code {h} is set to panic when used (a test hook)"
                );
                c.analysed
                    .as_ref()
                    .and_then(|a| from_analysed(&c.raw, a))
                    .unwrap_or_else(|| decode_code(c.raw.clone()))
            })
        })
    }

    /// Whether the code is known, without decoding it.
    pub fn contains(&self, h: &B256) -> bool {
        self.map.contains_key(h)
    }

    /// Adds a code.
    pub fn insert(&mut self, code: Bytecode) -> B256 {
        let h = code.hash_slow();
        let lazy = LazyCode {
            raw: code.original_bytes(),
            analysed: None,
            decoded: OnceLock::from(code),
            panics: false,
        };
        self.map.insert(h, lazy);
        h
    }

    /// Adds a code whose first use by a replay panics (inside the EVM, as a revm bug would):
    /// for tests that a tx panicking inside the EVM is one failed item and the run goes on.
    /// Returns its hash.
    #[doc(hidden)]
    pub fn insert_panicking(&mut self, raw: alloy_primitives::Bytes) -> B256 {
        let h = alloy_primitives::keccak256(&raw);
        let lazy = LazyCode {
            raw,
            analysed: None,
            decoded: OnceLock::new(),
            panics: true,
        };
        self.map.insert(h, lazy);
        h
    }
}

/// Legacy bytecode from a code and the jump table stored with it, without analysing it again;
/// `None` (analyse it instead) unless the code is legacy bytecode, the padding is
/// [`txshadow_corpus::pack::PADDING`] zero bytes after exactly the code, and the table has a bit
/// per byte of code. Those checks make the result safe to execute whatever the table holds: a
/// PUSH32 as the last byte of code reads padding, and the STOP after it ends execution; a jump
/// the table wrongly allows lands inside the padded code. The table's correctness is checked by
/// its CRC-32 on load and against revm's analysis by `corpus verify`.
fn from_analysed(raw: &alloy_primitives::Bytes, a: &Analysed) -> Option<Bytecode> {
    use txshadow_corpus::pack::PADDING;
    let len = raw.len();
    let legacy = len > 0 && !raw.starts_with(revm::bytecode::eip7702::EIP7702_MAGIC_BYTES);
    let sound = legacy
        && a.len == len
        && a.padded.len() == len + PADDING
        // the same bytes: in a pack both are one slice of the mapped file (no compare needed)
        && (std::ptr::eq(a.padded.as_ptr(), raw.as_ptr()) || a.padded[..len] == raw[..])
        && a.padded[len..].iter().all(|b| *b == 0)
        && a.jump_table.len() == len.div_ceil(8);
    if !sound {
        return None;
    }
    let table = JumpTable::from_slice(&a.jump_table, len);
    // SAFETY: the code is followed by PADDING (33) zero bytes, more than revm's own analysis
    // pads (at most a PUSH32's data and a STOP), and the table covers every byte of the code
    // (checked above); see the function's docs.
    Some(unsafe { Bytecode::new_analyzed(a.padded.clone(), len, table) })
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

/// The account a pre-state entry describes. Its code is left unloaded: revm asks `code_by_hash`
/// when a tx needs the bytes (a call, EXTCODESIZE/COPY, a delegation), which decodes it then, or
/// fails naming the hash when the corpus records it as unavailable; an account that is only
/// read or credited replays without its code ever being decoded.
fn account_info(acc: &AccountState) -> AccountInfo {
    let code_hash = if acc.code_hash == B256::ZERO {
        KECCAK_EMPTY
    } else {
        acc.code_hash
    };
    let code = (code_hash == KECCAK_EMPTY).then(Bytecode::default);
    AccountInfo {
        balance: acc.balance,
        nonce: acc.nonce,
        code_hash,
        code,
        ..Default::default()
    }
}

fn block_hash(block: &BlockRecord, number: u64) -> Result<B256, DbError> {
    if let Some(h) = block.block_hashes.get(&number) {
        return Ok(*h);
    }
    if number + 1 == block.number() && !block.synthetic {
        return Ok(block.header.parent_hash);
    }
    if block.conventions.unknown_blockhash_is_zero {
        return Ok(B256::ZERO);
    }
    Err(DbError::UnknownBlockHash(number))
}

/// What block mode runs on: the block's pre-state, behind a configuration's overrides, loaded
/// into revm's in-memory [`CacheDB`] before the first tx (see [`block_db`]). Reads the cache
/// cannot answer fall through to the [`CorpusRef`] behind it. Dereferences to the cache.
///
/// Its commit is [`CacheDB`]'s with one fix. `CacheDB` commits a destroyed account as
/// `NotExisting` with its storage dropped from the cache, and an account that is not newly
/// created as `Touched` unless it already was `StorageCleared`. So an account destroyed by one tx
/// and then sent value by a later tx of the block (a transfer, a reward, a withdrawal) comes back
/// `Touched`: its slots that are not in the cache are read from the pre-state again, a later tx
/// sees the destroyed storage, and the post-state does not say it was wiped. A node wipes it; so
/// does this commit, by keeping such an account `StorageCleared`.
#[derive(Debug)]
pub struct BlockDb<'a> {
    cache: CacheDB<CorpusRef<'a>>,
    /// Accounts destroyed by an earlier commit of the block.
    destroyed: HashSet<Address>,
}

impl<'a> Deref for BlockDb<'a> {
    type Target = CacheDB<CorpusRef<'a>>;

    fn deref(&self) -> &Self::Target {
        &self.cache
    }
}

impl DerefMut for BlockDb<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.cache
    }
}

impl Database for BlockDb<'_> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        self.cache.basic(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        self.cache.code_by_hash(code_hash)
    }

    fn storage(&mut self, address: Address, index: StorageKey) -> Result<U256, DbError> {
        self.cache.storage(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        self.cache.block_hash(number)
    }
}

impl DatabaseCommit for BlockDb<'_> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        // accounts destroyed earlier in the block that this commit gives a value again
        let revived: Vec<Address> = if self.destroyed.is_empty() {
            Vec::new()
        } else {
            changes
                .iter()
                .filter(|(a, acc)| {
                    acc.is_touched() && !acc.is_selfdestructed() && self.destroyed.contains(*a)
                })
                .map(|(a, _)| *a)
                .collect()
        };
        self.destroyed.extend(
            changes
                .iter()
                .filter(|(_, acc)| acc.is_touched() && acc.is_selfdestructed())
                .map(|(a, _)| *a),
        );
        self.cache.commit(changes);
        for a in revived {
            if let Some(acc) = self.cache.cache.accounts.get_mut(&a)
                && acc.account_state == DbAccountState::Touched
            {
                acc.account_state = DbAccountState::StorageCleared;
            }
        }
    }
}

/// The corpus behind a [`BlockDb`]: answers for accounts and slots the pre-state does not list
/// (absent, zero), ancestors' hashes and codes, under the overrides; remembers the accounts read
/// that the pre-state does not list, and the watched values read.
#[derive(Debug)]
pub struct CorpusRef<'a> {
    block: &'a BlockRecord,
    codes: &'a Codes,
    overrides: &'a Overrides,
    unknown: RefCell<Vec<Address>>,
    watch: Watch,
}

/// Pre-state values a block runs watching: those its witness cannot prove. [`block_db`] leaves
/// them out of the cache, so their first load reaches the [`CorpusRef`], which records it. An
/// account's code counts as read when the code of its hash is loaded (the first time a code
/// hash is loaded in the block: a watched account whose code an account with a proof shares and
/// ran before it is not seen running).
#[derive(Debug, Default, Clone)]
pub(crate) struct Watch {
    accounts: HashSet<Address>,
    slots: HashSet<(Address, U256)>,
    /// Code hash → the watched accounts with that code.
    codes: HashMap<B256, Vec<Address>>,
    /// Loaded so far: accounts and slots (as trie keys), and accounts whose code was loaded.
    reads: RefCell<(Vec<Key>, Vec<Address>)>,
}

impl Watch {
    /// Watches an account (with its code hash, if it has code).
    pub(crate) fn add_account(&mut self, a: Address, code_hash: Option<B256>) {
        self.accounts.insert(a);
        if let Some(h) = code_hash.filter(|h| *h != KECCAK_EMPTY && *h != B256::ZERO) {
            self.codes.entry(h).or_default().push(a);
        }
    }

    /// Watches a slot.
    pub(crate) fn add_slot(&mut self, a: Address, k: U256) {
        self.slots.insert((a, k));
    }

    fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.slots.is_empty()
    }
}

impl<'a> CorpusRef<'a> {
    /// The block's pre-state under `overrides`.
    pub fn new(block: &'a BlockRecord, codes: &'a Codes, overrides: &'a Overrides) -> Self {
        Self {
            block,
            codes,
            overrides,
            unknown: RefCell::new(Vec::new()),
            watch: Watch::default(),
        }
    }

    /// Accounts read that the pre-state does not list (treated as absent), in read order.
    pub fn take_unknown(&self) -> Vec<Address> {
        std::mem::take(&mut *self.unknown.borrow_mut())
    }

    /// The watched accounts and slots read so far, and the watched accounts whose code was
    /// loaded; watching stops (later reads, such as the post-state's, are not the block's).
    pub(crate) fn take_watched(&mut self) -> (Vec<Key>, Vec<Address>) {
        std::mem::take(&mut self.watch).reads.into_inner()
    }
}

impl DatabaseRef for CorpusRef<'_> {
    type Error = DbError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        if self.watch.accounts.contains(&address) {
            self.watch.reads.borrow_mut().0.push(Key::Account(address));
        }
        let mut info = match self.block.pre_state.get(&address) {
            Some(Some(acc)) => Some(account_info(acc)),
            Some(None) => None,
            None => {
                self.unknown.borrow_mut().push(address);
                None
            }
        };
        if !self.overrides.is_empty() {
            self.overrides.apply_account(address, &mut info);
        }
        Ok(info)
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, DbError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        if let Some(c) = self.overrides.code_by_hash(&code_hash) {
            return Ok(c.clone());
        }
        if let Some(accounts) = self.watch.codes.get(&code_hash) {
            self.watch.reads.borrow_mut().1.extend(accounts);
        }
        self.codes
            .get(&code_hash)
            .cloned()
            .ok_or(DbError::UnknownCode(code_hash))
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<U256, DbError> {
        if self.watch.slots.contains(&(address, index)) {
            self.watch
                .reads
                .borrow_mut()
                .0
                .push(Key::Slot(address, index));
        }
        if let Some(v) = self
            .overrides
            .storage
            .get(&address)
            .and_then(|s| s.get(&index))
        {
            return Ok(*v);
        }
        Ok(self
            .block
            .pre_state
            .get(&address)
            .and_then(|a| a.as_ref())
            .and_then(|a| a.storage.get(&index).copied())
            .unwrap_or_default())
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, DbError> {
        block_hash(self.block, number)
    }
}

/// The in-memory state block mode starts from: every account and slot of `block`'s pre-state
/// (with `overrides` applied) already in the cache, the way a node holds the state it executes
/// on; the rest is answered by the [`CorpusRef`] behind it.
pub fn block_db<'a>(
    block: &'a BlockRecord,
    codes: &'a Codes,
    overrides: &'a Overrides,
) -> BlockDb<'a> {
    block_db_watching(block, codes, overrides, Watch::default())
}

/// [`block_db`], leaving the values of `watch` out of the cache so their reads are recorded
/// (see [`Watch`]).
pub(crate) fn block_db_watching<'a>(
    block: &'a BlockRecord,
    codes: &'a Codes,
    overrides: &'a Overrides,
    watch: Watch,
) -> BlockDb<'a> {
    let watching = !watch.is_empty();
    let mut corpus = CorpusRef::new(block, codes, overrides);
    corpus.watch = watch;
    let mut db = CacheDB::new(corpus);
    db.cache.accounts.reserve(block.pre_state.len());
    for (addr, acc) in &block.pre_state {
        let Some(acc) = acc else { continue };
        if watching && db.db.watch.accounts.contains(addr) {
            continue;
        }
        let mut info = Some(account_info(acc));
        if !overrides.is_empty() {
            overrides.apply_account(*addr, &mut info);
        }
        let Some(info) = info else { continue };
        db.insert_account_info(*addr, info);
        let entry = db.cache.accounts.get_mut(addr).expect("just inserted");
        let slots = &db.db.watch.slots;
        // the filter hides the count from `extend`: room for all at once, not by doubling
        entry.storage.reserve(acc.storage.len());
        entry.storage.extend(
            acc.storage
                .iter()
                .filter(|(k, _)| !watching || !slots.contains(&(*addr, **k)))
                .map(|(k, v)| (*k, *v)),
        );
        if let Some(ov) = overrides.storage.get(addr) {
            entry.storage.extend(ov.iter().map(|(k, v)| (*k, *v)));
        }
    }
    BlockDb {
        cache: db,
        destroyed: HashSet::new(),
    }
}

/// A block's pre-state as a revm database.
#[derive(Debug, Clone)]
pub struct CorpusDb<'a> {
    block: &'a BlockRecord,
    codes: &'a Codes,
    /// Accounts read that the pre-state does not list (assumed absent).
    pub unknown_accounts: Vec<Address>,
}

impl<'a> CorpusDb<'a> {
    /// A database over `block`'s pre-state.
    pub fn new(block: &'a BlockRecord, codes: &'a Codes) -> Self {
        Self {
            block,
            codes,
            unknown_accounts: Vec::new(),
        }
    }
}

impl Database for CorpusDb<'_> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        let info = match self.block.pre_state.get(&address) {
            Some(Some(acc)) => Some(account_info(acc)),
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
        block_hash(self.block, number)
    }
}

#[cfg(test)]
mod tests {
    use revm::bytecode::opcode;
    use txshadow_corpus::{Corpus, pack::PADDING};

    use super::*;

    fn analysed(code: &[u8], table: &[u8], padding: &[u8]) -> Analysed {
        Analysed {
            padded: [code, padding].concat().into(),
            len: code.len(),
            jump_table: table.to_vec().into(),
        }
    }

    #[test]
    fn packed_codes_are_revms_analysis_without_running_it() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpora/mainnet");
        let corpus = Corpus::open(dir).unwrap();
        let store = corpus.load_codes(&corpus.load_blocks().unwrap()).unwrap();
        assert!(store.len() > 200);
        let codes = Codes::from_store(&store, store.hashes());
        for h in store.hashes() {
            let raw = store.get(&h).unwrap();
            assert!(
                store.analysed(&h).is_some(),
                "{h}: the shipped corpus is packed"
            );
            let packed = codes.get(&h).unwrap();
            // taken from the pack as it is (revm's own analysis pads by 0 to 33 bytes and copies)
            let stored = store.analysed(&h).unwrap();
            assert_eq!(packed.bytes_slice().as_ptr(), stored.padded.as_ptr(), "{h}");
            assert_eq!(packed.bytes_slice().len(), raw.len() + PADDING, "{h}");
            let fresh = decode_code(raw.clone());
            assert_eq!(packed.original_bytes(), fresh.original_bytes(), "{h}");
            let (p, f) = (packed.legacy_jump_table(), fresh.legacy_jump_table());
            assert_eq!(p.map(|t| t.len()), f.map(|t| t.len()), "{h}");
            assert_eq!(p.map(|t| t.as_slice()), f.map(|t| t.as_slice()), "{h}");
            assert_eq!(packed.hash_slow(), h);
        }
    }

    #[test]
    fn a_stored_analysis_that_could_read_past_the_code_is_not_used() {
        // PUSH32 as the last byte: its data is the padding
        let code = [opcode::JUMPDEST, opcode::PUSH32];
        let raw = alloy_primitives::Bytes::copy_from_slice(&code);
        let good = analysed(&code, &[0x01], &[0; PADDING]);
        let b = from_analysed(&raw, &good).unwrap();
        assert_eq!(b.bytes_slice().len(), code.len() + PADDING);
        assert!(b.legacy_jump_table().unwrap().is_valid(0));
        // short or non-zero padding, a table of the wrong size, other bytes, a delegation
        for bad in [
            analysed(&code, &[0x01], &[0; PADDING - 1]),
            analysed(
                &code,
                &[0x01],
                &[[0; PADDING - 1].as_slice(), &[1]].concat(),
            ),
            analysed(&code, &[], &[0; PADDING]),
            analysed(&code, &[0x01, 0x00], &[0; PADDING]),
            analysed(&[opcode::JUMPDEST, opcode::PUSH1], &[0x01], &[0; PADDING]),
        ] {
            assert!(from_analysed(&raw, &bad).is_none(), "{bad:?}");
        }
        let delegation: Vec<u8> = [&[0xef, 0x01, 0x00][..], &[7; 20]].concat();
        let table = vec![0; delegation.len().div_ceil(8)];
        let raw7702 = alloy_primitives::Bytes::from(delegation.clone());
        assert!(from_analysed(&raw7702, &analysed(&delegation, &table, &[0; PADDING])).is_none());
        // a table that wrongly allows a jump is still safe to run (the CRC and verify catch it)
        let wrong = from_analysed(&raw, &analysed(&code, &[0x03], &[0; PADDING])).unwrap();
        assert!(wrong.legacy_jump_table().unwrap().is_valid(1));
    }
}
