//! Expected rejections: a conformance test names why a tx must be rejected
//! (`TransactionException.INTRINSIC_GAS_TOO_LOW`, or ethereum/tests' older `TR_IntrinsicGas`);
//! a replay rejects it with an error text from revm or the block executor. A rejection matches
//! when the text falls in the class the test names.
//!
//! The classes are deliberately coarse where the engine's message is (revm reports one
//! "lack of funds" for both a balance below the gas cost and one below gas cost plus value),
//! and a name the table does not know never matches: it shows as a difference with both
//! texts, so an unknown exception is seen, not passed.

/// Each exception class: the names the suites give it, and the fragments of the engine's
/// message that mean it.
const CLASSES: &[(&[&str], &[&str])] = &[
    (
        &[
            "INTRINSIC_GAS_TOO_LOW",
            "INTRINSIC_GAS_BELOW_FLOOR_GAS_COST",
            "TR_IntrinsicGas",
        ],
        &[
            "call gas cost",
            "gas floor",
            "callgascostmorethangaslimit",
            "intrinsic gas",
        ],
    ),
    (
        &[
            "INSUFFICIENT_ACCOUNT_FUNDS",
            "TR_NoFunds",
            "TR_NoFundsOrGas",
        ],
        &[
            "lack of funds",
            "overflow payment",
            "insufficient funds",
            "lackoffundformaxfee",
        ],
    ),
    (
        &["INSUFFICIENT_MAX_FEE_PER_GAS", "TR_FeeCapLessThanBlocks"],
        &[
            "gas price is less than basefee",
            "less than block base fee",
            "gaspricelessthanbasefee",
        ],
    ),
    (
        &["PRIORITY_GREATER_THAN_MAX_FEE_PER_GAS", "TR_TipGtFeeCap"],
        &[
            "priority fee is greater than max fee",
            "priority fee per gas higher than max fee",
            "priorityfeegreaterthanmaxfee",
        ],
    ),
    (
        &["GAS_ALLOWANCE_EXCEEDED", "TR_GasLimitReached"],
        &[
            "blocks available gas",
            "caller gas limit exceeds the block gas limit",
        ],
    ),
    (&["GAS_LIMIT_EXCEEDS_MAXIMUM"], &["is greater than the cap"]),
    (
        &["NONCE_IS_MAX", "TR_NonceHasMaxValue"],
        &["nonce overflow"],
    ),
    (
        &["NONCE_MISMATCH_TOO_HIGH", "TR_NonceTooHigh"],
        &["too high, expected"],
    ),
    (
        &["NONCE_MISMATCH_TOO_LOW", "TR_NonceTooLow"],
        &["too low, expected"],
    ),
    (
        &["INITCODE_SIZE_EXCEEDED", "TR_InitCodeLimitExceeded"],
        &["create initcode size limit"],
    ),
    (
        &["SENDER_NOT_EOA", "SenderNotEOA"],
        &["senders with deployed code"],
    ),
    (
        &[
            "TYPE_3_TX_BLOB_COUNT_EXCEEDED",
            "TYPE_3_TX_MAX_BLOB_GAS_ALLOWANCE_EXCEEDED",
        ],
        &[
            "too many blobs",
            "blob gas used",
            "exceeds maximum allowance",
        ],
    ),
    (&["TYPE_3_TX_ZERO_BLOBS"], &["empty blobs"]),
    (
        &["TYPE_3_TX_INVALID_BLOB_VERSIONED_HASH"],
        &["blob version not supported"],
    ),
    (
        &["INSUFFICIENT_MAX_FEE_PER_BLOB_GAS"],
        &["greater than max fee per blob gas"],
    ),
    (
        // a blob or set-code tx without a recipient cannot even be decoded
        &["TYPE_3_TX_CONTRACT_CREATION", "TYPE_4_TX_CONTRACT_CREATION"],
        &["blob create transaction", "decode", "unexpected"],
    ),
    (
        &[
            "TYPE_3_TX_PRE_FORK",
            "TYPE_4_TX_PRE_FORK",
            "TYPE_2_TX_PRE_FORK",
            "TYPE_1_TX_PRE_FORK",
            "TR_TypeNotSupported",
        ],
        &[
            "is not supported",
            "not supported",
            "unsupported transaction type",
        ],
    ),
    (
        &["TYPE_4_EMPTY_AUTHORIZATION_LIST"],
        &["empty authorization list"],
    ),
    (
        &[
            "GASLIMIT_PRICE_PRODUCT_OVERFLOW",
            "TR_GasLimitPriceProductOverflow",
        ],
        &["overflow payment", "lack of funds"],
    ),
    (
        // the tx's encoding is wrong: it is rejected before any rule is checked
        &[
            "RLP_INVALID_VALUE",
            "RLP_INVALID_FIELD_OVERFLOW_64",
            "RLP_INVALID_ADDRESS",
            "RLP_LEADING_ZEROS",
            "RLP_INVALID_SIGNATURE",
            "TR_RLP_WRONGVALUE",
            "TR_RLP_OVERSIZE",
            "TR_LEADINGZERO",
        ],
        &[
            "cannot decode transaction",
            "trailing bytes after the transaction",
        ],
    ),
    (&["INVALID_CHAINID", "TR_ChainId"], &["invalid chain id"]),
];

