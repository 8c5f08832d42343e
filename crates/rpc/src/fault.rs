//! Sorting a failed call: worth retrying, a missing method, a node without the state, or fatal.

use std::time::Duration;

use alloy_json_rpc::RpcError as JsonRpcError;
use alloy_transport::TransportError;

use crate::{error::NODE_ERROR, transport::truncate};

/// What went wrong with one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Worth retrying (timeouts, 5xx, 429, dropped connections, rate-limit replies).
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The node does not serve the method.
    MethodMissing(String),
    /// The node has no state for the block (not an archive node, pruned).
    NoState(String),
    /// Anything else: retrying would fail the same way.
    Fatal(String),
}

fn has_any(text: &str, words: &[&str]) -> bool {
    let l = text.to_ascii_lowercase();
    words.iter().any(|w| l.contains(w))
}

/// Sorts an error into a [`Fault`]. Texts are not yet scrubbed.
pub(crate) fn classify(err: &TransportError) -> Fault {
    match err {
        JsonRpcError::ErrorResp(p) => {
            let text = format!("{NODE_ERROR} {}: {}", p.code, p.message);
            let msg = p.message.as_ref();
            const NO_STATE: &[&str] = &[
                "missing trie node",
                "historical state",
                "state is not available",
                "state not available",
                "pruned",
                "state histories",
                "not an archive",
                "header not found",
                "required historical",
            ];
            const MISSING: &[&str] = &[
                "method not found",
                "does not exist",
                "not available",
                "unsupported method",
                "method not supported",
                "not supported",
                "unknown method",
                "namespace",
                "not whitelisted",
            ];
            const TRANSIENT: &[&str] = &[
                "rate limit",
                "too many requests",
                "limit exceeded",
                "capacity",
                "timeout",
                "timed out",
                "try again",
                "temporarily",
                "busy",
                "overloaded",
                "unavailable",
            ];
            if p.code == -32601 {
                Fault::MethodMissing(text)
            } else if has_any(msg, NO_STATE) {
                Fault::NoState(text)
            } else if has_any(msg, MISSING) {
                Fault::MethodMissing(text)
            } else if p.code == 429 || p.code == -32005 || has_any(msg, TRANSIENT) {
                Fault::Transient {
                    reason: text,
                    retry_after: None,
                }
            } else {
                Fault::Fatal(text)
            }
        }
        JsonRpcError::Transport(kind) => {
            let retry_after = kind.retry_after();
            if let Some(h) = kind.as_http_error() {
                let text = format!("HTTP {}: {}", h.status, truncate(&h.body, 200));
                return match h.status {
                    408 | 425 | 429 | 500..=599 => Fault::Transient {
                        reason: text,
                        retry_after,
                    },
                    401 | 403 => Fault::Fatal(format!(
                        "{text} (the node refused the request: check the credentials of --rpc-url)"
                    )),
                    404 | 405 => Fault::MethodMissing(text),
                    _ => Fault::Fatal(text),
                };
            }
            if kind.is_non_retryable() {
                return Fault::Fatal(kind.to_string());
            }
            let mut text = kind.to_string();
            if let Some(e) = kind.as_custom()
                && let Some(r) = e.downcast_ref::<reqwest::Error>()
            {
                text = describe_reqwest(r);
            }
            Fault::Transient {
                reason: text,
                retry_after,
            }
        }
        JsonRpcError::DeserError { err, text } => {
            if serde_json::from_str::<serde_json::Value>(text).is_ok() {
                Fault::Fatal(format!("unexpected response: {err}"))
            } else {
                // a body cut short or a proxy's error page: transient
                Fault::Transient {
                    reason: format!("malformed response: {err} ({})", truncate(text, 120)),
                    retry_after: None,
                }
            }
        }
        JsonRpcError::NullResp => Fault::Fatal("the node answered null".into()),
        other => Fault::Fatal(other.to_string()),
    }
}

/// A reqwest error with its cause chain (hyper's "connection reset" lives in the sources).
fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "response cut short"
    } else if e.is_request() {
        "request failed"
    } else {
        "HTTP error"
    };
    let mut parts = vec![kind.to_string()];
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.contains(&t) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{GAVE_UP, RpcError};
    use alloy_json_rpc::ErrorPayload;
    use alloy_transport::TransportErrorKind;

    fn resp(code: i64, msg: &'static str) -> TransportError {
        JsonRpcError::ErrorResp(ErrorPayload {
            code,
            message: msg.into(),
            data: None,
        })
    }

    #[test]
    fn a_node_error_answer_keeps_its_code() {
        let Fault::Fatal(reason) = classify(&resp(-32602, "invalid params: no creations")) else {
            panic!("an invalid-params answer is fatal");
        };
        let rpc = |reason: String| RpcError::Failed {
            method: "eth_simulateV1",
            block: Some(3),
            reason,
        };
        let answered = rpc(reason);
        assert_eq!(answered.node_error_code(), Some(-32602));
        assert!(!answered.gave_up());
        let down = rpc(format!("{GAVE_UP} 3 attempts: HTTP 503"));
        assert_eq!(down.node_error_code(), None);
        assert!(down.gave_up());
        assert_eq!(
            rpc("unexpected result: not an object".into()).node_error_code(),
            None
        );
        let missing = RpcError::MethodUnavailable {
            method: "eth_simulateV1",
            block: None,
            reason: format!("{NODE_ERROR} -32601: method not found"),
        };
        assert_eq!(missing.node_error_code(), None);
    }

    #[test]
    fn faults_are_sorted() {
        assert!(matches!(
            classify(&resp(
                -32601,
                "the method debug_traceBlockByNumber does not exist/is not available"
            )),
            Fault::MethodMissing(_)
        ));
        assert!(matches!(
            classify(&resp(-32005, "limit exceeded")),
            Fault::Transient { .. }
        ));
        assert!(matches!(
            classify(&resp(
                -32000,
                "missing trie node abc (path ) state 0x1 is not available"
            )),
            Fault::NoState(_)
        ));
        assert!(matches!(
            classify(&resp(-32000, "execution reverted")),
            Fault::Fatal(_)
        ));
        for s in [429u16, 500, 502, 503, 504] {
            assert!(matches!(
                classify(&TransportErrorKind::http_error(s, "x".into())),
                Fault::Transient { .. }
            ));
        }
        assert!(matches!(
            classify(&TransportErrorKind::http_error(401, String::new())),
            Fault::Fatal(_)
        ));
        assert!(matches!(
            classify(&TransportErrorKind::custom_str("connection reset")),
            Fault::Transient { .. }
        ));
        assert!(matches!(
            classify(&TransportError::deser_err(
                serde_json::from_str::<u8>("x").unwrap_err(),
                "<html>bad gateway"
            )),
            Fault::Transient { .. }
        ));
    }
}
