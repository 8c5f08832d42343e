//! The in-memory data model of a corpus block.

use std::collections::BTreeMap;

use alloy_consensus::Header;
use alloy_eips::eip4895::Withdrawal;
use alloy_primitives::{Address, B256, Bytes, Log, U256};
use serde::{Deserialize, Serialize};

use crate::ChainConfig;

/// keccak256 of empty code.
pub use alloy_primitives::KECCAK256_EMPTY as KECCAK_EMPTY;

/// One account of a pre- or post-state. `None` in a state map means "did not exist".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// Balance in wei.
    #[serde(default, deserialize_with = "crate::hexnum::u256")]
    pub balance: U256,
    /// Nonce.
    #[serde(default)]
    pub nonce: u64,
    /// Hash of the account's code; empty-code hash when absent.
    #[serde(default = "empty_code", skip_serializing_if = "is_empty_code")]
    pub code_hash: B256,
    /// Storage slots known for this account (read or written by the block), slot → value.
    /// A slot with value zero is recorded as zero; a slot not listed is unknown.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::hexnum::storage"
    )]
    pub storage: BTreeMap<U256, U256>,
}

fn empty_code() -> B256 {
    KECCAK_EMPTY
}
fn is_empty_code(h: &B256) -> bool {
    *h == KECCAK_EMPTY
}

/// Accounts by address; `None` = the account did not exist.
pub type StateMap = BTreeMap<Address, Option<AccountState>>;

/// A transaction as included in the block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// Transaction hash (keccak of `raw`).
    pub hash: B256,
    /// Recovered sender.
    pub from: Address,
    /// EIP-2718 encoding of the transaction (legacy: its RLP).
    pub raw: Bytes,
}

/// A receipt as the chain recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedReceipt {
    /// Transaction type (0..=4).
    #[serde(rename = "type", default)]
    pub tx_type: u8,
    /// EIP-658 status; `None` before Byzantium (those receipts carry a state root instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<bool>,
    /// The intermediate state root of a pre-Byzantium receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_root: Option<B256>,
    /// Gas used by this transaction.
    pub gas_used: u64,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// Logs.
    #[serde(default)]
    pub logs: Vec<Log>,
    /// Address of a created contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_address: Option<Address>,
}

/// What a source recorded about one transaction's execution (traces, fixtures).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedTx {
    /// Success (true) or failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<bool>,
    /// Gas used (receipt gas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_used: Option<u64>,
    /// Return data (or revert data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Bytes>,
    /// Error text the source gave (e.g. `execution reverted`, `out of gas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Logs, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<Log>>,
    /// Post-state of the accounts/slots this tx changed (a prestate diff's `post`), merged over
    /// its `pre`. `None` in the map = the account was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_state: Option<StateMap>,
    /// The source expects this tx to be rejected (not included), for this reason as the source
    /// names it (`TransactionException.INTRINSIC_GAS_TOO_LOW`; alternatives joined by `|`).
    /// A replay matches when it rejects the tx for a reason of the same class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// Everything the source recorded that a replay can be checked against. The default records
/// nothing but keeps the header checks on, as for any real block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The chain's receipts, one per tx, when the source has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts: Option<Vec<ExpectedReceipt>>,
    /// Per-tx expectations from traces or fixtures, indexed like the txs (empty if none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub txs: Vec<Option<ExpectedTx>>,
    /// Block post-state of touched accounts/slots, when the source has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_state: Option<StateMap>,
    /// Whether the header's gas used, receipts root and logs bloom describe exactly these txs
    /// (false for synthetic single-tx blocks such as tracer fixtures).
    #[serde(default = "yes")]
    pub header_checks: bool,
    /// The post-block state root the source expects, where the header does not carry it
    /// (a state test's `hash`). Needs the full pre-state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_root: Option<B256>,
    /// keccak256 of the RLP list of every log of the block, in order (a state test's `logs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_hash: Option<B256>,
    /// The source expects this block to be rejected (a blockchain test's `expectException`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_block: Option<InvalidBlock>,
    /// The recorded receipts were held to the header's receipts root and logs bloom when they
    /// were written (see [`crate::seal_receipts`]): a replay may check its receipts against
    /// them field by field instead of computing the receipts trie.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub receipts_sealed: bool,
}

