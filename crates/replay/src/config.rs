//! Configurations: what a side of a comparison runs (spec, code/storage/balance overrides).

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::{Address, B256, U256};
use revm::{
    bytecode::Bytecode,
    database_interface::Database,
    primitives::{StorageKey, hardfork::SpecId},
    state::AccountInfo,
};

/// State a configuration replaces before running (applied to every block and tx).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Runtime code per address.
    pub code: BTreeMap<Address, Bytecode>,
    /// Storage slot values per address.
    pub storage: BTreeMap<Address, BTreeMap<U256, U256>>,
    /// Balances per address.
    pub balance: BTreeMap<Address, U256>,
    by_hash: HashMap<B256, Bytecode>,
}

impl Overrides {
    /// No override at all.
    pub fn is_empty(&self) -> bool {
        self.code.is_empty() && self.storage.is_empty() && self.balance.is_empty()
    }

    /// A replaced code, by its hash.
    pub(crate) fn code_by_hash(&self, hash: &B256) -> Option<&Bytecode> {
        self.by_hash.get(hash)
    }

    /// Replaces the code of `address`.
    pub fn set_code(&mut self, address: Address, code: Bytecode) {
        self.by_hash.insert(code.hash_slow(), code.clone());
        self.code.insert(address, code);
    }

    pub(crate) fn apply_account(&self, address: Address, info: &mut Option<AccountInfo>) {
        let code = self.code.get(&address);
        let balance = self.balance.get(&address);
        if code.is_none() && balance.is_none() {
            return;
        }
        let acc = info.get_or_insert_with(AccountInfo::default);
        if let Some(c) = code {
            acc.code_hash = c.hash_slow();
            acc.code = Some(c.clone());
            if acc.nonce == 0 {
                acc.nonce = 1;
            }
        }
        if let Some(b) = balance {
            acc.balance = *b;
        }
    }
}

/// A database seen through a configuration's overrides.
#[derive(Debug)]
pub struct OverlayDb<'o, DB> {
    /// The underlying database.
    pub inner: DB,
    overrides: Option<&'o Overrides>,
}

impl<'o, DB> OverlayDb<'o, DB> {
    /// Wraps `inner`; empty overrides cost nothing.
    pub fn new(inner: DB, overrides: &'o Overrides) -> Self {
        Self {
            inner,
            overrides: (!overrides.is_empty()).then_some(overrides),
        }
    }
}

impl<DB: Database> Database for OverlayDb<'_, DB> {
    type Error = DB::Error;

    #[inline]
    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let mut info = self.inner.basic(address)?;
        if let Some(ov) = self.overrides {
            ov.apply_account(address, &mut info);
        }
        Ok(info)
    }

    #[inline]
    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if let Some(c) = self.overrides.and_then(|o| o.by_hash.get(&code_hash)) {
            return Ok(c.clone());
        }
        self.inner.code_by_hash(code_hash)
    }

    #[inline]
    fn storage(&mut self, address: Address, index: StorageKey) -> Result<U256, Self::Error> {
        if let Some(v) = self
            .overrides
            .and_then(|o| o.storage.get(&address))
            .and_then(|s| s.get(&index))
        {
            return Ok(*v);
        }
        self.inner.storage(address, index)
    }

    #[inline]
    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        self.inner.block_hash(number)
    }
}

/// One side of a comparison: a named engine configuration.
#[derive(Debug, Clone)]
pub struct SideConfig {
    /// Name shown in reports (`baseline`, `candidate`, or the suite's name).
    pub name: String,
    /// A forced spec; `None` follows the chain's fork schedule.
    pub spec: Option<SpecId>,
    /// State overrides.
    pub overrides: Overrides,
}

impl SideConfig {
    /// The chain's own rules, no override.
    pub fn chain(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            spec: None,
            overrides: Overrides::default(),
        }
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        let mut parts = vec![match self.spec {
            Some(s) => format!("spec={}", spec_name(s)),
            None => "spec=chain".to_string(),
        }];
        for a in self.overrides.code.keys() {
            parts.push(format!("code:{a}"));
        }
        for a in self.overrides.storage.keys() {
            parts.push(format!("storage:{a}"));
        }
        for a in self.overrides.balance.keys() {
            parts.push(format!("balance:{a}"));
        }
        parts.join(" ")
    }
}

/// Lower-case name of a spec.
pub fn spec_name(s: SpecId) -> String {
    format!("{s:?}").to_ascii_lowercase()
}

/// Parses a spec name (`istanbul`, `prague`, `merge`...).
pub fn parse_spec(name: &str) -> Option<SpecId> {
    use alloy_hardforks::EthereumHardfork as F;
    let fork = txshadow_corpus::parse_fork(name)?;
    Some(match fork {
        F::Frontier => SpecId::FRONTIER,
        F::Homestead | F::Dao => SpecId::HOMESTEAD,
        F::Tangerine => SpecId::TANGERINE,
        F::SpuriousDragon => SpecId::SPURIOUS_DRAGON,
        F::Byzantium => SpecId::BYZANTIUM,
        // revm has no Constantinople (EIP-1283 was withdrawn before mainnet): Petersburg rules
        F::Constantinople | F::Petersburg => SpecId::PETERSBURG,
        F::Istanbul | F::MuirGlacier => SpecId::ISTANBUL,
        F::Berlin => SpecId::BERLIN,
        F::London | F::ArrowGlacier | F::GrayGlacier => SpecId::LONDON,
        F::Paris => SpecId::MERGE,
        F::Shanghai => SpecId::SHANGHAI,
        F::Cancun => SpecId::CANCUN,
        F::Prague => SpecId::PRAGUE,
        F::Osaka | F::Bpo1 | F::Bpo2 => SpecId::OSAKA,
        _ => return None,
    })
}
