//! One block of mixed traffic: transfers, token cases, probe calls, creations, a blob and an
//! EIP-7702 delegation step.

use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{Address, Bytes, TxKind, U256};

use super::{
    ETHER, TOKEN_BIN, TRANSFER, TrafficOptions, addr_word, calldata, code, mapping_slot, num_word,
    one, sender::Sender, setup::Contracts,
};
use crate::Wallet;

/// Sends and mines round `r`'s block.
pub(super) fn block(
    s: &mut Sender<'_>,
    w: &mut [Wallet],
    c: &Contracts,
    authority: &Wallet,
    opts: &TrafficOptions,
    r: usize,
) -> Result<(), String> {
    let number = s.report.last_block + 1;
    transfers(s, w, c.token, opts.transfers, r)?;
    token_cases(s, w, c.token, r)?;
    probe_calls(s, w, c.probe, r, number)?;
    creations(s, w, r)?;
    // a blob (one per block keeps the excess blob gas at zero)
    if opts.blobs {
        let payload = format!("txshadow blob {r}").repeat(64);
        s.blob(
            &mut w[8],
            c.probe,
            calldata("blob()", &[]),
            payload.as_bytes(),
        )?;
    }
    if opts.delegations {
        delegation(s, &mut w[9], authority, c.delegate, r, opts.rounds)?;
    }
    s.mine()?;
    Ok(())
}

/// `count` transfers among accounts 1..=6: ETH (three tx types) and tokens.
fn transfers(
    s: &mut Sender<'_>,
    w: &mut [Wallet],
    token: Address,
    count: usize,
    r: usize,
) -> Result<(), String> {
    for i in 0..count {
        let a = 1 + (i + r) % 6;
        let b = 1 + (i + r + 1) % 6;
        let to = w[b].address;
        let value = one((i as u128 + 1) * ETHER / 1000);
        let wa = &mut w[a];
        match i % 3 {
            0 => {
                s.legacy(wa, TxKind::Call(to), value, Bytes::new(), 21_000)?;
            }
            1 => {
                let al = AccessList(vec![AccessListItem {
                    address: to,
                    storage_keys: vec![],
                }]);
                s.eip2930(wa, to, value, Bytes::new(), 30_000, al)?;
            }
            _ => {
                s.eip1559(wa, TxKind::Call(to), value, Bytes::new(), 21_000, 1)?;
            }
        }
        let data = calldata(
            TRANSFER,
            &[addr_word(to), num_word(one((i as u128 + 1) * ETHER))],
        );
        if i % 4 == 1 {
            // token transfer with the touched balance slots in an access list
            let from = w[a].address;
            let al = AccessList(vec![AccessListItem {
                address: token,
                storage_keys: vec![mapping_slot(from, 0), mapping_slot(to, 0)],
            }]);
            s.eip2930(&mut w[a], token, U256::ZERO, data, 90_000, al)?;
        } else {
            s.eip1559(&mut w[a], TxKind::Call(token), U256::ZERO, data, 90_000, 1)?;
        }
    }
    Ok(())
}

/// The token's storage cases: an allowance written and spent in one block, a standing
/// allowance spent, a balance slot written and cleared in one block, and a failing transfer.
fn token_cases(
    s: &mut Sender<'_>,
    w: &mut [Wallet],
    token: Address,
    r: usize,
) -> Result<(), String> {
    // approve then spend the whole allowance (its slot written and cleared in one block);
    // higher tips order them
    let (w3, w4, w5) = (w[3].address, w[4].address, w[5].address);
    let approve = calldata(
        "approve(address,uint256)",
        &[addr_word(w4), num_word(one(5 * ETHER))],
    );
    s.eip1559(
        &mut w[3],
        TxKind::Call(token),
        U256::ZERO,
        approve,
        80_000,
        4,
    )?;
    let spend = calldata(
        "transferFrom(address,address,uint256)",
        &[addr_word(w3), addr_word(w5), num_word(one(5 * ETHER))],
    );
    s.eip1559(&mut w[4], TxKind::Call(token), U256::ZERO, spend, 90_000, 1)?;
    // a standing max allowance: transferFrom without an allowance write
    let (w1, w6) = (w[1].address, w[6].address);
    let spend = calldata(
        "transferFrom(address,address,uint256)",
        &[addr_word(w1), addr_word(w6), num_word(one(ETHER))],
    );
    s.eip1559(&mut w[2], TxKind::Call(token), U256::ZERO, spend, 90_000, 1)?;
    // account 7's balance slot: written by account 0, cleared by 7 in the same block
    let w7 = w[7].address;
    let give = calldata(TRANSFER, &[addr_word(w7), num_word(one(1000 * ETHER))]);
    s.eip1559(&mut w[0], TxKind::Call(token), U256::ZERO, give, 90_000, 5)?;
    let held = if r == 0 { 10_000 * ETHER } else { 0 };
    let back = calldata(
        TRANSFER,
        &[addr_word(w[0].address), num_word(one(1000 * ETHER + held))],
    );
    s.eip1559(&mut w[7], TxKind::Call(token), U256::ZERO, back, 90_000, 1)?;
    // a failing transfer (custom error revert)
    let too_much = calldata(
        TRANSFER,
        &[addr_word(w3), num_word(one(ETHER) * one(ETHER))],
    );
    s.eip1559(
        &mut w[5],
        TxKind::Call(token),
        U256::ZERO,
        too_much,
        90_000,
        1,
    )?;
    Ok(())
}