/// A block the source expects to be rejected: why, as the source names it, and the header it
/// builds on (the header rules are checked against it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidBlock {
    /// The source's reason (`BlockException.INCORRECT_BLOB_GAS_USED`, ...).
    pub reason: String,
    /// The parent's header.
    pub parent: Header,
}

fn yes() -> bool {
    true
}

impl Expected {
    /// Whether any tx has a recorded post-state (traces, fixtures) to compare its changes with.
    pub fn has_tx_post_states(&self) -> bool {
        self.txs.iter().flatten().any(|x| x.post_state.is_some())
    }
}

impl Default for Expected {
    fn default() -> Self {
        Self {
            receipts: None,
            txs: vec![],
            post_state: None,
            header_checks: true,
            state_root: None,
            logs_hash: None,
            invalid_block: None,
            receipts_sealed: false,
        }
    }
}

/// How a block must be executed, where a source departs from a real chain's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conventions {
    /// Pay block and uncle rewards (pre-merge).
    #[serde(default = "yes")]
    pub rewards: bool,
    /// Run the system calls of EIP-2935/4788/7002/7251.
    #[serde(default = "yes")]
    pub system_calls: bool,
    /// A BLOCKHASH of a block not stored answers zero instead of failing the replay.
    #[serde(default)]
    pub unknown_blockhash_is_zero: bool,
    /// The source's harness has no block gas pool (go-ethereum's tracer tests). Recorded for
    /// reference: replay does not lift the block gas limit, and no shipped source needs it (each
    /// fixture's tx fits its block's gas limit); a tx that did not fit would fail as an error.
    #[serde(default)]
    pub no_block_gas_limit: bool,
}

impl Default for Conventions {
    fn default() -> Self {
        Self {
            rewards: true,
            system_calls: true,
            unknown_blockhash_is_zero: false,
            no_block_gas_limit: false,
        }
    }
}

/// A block of a corpus: header, transactions, the state they read, and what the chain recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// Block hash (pinned; the header hashes to it unless `synthetic`).
    pub hash: B256,
    /// Every header field.
    pub header: Header,
    /// Transactions in block order.
    pub transactions: Vec<TxRecord>,
    /// Uncle headers (for uncle rewards). See `ommers_missing`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ommers: Vec<Header>,
    /// Number of uncles whose headers the source did not provide (their rewards cannot be paid).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ommers_missing: usize,
    /// Withdrawals (Shanghai on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawals: Option<Vec<Withdrawal>>,
    /// Pre-state of every account and slot the block reads (first-seen value).
    pub pre_state: StateMap,
    /// Whether `pre_state` is the complete state of the chain (then the state root is exact).
    #[serde(default)]
    pub pre_state_is_full: bool,
    /// Ancestor hashes that BLOCKHASH may read, number → hash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub block_hashes: BTreeMap<u64, B256>,
    /// Recorded results.
    #[serde(default)]
    pub expected: Expected,
    /// Rules that differ from the chain's (fixtures).
    #[serde(default)]
    pub conventions: Conventions,
    /// A chain config for this block alone (fixtures from several chains in one corpus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainConfig>,
    /// The header is synthetic (built from a fixture's context), so its hash is not the block's.
    #[serde(default)]
    pub synthetic: bool,
    /// A human label (fixture name), when the block has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Why this block cannot be replayed faithfully, if the importer knows (listed as skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<String>,
    /// Trie nodes proving the pre-state under the parent's state root, when the source has them
    /// (then the replay checks the pre-state and computes the real post-block state root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
    /// The test case this block belongs to, for corpora of conformance suites (a case may span
    /// several blocks: a blockchain test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<SuiteCase>,
}

/// A case of a conformance suite (ethereum/tests, EEST): where it comes from and which fork's
/// rules it tests. Reports count cases by folder and fork.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SuiteCase {
    /// The case's id, unique in the corpus: `<folder>/<file>::<name>`, plus
    /// `[<fork>][d,g,v]` for a state test's index.
    pub id: String,
    /// The folder of the fixture file, relative to the suite's root as given to the import.
    pub folder: String,
    /// The fork or network the case runs under (`Cancun`, `ShanghaiToCancunAtTime15k`).
    pub fork: String,
}

