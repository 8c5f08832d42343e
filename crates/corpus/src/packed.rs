//! The bulk of a block packed by hand: its transactions, its pre-state and its recorded receipts,
//! the three sections that hold nearly all of a block's bytes (on the pevm corpus: 39%, 35% and
//! 25% of the MessagePack of version 1). Each is a count and then fixed-layout items with no
//! field names, numbers as big-endian bytes without their leading zeros, so decoding is a walk
//! over the bytes rather than a self-describing parse.
//!
//! ```text
//! varint    LEB128 unsigned, at most 10 bytes
//! num       1 byte length (0..=32) + that many big-endian bytes, no leading zero byte
//! bytes     varint length + the bytes
//!
//! txs       varint count, then per tx: hash (32) from (20) raw (bytes)
//! pre-state varint count, then per account, by address ascending:
//!             address (20), kind (1): 0 absent, 1 present with the empty code, 2 with code
//!             present: balance (num) nonce (varint) [code hash (32) if kind 2]
//!                      varint slot count, then per slot ascending: key (num) value (num)
//! receipts  varint count, then per receipt: type (1) status (1: 0 none, 1 failure, 2 success)
//!             gas used (varint) cumulative gas (varint) state root flag (1) [root (32)]
//!             contract address flag (1) [address (20)]
//!             varint log count, then per log: address (20) topic count (1) topics (32 each)
//!             data (bytes)
//! ```
//!
//! Every length is checked against the bytes that remain before anything is allocated, so a
//! damaged or hostile file fails with the section and the byte offset, never a huge allocation.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, Bytes, Log, LogData, U256};

use crate::{AccountState, ExpectedReceipt, KECCAK_EMPTY, StateMap, TxRecord};

/// Appends the packed sections to `out`.
pub(crate) struct Packer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Packer<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out }
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn num(&mut self, v: &U256) {
        let be = v.to_be_bytes::<32>();
        let skip = be.iter().take_while(|b| **b == 0).count();
        self.out.push((32 - skip) as u8);
        self.out.extend_from_slice(&be[skip..]);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.out.extend_from_slice(b);
    }

    /// The transactions section.
    pub(crate) fn txs(&mut self, txs: &[TxRecord]) {
        self.varint(txs.len() as u64);
        for t in txs {
            self.out.extend_from_slice(t.hash.as_slice());
            self.out.extend_from_slice(t.from.as_slice());
            self.bytes(&t.raw);
        }
    }

    /// The pre-state section.
    pub(crate) fn state(&mut self, state: &StateMap) {
        self.varint(state.len() as u64);
        for (addr, acc) in state {
            self.out.extend_from_slice(addr.as_slice());
            let Some(acc) = acc else {
                self.out.push(0);
                continue;
            };
            let has_code = acc.code_hash != KECCAK_EMPTY;
            self.out.push(if has_code { 2 } else { 1 });
            self.num(&acc.balance);
            self.varint(acc.nonce);
            if has_code {
                self.out.extend_from_slice(acc.code_hash.as_slice());
            }
            self.varint(acc.storage.len() as u64);
            for (k, v) in &acc.storage {
                self.num(k);
                self.num(v);
            }
        }
    }

    /// The receipts section.
    pub(crate) fn receipts(&mut self, receipts: &[ExpectedReceipt]) {
        self.varint(receipts.len() as u64);
        for r in receipts {
            self.out.push(r.tx_type);
            self.out.push(match r.status {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            });
            self.varint(r.gas_used);
            self.varint(r.cumulative_gas_used);
            self.opt(r.state_root.as_ref().map(|h| h.as_slice()));
            self.opt(r.contract_address.as_ref().map(|a| a.as_slice()));
            self.varint(r.logs.len() as u64);
            for l in &r.logs {
                self.out.extend_from_slice(l.address.as_slice());
                // a log has at most 4 topics (LOG0..LOG4); the byte holds what a source gave
                self.out.push(l.data.topics().len() as u8);
                for t in l.data.topics() {
                    self.out.extend_from_slice(t.as_slice());
                }
                self.bytes(&l.data.data);
            }
        }
    }

    fn opt(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.out.push(0),
            Some(b) => {
                self.out.push(1);
                self.out.extend_from_slice(b);
            }
        }
    }
}

/// Reads the packed sections back; every error names the section and the offset.
pub(crate) struct Unpacker<'a> {
    buf: &'a [u8],
    /// `buf` as shared bytes, when it is: byte strings (tx bytes, log data) are then slices of
    /// it, not copies.
    shared: Option<&'a Bytes>,
    at: usize,
    section: &'static str,
}

type Res<T> = Result<T, String>;

impl<'a> Unpacker<'a> {
    pub(crate) fn new(buf: &'a [u8], at: usize) -> Self {
        Self {
            buf,
            shared: None,
            at,
            section: "",
        }
    }

    /// Reads `buf` from `at`; byte strings are slices of `buf`.
    pub(crate) fn shared(buf: &'a Bytes, at: usize) -> Self {
        Self {
            buf,
            shared: Some(buf),
            at,
            section: "",
        }
    }

    /// Where the reading stands.
    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    #[cold]
    #[inline(never)]
    fn fail<T>(&self, what: &str) -> Res<T> {
        Err(format!(
            "{} section, byte {}: {what}",
            self.section, self.at
        ))
    }

    #[cold]
    #[inline(never)]
    fn short<T>(&self, n: usize) -> Res<T> {
        self.fail(&format!(
            "{n} bytes wanted, {} left",
            self.buf.len().saturating_sub(self.at)
        ))
    }