/// The probe: block context (reading back to block `number`'s ancestors), storage writes and
/// clears, out of gas, revert, CREATE/CREATE2 (one created and destroyed in the same tx).
fn probe_calls(
    s: &mut Sender<'_>,
    w: &mut [Wallet],
    probe: Address,
    r: usize,
    number: u64,
) -> Result<(), String> {
    let back_n = (r as u64 + 2).min(number);
    s.eip1559(
        &mut w[1],
        TxKind::Call(probe),
        U256::ZERO,
        calldata("context(uint256)", &[num_word(U256::from(back_n))]),
        120_000,
        1,
    )?;
    let key = U256::from(r * 10 + 1);
    s.eip1559(
        &mut w[2],
        TxKind::Call(probe),
        U256::ZERO,
        calldata(
            "put(uint256,uint256)",
            &[num_word(key), num_word(U256::from(r + 7))],
        ),
        60_000,
        1,
    )?;
    if r > 0 {
        let prev = U256::from((r - 1) * 10 + 1);
        s.eip1559(
            &mut w[3],
            TxKind::Call(probe),
            U256::ZERO,
            calldata(
                "put(uint256,uint256)",
                &[num_word(prev), num_word(U256::ZERO)],
            ),
            60_000,
            1,
        )?;
    }
    s.eip1559(
        &mut w[4],
        TxKind::Call(probe),
        U256::ZERO,
        calldata(
            "putMany(uint256,uint256,uint256)",
            &[
                num_word(U256::from(1000 * r)),
                num_word(U256::from(200)),
                num_word(U256::from(1)),
            ],
        ),
        80_000,
        1,
    )?;
    s.eip1559(
        &mut w[5],
        TxKind::Call(probe),
        U256::ZERO,
        calldata("fail(uint256)", &[num_word(U256::from(r))]),
        60_000,
        1,
    )?;
    s.eip1559(
        &mut w[6],
        TxKind::Call(probe),
        one(ETHER / 100),
        calldata("make(bytes32)", &[num_word(U256::from(r))]),
        600_000,
        1,
    )?;
    s.eip1559(
        &mut w[3],
        TxKind::Call(probe),
        U256::ZERO,
        calldata("makeAndKill(bytes32)", &[num_word(U256::from(1000 + r))]),
        400_000,
        1,
    )?;
    Ok(())
}

/// New accounts: a contract created by a transaction (legacy, then EIP-1559) and ETH to a
/// fresh address.
fn creations(s: &mut Sender<'_>, w: &mut [Wallet], r: usize) -> Result<(), String> {
    let mut init = code(TOKEN_BIN);
    init.extend_from_slice(num_word(U256::from(1000 + r)).as_slice());
    if r.is_multiple_of(2) {
        s.legacy(
            &mut w[5],
            TxKind::Create,
            U256::ZERO,
            init.into(),
            1_500_000,
        )?;
    } else {
        s.eip1559(
            &mut w[5],
            TxKind::Create,
            U256::ZERO,
            init.into(),
            1_500_000,
            1,
        )?;
    }
    let fresh = Wallet::derived(&format!("txshadow traffic: fresh {r}")).address;
    s.eip1559(
        &mut w[6],
        TxKind::Call(fresh),
        one(ETHER / 10),
        Bytes::new(),
        21_000,
        1,
    )?;
    Ok(())
}

/// EIP-7702 from `sender`: `authority` delegates to `delegate` in the first of `rounds`, uses
/// the delegation in the rounds between, and clears it in the last.
fn delegation(
    s: &mut Sender<'_>,
    sender: &mut Wallet,
    authority: &Wallet,
    delegate: Address,
    r: usize,
    rounds: usize,
) -> Result<(), String> {
    let ping = calldata("ping()", &[]);
    if r == 0 {
        let auth = authority.authorize(s.chain_id, delegate, 0);
        s.eip7702(sender, authority.address, ping, vec![auth])?;
    } else if r + 1 == rounds {
        let auth = authority.authorize(s.chain_id, Address::ZERO, 1);
        s.eip7702(sender, authority.address, Bytes::new(), vec![auth])?;
    } else {
        s.eip1559(
            sender,
            TxKind::Call(authority.address),
            U256::ZERO,
            ping,
            100_000,
            1,
        )?;
    }
    Ok(())
}
