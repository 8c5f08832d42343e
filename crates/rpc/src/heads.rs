//! New heads pushed by the node: `eth_subscribe ["newHeads"]` over a WebSocket.
//!
//! A [`HeadSubscription`] is a task that keeps one subscription open: it connects, subscribes,
//! and publishes the number and hash of every head the node announces. A connection that drops
//! (or stays silent past a ping) is reconnected with backoff, for as long as the subscription
//! lives. Notifications are a wake-up, not a ledger: a follower still asks the node for the
//! blocks between the last one it followed and the head, so a head announced while the
//! connection was down is never missed. Nothing here quotes the URL: errors go through
//! [`RpcUrl::scrub`].

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U64};
use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::watch,
    task::JoinHandle,
};
use tokio_tungstenite::{
    WebSocketStream, client_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::redact::RpcUrl;

/// First wait before reconnecting; it doubles per failed attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Time limit of connecting, of the WebSocket handshake and of the subscription's answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A ping goes out when nothing came for this long; the connection is dropped when nothing
/// (not even the pong) comes for twice as long.
const IDLE: Duration = Duration::from_secs(15);

/// A head the node announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewHead {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// When the announcement arrived.
    pub seen: Instant,
}

/// A `newHeads` subscription kept open by a background task (see the [module](self) docs).
/// Dropping it ends the task and closes the connection.
#[derive(Debug)]
pub struct HeadSubscription {
    heads: watch::Receiver<Option<NewHead>>,
    live: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl HeadSubscription {
    /// Starts subscribing to `url` (a `ws://` or `wss://` endpoint) on the runtime `rt`.
    pub fn spawn(url: RpcUrl, rt: &tokio::runtime::Handle) -> Self {
        let (tx, heads) = watch::channel(None);
        let live = Arc::new(AtomicBool::new(false));
        let task = rt.spawn(keep_subscribed(url, tx, live.clone()));
        Self { heads, live, task }
    }

    /// Whether the subscription is open now (connected and subscribed).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// The last head announced, if any.
    pub fn latest(&self) -> Option<NewHead> {
        *self.heads.borrow()
    }

    /// Waits at most `limit` for a head announced after the last one this was asked about;
    /// `None` on timeout.
    pub async fn next(&mut self, limit: Duration) -> Option<NewHead> {
        match tokio::time::timeout(limit, self.heads.changed()).await {
            Ok(Ok(())) => *self.heads.borrow_and_update(),
            // the task ended (it only does when dropped) or the time is up
            _ => None,
        }
    }
}

impl Drop for HeadSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Subscribes, and again after every drop, with backoff; logs an outage once.
async fn keep_subscribed(url: RpcUrl, tx: watch::Sender<Option<NewHead>>, live: Arc<AtomicBool>) {
    let mut backoff = FIRST_BACKOFF;
    let mut down_since: Option<Instant> = None;
    loop {
        let mut heard = false;
        let why = match session(&url, &tx, &live, &mut heard).await {
            Ok(()) => "the node closed the connection".to_string(),
            Err(e) => url.scrub(&e),
        };
        live.store(false, Ordering::Relaxed);
        if heard {
            backoff = FIRST_BACKOFF;
        }
        if down_since.is_none() || heard {
            tracing::warn!(
                "newHeads subscription on {}: {why}; polling the head until it is back \
                 (reconnecting with backoff)",
                url.display()
            );
            down_since = Some(Instant::now());
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: connect, subscribe, publish heads until it drops. `heard` is set once the
/// subscription is confirmed.
async fn session(
    url: &RpcUrl,
    tx: &watch::Sender<Option<NewHead>>,
    live: &AtomicBool,
    heard: &mut bool,
) -> Result<(), String> {
    let mut ws = tokio::time::timeout(CONNECT_TIMEOUT, connect(url))
        .await
        .map_err(|_| format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()))??;
    let req = r#"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}"#;
    ws.send(Message::text(req))
        .await
        .map_err(|e| format!("send eth_subscribe: {e}"))?;
    let sub = tokio::time::timeout(CONNECT_TIMEOUT, confirmation(&mut ws))
        .await
        .map_err(|_| "no answer to eth_subscribe".to_string())??;
    live.store(true, Ordering::Relaxed);
    *heard = true;
    tracing::debug!("newHeads subscription {sub} open on {}", url.display());
    let mut last = Instant::now();
    let mut pinged = false;
    loop {
        let msg = match tokio::time::timeout(IDLE, ws.next()).await {
            Err(_) if !pinged || last.elapsed() < 2 * IDLE => {
                pinged = true;
                ws.send(Message::Ping(Vec::new().into()))
                    .await
                    .map_err(|e| format!("ping: {e}"))?;
                continue;
            }
            Err(_) => return Err(format!("nothing heard for {} s", last.elapsed().as_secs())),
            Ok(None) => return Ok(()),
            Ok(Some(m)) => m.map_err(|e| e.to_string())?,
        };
        last = Instant::now();
        pinged = false;
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => return Ok(()),
            // pings are answered by the stream; pongs and binary frames only show life
            _ => continue,
        };
        if let Some(h) = notification(&text, &sub) {
            tx.send_replace(Some(h));
        }
    }
}

/// Any stream a WebSocket runs over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Connects and does the WebSocket handshake (TLS for `wss://`; userinfo as basic auth).
async fn connect(url: &RpcUrl) -> Result<WebSocketStream<Box<dyn Io>>, String> {
    let full = url.url();
    let host = full.host_str().ok_or("no host")?.to_string();
    let tls = full.scheme() == "wss";
    let port = full.port().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if tls {
        Box::new(tls_connect(&host, tcp).await?)
    } else {
        Box::new(tcp)
    };
    let mut bare = full.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    let mut req = bare
        .as_str()
        .into_client_request()
        .map_err(|e| format!("WebSocket request: {e}"))?;
    if !full.username().is_empty() {
        let user = format!("{}:{}", full.username(), full.password().unwrap_or(""));
        let auth = HeaderValue::from_str(&format!("Basic {}", base64(user.as_bytes())))
            .map_err(|_| "the URL's userinfo is not a valid header".to_string())?;
        req.headers_mut().insert("Authorization", auth);
    }
    let (ws, _) = client_async(req, stream)
        .await
        .map_err(|e| format!("WebSocket handshake: {e}"))?;
    Ok(ws)
}

/// TLS over `tcp` to `host`, with the ring provider and the platform's certificate roots (as
/// the HTTP client).
async fn tls_connect(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_platform_verifier()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("TLS server name: {e}"))?;
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))
}