    /// The next `n` bytes. On the path of every field: the error is built out of line.
    #[inline(always)]
    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let at = self.at;
        match at
            .checked_add(n)
            .and_then(|end| Some((self.buf.get(at..end)?, end)))
        {
            Some((s, end)) => {
                self.at = end;
                Ok(s)
            }
            None => self.short(n),
        }
    }

    #[inline]
    fn byte(&mut self) -> Res<u8> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    fn varint(&mut self) -> Res<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(v);
            }
        }
        self.fail("a varint over 64 bits")
    }

    /// A count of items each at least `min` bytes long: more than the bytes left can hold is
    /// damage, refused before anything is allocated for it.
    fn count(&mut self, min: usize) -> Res<usize> {
        let n = self.varint()?;
        let left = self.buf.len().saturating_sub(self.at);
        if n > (left / min.max(1)) as u64 {
            return self.fail(&format!("a count of {n} with {left} bytes left"));
        }
        Ok(n as usize)
    }

    #[inline]
    fn num(&mut self) -> Res<U256> {
        let n = usize::from(self.byte()?);
        if n > 32 {
            return self.fail(&format!("a number of {n} bytes"));
        }
        let b = self.take(n)?;
        if b.first() == Some(&0) {
            return self.fail("a number with a leading zero byte");
        }
        let mut be = [0u8; 32];
        be[32 - n..].copy_from_slice(b);
        Ok(U256::from_be_bytes(be))
    }

    #[inline]
    fn b256(&mut self) -> Res<B256> {
        Ok(B256::from_slice(self.take(32)?))
    }

    #[inline]
    fn address(&mut self) -> Res<Address> {
        Ok(Address::from_slice(self.take(20)?))
    }

    fn bytes(&mut self) -> Res<Bytes> {
        let n = self.count(1)?;
        let at = self.at;
        let b = self.take(n)?;
        Ok(match self.shared {
            Some(all) => all.slice(at..at + n),
            None => Bytes::copy_from_slice(b),
        })
    }

    fn flag(&mut self) -> Res<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => self.fail(&format!("a flag of {b}")),
        }
    }

    /// Keys come in ascending order (a map's): `key` after `last`, then `last` is `key`.
    fn ascending<K: Ord + Copy + std::fmt::Display>(
        &self,
        last: &mut Option<K>,
        key: K,
        what: &str,
    ) -> Res<()> {
        if last.is_some_and(|l| l >= key) {
            return self.fail(&format!("{what} {key} out of order"));
        }
        *last = Some(key);
        Ok(())
    }

    /// The transactions section.
    pub(crate) fn txs(&mut self) -> Res<Vec<TxRecord>> {
        self.section = "transactions";
        let n = self.count(53)?;
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            txs.push(TxRecord {
                hash: self.b256()?,
                from: self.address()?,
                raw: self.bytes()?,
            });
        }
        Ok(txs)
    }

    /// The pre-state section.
    pub(crate) fn state(&mut self) -> Res<StateMap> {
        self.section = "pre-state";
        let n = self.count(21)?;
        let mut accounts = Vec::with_capacity(n);
        let mut last: Option<Address> = None;
        for _ in 0..n {
            let addr = self.address()?;
            self.ascending(&mut last, addr, "address")?;
            let kind = self.byte()?;
            let acc = match kind {
                0 => None,
                1 | 2 => Some(self.account(kind == 2)?),
                k => return self.fail(&format!("an account kind of {k}")),
            };
            accounts.push((addr, acc));
        }
        // in order, checked above: the map is built from sorted items, without a search each
        Ok(accounts.into_iter().collect())
    }

    fn account(&mut self, has_code: bool) -> Res<AccountState> {
        let balance = self.num()?;
        let nonce = self.varint()?;
        let code_hash = if has_code { self.b256()? } else { KECCAK_EMPTY };
        let n = self.count(2)?;
        let mut slots = Vec::with_capacity(n);
        let mut last: Option<U256> = None;
        for _ in 0..n {
            let k = self.num()?;
            self.ascending(&mut last, k, "slot")?;
            slots.push((k, self.num()?));
        }
        Ok(AccountState {
            balance,
            nonce,
            code_hash,
            storage: slots.into_iter().collect::<BTreeMap<_, _>>(),
        })
    }

    /// The receipts section.
    pub(crate) fn receipts(&mut self) -> Res<Vec<ExpectedReceipt>> {
        self.section = "receipts";
        let n = self.count(7)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let tx_type = self.byte()?;
            let status = match self.byte()? {
                0 => None,
                1 => Some(false),
                2 => Some(true),
                s => return self.fail(&format!("a status of {s}")),
            };
            let gas_used = self.varint()?;
            let cumulative_gas_used = self.varint()?;
            let state_root = if self.flag()? {
                Some(self.b256()?)
            } else {
                None
            };
            let contract_address = if self.flag()? {
                Some(self.address()?)
            } else {
                None
            };
            let nlogs = self.count(22)?;
            let mut logs = Vec::with_capacity(nlogs);
            for _ in 0..nlogs {
                let address = self.address()?;
                let nt = usize::from(self.byte()?);
                let topics = (0..nt).map(|_| self.b256()).collect::<Res<Vec<_>>>()?;
                let data = self.bytes()?;
                logs.push(Log {
                    address,
                    data: LogData::new_unchecked(topics, data),
                });
            }
            out.push(ExpectedReceipt {
                tx_type,
                status,
                state_root,
                gas_used,
                cumulative_gas_used,
                logs,
                contract_address,
            });
        }
        Ok(out)
    }
}