/// A state witness: the parent's header and the Merkle-Patricia trie nodes (account trie and
/// storage tries) of the parent state that a block reads or writes.
///
/// The nodes are content-addressed (a node is found by the keccak of its RLP), so a witness
/// cannot vouch for anything by itself: every value read from it is a walk from the parent's
/// state root, and a node that no reference reaches is inert. `parent` anchors that root: its
/// hash is the block's parent hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    /// The parent block's header (its `state_root` is the root of the nodes).
    pub parent: Header,
    /// RLP-encoded trie nodes, each once, sorted by their bytes.
    pub nodes: Vec<Bytes>,
    /// Where the nodes came from (`eth_getProof`, `debug_executionWitness`, an importer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The root of the node's own trie at the parent, recorded only where it differs from the
    /// parent header's `state_root` and the parent is the genesis block: a development node
    /// (anvil) writes the empty-trie root into its genesis header although its genesis state
    /// funds the dev accounts. The nodes are proved under this root instead; any other parent
    /// is held to its header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis_trie_root: Option<B256>,
}

impl Witness {
    /// A witness of `nodes` (deduplicated and sorted here) under `parent`'s state root.
    pub fn new(parent: Header, nodes: impl IntoIterator<Item = Bytes>, source: &str) -> Self {
        let mut nodes: Vec<Bytes> = nodes.into_iter().collect();
        nodes.sort_unstable();
        nodes.dedup();
        Self {
            parent,
            nodes,
            source: Some(source.to_string()),
            genesis_trie_root: None,
        }
    }

    /// The parent's state root, which the nodes prove the pre-state under: the header's, or
    /// the node's genesis trie root where that was recorded (see [`Self::genesis_trie_root`]).
    pub fn parent_state_root(&self) -> B256 {
        match self.genesis_trie_root {
            Some(r) if self.parent.number == 0 => r,
            _ => self.parent.state_root,
        }
    }

    /// Total bytes of the nodes.
    pub fn bytes(&self) -> usize {
        self.nodes.iter().map(|n| n.len()).sum()
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl BlockRecord {
    /// A real block with nothing recorded yet: empty pre-state, header checks on, the chain's
    /// own rules. Importers fill in the rest (`BlockRecord { pre_state, ..BlockRecord::new(..) }`).
    pub fn new(hash: B256, header: Header, transactions: Vec<TxRecord>) -> Self {
        Self {
            hash,
            header,
            transactions,
            ommers: vec![],
            ommers_missing: 0,
            withdrawals: None,
            pre_state: StateMap::new(),
            pre_state_is_full: false,
            block_hashes: BTreeMap::new(),
            expected: Expected::default(),
            conventions: Conventions::default(),
            chain: None,
            synthetic: false,
            label: None,
            unsupported: None,
            witness: None,
            case: None,
        }
    }

    /// Block number.
    pub const fn number(&self) -> u64 {
        self.header.number
    }

    /// Gas the chain says the block used.
    pub const fn gas_used(&self) -> u64 {
        self.header.gas_used
    }

    /// Every code hash the pre-state refers to (not the empty one).
    pub fn code_hashes(&self) -> impl Iterator<Item = B256> + '_ {
        self.pre_state
            .values()
            .flatten()
            .map(|a| a.code_hash)
            .filter(|h| *h != KECCAK_EMPTY && *h != B256::ZERO)
    }

    /// A stable, file-system-safe identifier: number and a hash prefix.
    pub fn file_stem(&self) -> String {
        format!(
            "{:010}-{}",
            self.number(),
            &format!("{:x}", self.hash)[..12]
        )
    }
}

/// Where a corpus came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// `capture`, or `import:<format>`.
    pub source: String,
    /// The node's `web3_clientVersion`, for captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    /// RPC host, credentials removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<String>,
    /// Input paths of an import (as given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// txshadow version that wrote the corpus.
    pub tool_version: String,
    /// RFC 3339 time of creation.
    pub created: String,
    /// Free-form notes (what an importer could not keep, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