/// Reads until the answer to the `eth_subscribe` call (id 1): the subscription id.
async fn confirmation(ws: &mut WebSocketStream<Box<dyn Io>>) -> Result<String, String> {
    while let Some(m) = ws.next().await {
        let Message::Text(t) = m.map_err(|e| e.to_string())? else {
            continue;
        };
        let v: serde_json::Value =
            serde_json::from_str(&t).map_err(|e| format!("eth_subscribe answer: {e}"))?;
        if v.get("id") != Some(&serde_json::Value::from(1)) {
            continue;
        }
        if let Some(e) = v.get("error") {
            return Err(format!("the node refused eth_subscribe newHeads: {e}"));
        }
        return match v.get("result") {
            Some(serde_json::Value::String(id)) => Ok(id.clone()),
            other => Err(format!("eth_subscribe answered {other:?}, not an id")),
        };
    }
    Err("the node closed the connection before answering eth_subscribe".into())
}

/// The head in a notification of subscription `sub`, if `text` is one.
fn notification(text: &str, sub: &str) -> Option<NewHead> {
    #[derive(serde::Deserialize)]
    struct Note {
        params: Params,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        subscription: String,
        result: Header,
    }
    #[derive(serde::Deserialize)]
    struct Header {
        number: U64,
        hash: B256,
    }
    let n: Note = serde_json::from_str(text).ok()?;
    (n.params.subscription == sub).then(|| NewHead {
        number: n.params.result.number.to(),
        hash: n.params.result.hash,
        seen: Instant::now(),
    })
}

/// Standard base64 with padding (for a basic-auth header).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_of_our_subscription_gives_the_head() {
        let text = r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xab","result":{"number":"0x1b4","hash":"0x0000000000000000000000000000000000000000000000000000000000000007","parentHash":"0x00"}}}"#;
        let h = notification(text, "0xab").unwrap();
        assert_eq!(h.number, 436);
        assert_eq!(h.hash, B256::with_last_byte(7));
        assert!(notification(text, "0xcd").is_none());
        assert!(notification(r#"{"jsonrpc":"2.0","id":2,"result":"0x1"}"#, "0xab").is_none());
    }

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(base64(b"ci:s3cret"), "Y2k6czNjcmV0");
        assert_eq!(base64(b"a"), "YQ==");
    }
}
