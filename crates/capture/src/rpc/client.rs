//! A polite JSON-RPC client: bounded concurrency, per-request timeouts, retries with backoff on
//! transient faults, and errors that name the method and block and never quote the URL.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task,
    time::Duration,
};

use alloy_json_rpc::{RequestPacket, ResponsePacket, RpcError, RpcRecv, RpcSend};
use alloy_rpc_client::RpcClient;
use alloy_transport::{TransportError, TransportErrorKind, TransportFut};
use tokio::sync::Semaphore;

use super::{CaptureError, GAVE_UP, NODE_ERROR, redact::RpcUrl};

/// How the client treats the node.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Time limit of one request (connect, send, and read the whole response).
    pub timeout: Duration,
    /// Retries of a request after a transient fault (so `retries + 1` attempts at most).
    pub retries: u32,
    /// First backoff delay; it doubles per retry up to `max_backoff`, with jitter.
    pub backoff: Duration,
    /// Longest backoff delay (also caps a server's `Retry-After`).
    pub max_backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            timeout: Duration::from_secs(120),
            retries: 8,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(15),
        }
    }
}

/// Counters of a client's traffic.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Requests sent (attempts, retries included).
    pub requests: AtomicU64,
    /// Retries after a transient fault.
    pub retries: AtomicU64,
}

/// The HTTP transport: reqwest, with no tracing span or error that carries the URL.
#[derive(Clone)]
struct HttpTransport {
    client: reqwest::Client,
    url: url::Url,
}

impl tower::Service<RequestPacket> for HttpTransport {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _cx: &mut task::Context<'_>) -> task::Poll<Result<(), Self::Error>> {
        task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let body = serde_json::to_vec(&req).map_err(TransportError::ser_err)?;
            let resp = this
                .client
                .post(this.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| TransportErrorKind::custom(e.without_url()))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) if !status.is_success() => {
                    return Err(TransportErrorKind::http_error_with_retry_after(
                        status.as_u16(),
                        format!("<failed to read the body: {}>", e.without_url()),
                        retry_after,
                    ));
                }
                Err(e) => return Err(TransportErrorKind::custom(e.without_url())),
            };
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body);
                return Err(TransportErrorKind::http_error_with_retry_after(
                    status.as_u16(),
                    truncate(&text, 300),
                    retry_after,
                ));
            }
            serde_json::from_slice(&body)
                .map_err(|e| TransportError::deser_err(e, String::from_utf8_lossy(&body)))
        })
    }
}