/// The class names of `name` (a suite's exception, with or without its
/// `TransactionException.` prefix).
fn class_of(name: &str) -> Option<&'static [&'static str]> {
    let short = name.trim().rsplit('.').next().unwrap_or(name);
    CLASSES
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(short)))
        .map(|(_, texts)| *texts)
}

/// Whether the engine's rejection text `got` matches the exception `expected` names (any of
/// its `|`-separated alternatives).
pub fn rejection_matches(expected: &str, got: &str) -> bool {
    let got = got.to_ascii_lowercase();
    expected.split('|').any(|name| {
        class_of(name)
            .is_some_and(|texts| texts.iter().any(|t| got.contains(&t.to_ascii_lowercase())))
    })
}

/// The reason of a rejection, without the wrapping the engine's path adds: the block executor
/// says `EVM reported invalid transaction (<hash>): <reason>`, a lone tx run
/// `transaction validation error: <reason>`. Two runs rejecting a tx for the same reason give
/// the same text here.
pub fn rejection_reason(e: &str) -> &str {
    let mut r = e.trim();
    if let Some(rest) = r.strip_prefix("EVM reported invalid transaction (")
        && let Some((_, reason)) = rest.split_once("): ")
    {
        r = reason;
    }
    for prefix in [
        "transaction validation error: ",
        "header validation error: ",
    ] {
        if let Some(rest) = r.strip_prefix(prefix) {
            r = rest;
        }
    }
    r
}

/// Whether two rejection texts (one engine's, another's or a node's) name the same reason:
/// the same text once unwrapped, or the same class.
pub fn same_rejection(a: &str, b: &str) -> bool {
    let class = |t: &str| {
        let t = t.to_ascii_lowercase();
        CLASSES
            .iter()
            .position(|(_, texts)| texts.iter().any(|x| t.contains(&x.to_ascii_lowercase())))
    };
    rejection_reason(a) == rejection_reason(b) || class(a).is_some_and(|c| class(b) == Some(c))
}

/// Whether `expected` names only classes this table knows (else a mismatch may be the table's).
pub fn rejection_known(expected: &str) -> bool {
    expected.split('|').all(|n| class_of(n).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_the_engines_texts() {
        let intrinsic = "transaction 0xab validation error: transaction validation error: \
                         call gas cost (21000) exceeds the gas limit (20000)";
        assert!(rejection_matches(
            "TransactionException.INTRINSIC_GAS_TOO_LOW",
            intrinsic
        ));
        assert!(rejection_matches("TR_IntrinsicGas", intrinsic));
        assert!(!rejection_matches(
            "TransactionException.INSUFFICIENT_ACCOUNT_FUNDS",
            intrinsic
        ));
        // alternatives: any may match
        assert!(rejection_matches(
            "TransactionException.INSUFFICIENT_ACCOUNT_FUNDS|TransactionException.INTRINSIC_GAS_TOO_LOW",
            intrinsic
        ));
        assert!(rejection_matches(
            "TransactionException.INSUFFICIENT_ACCOUNT_FUNDS",
            "lack of funds (10) for max fee (20)"
        ));
    }

    #[test]
    fn a_reason_is_the_same_from_a_block_run_and_a_lone_tx_run() {
        let block = "EVM reported invalid transaction (0xf068): transaction validation error: \
                     too many blobs, have 7, max 6";
        let alone = "transaction validation error: too many blobs, have 7, max 6";
        assert_eq!(rejection_reason(block), rejection_reason(alone));
        assert_eq!(rejection_reason(alone), "too many blobs, have 7, max 6");
        assert_eq!(rejection_reason("out of gas"), "out of gas");
    }

    #[test]
    fn a_nodes_rejection_is_the_engines_when_of_the_same_class() {
        let node = "the node refused the tx: JSON-RPC error -32000: intrinsic gas too high -- \
                    CallGasCostMoreThanGasLimit";
        let revm = "EVM reported invalid transaction (0xd248): transaction validation error: \
                    call gas cost (21000) exceeds the gas limit (1000)";
        assert!(same_rejection(node, revm));
        assert!(!same_rejection(node, "lack of funds (0) for max fee (1)"));
    }

    #[test]
    fn a_nodes_wording_matches_too() {
        assert!(rejection_matches(
            "TransactionException.INTRINSIC_GAS_TOO_LOW",
            "the node refused the tx: JSON-RPC error -32000: intrinsic gas too high -- \
             CallGasCostMoreThanGasLimit"
        ));
        assert!(rejection_matches(
            "TransactionException.INSUFFICIENT_ACCOUNT_FUNDS",
            "insufficient funds for gas * price + value"
        ));
    }

    #[test]
    fn an_unknown_exception_never_matches() {
        assert!(!rejection_known("TransactionException.SOMETHING_NEW"));
        assert!(!rejection_matches(
            "TransactionException.SOMETHING_NEW",
            "call gas cost (1) exceeds the gas limit (0)"
        ));
        assert!(rejection_known("TransactionException.NONCE_IS_MAX"));
    }
}
