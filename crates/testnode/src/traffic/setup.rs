//! The two setup blocks: the contracts deployed and the dev accounts funded, then the token
//! distributed with a standing allowance.

use alloy_primitives::{Address, Bytes, TxKind, U256};

use super::{
    DELEGATE_BIN, ETHER, PROBE_BIN, TOKEN_BIN, TRANSFER, addr_word, calldata, code, num_word, one,
    sender::Sender,
};
use crate::Wallet;

/// The contracts the traffic calls.
pub(super) struct Contracts {
    /// The ERC-20.
    pub(super) token: Address,
    /// The block-context probe.
    pub(super) probe: Address,
    /// The EIP-7702 delegate.
    pub(super) delegate: Address,
}

/// Block 1: the contracts, by create transactions, and ETH from account 0 down the line of
/// accounts 1..=7.
pub(super) fn deploy(s: &mut Sender<'_>, w: &mut [Wallet]) -> Result<Contracts, String> {
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
    Ok(Contracts {
        token,
        probe,
        delegate,
    })
}

/// Block 2: token distribution to accounts 1..=7 and a standing allowance from account 1 to
/// account 2.
pub(super) fn distribute(
    s: &mut Sender<'_>,
    w: &mut [Wallet],
    token: Address,
) -> Result<(), String> {
    for i in 1..8 {
        let to = w[i].address;
        let data = calldata(TRANSFER, &[addr_word(to), num_word(one(10_000 * ETHER))]);
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
    Ok(())
}