fn truncate(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

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
        RpcError::ErrorResp(p) => {
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
        RpcError::Transport(kind) => {
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
        RpcError::DeserError { err, text } => {
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
        RpcError::NullResp => Fault::Fatal("the node answered null".into()),
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

/// The JSON-RPC client capture uses.
#[derive(Clone)]
pub struct Rpc {
    client: RpcClient,
    url: RpcUrl,
    permits: Arc<Semaphore>,
    cfg: ClientConfig,
    stats: Arc<ClientStats>,
    batching: Arc<AtomicBool>,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("url", &self.url)
            .field("cfg", &self.cfg)
            .finish()
    }
}

/// Installs the TLS crypto provider (ring) once per process.
fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Rpc {
    /// A client for `url`.
    pub fn new(url: RpcUrl, cfg: ClientConfig) -> Result<Self, CaptureError> {
        tls_provider();
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(30)))
            .pool_max_idle_per_host(cfg.concurrency.max(1))
            .user_agent(concat!("txshadow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CaptureError::Setup(format!("HTTP client: {}", e.without_url())))?;
        let transport = HttpTransport {
            client: http,
            url: url.url().clone(),
        };
        let is_local = matches!(
            url.url().host_str(),
            Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
        );
        Ok(Self {
            client: RpcClient::new(transport, is_local),
            url,
            permits: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            cfg,
            stats: Arc::default(),
            batching: Arc::new(AtomicBool::new(true)),
        })
    }

    /// The endpoint (display it with [`RpcUrl::display`]).
    pub const fn url(&self) -> &RpcUrl {
        &self.url
    }

    /// Traffic counters.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// The client's settings.
    pub const fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .cfg
            .backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cfg.max_backoff);
        // jitter: 50-100% of the delay, so parallel requests do not retry in lockstep
        let frac = 0.5 + 0.5 * pseudo_random();
        let d = exp.mul_f64(frac);
        match retry_after {
            Some(r) => r.min(self.cfg.max_backoff).max(d),
            None => d,
        }
    }

    /// Calls `method`; `block` names the block the call is for in errors and logs.
    pub async fn call<P, R>(
        &self,
        method: &'static str,
        params: P,
        block: Option<u64>,
    ) -> Result<R, CaptureError>
    where
        P: RpcSend + Clone,
        R: RpcRecv,
    {
        let mut attempt = 0u32;
        loop {
            let res = {
                let _permit = self.permits.acquire().await.expect("semaphore open");
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                self.client.request(method, params.clone()).await
            };
            let err = match res {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let fault = classify(&err);
            let scrub = |s: &str| self.url.scrub(s);
            match fault {
                Fault::Transient {
                    reason,
                    retry_after,
                } if attempt < self.cfg.retries => {
                    let delay = self.backoff(attempt, retry_after);
                    attempt += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "{method}{}: {}; retry {attempt}/{} in {:.1}s",
                        block.map(|b| format!(" (block {b})")).unwrap_or_default(),
                        scrub(&reason),
                        self.cfg.retries,
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                }
                Fault::Transient { reason, .. } => {
                    return Err(CaptureError::Rpc {
                        method,
                        block,
                        // not NODE_ERROR: a caller tells a node's answer to this request (a
                        // refusal) from a node that stayed unavailable by that prefix
                        reason: format!("{GAVE_UP} {} attempts: {}", attempt + 1, scrub(&reason)),
                    });
                }
                Fault::MethodMissing(reason) => {
                    return Err(CaptureError::MethodUnavailable {
                        method,
                        block,
                        reason: scrub(&reason),
                    });
                }
                Fault::NoState(reason) => {
                    return Err(CaptureError::NoState {
                        method,
                        block,
                        reason: scrub(&reason),
                    });
                }
                Fault::Fatal(reason) => {
                    return Err(CaptureError::Rpc {
                        method,
                        block,
                        reason: scrub(&reason),
                    });
                }
            }
        }
    }
}

impl Rpc {
    /// Several calls, in one JSON-RPC batch when the node takes batches (one request of the
    /// concurrency budget), else one by one in parallel. A call the batch did not answer is
    /// retried alone, so its error is classified like any other.
    pub async fn call_many(
        &self,
        calls: &[(&'static str, serde_json::Value)],
        block: Option<u64>,
    ) -> Result<Vec<serde_json::Value>, CaptureError> {
        if calls.len() < 2 || !self.batching.load(Ordering::Relaxed) {
            return self.each(calls, block).await;
        }
        let mut attempt = 0u32;
        loop {
            let mut batch = self.client.new_batch();
            let mut waiters = Vec::with_capacity(calls.len());
            for (m, p) in calls {
                let w = batch.add_call::<_, serde_json::Value>(*m, p).map_err(|e| {
                    CaptureError::Rpc {
                        method: m,
                        block,
                        reason: e.to_string(),
                    }
                })?;
                waiters.push(w);
            }
            let sent = {
                let _permit = self.permits.acquire().await.expect("semaphore open");
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                batch.send().await
            };
            match sent {
                Ok(()) => {
                    let mut out = Vec::with_capacity(calls.len());
                    let mut missing = 0;
                    for w in waiters {
                        match w.await {
                            Ok(v) => out.push(Some(v)),
                            Err(e) => {
                                if matches!(
                                    e,
                                    RpcError::Transport(TransportErrorKind::MissingBatchResponse(
                                        _
                                    ))
                                ) {
                                    missing += 1;
                                }
                                out.push(None);
                            }
                        }
                    }
                    if missing == calls.len() {
                        self.batching.store(false, Ordering::Relaxed);
                        tracing::info!(
                            "the node does not answer JSON-RPC batches: sending calls one by one"
                        );
                    }
                    let redo: Vec<usize> = (0..out.len()).filter(|i| out[*i].is_none()).collect();
                    let again = self
                        .each(
                            &redo.iter().map(|i| calls[*i].clone()).collect::<Vec<_>>(),
                            block,
                        )
                        .await?;
                    for (i, v) in redo.into_iter().zip(again) {
                        out[i] = Some(v);
                    }
                    return Ok(out.into_iter().map(|v| v.expect("filled")).collect());
                }
                Err(e) => match classify(&e) {
                    Fault::Transient {
                        reason,
                        retry_after,
                    } if attempt < self.cfg.retries => {
                        let delay = self.backoff(attempt, retry_after);
                        attempt += 1;
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "batch of {} calls{}: {}; retry {attempt}/{} in {:.1}s",
                            calls.len(),
                            block.map(|b| format!(" (block {b})")).unwrap_or_default(),
                            self.url.scrub(&reason),
                            self.cfg.retries,
                            delay.as_secs_f64()
                        );
                        tokio::time::sleep(delay).await;
                    }
                    Fault::Transient { .. } => {
                        // out of retries as a batch: each call gets its own budget
                        return self.each(calls, block).await;
                    }
                    _ => {
                        self.batching.store(false, Ordering::Relaxed);
                        tracing::info!(
                            "the node refused a JSON-RPC batch: sending calls one by one"
                        );
                        return self.each(calls, block).await;
                    }
                },
            }
        }
    }

    async fn each(
        &self,
        calls: &[(&'static str, serde_json::Value)],
        block: Option<u64>,
    ) -> Result<Vec<serde_json::Value>, CaptureError> {
        futures_util::future::try_join_all(
            calls
                .iter()
                .map(|(m, p)| self.call::<_, serde_json::Value>(m, p.clone(), block)),
        )
        .await
    }
}

/// A cheap, non-cryptographic random number in [0, 1) for backoff jitter.
fn pseudo_random() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_json_rpc::ErrorPayload;

    fn resp(code: i64, msg: &'static str) -> TransportError {
        RpcError::ErrorResp(ErrorPayload {
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
        let rpc = |reason: String| CaptureError::Rpc {
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
        let missing = CaptureError::MethodUnavailable {
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

    #[test]
    fn backoff_grows_and_is_capped() {
        let rpc = Rpc::new(
            RpcUrl::parse("http://127.0.0.1:1").unwrap(),
            ClientConfig {
                backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                ..Default::default()
            },
        )
        .unwrap();
        let d0 = rpc.backoff(0, None);
        assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
        let d9 = rpc.backoff(9, None);
        assert!(d9 <= Duration::from_secs(1));
        assert!(rpc.backoff(0, Some(Duration::from_secs(60))) == Duration::from_secs(1));
    }
}
