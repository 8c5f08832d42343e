//! A polite JSON-RPC client: bounded concurrency, per-request timeouts, retries with backoff on
//! transient faults, and errors that name the method and block and never quote the URL.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy_json_rpc::{RpcError as JsonRpcError, RpcRecv, RpcSend};
use alloy_rpc_client::RpcClient;
use alloy_transport::TransportErrorKind;
use tokio::sync::Semaphore;

use crate::{
    error::{GAVE_UP, RpcError},
    fault::{Fault, classify},
    redact::RpcUrl,
    transport::HttpTransport,
};

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

/// The JSON-RPC client every networked part of txshadow uses (capture, the node engine).
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
    pub fn new(url: RpcUrl, cfg: ClientConfig) -> Result<Self, RpcError> {
        tls_provider();
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(30)))
            .pool_max_idle_per_host(cfg.concurrency.max(1))
            .user_agent(concat!("txshadow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RpcError::Setup(format!("HTTP client: {}", e.without_url())))?;
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
    ) -> Result<R, RpcError>
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
                    return Err(RpcError::Failed {
                        method,
                        block,
                        // not NODE_ERROR: a caller tells a node's answer to this request (a
                        // refusal) from a node that stayed unavailable by that prefix
                        reason: format!("{GAVE_UP} {} attempts: {}", attempt + 1, scrub(&reason)),
                    });
                }
                Fault::MethodMissing(reason) => {
                    return Err(RpcError::MethodUnavailable {
                        method,
                        block,
                        reason: scrub(&reason),
                    });
                }
                Fault::NoState(reason) => {
                    return Err(RpcError::NoState {
                        method,
                        block,
                        reason: scrub(&reason),
                    });
                }
                Fault::Fatal(reason) => {
                    return Err(RpcError::Failed {
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
    ) -> Result<Vec<serde_json::Value>, RpcError> {
        if calls.len() < 2 || !self.batching.load(Ordering::Relaxed) {
            return self.each(calls, block).await;
        }
        let mut attempt = 0u32;
        loop {
            let mut batch = self.client.new_batch();
            let mut waiters = Vec::with_capacity(calls.len());
            for (m, p) in calls {
                let w = batch.add_call::<_, serde_json::Value>(*m, p).map_err(|e| {
                    RpcError::Failed {
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
                                    JsonRpcError::Transport(
                                        TransportErrorKind::MissingBatchResponse(_)
                                    )
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
    ) -> Result<Vec<serde_json::Value>, RpcError> {
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
